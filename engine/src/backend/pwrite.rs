//! pwrite(2) + fdatasync(2) backend.
//!
//! Every [`BackendFile`] method is one plain system call (or a loop of them): no buffering, no
//! background threads. A [`BackendFile::sync_data`] on one thread and a
//! [`BackendFile::write_all_at`] on another never wait for each other inside this backend.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::sync::Arc;

use nix::fcntl::FallocateFlags;

use super::{Backend, BackendFile, OpenMode};

/// Plain POSIX I/O: `pwrite(2)`, `pread(2)`, `fdatasync(2)`, `ftruncate(2)`, `fallocate(2)`.
#[derive(Debug, Default)]
pub struct PwriteBackend;

impl PwriteBackend {
    /// The backend has no state; creating it cannot fail.
    pub fn new() -> Self {
        PwriteBackend
    }
}

impl Backend for PwriteBackend {
    /// Opens `path` read+write with `O_CLOEXEC` (`O_CREAT|O_EXCL` for [`OpenMode::CreateNew`]).
    ///
    /// # Errors
    /// `AlreadyExists` / `NotFound` depending on `mode`, or any other OS error.
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn BackendFile>> {
        let file = open_file(path, mode)?;
        Ok(Arc::new(PwriteFile { file }))
    }

    /// `rename(2)`: atomically replaces `to`. Durable after [`Backend::sync_dir`].
    ///
    /// # Errors
    /// The OS error (`NotFound` if `from` is missing, ...).
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    /// `link(2)`. Durable after [`Backend::sync_dir`].
    ///
    /// # Errors
    /// The OS error (`AlreadyExists` if `to` exists, ...).
    fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::hard_link(from, to)
    }

    /// `unlink(2)`. Durable after [`Backend::sync_dir`].
    ///
    /// # Errors
    /// The OS error (`NotFound` if missing, ...).
    fn remove(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    /// Opens `dir` with `O_RDONLY|O_DIRECTORY` and `fsync(2)`s it.
    ///
    /// # Errors
    /// `NotFound` if `dir` is missing, `NotADirectory` if it is a file, or the fsync error.
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        open_dir(dir)?.sync_all()
    }

    fn name(&self) -> String {
        "pwrite".into()
    }
}

/// A file of [`PwriteBackend`].
#[derive(Debug)]
struct PwriteFile {
    file: File,
}

impl BackendFile for PwriteFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        pread(&self.file, buf, offset)
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        pwrite_all(&self.file, buf, offset)
    }

    fn sync_data(&self) -> io::Result<()> {
        // `File::sync_data` is fdatasync(2) on Linux. Never retried here: after a failure the
        // kernel may have dropped the dirty pages, so the caller must treat it as fatal.
        self.file.sync_data()
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }

    fn allocate(&self, offset: u64, len: u64) -> io::Result<()> {
        allocate_file(&self.file, offset, len)
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    /// From the file system's map of holes ([`super::file_data_end`]).
    fn data_end(&self, from: u64, to: u64) -> io::Result<u64> {
        super::file_data_end(&self.file, from, to)
    }
}

/// `pread(2)`, retried on `EINTR`.
pub(crate) fn pread(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    loop {
        match file.read_at(buf, offset) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// `pwrite(2)` until all of `buf` is written, retried on `EINTR`; `WriteZero` when a write
/// makes no progress.
pub(crate) fn pwrite_all(file: &File, mut buf: &[u8], mut offset: u64) -> io::Result<()> {
    while !buf.is_empty() {
        match file.write_at(buf, offset) {
            Ok(0) => return Err(write_zero(offset)),
            Ok(n) => {
                buf = &buf[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Opens a regular file read+write with `O_CLOEXEC`, creating it exclusively for
/// [`OpenMode::CreateNew`]. Shared by both backends.
pub(crate) fn open_file(path: &Path, mode: OpenMode) -> io::Result<File> {
    let mut opts = OpenOptions::new();
    opts.read(true).write(true).custom_flags(libc::O_CLOEXEC);
    if mode == OpenMode::CreateNew {
        opts.create_new(true);
    }
    opts.open(path)
}

/// Opens a directory `O_RDONLY|O_DIRECTORY|O_CLOEXEC` so that it can be fsynced.
pub(crate) fn open_dir(dir: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(dir)
}

/// `fallocate(fd, 0, offset, len)`: reserves blocks and extends the size to `offset + len`.
/// A zero `len` is a no-op (the kernel would reject it with `EINVAL`).
pub(crate) fn allocate_file(file: &File, offset: u64, len: u64) -> io::Result<()> {
    if len == 0 {
        return Ok(());
    }
    let off = to_off_t(offset)?;
    let l = to_off_t(len)?;
    if off.checked_add(l).is_none() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "fallocate range overflows off_t",
        ));
    }
    loop {
        match nix::fcntl::fallocate(file, FallocateFlags::empty(), off, l) {
            Ok(()) => return Ok(()),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(io::Error::from(e)),
        }
    }
}

/// Converts a byte offset to `off_t`, failing with `InvalidInput` above `i64::MAX`.
pub(crate) fn to_off_t(v: u64) -> io::Result<libc::off_t> {
    libc::off_t::try_from(v).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("offset {v} exceeds off_t"),
        )
    })
}

/// The error for a write that made no progress.
pub(crate) fn write_zero(offset: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::WriteZero,
        format!("write at byte {offset} wrote 0 bytes"),
    )
}
