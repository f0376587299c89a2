//! Persistence mode `hybrid` (Redis 7's multi-part AOF): a base snapshot plus log increments,
//! listed in order by a checksummed manifest ([`manifest`]); the online rewrite that replaces
//! them with a new base ([`rewrite`]); and recovery from them ([`recovery`]).

pub mod manifest;
pub(crate) mod recovery;
pub(crate) mod rewrite;

use std::path::PathBuf;
use std::time::Duration;

use crate::snapshot::SnapshotInfo;
use manifest::Manifest;

/// What a hybrid engine keeps between rewrites.
#[derive(Debug)]
pub(crate) struct HybridState {
    /// The manifest in force on disk.
    pub(crate) manifest: Manifest,
    /// Highest generation ever written (an interrupted installation may have used one).
    pub(crate) generation_high: u64,
    /// The next rewrite's file sequence number (above every `durlab.<seq>.*` in the directory).
    pub(crate) next_seq: u64,
    /// Size of the last base (0 without one): automatic rewrites compare growth with it.
    pub(crate) base_bytes: u64,
    /// Bytes of records in the listed increments when counting started...
    pub(crate) incr_bytes_at_mark: u64,
    /// ... and the writer's `bytes_written` counter then.
    pub(crate) written_counter_at_mark: u64,
}

/// A completed rewrite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RewriteInfo {
    /// The new base.
    pub base: SnapshotInfo,
    /// The manifest installed at the end.
    pub manifest_generation: u64,
    /// Files no longer listed, removed.
    pub removed: Vec<PathBuf>,
    /// How long writers waited for the switch to the new increment (the only step under the
    /// engine's lock: flush, fdatasync of the old increment, creating the new one, manifest).
    pub switch_duration: Duration,
    /// The whole rewrite.
    pub duration: Duration,
}
