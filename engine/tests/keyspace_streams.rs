//! Keyspace semantics of streams: XADD.

mod keyspace_support;

use durlab_engine::keyspace::{Keyspace, Reply, msg};
use keyspace_support::*;

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

#[test]
fn xadd_time_ids_never_go_backwards() {
    use durlab_engine::keyspace::{Command, StreamId, XAddId};
    let add = |ks: &mut Keyspace, id| {
        run(
            ks,
            Command::XAdd {
                key: b("s"),
                id,
                fields: vec![(b("f"), b("v"))],
                maxlen: None,
            },
        )
    };
    let mut ks = Keyspace::new();
    assert_eq!(add(&mut ks, XAddId::Time { now_ms: 1000 }), bulk("1000-0"));
    assert_eq!(add(&mut ks, XAddId::Time { now_ms: 1000 }), bulk("1000-1"));
    // The clock went back: the ids do not.
    assert_eq!(add(&mut ks, XAddId::Time { now_ms: 5 }), bulk("1000-2"));
    assert_eq!(add(&mut ks, XAddId::Time { now_ms: 1001 }), bulk("1001-0"));
    // `ms-*`: next seq for the same ms, 0 for a later ms, refused for an earlier one.
    assert_eq!(add(&mut ks, XAddId::AutoSeq { ms: 1001 }), bulk("1001-1"));
    assert_eq!(add(&mut ks, XAddId::AutoSeq { ms: 2000 }), bulk("2000-0"));
    assert_eq!(
        add(&mut ks, XAddId::AutoSeq { ms: 1999 }),
        err(msg::XADD_ID_TOO_SMALL)
    );
    let mut empty = Keyspace::new();
    assert_eq!(add(&mut empty, XAddId::AutoSeq { ms: 0 }), bulk("0-1"));
    assert_eq!(add(&mut empty, XAddId::AutoSeq { ms: 0 }), bulk("0-2"));
    let mut full = Keyspace::new();
    add(
        &mut full,
        XAddId::Explicit(StreamId {
            ms: 3,
            seq: u64::MAX,
        }),
    );
    assert_eq!(
        add(&mut full, XAddId::AutoSeq { ms: 3 }),
        err(msg::XADD_ID_TOO_SMALL)
    );
    assert_eq!(add(&mut full, XAddId::Time { now_ms: 2 }), bulk("4-0"));
}
