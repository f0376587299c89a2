//! Rebuilding the keyspace from the log at open.

use std::path::PathBuf;
use std::time::Duration;

use crate::Lsn;

/// What recovery found and did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecoveryReport {
    /// Highest LSN loaded (0 for an empty or new log).
    pub recovered_lsn: Lsn,
    pub records_replayed: u64,
    pub bytes_read: u64,
    /// Bytes after the last valid record that were cut (0 for a clean or zero-filled end).
    pub tail_bytes_discarded: u64,
    /// Byte offset where the log was cut, when it was.
    pub cut_offset: Option<u64>,
    /// Where the cut bytes were copied before the cut.
    pub quarantine_path: Option<PathBuf>,
    /// True if the log was created by this open (no data files existed).
    pub created: bool,
    pub duration: Duration,
}
