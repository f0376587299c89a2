//! The oracle's model of consumer groups against real redis-server 7: a seeded sequence of
//! group commands (with their edge cases: missing keys and groups, wrong types, deleted and
//! trimmed pending entries, SETID back, FORCE, JUSTID, NOACK) runs on both, reply by reply.
//!
//! Time-dependent fields are handled explicitly: the model runs each command at this process's
//! wall clock and Redis at its own, so idle times (`XPENDING`'s extended form, `XINFO
//! CONSUMERS`) are masked on both sides, and min-idle-times are 0 or one hour, where the two
//! clocks cannot disagree. `XINFO GROUPS`' `entries-read` and `lag` are dropped from Redis's
//! reply (the model does not keep them: harness/src/oracle/groups.rs).

mod resp_support;

use std::time::{SystemTime, UNIX_EPOCH};

use durlab_engine::keyspace::{
    ClaimTime, GroupStart, PendingRange, ReadStart, StreamId, XAddId, XClaimOptions,
};
use durlab_engine::{Command, FsyncPolicy, Persistence, Reply};
use durlab_harness::oracle::Model;
use durlab_harness::oracle::compare;
use durlab_harness::resp::Value;
use durlab_harness::resp::commands::{AutoId, to_args};
use durlab_harness::servers::{Target, readback};
use durlab_harness::workload::rng::SplitMix64;
use rand::RngExt;

const HOUR_MS: u64 = 3_600_000;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// A seeded sequence of group commands over two streams, a string key and a missing key.
struct Gen {
    rng: SplitMix64,
    next_ms: u64,
}

impl Gen {
    fn pick(&mut self, from: &[&str]) -> Vec<u8> {
        from[self.rng.random_range(0..from.len())]
            .as_bytes()
            .to_vec()
    }

    fn key(&mut self) -> Vec<u8> {
        // Mostly the two streams; sometimes a missing key or a string.
        let r = self.rng.random_range(0..20u32);
        match r {
            0 => b"nokey".to_vec(),
            1 => b"str".to_vec(),
            _ if r % 2 == 0 => b"s1".to_vec(),
            _ => b"s2".to_vec(),
        }
    }

    fn group(&mut self) -> Vec<u8> {
        self.pick(&["g1", "g1", "g2", "gx"])
    }

    fn consumer(&mut self) -> Vec<u8> {
        self.pick(&["c0", "c1", "c2", "c3"])
    }

    /// An id near those added so far.
    fn id(&mut self) -> StreamId {
        StreamId {
            ms: self.rng.random_range(0..self.next_ms + 2),
            seq: self.rng.random_range(0..2u64),
        }
    }

    fn ids(&mut self) -> Vec<StreamId> {
        let n = self.rng.random_range(1..4usize);
        (0..n).map(|_| self.id()).collect()
    }

    fn min_idle(&mut self) -> u64 {
        if self.rng.random_range(0..3u32) == 0 {
            HOUR_MS
        } else {
            0
        }
    }

    fn command(&mut self, now_ms: u64) -> Command {
        let key = self.key();
        let group = self.group();
        let consumer = self.consumer();
        match self.rng.random_range(0..100u32) {
            0..25 => {
                let id = if self.rng.random_range(0..10u32) == 0 {
                    self.id()
                } else {
                    self.next_ms += 1;
                    StreamId {
                        ms: self.next_ms,
                        seq: 0,
                    }
                };
                Command::XAdd {
                    key,
                    id: XAddId::Explicit(id),
                    fields: vec![(b"v".to_vec(), id.to_string().into_bytes())],
                    maxlen: (self.rng.random_range(0..8u32) == 0).then_some(6),
                }
            }
            25..31 => Command::XGroupCreate {
                key,
                group,
                id: if self.rng.random_range(0..2u32) == 0 {
                    GroupStart::Last
                } else {
                    GroupStart::Id(self.id())
                },
                mkstream: self.rng.random_range(0..2u32) == 0,
                entries_read: None,
            },
            31..33 => Command::XGroupSetId {
                key,
                group,
                id: if self.rng.random_range(0..2u32) == 0 {
                    GroupStart::Last
                } else {
                    GroupStart::Id(self.id())
                },
                entries_read: None,
            },
            33 => Command::XGroupDestroy { key, group },
            34 => Command::XGroupCreateConsumer {
                key,
                group,
                consumer,
                now_ms,
            },
            35..37 => Command::XGroupDelConsumer {
                key,
                group,
                consumer,
            },
            37..57 => Command::XReadGroup {
                key,
                group,
                consumer,
                count: match self.rng.random_range(0..4u64) {
                    0 => None,
                    n => Some(n),
                },
                start: if self.rng.random_range(0..4u32) == 0 {
                    ReadStart::Pending(if self.rng.random_range(0..2u32) == 0 {
                        StreamId::default()
                    } else {
                        self.id()
                    })
                } else {
                    ReadStart::New
                },
                noack: self.rng.random_range(0..10u32) == 0,
                now_ms,
            },
            57..67 => Command::XAck {
                key,
                group,
                ids: self.ids(),
            },
            67..70 => Command::XDel {
                key,
                ids: self.ids(),
            },
            70..78 => {
                let mut options = XClaimOptions::default();
                if self.rng.random_range(0..4u32) == 0 {
                    options.force = true;
                }
                if self.rng.random_range(0..5u32) == 0 {
                    options.retry_count = Some(self.rng.random_range(0..5u64));
                }
                if self.rng.random_range(0..5u32) == 0 {
                    options.time = Some(ClaimTime::IdleMs(5000));
                }
                if self.rng.random_range(0..8u32) == 0 {
                    options.last_id = Some(self.id());
                }
                Command::XClaim {
                    key,
                    group,
                    consumer,
                    min_idle_ms: self.min_idle(),
                    ids: self.ids(),
                    now_ms,
                    justid: self.rng.random_range(0..3u32) == 0,
                    options,
                }
            }
            78..86 => Command::XAutoClaim {
                key,
                group,
                consumer,
                min_idle_ms: self.min_idle(),
                start: if self.rng.random_range(0..2u32) == 0 {
                    StreamId::default()
                } else {
                    self.id()
                },
                count: self.rng.random_range(1..4u64),
                now_ms,
                justid: self.rng.random_range(0..3u32) == 0,
            },
            86..90 => Command::XPending {
                key,
                group,
                range: None,
                now_ms,
            },
            90..95 => {
                let (a, b) = (self.id(), self.id());
                Command::XPending {
                    key,
                    group,
                    range: Some(PendingRange {
                        min_idle_ms: self.min_idle(),
                        start: a.min(b),
                        end: if self.rng.random_range(0..2u32) == 0 {
                            StreamId {
                                ms: u64::MAX,
                                seq: u64::MAX,
                            }
                        } else {
                            a.max(b)
                        },
                        count: self.rng.random_range(1..6u64),
                        consumer: (self.rng.random_range(0..2u32) == 0).then_some(consumer),
                    }),
                    now_ms,
                }
            }
            95..98 => Command::XInfoGroups { key },
            _ => Command::XInfoConsumers { key, group, now_ms },
        }
    }
}

/// A Redis reply as the engine's reply type.
fn from_redis(v: Value) -> Reply {
    match v {
        Value::Simple(s) if s == "OK" => Reply::Ok,
        Value::Simple(s) => Reply::Bulk(s.into_bytes()),
        Value::Error(e) => Reply::Error(e),
        Value::Int(n) => Reply::Int(n),
        Value::Bulk(b) => Reply::Bulk(b),
        Value::Nil => Reply::Nil,
        Value::NilArray => Reply::NilArray,
        Value::Array(a) => Reply::Array(a.into_iter().map(from_redis).collect()),
    }
}

/// The reply with its time-dependent fields masked and the fields the model does not keep
/// dropped (see the module's comment).
fn masked(cmd: &Command, reply: Reply) -> Reply {
    let Reply::Array(items) = reply else {
        return reply;
    };
    let masked_idle = Reply::Int(-1);
    let items = match cmd {
        Command::XPending { range: Some(_), .. } => items
            .into_iter()
            .map(|item| match item {
                Reply::Array(mut f) if f.len() == 4 => {
                    f[2] = masked_idle.clone();
                    Reply::Array(f)
                }
                other => other,
            })
            .collect(),
        Command::XInfoConsumers { .. } | Command::XInfoGroups { .. } => items
            .into_iter()
            .map(|item| match item {
                Reply::Array(f) => Reply::Array(
                    f.chunks(2)
                        .filter(|p| {
                            !matches!(&p[0], Reply::Bulk(n) if n == b"entries-read" || n == b"lag")
                        })
                        .flat_map(|p| match &p[0] {
                            Reply::Bulk(n) if n == b"idle" => vec![p[0].clone(), masked_idle.clone()],
                            _ => p.to_vec(),
                        })
                        .collect(),
                ),
                other => other,
            })
            .collect(),
        _ => items,
    };
    Reply::Array(items)
}

fn run_seed(target: Target, seed: u64, commands: usize) {
    let tmp = tempfile::tempdir().unwrap();
    let server = resp_support::start(target, FsyncPolicy::No, Persistence::Aof, tmp.path());
    let mut client = server.connect().unwrap();
    let mut model = Model::new();
    let setup = Command::Set {
        key: b"str".to_vec(),
        value: b"x".to_vec(),
    };
    let mut gen_ = Gen {
        rng: SplitMix64::new(seed),
        next_ms: 0,
    };
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for i in 0..=commands {
        let now = now_ms();
        let cmd = if i == 0 {
            setup.clone()
        } else {
            gen_.command(now)
        };
        let want = masked(&cmd, model.apply(&cmd));
        let args = to_args(&cmd, AutoId::Star);
        let got = masked(&cmd, from_redis(client.call(&args).unwrap()));
        assert_eq!(
            got,
            want,
            "{target}, seed {seed}, command {i}: {:?}\nthe server (left) and the model (right) differ",
            args.iter()
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect::<Vec<_>>()
        );
        let name = String::from_utf8_lossy(&args[0]).into_owned();
        let kind = match &want {
            Reply::Error(_) => "error",
            Reply::NilArray | Reply::Nil => "nil",
            Reply::Array(a) if a.is_empty() => "empty",
            _ => "value",
        };
        *counts.entry(format!("{name} {kind}")).or_default() += 1;
    }
    // The state read back over RESP (groups, PELs, consumers; times dropped) is the model's.
    let got = readback::read_state(&mut client, &[]).unwrap();
    let want = compare::untimed(compare::from_model(&model));
    let c = compare::compare(&got, &want, 5);
    assert!(c.equal(), "{target}, seed {seed}: {}", c.describe());
    // The sequence exercised every command with a real answer, not only its errors.
    for name in [
        "XREADGROUP value",
        "XREADGROUP nil",
        "XACK value",
        "XCLAIM value",
        "XAUTOCLAIM value",
        "XPENDING value",
        "XINFO value",
        "XGROUP value",
        "XGROUP error",
    ] {
        assert!(
            counts.get(name).copied().unwrap_or(0) > 0,
            "seed {seed}: no '{name}' in {counts:?}"
        );
    }
}

#[test]
fn model_replies_equal_redis_server_replies() {
    resp_support::require(&["redis-server"]);
    for seed in [1, 2, 3] {
        run_seed(Target::Redis, seed, 3000);
    }
}

/// The same sequences through `durlab serve` (the engine's groups behind RESP).
#[test]
fn model_replies_equal_durlab_serve_replies() {
    for seed in [1, 2, 3] {
        run_seed(Target::DurlabServer, seed, 3000);
    }
}

/// The engine's keyspace after a seeded sequence run at the workload's own clock equals the
/// model's, delivery and seen times included; one pending entry dropped from either side is
/// a difference the comparison names (the check can fail).
#[test]
fn engine_groups_equal_the_model_and_a_dropped_delivery_differs() {
    let mut ks = durlab_engine::Keyspace::new();
    let mut model = Model::new();
    let mut gen_ = Gen {
        rng: SplitMix64::new(9),
        next_ms: 0,
    };
    let mut replies_differ = 0;
    for n in 1..=3000u64 {
        let cmd = gen_.command(1_767_225_600_000 + n);
        // Idle times agree here (one clock); XINFO GROUPS' entries-read and lag are dropped.
        let (a, b) = (ks.apply(&cmd), model.apply(&cmd));
        if masked(&cmd, a.clone()) != masked(&cmd, b.clone()) {
            replies_differ += 1;
            eprintln!("{cmd:?}: engine {a:?}, model {b:?}");
        }
    }
    assert_eq!(replies_differ, 0);
    let c = compare::compare_keyspace(&ks, &model, 5);
    assert!(c.equal(), "{}", c.describe());
    let pending: usize = model
        .map
        .values()
        .map(|e| match &e.value {
            durlab_harness::oracle::model::ModelValue::Stream { groups, .. } => {
                groups.values().map(|g| g.pel.len()).sum()
            }
            _ => 0,
        })
        .sum();
    assert!(pending > 0, "the sequence leaves entries pending");
    // Drop one delivery from the model's PEL: the states differ, and the difference names it.
    let mut dropped = model.clone();
    let g = dropped
        .map
        .values_mut()
        .find_map(|e| match &mut e.value {
            durlab_harness::oracle::model::ModelValue::Stream { groups, .. } => {
                groups.values_mut().find(|g| !g.pel.is_empty())
            }
            _ => None,
        })
        .unwrap();
    let first = *g.pel.keys().next().unwrap();
    g.pel.remove(&first);
    let c = compare::compare_keyspace(&ks, &dropped, 5);
    assert!(!c.equal());
    assert!(c.describe().contains("pending"), "{}", c.describe());
}
