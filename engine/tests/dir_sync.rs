//! Every install by rename (snapshot, hybrid manifest) is made durable by an fsync of its
//! directory right after the rename, before anything that depends on it, checked on the
//! recorded I/O of a real backend. The companion runs the engine over a backend that lies
//! (`common::SkipsDirSyncAfterRename`, above the recorder) and shows the check can fail.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::{SkipsDirSyncAfterRename, config};
use durlab_engine::backend::open_backend;
use durlab_engine::backend::recording::{Op, RecordingBackend, read_trace};
use durlab_engine::{BackendKind, Command, Engine, FsyncPolicy, Persistence};

/// The renames of the trace not followed at once by an fsync of their directory (the test
/// runs one thread, so nothing else may come between: whatever came next could depend on the
/// rename, e.g. appends to an increment that only the new manifest lists).
fn renames_left_unsynced(trace: &Path) -> Vec<String> {
    let t = read_trace(trace).unwrap();
    t.entries
        .windows(2)
        .filter_map(|w| match (&w[0].op, &w[1].op) {
            (Op::Rename { to, .. }, Op::SyncDir { dir, .. }) if to.parent() == Some(dir) => None,
            (Op::Rename { to, .. }, next) => Some(format!(
                "{} (trace entry {}, followed by {next:?})",
                to.display(),
                w[0].seq
            )),
            _ => None,
        })
        .chain(t.entries.last().and_then(|e| match &e.op {
            Op::Rename { to, .. } => Some(format!("{} (last trace entry)", to.display())),
            _ => None,
        }))
        .collect()
}

/// Saves (or rewrites) 3 times under `persistence`, recording the I/O; returns the renames
/// not followed at once by a directory fsync, and how many renames the trace holds. With
/// `lying`, the recorder sits below a backend that skips the directory fsync after a rename.
fn installs(kind: BackendKind, persistence: Persistence, lying: bool) -> (Vec<String>, usize) {
    let tmp = tempfile::tempdir().unwrap();
    let trace = tmp.path().join("io.trace");
    let mut cfg = config(&tmp.path().join("data"), kind, FsyncPolicy::Always);
    cfg.persistence = persistence;
    let recording = Arc::new(RecordingBackend::new(open_backend(kind).unwrap(), &trace).unwrap());
    cfg.backend_override = Some(if lying {
        Arc::new(SkipsDirSyncAfterRename::new(recording))
    } else {
        recording
    });
    let (engine, _) = Engine::open(cfg).unwrap();
    for round in 0..3 {
        for i in 0..20 {
            engine
                .execute(Command::Set {
                    key: format!("k{i}").into_bytes(),
                    value: format!("v{round}").into_bytes(),
                })
                .unwrap();
        }
        engine.save().unwrap();
    }
    let unsynced = renames_left_unsynced(&trace);
    drop(engine);
    let renames = read_trace(&trace)
        .unwrap()
        .entries
        .iter()
        .filter(|e| matches!(e.op, Op::Rename { .. }))
        .count();
    (unsynced, renames)
}

fn every_rename_is_followed_by_a_directory_sync(kind: BackendKind) {
    for mode in [
        Persistence::Snapshot,
        Persistence::AofSnapshot,
        Persistence::Hybrid,
    ] {
        let (unsynced, renames) = installs(kind, mode, false);
        assert!(renames >= 3, "{mode}: every save installs by rename");
        assert!(
            unsynced.is_empty(),
            "{mode}: renames left unsynced: {unsynced:?}"
        );
    }
}

fn a_backend_skipping_the_dir_sync_leaves_renames_unsynced(kind: BackendKind) {
    for mode in [Persistence::Snapshot, Persistence::Hybrid] {
        let (unsynced, _) = installs(kind, mode, true);
        assert!(
            !unsynced.is_empty(),
            "{mode}: the check must catch the skipped directory fsync"
        );
    }
}

over_backends!(
    every_rename_is_followed_by_a_directory_sync,
    a_backend_skipping_the_dir_sync_leaves_renames_unsynced
);
