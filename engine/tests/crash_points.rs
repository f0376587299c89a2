//! Crash safety of snapshot writing, rewrite, manifest installation and recovery's cut of most
//! of a log at every named crash point (`durlab_engine::failpoint::ALL`). Run with
//! `--features failpoints`.
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

// The mmap backend's log is preallocated: its cuts copy the cut bytes and keep its length.
over_unpreallocated_backends!(
    every_point_in_a_cut_of_most_of_a_log,
    the_cut_check_catches_lost_bytes,
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
        for point in failpoint::ALL
            .iter()
            .copied()
            .filter(|p| !p.starts_with("cut."))
        {
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

/// A log of 30 acknowledged records followed by a torn tail three times as long (non-zero
/// bytes and no valid record: what a power loss can leave of unsynced appends), so that
/// recovery cuts most of the log and keeps the whole of it instead of copying its tail.
/// Returns the log's bytes.
fn log_with_a_long_torn_tail(c: &EngineConfig) -> Vec<u8> {
    drop(write_n(c, 30));
    let path = c.dir.join(durlab_engine::aof::LOG_FILE_NAME);
    let mut bytes = fs::read(&path).unwrap();
    let junk: Vec<u8> = (0..3 * bytes.len()).map(|i| (i % 251) as u8 | 1).collect();
    bytes.extend_from_slice(&junk);
    fs::write(&path, &bytes).unwrap();
    bytes
}

/// Whether every byte of `log` is still in `dir`: the log there holds them, or a quarantine
/// file holds the whole log as it was (the bytes the log now holds, then the cut ones).
fn log_bytes_kept(dir: &Path, log: &[u8]) -> bool {
    let name = durlab_engine::aof::LOG_FILE_NAME;
    let now = fs::read(dir.join(name)).unwrap();
    now == log
        || fs::read_dir(dir).unwrap().any(|e| {
            let e = e.unwrap();
            let n = e.file_name().to_string_lossy().into_owned();
            n.starts_with(name)
                && n.contains(".whole.quarantine")
                && fs::read(e.path()).unwrap() == log
                && log.starts_with(&now)
        })
}

/// A crash at every step of a cut that keeps the whole log (the new log's temp file written,
/// the old log linked to its quarantine name, the temp file renamed over the log): no byte of the log is lost, and
/// the restart recovers the 30 records, cuts as needed, and takes more writes that a further
/// restart recovers.
fn every_point_in_a_cut_of_most_of_a_log(kind: BackendKind) {
    let _serial = SERIAL.lock();
    for point in failpoint::ALL
        .iter()
        .copied()
        .filter(|p| p.starts_with("cut."))
    {
        let dir = tempfile::tempdir().unwrap();
        let c = cfg(dir.path(), kind, Persistence::Aof, FsyncPolicy::Always);
        let log = log_with_a_long_torn_tail(&c);
        crash_at(point, || Engine::open(c.clone()));
        assert!(log_bytes_kept(dir.path(), &log), "{point}: bytes lost");
        let (engine, report) =
            Engine::open(c.clone()).unwrap_or_else(|e| panic!("{point}: reopen failed: {e}"));
        assert_eq!(report.recovered_lsn, 30, "{point}");
        assert!(log_bytes_kept(dir.path(), &log), "{point}: bytes lost");
        let acked = write_more(&engine, 5);
        drop(engine);
        let (engine, report) = open(&c);
        assert_eq!(report.recovered_lsn, acked, "{point} after");
        assert_eq!(report.tail_bytes_discarded, 0, "{point} after");
        assert_eq!(engine.read(dump), dump(&expected_after(acked)), "{point}");
    }
}

/// The companion that shows [`log_bytes_kept`] can fail: after a cut that kept the whole log,
/// the quarantine file removed (or one byte of it changed) is caught.
fn the_cut_check_catches_lost_bytes(kind: BackendKind) {
    let _serial = SERIAL.lock();
    let dir = tempfile::tempdir().unwrap();
    let c = cfg(dir.path(), kind, Persistence::Aof, FsyncPolicy::Always);
    let log = log_with_a_long_torn_tail(&c);
    let (engine, report) = open(&c);
    drop(engine);
    assert!(report.quarantine_whole_log);
    let kept = report.quarantine_path.unwrap();
    assert!(log_bytes_kept(dir.path(), &log));
    let mut changed = fs::read(&kept).unwrap();
    *changed.last_mut().unwrap() ^= 1;
    fs::write(&kept, &changed).unwrap();
    assert!(!log_bytes_kept(dir.path(), &log), "a changed byte");
    fs::remove_file(&kept).unwrap();
    assert!(
        !log_bytes_kept(dir.path(), &log),
        "a removed quarantine file"
    );
}
