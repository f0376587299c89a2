//! Helpers shared by the keyspace tests (`keyspace_*.rs`): command builders, a `run` that
//! checks both entry points agree, state accessors, and the proptest strategies.
#![allow(dead_code)]

use durlab_engine::keyspace::{
    ClaimTime, Command, Entry, GroupStart, Keyspace, PendingRange, ReadStart, Reply, SetCond,
    SetOptions, SetTtl, Stream, StreamId, Value, XAddId, XClaimOptions,
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
        Command::XGroupCreate {
            key: b("x"),
            group: b("g"),
            id: GroupStart::Last,
            mkstream: true,
            entries_read: Some(3),
        },
        Command::XGroupCreate {
            key: b("x"),
            group: b(""),
            id: GroupStart::Id(id(1, 2)),
            mkstream: false,
            entries_read: None,
        },
        Command::XGroupSetId {
            key: b("x"),
            group: b("g"),
            id: GroupStart::Id(id(u64::MAX, 0)),
            entries_read: Some(u64::MAX),
        },
        Command::XGroupDestroy {
            key: b("x"),
            group: b("g"),
        },
        Command::XGroupCreateConsumer {
            key: b("x"),
            group: b("g"),
            consumer: b("c"),
            now_ms: 5,
        },
        Command::XGroupDelConsumer {
            key: b("x"),
            group: b("g"),
            consumer: b("c"),
        },
        Command::XReadGroup {
            key: b("x"),
            group: b("g"),
            consumer: b("c"),
            count: Some(2),
            start: ReadStart::New,
            noack: true,
            now_ms: 11,
        },
        Command::XReadGroup {
            key: b("x"),
            group: b("g"),
            consumer: b(""),
            count: None,
            start: ReadStart::Pending(id(0, 0)),
            noack: false,
            now_ms: u64::MAX,
        },
        Command::XAck {
            key: b("x"),
            group: b("g"),
            ids: vec![id(1, 2), id(3, 4)],
        },
        Command::XAck {
            key: b("x"),
            group: b("g"),
            ids: vec![],
        },
        Command::XDel {
            key: b("x"),
            ids: vec![id(1, 2)],
        },
        Command::XClaim {
            key: b("x"),
            group: b("g"),
            consumer: b("c"),
            min_idle_ms: 10,
            ids: vec![id(1, 2)],
            now_ms: 100,
            justid: false,
            options: XClaimOptions::default(),
        },
        Command::XClaim {
            key: b("x"),
            group: b("g"),
            consumer: b("c"),
            min_idle_ms: 0,
            ids: vec![],
            now_ms: 100,
            justid: true,
            options: XClaimOptions {
                time: Some(ClaimTime::IdleMs(5)),
                retry_count: Some(9),
                force: true,
                last_id: Some(id(7, 7)),
            },
        },
        Command::XClaim {
            key: b("x"),
            group: b("g"),
            consumer: b("c"),
            min_idle_ms: 0,
            ids: vec![id(1, 1)],
            now_ms: 100,
            justid: false,
            options: XClaimOptions {
                time: Some(ClaimTime::AtMs(50)),
                ..XClaimOptions::default()
            },
        },
        Command::XAutoClaim {
            key: b("x"),
            group: b("g"),
            consumer: b("c"),
            min_idle_ms: 1,
            start: id(0, 0),
            count: 100,
            now_ms: 1000,
            justid: true,
        },
        Command::XPending {
            key: b("x"),
            group: b("g"),
            range: None,
            now_ms: 3,
        },
        Command::XPending {
            key: b("x"),
            group: b("g"),
            range: Some(PendingRange {
                min_idle_ms: 4,
                start: id(0, 0),
                end: StreamId::MAX,
                count: 10,
                consumer: Some(b("c")),
            }),
            now_ms: 3,
        },
        Command::XPending {
            key: b("x"),
            group: b("g"),
            range: Some(PendingRange {
                min_idle_ms: 0,
                start: id(1, 0),
                end: id(2, 0),
                count: 0,
                consumer: None,
            }),
            now_ms: 3,
        },
        Command::XInfoGroups { key: b("x") },
        Command::XInfoConsumers {
            key: b("x"),
            group: b("g"),
            now_ms: 8,
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

/// Two keys, so that group commands meet the streams `XADD` makes.
pub fn stream_key() -> impl Strategy<Value = Vec<u8>> {
    prop::sample::select(vec![b("a"), b("b")])
}

/// Few group and consumer names, so that commands meet the same groups and consumers.
pub fn group_name() -> impl Strategy<Value = Vec<u8>> {
    prop::sample::select(vec![b("g"), b("h")])
}

pub fn consumer_name() -> impl Strategy<Value = Vec<u8>> {
    prop::sample::select(vec![b("c1"), b("c2"), b("")])
}

/// Small ids that meet the ids small `XADD`s give (and sometimes any id).
pub fn small_id() -> impl Strategy<Value = StreamId> {
    prop_oneof![
        6 => (0u64..4, 0u64..4).prop_map(|(ms, seq)| StreamId { ms, seq }),
        1 => stream_id(),
    ]
}

/// A time: mostly small (idle times of a few ms against small minimums), sometimes any.
pub fn time_ms() -> impl Strategy<Value = u64> {
    prop_oneof![8 => 0u64..64, 1 => any::<u64>()]
}

/// Consumer-group commands and `XDEL`, with every option.
pub fn group_command() -> impl Strategy<Value = Command> {
    let start = prop_oneof![
        2 => Just(GroupStart::Id(StreamId::default())),
        1 => Just(GroupStart::Last),
        1 => small_id().prop_map(GroupStart::Id),
    ];
    let entries_read = prop::option::of(prop_oneof![0u64..5, any::<u64>()]);
    let ids = || prop::collection::vec(small_id(), 0..4);
    let claim_time = prop::option::of(prop_oneof![
        time_ms().prop_map(ClaimTime::IdleMs),
        time_ms().prop_map(ClaimTime::AtMs),
    ]);
    prop_oneof![
        6 => (stream_key(), group_name(), start.clone(), any::<bool>(), entries_read.clone()).prop_map(
            |(key, group, id, mkstream, entries_read)| Command::XGroupCreate {
                key,
                group,
                id,
                mkstream,
                entries_read,
            }
        ),
        1 => (stream_key(), group_name(), start, entries_read).prop_map(|(key, group, id, entries_read)| {
            Command::XGroupSetId {
                key,
                group,
                id,
                entries_read,
            }
        }),
        1 => (stream_key(), group_name()).prop_map(|(key, group)| Command::XGroupDestroy { key, group }),
        1 => (stream_key(), group_name(), consumer_name(), time_ms()).prop_map(
            |(key, group, consumer, now_ms)| Command::XGroupCreateConsumer {
                key,
                group,
                consumer,
                now_ms,
            }
        ),
        1 => (stream_key(), group_name(), consumer_name()).prop_map(|(key, group, consumer)| {
            Command::XGroupDelConsumer {
                key,
                group,
                consumer,
            }
        }),
        6 => (
            stream_key(),
            group_name(),
            consumer_name(),
            prop::option::of(0u64..4),
            prop_oneof![3 => Just(ReadStart::New), 1 => small_id().prop_map(ReadStart::Pending)],
            prop::bool::weighted(0.1),
            time_ms(),
        )
            .prop_map(
                |(key, group, consumer, count, start, noack, now_ms)| Command::XReadGroup {
                    key,
                    group,
                    consumer,
                    count,
                    start,
                    noack,
                    now_ms,
                }
            ),
        3 => (stream_key(), group_name(), ids())
            .prop_map(|(key, group, ids)| Command::XAck { key, group, ids }),
        1 => (stream_key(), ids()).prop_map(|(key, ids)| Command::XDel { key, ids }),
        2 => (
            (stream_key(), group_name(), consumer_name(), 0u64..20, ids()),
            (
                time_ms(),
                any::<bool>(),
                claim_time,
                prop::option::of(0u64..5),
                prop::bool::weighted(0.2),
                prop::option::of(small_id()),
            )
        )
            .prop_map(
                |(
                    (key, group, consumer, min_idle_ms, ids),
                    (now_ms, justid, time, retry_count, force, last_id),
                )| Command::XClaim {
                    key,
                    group,
                    consumer,
                    min_idle_ms,
                    ids,
                    now_ms,
                    justid,
                    options: XClaimOptions {
                        time,
                        retry_count,
                        force,
                        last_id,
                    },
                }
            ),
        2 => (
            stream_key(),
            group_name(),
            consumer_name(),
            0u64..20,
            small_id(),
            1u64..4,
            time_ms(),
            any::<bool>()
        )
            .prop_map(
                |(key, group, consumer, min_idle_ms, start, count, now_ms, justid)| {
                    Command::XAutoClaim {
                        key,
                        group,
                        consumer,
                        min_idle_ms,
                        start,
                        count,
                        now_ms,
                        justid,
                    }
                }
            ),
        1 => (
            stream_key(),
            group_name(),
            prop::option::of((
                0u64..20,
                small_id(),
                small_id(),
                0u64..5,
                prop::option::of(consumer_name())
            )),
            time_ms()
        )
            .prop_map(|(key, group, range, now_ms)| Command::XPending {
                key,
                group,
                range: range.map(|(min_idle_ms, start, end, count, consumer)| PendingRange {
                    min_idle_ms,
                    start,
                    end,
                    count,
                    consumer,
                }),
                now_ms,
            }),
        1 => stream_key().prop_map(|key| Command::XInfoGroups { key }),
        1 => (stream_key(), group_name(), time_ms()).prop_map(|(key, group, now_ms)| {
            Command::XInfoConsumers { key, group, now_ms }
        }),
    ]
}

/// `XADD`s with small ids (so groups have entries to deliver), sometimes trimming.
pub fn small_xadd() -> impl Strategy<Value = Command> {
    (
        stream_key(),
        prop_oneof![
            4 => Just(XAddId::Auto),
            1 => (0u64..6).prop_map(|ms| XAddId::AutoSeq { ms }),
            1 => small_id().prop_map(XAddId::Explicit),
        ],
        prop_oneof![4 => Just(None), 1 => (0u64..4).prop_map(Some)],
    )
        .prop_map(|(key, id, maxlen)| Command::XAdd {
            key,
            id,
            fields: vec![(b("f"), b("v"))],
            maxlen,
        })
}

/// Sequences for the consumer-group state tests: mostly `XADD`s and group commands, with
/// the odd `DEL` (type clashes are left to the state tests: a string under a key would
/// make most group commands mere WRONGTYPE errors).
pub fn group_sequence_command() -> impl Strategy<Value = Command> {
    prop_oneof![
        24 => small_xadd(),
        48 => group_command(),
        1 => stream_key().prop_map(|key| Command::Del { key }),
    ]
}

/// Any command the codec can carry: every non-NaN score, bigger values, transactions of them.
pub fn any_command() -> impl Strategy<Value = Command> {
    let score = any::<f64>()
        .prop_filter("NaN cannot be decoded", |s| !s.is_nan())
        .boxed();
    let one = command_with(score, prop::collection::vec(any::<u8>(), 0..40).boxed()).boxed();
    let one = prop_oneof![3 => one, 1 => group_command().boxed()].boxed();
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
    prop_oneof![
        4 => command_with(score, small_bytes().boxed()).boxed(),
        1 => group_command().boxed(),
    ]
}
