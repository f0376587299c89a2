//! Keyspace semantics of strings: SET, GET, DEL, SETNX, INCRBY, PEXPIREAT.

mod keyspace_support;

use durlab_engine::keyspace::{Keyspace, Reply, Value, msg};
use keyspace_support::*;

// ---------- strings ----------

#[test]
fn get_set_del() {
    let mut ks = Keyspace::new();
    assert_eq!(run(&mut ks, get("k")), Reply::Nil);
    assert_eq!(run(&mut ks, set("k", "v1")), Reply::Ok);
    assert_eq!(run(&mut ks, get("k")), bulk("v1"));
    assert_eq!(run(&mut ks, set("k", "v2")), Reply::Ok);
    assert_eq!(run(&mut ks, get("k")), bulk("v2"));
    assert_eq!(run(&mut ks, set("e", "")), Reply::Ok);
    assert_eq!(run(&mut ks, get("e")), bulk(""));
    assert_eq!(ks.len(), 2);
    assert_eq!(run(&mut ks, del("k")), Reply::Int(1));
    assert_eq!(run(&mut ks, del("k")), Reply::Int(0));
    assert_eq!(run(&mut ks, get("k")), Reply::Nil);
    assert_eq!(ks.len(), 1);
}

#[test]
fn set_overwrites_any_type_and_clears_expiry() {
    let mut ks = Keyspace::new();
    run(&mut ks, hset("h", &[("f", "v")]));
    run(&mut ks, zadd("z", &[(1.0, "m")]));
    run(&mut ks, xadd("x", None, &[("f", "v")], None));
    for key in ["h", "z", "x"] {
        assert_eq!(run(&mut ks, pexpireat(key, 99)), Reply::Int(1));
        assert_eq!(run(&mut ks, set(key, "s")), Reply::Ok);
        assert_eq!(run(&mut ks, get(key)), bulk("s"));
        assert_eq!(expiry(&ks, key), None);
    }
    run(&mut ks, pexpireat("h", 5));
    run(&mut ks, set("h", "t"));
    assert_eq!(expiry(&ks, "h"), None);
}

#[test]
fn setnx_sets_only_missing_keys() {
    let mut ks = Keyspace::new();
    assert_eq!(run(&mut ks, setnx("k", "a")), Reply::Int(1));
    assert_eq!(run(&mut ks, setnx("k", "b")), Reply::Int(0));
    assert_eq!(run(&mut ks, get("k")), bulk("a"));
    run(&mut ks, hset("h", &[("f", "v")]));
    assert_eq!(run(&mut ks, setnx("h", "b")), Reply::Int(0));
    assert!(matches!(ks.get_entry(b"h").unwrap().value, Value::Hash(_)));
}

#[test]
fn del_removes_every_type() {
    let mut ks = Keyspace::new();
    run(&mut ks, set("s", "v"));
    run(&mut ks, hset("h", &[("f", "v")]));
    run(&mut ks, zadd("z", &[(1.0, "m")]));
    run(&mut ks, xadd("x", None, &[("f", "v")], None));
    for key in ["s", "h", "z", "x"] {
        assert_eq!(run(&mut ks, del(key)), Reply::Int(1));
        assert_eq!(run(&mut ks, del(key)), Reply::Int(0));
    }
    assert!(ks.is_empty());
}

// ---------- INCRBY ----------

#[test]
fn incrby_counts_from_zero_and_keeps_expiry() {
    let mut ks = Keyspace::new();
    assert_eq!(run(&mut ks, incrby("n", 5)), Reply::Int(5));
    assert_eq!(run(&mut ks, incrby("n", -7)), Reply::Int(-2));
    assert_eq!(run(&mut ks, get("n")), bulk("-2"));
    run(&mut ks, pexpireat("n", 1234));
    assert_eq!(run(&mut ks, incrby("n", 2)), Reply::Int(0));
    assert_eq!(str_value(&ks, "n"), Some(b("0")));
    assert_eq!(expiry(&ks, "n"), Some(1234));
    run(&mut ks, set("m", "10"));
    assert_eq!(run(&mut ks, incrby("m", 0)), Reply::Int(10));
    assert_eq!(run(&mut ks, incrby("neg", i64::MIN)), Reply::Int(i64::MIN));
    assert_eq!(run(&mut ks, get("neg")), bulk("-9223372036854775808"));
}

#[test]
fn incrby_rejects_non_integers() {
    let mut ks = Keyspace::new();
    for bad in [
        "",
        "abc",
        "1.5",
        " 1",
        "1 ",
        "+1",
        "01",
        "-0",
        "-",
        "1e3",
        "9223372036854775808",
        "-9223372036854775809",
        "0x10",
    ] {
        run(&mut ks, set("k", bad));
        assert_eq!(
            run(&mut ks, incrby("k", 1)),
            err(msg::NOT_AN_INTEGER),
            "{bad:?}"
        );
        assert_eq!(str_value(&ks, "k"), Some(b(bad)));
    }
    assert_eq!(
        msg::NOT_AN_INTEGER,
        "ERR value is not an integer or out of range"
    );
}

#[test]
fn incrby_overflow_is_an_error() {
    let mut ks = Keyspace::new();
    run(&mut ks, set("k", &i64::MAX.to_string()));
    assert_eq!(run(&mut ks, incrby("k", 1)), err(msg::INCR_OVERFLOW));
    assert_eq!(str_value(&ks, "k"), Some(i64::MAX.to_string().into_bytes()));
    run(&mut ks, set("k", &i64::MIN.to_string()));
    assert_eq!(run(&mut ks, incrby("k", -1)), err(msg::INCR_OVERFLOW));
    run(&mut ks, set("k", "-1"));
    assert_eq!(run(&mut ks, incrby("k", i64::MIN)), err(msg::INCR_OVERFLOW));
    assert_eq!(
        msg::INCR_OVERFLOW,
        "ERR increment or decrement would overflow"
    );
}

// ---------- PEXPIREAT ----------

#[test]
fn pexpireat_is_metadata_only() {
    let mut ks = Keyspace::new();
    assert_eq!(run(&mut ks, pexpireat("k", 1)), Reply::Int(0));
    assert!(ks.is_empty());
    run(&mut ks, set("k", "v"));
    assert_eq!(run(&mut ks, pexpireat("k", 1)), Reply::Int(1));
    assert_eq!(expiry(&ks, "k"), Some(1));
    // Nothing ever expires: the key stays readable.
    assert_eq!(run(&mut ks, get("k")), bulk("v"));
    assert_eq!(run(&mut ks, pexpireat("k", u64::MAX)), Reply::Int(1));
    assert_eq!(expiry(&ks, "k"), Some(u64::MAX));
    // Works on every type; collection writes keep it.
    run(&mut ks, hset("h", &[("f", "v")]));
    assert_eq!(run(&mut ks, pexpireat("h", 7)), Reply::Int(1));
    run(&mut ks, hset("h", &[("g", "v")]));
    assert_eq!(expiry(&ks, "h"), Some(7));
    run(&mut ks, zadd("z", &[(1.0, "a"), (2.0, "b")]));
    run(&mut ks, pexpireat("z", 8));
    run(&mut ks, zpopmin("z", 1));
    assert_eq!(expiry(&ks, "z"), Some(8));
    run(&mut ks, xadd("x", None, &[("f", "v")], None));
    run(&mut ks, pexpireat("x", 9));
    run(&mut ks, xadd("x", None, &[("f", "v")], Some(1)));
    assert_eq!(expiry(&ks, "x"), Some(9));
    // Deleted with the key: a re-created key has none.
    run(&mut ks, hdel("h", &["f", "g"]));
    run(&mut ks, hset("h", &[("f", "v")]));
    assert_eq!(expiry(&ks, "h"), None);
}

// ---------- SET with options, PERSIST ----------

#[test]
fn set_conditions_and_get() {
    use durlab_engine::keyspace::{SetCond::*, SetTtl::*};
    let mut ks = Keyspace::new();
    assert_eq!(
        run(&mut ks, set_opts("k", "1", Xx, Clear, false)),
        Reply::Nil
    );
    assert_eq!(
        run(&mut ks, set_opts("k", "1", Xx, Clear, true)),
        Reply::Nil
    );
    assert!(ks.is_empty(), "XX on a missing key sets nothing");
    assert_eq!(
        run(&mut ks, set_opts("k", "1", Nx, Clear, false)),
        Reply::Ok
    );
    assert_eq!(
        run(&mut ks, set_opts("k", "2", Nx, Clear, false)),
        Reply::Nil
    );
    assert_eq!(run(&mut ks, set_opts("k", "2", Nx, Clear, true)), bulk("1"));
    assert_eq!(
        str_value(&ks, "k"),
        Some(b("1")),
        "NX on an existing key sets nothing"
    );
    assert_eq!(run(&mut ks, set_opts("k", "3", Xx, Clear, true)), bulk("1"));
    assert_eq!(
        run(&mut ks, set_opts("k", "4", Always, Clear, false)),
        Reply::Ok
    );
    assert_eq!(str_value(&ks, "k"), Some(b("4")));
    assert_eq!(
        run(&mut ks, set_opts("new", "v", Always, Clear, true)),
        Reply::Nil
    );
    // GET on another type: WRONGTYPE and no change, whatever the condition.
    run(&mut ks, hset("h", &[("f", "v")]));
    for cond in [Always, Nx, Xx] {
        assert_eq!(
            run(&mut ks, set_opts("h", "v", cond, Clear, true)),
            err(msg::WRONGTYPE)
        );
    }
    // Without GET any type is overwritten.
    assert_eq!(
        run(&mut ks, set_opts("h", "v", Xx, Clear, false)),
        Reply::Ok
    );
    assert_eq!(str_value(&ks, "h"), Some(b("v")));
}

#[test]
fn set_expiry_options() {
    use durlab_engine::keyspace::{SetCond::*, SetTtl::*};
    let mut ks = Keyspace::new();
    run(&mut ks, set_opts("k", "v", Always, At(500), false));
    assert_eq!(expiry(&ks, "k"), Some(500));
    run(&mut ks, set_opts("k", "w", Always, Keep, false));
    assert_eq!(expiry(&ks, "k"), Some(500), "KEEPTTL keeps it");
    run(&mut ks, set_opts("k", "x", Always, Clear, false));
    assert_eq!(expiry(&ks, "k"), None, "no option clears it");
    run(&mut ks, set_opts("k", "x", Always, At(9), false));
    // A failed condition leaves the expiry alone too.
    run(&mut ks, set_opts("k", "y", Nx, At(1), false));
    assert_eq!(expiry(&ks, "k"), Some(9));
    run(&mut ks, set_opts("fresh", "v", Always, Keep, false));
    assert_eq!(expiry(&ks, "fresh"), None, "KEEPTTL of a new key: none");
}

#[test]
fn persist_removes_expiry() {
    let mut ks = Keyspace::new();
    assert_eq!(run(&mut ks, persist("k")), Reply::Int(0));
    run(&mut ks, set("k", "v"));
    assert_eq!(run(&mut ks, persist("k")), Reply::Int(0));
    run(&mut ks, pexpireat("k", 7));
    assert_eq!(run(&mut ks, persist("k")), Reply::Int(1));
    assert_eq!(expiry(&ks, "k"), None);
    assert_eq!(str_value(&ks, "k"), Some(b("v")));
}

#[test]
fn live_entries_and_expired_keys_follow_redis_rule() {
    let mut ks = Keyspace::new();
    run(&mut ks, set("a", "v"));
    run(&mut ks, set("b", "v"));
    run(&mut ks, pexpireat("b", 100));
    assert!(ks.live_entry(b"a", u64::MAX).is_some());
    assert!(
        ks.live_entry(b"b", 100).is_some(),
        "at its time it still exists"
    );
    assert!(ks.live_entry(b"b", 101).is_none());
    assert!(ks.live_entry(b"zz", 0).is_none());
    assert!(ks.expired_keys(&get("b"), 100).is_empty());
    assert_eq!(ks.expired_keys(&get("b"), 101), vec![b("b")]);
    let tx = durlab_engine::keyspace::Command::Multi {
        cmds: vec![get("a"), del("b"), get("b")],
    };
    assert_eq!(ks.expired_keys(&tx, 101), vec![b("b")], "each key once");
    assert!(
        ks.expired_keys(&durlab_engine::keyspace::Command::FlushAll, 101)
            .is_empty()
    );
}
