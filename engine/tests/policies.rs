//! Each policy's acknowledgement contract, group commit, poisoning and a full disk.
//! Each body runs over both backends.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use durlab_engine::backend::faulty::FaultyBackend;
use durlab_engine::backend::open_backend;
use durlab_engine::{BackendKind, Command, Engine, Error, FsyncPolicy, Prealloc, aof};

over_backends!(
    always_acks_only_durable,
    everysec_syncs_in_background,
    no_never_syncs_by_itself,
    off_touches_no_files,
    group_commit_dense_log,
    batching_under_everysec,
    failed_fsync_poisons,
    background_fsync_failure_poisons,
    disk_full_keeps_acked,
    oversized_command_rejected,
    reads_get_no_lsn,
);

fn always_acks_only_durable(kind: BackendKind) {
    let dir = tempfile::tempdir().unwrap();
    let (engine, _) = open(&config(dir.path(), kind, FsyncPolicy::Always));
    for _ in 0..50 {
        let ack = engine.execute_next(command).unwrap();
        let lsn = ack.lsn.unwrap();
        assert!(
            engine.durable_lsn() >= lsn,
            "acked {lsn} but durable {}",
            engine.durable_lsn()
        );
    }
    let stats = engine.stats();
    assert_eq!(stats.records, 50);
    assert_eq!(stats.syncs, 50, "one writer: one sync per record");
}

fn everysec_syncs_in_background(kind: BackendKind) {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), kind, FsyncPolicy::EverySec);
    cfg.everysec_interval_ms = 50;
    let (engine, _) = open(&cfg);
    for _ in 0..20 {
        let lsn = engine.execute_next(command).unwrap().lsn.unwrap();
        assert!(engine.written_lsn() >= lsn, "acknowledged before written");
    }
    // The background thread must catch up by itself; wait (bounded) for it.
    let deadline = Instant::now() + Duration::from_secs(30);
    while engine.durable_lsn() < 20 {
        assert!(
            Instant::now() < deadline,
            "background sync never covered LSN 20"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(engine.stats().syncs >= 1);
}

fn no_never_syncs_by_itself(kind: BackendKind) {
    let dir = tempfile::tempdir().unwrap();
    let (engine, _) = open(&config(dir.path(), kind, FsyncPolicy::No));
    for _ in 0..20 {
        let lsn = engine.execute_next(command).unwrap().lsn.unwrap();
        assert!(engine.written_lsn() >= lsn);
    }
    assert_eq!(engine.durable_lsn(), 0);
    assert_eq!(engine.stats().syncs, 0);
    assert_eq!(
        engine.sync().unwrap(),
        20,
        "an explicit sync covers everything written"
    );
}

fn off_touches_no_files(kind: BackendKind) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (engine, _) = open(&config(&data, kind, FsyncPolicy::Off));
    for i in 1..=10 {
        assert_eq!(engine.execute_next(command).unwrap().lsn, Some(i));
    }
    assert_eq!(engine.durable_lsn(), 0);
    assert!(!data.exists());
}

/// Many writers under `always`: every LSN appears exactly once, in order, carrying the
/// command its writer built for it, and writers share syncs.
fn group_commit_dense_log(kind: BackendKind) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), kind, FsyncPolicy::Always).prealloc(Prealloc::Zero);
    let (engine, _) = open(&cfg);
    let (writers, per_writer) = (16, 40);
    std::thread::scope(|s| {
        for _ in 0..writers {
            s.spawn(|| {
                for _ in 0..per_writer {
                    let lsn = engine.execute_next(command).unwrap().lsn.unwrap();
                    assert!(engine.durable_lsn() >= lsn);
                }
            });
        }
    });
    let total = writers * per_writer;
    let stats = engine.stats();
    assert_eq!(stats.records, total);
    assert!(
        stats.write_batches < total,
        "16 concurrent writers never shared a batch: {stats:?}"
    );
    assert!(stats.batch_records_max > 1);
    drop(engine);
    let logged = aof::read_commands(dir.path()).unwrap();
    assert_eq!(logged.len() as u64, total);
    for (i, (lsn, cmd)) in logged.iter().enumerate() {
        assert_eq!(*lsn, i as u64 + 1);
        assert_eq!(cmd, &command(*lsn));
    }
    let (engine, _) = open(&cfg);
    assert_eq!(engine.read(dump), dump(&expected_after(total)));
}

fn batching_under_everysec(kind: BackendKind) {
    for policy in [FsyncPolicy::EverySec, FsyncPolicy::No] {
        let dir = tempfile::tempdir().unwrap();
        let (engine, _) = open(&config(dir.path(), kind, policy));
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for _ in 0..200 {
                        let lsn = engine.execute_next(command).unwrap().lsn.unwrap();
                        assert!(engine.written_lsn() >= lsn, "acknowledged before written");
                    }
                });
            }
        });
        assert_eq!(engine.stats().records, 1600);
        drop(engine);
        let logged = aof::read_commands(dir.path()).unwrap();
        assert!(
            logged
                .iter()
                .enumerate()
                .all(|(i, (lsn, c))| *lsn == i as u64 + 1 && c == &command(*lsn))
        );
        assert_eq!(logged.len(), 1600);
    }
}

fn faulty_config(
    dir: &std::path::Path,
    kind: BackendKind,
    policy: FsyncPolicy,
) -> (
    durlab_engine::EngineConfig,
    Arc<durlab_engine::backend::faulty::Faults>,
) {
    let faulty = FaultyBackend::new(open_backend(kind).unwrap());
    let faults = faulty.faults();
    let mut cfg = config(dir, kind, policy);
    cfg.backend_override = Some(Arc::new(faulty));
    (cfg, faults)
}

/// fsync fails once: that command is not acknowledged, nothing after it is, the failure is
/// not retried into a success, and a reopen recovers every acknowledged command.
fn failed_fsync_poisons(kind: BackendKind) {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, faults) = faulty_config(dir.path(), kind, FsyncPolicy::Always);
    let (engine, _) = open(&cfg);
    for _ in 0..5 {
        engine.execute_next(command).unwrap();
    }
    faults.fail_sync(1);
    let err = engine.execute_next(command).expect_err("sync failed");
    assert!(err.to_string().contains("fdatasync"), "{err}");
    assert!(err.to_string().contains("os error 5"), "{err}");
    assert_eq!(engine.durable_lsn(), 5);
    for _ in 0..3 {
        let err = engine.execute_next(command).expect_err("poisoned");
        assert!(err.is_poisoned(), "{err}");
        assert!(
            engine
                .execute(Command::Get {
                    key: b"k1".to_vec()
                })
                .unwrap_err()
                .is_poisoned()
        );
    }
    assert!(
        engine.sync().unwrap_err().is_poisoned(),
        "no retry after a failed fsync"
    );
    drop(engine);
    let (engine, report) = open(&config(dir.path(), kind, FsyncPolicy::Always));
    assert!(report.recovered_lsn >= 5);
    assert_eq!(
        engine.read(dump),
        dump(&expected_after(report.recovered_lsn))
    );
}

fn background_fsync_failure_poisons(kind: BackendKind) {
    let dir = tempfile::tempdir().unwrap();
    let (mut cfg, faults) = faulty_config(dir.path(), kind, FsyncPolicy::EverySec);
    cfg.everysec_interval_ms = 20;
    let (engine, _) = open(&cfg);
    faults.fail_sync(1);
    engine.execute_next(command).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let err = loop {
        match engine.execute_next(command) {
            Err(e) => break e,
            Ok(_) => {
                assert!(
                    Instant::now() < deadline,
                    "background fsync failure never poisoned the engine"
                );
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    };
    assert!(err.is_poisoned(), "{err}");
    assert!(err.to_string().contains("fdatasync"), "{err}");
    assert_eq!(
        engine.durable_lsn(),
        0,
        "the failed sync must not count as durable"
    );
}

fn disk_full_keeps_acked(kind: BackendKind) {
    for prealloc in [Prealloc::None, Prealloc::Zero] {
        if !supports(kind, prealloc) {
            continue;
        }
        let dir = tempfile::tempdir().unwrap();
        let (cfg, faults) = faulty_config(dir.path(), kind, FsyncPolicy::Always);
        let cfg = cfg.prealloc(prealloc);
        let (engine, _) = open(&cfg);
        faults.fill_disk_after(if prealloc == Prealloc::None { 3000 } else { 0 });
        let mut acked = 0;
        let err = loop {
            match engine.execute_next(command) {
                Ok(ack) => acked = ack.lsn.unwrap(),
                Err(e) => break e,
            }
            assert!(acked < 100_000, "disk never filled");
        };
        assert!(matches!(err, Error::DiskFull { .. }), "{prealloc:?}: {err}");
        assert!(err.to_string().contains("disk full"), "{err}");
        assert!(engine.execute_next(command).unwrap_err().is_poisoned());
        drop(engine);
        let (engine, report) =
            open(&config(dir.path(), kind, FsyncPolicy::Always).prealloc(prealloc));
        assert!(
            report.recovered_lsn >= acked,
            "{prealloc:?}: acked {acked}, recovered {}",
            report.recovered_lsn
        );
        assert_eq!(
            engine.read(dump),
            dump(&expected_after(report.recovered_lsn))
        );
    }
}

fn oversized_command_rejected(kind: BackendKind) {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), kind, FsyncPolicy::Always);
    cfg.max_record_bytes = 1024;
    let (engine, _) = open(&cfg);
    let big = Command::Set {
        key: b"k".to_vec(),
        value: vec![7; 2000],
    };
    let err = engine.execute(big).unwrap_err();
    assert!(matches!(err, Error::InvalidCommand(_)), "{err}");
    assert_eq!(engine.last_lsn(), 0, "no LSN used");
    assert_eq!(engine.execute_next(command).unwrap().lsn, Some(1));
    assert_eq!(
        engine.execute(Command::Get { key: b"k".to_vec() }).unwrap(),
        durlab_engine::Reply::Nil
    );
}

fn reads_get_no_lsn(kind: BackendKind) {
    let dir = tempfile::tempdir().unwrap();
    let (engine, _) = open(&config(dir.path(), kind, FsyncPolicy::Always));
    engine
        .execute(Command::Set {
            key: b"a".to_vec(),
            value: b"1".to_vec(),
        })
        .unwrap();
    let ack = engine
        .execute_ack(Command::Get { key: b"a".to_vec() })
        .unwrap();
    assert_eq!(
        ack,
        durlab_engine::Ack {
            reply: durlab_engine::Reply::Bulk(b"1".to_vec()),
            lsn: None
        }
    );
    assert_eq!(engine.last_lsn(), 1);
    assert_eq!(engine.stats().records, 1);
}

/// mmap stores only into preallocated space, so a log without preallocation is refused up
/// front (a store into a hole would be a SIGBUS on a full disk), and no file is created.
#[test]
fn mmap_without_prealloc_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), BackendKind::Mmap, FsyncPolicy::EverySec).prealloc(Prealloc::None);
    let err = Engine::open(cfg).unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err}");
    assert!(
        err.to_string().contains("prealloc fallocate or zero"),
        "{err}"
    );
    assert!(!log_path(dir.path()).exists());
    let snap_only = config(dir.path(), BackendKind::Mmap, FsyncPolicy::EverySec)
        .prealloc(Prealloc::None)
        .persistence(durlab_engine::Persistence::Snapshot);
    open(&snap_only); // no log: nothing to store into
}
