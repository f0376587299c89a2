//! Recovery: truncation at every byte, zero tails, damage in the middle, quarantine copies,
//! refusing to start empty. Each body runs over every backend (those that cut the file at its
//! end over the backends that write a log without preallocation).

mod common;

use std::fs;

use common::*;
use durlab_engine::aof::FIRST_RECORD_OFFSET;
use durlab_engine::{BackendKind, Engine, Error, FsyncPolicy, Prealloc, RecoveryMode};

over_backends!(
    reopen_recovers_everything,
    prealloc_modes_recover,
    torn_tail_of_a_preallocated_log_is_zeroed_keeping_its_length,
    missing_log_with_data_files_refused,
    bad_header_refused_blank_file_reinitialised,
);

over_unpreallocated_backends!(
    truncation_at_every_byte_recovers_a_prefix,
    zero_tail_is_clean_end,
    damage_in_middle_refused_then_cut_when_lenient,
    appends_continue_after_cut,
    a_cut_keeps_the_whole_log_exactly_when_it_takes_more_than_it_leaves,
    hole_in_unsynced_data_is_cut_in_synced_data_refused,
    sync_hint_refuses_damage_to_synced_tail,
);

fn reopen_recovers_everything(kind: BackendKind) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), kind, FsyncPolicy::Always);
    drop(write_n(&cfg, 200));
    let (engine, report) = open(&cfg);
    assert_eq!(report.recovered_lsn, 200);
    assert_eq!(report.records_replayed, 200);
    assert_eq!(report.tail_bytes_discarded, 0);
    assert!(!report.created);
    assert_eq!(engine.read(dump), dump(&expected_after(200)));
}

/// Cutting the log at any byte must recover exactly the records wholly before the cut, and
/// keep the cut bytes in a quarantine file.
fn truncation_at_every_byte_recovers_a_prefix(kind: BackendKind) {
    let src = tempfile::tempdir().unwrap();
    let cfg = config(src.path(), kind, FsyncPolicy::Always);
    drop(write_n(&cfg, 12));
    let full = fs::read(log_path(src.path())).unwrap();
    // Record boundaries, from the records themselves.
    let mut ends = vec![FIRST_RECORD_OFFSET as usize];
    while *ends.last().unwrap() < full.len() {
        let at = *ends.last().unwrap();
        let len = u32::from_le_bytes(full[at..at + 4].try_into().unwrap()) as usize;
        ends.push(at + durlab_engine::aof::record::RECORD_HEADER_BYTES + len);
    }
    assert_eq!(*ends.last().unwrap(), full.len());
    for cut in FIRST_RECORD_OFFSET as usize..=full.len() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(log_path(dir.path()), &full[..cut]).unwrap();
        let (engine, report) = open(&config(dir.path(), kind, FsyncPolicy::Always));
        let whole = ends.iter().filter(|&&e| e <= cut).count() as u64 - 1;
        assert_eq!(report.recovered_lsn, whole, "cut at {cut}");
        assert_eq!(
            engine.read(dump),
            dump(&expected_after(whole)),
            "cut at {cut}"
        );
        let boundary = ends[whole as usize];
        let cut_bytes = &full[boundary..cut];
        if cut_bytes.iter().all(|&b| b == 0) {
            assert_eq!(report.tail_bytes_discarded, 0, "cut at {cut}");
            assert!(report.quarantine_path.is_none());
        } else {
            assert_kept(&report, cut_bytes);
            assert_eq!(
                fs::metadata(log_path(dir.path())).unwrap().len(),
                boundary as u64
            );
        }
    }
}

fn zero_tail_is_clean_end(kind: BackendKind) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), kind, FsyncPolicy::Always);
    drop(write_n(&cfg, 30));
    let path = log_path(dir.path());
    let mut bytes = fs::read(&path).unwrap();
    let len = bytes.len();
    bytes.extend(std::iter::repeat_n(0u8, 10_000));
    fs::write(&path, &bytes).unwrap();
    let (engine, report) = open(&cfg);
    assert_eq!(report.recovered_lsn, 30);
    assert_eq!(report.tail_bytes_discarded, 0);
    assert!(report.quarantine_path.is_none());
    // Appends continue right after the last record, over the zeros.
    engine.execute_next(command).unwrap();
    drop(engine);
    let (_, report) = open(&cfg);
    assert_eq!(report.recovered_lsn, 31);
    assert!(fs::read(&path).unwrap()[len..len + 4] != [0, 0, 0, 0]);
}

fn prealloc_modes_recover(kind: BackendKind) {
    for prealloc in all_prealloc() {
        if !supports(kind, prealloc) {
            continue;
        }
        for policy in [FsyncPolicy::Always, FsyncPolicy::EverySec, FsyncPolicy::No] {
            let dir = tempfile::tempdir().unwrap();
            let cfg = config(dir.path(), kind, policy).prealloc(prealloc);
            let engine = write_n(&cfg, 500);
            let stats = engine.stats();
            drop(engine);
            let file_len = fs::metadata(log_path(dir.path())).unwrap().len();
            if prealloc == Prealloc::None {
                assert_eq!(stats.prealloc_bytes, 0);
            } else {
                assert!(stats.prealloc_bytes > 0, "{prealloc:?}");
                assert_eq!(
                    file_len % cfg.prealloc_chunk_bytes,
                    0,
                    "{prealloc:?} keeps whole chunks"
                );
            }
            let (engine, report) = open(&cfg);
            assert_eq!(report.recovered_lsn, 500, "{prealloc:?} {policy:?}");
            assert_eq!(report.tail_bytes_discarded, 0);
            assert_eq!(engine.read(dump), dump(&expected_after(500)));
        }
    }
}

fn damage_in_middle_refused_then_cut_when_lenient(kind: BackendKind) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), kind, FsyncPolicy::Always);
    drop(write_n(&cfg, 40));
    let path = log_path(dir.path());
    let original = fs::read(&path).unwrap();
    let mut bytes = original.clone();
    let flip = original.len() / 2;
    bytes[flip] ^= 0x40;
    fs::write(&path, &bytes).unwrap();
    let err = Engine::open(cfg.clone()).expect_err("strict recovery must refuse");
    let Error::Corrupt {
        path: p,
        offset,
        reason,
    } = &err
    else {
        panic!("expected Corrupt, got {err}")
    };
    assert_eq!(p, &path);
    assert!(
        *offset as usize <= flip && flip - (*offset as usize) < 200,
        "offset {offset} near flip {flip}"
    );
    assert!(reason.contains("damage in the middle"), "{reason}");
    assert!(err.to_string().contains(&path.display().to_string()));
    assert_eq!(
        fs::read(&path).unwrap(),
        bytes,
        "a refused recovery changes nothing"
    );

    let (engine, report) = open(&cfg.clone().recovery(RecoveryMode::Lenient));
    let r = report.recovered_lsn;
    assert!(r > 0 && r < 40, "lenient cut at {r}");
    assert_eq!(engine.read(dump), dump(&expected_after(r)));
    assert_kept(&report, &bytes[report.cut_offset.unwrap() as usize..]);
}

/// The quarantine file holds exactly the cut bytes, trailing zeros (which preallocation makes
/// common) included, and the report counts them all; or, when the cut took more than it left
/// from a log not preallocated (`quarantine_whole_log`), it is the whole log as it was: the bytes the log now holds, then
/// the cut bytes.
fn assert_kept(report: &durlab_engine::RecoveryReport, cut_bytes: &[u8]) {
    let mut kept = fs::read(report.quarantine_path.as_ref().expect("quarantine file")).unwrap();
    let cut_offset = report.cut_offset.expect("a cut") as usize;
    // A preallocated log keeps its length: its cut bytes are always copied.
    let preallocated = report
        .changes
        .iter()
        .any(|c| c.contains("preallocated length"));
    assert_eq!(
        report.quarantine_whole_log,
        cut_bytes.len() > cut_offset && !preallocated,
        "the whole log is kept exactly when the cut takes more than it leaves"
    );
    if report.quarantine_whole_log {
        let log = fs::read(report.cut_path.as_ref().expect("cut log")).unwrap();
        assert_eq!(log.len(), cut_offset, "the log ends at the cut");
        assert!(
            kept[..cut_offset] == log[..],
            "the kept log starts with the log's bytes"
        );
        kept.drain(..cut_offset);
    }
    assert!(!kept.is_empty());
    assert!(
        kept == cut_bytes,
        "{} bytes kept, {} cut",
        kept.len(),
        cut_bytes.len()
    );
    assert_eq!(report.tail_bytes_discarded, kept.len() as u64);
}

/// A torn tail of non-zero bytes (no valid record) as long as the valid log before it, one
/// byte shorter, or one byte longer, in a single log and in a hybrid directory's last
/// increment: the cut copies the tail in the first two, and keeps the whole file and writes
/// the valid part anew in the third (`quarantine_whole_log`, checked by [`assert_kept`] with
/// the file's contents). Either way later writes go to the file recovery leaves, so a restart
/// recovers them, with nothing more to cut.
fn a_cut_keeps_the_whole_log_exactly_when_it_takes_more_than_it_leaves(kind: BackendKind) {
    use durlab_engine::Persistence;
    for mode in [Persistence::Aof, Persistence::Hybrid] {
        for extra in [-1i64, 0, 1] {
            let dir = tempfile::tempdir().unwrap();
            let cfg = config(dir.path(), kind, FsyncPolicy::Always).persistence(mode);
            drop(write_n(&cfg, 10));
            // The file that takes appends: the log, or the newest increment.
            let mut logs: Vec<_> = fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.to_string_lossy().ends_with(".aof"))
                .collect();
            logs.sort_by_key(|p| fs::metadata(p).unwrap().modified().unwrap());
            let path = logs.pop().expect("a log");
            let mut bytes = fs::read(&path).unwrap();
            let valid = bytes.len();
            let junk = (valid as i64 + extra) as usize;
            bytes.extend((0..junk).map(|i| (i % 251) as u8 | 1));
            fs::write(&path, &bytes).unwrap();
            let (engine, report) = open(&cfg);
            let what = format!("{mode:?}, tail {junk} after {valid}");
            assert_eq!(report.recovered_lsn, 10, "{what}");
            assert_eq!(report.cut_offset, Some(valid as u64), "{what}");
            assert_eq!(report.quarantine_whole_log, extra > 0, "{what}");
            assert_kept(&report, &bytes[valid..]);
            for i in 11..=15 {
                assert_eq!(engine.execute_next(command).unwrap().lsn, Some(i), "{what}");
            }
            drop(engine);
            let (engine, report) = open(&cfg);
            assert_eq!(report.recovered_lsn, 15, "{what}");
            assert_eq!(report.tail_bytes_discarded, 0, "{what}");
            assert_eq!(engine.read(dump), dump(&expected_after(15)), "{what}");
        }
    }
}

fn appends_continue_after_cut(kind: BackendKind) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), kind, FsyncPolicy::Always);
    drop(write_n(&cfg, 10));
    let path = log_path(dir.path());
    let mut bytes = fs::read(&path).unwrap();
    bytes.truncate(bytes.len() - 3);
    fs::write(&path, &bytes).unwrap();
    let (engine, report) = open(&cfg);
    assert_eq!(report.recovered_lsn, 9);
    for i in 10..=20 {
        assert_eq!(engine.execute_next(command).unwrap().lsn, Some(i));
    }
    drop(engine);
    let (engine, report) = open(&cfg);
    assert_eq!(report.recovered_lsn, 20);
    assert_eq!(engine.read(dump), dump(&expected_after(20)));
}

/// A torn append in front of a preallocated region is cut by writing zeros over it: the log
/// keeps its length, so the reopened writer does not extend it again (no preallocation
/// counted), the copy holds every byte from the cut to the end, and appends continue. A log
/// that ends with its data is truncated instead (`truncation_at_every_byte_recovers_a_prefix`
/// checks the length there).
fn torn_tail_of_a_preallocated_log_is_zeroed_keeping_its_length(kind: BackendKind) {
    for prealloc in [Prealloc::Fallocate, Prealloc::Zero] {
        if !supports(kind, prealloc) {
            continue;
        }
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path(), kind, FsyncPolicy::Always).prealloc(prealloc);
        let engine = write_n(&cfg, 50);
        let data_end = FIRST_RECORD_OFFSET + engine.stats().bytes_written;
        drop(engine);
        let path = log_path(dir.path());
        let mut bytes = fs::read(&path).unwrap();
        let len = bytes.len();
        assert!(
            len as u64 > data_end + 100,
            "{prealloc:?}: a preallocated region"
        );
        assert!(bytes[data_end as usize..].iter().all(|&b| b == 0));
        // A torn append: part of a record header, then the preallocated zeros.
        bytes[data_end as usize..data_end as usize + 7].fill(0xAB);
        fs::write(&path, &bytes).unwrap();

        let (engine, report) = open(&cfg);
        assert_eq!(report.recovered_lsn, 50, "{prealloc:?}");
        assert_eq!(report.cut_offset, Some(data_end));
        assert_kept(&report, &bytes[data_end as usize..]);
        assert!(
            report
                .changes
                .iter()
                .any(|c| c.contains("zeros written over them, keeping the preallocated length")),
            "{:?}",
            report.changes
        );
        let after = fs::read(&path).unwrap();
        assert_eq!(after.len(), len, "{prealloc:?}: the length is kept");
        assert_eq!(&after[..data_end as usize], &bytes[..data_end as usize]);
        assert!(after[data_end as usize..].iter().all(|&b| b == 0));
        assert_eq!(
            engine.stats().prealloc_bytes,
            0,
            "{prealloc:?}: not extended again"
        );
        for i in 51..=55 {
            assert_eq!(engine.execute_next(command).unwrap().lsn, Some(i));
        }
        drop(engine);
        let (engine, report) = open(&cfg);
        assert_eq!(report.recovered_lsn, 55, "{prealloc:?}");
        assert_eq!(report.tail_bytes_discarded, 0);
        assert_eq!(engine.read(dump), dump(&expected_after(55)));
        assert_eq!(fs::metadata(&path).unwrap().len(), len as u64);
    }
}

fn missing_log_with_data_files_refused(kind: BackendKind) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), kind, FsyncPolicy::Always);
    drop(write_n(&cfg, 3));
    fs::rename(log_path(dir.path()), dir.path().join("durlab.aof.bak")).unwrap();
    let err = Engine::open(cfg).expect_err("must not start empty");
    assert!(err.to_string().contains("refusing to start empty"), "{err}");
    assert!(err.to_string().contains("durlab.aof.bak"), "{err}");
}

fn bad_header_refused_blank_file_reinitialised(kind: BackendKind) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), kind, FsyncPolicy::Always);
    drop(write_n(&cfg, 3));
    let path = log_path(dir.path());
    let mut bytes = fs::read(&path).unwrap();
    bytes[2] ^= 1;
    fs::write(&path, &bytes).unwrap();
    let err = Engine::open(cfg.clone()).expect_err("bad header");
    assert!(matches!(err, Error::Corrupt { offset: 0, .. }), "{err}");

    // A crash between creating the file and syncing its header leaves it empty or zeroed.
    for blank in [vec![], vec![0u8; 4096]] {
        fs::write(&path, &blank).unwrap();
        let (engine, report) = open(&cfg);
        assert!(report.created);
        assert_eq!(report.recovered_lsn, 0);
        engine.execute_next(command).unwrap();
        drop(engine);
        assert_eq!(open(&cfg).1.recovered_lsn, 1);
    }
}

/// A hole in data that was never synced (as a power loss with reordered writeback leaves it)
/// is cut, not refused, even in strict mode: later records say they were encoded before the
/// missing one was synced (`everysec`, before its first background sync). The same hole in
/// synced data is refused (`always`: every later record vouches for it): the companion that
/// shows the distinction can fail. Under `no` nothing was synced after open, so the hole is cut.
fn hole_in_unsynced_data_is_cut_in_synced_data_refused(kind: BackendKind) {
    for (policy, refused) in [
        (FsyncPolicy::EverySec, false),
        (FsyncPolicy::Always, true),
        (FsyncPolicy::No, false),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config(dir.path(), kind, policy);
        cfg.everysec_interval_ms = 3_600_000;
        drop(write_n(&cfg, 40));
        let path = log_path(dir.path());
        let mut bytes = fs::read(&path).unwrap();
        // Zero a 512-byte sector in the middle, as a lost unsynced sector reads.
        let sector = (bytes.len() / 2) / 512 * 512;
        bytes[sector..sector + 512].fill(0);
        fs::write(&path, &bytes).unwrap();
        let opened = Engine::open(cfg.clone());
        if refused {
            let err = opened.expect_err("synced data damaged: refuse");
            assert!(err.to_string().contains("damage in the middle"), "{err}");
        } else {
            let (engine, report) = opened.expect("an unsynced hole is cut");
            let r = report.recovered_lsn;
            assert!(r > 0 && r < 40, "cut at the hole: {r}");
            assert_eq!(engine.read(dump), dump(&expected_after(r)));
            assert_kept(&report, &bytes[report.cut_offset.unwrap() as usize..]);
        }
    }
}

/// After a standalone sync (background tick, `Engine::sync`, close) the log's header area says
/// what is durable, so damage to synced records that no later record vouches for is refused,
/// not cut (compare `hole_in_unsynced_data_is_cut_in_synced_data_refused`, where the same
/// damage without the sync is cut).
fn sync_hint_refuses_damage_to_synced_tail(kind: BackendKind) {
    for policy in [FsyncPolicy::EverySec, FsyncPolicy::No] {
        sync_hint_refuses_damage_to_synced_tail_under(kind, policy);
    }
}

fn sync_hint_refuses_damage_to_synced_tail_under(kind: BackendKind, policy: FsyncPolicy) {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), kind, policy);
    cfg.everysec_interval_ms = 3_600_000;
    let engine = write_n(&cfg, 40);
    assert_eq!(engine.sync().unwrap(), 40);
    drop(engine);
    let path = log_path(dir.path());
    let mut bytes = fs::read(&path).unwrap();
    let len = bytes.len();
    // Zero the last 100 bytes: without the hint this would be a torn tail and be cut.
    bytes[len - 100..].fill(0);
    fs::write(&path, &bytes).unwrap();
    let err = Engine::open(cfg.clone()).expect_err("synced data lost: refuse");
    assert!(err.to_string().contains("sync hint says LSN 40"), "{err}");
    assert_eq!(
        fs::read(&path).unwrap(),
        bytes,
        "a refused recovery changes nothing"
    );
    let (engine, report) = open(&cfg.clone().recovery(RecoveryMode::Lenient));
    assert!(report.recovered_lsn < 40);
    assert_eq!(
        engine.read(dump),
        dump(&expected_after(report.recovered_lsn))
    );
    drop(engine);
    // The lenient cut lowered the hint to what is left: the next strict open succeeds.
    let (_, again) = open(&cfg);
    assert_eq!(again.recovered_lsn, report.recovered_lsn);
}
