//! The raw device baseline: file preparation, the pwrite loops, percentiles, and the
//! O_DIRECT / buffered throughput probes. No timing thresholds: only shapes and sizes.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use durlab_engine::rawio::{
    FileKind, Limit, RawRun, buffered_write_mb_s, direct_write_mb_s, prepare_file,
    pwrite_fdatasync_loop, pwrite_loop,
};

const MIB: u64 = 1 << 20;

#[test]
fn prepare_file_sizes_per_kind() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = 3 * MIB + 123;
    for kind in FileKind::ALL {
        let path = dir.path().join(kind.name());
        let file = prepare_file(&path, kind, bytes).unwrap();
        let meta = file.metadata().unwrap();
        match kind {
            FileKind::Append => assert_eq!(meta.len(), 0),
            FileKind::Fallocate | FileKind::Zeroed => {
                assert_eq!(meta.len(), bytes, "{kind:?}");
                assert!(
                    meta.blocks() * 512 >= bytes,
                    "{kind:?}: blocks are reserved"
                );
            }
        }
        if kind == FileKind::Zeroed {
            assert!(fs::read(&path).unwrap().iter().all(|&x| x == 0));
        }
    }
}

#[test]
fn prepare_file_replaces_existing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    fs::write(&path, vec![7u8; 10_000]).unwrap();
    let file = prepare_file(&path, FileKind::Append, MIB).unwrap();
    assert_eq!(file.metadata().unwrap().len(), 0);
    let file = prepare_file(&path, FileKind::Fallocate, 8192).unwrap();
    assert_eq!(file.metadata().unwrap().len(), 8192);
    assert!(fs::read(&path).unwrap().iter().all(|&x| x == 0));
}

#[test]
fn fdatasync_loop_writes_ops_records() {
    let dir = tempfile::tempdir().unwrap();
    for kind in FileKind::ALL {
        let path = dir.path().join(kind.name());
        let file = prepare_file(&path, kind, MIB).unwrap();
        let limit = Limit {
            ops: 40,
            duration: Duration::from_secs(3600),
        };
        let run = pwrite_fdatasync_loop(&file, 512, limit).unwrap();
        assert_eq!(run.ops, 40);
        assert_eq!(run.latencies_ns.len(), 40);
        assert!(run.seconds > 0.0);
        assert!(run.ops_per_sec() > 0.0);
        let data = fs::read(&path).unwrap();
        let expected_len = if kind == FileKind::Append {
            40 * 512
        } else {
            MIB as usize
        };
        assert_eq!(data.len(), expected_len, "{kind:?}");
        assert!(
            data[..40 * 512].iter().all(|&x| x != 0),
            "pattern is non-zero"
        );
        assert_eq!(
            &data[..512],
            &data[512..1024],
            "every record is the same pattern"
        );
        assert!(data[40 * 512..].iter().all(|&x| x == 0));
    }
}

#[test]
fn pwrite_loop_writes_ops_records() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    let file = prepare_file(&path, FileKind::Append, 0).unwrap();
    let run = pwrite_loop(
        &file,
        100,
        Limit {
            ops: 1000,
            duration: Duration::from_secs(3600),
        },
    )
    .unwrap();
    assert_eq!(run.ops, 1000);
    assert_eq!(run.latencies_ns.len(), 1000);
    assert_eq!(fs::metadata(&path).unwrap().len(), 100_000);
}

#[test]
fn loops_stop_at_duration() {
    let dir = tempfile::tempdir().unwrap();
    let file = prepare_file(&dir.path().join("f"), FileKind::Append, 0).unwrap();
    let limit = Limit {
        ops: u64::MAX,
        duration: Duration::from_millis(50),
    };
    let run = pwrite_loop(&file, 64, limit).unwrap();
    assert!(run.ops > 0);
    assert_eq!(run.ops as usize, run.latencies_ns.len());
    assert_eq!(file.metadata().unwrap().len(), run.ops * 64);
    let zero = Limit {
        ops: 10,
        duration: Duration::ZERO,
    };
    assert_eq!(pwrite_fdatasync_loop(&file, 64, zero).unwrap().ops, 0);
}

#[test]
fn loops_reject_empty_records() {
    let dir = tempfile::tempdir().unwrap();
    let file = prepare_file(&dir.path().join("f"), FileKind::Append, 0).unwrap();
    let limit = Limit {
        ops: 1,
        duration: Duration::from_secs(1),
    };
    assert!(pwrite_loop(&file, 0, limit).is_err());
    assert!(pwrite_fdatasync_loop(&file, 0, limit).is_err());
}

#[test]
fn percentile_nearest_rank() {
    let run = RawRun {
        ops: 10,
        seconds: 1.0,
        latencies_ns: vec![50, 10, 40, 20, 30, 100, 90, 80, 70, 60],
    };
    assert_eq!(run.percentile_ns(0.0), 10);
    assert_eq!(run.percentile_ns(0.1), 10);
    assert_eq!(run.percentile_ns(0.11), 20);
    assert_eq!(run.percentile_ns(0.5), 50);
    assert_eq!(run.percentile_ns(0.9), 90);
    assert_eq!(run.percentile_ns(0.99), 100);
    assert_eq!(run.percentile_ns(1.0), 100);
    // Out-of-range q is clamped; the latencies themselves are not reordered.
    assert_eq!(run.percentile_ns(2.0), 100);
    assert_eq!(run.percentile_ns(-1.0), 10);
    assert_eq!(run.latencies_ns[0], 50);
    assert_eq!(RawRun::default().percentile_ns(0.5), 0);
    let one = RawRun {
        ops: 1,
        seconds: 1.0,
        latencies_ns: vec![7],
    };
    assert_eq!(one.percentile_ns(0.0), 7);
    assert_eq!(one.percentile_ns(0.99), 7);
}

#[test]
fn direct_and_buffered_report_positive_rates() {
    let dir = tempfile::tempdir().unwrap();
    let direct = direct_write_mb_s(dir.path(), 4 * MIB, 256 * 1024).unwrap();
    assert!(direct > 0.0 && direct.is_finite(), "{direct}");
    let buffered = buffered_write_mb_s(dir.path(), 4 * MIB, 256 * 1024).unwrap();
    assert!(buffered > 0.0 && buffered.is_finite(), "{buffered}");
    // Sizes that are not a multiple of the block (or, for direct, of 4096) work too.
    assert!(direct_write_mb_s(dir.path(), MIB + 1, 64 * 1024).unwrap() > 0.0);
    assert!(buffered_write_mb_s(dir.path(), MIB + 1, 1000).unwrap() > 0.0);
    // The temporary files are gone.
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn direct_rejects_unaligned_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let e = direct_write_mb_s(dir.path(), MIB, 1000).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    assert!(direct_write_mb_s(dir.path(), 0, 4096).is_err());
    assert!(buffered_write_mb_s(dir.path(), MIB, 0).is_err());
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
}
