//! Rebuilding the keyspace from the log at open.
//!
//! Records are replayed in order; the first one that fails its length, checksum or LSN
//! continuity ends the log. What follows is then classified ([`tail`]): zeros are the clean
//! end (preallocation); non-zero bytes without a valid record after them are a torn append and
//! are cut, after a copy is kept ([`quarantine`]); a valid record after the bad one means damage
//! in the middle, which is refused in [`RecoveryMode::Strict`] and cut in `Lenient`.

mod quarantine;
pub(crate) mod tail;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::Lsn;
use crate::aof::file_header::{FILE_HEADER_BYTES, FileHeader};
use crate::aof::record::RECORD_HEADER_BYTES;
use crate::aof::scan::{Scanner, Step};
use crate::backend::{Backend, BackendFile};
use crate::config::{EngineConfig, RecoveryMode};
use crate::error::{Error, Result};
use crate::keyspace::{Command, Keyspace};
use tail::Tail;

/// What recovery found and did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecoveryReport {
    /// Highest LSN loaded (0 for an empty or new log).
    pub recovered_lsn: Lsn,
    pub records_replayed: u64,
    /// Bytes read from the log, header included.
    pub bytes_read: u64,
    /// Bytes cut after the last valid record, up to the last non-zero byte (0 for a clean or
    /// zero-filled end; trailing zeros are neither counted nor copied).
    pub tail_bytes_discarded: u64,
    /// Byte offset where the log was cut, when it was.
    pub cut_offset: Option<u64>,
    /// Why the log was cut, when it was.
    pub cut_reason: Option<String>,
    /// Where the cut bytes were copied before the cut.
    pub quarantine_path: Option<PathBuf>,
    /// True if no log existed (or it was empty/all zeros) and a new one was written.
    pub created: bool,
    pub duration: Duration,
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

/// Replays the log `file` (at `path`) into `keyspace`, cutting a torn tail as described in
/// the module docs, and fills `report`.
///
/// # Errors
/// [`Error::Corrupt`] with the file and byte offset for a bad header, damage in the middle in
/// strict mode, or a record that verified but does not decode; I/O errors otherwise. On error
/// nothing on disk has been changed except by a completed quarantine copy.
pub(crate) fn replay(
    backend: &dyn Backend,
    file: &dyn BackendFile,
    path: &Path,
    config: &EngineConfig,
    keyspace: &mut Keyspace,
    report: &mut RecoveryReport,
) -> Result<LogPosition> {
    let started = Instant::now();
    let io_err = |op, offset| move |e| Error::io(op, path, offset, e);
    let max = config.max_record_bytes;
    let (mut scanner, header) = match Scanner::open(file, max).map_err(io_err("read", Some(0)))? {
        Ok(opened) => opened,
        Err(reason) => return reinit_if_blank(file, path, reason, report),
    };
    let mut last = header.base_lsn;
    let (bad_offset, fault) = loop {
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
                keyspace.apply(&cmd);
                last = record.lsn;
                report.records_replayed += 1;
            }
            Step::End { offset, fault } => {
                break (offset, fault.map(|f| f.describe()).unwrap_or_default());
            }
        }
    };
    let file_len = scanner.file_len();
    report.bytes_read = scanner.bytes_read();
    report.recovered_lsn = last;
    let mut pos = LogPosition {
        next_offset: bad_offset,
        file_len,
        last_lsn: last,
    };
    if bad_offset < file_len {
        let tail =
            tail::classify(file, bad_offset, file_len, last, max).map_err(io_err("read", None))?;
        let data_end = match tail {
            Tail::Clean => None,
            Tail::Torn { data_end } => Some(data_end),
            Tail::Damage {
                next_offset,
                next_lsn,
                ..
            } if config.recovery == RecoveryMode::Strict => {
                return Err(Error::Corrupt {
                    path: path.to_path_buf(),
                    offset: bad_offset,
                    reason: format!(
                        "{fault}, but a valid record (LSN {next_lsn}) follows at byte {next_offset}: \
                         damage in the middle of the log (lenient recovery would cut here, keeping a copy)"
                    ),
                });
            }
            Tail::Damage { data_end, .. } => Some(data_end),
        };
        if let Some(data_end) = data_end {
            let kept = quarantine::keep_copy(backend, file, path, bad_offset, data_end)?;
            file.set_len(bad_offset)
                .map_err(io_err("ftruncate", Some(bad_offset)))?;
            file.sync_data().map_err(io_err("fdatasync", None))?;
            report.tail_bytes_discarded = data_end - bad_offset;
            report.cut_offset = Some(bad_offset);
            report.cut_reason = Some(fault);
            report.quarantine_path = Some(kept);
            pos.file_len = bad_offset;
        }
    }
    report.duration += started.elapsed();
    Ok(pos)
}

/// A log whose header does not verify is refused, unless the whole file is empty or zeros
/// (a crash between creating it and syncing its header): then no record can have been
/// acknowledged, and a fresh header is written.
fn reinit_if_blank(
    file: &dyn BackendFile,
    path: &Path,
    reason: String,
    report: &mut RecoveryReport,
) -> Result<LogPosition> {
    let io_err = |op| move |e| Error::io(op, path, Some(0), e);
    let len = file.len().map_err(io_err("stat"))?;
    let blank = tail::nonzero_end(file, 0, len).map_err(io_err("read"))? == 0;
    if !blank {
        return Err(Error::Corrupt {
            path: path.to_path_buf(),
            offset: 0,
            reason,
        });
    }
    let header = FileHeader { base_lsn: 0 }.encode();
    file.write_all_at_sync(&header, 0)
        .map_err(io_err("pwrite+fdatasync"))?;
    report.created = true;
    let end = FILE_HEADER_BYTES as u64;
    Ok(LogPosition {
        next_offset: end,
        file_len: len.max(end),
        last_lsn: 0,
    })
}
