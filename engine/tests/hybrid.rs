//! Mode `hybrid`: base + increments + manifest, online rewrite under concurrent writers,
//! automatic rewrite, and recovery's refusals (missing file, no manifest, broken sequence,
//! damaged manifest). Each body runs over both backends.

mod common;

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use durlab_engine::hybrid::manifest::{self, MANIFEST_FILE_NAME};
use durlab_engine::{BackendKind, Engine, EngineConfig, Error, FsyncPolicy, Persistence};

over_backends!(
    new_directory_has_manifest_and_first_increment,
    rewrite_then_recover,
    rewrite_under_concurrent_writers,
    several_rewrites_keep_only_listed_files,
    everysec_rewrite_keeps_every_written_record,
    automatic_rewrite_on_growth,
    torn_tail_of_last_increment_is_cut,
    missing_listed_file_is_named,
    data_without_manifest_refused,
    damaged_manifest_refused,
    broken_lsn_sequence_refused,
    unlisted_files_are_reported_not_loaded,
);

fn hybrid(dir: &Path, kind: BackendKind) -> EngineConfig {
    let mut c = config(dir, kind, FsyncPolicy::Always).persistence(Persistence::Hybrid);
    c.auto_rewrite_percentage = 0;
    c
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn read_manifest(dir: &Path) -> manifest::Manifest {
    manifest::Manifest::decode(&fs::read(dir.join(MANIFEST_FILE_NAME)).unwrap()).unwrap()
}

fn new_directory_has_manifest_and_first_increment(kind: BackendKind) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = hybrid(dir.path(), kind);
    let (_, report) = open(&cfg);
    assert!(report.created);
    assert_eq!(
        names(dir.path()),
        vec!["durlab.1.incr.aof", "durlab.manifest"]
    );
    let m = read_manifest(dir.path());
    assert_eq!(
        (m.generation, m.base.is_none(), m.incrs.len()),
        (1, true, 1)
    );
}

fn rewrite_then_recover(kind: BackendKind) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = hybrid(dir.path(), kind);
    let engine = write_n(&cfg, 400);
    let info = engine.rewrite().unwrap();
    assert_eq!(info.base.lsn, 400);
    assert_eq!(info.removed, vec![dir.path().join("durlab.1.incr.aof")]);
    for _ in 0..100 {
        engine.execute_next(command).unwrap();
    }
    drop(engine);
    assert_eq!(
        names(dir.path()),
        vec!["durlab.2.base.snap", "durlab.2.incr.aof", "durlab.manifest"]
    );
    let (engine, report) = open(&cfg);
    assert_eq!(report.recovered_lsn, 500);
    assert_eq!(report.snapshot_lsn, Some(400));
    assert_eq!(report.records_replayed, 100);
    assert_eq!(engine.read(dump), dump(&expected_after(500)));
    assert_eq!(engine.execute_next(command).unwrap().lsn, Some(501));
}

fn rewrite_under_concurrent_writers(kind: BackendKind) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = hybrid(dir.path(), kind);
    let engine = write_n(&cfg, 3000);
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let writers: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        engine.execute_next(command).unwrap();
                    }
                })
            })
            .collect();
        for _ in 0..3 {
            engine.rewrite().unwrap();
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for w in writers {
            w.join().unwrap();
        }
    });
    let last = engine.last_lsn();
    drop(engine);
    let (engine, report) = open(&cfg);
    assert_eq!(
        report.recovered_lsn, last,
        "every acknowledged command recovered"
    );
    assert_eq!(engine.read(dump), dump(&expected_after(last)));
}

fn several_rewrites_keep_only_listed_files(kind: BackendKind) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = hybrid(dir.path(), kind);
    let engine = write_n(&cfg, 50);
    for round in 0..4 {
        engine.rewrite().unwrap();
        for _ in 0..10 {
            engine.execute_next(command).unwrap();
        }
        let m = read_manifest(dir.path());
        let mut listed: Vec<String> = m.files().into_iter().map(String::from).collect();
        listed.push(MANIFEST_FILE_NAME.into());
        listed.sort();
        assert_eq!(names(dir.path()), listed, "round {round}");
    }
    drop(engine);
    let (engine, _) = open(&cfg);
    assert_eq!(engine.read(dump), dump(&expected_after(90)));
}

/// Under everysec the old increment holds written but unsynced records at the switch: the
/// switch must sync them, and the new increment must continue right after them.
fn everysec_rewrite_keeps_every_written_record(kind: BackendKind) {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = hybrid(dir.path(), kind);
    cfg.policy = FsyncPolicy::EverySec;
    cfg.everysec_interval_ms = 60_000;
    let engine = write_n(&cfg, 200);
    assert!(engine.durable_lsn() < 200);
    engine.rewrite().unwrap();
    assert_eq!(
        engine.durable_lsn(),
        200,
        "the switch synced the old increment"
    );
    for _ in 0..20 {
        engine.execute_next(command).unwrap();
    }
    drop(engine);
    let (engine, report) = open(&cfg);
    assert_eq!(report.recovered_lsn, 220);
    assert_eq!(engine.read(dump), dump(&expected_after(220)));
}

fn automatic_rewrite_on_growth(kind: BackendKind) {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = hybrid(dir.path(), kind);
    cfg.auto_rewrite_percentage = 100;
    cfg.auto_rewrite_min_bytes = 8 << 10;
    cfg.maintenance_interval_ms = 5;
    let (engine, _) = open(&cfg);
    let deadline = Instant::now() + Duration::from_secs(30);
    while engine.last_save_lsn() == 0 {
        assert!(Instant::now() < deadline, "automatic rewrite never ran");
        engine.execute_next(command).unwrap();
    }
    let last = engine.last_lsn();
    drop(engine);
    assert!(read_manifest(dir.path()).base.is_some());
    let (engine, report) = open(&cfg);
    assert_eq!(report.recovered_lsn, last);
    assert_eq!(engine.read(dump), dump(&expected_after(last)));
}

fn torn_tail_of_last_increment_is_cut(kind: BackendKind) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = hybrid(dir.path(), kind);
    let engine = write_n(&cfg, 100);
    engine.rewrite().unwrap();
    for _ in 0..10 {
        engine.execute_next(command).unwrap();
    }
    drop(engine);
    let incr = dir.path().join("durlab.2.incr.aof");
    // The data's end: a preallocated file (mmap) has zeros after it.
    let bytes = fs::read(&incr).unwrap();
    let len = bytes.iter().rposition(|&b| b != 0).unwrap() as u64 + 1;
    let f = fs::OpenOptions::new().write(true).open(&incr).unwrap();
    f.set_len(len - 5).unwrap();
    let (engine, report) = open(&cfg);
    assert_eq!(report.recovered_lsn, 109);
    assert!(report.quarantine_path.is_some());
    assert_eq!(engine.read(dump), dump(&expected_after(109)));
}

fn missing_listed_file_is_named(kind: BackendKind) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = hybrid(dir.path(), kind);
    let engine = write_n(&cfg, 30);
    engine.rewrite().unwrap();
    drop(engine);
    let base = dir.path().join("durlab.2.base.snap");
    fs::rename(&base, dir.path().join("elsewhere")).unwrap();
    match Engine::open(cfg) {
        Err(Error::MissingFile { path, .. }) => assert_eq!(path, base),
        other => panic!("expected MissingFile, got {other:?}"),
    }
}

fn data_without_manifest_refused(kind: BackendKind) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = hybrid(dir.path(), kind);
    drop(write_n(&cfg, 30));
    fs::remove_file(dir.path().join(MANIFEST_FILE_NAME)).unwrap();
    let err = Engine::open(cfg).expect_err("data without a manifest must be refused");
    assert!(err.to_string().contains("refusing to start empty"), "{err}");
}

fn damaged_manifest_refused(kind: BackendKind) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = hybrid(dir.path(), kind);
    let engine = write_n(&cfg, 30);
    engine.rewrite().unwrap();
    drop(engine);
    let path = dir.path().join(MANIFEST_FILE_NAME);
    let good = fs::read(&path).unwrap();
    for at in [0, good.len() / 2, good.len() - 3] {
        let mut bad = good.clone();
        bad[at] ^= 0x01;
        fs::write(&path, &bad).unwrap();
        match Engine::open(cfg.clone()) {
            Err(Error::Corrupt { path: p, .. }) => assert_eq!(p, path),
            other => panic!("flip at {at}: expected Corrupt, got {other:?}"),
        }
    }
}

/// A manifest that lists an increment whose records do not continue the base's LSN.
fn broken_lsn_sequence_refused(kind: BackendKind) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = hybrid(dir.path(), kind);
    let engine = write_n(&cfg, 30);
    engine.rewrite().unwrap();
    drop(engine);
    let mut m = read_manifest(dir.path());
    m.base.as_mut().unwrap().lsn = 29;
    m.incrs[0].base_lsn = 29;
    fs::write(dir.path().join(MANIFEST_FILE_NAME), m.encode()).unwrap();
    let err = Engine::open(cfg).expect_err("an LSN mismatch must be refused");
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
}

fn unlisted_files_are_reported_not_loaded(kind: BackendKind) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = hybrid(dir.path(), kind);
    drop(write_n(&cfg, 30));
    let stray = dir.path().join("durlab.7.base.snap.tmp");
    fs::write(&stray, b"partial").unwrap();
    let (engine, report) = open(&cfg);
    assert_eq!(report.leftover_files, vec![stray]);
    assert_eq!(engine.read(dump), dump(&expected_after(30)));
    // The next rewrite picks a sequence number above the leftover's.
    engine.rewrite().unwrap();
    assert!(
        read_manifest(dir.path())
            .files()
            .contains(&"durlab.8.base.snap")
    );
}
