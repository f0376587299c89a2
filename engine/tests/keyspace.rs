//! Keyspace semantics and the command payload codec.

use durlab_engine::keyspace::{
    Command, DecodeError, Entry, Hash, Keyspace, Reply, Stream, StreamId, Value, XAddId, ZSet, msg,
};
use proptest::prelude::*;

// ---------- helpers ----------

fn b(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

fn err(text: &str) -> Reply {
    Reply::Error(text.to_owned())
}

fn bulk(s: &str) -> Reply {
    Reply::Bulk(b(s))
}

fn set(k: &str, v: &str) -> Command {
    Command::Set {
        key: b(k),
        value: b(v),
    }
}

fn get(k: &str) -> Command {
    Command::Get { key: b(k) }
}

fn del(k: &str) -> Command {
    Command::Del { key: b(k) }
}

fn setnx(k: &str, v: &str) -> Command {
    Command::SetNx {
        key: b(k),
        value: b(v),
    }
}

fn incrby(k: &str, delta: i64) -> Command {
    Command::IncrBy { key: b(k), delta }
}

fn pexpireat(k: &str, at_ms: u64) -> Command {
    Command::PExpireAt { key: b(k), at_ms }
}

fn hset(k: &str, fields: &[(&str, &str)]) -> Command {
    Command::HSet {
        key: b(k),
        fields: fields.iter().map(|(f, v)| (b(f), b(v))).collect(),
    }
}

fn hdel(k: &str, fields: &[&str]) -> Command {
    Command::HDel {
        key: b(k),
        fields: fields.iter().map(|f| b(f)).collect(),
    }
}

fn zadd(k: &str, members: &[(f64, &str)]) -> Command {
    Command::ZAdd {
        key: b(k),
        members: members.iter().map(|(s, m)| (*s, b(m))).collect(),
    }
}

fn zrem(k: &str, members: &[&str]) -> Command {
    Command::ZRem {
        key: b(k),
        members: members.iter().map(|m| b(m)).collect(),
    }
}

fn zpopmin(k: &str, count: u64) -> Command {
    Command::ZPopMin { key: b(k), count }
}

fn id(ms: u64, seq: u64) -> StreamId {
    StreamId { ms, seq }
}

fn xadd(k: &str, xid: Option<(u64, u64)>, fields: &[(&str, &str)], maxlen: Option<u64>) -> Command {
    Command::XAdd {
        key: b(k),
        id: xid.map_or(XAddId::Auto, |(ms, seq)| XAddId::Explicit(id(ms, seq))),
        fields: fields.iter().map(|(f, v)| (b(f), b(v))).collect(),
        maxlen,
    }
}

/// The whole state in key order, for equality checks.
fn state(ks: &Keyspace) -> Vec<(Vec<u8>, Entry)> {
    let mut all: Vec<_> = ks.iter().map(|(k, e)| (k.to_vec(), e.clone())).collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    all
}

/// Applies `cmd` through both entry points on copies, checks they agree, that an error reply
/// changed nothing and that invariants hold; keeps the result.
fn run(ks: &mut Keyspace, cmd: Command) -> Reply {
    let before = state(ks);
    let mut owned = ks.clone();
    let reply = ks.apply(&cmd);
    let owned_reply = owned.apply_owned(cmd);
    assert_eq!(reply, owned_reply, "apply and apply_owned disagree");
    assert_eq!(
        state(ks),
        state(&owned),
        "apply and apply_owned leave different states"
    );
    if matches!(reply, Reply::Error(_)) {
        assert_eq!(state(ks), before, "an error reply changed the state");
    }
    ks.assert_invariants();
    reply
}

fn str_value(ks: &Keyspace, key: &str) -> Option<Vec<u8>> {
    match &ks.get_entry(key.as_bytes())?.value {
        Value::Str(v) => Some(v.clone()),
        other => panic!("{key} holds a {}", other.type_name()),
    }
}

fn expiry(ks: &Keyspace, key: &str) -> Option<u64> {
    ks.get_entry(key.as_bytes()).and_then(|e| e.expire_at_ms)
}

fn zset_of(ks: &Keyspace, key: &str) -> Vec<(f64, Vec<u8>)> {
    match &ks.get_entry(key.as_bytes()).expect("key exists").value {
        Value::ZSet(z) => z.iter().map(|(s, m)| (s, m.to_vec())).collect(),
        other => panic!("{key} holds a {}", other.type_name()),
    }
}

fn stream_of<'a>(ks: &'a Keyspace, key: &str) -> &'a Stream {
    match &ks.get_entry(key.as_bytes()).expect("key exists").value {
        Value::Stream(s) => s,
        other => panic!("{key} holds a {}", other.type_name()),
    }
}

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

// ---------- sorted sets ----------

#[test]
fn zadd_adds_and_updates() {
    let mut ks = Keyspace::new();
    assert_eq!(
        run(&mut ks, zadd("z", &[(2.0, "b"), (1.0, "a")])),
        Reply::Int(2)
    );
    assert_eq!(
        run(&mut ks, zadd("z", &[(3.0, "a"), (0.5, "c")])),
        Reply::Int(1)
    );
    assert_eq!(
        zset_of(&ks, "z"),
        vec![(0.5, b("c")), (2.0, b("b")), (3.0, b("a"))]
    );
    // Same member twice: counted once, last score wins.
    assert_eq!(
        run(&mut ks, zadd("z", &[(7.0, "d"), (-1.0, "d")])),
        Reply::Int(1)
    );
    assert_eq!(zset_of(&ks, "z")[0], (-1.0, b("d")));
    assert_eq!(
        run(
            &mut ks,
            zadd("z", &[(f64::INFINITY, "i"), (f64::NEG_INFINITY, "j")])
        ),
        Reply::Int(2)
    );
    let all = zset_of(&ks, "z");
    assert_eq!(all.first().unwrap().1, b("j"));
    assert_eq!(all.last().unwrap().1, b("i"));
}

#[test]
fn zadd_errors() {
    let mut ks = Keyspace::new();
    assert_eq!(run(&mut ks, zadd("z", &[])), err(msg::ARITY_ZADD));
    assert_eq!(
        run(&mut ks, zadd("z", &[(1.0, "a"), (f64::NAN, "b")])),
        err(msg::NOT_A_FLOAT)
    );
    assert!(
        ks.is_empty(),
        "a failed ZADD adds nothing, not even the valid members"
    );
    run(&mut ks, zadd("z", &[(1.0, "a")]));
    assert_eq!(
        run(&mut ks, zadd("z", &[(f64::NAN, "a")])),
        err(msg::NOT_A_FLOAT)
    );
    assert_eq!(zset_of(&ks, "z"), vec![(1.0, b("a"))]);
    assert_eq!(msg::NOT_A_FLOAT, "ERR value is not a valid float");
    assert_eq!(run(&mut ks, zrem("z", &[])), err(msg::ARITY_ZREM));
}

#[test]
fn zset_negative_zero_orders_as_zero() {
    let mut ks = Keyspace::new();
    run(&mut ks, zadd("z", &[(0.0, "b"), (-0.0, "a"), (-0.0, "c")]));
    let all = zset_of(&ks, "z");
    assert_eq!(
        all.iter().map(|(_, m)| m.clone()).collect::<Vec<_>>(),
        vec![b("a"), b("b"), b("c")]
    );
    assert!(all.iter().all(|(s, _)| s.to_bits() == 0.0f64.to_bits()));
    assert_eq!(
        run(&mut ks, zpopmin("z", 1)),
        Reply::Array(vec![bulk("a"), bulk("0")])
    );
}

#[test]
fn zrem_deletes_empty_sets() {
    let mut ks = Keyspace::new();
    run(&mut ks, zadd("z", &[(1.0, "a"), (2.0, "b")]));
    assert_eq!(run(&mut ks, zrem("z", &["a", "a", "x"])), Reply::Int(1));
    assert_eq!(run(&mut ks, zrem("missing", &["a"])), Reply::Int(0));
    assert_eq!(run(&mut ks, zrem("z", &["b"])), Reply::Int(1));
    assert!(ks.get_entry(b"z").is_none());
}

#[test]
fn zpopmin_order_ties_and_deletion() {
    let mut ks = Keyspace::new();
    assert_eq!(run(&mut ks, zpopmin("z", 3)), Reply::Array(vec![]));
    run(
        &mut ks,
        zadd(
            "z",
            &[
                (2.0, "b"),
                (1.0, "zz"),
                (1.0, "a"),
                (1.0, "ab"),
                (-1.5, "n"),
                (1e20, "big"),
            ],
        ),
    );
    assert_eq!(run(&mut ks, zpopmin("z", 0)), Reply::Array(vec![]));
    assert_eq!(
        run(&mut ks, zpopmin("z", 3)),
        Reply::Array(vec![
            bulk("n"),
            bulk("-1.5"),
            bulk("a"),
            bulk("1"),
            bulk("ab"),
            bulk("1")
        ])
    );
    assert_eq!(
        run(&mut ks, zpopmin("z", 1)),
        Reply::Array(vec![bulk("zz"), bulk("1")])
    );
    assert_eq!(
        run(&mut ks, zpopmin("z", u64::MAX)),
        Reply::Array(vec![
            bulk("b"),
            bulk("2"),
            bulk("big"),
            bulk("100000000000000000000")
        ])
    );
    assert!(ks.get_entry(b"z").is_none(), "an emptied zset is deleted");
    assert_eq!(run(&mut ks, zpopmin("z", 1)), Reply::Array(vec![]));
}

#[test]
fn zpopmin_score_text() {
    let mut ks = Keyspace::new();
    run(
        &mut ks,
        zadd(
            "z",
            &[(f64::NEG_INFINITY, "a"), (0.25, "b"), (f64::INFINITY, "c")],
        ),
    );
    assert_eq!(
        run(&mut ks, zpopmin("z", 3)),
        Reply::Array(vec![
            bulk("a"),
            bulk("-inf"),
            bulk("b"),
            bulk("0.25"),
            bulk("c"),
            bulk("inf")
        ])
    );
}

// ---------- streams ----------

#[test]
fn xadd_auto_ids() {
    let mut ks = Keyspace::new();
    assert_eq!(
        run(&mut ks, xadd("x", None, &[("f", "1")], None)),
        bulk("0-1")
    );
    assert_eq!(
        run(&mut ks, xadd("x", None, &[("f", "2")], None)),
        bulk("0-2")
    );
    assert_eq!(
        run(&mut ks, xadd("x", Some((5, 0)), &[("f", "3")], None)),
        bulk("5-0")
    );
    assert_eq!(
        run(&mut ks, xadd("x", None, &[("f", "4")], None)),
        bulk("5-1")
    );
    let s = stream_of(&ks, "x");
    assert_eq!(s.last_id(), id(5, 1));
    let ids: Vec<_> = s.iter().map(|(i, _)| i).collect();
    assert_eq!(ids, vec![id(0, 1), id(0, 2), id(5, 0), id(5, 1)]);
    let (_, fields) = s.iter().nth(2).unwrap();
    assert_eq!(fields, &[(b("f"), b("3"))][..]);
}

#[test]
fn xadd_multiple_fields_keep_order() {
    let mut ks = Keyspace::new();
    run(
        &mut ks,
        xadd("x", None, &[("b", "1"), ("a", "2"), ("b", "3")], None),
    );
    let (_, fields) = stream_of(&ks, "x").iter().next().unwrap();
    assert_eq!(
        fields,
        &[(b("b"), b("1")), (b("a"), b("2")), (b("b"), b("3"))][..]
    );
}

#[test]
fn xadd_explicit_id_errors() {
    let mut ks = Keyspace::new();
    assert_eq!(
        run(&mut ks, xadd("x", Some((0, 0)), &[("f", "v")], None)),
        err(msg::XADD_ID_ZERO)
    );
    assert!(ks.is_empty(), "a failed XADD creates no stream");
    assert_eq!(
        run(&mut ks, xadd("x", Some((3, 3)), &[("f", "v")], None)),
        bulk("3-3")
    );
    assert_eq!(
        run(&mut ks, xadd("x", Some((3, 3)), &[("f", "v")], None)),
        err(msg::XADD_ID_TOO_SMALL)
    );
    assert_eq!(
        run(&mut ks, xadd("x", Some((3, 2)), &[("f", "v")], None)),
        err(msg::XADD_ID_TOO_SMALL)
    );
    assert_eq!(
        run(&mut ks, xadd("x", Some((2, 9)), &[("f", "v")], None)),
        err(msg::XADD_ID_TOO_SMALL)
    );
    assert_eq!(
        run(&mut ks, xadd("x", Some((0, 0)), &[("f", "v")], None)),
        err(msg::XADD_ID_ZERO)
    );
    assert_eq!(
        run(&mut ks, xadd("x", Some((3, 4)), &[("f", "v")], None)),
        bulk("3-4")
    );
    assert_eq!(
        msg::XADD_ID_TOO_SMALL,
        "ERR The ID specified in XADD is equal or smaller than the target stream top item"
    );
}

#[test]
fn xadd_empty_fields_is_an_error() {
    let mut ks = Keyspace::new();
    assert_eq!(
        run(&mut ks, xadd("x", None, &[], None)),
        err(msg::ARITY_XADD)
    );
    assert!(ks.is_empty());
    run(&mut ks, xadd("x", None, &[("f", "v")], None));
    assert_eq!(
        run(&mut ks, xadd("x", None, &[], Some(0))),
        err(msg::ARITY_XADD)
    );
    assert_eq!(stream_of(&ks, "x").len(), 1);
}

#[test]
fn xadd_maxlen_trims_exactly_and_remembers_last_id() {
    let mut ks = Keyspace::new();
    for i in 1..=5u64 {
        assert_eq!(
            run(&mut ks, xadd("x", Some((i, 0)), &[("f", "v")], Some(3))),
            Reply::Bulk(format!("{i}-0").into_bytes())
        );
    }
    let ids: Vec<_> = stream_of(&ks, "x").iter().map(|(i, _)| i).collect();
    assert_eq!(ids, vec![id(3, 0), id(4, 0), id(5, 0)]);
    // A larger MAXLEN trims nothing.
    run(&mut ks, xadd("x", None, &[("f", "v")], Some(100)));
    assert_eq!(stream_of(&ks, "x").len(), 4);
    // MAXLEN 0 empties the stream but the key and its last id remain.
    assert_eq!(
        run(&mut ks, xadd("x", None, &[("f", "v")], Some(0))),
        bulk("5-2")
    );
    let s = stream_of(&ks, "x");
    assert!(s.is_empty());
    assert_eq!(s.last_id(), id(5, 2));
    // Ids of trimmed entries stay used.
    assert_eq!(
        run(&mut ks, xadd("x", Some((5, 2)), &[("f", "v")], None)),
        err(msg::XADD_ID_TOO_SMALL)
    );
    assert_eq!(
        run(&mut ks, xadd("x", Some((1, 0)), &[("f", "v")], None)),
        err(msg::XADD_ID_TOO_SMALL)
    );
    assert_eq!(
        run(&mut ks, xadd("x", None, &[("f", "v")], None)),
        bulk("5-3")
    );
}

#[test]
fn xadd_auto_rolls_over_and_exhausts() {
    let mut ks = Keyspace::new();
    run(&mut ks, xadd("x", Some((7, u64::MAX)), &[("f", "v")], None));
    assert_eq!(
        run(&mut ks, xadd("x", None, &[("f", "v")], None)),
        bulk("8-0")
    );
    let max = format!("{}-{}", u64::MAX, u64::MAX);
    assert_eq!(
        run(
            &mut ks,
            xadd("x", Some((u64::MAX, u64::MAX)), &[("f", "v")], None)
        ),
        bulk(&max)
    );
    assert_eq!(
        run(&mut ks, xadd("x", None, &[("f", "v")], None)),
        err(msg::XADD_ID_EXHAUSTED)
    );
}

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
            Value::Stream(s) => Value::Stream(
                Stream::from_parts(s.last_id(), s.iter().map(|(i, f)| (i, f.to_vec()))).unwrap(),
            ),
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

// ---------- codec ----------

fn every_variant() -> Vec<Command> {
    vec![
        set("key", "value"),
        set("", ""),
        get("k"),
        del("k"),
        setnx("k", "v"),
        incrby("k", -3),
        incrby("k", i64::MIN),
        pexpireat("k", u64::MAX),
        hset("h", &[("f", "v"), ("g", "")]),
        hset("h", &[]),
        hdel("h", &["f", "g"]),
        zadd(
            "z",
            &[
                (1.5, "a"),
                (-0.0, "b"),
                (f64::INFINITY, "c"),
                (f64::MIN_POSITIVE / 2.0, "d"),
            ],
        ),
        zrem("z", &["a"]),
        zpopmin("z", 7),
        xadd("x", None, &[("f", "v")], None),
        xadd("x", Some((1, 2)), &[("f", "v"), ("g", "w")], Some(10)),
        xadd("x", Some((0, 0)), &[], Some(0)),
        multi(vec![]),
        multi(vec![get("")]),
        multi(vec![
            set("k", "v"),
            get("k"),
            hset("h", &[("f", "v")]),
            xadd("x", Some((1, 2)), &[("f", "v")], Some(3)),
        ]),
    ]
}

fn multi(cmds: Vec<Command>) -> Command {
    Command::Multi { cmds }
}

fn encode(cmd: &Command) -> Vec<u8> {
    let mut out = Vec::new();
    cmd.encode(&mut out);
    out
}

#[test]
fn codec_round_trips_every_variant() {
    for cmd in every_variant() {
        let bytes = encode(&cmd);
        assert_eq!(bytes.len(), cmd.encoded_len(), "{cmd:?}");
        let back = Command::decode(&bytes).unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
        assert_eq!(back, cmd);
        assert_eq!(encode(&back), bytes, "re-encoding differs for {cmd:?}");
    }
}

#[test]
fn encode_appends() {
    let mut out = vec![0xAA];
    get("k").encode(&mut out);
    assert_eq!(out[0], 0xAA);
    assert_eq!(Command::decode(&out[1..]), Ok(get("k")));
}

#[test]
fn decode_rejects_bad_payloads() {
    let reason = |bytes: &[u8]| Command::decode(bytes).unwrap_err().reason;
    assert_eq!(reason(&[]), "truncated");
    assert_eq!(reason(&[0]), "unknown opcode");
    assert_eq!(reason(&[14, 0, 0, 0, 0]), "unknown opcode");
    assert_eq!(reason(&[0xFF; 16]), "unknown opcode");
    let mut trailing = encode(&get("k"));
    trailing.push(0);
    assert_eq!(
        Command::decode(&trailing),
        Err(DecodeError {
            offset: trailing.len() - 1,
            reason: "trailing bytes after the command"
        })
    );
    // A key length beyond the payload.
    assert_eq!(
        reason(&[2, 5, 0, 0, 0, b'k']),
        "length exceeds the remaining bytes"
    );
    // An XADD flag byte other than 0 or 1.
    let mut xadd_bytes = encode(&xadd("x", None, &[("f", "v")], None));
    xadd_bytes[6] = 2;
    assert_eq!(Command::decode(&xadd_bytes).unwrap_err().offset, 6);
    // NaN scores, including non-canonical NaN bit patterns.
    for nan in [
        f64::NAN.to_bits(),
        0x7FF0_0000_0000_0001,
        0xFFF8_0000_0000_0000,
    ] {
        let mut p = vec![9, 0, 0, 0, 0, 1, 0, 0, 0];
        p.extend_from_slice(&nan.to_le_bytes());
        p.extend_from_slice(&[0, 0, 0, 0]);
        assert_eq!(
            Command::decode(&p),
            Err(DecodeError {
                offset: 9,
                reason: "score is NaN"
            })
        );
    }
}

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

/// A transaction's encoding, byte by byte as `docs/format.md` gives it.
#[test]
fn multi_layout() {
    let bytes = encode(&multi(vec![get("k"), set("a", "b")]));
    let mut want = vec![13, 2, 0, 0, 0];
    want.extend_from_slice(&[6, 0, 0, 0, 2, 1, 0, 0, 0, b'k']);
    want.extend_from_slice(&[11, 0, 0, 0, 1, 1, 0, 0, 0, b'a', 1, 0, 0, 0, b'b']);
    assert_eq!(bytes, want);
}

#[test]
fn decode_rejects_bad_transactions() {
    let decode_err = |bytes: &[u8]| Command::decode(bytes).unwrap_err();
    let at = |offset, reason| DecodeError { offset, reason };
    // Nesting: refused at the nested opcode, even though its own encoding is fine.
    let nested = encode(&multi(vec![set("a", "1"), multi(vec![set("b", "2")])]));
    let inner_at = 5 + 4 + set("a", "1").encoded_len() + 4;
    assert_eq!(
        decode_err(&nested),
        at(inner_at, "transaction nested in a transaction")
    );
    let empty_nested = encode(&multi(vec![multi(vec![])]));
    assert_eq!(
        decode_err(&empty_nested),
        at(9, "transaction nested in a transaction")
    );
    // A count the remaining bytes cannot hold (9 bytes per sub-command at least).
    assert_eq!(
        decode_err(&[13, 2, 0, 0, 0, 5, 0, 0, 0, 2, 0, 0, 0, 0]),
        at(1, "count exceeds the remaining bytes")
    );
    let mut huge = vec![13];
    huge.extend_from_slice(&u32::MAX.to_le_bytes());
    huge.extend_from_slice(&[0; 64]);
    assert_eq!(
        decode_err(&huge),
        at(1, "count exceeds the remaining bytes")
    );
    // A nested length beyond the payload (the last sub-command truncated).
    let two = encode(&multi(vec![set("a", "1"), set("b", "2")]));
    let last = two.len() - set("b", "2").encoded_len() - 4;
    assert_eq!(
        decode_err(&two[..two.len() - 1]),
        at(last, "length exceeds the remaining bytes")
    );
    // A nested length shorter than its command: the command is truncated inside its bound,
    // reported at its offset in the whole payload.
    let mut short = two.clone();
    short[5] -= 1;
    assert_eq!(
        decode_err(&short),
        at(9 + 6, "length exceeds the remaining bytes")
    );
    // A nested length longer than its command: the command has trailing bytes.
    let mut long = encode(&multi(vec![get("k")]));
    long[5] += 1;
    long.push(0);
    assert_eq!(
        decode_err(&long),
        at(
            9 + get("k").encoded_len(),
            "trailing bytes after the command"
        )
    );
    // Bytes after the last sub-command.
    let mut trailing = encode(&multi(vec![get("k")]));
    trailing.push(0);
    assert_eq!(
        decode_err(&trailing),
        at(trailing.len() - 1, "trailing bytes after the command")
    );
    // A bad sub-command (NaN score, unknown opcode), at its offset in the whole payload.
    let nan = encode(&multi(vec![get("k"), zadd("z", &[(f64::NAN, "m")])]));
    let zadd_at = 5 + 4 + get("k").encoded_len() + 4;
    assert_eq!(decode_err(&nan), at(zadd_at + 10, "score is NaN"));
    let mut unknown = encode(&multi(vec![get("k")]));
    unknown[9] = 0;
    assert_eq!(decode_err(&unknown), at(9, "unknown opcode"));
}

#[test]
fn every_strict_prefix_fails() {
    for cmd in every_variant() {
        let bytes = encode(&cmd);
        for cut in 0..bytes.len() {
            assert!(
                Command::decode(&bytes[..cut]).is_err(),
                "{cmd:?} cut at {cut}"
            );
        }
    }
}

// ---------- property tests ----------

fn small_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..6)
}

/// Few distinct keys, so that commands collide and types clash.
fn key() -> impl Strategy<Value = Vec<u8>> {
    prop::sample::select(vec![b("a"), b("b"), b("c"), b("")])
}

fn pairs() -> impl Strategy<Value = Vec<(Vec<u8>, Vec<u8>)>> {
    prop::collection::vec((small_bytes(), small_bytes()), 0..4)
}

fn blobs() -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop::collection::vec(small_bytes(), 0..4)
}

fn stream_id() -> impl Strategy<Value = StreamId> {
    prop_oneof![
        (0u64..4, 0u64..4).prop_map(|(ms, seq)| StreamId { ms, seq }),
        (any::<u64>(), any::<u64>()).prop_map(|(ms, seq)| StreamId { ms, seq }),
    ]
}

fn command_with(
    score: BoxedStrategy<f64>,
    value: BoxedStrategy<Vec<u8>>,
) -> impl Strategy<Value = Command> {
    let integer_text = prop_oneof![
        any::<i64>().prop_map(|n| n.to_string().into_bytes()),
        (-3i64..3).prop_map(|n| n.to_string().into_bytes()),
    ];
    prop_oneof![
        (key(), value.clone()).prop_map(|(key, value)| Command::Set { key, value }),
        (key(), integer_text).prop_map(|(key, value)| Command::Set { key, value }),
        key().prop_map(|key| Command::Get { key }),
        key().prop_map(|key| Command::Del { key }),
        (key(), value).prop_map(|(key, value)| Command::SetNx { key, value }),
        (key(), prop_oneof![any::<i64>(), -5i64..5])
            .prop_map(|(key, delta)| Command::IncrBy { key, delta }),
        (key(), any::<u64>()).prop_map(|(key, at_ms)| Command::PExpireAt { key, at_ms }),
        (key(), pairs()).prop_map(|(key, fields)| Command::HSet { key, fields }),
        (key(), blobs()).prop_map(|(key, fields)| Command::HDel { key, fields }),
        (key(), prop::collection::vec((score, small_bytes()), 0..4))
            .prop_map(|(key, members)| Command::ZAdd { key, members }),
        (key(), blobs()).prop_map(|(key, members)| Command::ZRem { key, members }),
        (key(), prop_oneof![0u64..4, any::<u64>()])
            .prop_map(|(key, count)| Command::ZPopMin { key, count }),
        (
            key(),
            prop::option::of(stream_id()),
            pairs(),
            prop::option::of(prop_oneof![0u64..3, any::<u64>()])
        )
            .prop_map(|(key, id, fields, maxlen)| Command::XAdd {
                key,
                id: id.map_or(XAddId::Auto, XAddId::Explicit),
                fields,
                maxlen,
            }),
    ]
}

/// Any command the codec can carry: every non-NaN score, bigger values, transactions of them.
fn any_command() -> impl Strategy<Value = Command> {
    let score = any::<f64>()
        .prop_filter("NaN cannot be decoded", |s| !s.is_nan())
        .boxed();
    let one = command_with(score, prop::collection::vec(any::<u8>(), 0..40).boxed()).boxed();
    prop_oneof![
        4 => one.clone(),
        1 => prop::collection::vec(one, 0..5).prop_map(|cmds| Command::Multi { cmds }),
    ]
}

/// Commands for state tests: few distinct scores (ties, -0.0) and the occasional NaN.
fn state_command() -> impl Strategy<Value = Command> {
    let score = prop_oneof![
        8 => (-2i32..3).prop_map(f64::from),
        1 => Just(-0.0),
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
    ]
    .boxed();
    command_with(score, small_bytes().boxed())
}

proptest! {
    #[test]
    fn prop_codec_round_trip(cmd in any_command()) {
        let bytes = encode(&cmd);
        prop_assert_eq!(bytes.len(), cmd.encoded_len());
        let back = Command::decode(&bytes);
        prop_assert_eq!(back.as_ref(), Ok(&cmd));
        prop_assert_eq!(encode(&back.unwrap()), bytes);
    }

    #[test]
    fn prop_strict_prefixes_fail(cmd in any_command()) {
        let bytes = encode(&cmd);
        for cut in 0..bytes.len() {
            prop_assert!(Command::decode(&bytes[..cut]).is_err());
        }
    }

    #[test]
    fn prop_arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        if let Ok(cmd) = Command::decode(&bytes) {
            prop_assert_eq!(encode(&cmd), bytes);
        }
    }

    #[test]
    fn prop_mutated_encodings_never_panic(
        cmd in any_command(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = encode(&cmd);
        for (at, byte) in edits {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        for candidate in [&bytes[..], &bytes[..cut.index(bytes.len() + 1)]] {
            if let Ok(cmd) = Command::decode(candidate) {
                prop_assert_eq!(encode(&cmd), candidate.to_vec());
            }
        }
    }

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
