//! The model's group commands against hand-written expectations, each taken from Redis's
//! command documentation and confirmed on redis-server 7.0.15 (the edge cases of issue 15:
//! XREADGROUP with id 0, XACK of an unknown id, XCLAIM's delivery count, XAUTOCLAIM's
//! cursor, MAXLEN trimming with pending entries).

use super::groups::{ClaimAt, ClaimExtra, GroupStart, ReadStart};
use super::model::{Answer, Id, IdSpec, Model, ModelValue, Op, text};

fn b(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

fn id(ms: u64) -> Id {
    Id { ms, seq: 0 }
}

fn bulk(s: &str) -> Answer {
    Answer::Bulk(b(s))
}

fn arr(items: Vec<Answer>) -> Answer {
    Answer::Array(items)
}

/// `[id, [v, <ms>]]`: the reply item of an entry added by [`add`].
fn entry(ms: u64) -> Answer {
    arr(vec![
        bulk(&format!("{ms}-0")),
        arr(vec![bulk("v"), bulk(&ms.to_string())]),
    ])
}

fn add(m: &mut Model, ms: u64, maxlen: Option<u64>) {
    let reply = m.run(&Op::XAdd {
        key: b("s"),
        id: IdSpec::Given(id(ms)),
        fields: vec![(b("v"), b(&ms.to_string()))],
        maxlen,
    });
    assert_eq!(reply, bulk(&format!("{ms}-0")));
}

fn create(m: &mut Model, group: &str, start: GroupStart) -> Answer {
    m.run(&Op::XGroupCreate {
        key: b("s"),
        group: b(group),
        start,
        mkstream: false,
    })
}

fn read(m: &mut Model, consumer: &str, count: Option<u64>, start: ReadStart, now: u64) -> Answer {
    m.run(&Op::XReadGroup {
        key: b("s"),
        group: b("g"),
        consumer: b(consumer),
        count,
        start,
        noack: false,
        now_ms: now,
    })
}

fn read_reply(items: Vec<Answer>) -> Answer {
    arr(vec![arr(vec![bulk("s"), arr(items)])])
}

fn pending(m: &mut Model, now: u64) -> Answer {
    m.run(&Op::XPendingRange {
        key: b("s"),
        group: b("g"),
        min_idle_ms: 0,
        start: Id::default(),
        end: Id::MAX,
        count: 100,
        consumer: None,
        now_ms: now,
    })
}

/// `[id, consumer, idle, deliveries]`.
fn pel(ms: u64, consumer: &str, idle: i64, deliveries: i64) -> Answer {
    arr(vec![
        bulk(&format!("{ms}-0")),
        bulk(consumer),
        Answer::Int(idle),
        Answer::Int(deliveries),
    ])
}

/// A stream s with entries 1-0..=n-0 and group g at 0-0.
fn stream_with_group(n: u64) -> Model {
    let mut m = Model::new();
    for ms in 1..=n {
        add(&mut m, ms, None);
    }
    assert_eq!(
        create(&mut m, "g", GroupStart::Id(Id::default())),
        Answer::Ok
    );
    m
}

#[test]
fn xgroup_create_needs_the_key_or_mkstream_and_refuses_a_second_group() {
    let mut m = Model::new();
    assert_eq!(
        create(&mut m, "g", GroupStart::Last),
        Answer::Error(text::XGROUP_NO_KEY.into())
    );
    assert!(m.map.is_empty());
    let mk = Op::XGroupCreate {
        key: b("s"),
        group: b("g"),
        start: GroupStart::Last,
        mkstream: true,
    };
    assert_eq!(m.run(&mk), Answer::Ok);
    assert_eq!(m.run(&mk), Answer::Error(text::BUSYGROUP.into()));
    add(&mut m, 5, None);
    assert_eq!(create(&mut m, "h", GroupStart::Last), Answer::Ok);
    let Some(ModelValue::Stream { groups, .. }) = m.map.get(&b("s")).map(|e| &e.value) else {
        panic!("no stream");
    };
    assert_eq!(
        groups[&b("g")].last_delivered,
        Id::default(),
        "$ of an empty stream"
    );
    assert_eq!(groups[&b("h")].last_delivered, id(5), "$ is the last id");
    m.run(&Op::Set {
        key: b("k"),
        value: b("x"),
        cond: super::model::Cond::Any,
        expiry: super::model::Expiry::Remove,
        get: false,
    });
    let on_string = Op::XGroupCreate {
        key: b("k"),
        group: b("g"),
        start: GroupStart::Last,
        mkstream: true,
    };
    assert_eq!(m.run(&on_string), super::model::wrongtype());
}

#[test]
fn xreadgroup_new_entries_then_own_pending_history() {
    let mut m = stream_with_group(3);
    assert_eq!(
        read(&mut m, "a", Some(2), ReadStart::New, 100),
        read_reply(vec![entry(1), entry(2)])
    );
    assert_eq!(
        read(&mut m, "b", None, ReadStart::New, 110),
        read_reply(vec![entry(3)])
    );
    // Nothing new: nil, and the consumer is not created.
    assert_eq!(
        read(&mut m, "c", None, ReadStart::New, 120),
        Answer::NilArray
    );
    // Id 0: a's own pending entries, each delivered again (count 2, delivered now).
    assert_eq!(
        read(&mut m, "a", None, ReadStart::Pending(Id::default()), 130),
        read_reply(vec![entry(1), entry(2)])
    );
    assert_eq!(
        read(&mut m, "a", Some(1), ReadStart::Pending(id(1)), 135),
        read_reply(vec![entry(2)])
    );
    assert_eq!(
        pending(&mut m, 140),
        arr(vec![
            pel(1, "a", 10, 2),
            pel(2, "a", 5, 3),
            pel(3, "b", 30, 1)
        ])
    );
    let consumers = m.run(&Op::XInfoConsumers {
        key: b("s"),
        group: b("g"),
        now_ms: 140,
    });
    let consumer = |name: &str, pending: i64, idle: i64| {
        arr(vec![
            bulk("name"),
            bulk(name),
            bulk("pending"),
            Answer::Int(pending),
            bulk("idle"),
            Answer::Int(idle),
        ])
    };
    assert_eq!(
        consumers,
        arr(vec![consumer("a", 2, 5), consumer("b", 1, 30)])
    );
    // A history read creates the consumer even with nothing pending.
    assert_eq!(
        read(&mut m, "d", None, ReadStart::Pending(Id::default()), 150),
        read_reply(vec![])
    );
    assert_eq!(
        m.run(&Op::XReadGroup {
            key: b("s"),
            group: b("nope"),
            consumer: b("a"),
            count: None,
            start: ReadStart::New,
            noack: false,
            now_ms: 0,
        }),
        Answer::Error(text::nogroup_read(b"s", b"nope"))
    );
}

#[test]
fn xack_counts_only_pending_ids_once() {
    let mut m = stream_with_group(3);
    read(&mut m, "a", None, ReadStart::New, 10);
    let ack = |ids: Vec<Id>, group: &str| Op::XAck {
        key: b("s"),
        group: b(group),
        ids,
    };
    assert_eq!(
        m.run(&ack(vec![id(1), id(1), id(9), id(2)], "g")),
        Answer::Int(2)
    );
    assert_eq!(
        m.run(&ack(vec![id(1)], "g")),
        Answer::Int(0),
        "already acked"
    );
    assert_eq!(m.run(&ack(vec![id(3)], "missing")), Answer::Int(0));
    assert_eq!(
        m.run(&Op::XAck {
            key: b("nokey"),
            group: b("g"),
            ids: vec![id(3)],
        }),
        Answer::Int(0)
    );
    assert_eq!(pending(&mut m, 10), arr(vec![pel(3, "a", 0, 1)]));
}

#[test]
fn xclaim_moves_idle_entries_and_counts_deliveries() {
    let mut m = stream_with_group(3);
    read(&mut m, "a", None, ReadStart::New, 10);
    let xclaim = |consumer: &str, min_idle_ms, ids, now_ms, justid| Op::XClaim {
        key: b("s"),
        group: b("g"),
        consumer: b(consumer),
        min_idle_ms,
        ids,
        now_ms,
        justid,
        extra: ClaimExtra::default(),
    };
    // Not idle long enough: nothing, and "b" is not created.
    assert_eq!(
        m.run(&xclaim("b", 100, vec![id(1)], 50, false)),
        arr(vec![])
    );
    assert_eq!(
        m.run(&xclaim("b", 100, vec![id(1), id(9)], 110, false)),
        arr(vec![entry(1)])
    );
    assert_eq!(
        m.run(&xclaim("b", 0, vec![id(2)], 120, true)),
        arr(vec![bulk("2-0")])
    );
    // A deleted entry leaves the PEL and is not returned.
    assert_eq!(
        m.run(&Op::XDel {
            key: b("s"),
            ids: vec![id(3), id(3), id(7)],
        }),
        Answer::Int(1)
    );
    assert_eq!(m.run(&xclaim("b", 0, vec![id(3)], 130, false)), arr(vec![]));
    assert_eq!(
        pending(&mut m, 130),
        arr(vec![pel(1, "b", 20, 2), pel(2, "b", 10, 1)]),
        "XCLAIM counts a delivery, JUSTID does not; both restart the idle time"
    );
}

#[test]
fn xautoclaim_cursor_walks_the_pel_and_drops_deleted_entries() {
    let mut m = stream_with_group(5);
    read(&mut m, "a", None, ReadStart::New, 0);
    let auto = |start: Id, count, min_idle_ms, now_ms| Op::XAutoClaim {
        key: b("s"),
        group: b("g"),
        consumer: b("r"),
        min_idle_ms,
        start,
        count,
        now_ms,
        justid: false,
    };
    m.run(&Op::XDel {
        key: b("s"),
        ids: vec![id(2)],
    });
    assert_eq!(
        m.run(&auto(Id::default(), 2, 0, 10)),
        arr(vec![
            bulk("3-0"),
            arr(vec![entry(1)]),
            arr(vec![bulk("2-0")])
        ]),
        "a deleted entry uses up COUNT; the cursor is the next PEL id"
    );
    assert_eq!(
        m.run(&auto(id(3), 5, 0, 20)),
        arr(vec![
            bulk("0-0"),
            arr(vec![entry(3), entry(4), entry(5)]),
            arr(vec![])
        ])
    );
    assert_eq!(
        m.run(&auto(Id::default(), 1, 1000, 30)),
        arr(vec![bulk("0-0"), arr(vec![]), arr(vec![])]),
        "nothing idle: every attempt skips, and the scan reaches the end"
    );
    assert_eq!(
        m.run(&auto(Id::default(), 0, 0, 30)),
        Answer::Error(text::COUNT_POSITIVE.into())
    );
    assert_eq!(
        pending(&mut m, 30),
        arr(vec![
            pel(1, "r", 20, 2),
            pel(3, "r", 10, 2),
            pel(4, "r", 10, 2),
            pel(5, "r", 10, 2)
        ])
    );
}

#[test]
fn maxlen_trimming_keeps_pending_entries_pending() {
    let mut m = stream_with_group(3);
    read(&mut m, "a", None, ReadStart::New, 0);
    add(&mut m, 4, Some(1));
    let summary = m.run(&Op::XPending {
        key: b("s"),
        group: b("g"),
    });
    assert_eq!(
        summary,
        arr(vec![
            Answer::Int(3),
            bulk("1-0"),
            bulk("3-0"),
            arr(vec![arr(vec![bulk("a"), bulk("3")])])
        ])
    );
    // The trimmed entries come back from the history as [id, nil], not counted again.
    let nil = |ms: u64| arr(vec![bulk(&format!("{ms}-0")), Answer::NilArray]);
    assert_eq!(
        read(&mut m, "a", None, ReadStart::Pending(Id::default()), 5),
        read_reply(vec![nil(1), nil(2), nil(3)])
    );
    assert_eq!(
        read(&mut m, "a", None, ReadStart::New, 6),
        read_reply(vec![entry(4)])
    );
    assert_eq!(
        pending(&mut m, 6),
        arr(vec![
            pel(1, "a", 6, 1),
            pel(2, "a", 6, 1),
            pel(3, "a", 6, 1),
            pel(4, "a", 0, 1)
        ])
    );
}

#[test]
fn setid_back_redelivers_to_the_new_reader_and_delconsumer_drops_its_pel() {
    let mut m = stream_with_group(2);
    read(&mut m, "a", None, ReadStart::New, 0);
    assert_eq!(
        m.run(&Op::XGroupSetId {
            key: b("s"),
            group: b("g"),
            start: GroupStart::Id(Id::default()),
        }),
        Answer::Ok
    );
    assert_eq!(
        read(&mut m, "b", Some(1), ReadStart::New, 7),
        read_reply(vec![entry(1)])
    );
    assert_eq!(
        pending(&mut m, 7),
        arr(vec![pel(1, "b", 0, 1), pel(2, "a", 7, 1)])
    );
    let del = |consumer: &str| Op::XGroupDelConsumer {
        key: b("s"),
        group: b("g"),
        consumer: b(consumer),
    };
    assert_eq!(m.run(&del("a")), Answer::Int(1));
    assert_eq!(m.run(&del("a")), Answer::Int(0));
    assert_eq!(pending(&mut m, 7), arr(vec![pel(1, "b", 0, 1)]));
    assert_eq!(
        m.run(&Op::XGroupSetId {
            key: b("s"),
            group: b("x"),
            start: GroupStart::Last,
        }),
        Answer::Error(text::nogroup(b"s", b"x"))
    );
    let groups = m.run(&Op::XInfoGroups { key: b("s") });
    assert_eq!(
        groups,
        arr(vec![arr(vec![
            bulk("name"),
            bulk("g"),
            bulk("consumers"),
            Answer::Int(1),
            bulk("pending"),
            Answer::Int(1),
            bulk("last-delivered-id"),
            bulk("1-0"),
        ])])
    );
    assert_eq!(
        m.run(&Op::XInfoGroups { key: b("none") }),
        Answer::Error(text::NO_SUCH_KEY.into())
    );
}

#[test]
fn xclaim_options_force_retrycount_idle_lastid() {
    let mut m = stream_with_group(3);
    let xclaim = |ids, justid, extra| Op::XClaim {
        key: b("s"),
        group: b("g"),
        consumer: b("c"),
        min_idle_ms: 1000,
        ids,
        now_ms: 10_000,
        justid,
        extra,
    };
    let force = ClaimExtra {
        force: true,
        ..ClaimExtra::default()
    };
    // FORCE makes a never-delivered entry pending (count 1, then counted: 2), idle ignored.
    assert_eq!(
        m.run(&xclaim(vec![id(2), id(9)], false, force)),
        arr(vec![entry(2)])
    );
    let all = ClaimExtra {
        at: Some(ClaimAt::IdleMs(5000)),
        retry_count: Some(7),
        force: true,
        last_id: Some(id(9)),
    };
    assert_eq!(
        m.run(&xclaim(vec![id(3)], true, all)),
        arr(vec![bulk("3-0")])
    );
    assert_eq!(
        pending(&mut m, 10_000),
        arr(vec![pel(2, "c", 0, 2), pel(3, "c", 5000, 7)])
    );
    let Some(ModelValue::Stream { groups, .. }) = m.map.get(&b("s")).map(|e| &e.value) else {
        panic!("no stream");
    };
    assert_eq!(groups[&b("g")].last_delivered, id(9), "LASTID raises it");
    let destroy = Op::XGroupDestroy {
        key: b("s"),
        group: b("g"),
    };
    assert_eq!(m.run(&destroy), Answer::Int(1));
    assert_eq!(m.run(&destroy), Answer::Int(0));
}
