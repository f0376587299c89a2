//! Keyspace semantics across types: wrong types, rebuilding from entries, transactions, and random command sequences.

mod keyspace_support;

use durlab_engine::keyspace::{Command, Entry, Hash, Keyspace, Reply, Stream, Value, ZSet, msg};
use keyspace_support::*;
use proptest::prelude::*;

// ---------- wrong types ----------

#[test]
fn wrong_type_for_every_pairing() {
    // (type, command that creates it)
    let holders = [
        ("string", set("k", "1")),
        ("hash", hset("k", &[("f", "v")])),
        ("zset", zadd("k", &[(1.0, "m")])),
        ("stream", xadd("k", None, &[("f", "v")], None)),
    ];
    // (the type a command needs, the command)
    let users = [
        ("string", get("k")),
        ("string", incrby("k", 1)),
        ("hash", hset("k", &[("g", "w")])),
        ("hash", hdel("k", &["f"])),
        ("zset", zadd("k", &[(2.0, "n")])),
        ("zset", zrem("k", &["m"])),
        ("zset", zpopmin("k", 1)),
        ("stream", xadd("k", None, &[("g", "w")], None)),
        ("stream", xadd("k", Some((9, 9)), &[("g", "w")], Some(0))),
    ];
    for (held, create) in &holders {
        for (needed, cmd) in &users {
            let mut ks = Keyspace::new();
            run(&mut ks, create.clone());
            let reply = run(&mut ks, cmd.clone());
            if held == needed {
                assert!(
                    !matches!(reply, Reply::Error(_)),
                    "{cmd:?} on a {held}: {reply:?}"
                );
            } else {
                assert_eq!(reply, err(msg::WRONGTYPE), "{cmd:?} on a {held}");
            }
        }
    }
    assert_eq!(
        msg::WRONGTYPE,
        "WRONGTYPE Operation against a key holding the wrong kind of value"
    );
}

#[test]
fn type_agnostic_commands_work_on_every_type() {
    for create in [
        set("k", "v"),
        hset("k", &[("f", "v")]),
        zadd("k", &[(1.0, "m")]),
        xadd("k", None, &[("f", "v")], None),
    ] {
        let mut ks = Keyspace::new();
        run(&mut ks, create.clone());
        assert_eq!(run(&mut ks, setnx("k", "x")), Reply::Int(0));
        assert_eq!(run(&mut ks, pexpireat("k", 3)), Reply::Int(1));
        assert_eq!(run(&mut ks, del("k")), Reply::Int(1));
        run(&mut ks, create);
        assert_eq!(run(&mut ks, set("k", "x")), Reply::Ok);
    }
}

// ---------- read access and rebuilding ----------

#[test]
fn rebuild_from_entries() {
    let mut ks = Keyspace::new();
    run(&mut ks, set("s", "v"));
    run(&mut ks, pexpireat("s", 42));
    run(&mut ks, hset("h", &[("f", "v"), ("g", "w")]));
    run(&mut ks, zadd("z", &[(1.0, "a"), (-2.0, "b")]));
    run(&mut ks, xadd("x", Some((1, 1)), &[("f", "v")], None));
    run(&mut ks, xadd("x", None, &[("f", "v")], Some(1)));

    // Rebuild every value through the public constructors, as a snapshot loader would.
    let mut copy = Keyspace::with_capacity(ks.len());
    for (key, entry) in ks.iter() {
        let value = match &entry.value {
            Value::Str(v) => Value::Str(v.clone()),
            Value::Hash(h) => {
                Value::Hash(h.iter().map(|(f, v)| (f.to_vec(), v.to_vec())).collect())
            }
            Value::ZSet(z) => {
                Value::ZSet(ZSet::try_from_pairs(z.iter().map(|(s, m)| (s, m.to_vec()))).unwrap())
            }
            Value::Stream(s) => {
                let mut copy =
                    Stream::from_parts(s.last_id(), s.iter().map(|(i, f)| (i, f.to_vec())))
                        .unwrap();
                copy.set_counters(s.entries_added(), s.max_deleted_id())
                    .unwrap();
                Value::Stream(copy)
            }
        };
        assert!(
            copy.insert_entry(
                key.to_vec(),
                Entry {
                    value,
                    expire_at_ms: entry.expire_at_ms
                }
            )
            .is_none()
        );
    }
    assert_eq!(state(&copy), state(&ks));
    copy.assert_invariants();
    assert_eq!(stream_of(&copy, "x").last_id(), id(1, 2));
    assert_eq!(copy.get_entry(b"s").unwrap().expire_at_ms, Some(42));
}

#[test]
fn insert_entry_of_empty_collection_removes_key() {
    let mut ks = Keyspace::new();
    run(&mut ks, set("h", "v"));
    assert!(
        ks.insert_entry(b("h"), Entry::new(Value::Hash(Hash::new())))
            .is_some()
    );
    assert!(ks.get_entry(b"h").is_none());
    assert!(
        ks.insert_entry(b("z"), Entry::new(Value::ZSet(ZSet::new())))
            .is_none()
    );
    assert!(ks.is_empty());
    // An empty stream is a real value.
    ks.insert_entry(b("x"), Entry::new(Value::Stream(Stream::new())));
    assert_eq!(ks.len(), 1);
    ks.assert_invariants();
}

// ---------- transactions ----------

#[test]
fn multi_applies_in_order_and_errors_do_not_stop_it() {
    let mut ks = Keyspace::new();
    run(&mut ks, set("s", "x"));
    let reply = run(
        &mut ks,
        multi(vec![
            set("a", "1"),
            incrby("a", 2),
            get("a"),
            // Errors at run time: not an integer, WRONGTYPE; malformed: NaN, no fields.
            incrby("s", 1),
            hset("s", &[("f", "v")]),
            zadd("z", &[(f64::NAN, "m")]),
            hset("h", &[]),
            del("s"),
            get("s"),
        ]),
    );
    assert_eq!(
        reply,
        Reply::Array(vec![
            Reply::Ok,
            Reply::Int(3),
            bulk("3"),
            err(msg::NOT_AN_INTEGER),
            err(msg::WRONGTYPE),
            err(msg::NOT_A_FLOAT),
            err(msg::ARITY_HSET),
            Reply::Int(1),
            Reply::Nil,
        ])
    );
    assert_eq!(str_value(&ks, "a"), Some(b("3")));
    assert_eq!(str_value(&ks, "s"), None);
    assert!(ks.get_entry(b"z").is_none() && ks.get_entry(b"h").is_none());
    // Reads only: not a write. A write inside: a write.
    assert!(!multi(vec![get("a")]).is_write());
    assert!(!multi(vec![]).is_write());
    assert!(multi(vec![get("a"), del("a")]).is_write());
    assert_eq!(multi(vec![set("a", "1")]).key(), None);
    assert_eq!(set("a", "1").key(), Some(&b"a"[..]));
    // Nesting is refused as a whole: nothing runs, not even the commands before it.
    let nested = multi(vec![set("a", "9"), multi(vec![set("b", "1")])]);
    assert_eq!(nested.arg_error(), Some(msg::MULTI_NESTED));
    assert_eq!(run(&mut ks, nested), err(msg::MULTI_NESTED));
    assert_eq!(str_value(&ks, "a"), Some(b("3")));
    assert!(ks.get_entry(b"b").is_none());
    assert_eq!(run(&mut ks, multi(vec![])), Reply::Array(vec![]));
}

proptest! {
    /// A transaction changes the state exactly as its sub-commands one by one, and replies
    /// with their replies; `apply` and `apply_owned` agree on it (checked inside `run`).
    #[test]
    fn prop_multi_is_its_commands_in_order(
        before in prop::collection::vec(state_command(), 0..10),
        cmds in prop::collection::vec(state_command(), 0..8),
    ) {
        let mut ks = Keyspace::new();
        for cmd in before {
            ks.apply_owned(cmd);
        }
        let mut one_by_one = ks.clone();
        let replies: Vec<Reply> = cmds.iter().map(|c| one_by_one.apply(c)).collect();
        let reply = run(&mut ks, Command::Multi { cmds });
        prop_assert_eq!(reply, Reply::Array(replies));
        prop_assert_eq!(state(&ks), state(&one_by_one));
    }

    /// Random command sequences: `apply` and `apply_owned` agree, errors change nothing,
    /// invariants hold (all checked inside `run`), and a replay from decoded payloads reaches
    /// the same state.
    #[test]
    fn prop_command_sequences(cmds in prop::collection::vec(state_command(), 0..60)) {
        let mut ks = Keyspace::new();
        let mut replayed = Keyspace::new();
        for cmd in cmds {
            if cmd.arg_error().is_none() {
                let decoded = Command::decode(&encode(&cmd)).unwrap();
                replayed.apply_owned(decoded);
            }
            let reply = run(&mut ks, cmd.clone());
            if let Some(text) = cmd.arg_error() {
                prop_assert_eq!(reply, err(text));
            }
        }
        prop_assert_eq!(state(&replayed), state(&ks));
    }
}

#[test]
fn flushall_removes_every_key() {
    let mut ks = Keyspace::new();
    run(&mut ks, set("s", "v"));
    run(&mut ks, hset("h", &[("f", "v")]));
    run(&mut ks, xadd("x", None, &[("f", "v")], None));
    assert_eq!(run(&mut ks, Command::FlushAll), Reply::Ok);
    assert!(ks.is_empty());
    assert_eq!(run(&mut ks, Command::FlushAll), Reply::Ok);
    assert!(Command::FlushAll.is_write());
    assert_eq!(Command::FlushAll.key(), None);
}
