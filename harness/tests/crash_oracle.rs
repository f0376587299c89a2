//! The one place where the oracle and the engine's keyspace meet: a differential test over
//! long random command sequences (replies and full states must agree), plus proof that the
//! comparison catches a planted difference.

use durlab_engine::keyspace::{StreamId, XAddId};
use durlab_engine::{Command, Keyspace};
use durlab_harness::oracle::compare::{self, CanonEntry};
use durlab_harness::oracle::model::ModelValue;
use durlab_harness::oracle::{self, Model};
use durlab_harness::workload::rng::SplitMix64;
use rand::RngExt;

/// A small universe so that keys collide across types, counters overflow, streams trim.
fn random_command(rng: &mut SplitMix64) -> Command {
    let key = format!("k{}", rng.random_range(0..12u32)).into_bytes();
    let small = |rng: &mut SplitMix64, p: &str, n: u32| {
        format!("{p}{}", rng.random_range(0..n)).into_bytes()
    };
    let score = |rng: &mut SplitMix64| match rng.random_range(0..8u32) {
        0 => -0.0,
        1 => 0.0,
        2 => f64::INFINITY,
        3 => f64::NEG_INFINITY,
        4 => f64::NAN,
        _ => f64::from(rng.random_range(-3..4i32)) / 2.0,
    };
    match rng.random_range(0..13u32) {
        0 => Command::Set {
            key,
            value: match rng.random_range(0..4u32) {
                0 => b"-0".to_vec(),
                1 => b"9223372036854775806".to_vec(),
                2 => b"007".to_vec(),
                _ => format!("{}", rng.random_range(-5..5i64)).into_bytes(),
            },
        },
        1 => Command::Get { key },
        2 => Command::Del { key },
        3 => Command::SetNx {
            key,
            value: small(rng, "v", 3),
        },
        4 => Command::IncrBy {
            key,
            delta: match rng.random_range(0..6u32) {
                0 => i64::MAX,
                1 => i64::MIN,
                _ => rng.random_range(-3..4i64),
            },
        },
        5 => Command::PExpireAt {
            key,
            at_ms: rng.random_range(0..5u64),
        },
        6 => Command::HSet {
            key,
            fields: (0..rng.random_range(0..4u32))
                .map(|_| (small(rng, "f", 4), small(rng, "v", 3)))
                .collect(),
        },
        7 => Command::HDel {
            key,
            fields: (0..rng.random_range(0..3u32))
                .map(|_| small(rng, "f", 4))
                .collect(),
        },
        8 => Command::ZAdd {
            key,
            members: (0..rng.random_range(0..4u32))
                .map(|_| (score(rng), small(rng, "m", 5)))
                .collect(),
        },
        9 => Command::ZRem {
            key,
            members: (0..rng.random_range(0..3u32))
                .map(|_| small(rng, "m", 5))
                .collect(),
        },
        10 => Command::ZPopMin {
            key,
            count: rng.random_range(0..4u64),
        },
        _ => Command::XAdd {
            key,
            id: match rng.random_range(0..4u32) {
                0 => XAddId::Explicit(StreamId {
                    ms: rng.random_range(0..3u64),
                    seq: match rng.random_range(0..3u32) {
                        0 => u64::MAX,
                        _ => rng.random_range(0..3u64),
                    },
                }),
                1 if rng.random_range(0..50u32) == 0 => XAddId::Explicit(StreamId {
                    ms: u64::MAX,
                    seq: u64::MAX,
                }),
                _ => XAddId::Auto,
            },
            fields: (0..rng.random_range(0..3u32))
                .map(|_| (small(rng, "f", 3), small(rng, "v", 3)))
                .collect(),
            maxlen: match rng.random_range(0..3u32) {
                0 => None,
                _ => Some(rng.random_range(0..3u64)),
            },
        },
    }
}

#[test]
fn oracle_matches_engine_keyspace_on_long_random_sequences() {
    for seed in 0..20u64 {
        let mut rng = SplitMix64::new(seed);
        let mut engine = Keyspace::new();
        let mut model = Model::new();
        for step in 0..5_000 {
            let cmd = random_command(&mut rng);
            let want = engine.apply(&cmd);
            let got = model.apply(&cmd);
            assert_eq!(got, want, "seed {seed} step {step}: reply to {cmd:?}");
            if step % 97 == 0 {
                let c = compare::compare(
                    &compare::from_engine(&engine),
                    &compare::from_model(&model),
                    5,
                );
                assert!(c.equal(), "seed {seed} step {step}: {}", c.describe());
                assert!(
                    compare::keyspace_equals(&engine, &model),
                    "seed {seed} step {step}"
                );
            }
        }
        let c = compare::compare(
            &compare::from_engine(&engine),
            &compare::from_model(&model),
            5,
        );
        assert!(c.equal(), "seed {seed}: {}", c.describe());
        assert_eq!(c.digest_engine, None, "equal states are not digested");
        assert_eq!(
            compare::digest(&compare::from_engine(&engine)),
            compare::digest(&compare::from_model(&model)),
            "seed {seed}"
        );
    }
}

/// The engine's keyspace and the model after the same `n` random commands.
fn random_states(seed: u64, n: usize) -> (Keyspace, Model) {
    let mut rng = SplitMix64::new(seed);
    let mut engine = Keyspace::new();
    let mut model = Model::new();
    for _ in 0..n {
        let cmd = random_command(&mut rng);
        engine.apply(&cmd);
        model.apply(&cmd);
    }
    (engine, model)
}

#[test]
fn comparison_catches_a_planted_difference() {
    let (engine, model) = random_states(99, 2_000);
    let good = compare::from_model(&model);
    assert!(compare::compare(&compare::from_engine(&engine), &good, 5).equal());

    // Plant: one changed value, one missing key, one extra key, one changed expiry.
    let mut planted = model.clone();
    let key = planted.map.keys().next().cloned().expect("some keys");
    planted.apply(&Command::Del { key: key.clone() });
    planted.apply(&Command::Set {
        key: b"planted".to_vec(),
        value: b"x".to_vec(),
    });
    let c = compare::compare(
        &compare::from_engine(&engine),
        &compare::from_model(&planted),
        5,
    );
    assert!(!c.equal());
    assert_ne!(c.digest_engine, c.digest_oracle);
    assert!(c.differing_keys >= 2, "{}", c.describe());
    let text = c.describe();
    assert!(
        text.contains("planted") && text.contains("missing"),
        "{text}"
    );

    let mut expiry = compare::from_model(&model);
    let (_, e): (_, &mut CanonEntry) = expiry.iter_mut().next().unwrap();
    e.expire_at_ms = Some(e.expire_at_ms.map_or(1, |t| t + 1));
    let c = compare::compare(&compare::from_engine(&engine), &expiry, 5);
    assert_eq!(c.differing_keys, 1, "{}", c.describe());
}

/// The direct comparison (no canonical copies) sees every planted difference the canonical
/// one sees: a changed value of each type, a changed expiry, a missing key, an extra key.
#[test]
fn direct_comparison_catches_every_planted_difference() {
    let (engine, model) = random_states(7, 3_000);
    let c = compare::compare_keyspace(&engine, &model, 5);
    assert!(c.equal() && c.digest_engine.is_none(), "{}", c.describe());

    let mut plants: Vec<Model> = Vec::new();
    for (key, entry) in &model.map {
        let mut m = model.clone();
        let e = m.map.get_mut(key).unwrap();
        match &mut e.value {
            ModelValue::Str(v) => v.push(b'!'),
            ModelValue::Hash(h) => {
                let v = h.values_mut().next().unwrap();
                v.push(b'!');
            }
            ModelValue::ZSet(z) => {
                let s = z.values_mut().next().unwrap();
                *s = if *s == 0.0 { 1.0 } else { -*s };
            }
            ModelValue::Stream {
                entries, last_id, ..
            } => match entries.last_mut() {
                Some((_, pairs)) => std::sync::Arc::make_mut(pairs)[0].1.push(b'!'),
                None => last_id.seq += 1,
            },
        }
        plants.push(m);
        let mut m = model.clone();
        m.map.get_mut(key).unwrap().expire_at_ms = Some(entry.expire_at_ms.map_or(1, |t| t + 1));
        plants.push(m);
        let mut m = model.clone();
        m.map.remove(key);
        plants.push(m);
    }
    let mut m = model.clone();
    m.apply(&Command::Set {
        key: b"planted".to_vec(),
        value: b"x".to_vec(),
    });
    plants.push(m);
    assert!(plants.len() > 20, "the random sequence leaves enough keys");
    for planted in &plants {
        assert!(!compare::keyspace_equals(&engine, planted));
        let c = compare::compare_keyspace(&engine, planted, 5);
        assert!(c.differing_keys >= 1, "{}", c.describe());
        assert_ne!(c.digest_engine, c.digest_oracle);
    }
}

/// A cursor moved forward and back at random gives exactly the model of a fresh replay.
#[test]
fn oracle_cursor_equals_a_fresh_replay_at_any_lsn() {
    use durlab_harness::oracle::cursor::{self, Cursor, Oracle};
    use durlab_harness::scenario::{self, locate};
    use durlab_harness::workload::Workload;
    let path = locate::find_scenario("event-stream").expect("scenario exists");
    let w = Workload::new(&scenario::load(&path).expect("scenario loads").workload);
    // Steps back through checkpoints only, through a short undo log (and checkpoints beyond
    // it), through undo alone, and through an undo log that streams grown past 4 entries end.
    for (undo_lsns, max_elements) in [
        (0, cursor::UNDO_MAX_ELEMENTS),
        (16, cursor::UNDO_MAX_ELEMENTS),
        (cursor::UNDO_LSNS, cursor::UNDO_MAX_ELEMENTS),
        (cursor::UNDO_LSNS, 4),
    ] {
        let mut cursor = Cursor::with_limits(&w, 8, undo_lsns).with_undo_max_elements(max_elements);
        let mut rng = SplitMix64::new(5);
        // Far enough for the checkpoints to be thinned out several times.
        let far = 8 * 8 * cursor::MAX_CHECKPOINTS as u64 + 3;
        let mut targets: Vec<u64> = vec![far, 0, 1, far - 1, 8, 7, 9, 64, 63, 70, 60];
        targets.extend((0..40).map(|_| rng.random_range(0..=far)));
        targets.extend((0..40).map(|i| 200 + i * 7 - rng.random_range(0..=20)));
        for r in targets {
            let got = compare::from_model(cursor.seek(&w, r));
            assert_eq!(
                got,
                compare::from_model(&oracle::expected(&w, r)),
                "at LSN {r}, undo log of {undo_lsns}, entries of {max_elements} elements"
            );
            assert_eq!(cursor.lsn(), r);
        }
    }
    let o = Oracle::new(w.clone());
    let a = o.with_model(900, compare::from_model);
    let b = o.with_model(300, compare::from_model);
    assert_eq!(a, compare::from_model(&oracle::expected(&w, 900)));
    assert_eq!(b, compare::from_model(&oracle::expected(&w, 300)));
}

#[test]
fn replaying_the_seeded_workload_matches_the_engine() {
    use durlab_harness::scenario::{self, locate};
    use durlab_harness::workload::Workload;
    // Every command kind of the repository's scenarios, replayed in both implementations.
    for name in [
        "quickstart",
        "event-stream",
        "build-queue",
        "crawler-counters",
        "feature-cache",
    ] {
        let path = locate::find_scenario(name).expect("scenario exists");
        let s = scenario::load(&path).expect("scenario loads");
        let w = Workload::new(&s.workload);
        let mut engine = Keyspace::new();
        for n in 1..=3_000 {
            engine.apply(&w.command(n));
        }
        let model = oracle::expected(&w, 3_000);
        let c = compare::compare(
            &compare::from_engine(&engine),
            &compare::from_model(&model),
            5,
        );
        assert!(c.equal(), "{name}: {}", c.describe());
    }
}

/// A workload with SET options (NX/XX, KEEPTTL/PX, GET) and relative expiries: the oracle
/// replies and ends as the engine does, and a recovered state whose expiry was lost or moved
/// is judged different.
#[test]
fn set_options_and_expiries_are_judged() {
    let toml = r#"
        name = "set_options"
        question = "Are SET options and expiries judged?"
        [workload]
        seed = 5
        writers = 1
        commands = 4000
        keys = { count = 40, distribution = "uniform" }
        values = { distribution = "fixed", bytes = 4 }
        [[workload.ops]]
        command = "set"
        weight = 5
        set_options = true
        ttl_ms = 1000
        [[workload.ops]]
        command = "pexpireat"
        weight = 1
        [[workload.ops]]
        command = "incrby"
        weight = 1
    "#;
    let spec = durlab_harness::scenario::parse_str(std::path::Path::new("set_options.toml"), toml)
        .unwrap();
    let w = durlab_harness::workload::Workload::new(&spec.workload);
    let mut engine = Keyspace::new();
    let mut model = Model::new();
    let mut with_options = 0;
    for n in 1..=4000 {
        let cmd = w.command(n);
        with_options += usize::from(matches!(cmd, Command::SetOpts { .. }));
        assert_eq!(
            engine.apply(&cmd),
            model.apply(&cmd),
            "command {n}: {cmd:?}"
        );
    }
    assert!(with_options > 2000, "{with_options} SETs with options");
    assert!(compare::keyspace_equals(&engine, &model));
    let expiring: Vec<Vec<u8>> = model
        .map
        .iter()
        .filter(|(_, e)| e.expire_at_ms.is_some())
        .map(|(k, _)| k.clone())
        .collect();
    assert!(!expiring.is_empty(), "some keys keep an expiry");
    for key in &expiring {
        for planted in [None, model.map[key].expire_at_ms.map(|t| t + 1)] {
            let mut m = model.clone();
            m.map.get_mut(key).unwrap().expire_at_ms = planted;
            assert!(!compare::keyspace_equals(&engine, &m), "{planted:?}");
            assert_eq!(compare::compare_keyspace(&engine, &m, 5).differing_keys, 1);
        }
    }
}
