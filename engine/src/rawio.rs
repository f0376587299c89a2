//! The raw device limit: bare pwrite (+ fdatasync) loops on a plain file, no engine and no
//! backend trait in between. Benchmarks and `durlab probe` divide the engine's rates by these.

use std::fs::File;
use std::io;
use std::path::Path;
use std::time::Duration;

/// How the file is laid out before the loop writes into it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileKind {
    /// An empty file that grows with each write.
    Append,
    /// Extended with `fallocate(2)` (unwritten extents).
    Fallocate,
    /// Filled with zeros and synced beforehand.
    Zeroed,
}

impl FileKind {
    pub const ALL: [FileKind; 3] = [FileKind::Append, FileKind::Fallocate, FileKind::Zeroed];

    /// `append`, `fallocate` or `zeroed`.
    pub fn name(self) -> &'static str {
        match self {
            FileKind::Append => "append",
            FileKind::Fallocate => "fallocate",
            FileKind::Zeroed => "zeroed",
        }
    }
}

/// When a loop stops: after `ops` writes or after `duration`, whichever comes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub ops: u64,
    pub duration: Duration,
}

/// What one loop measured.
#[derive(Debug, Clone, Default)]
pub struct RawRun {
    pub ops: u64,
    pub seconds: f64,
    /// One entry per op, in nanoseconds.
    pub latencies_ns: Vec<u64>,
}

impl RawRun {
    pub fn ops_per_sec(&self) -> f64 {
        if self.seconds > 0.0 { self.ops as f64 / self.seconds } else { 0.0 }
    }

    /// The `q`-quantile (0.0..=1.0) of the latencies, 0 when empty.
    pub fn percentile_ns(&self, q: f64) -> u64 {
        let _ = q;
        unimplemented!("backend helper")
    }
}

/// Creates `path` (replacing any file there) laid out as `kind` with room for `bytes`
/// (`Append` leaves it empty), synced together with its directory entry.
pub fn prepare_file(path: &Path, kind: FileKind, bytes: u64) -> io::Result<File> {
    let _ = (path, kind, bytes);
    unimplemented!("backend helper")
}

/// Sequential pwrites of `record_bytes` from offset 0, each followed by fdatasync.
pub fn pwrite_fdatasync_loop(file: &File, record_bytes: usize, limit: Limit) -> io::Result<RawRun> {
    let _ = (file, record_bytes, limit);
    unimplemented!("backend helper")
}

/// Sequential pwrites of `record_bytes` from offset 0, never synced: the syscall floor.
pub fn pwrite_loop(file: &File, record_bytes: usize, limit: Limit) -> io::Result<RawRun> {
    let _ = (file, record_bytes, limit);
    unimplemented!("backend helper")
}

/// O_DIRECT sequential write throughput (MB/s, 10^6 bytes) into a temporary file in `dir`.
pub fn direct_write_mb_s(dir: &Path, total_bytes: u64, block_bytes: usize) -> io::Result<f64> {
    let _ = (dir, total_bytes, block_bytes);
    unimplemented!("backend helper")
}

/// Buffered sequential write plus one final fdatasync (MB/s) into a temporary file in `dir`.
pub fn buffered_write_mb_s(dir: &Path, total_bytes: u64, block_bytes: usize) -> io::Result<f64> {
    let _ = (dir, total_bytes, block_bytes);
    unimplemented!("backend helper")
}
