//! Snapshots: modes `snapshot` and `aof+snapshot`, explicit saves and save points, point in
//! time under concurrent writers, and detection of every kind of damaged snapshot.
//! Each body runs over both backends.

mod common;

use std::fs;
use std::time::{Duration, Instant};

use common::*;
use durlab_engine::snapshot::SNAPSHOT_FILE_NAME;
use durlab_engine::{BackendKind, Command, Engine, Error, FsyncPolicy, Persistence};

over_backends!(
    snapshot_mode_recovers_last_save,
    snapshot_mode_loses_only_after_last_save,
    aof_snapshot_recovers_from_log,
    save_points_trigger_in_background,
    save_under_concurrent_writers_is_point_in_time,
    flipped_byte_is_refused_naming_file,
    truncated_snapshot_is_refused,
    large_damaged_snapshot_is_refused_naming_file_and_offset,
    missing_snapshot_with_data_files_refused,
    leftover_temp_is_ignored_and_reported,
);

fn snap_config(
    dir: &std::path::Path,
    kind: BackendKind,
    mode: Persistence,
) -> durlab_engine::EngineConfig {
    config(dir, kind, FsyncPolicy::Always).persistence(mode)
}

fn snapshot_mode_recovers_last_save(kind: BackendKind) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = snap_config(dir.path(), kind, Persistence::Snapshot);
    let engine = write_n(&cfg, 300);
    assert!(
        !dir.path().join("durlab.aof").exists(),
        "snapshot mode keeps no log"
    );
    let info = engine.save().unwrap();
    assert_eq!(info.lsn, 300);
    assert_eq!(engine.durable_lsn(), 300);
    drop(engine);
    let (engine, report) = open(&cfg);
    assert_eq!(report.recovered_lsn, 300);
    assert_eq!(report.snapshot_lsn, Some(300));
    assert_eq!(engine.read(dump), dump(&expected_after(300)));
    // LSNs continue after the snapshot's.
    assert_eq!(engine.execute_next(command).unwrap().lsn, Some(301));
}

fn snapshot_mode_loses_only_after_last_save(kind: BackendKind) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = snap_config(dir.path(), kind, Persistence::Snapshot);
    let engine = write_n(&cfg, 100);
    engine.save().unwrap();
    for _ in 0..50 {
        engine.execute_next(command).unwrap();
    }
    drop(engine);
    let (engine, report) = open(&cfg);
    assert_eq!(
        report.recovered_lsn, 100,
        "recovered state is the last snapshot"
    );
    assert_eq!(engine.read(dump), dump(&expected_after(100)));
}

fn aof_snapshot_recovers_from_log(kind: BackendKind) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = snap_config(dir.path(), kind, Persistence::AofSnapshot);
    let engine = write_n(&cfg, 120);
    assert_eq!(engine.save().unwrap().lsn, 120);
    for _ in 0..30 {
        engine.execute_next(command).unwrap();
    }
    drop(engine);
    assert!(dir.path().join(SNAPSHOT_FILE_NAME).exists());
    let (engine, report) = open(&cfg);
    assert_eq!(
        report.recovered_lsn, 150,
        "the log, not the snapshot, is recovered"
    );
    assert_eq!(engine.read(dump), dump(&expected_after(150)));
}

fn save_points_trigger_in_background(kind: BackendKind) {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = snap_config(dir.path(), kind, Persistence::Snapshot).save_points(vec![(0, 50)]);
    cfg.maintenance_interval_ms = 5;
    let engine = write_n(&cfg, 40);
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(
        engine.last_save_lsn(),
        0,
        "40 changes do not reach the save point"
    );
    for _ in 0..20 {
        engine.execute_next(command).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while engine.last_save_lsn() < 50 {
        assert!(Instant::now() < deadline, "save point never fired");
        std::thread::sleep(Duration::from_millis(5));
    }
    let saved = engine.last_save_lsn();
    drop(engine);
    let (engine, report) = open(&cfg);
    assert_eq!(report.recovered_lsn, saved);
    assert_eq!(engine.read(dump), dump(&expected_after(saved)));
}

/// Writers keep changing every type while saves run; each snapshot must equal the state at
/// exactly its LSN.
fn save_under_concurrent_writers_is_point_in_time(kind: BackendKind) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = snap_config(dir.path(), kind, Persistence::Snapshot);
    let engine = write_n(&cfg, 5000);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let infos = std::thread::scope(|s| {
        let writer = s.spawn(|| {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                engine.execute_next(command).unwrap();
            }
        });
        let mut infos = Vec::new();
        for _ in 0..3 {
            let info = engine.save().unwrap();
            // Check this snapshot before the next replaces it.
            let (copy, _) = copy_and_open(dir.path(), &cfg);
            assert_eq!(
                copy.read(dump),
                dump(&expected_after(info.lsn)),
                "snapshot at {}",
                info.lsn
            );
            infos.push(info);
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        writer.join().unwrap();
        infos
    });
    assert!(infos.windows(2).all(|w| w[0].lsn <= w[1].lsn));
}

/// Opens a copy of `durlab.snap` in a fresh directory.
fn copy_and_open(
    dir: &std::path::Path,
    cfg: &durlab_engine::EngineConfig,
) -> (Engine, tempfile::TempDir) {
    let copy = tempfile::tempdir().unwrap();
    fs::copy(
        dir.join(SNAPSHOT_FILE_NAME),
        copy.path().join(SNAPSHOT_FILE_NAME),
    )
    .unwrap();
    let mut c = cfg.clone();
    c.dir = copy.path().to_path_buf();
    (Engine::open(c).unwrap().0, copy)
}

fn saved_dir(kind: BackendKind) -> (tempfile::TempDir, durlab_engine::EngineConfig, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = snap_config(dir.path(), kind, Persistence::Snapshot);
    write_n(&cfg, 200).save().unwrap();
    let bytes = fs::read(dir.path().join(SNAPSHOT_FILE_NAME)).unwrap();
    (dir, cfg, bytes)
}

fn flipped_byte_is_refused_naming_file(kind: BackendKind) {
    let (dir, cfg, bytes) = saved_dir(kind);
    for at in [0, 20, 40, bytes.len() / 2, bytes.len() - 1] {
        let mut bad = bytes.clone();
        bad[at] ^= 0x10;
        fs::write(dir.path().join(SNAPSHOT_FILE_NAME), &bad).unwrap();
        match Engine::open(cfg.clone()) {
            Err(Error::Corrupt { path, .. }) => {
                assert!(path.ends_with(SNAPSHOT_FILE_NAME), "{path:?}")
            }
            other => panic!("flip at {at}: expected Corrupt, got {other:?}"),
        }
    }
}

fn truncated_snapshot_is_refused(kind: BackendKind) {
    let (dir, cfg, bytes) = saved_dir(kind);
    for len in [0, 10, 40, bytes.len() / 2, bytes.len() - 1] {
        fs::write(dir.path().join(SNAPSHOT_FILE_NAME), &bytes[..len]).unwrap();
        let err = Engine::open(cfg.clone()).expect_err("a truncated snapshot must be refused");
        assert!(matches!(err, Error::Corrupt { .. }), "len {len}: {err}");
    }
}

/// A snapshot large enough that loading decodes several batches concurrently with the
/// checksum: damage anywhere is still refused as a checksum mismatch at the footer's offset,
/// a truncation at an offset within what remains, and nothing is loaded.
fn large_damaged_snapshot_is_refused_naming_file_and_offset(kind: BackendKind) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = snap_config(dir.path(), kind, Persistence::Snapshot);
    let keys = 5000;
    let (engine, _) = open(&cfg);
    for i in 0..keys {
        engine
            .execute(Command::Set {
                key: format!("key:{i:05}").into_bytes(),
                value: vec![b'v'; 40],
            })
            .unwrap();
    }
    engine.save().unwrap();
    drop(engine);
    let path = dir.path().join(SNAPSHOT_FILE_NAME);
    let bytes = fs::read(&path).unwrap();
    let refusal = |bad: &[u8]| {
        fs::write(&path, bad).unwrap();
        match Engine::open(cfg.clone()) {
            Err(Error::Corrupt {
                path: named,
                offset,
                reason,
            }) => {
                assert_eq!(named, path);
                (offset, reason)
            }
            Ok((engine, _)) => panic!("loaded {} keys", engine.read(|ks| ks.len())),
            Err(e) => panic!("expected Corrupt, got {e}"),
        }
    };
    let footer_at = bytes.len() as u64 - 24;
    for at in [40, 1000, bytes.len() / 2, bytes.len() - 100] {
        let mut bad = bytes.clone();
        bad[at] ^= 0x01;
        let (offset, reason) = refusal(&bad);
        assert_eq!(offset, footer_at, "flip at {at}: {reason}");
        assert!(
            reason.contains("checksum mismatch"),
            "flip at {at}: {reason}"
        );
    }
    for len in [bytes.len() / 3, bytes.len() - 25, bytes.len() - 1] {
        let (offset, reason) = refusal(&bytes[..len]);
        assert!(
            offset <= len as u64,
            "truncated to {len}: {offset} {reason}"
        );
    }
    fs::write(&path, &bytes).unwrap();
    let (engine, report) = Engine::open(cfg.clone()).unwrap();
    assert_eq!(report.snapshot_entries, keys);
    assert_eq!(engine.read(|ks| ks.len()), keys as usize);
}

fn missing_snapshot_with_data_files_refused(kind: BackendKind) {
    let (dir, cfg, _) = saved_dir(kind);
    fs::rename(
        dir.path().join(SNAPSHOT_FILE_NAME),
        dir.path().join("durlab.snap.old"),
    )
    .unwrap();
    let err = Engine::open(cfg).expect_err("never start empty next to data files");
    assert!(err.to_string().contains("refusing to start empty"), "{err}");
}

fn leftover_temp_is_ignored_and_reported(kind: BackendKind) {
    let (dir, cfg, _) = saved_dir(kind);
    let temp = dir.path().join("durlab.snap.tmp");
    fs::write(&temp, b"half a snapshot").unwrap();
    let (engine, report) = open(&cfg);
    assert_eq!(report.recovered_lsn, 200);
    assert_eq!(report.leftover_files, vec![temp]);
    // The next save replaces the leftover.
    engine.save().unwrap();
    assert!(!dir.path().join("durlab.snap.tmp").exists());
}
