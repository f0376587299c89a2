//! The I/O boundary: every file operation of the engine goes through [`Backend`] and
//! [`BackendFile`], so the crash lab can wrap them to record a trace or inject faults.
//!
//! Three real implementations: [`pwrite::PwriteBackend`] (`pwrite(2)` + `fdatasync(2)`),
//! [`uring::UringBackend`] (io_uring, write and linked fdatasync submitted together) and
//! [`mmap::MmapBackend`] (stores into a shared mapping of preallocated log space).

use std::fmt;
use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::Arc;

use crate::error::Result;

pub(crate) mod atomic;
pub mod faulty;
mod kind;
pub mod mmap;
pub mod pwrite;
pub mod recording;
pub mod uring;

pub use kind::BackendKind;

/// Whether [`Backend::open`] may create the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// Create the file; fail with `AlreadyExists` if it exists.
    CreateNew,
    /// Open an existing file; fail with `NotFound` if missing.
    Existing,
}

/// A file system as the engine sees it: open files, rename, remove, sync a directory.
///
/// Creating a file or renaming it changes its directory; that change is durable only after
/// [`Backend::sync_dir`] on the parent returns.
pub trait Backend: Send + Sync + fmt::Debug {
    /// Opens `path` for reading and writing.
    ///
    /// # Errors
    /// The OS error (`NotFound`, `AlreadyExists`, permissions, ...).
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn BackendFile>>;

    /// Atomically replaces `to` with `from` (`rename(2)`).
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;

    /// Removes a file (`unlink(2)`).
    fn remove(&self, path: &Path) -> io::Result<()>;

    /// Gives the file at `from` a second name `to` (`link(2)`): both name the same bytes.
    /// Durable after [`Backend::sync_dir`].
    ///
    /// # Errors
    /// The OS error (`AlreadyExists` if `to` exists, `NotFound` if `from` is missing, ...).
    fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()>;

    /// Makes creates, renames and removes in `dir` durable (`fsync(2)` on the directory).
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;

    /// Short name for reports (`pwrite`, `uring`, `recording(pwrite)`, ...).
    fn name(&self) -> String;
}

/// An open file. All methods take `&self`: a background sync may run while a writer writes.
#[allow(clippy::len_without_is_empty)] // a file's length, not a collection's
pub trait BackendFile: Send + Sync + fmt::Debug {
    /// Reads up to `buf.len()` bytes at `offset`; returns 0 at end of file.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;

    /// Writes all of `buf` at `offset`, resubmitting after short writes.
    ///
    /// # Errors
    /// Any failure, including a write that makes no progress (`WriteZero`). Part of `buf` may
    /// have reached the file.
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;

    /// Writes all of `buf` at `offset`, then makes the file's data durable (`fdatasync`).
    /// Returns only after both completed. io_uring submits both at once as a linked chain.
    fn write_all_at_sync(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.write_all_at(buf, offset)?;
        self.sync_data()
    }

    /// `fdatasync(2)`: data written so far (and the size, if it changed) is durable on return.
    fn sync_data(&self) -> io::Result<()>;

    /// Truncates or extends the file to `len` bytes (extension reads as zeros).
    fn set_len(&self, len: u64) -> io::Result<()>;

    /// Reserves blocks for `[offset, offset + len)` and extends the size to cover it
    /// (`fallocate(2)` mode 0). The new range reads as zeros.
    fn allocate(&self, offset: u64, len: u64) -> io::Result<()>;

    /// Current size in bytes.
    fn len(&self) -> io::Result<u64>;

    /// An offset in `[from, to]` past which `[from, to)` holds no data: every byte from it to
    /// `to` lies in a hole of the file (reads as zeros without being stored), so a search for
    /// the last non-zero byte need not read them. `to` when the backend cannot tell (the
    /// default). A preallocated log is a short run of records followed by megabytes of
    /// zeros, which recovery otherwise reads at every open to find the end of its data;
    /// a hole-punched or `fallocate`d region, and a crash image written sparse, skip that.
    ///
    /// # Errors
    /// I/O failures asking the file system.
    fn data_end(&self, from: u64, to: u64) -> io::Result<u64> {
        let _ = from;
        Ok(to)
    }
}

/// [`BackendFile::data_end`] of a file that holds what was written to it, from the file
/// system's map of data and holes (`lseek(2)` `SEEK_DATA` / `SEEK_HOLE`; a file system without
/// such a map reports the whole file as data). Not for a file written through a mapping
/// (its stores reach the map only as the kernel notices them).
pub(crate) fn file_data_end(file: &File, from: u64, to: u64) -> io::Result<u64> {
    use nix::unistd::{Whence, lseek};
    let offset =
        |at: u64| i64::try_from(at).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput));
    let mut end = from;
    let mut at = from;
    while at < to {
        let data = match lseek(file, offset(at)?, Whence::SeekData) {
            Ok(d) => d as u64,
            // No data at or after `at`.
            Err(nix::errno::Errno::ENXIO) => break,
            Err(e) => return Err(e.into()),
        };
        if data >= to {
            break;
        }
        // The end of the file counts as a hole, so this always finds one.
        let hole = lseek(file, offset(data)?, Whence::SeekHole)? as u64;
        end = hole.min(to);
        at = hole;
    }
    Ok(end)
}

/// Builds the real backend named by `kind`.
///
/// # Errors
/// [`crate::Error::UringUnavailable`] when `kind` is `Uring` and the kernel refuses io_uring.
pub fn open_backend(kind: BackendKind) -> Result<Arc<dyn Backend>> {
    Ok(match kind {
        BackendKind::Pwrite => Arc::new(pwrite::PwriteBackend::new()),
        BackendKind::Uring => Arc::new(uring::UringBackend::new()?),
        BackendKind::Mmap => Arc::new(mmap::MmapBackend::new()),
    })
}

/// Reads exactly `buf.len()` bytes at `offset`, or fails with `UnexpectedEof`.
pub fn read_exact_at(
    file: &dyn BackendFile,
    mut buf: &mut [u8],
    mut offset: u64,
) -> io::Result<()> {
    while !buf.is_empty() {
        match file.read_at(buf, offset) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
