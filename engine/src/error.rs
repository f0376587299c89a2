//! The engine's error type.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong in the engine. Each variant names the file (and where it
/// matters the byte offset) so that a user can find the problem on disk.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O call failed. `op` is the operation (`pwrite`, `fdatasync`, `rename`, ...).
    #[error("{op} failed on {path}{}: {source}", fmt_offset(*.offset))]
    Io {
        op: &'static str,
        path: PathBuf,
        offset: Option<u64>,
        #[source]
        source: io::Error,
    },
    /// The file system is full (ENOSPC) or the quota is exhausted. Nothing acknowledged before
    /// this error is lost; the engine is poisoned.
    #[error("disk full: {op} on {path} at byte {offset} failed with {source}")]
    DiskFull {
        op: &'static str,
        path: PathBuf,
        offset: u64,
        #[source]
        source: io::Error,
    },
    /// An earlier write or sync failed, so the engine acknowledges nothing more.
    /// Reopen the engine (which runs recovery) to continue.
    #[error("engine is poisoned after an earlier failure ({cause}); reopen it to recover")]
    Poisoned { cause: String },
    /// Recovery found damage it refuses to load past: valid records follow a bad one, or a
    /// header or checksum does not verify. Nothing was changed on disk.
    #[error("refusing to recover {path}: {reason} at byte offset {offset}")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
    /// A file that the hybrid manifest lists is missing from the directory.
    #[error("{path} is listed in {manifest} but missing")]
    MissingFile { path: PathBuf, manifest: PathBuf },
    /// io_uring was selected but the kernel (or a seccomp policy) refuses it.
    #[error("io_uring backend unavailable: {reason}")]
    UringUnavailable { reason: String },
    /// Startup would start an empty data set in a directory holding files that may hold data
    /// (named in the message, with what to do): nothing was changed.
    #[error("{0}")]
    RefusingEmptyStart(String),
    /// The configuration is inconsistent.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A crash point armed through [`crate::failpoint`] fired: the operation stopped there,
    /// leaving its files as a `kill -9` at that point would.
    #[error("injected failure at crash point {point}")]
    Injected { point: &'static str },
    /// A command was given where a write command was required, or a record is over the limit.
    #[error("invalid command: {0}")]
    InvalidCommand(String),
}

fn fmt_offset(offset: Option<u64>) -> String {
    offset.map(|o| format!(" at byte {o}")).unwrap_or_default()
}

/// Shorthand for results with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps an I/O error with the operation, file and offset it happened at; ENOSPC and
    /// EDQUOT become [`Error::DiskFull`].
    pub fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
        offset: Option<u64>,
        source: io::Error,
    ) -> Self {
        let path = path.into();
        match source.raw_os_error() {
            Some(libc::ENOSPC) | Some(libc::EDQUOT) => Error::DiskFull {
                op,
                path,
                offset: offset.unwrap_or(0),
                source,
            },
            _ => Error::Io {
                op,
                path,
                offset,
                source,
            },
        }
    }

    /// True for [`Error::Poisoned`].
    pub fn is_poisoned(&self) -> bool {
        matches!(self, Error::Poisoned { .. })
    }
}
