//! RDB-style snapshots: the file format ([`mod@format`]), writing a file atomically
//! ([`writer`]), loading it ([`loader`]) into a keyspace built while its checksum is computed
//! and handed out only once it verified (`build.rs`), and serializing the state at one LSN while
//! writers go on (`point_in_time.rs`, on a low-priority thread: `low_priority.rs`).

mod build;
pub mod format;
pub mod loader;
mod low_priority;
pub(crate) mod point_in_time;
pub mod writer;

use std::path::PathBuf;
use std::time::Duration;

use crate::Lsn;

/// File name of the snapshot in persistence modes `snapshot` and `aof+snapshot`.
pub const SNAPSHOT_FILE_NAME: &str = "durlab.snap";

/// A completed, durable snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotInfo {
    pub path: PathBuf,
    /// The state after commands `1..=lsn`.
    pub lsn: Lsn,
    pub entries: u64,
    pub bytes: u64,
    /// From the start of serialization to the directory fsync.
    pub duration: Duration,
}
