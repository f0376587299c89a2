//! Crash safety of snapshot writing, rewrite and manifest installation at every named crash
//! point (`durlab_engine::failpoint::ALL`). Run with `--features failpoints`.
//!
//! For each point: acknowledged commands, then the operation with the point armed (it stops
//! there, leaving files as a `kill -9` would: the page cache survives), more acknowledged
//! commands, drop, reopen, and compare with an independent keyspace that applied the same
//! commands. Then a normal rewrite or save must still work on the directory left behind.
#![cfg(feature = "failpoints")]

mod common;

use std::fs;
use std::path::Path;

use common::*;
use durlab_engine::failpoint;
use durlab_engine::{BackendKind, Engine, EngineConfig, Error, FsyncPolicy, Persistence};

/// Failpoints are process-wide: the bodies below must not overlap.
static SERIAL: parking_lot::Mutex<()> = parking_lot::Mutex::new(());

over_backends!(
    every_point_in_hybrid_rewrite,
    snapshot_points_in_snapshot_mode,
    snapshot_points_in_aof_snapshot_mode,
    the_check_catches_a_lost_command,
);

fn cfg(dir: &Path, kind: BackendKind, mode: Persistence, policy: FsyncPolicy) -> EngineConfig {
    let mut c = config(dir, kind, policy).persistence(mode);
    c.auto_rewrite_percentage = 0;
    c
}

fn write_more(engine: &Engine, n: u64) -> u64 {
    let mut last = 0;
    for _ in 0..n {
        last = engine.execute_next(command).unwrap().lsn.unwrap();
    }
    last
}

/// Like [`write_more`], but an engine that poisoned itself at the crash point (it could not
/// tell which manifest is in force) acknowledges nothing more: returns the last acked LSN.
fn write_more_unless_poisoned(engine: &Engine, n: u64) -> u64 {
    let mut last = engine.last_lsn();
    for _ in 0..n {
        match engine.execute_next(command) {
            Ok(ack) => last = ack.lsn.unwrap(),
            Err(e) if e.is_poisoned() => break,
            Err(e) => panic!("{e}"),
        }
    }
    last
}

/// Arms `point`, runs `op`, and checks that the point fired.
fn crash_at<T: std::fmt::Debug>(
    point: &'static str,
    op: impl FnOnce() -> durlab_engine::Result<T>,
) {
    failpoint::arm(point);
    match op() {
        Err(Error::Injected { point: p }) => assert_eq!(p, point),
        other => panic!("{point} did not fire: {other:?}"),
    }
    assert!(!failpoint::is_armed(point));
}

fn every_point_in_hybrid_rewrite(kind: BackendKind) {
    let _serial = SERIAL.lock();
    for policy in [FsyncPolicy::Always, FsyncPolicy::EverySec] {
        for &point in failpoint::ALL {
            let dir = tempfile::tempdir().unwrap();
            let c = cfg(dir.path(), kind, Persistence::Hybrid, policy);
            let engine = write_n(&c, 150);
            // A first rewrite, so that the crashed one has an old base to supersede.
            engine.rewrite().unwrap();
            write_more(&engine, 40);
            crash_at(point, || engine.rewrite());
            let acked = write_more_unless_poisoned(&engine, 25);
            drop(engine);
            let (engine, report) = Engine::open(c.clone())
                .unwrap_or_else(|e| panic!("{policy}/{point}: reopen failed: {e}"));
            assert_eq!(report.recovered_lsn, acked, "{policy}/{point}");
            assert_eq!(
                engine.read(dump),
                dump(&expected_after(acked)),
                "{policy}/{point}"
            );
            // The directory left behind still supports a full rewrite and recovery.
            engine.rewrite().unwrap();
            let acked = write_more(&engine, 5);
            drop(engine);
            let (engine, _) = open(&c);
            assert_eq!(
                engine.read(dump),
                dump(&expected_after(acked)),
                "{policy}/{point} after"
            );
        }
    }
}

fn snapshot_points() -> impl Iterator<Item = &'static str> {
    failpoint::ALL
        .iter()
        .copied()
        .filter(|p| p.starts_with("snapshot."))
}

fn snapshot_points_in_snapshot_mode(kind: BackendKind) {
    let _serial = SERIAL.lock();
    for point in snapshot_points() {
        let dir = tempfile::tempdir().unwrap();
        let c = cfg(dir.path(), kind, Persistence::Snapshot, FsyncPolicy::Always);
        let engine = write_n(&c, 100);
        let first = engine.save().unwrap().lsn;
        let attempted = write_more(&engine, 30);
        crash_at(point, || engine.save());
        write_more(&engine, 10);
        drop(engine);
        let (engine, report) = open(&c);
        // Mode snapshot keeps the last completed snapshot; the interrupted one counts only
        // if its rename happened (it was complete and synced by then).
        let expected = if point == "snapshot.after_rename" {
            attempted
        } else {
            first
        };
        assert_eq!(report.recovered_lsn, expected, "{point}");
        assert_eq!(
            engine.read(dump),
            dump(&expected_after(expected)),
            "{point}"
        );
        assert_eq!(engine.save().unwrap().lsn, expected);
    }
}

fn snapshot_points_in_aof_snapshot_mode(kind: BackendKind) {
    let _serial = SERIAL.lock();
    for point in snapshot_points() {
        let dir = tempfile::tempdir().unwrap();
        let c = cfg(
            dir.path(),
            kind,
            Persistence::AofSnapshot,
            FsyncPolicy::Always,
        );
        let engine = write_n(&c, 100);
        crash_at(point, || engine.save());
        let acked = write_more(&engine, 10);
        drop(engine);
        let (engine, report) = open(&c);
        assert_eq!(report.recovered_lsn, acked, "{point}");
        assert_eq!(engine.read(dump), dump(&expected_after(acked)), "{point}");
    }
}

/// The companion that shows the comparison above can fail: the same procedure, with the
/// last acknowledged record removed from the increment behind the engine's back (as an
/// engine that acknowledged before writing would leave it), must be caught.
fn the_check_catches_a_lost_command(kind: BackendKind) {
    let _serial = SERIAL.lock();
    let dir = tempfile::tempdir().unwrap();
    let c = cfg(dir.path(), kind, Persistence::Hybrid, FsyncPolicy::Always);
    let engine = write_n(&c, 50);
    crash_at("rewrite.after_base", || engine.rewrite());
    let acked = write_more(&engine, 5);
    drop(engine);
    let incr = dir.path().join("durlab.2.incr.aof");
    let records = durlab_engine::aof::FIRST_RECORD_OFFSET as usize;
    let bytes = fs::read(&incr).unwrap();
    // Drop the last record: walk the frames to find where it starts.
    let mut at = records;
    let mut last_start = at;
    let header = durlab_engine::aof::record::RECORD_HEADER_BYTES;
    while at + header <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        if len == 0 {
            break;
        }
        last_start = at;
        at += header + len;
    }
    fs::OpenOptions::new()
        .write(true)
        .open(&incr)
        .unwrap()
        .set_len(last_start as u64)
        .unwrap();
    let (engine, report) = open(&c);
    assert_ne!(
        report.recovered_lsn, acked,
        "the check must notice the lost command"
    );
    assert_ne!(engine.read(dump), dump(&expected_after(acked)));
}
