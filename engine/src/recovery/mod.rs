//! Rebuilding the keyspace from the log at open.
//!
//! Records are replayed in order; the first one that fails its length, checksum or LSN
//! continuity ends the log. What follows is then classified ([`tail`]): zeros are the clean
//! end (preallocation); non-zero bytes without a valid record after them are a torn append and
//! are cut, after their bytes are kept ([`quarantine`], [`cut`]); a valid record after the bad
//! one means damage in the middle, which is refused in [`RecoveryMode::Strict`] and cut in
//! `Lenient`.

pub(crate) mod files;
mod quarantine;
pub(crate) mod tail;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::Lsn;
use crate::aof::file_header::{FILE_HEADER_BYTES, FileHeader};
use crate::aof::record::RECORD_HEADER_BYTES;
use crate::aof::scan::{Scanner, Step};
use crate::backend::atomic::{CrashPoints, rewrite_atomic, temp_path};
use crate::backend::{Backend, BackendFile, OpenMode};
use crate::config::{EngineConfig, Prealloc, RecoveryMode};
use crate::error::{Error, Result};
use crate::failpoint::failpoint;
use crate::keyspace::{Command, Keyspace};
pub(crate) use tail::Tail;

/// What recovery found and did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecoveryReport {
    /// Highest LSN loaded (0 for an empty or new log).
    pub recovered_lsn: Lsn,
    pub records_replayed: u64,
    /// Bytes read from the log, header included.
    pub bytes_read: u64,
    /// Bytes cut from the log: from the cut offset to the end of the file as it was, zeros
    /// after the last non-zero byte included (0 for a clean or zero-filled end, which is kept).
    /// The quarantine file holds exactly these bytes (from its start, or from the cut offset
    /// on when it is the whole log: `quarantine_whole_log`).
    pub tail_bytes_discarded: u64,
    /// The log that was cut, when one was.
    pub cut_path: Option<PathBuf>,
    /// Byte offset where the log was cut, when it was.
    pub cut_offset: Option<u64>,
    /// Why the log was cut, when it was.
    pub cut_reason: Option<String>,
    /// Where the cut bytes were kept before the cut.
    pub quarantine_path: Option<PathBuf>,
    /// The quarantine file is the whole log as it was, the cut bytes from the cut offset on,
    /// and the log was written anew with the bytes before them ([`Cut::whole_log_kept`]).
    pub quarantine_whole_log: bool,
    /// Records of a [`crate::engine::ReplayBase`] that recovery verified but did not replay
    /// again (their state came from the base); 0 when the log was replayed from its start.
    pub resumed_records: u64,
    /// Which of the bases given to [`crate::Engine::open_from`] that was (its index).
    pub resumed_from: Option<usize>,
    /// True if no log existed (or it was empty/all zeros) and a new one was written.
    pub created: bool,
    pub duration: Duration,
    /// The snapshot (or hybrid base) loaded before any log, if one was.
    pub snapshot_path: Option<PathBuf>,
    /// LSN of that snapshot.
    pub snapshot_lsn: Option<Lsn>,
    pub snapshot_entries: u64,
    /// Hybrid: the generation of the manifest recovery followed.
    pub manifest_generation: Option<u64>,
    /// Files left by an interrupted snapshot, manifest installation or rewrite (temp files,
    /// increments or bases no manifest lists): ignored, not removed.
    pub leftover_files: Vec<PathBuf>,
    /// Every change recovery made on disk, one sentence each naming the file (and the offset
    /// and byte count where bytes were cut or written), in the order made: what `durlab serve`
    /// prints on stderr at startup.
    pub changes: Vec<String>,
}

/// Where appends continue after recovery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LogPosition {
    /// Offset of the next record.
    pub next_offset: u64,
    /// File length after recovery (beyond `next_offset` only zeros).
    pub file_len: u64,
    pub last_lsn: Lsn,
}

/// The outcome of reading one log file front to back, before anything is cut.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Scanned {
    /// The header's `base_lsn`: the first record carries `base_lsn + 1`.
    pub base_lsn: Lsn,
    /// LSN of the last valid record (`base_lsn` if none).
    pub last_lsn: Lsn,
    pub records: u64,
    pub bytes_read: u64,
    /// Where the valid records end.
    pub end_offset: u64,
    pub file_len: u64,
    /// Why the records end at `end_offset` (empty at the end of the file).
    pub fault: String,
    /// What lies from `end_offset` to the end of the file.
    pub tail: Tail,
}

/// Reads every valid record of the log `file` (at `path`), decoding each and handing it to
/// `on_record`, then classifies what follows the last one ([`tail`]). Changes nothing on disk.
/// Returns `Ok(Err(reason))` when the file header does not verify.
///
/// # Errors
/// [`Error::Corrupt`] for a record that verified but does not decode; I/O errors.
pub(crate) fn scan_log(
    file: &dyn BackendFile,
    path: &Path,
    max_record_bytes: u32,
    on_record: impl FnMut(Command),
) -> Result<Result<Scanned, String>> {
    scan_log_from(file, path, max_record_bytes, None, on_record)
}

/// Where a scan resumes: the log's first `records` records, ending with LSN `last_lsn` at byte
/// `offset`, were verified by the caller, who holds the state they make
/// (`crate::engine::ReplayBase`: the same bytes, replayed before).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Resume {
    pub(crate) offset: u64,
    pub(crate) records: u64,
    pub(crate) last_lsn: Lsn,
}

/// [`scan_log`], from `resume` when given: the header is still read and verified, and the
/// records after `resume.offset` scanned as usual, starting from `resume.last_lsn`.
///
/// # Errors
/// As [`scan_log`].
pub(crate) fn scan_log_from(
    file: &dyn BackendFile,
    path: &Path,
    max_record_bytes: u32,
    resume: Option<Resume>,
    mut on_record: impl FnMut(Command),
) -> Result<Result<Scanned, String>> {
    let io_err = |op, offset| move |e| Error::io(op, path, offset, e);
    let max = max_record_bytes;
    let (mut scanner, header) = match Scanner::open(file, max).map_err(io_err("read", Some(0)))? {
        Ok(opened) => opened,
        Err(reason) => return Ok(Err(reason)),
    };
    let mut last = header.base_lsn;
    let mut records = 0;
    if let Some(r) = resume {
        scanner.skip_to(r.offset);
        last = r.last_lsn;
        records = r.records;
    }
    let (end_offset, fault) = loop {
        match scanner.next_step().map_err(io_err("read", None))? {
            Step::Record { offset, record } => {
                if record.lsn != last + 1 {
                    let fault = format!("LSN {} where {} was expected", record.lsn, last + 1);
                    break (offset, fault);
                }
                let cmd = Command::decode(record.payload).map_err(|e| Error::Corrupt {
                    path: path.to_path_buf(),
                    offset: offset + (RECORD_HEADER_BYTES + e.offset) as u64,
                    reason: format!(
                        "record LSN {} passed its checksum but does not decode: {}",
                        record.lsn, e.reason
                    ),
                })?;
                on_record(cmd);
                last = record.lsn;
                records += 1;
            }
            Step::End { offset, fault } => {
                break (offset, fault.map(|f| f.describe()).unwrap_or_default());
            }
        }
    };
    let file_len = scanner.file_len();
    let hint = scanner.sync_hint();
    // Equivalent mutants (`<` to `<=`, `>` to `>=`, .cargo/mutants.toml): at `end_offset ==
    // file_len` with a hint at most `last`, `classify` finds no bytes and no loss: `Clean`.
    let tail = if end_offset < file_len || hint.is_some_and(|h| h > last) {
        tail::classify(file, end_offset, file_len, last, max, hint).map_err(io_err("read", None))?
    } else {
        Tail::Clean
    };
    Ok(Ok(Scanned {
        base_lsn: header.base_lsn,
        last_lsn: last,
        records,
        bytes_read: scanner.bytes_read(),
        end_offset,
        file_len,
        fault,
        tail,
    }))
}

/// Replays the log `file` (at `path`) into `keyspace`, cutting a torn tail as described in
/// the module docs, and fills `report`.
///
/// # Errors
/// [`Error::Corrupt`] with the file and byte offset for a bad header, damage in the middle in
/// strict mode, or a record that verified but does not decode; I/O errors otherwise. On error
/// nothing on disk has been changed except by a completed quarantine copy.
/// With `resume`, `keyspace` already holds the state of the records before it (see
/// [`scan_log_from`]).
pub(crate) fn replay(
    backend: &dyn Backend,
    file: &dyn BackendFile,
    path: &Path,
    config: &EngineConfig,
    resume: Option<Resume>,
    keyspace: &mut Keyspace,
    report: &mut RecoveryReport,
) -> Result<Settled> {
    let started = Instant::now();
    let max = config.max_record_bytes;
    let scanned = match scan_log_from(file, path, max, resume, |cmd| {
        keyspace.apply_owned(cmd);
    })? {
        Ok(scanned) => scanned,
        Err(reason) => {
            return reinit_if_blank(file, path, reason, report).map(|pos| Settled {
                pos,
                reopened: None,
            });
        }
    };
    let settled = settle_tail(backend, file, path, &scanned, config, report)?;
    report.duration += started.elapsed();
    Ok(settled)
}

/// Where a log's records end once its tail is settled, and the file to write it through.
pub(crate) struct Settled {
    pub(crate) pos: LogPosition,
    /// The log as reopened after a cut replaced it ([`cut`]): the handle recovery was given
    /// then names the quarantined file, not the log. `None`: the log is still that file.
    pub(crate) reopened: Option<Arc<dyn BackendFile>>,
}

/// Acts on the tail of the last (or only) log after [`scan_log`]: a clean end stays, a torn
/// tail is cut (after a copy is kept; a log that `config` preallocates keeps its length, see
/// [`cut`]), damage in the middle is refused in strict mode (`config.recovery`) and cut in
/// lenient mode. Records the scan and the cut in `report`.
///
/// # Errors
/// [`Error::Corrupt`] for damage in the middle under strict recovery; I/O errors.
pub(crate) fn settle_tail(
    backend: &dyn Backend,
    file: &dyn BackendFile,
    path: &Path,
    scanned: &Scanned,
    config: &EngineConfig,
    report: &mut RecoveryReport,
) -> Result<Settled> {
    let mode = config.recovery;
    note_scanned(report, scanned);
    let mut pos = LogPosition {
        next_offset: scanned.end_offset,
        file_len: scanned.file_len,
        last_lsn: scanned.last_lsn,
    };
    let data_end = match scanned.tail {
        Tail::Clean => {
            // The writer starts out counting every recovered record as synced (later records
            // vouch for them): after a kill -9 they may still be only in the page cache.
            // Equivalent mutant (`>` to `>=`, .cargo/mutants.toml): an extra fdatasync of a log
            // without records makes nothing durable that was not already.
            if scanned.records > 0 {
                file.sync_data()
                    .map_err(|e| Error::io("fdatasync", path, None, e))?;
            }
            return Ok(Settled {
                pos,
                reopened: None,
            });
        }
        Tail::Torn { data_end } => data_end,
        Tail::Damage {
            next_offset,
            next_lsn,
            ..
        } if mode == RecoveryMode::Strict => {
            return Err(damage_error(path, scanned, next_offset, next_lsn));
        }
        Tail::Damage { data_end, .. } => data_end,
        Tail::SyncedLost { synced_lsn, .. } if mode == RecoveryMode::Strict => {
            return Err(Error::Corrupt {
                path: path.to_path_buf(),
                offset: scanned.end_offset,
                reason: format!(
                    "{}: the log's sync hint says LSN {synced_lsn} had been synced, but the \
                     valid records end at LSN {}: synced data is damaged or lost (lenient \
                     recovery would cut here, keeping a copy)",
                    if scanned.fault.is_empty() {
                        "end of file"
                    } else {
                        &scanned.fault
                    },
                    scanned.last_lsn
                ),
            });
        }
        Tail::SyncedLost {
            data_end,
            synced_lsn,
        } => {
            // The hint must not claim records that are now gone.
            let hint = crate::aof::file_header::encode_sync_hint(scanned.last_lsn);
            file.write_all_at_sync(&hint, crate::aof::file_header::SYNC_HINT_OFFSET)
                .map_err(|e| Error::io("write+fdatasync", path, Some(32), e))?;
            report.changes.push(format!(
                "{}: lowered the sync hint at byte {} from LSN {synced_lsn} to LSN {}, the last \
                 valid record (lenient recovery: synced records were lost)",
                path.display(),
                crate::aof::file_header::SYNC_HINT_OFFSET,
                scanned.last_lsn
            ));
            if data_end == scanned.end_offset {
                return Ok(Settled {
                    pos,
                    reopened: None,
                });
            }
            data_end
        }
    };
    let bad_offset = scanned.end_offset;
    let keep_length = config.prealloc != Prealloc::None;
    let (done, reopened) = cut(backend, file, path, bad_offset, data_end, keep_length)?;
    report
        .changes
        .push(done.describe(path, bad_offset, &scanned.fault));
    report.tail_bytes_discarded = done.bytes;
    report.cut_path = Some(path.to_path_buf());
    report.cut_offset = Some(bad_offset);
    report.cut_reason = Some(scanned.fault.clone());
    report.quarantine_path = Some(done.quarantine_path);
    report.quarantine_whole_log = done.whole_log_kept;
    if !done.length_kept {
        pos.file_len = bad_offset;
    }
    Ok(Settled { pos, reopened })
}

/// Adds a scanned log's records and bytes to `report`.
pub(crate) fn note_scanned(report: &mut RecoveryReport, scanned: &Scanned) {
    report.records_replayed += scanned.records;
    report.bytes_read += scanned.bytes_read;
    report.recovered_lsn = scanned.last_lsn;
}

/// The refusal for valid records after a bad one.
pub(crate) fn damage_error(
    path: &Path,
    scanned: &Scanned,
    next_offset: u64,
    next_lsn: Lsn,
) -> Error {
    Error::Corrupt {
        path: path.to_path_buf(),
        offset: scanned.end_offset,
        reason: format!(
            "{}, but a valid record (LSN {next_lsn}) follows at byte {next_offset}: \
             damage in the middle of the log (lenient recovery would cut here, keeping a copy)",
            scanned.fault
        ),
    }
}

/// What [`cut`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cut {
    /// Bytes removed from the log (from the cut offset to its former end), all of them in the
    /// quarantine copy.
    pub bytes: u64,
    /// The copy.
    pub quarantine_path: PathBuf,
    /// The log kept its length (its engine preallocates it): the cut data was overwritten
    /// with zeros instead of the file being truncated ([`cut`]).
    pub length_kept: bool,
    /// The quarantine file is the whole log as it was (a second name for it), and the log was
    /// written anew with the bytes before the cut ([`cut`]): the cut bytes are the
    /// quarantine file's from the cut offset on, not from its start.
    pub whole_log_kept: bool,
}

impl Cut {
    /// The one sentence that reports a cut, at startup and from `durlab recover --fix`.
    pub fn describe(&self, path: &Path, offset: u64, reason: &str) -> String {
        format!(
            "{}: cut {} bytes at byte {offset}{}, after the last valid record{}; they are kept in {}{}",
            path.display(),
            self.bytes,
            if reason.is_empty() {
                String::new()
            } else {
                format!(" ({reason})")
            },
            if self.length_kept {
                " (zeros written over them, keeping the preallocated length)"
            } else {
                ""
            },
            self.quarantine_path.display(),
            if self.whole_log_kept {
                format!(
                    ", the whole log as it was (the cut bytes from its byte {offset} on), and \
                     the log was written anew with the bytes before them"
                )
            } else {
                String::new()
            }
        )
    }
}

/// Cuts `file` (at `path`) at `from`: everything from there to its end goes, after those
/// bytes are kept in a quarantine file synced with its directory entry. Bytes from
/// `data_end` on must be zeros (the caller found them so).
///
/// How the bytes are kept depends on which part is larger, so that the bytes written are at
/// most the smaller part (a power loss under policy `no` cuts most of a log at its first
/// hole, a torn append only its last bytes):
/// - The cut part is at most the kept part ([`copy_wins`]): it is copied to a quarantine file
///   ([`quarantine::keep_copy`]; the bytes from `data_end` on as a hole). With `keep_length`
///   (a log its writer preallocates), zeros are then written over `[from, data_end)` and the
///   length is kept: the log reads the same (nothing but zeros past `from`, the clean end of
///   a log) and stays preallocated, where a truncation would make the writer extend it
///   again, a whole chunk of zeros written and synced (or reserved) at every startup that cut
///   a torn tail. Otherwise the file is truncated at `from`.
/// - The cut part is larger, and the log is not preallocated: the bytes before `from` are
///   written to a temp file, the whole log is kept under a second name
///   ([`quarantine::keep_whole`], a hard link), and the temp file is synced and renamed over
///   `path`, the directory synced. A crash at any step leaves the old log or the new one
///   under `path`, and every byte in one of them or the quarantine file. The new log is
///   returned, opened: `file` then names the quarantine file.
///
/// # Errors
/// I/O failures (a full disk included). If keeping the bytes failed, nothing was cut and no
/// copy is left; a later failure (a sync of the new log, the rename) leaves the quarantine
/// link, which holds no byte of its own, and the log as it was (or already replaced). The
/// temp file of a failed new log is removed; an injected crash point leaves it.
pub(crate) fn cut(
    backend: &dyn Backend,
    file: &dyn BackendFile,
    path: &Path,
    from: u64,
    data_end: u64,
    keep_length: bool,
) -> Result<(Cut, Option<Arc<dyn BackendFile>>)> {
    let io_err = |op, offset| move |e| Error::io(op, path, offset, e);
    let len = file.len().map_err(io_err("stat", None))?;
    let done = |quarantine_path, length_kept, whole_log_kept| Cut {
        bytes: len - from,
        quarantine_path,
        length_kept,
        whole_log_kept,
    };
    if !keep_length && !copy_wins(from, len) {
        let installed = rewrite_atomic(backend, path, CUT_POINTS, |temp, temp_path| {
            quarantine::copy_range(file, path, temp, temp_path, 0, from, from)?;
            failpoint!("cut.after_temp_write");
            quarantine::keep_whole(backend, file, path, from)
        });
        let kept = match installed {
            Ok(kept) => kept,
            // An injected crash leaves every file as it is, as a kill -9 would.
            Err(e @ Error::Injected { .. }) => return Err(e),
            Err(e) => {
                // The temp file is ours, and never the only copy of a byte: until the rename
                // the log holds them all, after it the quarantine file does. Removing it is
                // best effort (it may not exist, or the failure may be the disk's): one left
                // behind is never loaded, and the next start reports it and writes over it.
                let _ = backend.remove(&temp_path(path));
                return Err(e);
            }
        };
        let reopened = backend
            .open(path, OpenMode::Existing)
            .map_err(io_err("open", None))?;
        return Ok((done(kept, false, true), Some(reopened)));
    }
    let kept = quarantine::keep_copy(backend, file, path, from, data_end, len)?;
    if keep_length {
        // As many zeros as the data they replace: a torn tail, at most the unsynced part of
        // the log, which recovery has just read in full.
        file.write_all_at(&vec![0u8; (data_end - from) as usize], from)
            .map_err(io_err("pwrite", Some(from)))?;
    } else {
        file.set_len(from)
            .map_err(io_err("ftruncate", Some(from)))?;
    }
    file.sync_data().map_err(io_err("fdatasync", None))?;
    Ok((done(kept, keep_length, false), None))
}

/// Whether a cut at `from` of a log `len` bytes long copies the cut bytes (true) rather than
/// keeping the whole log and writing the bytes before `from` anew: when there are no more of
/// the former than of the latter.
fn copy_wins(from: u64, len: u64) -> bool {
    len - from <= from
}

/// The named crash points (`crate::failpoint`) of installing the log a cut leaves ([`cut`]).
const CUT_POINTS: CrashPoints = CrashPoints {
    after_temp_create: None,
    // After the write closure: the bytes before the cut written, the whole log linked.
    after_temp_write: Some("cut.after_link"),
    after_temp_sync: None,
    after_rename: Some("cut.after_rename"),
};

/// The length of a log whose header does not verify if the whole file is empty or zeros (a
/// crash between creating it and syncing its header: no record can have been acknowledged,
/// and startup writes a fresh header), `None` if it holds a non-zero byte (startup refuses).
/// The one decision both [`replay`] and `durlab recover` ([`crate::inspect`]) follow.
///
/// # Errors
/// I/O failures reading the file.
pub(crate) fn blank_len(file: &dyn BackendFile, path: &Path) -> Result<Option<u64>> {
    let io_err = |op| move |e| Error::io(op, path, Some(0), e);
    let len = file.len().map_err(io_err("stat"))?;
    let blank = tail::nonzero_end(file, 0, len).map_err(io_err("read"))? == 0;
    Ok(blank.then_some(len))
}

/// A log whose header does not verify is refused, unless it is blank ([`blank_len`]): then a
/// fresh header is written.
fn reinit_if_blank(
    file: &dyn BackendFile,
    path: &Path,
    reason: String,
    report: &mut RecoveryReport,
) -> Result<LogPosition> {
    let Some(len) = blank_len(file, path)? else {
        return Err(Error::Corrupt {
            path: path.to_path_buf(),
            offset: 0,
            reason,
        });
    };
    let header = FileHeader { base_lsn: 0 }.encode();
    file.write_all_at_sync(&header, 0)
        .map_err(|e| Error::io("pwrite+fdatasync", path, Some(0), e))?;
    report.changes.push(format!(
        "{}: {len} bytes, {}: no record was ever written to it; wrote a new {FILE_HEADER_BYTES}-byte header at byte 0",
        path.display(),
        if len == 0 { "empty" } else { "all zeros" }
    ));
    report.created = true;
    let end = FILE_HEADER_BYTES as u64;
    Ok(LogPosition {
        next_offset: end,
        file_len: len.max(end),
        last_lsn: 0,
    })
}
