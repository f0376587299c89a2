//! The delivery verdicts (harness/src/oracle/deliveries.rs) through the crash lab's judge
//! (crashlab/verdict.rs): an honest recovery of the event-stream consumer workload reports no
//! delivery anomaly; one that lost a loss window reports them without a violation; and a
//! recovered state with one logged delivery dropped is caught, as a divergent state and as a
//! delivered-then-lost entry that violates the promise (the companion that shows the check
//! can fail).

use durlab_engine::keyspace::StreamId;
use durlab_engine::{Command, Engine, EngineConfig, FsyncPolicy, Keyspace};
use durlab_harness::crashlab::verdict::{self, Recovered, Verdict};
use durlab_harness::oracle::model::ModelValue;
use durlab_harness::oracle::{Oracle, compare};
use durlab_harness::scenario::{self, locate};
use durlab_harness::workload::Workload;

const N: u64 = 4000;

fn oracle() -> Oracle {
    let path = locate::find_scenario("event-stream").expect("scenario exists");
    Oracle::new(Workload::new(
        &scenario::load(&path).expect("scenario loads").workload,
    ))
}

/// A recovered state held as a keyspace, recovered to `r` in a trial that issued `issued`.
fn loaded(oracle: &Oracle, ks: &Keyspace, r: u64, issued: u64) -> Recovered {
    Recovered::loaded(
        r,
        issued,
        || oracle.with_model(r, |m| compare::compare_keyspace(ks, m, 5)),
        "",
    )
    .with_groups(oracle, || compare::views_from_engine(ks))
}

fn keyspace(oracle: &Oracle, upto: u64) -> Keyspace {
    let mut ks = Keyspace::new();
    for n in 1..=upto {
        ks.apply(&oracle.workload().command(n));
    }
    ks
}

#[test]
fn an_honest_engine_recovery_reports_no_delivery_anomaly() {
    let oracle = oracle();
    let tmp = tempfile::tempdir().unwrap();
    let mut config = EngineConfig::new(tmp.path().join("data"));
    config.policy = FsyncPolicy::Always;
    {
        let (engine, _) = Engine::open(config.clone()).unwrap();
        for n in 1..=N {
            engine.execute(oracle.workload().command(n)).unwrap();
        }
    }
    let j = verdict::recover(config, &oracle, N).judge(N);
    assert_eq!(j.verdict, Verdict::Ok, "{}", j.detail);
    let d = j
        .deliveries(&oracle, N)
        .expect("a consumer workload has delivery verdicts");
    assert!(!d.any(), "{}", d.describe());
}

#[test]
fn a_loss_window_shows_in_the_deliveries_without_a_violation() {
    let oracle = oracle();
    let r = N - 600;
    let ks = keyspace(&oracle, r);
    let j = loaded(&oracle, &ks, r, N).judge(r);
    assert_eq!(j.verdict, Verdict::Ok, "{}", j.detail);
    let d = j.deliveries(&oracle, N).unwrap();
    // 600 commands lost: their reads are handed out again, their acks undone, the groups'
    // last-delivered ids moved back.
    assert!(d.double_handed > 0, "{}", d.describe());
    assert!(d.acked_redelivered > 0, "{}", d.describe());
    assert!(d.last_delivered_regressions > 0, "{}", d.describe());
    assert_eq!(d.delivered_lost, 0, "{}", d.describe());
    assert!(!verdict::deliveries_violate(&d, r, N));
}

#[test]
fn a_dropped_delivery_is_caught() {
    let oracle = oracle();
    let mut ks = keyspace(&oracle, N);
    // One delivery of the recovered state dropped: a pending entry the oracle at N has.
    let (key, group, id) = oracle.with_model(N, |m| {
        m.map
            .iter()
            .find_map(|(k, e)| match &e.value {
                ModelValue::Stream { groups, .. } => groups.iter().find_map(|(g, grp)| {
                    grp.pel.keys().next().map(|id| (k.clone(), g.clone(), *id))
                }),
                _ => None,
            })
            .expect("entries are pending at N")
    });
    let dropped = ks.apply(&Command::XAck {
        key,
        group,
        ids: vec![StreamId {
            ms: id.ms,
            seq: id.seq,
        }],
    });
    assert_eq!(dropped, durlab_engine::Reply::Int(1));
    let j = loaded(&oracle, &ks, N, N).judge(N);
    assert_eq!(j.verdict, Verdict::Divergent, "{}", j.detail);
    assert!(j.detail.contains("pending"), "{}", j.detail);
    let d = j.deliveries(&oracle, N).unwrap();
    assert_eq!(d.delivered_lost, 1, "{}", d.describe());
    assert_eq!(d.double_handed + d.acked_redelivered, 0, "{}", d.describe());
    assert!(verdict::deliveries_violate(&d, N, N));
}
