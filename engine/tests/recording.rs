//! The recording backend over both real backends: what it records, in which order, and that
//! replaying the recorded writes reproduces the files byte for byte.

mod common;

use std::path::Path;
use std::sync::Arc;

use durlab_engine::backend::recording::{Op, RecordingBackend, Segment, read_trace};
use durlab_engine::backend::{Backend, OpenMode, open_backend};
use durlab_engine::{BackendKind, FsyncPolicy, Prealloc};

fn apply(buf: &mut Vec<u8>, offset: u64, data: &[Segment]) {
    let mut at = offset as usize;
    for s in data {
        let n = s.len() as usize;
        if buf.len() < at + n {
            buf.resize(at + n, 0);
        }
        match s {
            Segment::Bytes(b) => buf[at..at + n].copy_from_slice(b),
            Segment::Zeros(_) => buf[at..at + n].fill(0),
        }
        at += n;
    }
}

fn records_every_operation_in_order(kind: BackendKind) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("old"), b"before the trace").unwrap();
    let trace = tmp.path().join("t.trace");
    let rec = RecordingBackend::new(open_backend(kind).unwrap(), &trace).unwrap();
    assert!(RecordingBackend::new(open_backend(kind).unwrap(), &trace).is_err());
    assert_eq!(rec.name(), format!("recording({kind})"));

    let a = rec.open(&dir.join("a"), OpenMode::CreateNew).unwrap();
    let mut big = vec![0u8; 1 << 20];
    big[..5].copy_from_slice(b"hello");
    a.write_all_at(&big, 0).unwrap();
    a.sync_data().unwrap();
    a.write_all_at_sync(b"sync", 10).unwrap();
    a.set_len(100).unwrap();
    a.allocate(100, 4096).unwrap();
    rec.sync_dir(&dir).unwrap();
    let old = rec.open(&dir.join("old"), OpenMode::Existing).unwrap();
    old.write_all_at(b"B", 0).unwrap();
    rec.rename(&dir.join("a"), &dir.join("b")).unwrap();
    let again = rec.open(&dir.join("b"), OpenMode::Existing).unwrap();
    drop(again);
    rec.remove(&dir.join("old")).unwrap();
    // Failed operations are not recorded.
    assert!(rec.open(&dir.join("b"), OpenMode::CreateNew).is_err());
    assert!(rec.remove(&dir.join("missing")).is_err());

    let t = read_trace(&trace).unwrap();
    assert_eq!(t.torn_tail, None);
    assert_eq!(t.entries.len() as u64, rec.entries());
    let ops: Vec<&Op> = t.entries.iter().map(|e| &e.op).collect();
    let a_path = dir.join("a");
    assert!(matches!(ops[0], Op::Create { file: 0, path } if *path == a_path));
    // 1 MiB of which 5 bytes are not zero: one small literal and one zero run.
    match ops[1] {
        Op::Write {
            file: 0,
            offset: 0,
            data,
        } => {
            assert_eq!(
                data,
                &vec![
                    Segment::Bytes(b"hello".to_vec()),
                    Segment::Zeros((1 << 20) - 5)
                ]
            )
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        ops[2],
        Op::SyncData {
            file: 0,
            begin_seq: 2,
            ..
        }
    ));
    assert!(matches!(
        ops[3],
        Op::Write {
            file: 0,
            offset: 10,
            ..
        }
    ));
    assert!(matches!(
        ops[4],
        Op::SyncData {
            file: 0,
            begin_seq: 4,
            ..
        }
    ));
    assert!(matches!(ops[5], Op::SetLen { file: 0, len: 100 }));
    assert!(matches!(
        ops[6],
        Op::Allocate {
            file: 0,
            offset: 100,
            len: 4096
        }
    ));
    assert!(matches!(ops[7], Op::SyncDir { begin_seq: 7, .. }));
    assert!(matches!(
        ops[8],
        Op::Preexisting {
            file: 1,
            len: 16,
            ..
        }
    ));
    assert!(
        matches!(ops[9], Op::BaseData { file: 1, offset: 0, data } if data == &vec![Segment::Bytes(b"before the trace".to_vec())])
    );
    assert!(matches!(
        ops[10],
        Op::Write {
            file: 1,
            offset: 0,
            ..
        }
    ));
    assert!(matches!(ops[11], Op::Rename { .. }));
    assert!(matches!(ops[12], Op::Open { file: 2, path } if *path == dir.join("b")));
    assert!(matches!(ops[13], Op::Remove { .. }));
    assert_eq!(ops.len(), 14);
    for w in t.entries.windows(2) {
        assert!(w[0].t_ns <= w[1].t_ns, "timestamps follow the sequence");
    }
}

fn snapshots_unknown_files_before_rename_and_remove(kind: BackendKind) {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("x"), b"x-data").unwrap();
    std::fs::write(tmp.path().join("y"), b"y-data").unwrap();
    let trace = tmp.path().join("t.trace");
    let rec = RecordingBackend::new(open_backend(kind).unwrap(), &trace).unwrap();
    rec.rename(&tmp.path().join("x"), &tmp.path().join("y"))
        .unwrap();
    let t = read_trace(&trace).unwrap();
    let kinds: Vec<String> = t
        .entries
        .iter()
        .map(|e| {
            format!("{:?}", e.op)
                .split([' ', '{'])
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "Preexisting",
            "BaseData",
            "Preexisting",
            "BaseData",
            "Rename"
        ]
    );
}

/// The engine's log, rebuilt from the recorded writes and size changes alone, equals the file.
fn recorded_writes_rebuild_the_log(kind: BackendKind) {
    for (policy, prealloc) in [
        (FsyncPolicy::Always, Prealloc::None),
        (FsyncPolicy::EverySec, Prealloc::Zero),
        (FsyncPolicy::No, Prealloc::Fallocate),
    ] {
        if !common::supports(kind, prealloc) {
            continue;
        }
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        let trace = tmp.path().join("engine.trace");
        let rec = RecordingBackend::new(open_backend(kind).unwrap(), &trace).unwrap();
        let mut config = common::config(&dir, kind, policy).prealloc(prealloc);
        config.everysec_interval_ms = 5;
        config.backend_override = Some(Arc::new(rec));
        let engine = common::write_n(&config, 300);
        engine.sync().unwrap();
        drop(engine);
        let t = read_trace(&trace).unwrap();
        let mut file = Vec::new();
        let mut syncs = 0;
        for e in &t.entries {
            match &e.op {
                Op::Write { offset, data, .. } => apply(&mut file, *offset, data),
                Op::SetLen { len, .. } => file.resize(*len as usize, 0),
                Op::Allocate { offset, len, .. } => {
                    let end = (offset + len) as usize;
                    if file.len() < end {
                        file.resize(end, 0);
                    }
                }
                Op::SyncData { .. } => syncs += 1,
                _ => {}
            }
        }
        let on_disk = std::fs::read(common::log_path(&dir)).unwrap();
        assert_eq!(file.len(), on_disk.len(), "{policy} {prealloc}");
        assert!(file == on_disk, "{policy} {prealloc}: content differs");
        if policy == FsyncPolicy::Always {
            assert!(syncs >= 300, "one sync per command: {syncs}");
        }
        assert_eq!(read_only_commands(&dir), 300);
    }
}

fn read_only_commands(dir: &Path) -> usize {
    durlab_engine::aof::read_commands(dir).unwrap().len()
}

/// A sync racing with writes on another thread only covers entries before its `begin_seq`,
/// and `begin_seq` never exceeds the sync's own position.
fn concurrent_syncs_carry_their_start(kind: BackendKind) {
    let tmp = tempfile::tempdir().unwrap();
    let trace = tmp.path().join("t.trace");
    let rec = Arc::new(RecordingBackend::new(open_backend(kind).unwrap(), &trace).unwrap());
    let f = rec
        .open(&tmp.path().join("f"), OpenMode::CreateNew)
        .unwrap();
    let g = f.clone();
    let syncer = std::thread::spawn(move || {
        for _ in 0..50 {
            g.sync_data().unwrap();
        }
    });
    for i in 0..500u64 {
        f.write_all_at(&i.to_le_bytes(), i * 8).unwrap();
    }
    syncer.join().unwrap();
    let t = read_trace(&trace).unwrap();
    let mut n = 0;
    for e in &t.entries {
        if let Op::SyncData { begin_seq, .. } = e.op {
            assert!(begin_seq <= e.seq);
            n += 1;
        }
    }
    assert_eq!(n, 50);
}

over_backends!(
    records_every_operation_in_order,
    snapshots_unknown_files_before_rename_and_remove,
    recorded_writes_rebuild_the_log,
    concurrent_syncs_carry_their_start,
);

/// Backend mmap stores only into space its own handle reserved, so a reopened log reserves the
/// tail an earlier run preallocated (else it would be written with pwrite until the next
/// chunk): the reopened run's first record lies inside an `allocate` issued before it.
#[test]
fn mmap_reopened_log_reserves_its_preallocated_tail() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let recorded = |trace: &Path| {
        let rec = RecordingBackend::new(open_backend(BackendKind::Mmap).unwrap(), trace).unwrap();
        let mut config = common::config(&dir, BackendKind::Mmap, FsyncPolicy::No);
        config.backend_override = Some(Arc::new(rec));
        config
    };
    drop(common::write_n(
        &recorded(&tmp.path().join("first.trace")),
        50,
    ));
    let second = tmp.path().join("second.trace");
    let (engine, report) = common::open(&recorded(&second));
    assert_eq!(report.recovered_lsn, 50);
    engine.execute_next(common::command).unwrap();
    drop(engine);
    let t = read_trace(&second).unwrap();
    let first_record = t
        .entries
        .iter()
        .find_map(|e| match &e.op {
            Op::Write { offset, .. } if *offset >= durlab_engine::aof::FIRST_RECORD_OFFSET => {
                Some((e.seq, *offset))
            }
            _ => None,
        })
        .expect("the reopened run wrote a record");
    let reserved = t.entries.iter().any(|e| match &e.op {
        Op::Allocate { offset, len, .. } => {
            e.seq < first_record.0 && *offset <= first_record.1 && first_record.1 < offset + len
        }
        _ => false,
    });
    assert!(
        reserved,
        "no allocate covers offset {} before it was written",
        first_record.1
    );
}
