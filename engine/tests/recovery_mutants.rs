//! Recovery's decisions pinned down to the byte (issue 19): hand-made logs with damage at
//! chosen offsets, inside and beyond the 16 MiB scan window and across its overlap; sync hints
//! above, at and below the last valid record; LSN bounds at their limits; records of exactly
//! the size limit; logs read in several 4 MiB chunks. Every test asserts what recovery decided
//! (load, cut keeping a copy, or refuse) with exact offsets and byte counts, on real files, so
//! that a changed comparison or bound in `recovery/`, `aof/record.rs` or `aof/scan.rs` fails a
//! test (`scripts/mutants.sh` checks that it does).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use durlab_engine::aof::file_header::{FILE_HEADER_BYTES, FileHeader, encode_sync_hint};
use durlab_engine::aof::record::{self, RECORD_HEADER_BYTES, RecordFault};
use durlab_engine::aof::{FIRST_RECORD_OFFSET, LOG_FILE_NAME};
use durlab_engine::backend::open_backend;
use durlab_engine::backend::recording::{Op, RecordingBackend, read_trace};
use durlab_engine::{
    BackendKind, Command, Engine, EngineConfig, Error, FsyncPolicy, Lsn, RecoveryMode,
    RecoveryReport,
};

/// The smallest record (header and a one-byte payload): the unit of the LSN plausibility
/// bound in the tail scan.
const MIN_RECORD: usize = RECORD_HEADER_BYTES + 1;
/// The tail scan's window (`recovery/tail.rs`, `WINDOW_BYTES`).
const WINDOW: usize = 16 << 20;
/// The log scanner's read size (`aof/scan.rs`, `CHUNK_BYTES`).
const CHUNK: usize = 4 << 20;
/// `max_record_bytes` in these tests: the tail scan's window overlap is one largest record.
const MAX: u32 = 4096;
const OVERLAP: usize = RECORD_HEADER_BYTES + MAX as usize;
/// Filler for damaged regions: non-zero (so it counts as data, not preallocation), and its
/// LSN field reads as `u64::MAX`, above every plausible LSN.
const JUNK: u8 = 0xFF;

fn set(n: u64, value_len: usize) -> Command {
    Command::Set {
        key: format!("k{n}").into_bytes(),
        // Non-zero to the last byte: a record's last payload byte is a value byte.
        value: vec![b'v'; value_len],
    }
}

/// A log file built byte by byte.
struct Log {
    bytes: Vec<u8>,
}

impl Log {
    fn new(base_lsn: Lsn, hint: Option<Lsn>) -> Log {
        let mut bytes = FileHeader { base_lsn }.encode().to_vec();
        if let Some(h) = hint {
            bytes[32..64].copy_from_slice(&encode_sync_hint(h));
        }
        Log { bytes }
    }

    /// Appends one record as the writer encodes it.
    fn record(mut self, lsn: Lsn, synced: Option<Lsn>, cmd: &Command) -> Log {
        record::encode(&mut self.bytes, lsn, synced, cmd, u32::MAX).unwrap();
        self
    }

    /// Appends records `lsns`, each vouching for the one before (as under `always`).
    fn records(mut self, lsns: std::ops::RangeInclusive<Lsn>) -> Log {
        for lsn in lsns {
            self = self.record(lsn, Some(lsn - 1), &set(lsn, 20));
        }
        self
    }

    fn raw(mut self, bytes: &[u8]) -> Log {
        self.bytes.extend_from_slice(bytes);
        self
    }

    fn junk(self, n: usize) -> Log {
        self.raw(&vec![JUNK; n])
    }

    fn len(&self) -> u64 {
        self.bytes.len() as u64
    }
}

/// One record's bytes, as the writer encodes it.
fn encoded(lsn: Lsn, synced: Option<Lsn>, cmd: &Command) -> Vec<u8> {
    let mut out = Vec::new();
    record::encode(&mut out, lsn, synced, cmd, u32::MAX).unwrap();
    out
}

/// A frame with any `synced` field and payload, and a checksum that verifies.
fn frame(lsn: Lsn, synced_field: u64, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    f.extend_from_slice(&[0; 4]);
    f.extend_from_slice(&lsn.to_le_bytes());
    f.extend_from_slice(&synced_field.to_le_bytes());
    f.extend_from_slice(payload);
    let crc = crc32c::crc32c_append(crc32c::crc32c(&f[0..4]), &f[8..]);
    f[4..8].copy_from_slice(&crc.to_le_bytes());
    f
}

const TRACKED: u64 = 1 << 63;

fn config(dir: &Path) -> EngineConfig {
    let mut c = EngineConfig::new(dir)
        .backend(BackendKind::Pwrite)
        .policy(FsyncPolicy::Always);
    c.max_record_bytes = MAX;
    c
}

/// A data directory holding `log` as its log file.
struct Dir {
    tmp: tempfile::TempDir,
}

impl Dir {
    fn with(log: &Log) -> Dir {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join(LOG_FILE_NAME), &log.bytes).unwrap();
        Dir { tmp }
    }

    fn path(&self) -> &Path {
        self.tmp.path()
    }

    fn log(&self) -> PathBuf {
        self.path().join(LOG_FILE_NAME)
    }

    fn open(&self, mode: RecoveryMode) -> durlab_engine::Result<(Engine, RecoveryReport)> {
        Engine::open(config(self.path()).recovery(mode))
    }

    fn strict(&self) -> durlab_engine::Result<RecoveryReport> {
        self.open(RecoveryMode::Strict).map(|(_, r)| r)
    }
}

/// The offset just past the last non-zero byte from `from` on.
fn data_end(bytes: &[u8], from: u64) -> u64 {
    let from = from as usize;
    (from
        + bytes[from..]
            .iter()
            .rposition(|&b| b != 0)
            .map_or(0, |i| i + 1)) as u64
}

/// Strict recovery must cut `log` at `bad` as a torn tail: every byte from `bad` on (trailing
/// zeros included) is kept in the quarantine file first (a copy of them, or when they are
/// more than the bytes before `bad`, the whole log under a second name), the file ends at
/// `bad`, the report says what was cut, and `last` records load.
fn assert_cut(log: &Log, bad: u64, last: Lsn, reason: &str) -> RecoveryReport {
    let dir = Dir::with(log);
    let (engine, report) = dir
        .open(RecoveryMode::Strict)
        .unwrap_or_else(|e| panic!("expected a cut at {bad}, got {e}"));
    assert_eq!(report.recovered_lsn, last);
    assert_eq!(engine.read(|ks| ks.len()), last as usize);
    drop(engine);
    let end = log.len();
    assert_eq!(report.cut_offset, Some(bad), "cut offset");
    assert_eq!(report.cut_reason.as_deref(), Some(reason));
    assert_eq!(report.tail_bytes_discarded, end - bad, "bytes cut");
    assert_eq!(report.cut_path.as_deref(), Some(dir.log().as_path()));
    let q = report.quarantine_path.as_ref().expect("a quarantine copy");
    let whole = end - bad > bad;
    assert_eq!(report.quarantine_whole_log, whole);
    assert_eq!(
        report.changes,
        vec![format!(
            "{}: cut {} bytes at byte {bad} ({reason}), after the last valid record; they are kept in {}{}",
            dir.log().display(),
            end - bad,
            q.display(),
            if whole {
                format!(
                    ", the whole log as it was (the cut bytes from its byte {bad} on), and the \
                     log was written anew with the bytes before them"
                )
            } else {
                String::new()
            }
        )]
    );
    let name = if whole {
        "whole.quarantine"
    } else {
        "quarantine"
    };
    assert_eq!(q, &dir.path().join(format!("{LOG_FILE_NAME}.{bad}.{name}")));
    let kept = fs::read(q).unwrap();
    let want = if whole {
        &log.bytes[..]
    } else {
        &log.bytes[bad as usize..end as usize]
    };
    assert!(
        kept == want,
        "the quarantine file holds exactly the {} ({} kept, {} cut)",
        if whole { "whole log" } else { "cut bytes" },
        kept.len(),
        end - bad
    );
    assert!(
        fs::read(dir.log()).unwrap() == log.bytes[..bad as usize],
        "file cut at"
    );
    report
}

/// The bytes a lenient cut kept: the quarantine file, or from the cut offset on when it is the
/// whole log as it was (then its bytes before that are the log's now).
fn cut_bytes_kept(dir: &Dir, report: &RecoveryReport) -> Vec<u8> {
    let kept = fs::read(report.quarantine_path.as_ref().expect("a quarantine file")).unwrap();
    if !report.quarantine_whole_log {
        return kept;
    }
    let bad = report.cut_offset.expect("a cut") as usize;
    assert!(kept[..bad] == fs::read(dir.log()).unwrap()[..]);
    kept[bad..].to_vec()
}

/// Strict recovery must refuse `log`: the valid records end at `bad`, and the record with LSN
/// `next_lsn` at byte `next_offset` vouches that the missing one had been synced. Nothing on
/// disk changes.
fn assert_damage(log: &Log, bad: u64, next_lsn: Lsn, next_offset: u64) {
    let dir = Dir::with(log);
    let err = dir.strict().expect_err("damage in the middle: refuse");
    let Error::Corrupt {
        path,
        offset,
        reason,
    } = &err
    else {
        panic!("expected Corrupt, got {err}")
    };
    assert_eq!(path, &dir.log());
    assert_eq!(*offset, bad, "{reason}");
    let found = format!("a valid record (LSN {next_lsn}) follows at byte {next_offset}:");
    assert!(reason.contains(&found), "{reason}\nexpected: {found}");
    assert!(
        fs::read(dir.log()).unwrap() == log.bytes,
        "refusal changes nothing"
    );
}

/// Three good records; the tests damage what follows them.
fn good() -> Log {
    Log::new(0, None).records(1..=3)
}

const LAST: Lsn = 3;

// ---- The tail scan: which later record counts as evidence of damage ----

#[test]
fn vouching_record_after_junk_is_damage_and_is_found_at_its_exact_offset() {
    let log = good();
    let bad = log.len();
    // Seven junk bytes first, so the record is not at the scan's first position.
    let log = log.junk(7).raw(&encoded(5, Some(4), &set(5, 10)));
    assert_damage(&log, bad, 5, bad + 7);
}

#[test]
fn a_record_vouching_only_for_the_last_good_lsn_is_no_evidence() {
    // synced_lsn == the last good LSN: encoded before the missing record (LAST + 1) was synced.
    let log = good();
    let bad = log.len();
    let log = log.junk(7).raw(&encoded(5, Some(LAST), &set(5, 10)));
    assert_cut(&log, bad, LAST, "invalid record length 4294967295");
    // synced_lsn == the missing LSN exactly: evidence.
    let log = good().junk(7).raw(&encoded(5, Some(LAST + 1), &set(5, 10)));
    assert_damage(&log, bad, 5, bad + 7);
}

#[test]
fn untracked_records_count_as_evidence_only_above_the_last_good_lsn() {
    // A record without sync information is assumed synced, but one carrying the last good LSN
    // (a stale copy) says nothing about the missing one.
    let log = good();
    let bad = log.len();
    let stale = good().junk(7).raw(&encoded(LAST, None, &set(3, 10)));
    assert_cut(&stale, bad, LAST, "invalid record length 4294967295");
    let log = log.junk(7).raw(&encoded(LAST + 1, None, &set(4, 10)));
    assert_damage(&log, bad, LAST + 1, bad + 7);
}

#[test]
fn non_vouching_records_are_stepped_over_to_a_vouching_one() {
    let log = good();
    let bad = log.len();
    let unsynced = encoded(4, Some(2), &set(4, 30));
    let at = bad + 7 + unsynced.len() as u64;
    let log = log
        .junk(7)
        .raw(&unsynced)
        .raw(&encoded(5, Some(4), &set(5, 10)));
    assert_damage(&log, bad, 5, at);
}

#[test]
fn the_bad_record_itself_is_no_evidence() {
    // The record where the valid records end verifies but skips an LSN: it is the bad one, and
    // the search for evidence starts after it, so it is cut (a torn tail), not refused.
    let log = good();
    let bad = log.len();
    let log = log.raw(&encoded(LAST + 2, Some(LAST + 1), &set(5, 10)));
    assert_cut(&log, bad, LAST, "LSN 5 where 4 was expected");
}

#[test]
fn lsn_bound_is_last_plus_one_per_smallest_record_plus_one() {
    // The plausible LSNs after a bad offset: at most one per smallest record in the damaged
    // bytes, plus one. A record at the bound is evidence; one above it is junk that happens to
    // verify, and is ignored.
    let rec_len = encoded(1, Some(0), &set(1, 10)).len();
    let junk = 10_000;
    let bad = good().len();
    let end = bad + (junk + rec_len) as u64;
    let bound = LAST + (end - bad) / MIN_RECORD as u64 + 1;
    let at = |lsn| {
        good()
            .junk(junk)
            .raw(&encoded(lsn, Some(LAST + 1), &set(1, 10)))
    };
    assert_eq!(data_end(&at(bound).bytes, bad), end);
    assert_damage(&at(bound), bad, bound, bad + junk as u64);
    assert_cut(
        &at(bound + 1),
        bad,
        LAST,
        "invalid record length 4294967295",
    );
    // An untracked record above the bound is ignored as well.
    let untracked = good()
        .junk(junk)
        .raw(&encoded(bound + 1, None, &set(1, 10)));
    assert_cut(&untracked, bad, LAST, "invalid record length 4294967295");
}

#[test]
fn smallest_record_right_after_one_bad_byte_is_found() {
    // The last position the scan tries is the one where exactly one smallest record fits.
    let log = good();
    let bad = log.len();
    let smallest = frame(5, TRACKED | 4, &[0x7F]);
    assert_eq!(smallest.len(), MIN_RECORD);
    let log = log.junk(1).raw(&smallest);
    assert_damage(&log, bad, 5, bad + 1);
}

/// Where the tail scan starts: one byte after the bad offset.
fn scan_start(bad: u64) -> u64 {
    bad + 1
}

/// `good()`, then junk, a vouching record at `scan_start(bad) + pos`, and 100 junk bytes.
fn vouching_at(pos: usize) -> (Log, u64, u64) {
    let log = good();
    let bad = log.len();
    let at = scan_start(bad) + pos as u64;
    let log = log
        .junk(1 + pos)
        .raw(&encoded(5, Some(4), &set(5, 40)))
        .junk(100);
    (log, bad, at)
}

#[test]
fn record_found_beyond_the_first_scan_window() {
    let (log, bad, at) = vouching_at(WINDOW + 100);
    assert_damage(&log, bad, 5, at);
}

#[test]
fn record_straddling_the_window_end_is_read_through_the_overlap() {
    // Starts inside the first window and ends past it.
    let (log, bad, at) = vouching_at(WINDOW - 10);
    assert_damage(&log, bad, 5, at);
}

#[test]
fn record_ending_near_the_window_end_is_read_in_the_first_window() {
    // Starts one overlap (and a bit) before the window's end: its bytes are in the first read
    // only if that read covers the window plus the overlap.
    let (log, bad, at) = vouching_at(WINDOW - OVERLAP - 20);
    assert_damage(&log, bad, 5, at);
}

#[test]
fn damaged_tail_longer_than_a_window_without_evidence_is_cut_and_kept_whole() {
    // More than one window (and more than one 1 MiB copy step) of junk with a record that does
    // not vouch in the second window: a torn tail, copied whole before the cut.
    let log = good();
    let bad = log.len();
    let log = log
        .junk(WINDOW + 5000)
        .raw(&encoded(5, Some(LAST), &set(5, 40)))
        .junk(333)
        .raw(&[0; 4096]);
    assert_cut(&log, bad, LAST, "invalid record length 4294967295");
}

#[test]
fn torn_tail_followed_by_more_than_a_mebibyte_of_zeros() {
    // The end of the data is found across the 1 MiB steps that read the file backwards.
    let log = good();
    let bad = log.len();
    let log = log.raw(&[0xAB; 100]).raw(&vec![0; (1 << 20) + 4321]);
    let report = assert_cut(&log, bad, LAST, "invalid record length 2880154539");
    assert_eq!(report.tail_bytes_discarded, 100 + (1 << 20) + 4321);
}

// ---- The sync hint ----

#[test]
fn hint_equal_to_the_last_record_is_no_loss() {
    // A clean end.
    let log = Log::new(0, Some(LAST)).records(1..=LAST);
    let report = Dir::with(&log).strict().unwrap();
    assert_eq!(report.recovered_lsn, LAST);
    assert_eq!(report.cut_offset, None);
    // A zero-filled end.
    let zeros = Log::new(0, Some(LAST)).records(1..=LAST).raw(&[0; 1000]);
    let report = Dir::with(&zeros).strict().unwrap();
    assert_eq!(report.cut_offset, None);
    // A torn tail: cut, not refused.
    let log = Log::new(0, Some(LAST)).records(1..=LAST);
    let bad = log.len();
    assert_cut(&log.junk(50), bad, LAST, "invalid record length 4294967295");
}

#[test]
fn clean_end_below_the_hint_is_refused_then_kept_when_lenient() {
    // The records end cleanly at a record boundary (end of file), but the hint says two more
    // had been synced: synced data is lost.
    let log = Log::new(0, Some(LAST + 2)).records(1..=LAST);
    let dir = Dir::with(&log);
    let err = dir.strict().expect_err("synced records lost");
    let Error::Corrupt { offset, reason, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(*offset, log.len());
    assert!(
        reason.starts_with("end of file: the log's sync hint says LSN 5 had been synced, but the valid records end at LSN 3"),
        "{reason}"
    );
    assert!(fs::read(dir.log()).unwrap() == log.bytes);
    // Lenient: nothing to cut, but the hint is lowered to what is there.
    let (engine, report) = dir.open(RecoveryMode::Lenient).unwrap();
    drop(engine);
    assert_eq!(report.recovered_lsn, LAST);
    assert_eq!(report.cut_offset, None);
    assert_eq!(report.quarantine_path, None);
    assert_eq!(report.tail_bytes_discarded, 0);
    let now = fs::read(dir.log()).unwrap();
    assert_eq!(now[32..64], encode_sync_hint(LAST));
    assert_eq!(now[64..], log.bytes[64..], "records untouched");
    assert_eq!(dir.strict().unwrap().recovered_lsn, LAST);
    let quarantined = fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            name.to_string_lossy().contains("quarantine")
        })
        .count();
    assert_eq!(quarantined, 0);
}

#[test]
fn damaged_tail_below_the_hint_is_cut_and_kept_when_lenient() {
    let log = Log::new(0, Some(LAST + 2)).records(1..=LAST);
    let bad = log.len();
    let log = log.junk(50).raw(&[0; 200]);
    let dir = Dir::with(&log);
    let err = dir.strict().expect_err("synced records lost");
    let Error::Corrupt { offset, reason, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(*offset, bad);
    assert!(
        reason.starts_with("invalid record length 4294967295: the log's sync hint says LSN 5"),
        "{reason}"
    );
    let (engine, report) = dir.open(RecoveryMode::Lenient).unwrap();
    drop(engine);
    assert_eq!(report.recovered_lsn, LAST);
    assert_eq!(report.cut_offset, Some(bad));
    assert_eq!(report.tail_bytes_discarded, 250);
    assert_eq!(
        report.cut_reason.as_deref(),
        Some("invalid record length 4294967295")
    );
    assert_eq!(
        cut_bytes_kept(&dir, &report),
        [vec![JUNK; 50], vec![0; 200]].concat()
    );
    let now = fs::read(dir.log()).unwrap();
    assert_eq!(now.len() as u64, bad);
    assert_eq!(now[32..64], encode_sync_hint(LAST));
    assert_eq!(dir.strict().unwrap().recovered_lsn, LAST);
}

#[test]
fn damage_in_the_middle_is_cut_and_kept_when_lenient() {
    let log = good();
    let bad = log.len();
    let log = log.junk(7).raw(&encoded(5, Some(4), &set(5, 10)));
    let dir = Dir::with(&log);
    let (engine, report) = dir.open(RecoveryMode::Lenient).unwrap();
    drop(engine);
    assert_eq!(report.recovered_lsn, LAST);
    assert_eq!(report.cut_offset, Some(bad));
    assert_eq!(report.tail_bytes_discarded, log.len() - bad);
    assert!(cut_bytes_kept(&dir, &report) == log.bytes[bad as usize..]);
    assert_eq!(fs::metadata(dir.log()).unwrap().len(), bad);
}

// ---- What the scan reports: faults, offsets, counts ----

#[test]
fn each_fault_is_named_in_the_cut_reason() {
    let log = good();
    let bad = log.len();
    // Length above the limit.
    let over = frame(4, TRACKED | 3, &vec![1; MAX as usize + 1]);
    assert_cut(
        &good().raw(&over),
        bad,
        LAST,
        &format!("invalid record length {}", MAX + 1),
    );
    // A flipped payload bit.
    let mut flipped = encoded(4, Some(3), &set(4, 20));
    *flipped.last_mut().unwrap() ^= 1;
    assert_cut(&good().raw(&flipped), bad, LAST, "record checksum mismatch");
    // Fewer bytes than the length announces.
    let whole = encoded(4, Some(3), &set(4, 20));
    let part = &whole[..whole.len() - 1];
    assert_cut(&good().raw(part), bad, LAST, "truncated record");
    // Fewer bytes than a header.
    assert_cut(&good().raw(&whole[..10]), bad, LAST, "truncated record");
    // A verified record vouching for itself.
    let selfish = frame(4, TRACKED | 4, &whole[RECORD_HEADER_BYTES..]);
    assert_cut(
        &good().raw(&selfish),
        bad,
        LAST,
        "record claims its own LSN was already synced",
    );
    // An LSN out of sequence that vouches for nothing missing.
    let gap = encoded(LAST + 2, Some(2), &set(5, 20));
    assert_cut(&good().raw(&gap), bad, LAST, "LSN 5 where 4 was expected");
}

#[test]
fn report_counts_records_and_bytes_read() {
    let log = Log::new(0, None).records(1..=7);
    let report = Dir::with(&log).strict().unwrap();
    assert_eq!(report.records_replayed, 7);
    assert_eq!(report.bytes_read, log.len());
    assert_eq!(report.recovered_lsn, 7);
    // With damage after the records, the whole (small) file was read in one chunk.
    let log = Log::new(0, None).records(1..=7);
    let len = log.len();
    let report = assert_cut(&log.junk(99), len, 7, "invalid record length 4294967295");
    assert_eq!(report.records_replayed, 7);
    assert_eq!(report.bytes_read, len + 99);
}

#[test]
fn log_with_a_base_lsn_continues_from_it() {
    let log = Log::new(100, None).records(101..=104);
    let (engine, report) = Dir::with(&log).open(RecoveryMode::Strict).unwrap();
    assert_eq!(report.recovered_lsn, 104);
    assert_eq!(report.records_replayed, 4);
    assert_eq!(engine.execute_ack(set(9, 1)).unwrap().lsn, Some(105));
}

#[test]
fn verified_record_that_does_not_decode_is_refused_at_its_exact_byte() {
    let log = good();
    let at = log.len();
    // A SET payload with one trailing byte: it verifies, but decoding fails at that byte.
    let mut payload = Vec::new();
    set(4, 20).encode(&mut payload);
    let trailing = payload.len();
    payload.push(9);
    let log = log.raw(&frame(4, TRACKED | 3, &payload));
    let dir = Dir::with(&log);
    let err = dir.strict().expect_err("does not decode");
    let Error::Corrupt { offset, reason, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(
        *offset,
        at + (RECORD_HEADER_BYTES + trailing) as u64,
        "{reason}"
    );
    assert!(
        reason.starts_with("record LSN 4 passed its checksum but does not decode"),
        "{reason}"
    );
    // Lenient recovery refuses it too: the log itself is inconsistent, not torn.
    assert!(dir.open(RecoveryMode::Lenient).is_err());
}

// ---- Record size limits ----

/// A command whose payload is exactly `len` bytes.
fn command_of_len(len: usize) -> Command {
    let base = set(1, 0).encoded_len();
    let c = set(1, len - base);
    assert_eq!(c.encoded_len(), len);
    c
}

#[test]
fn record_of_exactly_the_limit_is_written_and_recovered() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let (engine, _) = Engine::open(cfg.clone()).unwrap();
    assert_eq!(
        engine
            .execute_ack(command_of_len(MAX as usize))
            .unwrap()
            .lsn,
        Some(1)
    );
    let err = engine
        .execute_ack(command_of_len(MAX as usize + 1))
        .expect_err("over the limit");
    assert!(matches!(err, Error::InvalidCommand(_)), "{err}");
    drop(engine);
    let (_, report) = Engine::open(cfg).unwrap();
    assert_eq!(report.recovered_lsn, 1);
    assert_eq!(report.tail_bytes_discarded, 0);
}

#[test]
fn encode_and_decode_accept_exactly_the_limit() {
    let c = command_of_len(100);
    let mut out = Vec::new();
    record::encode(&mut out, 1, Some(0), &c, 100).unwrap();
    assert_eq!(record::decode(&out, 100).unwrap().payload.len(), 100);
    assert_eq!(record::decode(&out, 99), Err(RecordFault::BadLength(100)));
    assert_eq!(record::encode(&mut out, 2, Some(1), &c, 99), Err(100));
}

#[test]
fn synced_field_rules_with_a_valid_checksum() {
    let p = [1u8, 2, 3];
    let dec = |synced| record::decode(&frame(10, synced, &p), MAX).map(|r| r.synced_lsn);
    assert_eq!(dec(0), Ok(None), "no information");
    assert_eq!(dec(TRACKED), Ok(Some(0)));
    assert_eq!(dec(TRACKED | 9), Ok(Some(9)));
    assert_eq!(dec(TRACKED | 10), Err(RecordFault::BadSyncedLsn), "itself");
    assert_eq!(
        dec(TRACKED | 11),
        Err(RecordFault::BadSyncedLsn),
        "a later one"
    );
    assert_eq!(
        dec(9),
        Err(RecordFault::BadSyncedLsn),
        "tracked bit missing"
    );
    // What the writer encodes reads back as it was given.
    let mut out = Vec::new();
    record::encode(&mut out, 10, Some(6), &set(1, 1), MAX).unwrap();
    record::encode(&mut out, 11, None, &set(1, 1), MAX).unwrap();
    let first = record::decode(&out, MAX).unwrap();
    assert_eq!(first.synced_lsn, Some(6));
    let second = record::decode(&out[first.encoded_len()..], MAX).unwrap();
    assert_eq!(second.synced_lsn, None);
}

#[test]
fn header_sized_buffers() {
    // Exactly a header of zeros: the length is checked before anything else is missing.
    assert_eq!(
        record::decode(&[0; RECORD_HEADER_BYTES], MAX),
        Err(RecordFault::BadLength(0))
    );
    let mut h = [0u8; RECORD_HEADER_BYTES];
    h[0] = 1;
    assert_eq!(record::decode(&h, MAX), Err(RecordFault::Truncated));
}

// ---- Logs read in more than one 4 MiB chunk ----

/// Records of `value_len`-byte values from LSN `first` on until the log is at least `len`
/// bytes long; returns the log and the last LSN.
fn fill_to(mut log: Log, first: Lsn, len: usize, value_len: usize) -> (Log, Lsn) {
    let mut lsn = first;
    while log.bytes.len() < len {
        log = log.record(lsn, Some(lsn - 1), &set(lsn, value_len));
        lsn += 1;
    }
    (log, lsn - 1)
}

fn big_config(dir: &Path) -> EngineConfig {
    let mut c = config(dir);
    c.max_record_bytes = 8 << 20;
    c
}

#[test]
fn big_last_record_straddling_a_chunk_boundary_ends_the_file() {
    // Small records up to just before the first chunk's end, then a 4.5 MiB record that
    // starts there and ends exactly at the end of the file: the scanner must read the rest of
    // it in a second, larger-than-a-chunk read.
    let (log, last) = fill_to(Log::new(0, None), 1, FILE_HEADER_BYTES + CHUNK - 200, 300);
    let log = log.record(last + 1, Some(last), &set(0, CHUNK + CHUNK / 8));
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join(LOG_FILE_NAME), &log.bytes).unwrap();
    let (engine, report) = Engine::open(big_config(tmp.path())).unwrap();
    assert_eq!(report.recovered_lsn, last + 1);
    assert_eq!(report.records_replayed, last + 1);
    assert_eq!(report.bytes_read, log.len());
    assert_eq!(report.cut_offset, None);
    assert_eq!(engine.read(|ks| ks.len()), (last + 1) as usize);
}

#[test]
fn log_of_several_chunks_with_damage_in_the_last() {
    // Records over three chunks (boundaries fall inside records), a big one among them, then
    // damage: everything before it loads, and the scan read the whole file.
    let (log, last) = fill_to(Log::new(0, None), 1, CHUNK - 100, 1000);
    let log = log.record(last + 1, Some(last), &set(0, CHUNK + 1000));
    let (log, last) = fill_to(log, last + 2, 3 * CHUNK + 777, 700);
    let bad = log.len();
    let log = log.junk(5000);
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join(LOG_FILE_NAME), &log.bytes).unwrap();
    let (engine, report) = Engine::open(big_config(tmp.path())).unwrap();
    assert_eq!(report.recovered_lsn, last);
    assert_eq!(report.records_replayed, last);
    assert_eq!(report.cut_offset, Some(bad));
    assert_eq!(report.tail_bytes_discarded, 5000);
    assert_eq!(report.bytes_read, log.len());
    assert_eq!(engine.read(|ks| ks.len()), last as usize);
}

// ---- Quarantine names ----

#[test]
fn quarantine_copy_takes_the_next_free_name() {
    let log = good();
    let bad = log.len();
    let log = log.junk(40);
    let dir = Dir::with(&log);
    let first = dir.path().join(format!("{LOG_FILE_NAME}.{bad}.quarantine"));
    fs::write(&first, b"an earlier copy").unwrap();
    let report = dir.strict().unwrap();
    let q = report.quarantine_path.unwrap();
    assert_eq!(
        q,
        dir.path()
            .join(format!("{LOG_FILE_NAME}.{bad}.quarantine.1"))
    );
    assert_eq!(fs::read(q).unwrap(), vec![JUNK; 40]);
    assert_eq!(fs::read(first).unwrap(), b"an earlier copy");
}

#[test]
fn quarantine_create_failure_is_an_io_error_and_nothing_is_cut() {
    // A directory whose path leaves room for the log's name but not for the quarantine
    // copy's: creating the copy fails with ENAMETOOLONG, which is reported as such (not
    // retried under other names), and the log is not cut.
    let tmp = tempfile::tempdir().unwrap();
    let mut dir = tmp.path().to_path_buf();
    // PATH_MAX is 4096 bytes with the terminating NUL.
    let target = 4095 - (LOG_FILE_NAME.len() + 1);
    while dir.as_os_str().len() < target - 201 {
        dir.push("d".repeat(200));
    }
    let pad = target - dir.as_os_str().len() - 1;
    dir.push("e".repeat(pad));
    fs::create_dir_all(&dir).unwrap();
    let log_path = dir.join(LOG_FILE_NAME);
    assert_eq!(log_path.as_os_str().len(), 4095);
    let log = good();
    let len = log.len();
    let log = log.junk(40);
    fs::write(&log_path, &log.bytes).unwrap();
    let err = Engine::open(config(&dir)).expect_err("no room for the copy's name");
    match &err {
        Error::Io { source, .. } => {
            assert_eq!(source.raw_os_error(), Some(libc::ENAMETOOLONG), "{err}")
        }
        other => panic!("expected an I/O error, got {other}"),
    }
    assert!(err.to_string().contains("quarantine"), "{err}");
    assert_eq!(fs::metadata(&log_path).unwrap().len(), len + 40);
}

// ---- Leftover files ----

#[test]
fn temp_leftovers_are_reported_and_do_not_block_a_fresh_start() {
    // A fresh start next to a temp file only.
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("durlab.snap.tmp"), b"half a snapshot").unwrap();
    let (engine, report) = Engine::open(config(tmp.path())).unwrap();
    drop(engine);
    assert!(report.created);
    assert_eq!(
        report.leftover_files,
        vec![tmp.path().join("durlab.snap.tmp")]
    );
    // An existing log next to a temp file and a foreign file.
    fs::write(tmp.path().join("other.txt"), b"not ours").unwrap();
    let (engine, report) = Engine::open(config(tmp.path())).unwrap();
    drop(engine);
    assert!(!report.created);
    assert_eq!(
        report.leftover_files,
        vec![tmp.path().join("durlab.snap.tmp")]
    );
}

// ---- The sync of recovered records ----

/// Compound fault: kill -9 (the recovered records may be only in the page cache), restart,
/// then a power loss before the next sync. The writer counts the recovered records as synced
/// (later records vouch for them, and under `no` a new record may be acknowledged without any
/// sync), so recovery must fdatasync them before the first new write: the trace must show a
/// sync of the log before the new record's write.
#[test]
fn recovered_records_are_synced_before_new_writes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join(LOG_FILE_NAME), good().bytes).unwrap();
    let trace = tmp.path().join("io.trace");
    let rec = RecordingBackend::new(open_backend(BackendKind::Pwrite).unwrap(), &trace).unwrap();
    let mut cfg = config(&dir).policy(FsyncPolicy::No);
    cfg.backend_override = Some(Arc::new(rec));
    let (engine, report) = Engine::open(cfg).unwrap();
    assert_eq!(report.recovered_lsn, LAST);
    assert_eq!(engine.execute_ack(set(4, 5)).unwrap().lsn, Some(LAST + 1));
    drop(engine);
    let t = read_trace(&trace).unwrap();
    let log_path = std::path::absolute(dir.join(LOG_FILE_NAME)).unwrap();
    let log_id = t
        .entries
        .iter()
        .find_map(|e| match &e.op {
            Op::Preexisting { file, path, .. } if *path == log_path => Some(*file),
            _ => None,
        })
        .expect("the log was found pre-existing");
    let first_write = t
        .entries
        .iter()
        .position(|e| matches!(e.op, Op::Write { file, offset, .. } if file == log_id && offset >= FIRST_RECORD_OFFSET))
        .expect("the new record was written");
    let synced_before = t.entries[..first_write]
        .iter()
        .any(|e| matches!(e.op, Op::SyncData { file, .. } if file == log_id));
    assert!(
        synced_before,
        "no fdatasync of the recovered log before the first new write: {:#?}",
        &t.entries[..=first_write]
    );
}
