//! Keyspace semantics of sorted sets: ZADD, ZREM, ZPOPMIN.

mod keyspace_support;

use durlab_engine::keyspace::{Keyspace, Reply, msg};
use keyspace_support::*;

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
            bulk("1e+20") // Redis 7.0's %.17g
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
