//! The raw device limit: bare pwrite (+ fdatasync) loops on a plain file, no engine and no
//! backend trait in between. Benchmarks and `durlab probe` divide the engine's rates by these.

use std::alloc::{self, Layout};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::fcntl::FallocateFlags;

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
    /// Operations per second over the whole run, 0 for an empty run.
    pub fn ops_per_sec(&self) -> f64 {
        if self.seconds > 0.0 {
            self.ops as f64 / self.seconds
        } else {
            0.0
        }
    }

    /// The `q`-quantile (0.0..=1.0, clamped; NaN counts as 0) of the latencies by the
    /// nearest-rank method ([`crate::quantile`], the project's one definition): the smallest
    /// latency with at least `q` of all latencies at or below it. 0 when empty.
    pub fn percentile_ns(&self, q: f64) -> u64 {
        crate::quantile::quantile_of(&mut self.latencies_ns.clone(), q).unwrap_or(0)
    }
}

/// Size of the zero buffer used by [`FileKind::Zeroed`].
const ZERO_CHUNK: usize = 1 << 20;

/// Creates `path` (replacing any file there) laid out as `kind` with room for `bytes`
/// (`Append` leaves it empty), synced together with its directory entry.
///
/// `Fallocate` reserves `bytes` with `fallocate(2)` mode 0 (the size becomes `bytes`);
/// `Zeroed` writes `bytes` zeros in 1 MiB chunks and fdatasyncs. In every case the file is
/// fsynced and so is its parent directory before this returns. The file is open read+write.
///
/// # Errors
/// Any OS error (the directory is missing, the disk is full, ...).
pub fn prepare_file(path: &Path, kind: FileKind, bytes: u64) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)?;
    match kind {
        FileKind::Append => {}
        FileKind::Fallocate => {
            if bytes > 0 {
                let len = libc::off_t::try_from(bytes).map_err(|_| {
                    io::Error::new(io::ErrorKind::InvalidInput, "size exceeds off_t")
                })?;
                nix::fcntl::fallocate(&file, FallocateFlags::empty(), 0, len)
                    .map_err(io::Error::from)?;
            }
        }
        FileKind::Zeroed => {
            let zeros = vec![0u8; ZERO_CHUNK];
            let mut offset = 0u64;
            while offset < bytes {
                let n = (bytes - offset).min(ZERO_CHUNK as u64) as usize;
                file.write_all_at(&zeros[..n], offset)?;
                offset += n as u64;
            }
            file.sync_data()?;
        }
    }
    file.sync_all()?;
    sync_parent(path)?;
    Ok(file)
}

/// fsyncs the directory containing `path` (the current directory for a bare file name).
fn sync_parent(path: &Path) -> io::Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(parent)?
        .sync_all()
}

/// The record written by the loops: a fixed, non-zero pattern (zeros could be elided by a
/// compressing or deduplicating device).
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8 + 1).collect()
}

/// The shared body of the two loops.
fn write_loop(file: &File, record_bytes: usize, limit: Limit, sync: bool) -> io::Result<RawRun> {
    if record_bytes == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "record_bytes must be positive",
        ));
    }
    let buf = pattern(record_bytes);
    let mut latencies_ns = Vec::with_capacity(limit.ops.min(1 << 20) as usize);
    let mut offset = 0u64;
    let start = Instant::now();
    while (latencies_ns.len() as u64) < limit.ops && start.elapsed() < limit.duration {
        let t0 = Instant::now();
        file.write_all_at(&buf, offset)?;
        if sync {
            file.sync_data()?;
        }
        latencies_ns.push(u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX));
        offset += record_bytes as u64;
    }
    Ok(RawRun {
        ops: latencies_ns.len() as u64,
        seconds: start.elapsed().as_secs_f64(),
        latencies_ns,
    })
}

/// Sequential pwrites of `record_bytes` from offset 0, each followed by fdatasync.
///
/// Writes a fixed non-zero pattern; stops after `limit.ops` ops or once `limit.duration` has
/// passed (checked before each op). Each latency covers one pwrite plus its fdatasync.
///
/// # Errors
/// `InvalidInput` for `record_bytes == 0`, or the first failing pwrite/fdatasync.
pub fn pwrite_fdatasync_loop(file: &File, record_bytes: usize, limit: Limit) -> io::Result<RawRun> {
    write_loop(file, record_bytes, limit, true)
}

/// Sequential pwrites of `record_bytes` from offset 0, never synced: the syscall floor.
///
/// # Errors
/// `InvalidInput` for `record_bytes == 0`, or the first failing pwrite.
pub fn pwrite_loop(file: &File, record_bytes: usize, limit: Limit) -> io::Result<RawRun> {
    write_loop(file, record_bytes, limit, false)
}

/// Alignment of O_DIRECT buffers, offsets and lengths.
const DIRECT_ALIGN: usize = 4096;

/// A zero-initialised heap buffer aligned to [`DIRECT_ALIGN`].
struct AlignedBuf {
    ptr: std::ptr::NonNull<u8>,
    layout: Layout,
}

impl AlignedBuf {
    fn new(len: usize) -> io::Result<AlignedBuf> {
        let layout = Layout::from_size_align(len, DIRECT_ALIGN)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        assert!(layout.size() > 0);
        // SAFETY: the layout has a non-zero size (asserted above).
        let raw = unsafe { alloc::alloc_zeroed(layout) };
        let Some(ptr) = std::ptr::NonNull::new(raw) else {
            alloc::handle_alloc_error(layout)
        };
        Ok(AlignedBuf { ptr, layout })
    }

    fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: `ptr` points to `layout.size()` initialised (zeroed) bytes owned by `self`,
        // and the `&mut self` borrow makes this the only reference to them.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.layout.size()) }
    }

    fn as_slice(&self) -> &[u8] {
        // SAFETY: as in `as_mut_slice`; shared borrow of `self`, so no mutable alias exists.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.layout.size()) }
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        // SAFETY: `ptr` was returned by `alloc_zeroed` with exactly this layout, freed once.
        unsafe { alloc::dealloc(self.ptr.as_ptr(), self.layout) }
    }
}

/// Removes the temporary file when dropped, whatever happened.
struct TempPath(PathBuf);

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn temp_path(dir: &Path, tag: &str) -> TempPath {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    TempPath(dir.join(format!(".durlab-{tag}-{}-{nanos}.tmp", std::process::id())))
}

fn check_sizes(total_bytes: u64, block_bytes: usize) -> io::Result<()> {
    if total_bytes == 0 || block_bytes == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "total_bytes and block_bytes must be positive",
        ));
    }
    Ok(())
}

fn mb_per_s(bytes: u64, elapsed: Duration) -> f64 {
    let s = elapsed.as_secs_f64();
    if s > 0.0 { bytes as f64 / 1e6 / s } else { 0.0 }
}

/// O_DIRECT sequential write throughput (MB/s, 10^6 bytes) into a temporary file in `dir`.
///
/// Writes `total_bytes` rounded up to a multiple of 4096 in `block_bytes` blocks (which must be
/// a multiple of 4096) from a 4096-aligned buffer, then one fdatasync (which makes the block
/// allocations durable), all inside the timing. The temporary file is removed afterwards.
///
/// # Errors
/// `InvalidInput` for zero sizes or an unaligned `block_bytes`; `Unsupported` when the file
/// system rejects O_DIRECT (EINVAL, e.g. tmpfs); any other OS error.
pub fn direct_write_mb_s(dir: &Path, total_bytes: u64, block_bytes: usize) -> io::Result<f64> {
    check_sizes(total_bytes, block_bytes)?;
    if !block_bytes.is_multiple_of(DIRECT_ALIGN) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("O_DIRECT block size {block_bytes} is not a multiple of {DIRECT_ALIGN}"),
        ));
    }
    let rejected = |e: io::Error| {
        if e.raw_os_error() == Some(libc::EINVAL) {
            io::Error::new(
                io::ErrorKind::Unsupported,
                format!(
                    "the file system at {} rejects O_DIRECT (EINVAL): {e}",
                    dir.display()
                ),
            )
        } else {
            e
        }
    };
    let tmp = temp_path(dir, "direct");
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_DIRECT | libc::O_CLOEXEC)
        .open(&tmp.0)
        .map_err(rejected)?;
    let mut buf = AlignedBuf::new(block_bytes)?;
    buf.as_mut_slice().copy_from_slice(&pattern(block_bytes));
    let total = total_bytes.div_ceil(DIRECT_ALIGN as u64) * DIRECT_ALIGN as u64;

    let start = Instant::now();
    let mut offset = 0u64;
    while offset < total {
        let n = (total - offset).min(block_bytes as u64) as usize;
        file.write_all_at(&buf.as_slice()[..n], offset)
            .map_err(rejected)?;
        offset += n as u64;
    }
    file.sync_data()?;
    let elapsed = start.elapsed();
    drop(file);
    drop(tmp);
    Ok(mb_per_s(total, elapsed))
}

/// Buffered sequential write plus one final fdatasync (MB/s) into a temporary file in `dir`.
///
/// Writes exactly `total_bytes` in `block_bytes` pwrites, then fdatasyncs; both are timed.
/// The temporary file is removed afterwards.
///
/// # Errors
/// `InvalidInput` for zero sizes; any OS error.
pub fn buffered_write_mb_s(dir: &Path, total_bytes: u64, block_bytes: usize) -> io::Result<f64> {
    check_sizes(total_bytes, block_bytes)?;
    let tmp = temp_path(dir, "buffered");
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(&tmp.0)?;
    let buf = pattern(block_bytes);

    let start = Instant::now();
    let mut offset = 0u64;
    while offset < total_bytes {
        let n = (total_bytes - offset).min(block_bytes as u64) as usize;
        file.write_all_at(&buf[..n], offset)?;
        offset += n as u64;
    }
    file.sync_data()?;
    let elapsed = start.elapsed();
    drop(file);
    drop(tmp);
    Ok(mb_per_s(total_bytes, elapsed))
}
