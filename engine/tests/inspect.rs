//! `inspect_dir` and `fix_torn_tail` over every layout.

mod common;

use std::fs;

use common::*;
use durlab_engine::inspect::{FileInfo, Layout, LogEnd, fix_torn_tail, inspect_dir};
use durlab_engine::{BackendKind, FsyncPolicy, Persistence};

fn aof_dir(n: u64) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    drop(write_n(
        &config(dir.path(), BackendKind::Pwrite, FsyncPolicy::Always),
        n,
    ));
    dir
}

#[test]
fn healthy_aof() {
    let dir = aof_dir(40);
    let r = inspect_dir(dir.path()).unwrap();
    assert_eq!(r.layout, Layout::Aof);
    assert!(r.is_healthy(), "{r}");
    assert_eq!(r.recoverable_lsn, Some(40));
    assert!(matches!(
        r.files[0].info,
        FileInfo::Log {
            records: 40,
            last_lsn: 40,
            end: LogEnd::Clean,
            ..
        }
    ));
    let text = r.to_string();
    assert!(
        text.contains("40 records") && text.contains("healthy"),
        "{text}"
    );
}

#[test]
fn torn_tail_is_reported_then_fixed_with_a_copy() {
    let dir = aof_dir(40);
    let log = log_path(dir.path());
    let mut bytes = fs::read(&log).unwrap();
    let good_len = bytes.len();
    bytes.extend_from_slice(&[7u8; 10]);
    fs::write(&log, &bytes).unwrap();
    let before = fs::read(&log).unwrap();
    let r = inspect_dir(dir.path()).unwrap();
    assert!(!r.is_healthy());
    assert_eq!(r.problems.len(), 1);
    assert!(r.problems[0].repairable);
    assert_eq!(r.problems[0].offset, Some(good_len as u64));
    assert_eq!(
        fs::read(&log).unwrap(),
        before,
        "inspection changes nothing"
    );
    let fix = fix_torn_tail(dir.path())
        .unwrap()
        .expect("a torn tail to cut");
    assert_eq!((fix.cut_offset, fix.bytes_cut), (good_len as u64, 10));
    assert_eq!(fs::read(&fix.quarantine_path).unwrap(), vec![7u8; 10]);
    let r = inspect_dir(dir.path()).unwrap();
    assert!(r.is_healthy(), "{r}");
    assert_eq!(fix_torn_tail(dir.path()).unwrap(), None);
}

#[test]
fn damage_in_the_middle_is_reported_and_never_cut() {
    let dir = aof_dir(40);
    let log = log_path(dir.path());
    let mut bytes = fs::read(&log).unwrap();
    bytes[100] ^= 0xFF;
    fs::write(&log, &bytes).unwrap();
    let r = inspect_dir(dir.path()).unwrap();
    assert!(!r.is_healthy());
    assert!(!r.problems[0].repairable);
    assert_eq!(r.recoverable_lsn, None);
    assert!(r.to_string().contains("DAMAGE"), "{r}");
    assert_eq!(fix_torn_tail(dir.path()).unwrap(), None);
    assert_eq!(
        fs::read(&log).unwrap(),
        bytes,
        "fix touches nothing but a torn tail"
    );
}

#[test]
fn hybrid_after_rewrite_and_its_problems() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), BackendKind::Pwrite, FsyncPolicy::Always)
        .persistence(Persistence::Hybrid);
    cfg.auto_rewrite_percentage = 0;
    let engine = write_n(&cfg, 60);
    engine.rewrite().unwrap();
    for _ in 0..15 {
        engine.execute_next(command).unwrap();
    }
    drop(engine);
    fs::write(dir.path().join("durlab.9.base.snap.tmp"), b"x").unwrap();
    let r = inspect_dir(dir.path()).unwrap();
    assert_eq!(r.layout, Layout::Hybrid);
    assert!(r.is_healthy(), "{r}");
    assert_eq!(r.recoverable_lsn, Some(75));
    assert_eq!(r.leftovers().count(), 1);
    let text = r.to_string();
    assert!(
        text.contains("manifest: generation 3") && text.contains("LSN 60, "),
        "{text}"
    );

    // A damaged base is reported with its file and offset.
    let base = dir.path().join("durlab.2.base.snap");
    let mut bytes = fs::read(&base).unwrap();
    bytes[40] ^= 1;
    fs::write(&base, &bytes).unwrap();
    let r = inspect_dir(dir.path()).unwrap();
    assert!(!r.is_healthy());
    assert_eq!(r.problems[0].path, base);
    // A missing listed file too.
    fs::remove_file(&base).unwrap();
    let r = inspect_dir(dir.path()).unwrap();
    assert!(
        r.problems
            .iter()
            .any(|p| p.path == base && p.what.contains("missing")),
        "{r}"
    );
    assert_eq!(r.recoverable_lsn, None);
}

#[test]
fn unknown_layout_is_a_problem() {
    let dir = tempfile::tempdir().unwrap();
    // Longer than a log's header, so it may hold records.
    fs::write(dir.path().join("durlab.3.incr.aof"), [b'd'; 100]).unwrap();
    let r = inspect_dir(dir.path()).unwrap();
    assert_eq!(r.layout, Layout::Unknown);
    assert!(!r.is_healthy());
    let empty = tempfile::tempdir().unwrap();
    let r = inspect_dir(empty.path()).unwrap();
    assert_eq!((r.layout, r.is_healthy()), (Layout::Empty, true));
}
