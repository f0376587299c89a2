//! [`Model::run_quiet`] and [`Model::apply_quiet`] (what the oracle's cursors step with)
//! against [`Model::run`] and [`Model::apply`]: the same state after every command, over the
//! write commands of every scenario file's workload and over a seeded random sequence of every
//! model command (all group commands, transactions, `SET ... GET`, `ZPOPMIN`, errors); each
//! check has a companion showing that a quiet path which skips one command kind is caught.

use durlab_engine::{Command, Lsn};
use rand::{RngExt as _, SeedableRng as _};
use rand_chacha::ChaCha8Rng;

use super::groups::{ClaimAt, ClaimExtra, GroupStart, ReadStart};
use super::model::{Cond, Expiry, Id, IdSpec, Model, Op};
use crate::scenario::{self, locate};
use crate::workload::Workload;

/// Write commands per scenario workload; models are compared every [`EVERY`] of them and at
/// the end.
const COMMANDS: Lsn = 3_000;
const EVERY: Lsn = 50;

fn workload(name: &str) -> Workload {
    let path = locate::find_scenario(name).expect("scenario exists");
    Workload::new(&scenario::load(&path).expect("scenario loads").workload)
}

/// Every scenario file's name.
fn scenario_names() -> Vec<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("scenarios directory")
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            Some(name.strip_suffix(".toml")?.to_string())
        })
        .collect();
    names.sort();
    assert!(names.len() >= 6, "{names:?}");
    names
}

/// Commands 1..=[`COMMANDS`] of `name`'s workload, applied to one model with
/// [`Model::apply`] and to another with `quiet`: at how many of the compared LSNs the models
/// differ.
fn differing_lsns(name: &str, quiet: &dyn Fn(&mut Model, &Command)) -> usize {
    let w = workload(name);
    let mut seeds = w.command_seeds();
    let (mut plain, mut stepped) = (Model::new(), Model::new());
    let mut differing = 0;
    for n in 1..=COMMANDS {
        let cmd = w.write_command(&mut seeds, n);
        plain.apply(&cmd);
        quiet(&mut stepped, &cmd);
        if (n % EVERY == 0 || n == COMMANDS) && plain != stepped {
            differing += 1;
        }
    }
    differing
}

/// A quiet path that forgets one command kind: what the companions feed.
fn skipping_xack(m: &mut Model, cmd: &Command) {
    if !matches!(cmd, Command::XAck { .. }) {
        m.apply_quiet(cmd);
    }
}

#[test]
fn quiet_apply_changes_what_apply_changes_in_every_scenario() {
    for name in scenario_names() {
        assert_eq!(
            differing_lsns(&name, &|m, c| m.apply_quiet(c)),
            0,
            "scenario {name}"
        );
    }
}

/// The companion: event-stream's workload acknowledges entries (XACK), and a quiet path that
/// skips them is seen.
#[test]
fn a_quiet_apply_skipping_xack_is_seen_in_event_stream() {
    let differing = differing_lsns("event-stream", &skipping_xack);
    assert!(differing >= 10, "{differing} compared LSNs differ");
}

/// A seeded random command of the model over a few keys, groups and consumers, so that
/// wrong types, missing groups, deleted entries, trimming and claims all happen.
fn random_op(rng: &mut ChaCha8Rng, now: u64, depth: u32) -> Op {
    fn pick(rng: &mut ChaCha8Rng, from: &[&str]) -> Vec<u8> {
        from[rng.random_range(0..from.len())].as_bytes().to_vec()
    }
    let kind = rng.random_range(0..32);
    // Each kind of command mostly on keys of its type (one in ten on any key: WRONGTYPE).
    let key = if rng.random_bool(0.1) {
        pick(rng, &["s", "t", "h", "z", "k"])
    } else {
        match kind {
            0..=6 => pick(rng, &["k", "x"]),
            7..=9 => b"h".to_vec(),
            10..=12 => b"z".to_vec(),
            _ => pick(rng, &["s", "s", "t"]),
        }
    };
    let group = pick(rng, &["g", "g", "g", "f"]);
    let consumer = pick(rng, &["c0", "c1", "c2"]);
    // Ids near the clock (XADD's `*` takes it), so that reads, claims and acks find entries.
    let id = |rng: &mut ChaCha8Rng| Id {
        ms: rng.random_range(now.saturating_sub(6)..=now),
        seq: rng.random_range(0..3),
    };
    let ids = |rng: &mut ChaCha8Rng| (0..rng.random_range(0..4)).map(|_| id(rng)).collect();
    let value = |rng: &mut ChaCha8Rng| rng.random_range(0..50u32).to_string().into_bytes();
    let start = |rng: &mut ChaCha8Rng| {
        if rng.random_bool(0.3) {
            GroupStart::Last
        } else {
            GroupStart::Id(id(rng))
        }
    };
    match kind {
        0 => Op::Set {
            key,
            value: value(rng),
            cond: [Cond::Any, Cond::IfAbsent, Cond::IfPresent][rng.random_range(0..3)],
            expiry: [Expiry::Remove, Expiry::Keep, Expiry::At(now)][rng.random_range(0..3)],
            get: rng.random_bool(0.5),
        },
        1 => Op::Get { key },
        2 => Op::Del { key },
        3 => Op::SetNx {
            key,
            value: value(rng),
        },
        4 => Op::IncrBy {
            key,
            delta: rng.random_range(-3..4),
        },
        5 => Op::PExpireAt { key, at_ms: now },
        6 => Op::Persist { key },
        7 => Op::HSet {
            key,
            fields: (0..rng.random_range(0..3))
                .map(|_| (value(rng), value(rng)))
                .collect(),
        },
        8 => Op::HDel {
            key,
            fields: (0..rng.random_range(0..3)).map(|_| value(rng)).collect(),
        },
        9 => Op::HIncrBy {
            key,
            field: value(rng),
            delta: rng.random_range(-3..4),
        },
        10 => Op::ZAdd {
            key,
            members: (0..rng.random_range(0..3))
                .map(|_| (f64::from(rng.random_range(-2..3)), value(rng)))
                .collect(),
        },
        11 => Op::ZRem {
            key,
            members: vec![value(rng)],
        },
        12 => Op::ZPopMin {
            key,
            count: rng.random_range(0..3),
        },
        13..=16 => Op::XAdd {
            key,
            id: match rng.random_range(0..4) {
                0 => IdSpec::Next,
                1 => IdSpec::Given(id(rng)),
                2 => IdSpec::Time(now),
                _ => IdSpec::SeqFor(rng.random_range(now.saturating_sub(3)..=now)),
            },
            fields: vec![(b"f".to_vec(), value(rng))],
            maxlen: rng.random_bool(0.3).then(|| rng.random_range(0..6)),
        },
        17 => Op::XGroupCreate {
            key,
            group,
            start: start(rng),
            mkstream: rng.random_bool(0.5),
        },
        18 => Op::XGroupDestroy { key, group },
        19 => Op::XGroupCreateConsumer {
            key,
            group,
            consumer,
            now_ms: now,
        },
        20 => Op::XGroupSetId {
            key,
            group,
            start: start(rng),
        },
        21 => Op::XGroupDelConsumer {
            key,
            group,
            consumer,
        },
        22 | 23 => Op::XReadGroup {
            key,
            group,
            consumer,
            count: rng.random_bool(0.7).then(|| rng.random_range(0..4)),
            start: if rng.random_bool(0.7) {
                ReadStart::New
            } else {
                ReadStart::Pending(id(rng))
            },
            noack: rng.random_bool(0.1),
            now_ms: now,
        },
        24 => Op::XAck {
            key,
            group,
            ids: ids(rng),
        },
        25 => Op::XDel { key, ids: ids(rng) },
        26 => Op::XClaim {
            key,
            group,
            consumer,
            min_idle_ms: rng.random_range(0..20),
            ids: ids(rng),
            now_ms: now,
            justid: rng.random_bool(0.3),
            extra: ClaimExtra {
                at: match rng.random_range(0..3) {
                    0 => None,
                    1 => Some(ClaimAt::IdleMs(rng.random_range(0..30))),
                    _ => Some(ClaimAt::Ms(rng.random_range(0..now + 5))),
                },
                retry_count: rng.random_bool(0.2).then(|| rng.random_range(0..5)),
                force: rng.random_bool(0.2),
                last_id: rng.random_bool(0.2).then(|| id(rng)),
            },
        },
        27 => Op::XAutoClaim {
            key,
            group,
            consumer,
            min_idle_ms: rng.random_range(0..20),
            start: id(rng),
            count: rng.random_range(0..4),
            now_ms: now,
            justid: rng.random_bool(0.3),
        },
        28 => Op::XPending { key, group },
        29 => Op::XInfoConsumers {
            key,
            group,
            now_ms: now,
        },
        30 if depth < 2 => Op::Multi(
            (0..rng.random_range(0..4))
                .map(|_| random_op(rng, now, depth + 1))
                .collect(),
        ),
        30 => Op::FlushAll,
        _ => Op::XInfoGroups { key },
    }
}

/// `ops` seeded random commands run on one model with [`Model::run`] and on another with
/// `quiet`: after how many of them the models differ.
fn random_differences(seed: u64, ops: u64, quiet: &dyn Fn(&mut Model, &Op)) -> usize {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (mut plain, mut stepped) = (Model::new(), Model::new());
    let mut differing = 0;
    for n in 1..=ops {
        // A slow clock: few distinct ids, so that acks and claims name pending entries.
        let now = n / 8;
        let op = random_op(&mut rng, now, 0);
        plain.run(&op);
        quiet(&mut stepped, &op);
        if plain != stepped {
            differing += 1;
            // Start again from the same state, so that every difference is counted once.
            stepped = plain.clone();
        }
    }
    differing
}

#[test]
fn quiet_runs_change_what_runs_change() {
    for seed in 0..20 {
        assert_eq!(
            random_differences(seed, 2_000, &|m, op| m.run_quiet(op)),
            0,
            "seed {seed}"
        );
    }
}

/// The companion: a quiet path that skips `XCLAIM` (or `XREADGROUP`) is caught by the same
/// sequences.
#[test]
fn a_quiet_run_skipping_a_command_kind_is_seen() {
    let skip_claim = |m: &mut Model, op: &Op| {
        if !matches!(op, Op::XClaim { .. }) {
            m.run_quiet(op);
        }
    };
    let skip_read = |m: &mut Model, op: &Op| {
        if !matches!(op, Op::XReadGroup { .. }) {
            m.run_quiet(op);
        }
    };
    let claims: usize = (0..20)
        .map(|s| random_differences(s, 2_000, &skip_claim))
        .sum();
    let reads: usize = (0..20)
        .map(|s| random_differences(s, 2_000, &skip_read))
        .sum();
    assert!(
        claims >= 10 && reads >= 10,
        "{claims} claims, {reads} reads"
    );
}
