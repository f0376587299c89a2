//! [`BackendKind`]: the name of each real backend, as configured and as [`super::open_backend`]
//! builds it.

use crate::named::named_enum;

/// Which real I/O implementation carries the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BackendKind {
    /// `pwrite(2)` + `fdatasync(2)`.
    Pwrite,
    /// io_uring: write and a linked fdatasync submitted together. Opening fails if the kernel
    /// refuses io_uring; there is no fallback.
    Uring,
    /// Log appends are stores into a shared mapping of preallocated space (no system call
    /// per write; durable by the same `fdatasync(2)`). Needs [`crate::Prealloc::Fallocate`] or
    /// [`crate::Prealloc::Zero`] for a log: opening refuses `crate::Prealloc::None`.
    Mmap,
}

named_enum!(BackendKind { Pwrite => "pwrite", Uring => "uring", Mmap => "mmap" });
