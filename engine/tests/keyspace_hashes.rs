//! Keyspace semantics of hashes: HSET, HDEL.

mod keyspace_support;

use durlab_engine::keyspace::{Keyspace, Reply, Value, msg};
use keyspace_support::*;

// ---------- hashes ----------

#[test]
fn hset_and_hdel() {
    let mut ks = Keyspace::new();
    assert_eq!(
        run(&mut ks, hset("h", &[("a", "1"), ("b", "2")])),
        Reply::Int(2)
    );
    assert_eq!(
        run(&mut ks, hset("h", &[("a", "9"), ("c", "3")])),
        Reply::Int(1)
    );
    // The same field twice counts once and the last value wins.
    assert_eq!(
        run(&mut ks, hset("h", &[("d", "1"), ("d", "2")])),
        Reply::Int(1)
    );
    let Value::Hash(h) = &ks.get_entry(b"h").unwrap().value else {
        panic!()
    };
    let fields: Vec<_> = h.iter().map(|(f, v)| (f.to_vec(), v.to_vec())).collect();
    assert_eq!(
        fields,
        vec![
            (b("a"), b("9")),
            (b("b"), b("2")),
            (b("c"), b("3")),
            (b("d"), b("2"))
        ]
    );
    assert_eq!(h.get(b"a"), Some(&b"9"[..]));
    assert_eq!(run(&mut ks, hdel("h", &["a", "a", "zz"])), Reply::Int(1));
    assert_eq!(run(&mut ks, hdel("missing", &["a"])), Reply::Int(0));
    assert_eq!(run(&mut ks, hdel("h", &["b", "c"])), Reply::Int(2));
    assert!(ks.get_entry(b"h").is_some());
    assert_eq!(run(&mut ks, hdel("h", &["d"])), Reply::Int(1));
    assert!(ks.get_entry(b"h").is_none(), "an empty hash is deleted");
}

#[test]
fn hash_arity_errors() {
    let mut ks = Keyspace::new();
    assert_eq!(run(&mut ks, hset("h", &[])), err(msg::ARITY_HSET));
    assert!(ks.is_empty());
    assert_eq!(run(&mut ks, hdel("h", &[])), err(msg::ARITY_HDEL));
    run(&mut ks, hset("h", &[("a", "1")]));
    assert_eq!(run(&mut ks, hdel("h", &[])), err(msg::ARITY_HDEL));
    assert_eq!(run(&mut ks, hset("h", &[])), err(msg::ARITY_HSET));
    assert!(msg::ARITY_HSET.starts_with("ERR wrong number of arguments"));
    assert!(msg::ARITY_HDEL.starts_with("ERR wrong number of arguments"));
}

#[test]
fn hincrby_counts_and_refuses_non_integers() {
    let mut ks = Keyspace::new();
    assert_eq!(run(&mut ks, hincrby("h", "n", 5)), Reply::Int(5));
    assert_eq!(run(&mut ks, hincrby("h", "n", -7)), Reply::Int(-2));
    run(
        &mut ks,
        hset(
            "h",
            &[("s", "x"), ("z", "01"), ("max", "9223372036854775807")],
        ),
    );
    assert_eq!(
        run(&mut ks, hincrby("h", "s", 1)),
        err(msg::HASH_NOT_AN_INTEGER)
    );
    assert_eq!(
        run(&mut ks, hincrby("h", "z", 1)),
        err(msg::HASH_NOT_AN_INTEGER)
    );
    assert_eq!(
        run(&mut ks, hincrby("h", "max", 1)),
        err(msg::INCR_OVERFLOW)
    );
    assert_eq!(run(&mut ks, hincrby("h", "max", 0)), Reply::Int(i64::MAX));
    run(&mut ks, set("s", "v"));
    assert_eq!(run(&mut ks, hincrby("s", "f", 1)), err(msg::WRONGTYPE));
    assert_eq!(msg::HASH_NOT_AN_INTEGER, "ERR hash value is not an integer");
}
