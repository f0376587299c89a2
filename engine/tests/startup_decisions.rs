//! Startup's decisions outside the log's bytes (issue 18): when a directory without its primary
//! file may start empty (`recovery/files.rs`: only if no file there may hold a key), what a
//! blank log becomes, and that a quarantine copy that cannot be completed (full disk, failed
//! sync) is removed with nothing cut. Real files; the full disk and the failed sync come from
//! the fault-injecting wrapper around the real backend.

use std::fs;
use std::path::Path;
use std::sync::Arc;

use durlab_engine::aof::file_header::FileHeader;
use durlab_engine::aof::{FIRST_RECORD_OFFSET, LOG_FILE_NAME};
use durlab_engine::backend::faulty::FaultyBackend;
use durlab_engine::backend::open_backend;
use durlab_engine::snapshot::format::{FOOTER_BYTES, HEADER_BYTES};
use durlab_engine::{
    BackendKind, Command, Engine, EngineConfig, Error, FsyncPolicy, Persistence, RecoveryReport,
};

fn config(dir: &Path, persistence: Persistence) -> EngineConfig {
    EngineConfig::new(dir)
        .backend(BackendKind::Pwrite)
        .policy(FsyncPolicy::Always)
        .persistence(persistence)
}

/// A directory holding `files` (name, bytes) and nothing else.
fn dir_with(files: &[(&str, Vec<u8>)]) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    for (name, bytes) in files {
        fs::write(tmp.path().join(name), bytes).unwrap();
    }
    tmp
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Opening `files` in `persistence` must refuse to start empty, name each file in `named`
/// with its size, and change nothing.
fn assert_refused(persistence: Persistence, files: &[(&str, Vec<u8>)], named: &[&str]) -> String {
    let tmp = dir_with(files);
    let before = names(tmp.path());
    let err = Engine::open(config(tmp.path(), persistence))
        .map(|_| ())
        .expect_err("files that may hold data: no empty start");
    let Error::RefusingEmptyStart(msg) = &err else {
        panic!("expected a refused empty start, got {err}")
    };
    assert!(msg.starts_with("refusing to start empty: "), "{msg}");
    for (name, bytes) in files {
        let listed = format!("{name}: {} bytes", bytes.len());
        assert_eq!(
            msg.contains(&listed),
            named.contains(name),
            "{listed} in {msg}"
        );
    }
    assert_eq!(names(tmp.path()), before, "a refusal changes nothing");
    msg.clone()
}

/// Opening `files` in `persistence` must start empty, listing them all as leftovers.
fn assert_starts_empty(persistence: Persistence, files: &[(&str, Vec<u8>)]) -> RecoveryReport {
    let tmp = dir_with(files);
    let (engine, report) = Engine::open(config(tmp.path(), persistence))
        .unwrap_or_else(|e| panic!("{files:?} hold no key: {e}"));
    drop(engine);
    assert!(report.created);
    assert_eq!(report.recovered_lsn, 0);
    let mut expected: Vec<_> = files.iter().map(|(n, _)| tmp.path().join(n)).collect();
    expected.sort();
    let mut leftovers = report.leftover_files.clone();
    leftovers.sort();
    assert_eq!(leftovers, expected);
    for (name, bytes) in files {
        let path = tmp.path().join(name);
        let installed = match persistence {
            Persistence::Snapshot => "durlab.snap.tmp",
            Persistence::Hybrid => "durlab.manifest.tmp",
            _ => "",
        };
        if *name == installed {
            // The first start's own snapshot or manifest is written under that temp name.
            assert!(!path.exists());
            continue;
        }
        assert!(fs::read(path).unwrap() == *bytes, "{name} untouched");
    }
    report
}

/// The smallest snapshot that can hold a key is longer than an empty one.
const EMPTY_SNAPSHOT_BYTES: usize = HEADER_BYTES + FOOTER_BYTES;

fn header_only_incr() -> Vec<u8> {
    FileHeader { base_lsn: 0 }.encode().to_vec()
}

#[test]
fn leftovers_that_may_hold_data_refuse_an_empty_start() {
    for mode in [Persistence::Aof, Persistence::Snapshot, Persistence::Hybrid] {
        let msg = assert_refused(
            mode,
            &[("durlab.snap.tmp", vec![7; EMPTY_SNAPSHOT_BYTES + 1])],
            &["durlab.snap.tmp"],
        );
        assert!(
            msg.contains("holds only leftovers of interrupted operations that may hold data")
                && msg.contains("move them out of the directory"),
            "{msg}"
        );
        // A temp file of any other kind with one non-zero byte.
        assert_refused(
            mode,
            &[("durlab.3.base.snap.x.tmp", vec![0, 0, 1])],
            &["durlab.3.base.snap.x.tmp"],
        );
    }
}

#[test]
fn leftovers_that_hold_no_key_allow_an_empty_start() {
    for mode in [Persistence::Aof, Persistence::Snapshot, Persistence::Hybrid] {
        assert_starts_empty(
            mode,
            &[
                // As long as an empty snapshot: what a first start in mode snapshot writes.
                ("durlab.snap.tmp", vec![7; EMPTY_SNAPSHOT_BYTES]),
                // A manifest lists files; it holds no key.
                ("durlab.manifest.tmp", vec![9; 500]),
                // Empty or zeros: nothing was written.
                ("durlab.4.base.snap.tmp", vec![0; 4096]),
                ("durlab.other.tmp", Vec::new()),
                // An increment without records: a crash while creating a hybrid directory.
                ("durlab.1.incr.aof", header_only_incr()),
                (
                    "durlab.2.incr.aof",
                    [header_only_incr(), vec![0; 100]].concat(),
                ),
                ("durlab.3.incr.aof", vec![5; FIRST_RECORD_OFFSET as usize]),
            ],
        );
    }
}

#[test]
fn data_files_refuse_an_empty_start_and_are_named_apart_from_leftovers() {
    let record_byte = [header_only_incr(), vec![0, 1]].concat();
    for mode in [Persistence::Aof, Persistence::Snapshot, Persistence::Hybrid] {
        let msg = assert_refused(
            mode,
            &[
                ("durlab.1.incr.aof", record_byte.clone()),
                ("durlab.snap.tmp", vec![7; 1000]),
            ],
            &["durlab.1.incr.aof"],
        );
        assert!(msg.contains("but data files exist"), "{msg}");
        // An increment one byte past its header, and a tiny file of a kind that holds data.
        assert_refused(
            mode,
            &[(
                "durlab.5.incr.aof",
                vec![5; FIRST_RECORD_OFFSET as usize + 1],
            )],
            &["durlab.5.incr.aof"],
        );
        assert_refused(
            mode,
            &[("durlab.aof.64.quarantine", vec![1; 10])],
            &["durlab.aof.64.quarantine"],
        );
    }
    // In mode aof, a snapshot without the log; in mode snapshot, a log without the snapshot.
    assert_refused(
        Persistence::Aof,
        &[("durlab.snap", vec![1; 10])],
        &["durlab.snap"],
    );
    assert_refused(
        Persistence::Snapshot,
        &[("durlab.aof", header_only_incr())],
        &["durlab.aof"],
    );
}

#[test]
fn first_start_in_snapshot_mode_writes_the_empty_state() {
    let tmp = tempfile::tempdir().unwrap();
    let (engine, report) = Engine::open(config(tmp.path(), Persistence::Snapshot)).unwrap();
    drop(engine);
    assert!(report.created);
    let snap = tmp.path().join("durlab.snap");
    assert_eq!(
        fs::metadata(&snap).unwrap().len(),
        EMPTY_SNAPSHOT_BYTES as u64
    );
    assert_eq!(
        report.changes,
        vec![format!(
            "{}: created (the snapshot of the empty state, LSN 0)",
            snap.display()
        )]
    );
    let (engine, report) = Engine::open(config(tmp.path(), Persistence::Snapshot)).unwrap();
    assert!(!report.created);
    assert_eq!(report.snapshot_lsn, Some(0));
    assert!(report.changes.is_empty(), "{:?}", report.changes);
    drop(engine);
}

#[test]
fn every_change_at_startup_is_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("new");
    let (engine, report) = Engine::open(config(&dir, Persistence::Aof)).unwrap();
    drop(engine);
    let log = dir.join(LOG_FILE_NAME);
    assert_eq!(
        report.changes,
        vec![
            format!("{}: directory created", dir.display()),
            format!("{}: created (a new, empty log)", log.display()),
        ]
    );
    // A blank log (a crash between creating it and syncing its header) gets a header.
    for (bytes, what) in [(0, "empty"), (100, "all zeros")] {
        fs::write(&log, vec![0; bytes]).unwrap();
        let (engine, report) = Engine::open(config(&dir, Persistence::Aof)).unwrap();
        drop(engine);
        assert_eq!(
            report.changes,
            vec![format!(
                "{}: {bytes} bytes, {what}: no record was ever written to it; wrote a new 64-byte header at byte 0",
                log.display()
            )]
        );
    }
    // A new hybrid directory: its first increment and the manifest listing it.
    let hybrid = tmp.path().join("hybrid");
    fs::create_dir(&hybrid).unwrap();
    let (engine, report) = Engine::open(config(&hybrid, Persistence::Hybrid)).unwrap();
    drop(engine);
    assert_eq!(
        report.changes,
        vec![format!(
            "{}: created (a new, empty increment) with durlab.manifest listing it",
            hybrid.join("durlab.1.incr.aof").display()
        )]
    );
}

/// A log with three records and a torn tail of `junk` non-zero bytes and `zeros` zeros.
fn torn_dir(junk: usize, zeros: usize) -> (tempfile::TempDir, u64, u64) {
    torn_dir_after(3, junk, zeros)
}

/// A log with `records` records and a torn tail of `junk` non-zero bytes and `zeros` zeros.
fn torn_dir_after(records: u8, junk: usize, zeros: usize) -> (tempfile::TempDir, u64, u64) {
    let tmp = tempfile::tempdir().unwrap();
    let (engine, _) = Engine::open(config(tmp.path(), Persistence::Aof)).unwrap();
    for i in 0..records {
        engine
            .execute(Command::Set {
                key: vec![b'k', i],
                value: vec![b'v'; 20],
            })
            .unwrap();
    }
    drop(engine);
    let log = tmp.path().join(LOG_FILE_NAME);
    let good = fs::metadata(&log).unwrap().len();
    let bytes = [fs::read(&log).unwrap(), vec![0xAB; junk], vec![0; zeros]].concat();
    fs::write(&log, &bytes).unwrap();
    (tmp, good, bytes.len() as u64)
}

fn faulty_config(dir: &Path) -> (EngineConfig, Arc<durlab_engine::backend::faulty::Faults>) {
    let backend = FaultyBackend::new(open_backend(BackendKind::Pwrite).unwrap());
    let faults = backend.faults();
    let mut c = config(dir, Persistence::Aof);
    c.backend_override = Some(Arc::new(backend));
    (c, faults)
}

/// A log of `records` records and a torn tail of 3,500 bytes, opened with room for `room`
/// more bytes: the start is refused as a full disk at the first write of the file named
/// `…failing` (at its start), nothing is cut, and no file is left beside the log.
fn a_full_disk_cuts_nothing(records: u8, room: u64, failing: &str) {
    let (tmp, good, len) = torn_dir_after(records, 3000, 500);
    assert_eq!(
        len - good > good,
        failing.ends_with(".tmp"),
        "the new log is written when the cut takes more than it leaves"
    );
    let log = tmp.path().join(LOG_FILE_NAME);
    let before = fs::read(&log).unwrap();
    let (cfg, faults) = faulty_config(tmp.path());
    faults.fill_disk_after(room);
    let err = Engine::open(cfg).map(|_| ()).expect_err("no room");
    let Error::DiskFull { offset, path, .. } = &err else {
        panic!("expected a full disk, got {err}")
    };
    assert_eq!(*offset, 0, "{err}");
    assert!(path.to_string_lossy().ends_with(failing), "{err}");
    assert_eq!(
        others(tmp.path()),
        Vec::<String>::new(),
        "no partial copy or new log left, no quarantine name"
    );
    assert!(fs::read(&log).unwrap() == before, "nothing cut");
    assert_eq!(before.len() as u64, len);
}

#[test]
fn a_quarantine_copy_on_a_full_disk_is_removed_and_nothing_is_cut() {
    // More records than cut bytes: the cut bytes are copied, and room for part of the copy.
    a_full_disk_cuts_nothing(150, 1000, ".quarantine");
}

/// A cut of more than it keeps, whose new log cannot be written: the incomplete new log is
/// removed, and no quarantine name was made (the link comes after the write).
#[test]
fn a_new_log_on_a_full_disk_is_removed_and_nothing_is_cut() {
    a_full_disk_cuts_nothing(3, 10, ".aof.tmp");
}

#[test]
fn a_quarantine_copy_whose_sync_fails_is_removed_and_nothing_is_cut() {
    let (tmp, good, len) = torn_dir_after(150, 3000, 500);
    assert!(good > len - good);
    let log = tmp.path().join(LOG_FILE_NAME);
    let before = fs::read(&log).unwrap();
    let (cfg, faults) = faulty_config(tmp.path());
    // Recovery syncs nothing before the copy (the records are synced after a clean end only).
    faults.fail_sync(1);
    let err = Engine::open(cfg)
        .map(|_| ())
        .expect_err("the copy's sync fails");
    assert!(err.to_string().contains("fdatasync"), "{err}");
    assert!(err.to_string().contains(".quarantine"), "{err}");
    assert_eq!(
        names(tmp.path()),
        vec![LOG_FILE_NAME],
        "no unsynced copy left"
    );
    assert!(fs::read(&log).unwrap() == before, "nothing cut");
}

/// The names in `dir` other than the log, sorted.
fn others(dir: &Path) -> Vec<String> {
    names(dir)
        .into_iter()
        .filter(|n| n != LOG_FILE_NAME)
        .collect()
}

/// A cut of more than it keeps, when the sync of the old log (before it is linked) or of the
/// new one (after) fails: nothing is cut, the new log's temp file is removed, and a quarantine name is left
/// only in the second case (the log's own bytes under a second name: nothing lost, no space
/// taken). A start without the fault then cuts, and the log takes appends.
#[test]
fn a_failed_sync_in_a_cut_of_most_of_a_log_cuts_nothing() {
    for (n, linked) in [(1, false), (2, true)] {
        let (tmp, good, _) = torn_dir(3000, 500);
        let log = tmp.path().join(LOG_FILE_NAME);
        let before = fs::read(&log).unwrap();
        let (cfg, faults) = faulty_config(tmp.path());
        faults.fail_sync(n);
        let err = Engine::open(cfg).map(|_| ()).expect_err("a sync fails");
        assert!(err.to_string().contains("fdatasync"), "{err}");
        let link = format!("{LOG_FILE_NAME}.{good}.whole.quarantine");
        let want: Vec<String> = if linked { vec![link.clone()] } else { vec![] };
        assert_eq!(others(tmp.path()), want, "sync {n}: {err}");
        assert!(fs::read(&log).unwrap() == before, "sync {n}: nothing cut");
        let (engine, cut) = Engine::open(config(tmp.path(), Persistence::Aof)).unwrap();
        assert!(cut.quarantine_whole_log);
        engine
            .execute(Command::Set {
                key: b"after".to_vec(),
                value: b"x".to_vec(),
            })
            .unwrap();
        drop(engine);
        let (engine, report) = Engine::open(config(tmp.path(), Persistence::Aof)).unwrap();
        assert_eq!(report.recovered_lsn, 4, "sync {n}");
        assert_eq!(report.tail_bytes_discarded, 0, "sync {n}");
        drop(engine);
        let names = others(tmp.path());
        let links = names.iter().filter(|n| n.contains(".whole.quarantine"));
        assert_eq!(links.count(), 1 + usize::from(linked), "{names:?}");
        let kept = fs::read(cut.quarantine_path.expect("a quarantine file")).unwrap();
        assert!(kept == before, "sync {n}: the whole log is kept");
    }
}

#[test]
fn a_torn_tail_followed_by_zeros_is_cut_whole_and_copied_whole() {
    let (tmp, good, len) = torn_dir(1, 74);
    let log = tmp.path().join(LOG_FILE_NAME);
    let before = fs::read(&log).unwrap();
    let (engine, report) = Engine::open(config(tmp.path(), Persistence::Aof)).unwrap();
    drop(engine);
    assert_eq!(report.cut_offset, Some(good));
    assert_eq!(report.tail_bytes_discarded, 75);
    assert_eq!(len - good, 75);
    let q = report.quarantine_path.clone().unwrap();
    assert!(
        fs::read(&q).unwrap() == before[good as usize..],
        "the copy holds every byte cut"
    );
    assert_eq!(fs::metadata(&log).unwrap().len(), good);
    assert_eq!(
        report.changes,
        vec![format!(
            "{}: cut 75 bytes at byte {good} (truncated record), after the last valid record; they are kept in {}",
            log.display(),
            q.display()
        )]
    );
}
