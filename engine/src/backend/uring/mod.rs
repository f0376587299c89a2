//! io_uring backend.
//!
//! Each opened file owns two rings: one for writes (a write and its linked fdatasync are
//! submitted in one `io_uring_enter`), one for standalone `sync_data` calls, so a background
//! "everysec" sync and a writer can both have an operation in flight. Reads, `set_len` and
//! `allocate` are plain `pread`/`ftruncate`/`fallocate`; directory syncs are io_uring Fsyncs on
//! the backend's own ring. There is no fallback to pwrite: if the kernel refuses io_uring,
//! [`UringBackend::new`] fails.

use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::Arc;

use io_uring::{IoUring, Probe, opcode, types};

use super::pwrite::{open_dir, open_file};
use super::{Backend, BackendFile, OpenMode};
use crate::error::{Error, Result};

mod file;
mod ring;

use file::UringFile;
use ring::{RING_ENTRIES, Ring};

/// The opcodes the backend submits, with their kernel names for error messages.
const REQUIRED_OPCODES: [(u8, &str); 2] = [
    (opcode::Write::CODE, "IORING_OP_WRITE"),
    (opcode::Fsync::CODE, "IORING_OP_FSYNC"),
];

/// io_uring I/O.
#[derive(Debug)]
pub struct UringBackend {
    /// The probe ring, kept for directory syncs.
    dir_ring: Ring,
}

impl UringBackend {
    /// Creates a ring and checks (`IORING_REGISTER_PROBE`) that the kernel supports every
    /// opcode this backend submits.
    ///
    /// # Errors
    /// [`crate::Error::UringUnavailable`] if the kernel refuses io_uring (disabled by
    /// `kernel.io_uring_disabled`, blocked by seccomp, too old, out of locked memory) or lacks
    /// an opcode. The reason names the OS error and a likely cause.
    pub fn new() -> Result<Self> {
        let ring = IoUring::new(RING_ENTRIES).map_err(|e| unavailable("io_uring_setup", &e))?;
        let mut probe = Probe::new();
        ring.submitter()
            .register_probe(&mut probe)
            .map_err(|e| unavailable("io_uring_register(IORING_REGISTER_PROBE)", &e))?;
        let missing: Vec<&str> = REQUIRED_OPCODES
            .iter()
            .filter(|(code, _)| !probe.is_supported(*code))
            .map(|(_, name)| *name)
            .collect();
        if !missing.is_empty() {
            return Err(Error::UringUnavailable {
                reason: format!("the kernel does not support {}", missing.join(", ")),
            });
        }
        Ok(UringBackend {
            dir_ring: Ring::from_ring(ring),
        })
    }
}

/// Builds the [`Error::UringUnavailable`] for a failed io_uring system call, with a hint.
fn unavailable(call: &str, e: &io::Error) -> Error {
    let hint = match e.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) => {
            "; kernel.io_uring_disabled or a seccomp policy may forbid it"
        }
        Some(libc::ENOSYS) => {
            "; the kernel lacks CONFIG_IO_URING or a container's seccomp profile blocks the syscall"
        }
        Some(libc::ENOMEM) => "; RLIMIT_MEMLOCK may be too low for the ring (kernels before 5.12)",
        Some(libc::EINVAL) => "; the kernel is too old for this request",
        _ => "",
    };
    Error::UringUnavailable {
        reason: format!("{call} failed: {e}{hint}"),
    }
}

impl Backend for UringBackend {
    /// Opens `path` read+write with `O_CLOEXEC` (`O_CREAT|O_EXCL` for [`OpenMode::CreateNew`])
    /// and creates the file's two rings.
    ///
    /// # Errors
    /// `AlreadyExists` / `NotFound` depending on `mode`, another OS error, or the
    /// `io_uring_setup` error for the file's rings.
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn BackendFile>> {
        let file = open_file(path, mode)?;
        Ok(Arc::new(UringFile::new(file)?))
    }

    /// `rename(2)`: atomically replaces `to`. Durable after [`Backend::sync_dir`].
    ///
    /// # Errors
    /// The OS error.
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
    /// The OS error.
    fn remove(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    /// Opens `dir` with `O_RDONLY|O_DIRECTORY` and submits an io_uring Fsync on it.
    ///
    /// # Errors
    /// `NotFound` if `dir` is missing, `NotADirectory` for a file, or the fsync's error.
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let d = open_dir(dir)?;
        let entry = opcode::Fsync::new(types::Fd(d.as_raw_fd())).build();
        // SAFETY: an Fsync entry references no memory; `d` stays open until after `run`
        // returns, and `run` returns only once the CQE has been reaped.
        let [res] = unsafe { self.dir_ring.run([entry]) }?;
        if res < 0 {
            Err(io::Error::from_raw_os_error(-res))
        } else {
            Ok(())
        }
    }

    fn name(&self) -> String {
        "uring".into()
    }
}
