//! Helpers shared by the keyspace tests (`keyspace_*.rs`): command builders, a `run` that
//! checks both entry points agree, state accessors, and the proptest strategies.
#![allow(dead_code)]

use durlab_engine::keyspace::{
    Command, Entry, Keyspace, Reply, SetCond, SetOptions, SetTtl, Stream, StreamId, Value, XAddId,
};
use proptest::prelude::*;

pub fn b(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

pub fn err(text: &str) -> Reply {
    Reply::Error(text.to_owned())
}

pub fn bulk(s: &str) -> Reply {
    Reply::Bulk(b(s))
}

pub fn set(k: &str, v: &str) -> Command {
    Command::Set {
        key: b(k),
        value: b(v),
    }
}

pub fn get(k: &str) -> Command {
    Command::Get { key: b(k) }
}

pub fn del(k: &str) -> Command {
    Command::Del { key: b(k) }
}

pub fn setnx(k: &str, v: &str) -> Command {
    Command::SetNx {
        key: b(k),
        value: b(v),
    }
}

pub fn incrby(k: &str, delta: i64) -> Command {
    Command::IncrBy { key: b(k), delta }
}

pub fn pexpireat(k: &str, at_ms: u64) -> Command {
    Command::PExpireAt { key: b(k), at_ms }
}

pub fn set_opts(k: &str, v: &str, cond: SetCond, ttl: SetTtl, get: bool) -> Command {
    Command::SetOpts {
        key: b(k),
        value: b(v),
        opts: SetOptions { cond, ttl, get },
    }
}

pub fn persist(k: &str) -> Command {
    Command::Persist { key: b(k) }
}

pub fn hincrby(k: &str, f: &str, delta: i64) -> Command {
    Command::HIncrBy {
        key: b(k),
        field: b(f),
        delta,
    }
}

pub fn hset(k: &str, fields: &[(&str, &str)]) -> Command {
    Command::HSet {
        key: b(k),
        fields: fields.iter().map(|(f, v)| (b(f), b(v))).collect(),
    }
}

pub fn hdel(k: &str, fields: &[&str]) -> Command {
    Command::HDel {
        key: b(k),
        fields: fields.iter().map(|f| b(f)).collect(),
    }
}

pub fn zadd(k: &str, members: &[(f64, &str)]) -> Command {
    Command::ZAdd {
        key: b(k),
        members: members.iter().map(|(s, m)| (*s, b(m))).collect(),
    }
}

pub fn zrem(k: &str, members: &[&str]) -> Command {
    Command::ZRem {
        key: b(k),
        members: members.iter().map(|m| b(m)).collect(),
    }
}

pub fn zpopmin(k: &str, count: u64) -> Command {
    Command::ZPopMin { key: b(k), count }
}

pub fn id(ms: u64, seq: u64) -> StreamId {
    StreamId { ms, seq }
}

pub fn xadd(
    k: &str,
    xid: Option<(u64, u64)>,
    fields: &[(&str, &str)],
    maxlen: Option<u64>,
) -> Command {
    Command::XAdd {
        key: b(k),
        id: xid.map_or(XAddId::Auto, |(ms, seq)| XAddId::Explicit(id(ms, seq))),
        fields: fields.iter().map(|(f, v)| (b(f), b(v))).collect(),
        maxlen,
    }
}

/// The whole state in key order, for equality checks.
pub fn state(ks: &Keyspace) -> Vec<(Vec<u8>, Entry)> {
    let mut all: Vec<_> = ks.iter().map(|(k, e)| (k.to_vec(), e.clone())).collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    all
}

/// Applies `cmd` through both entry points on copies, checks they agree, that an error reply
/// changed nothing and that invariants hold; keeps the result.
pub fn run(ks: &mut Keyspace, cmd: Command) -> Reply {
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

pub fn str_value(ks: &Keyspace, key: &str) -> Option<Vec<u8>> {
    match &ks.get_entry(key.as_bytes())?.value {
        Value::Str(v) => Some(v.clone()),
        other => panic!("{key} holds a {}", other.type_name()),
    }
}

pub fn expiry(ks: &Keyspace, key: &str) -> Option<u64> {
    ks.get_entry(key.as_bytes()).and_then(|e| e.expire_at_ms)
}

pub fn zset_of(ks: &Keyspace, key: &str) -> Vec<(f64, Vec<u8>)> {
    match &ks.get_entry(key.as_bytes()).expect("key exists").value {
        Value::ZSet(z) => z.iter().map(|(s, m)| (s, m.to_vec())).collect(),
        other => panic!("{key} holds a {}", other.type_name()),
    }
}

pub fn stream_of<'a>(ks: &'a Keyspace, key: &str) -> &'a Stream {
    match &ks.get_entry(key.as_bytes()).expect("key exists").value {
        Value::Stream(s) => s,
        other => panic!("{key} holds a {}", other.type_name()),
    }
}

// ---------- codec ----------

pub fn every_variant() -> Vec<Command> {
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
        set_opts("k", "v", SetCond::Nx, SetTtl::At(7), true),
        set_opts("k", "", SetCond::Xx, SetTtl::Keep, false),
        set_opts("", "v", SetCond::Always, SetTtl::Clear, false),
        persist("k"),
        hincrby("h", "f", i64::MIN),
        Command::FlushAll,
        Command::XAdd {
            key: b("x"),
            id: XAddId::Time { now_ms: 9 },
            fields: vec![(b("f"), b("v"))],
            maxlen: None,
        },
        Command::XAdd {
            key: b("x"),
            id: XAddId::AutoSeq { ms: u64::MAX },
            fields: vec![(b("f"), b("v"))],
            maxlen: Some(1),
        },
        multi(vec![]),
        multi(vec![get("")]),
        multi(vec![Command::FlushAll, Command::FlushAll]),
        multi(vec![
            set("k", "v"),
            get("k"),
            hset("h", &[("f", "v")]),
            xadd("x", Some((1, 2)), &[("f", "v")], Some(3)),
        ]),
    ]
}

pub fn multi(cmds: Vec<Command>) -> Command {
    Command::Multi { cmds }
}

pub fn encode(cmd: &Command) -> Vec<u8> {
    let mut out = Vec::new();
    cmd.encode(&mut out);
    out
}

// ---------- strategies ----------

pub fn small_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..6)
}

/// Few distinct keys, so that commands collide and types clash.
pub fn key() -> impl Strategy<Value = Vec<u8>> {
    prop::sample::select(vec![b("a"), b("b"), b("c"), b("")])
}

pub fn pairs() -> impl Strategy<Value = Vec<(Vec<u8>, Vec<u8>)>> {
    prop::collection::vec((small_bytes(), small_bytes()), 0..4)
}

pub fn blobs() -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop::collection::vec(small_bytes(), 0..4)
}

pub fn stream_id() -> impl Strategy<Value = StreamId> {
    prop_oneof![
        (0u64..4, 0u64..4).prop_map(|(ms, seq)| StreamId { ms, seq }),
        (any::<u64>(), any::<u64>()).prop_map(|(ms, seq)| StreamId { ms, seq }),
    ]
}

pub fn command_with(
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
        (key(), small_bytes(), prop_oneof![any::<i64>(), -5i64..5])
            .prop_map(|(key, field, delta)| Command::HIncrBy { key, field, delta }),
        key().prop_map(|key| Command::Persist { key }),
        Just(Command::FlushAll),
        (
            key(),
            small_bytes(),
            0u8..3,
            prop_oneof![
                Just(SetTtl::Clear),
                Just(SetTtl::Keep),
                any::<u64>().prop_map(SetTtl::At)
            ],
            any::<bool>()
        )
            .prop_map(|(key, value, cond, ttl, get)| Command::SetOpts {
                key,
                value,
                opts: SetOptions {
                    cond: [SetCond::Always, SetCond::Nx, SetCond::Xx][usize::from(cond)],
                    ttl,
                    get,
                },
            }),
        (key(), blobs()).prop_map(|(key, fields)| Command::HDel { key, fields }),
        (key(), prop::collection::vec((score, small_bytes()), 0..4))
            .prop_map(|(key, members)| Command::ZAdd { key, members }),
        (key(), blobs()).prop_map(|(key, members)| Command::ZRem { key, members }),
        (key(), prop_oneof![0u64..4, any::<u64>()])
            .prop_map(|(key, count)| Command::ZPopMin { key, count }),
        (
            key(),
            prop_oneof![
                Just(XAddId::Auto),
                stream_id().prop_map(XAddId::Explicit),
                (0u64..4).prop_map(|now_ms| XAddId::Time { now_ms }),
                prop_oneof![0u64..4, any::<u64>()].prop_map(|ms| XAddId::AutoSeq { ms }),
            ],
            pairs(),
            prop::option::of(prop_oneof![0u64..3, any::<u64>()])
        )
            .prop_map(|(key, id, fields, maxlen)| Command::XAdd {
                key,
                id,
                fields,
                maxlen,
            }),
    ]
}

/// Any command the codec can carry: every non-NaN score, bigger values, transactions of them.
pub fn any_command() -> impl Strategy<Value = Command> {
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
pub fn state_command() -> impl Strategy<Value = Command> {
    let score = prop_oneof![
        8 => (-2i32..3).prop_map(f64::from),
        1 => Just(-0.0),
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
    ]
    .boxed();
    command_with(score, small_bytes().boxed())
}
