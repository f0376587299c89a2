//! A file of the io_uring backend: writes (and write + linked fdatasync chains) on one ring,
//! standalone syncs on a second ring, so an "everysec" sync never waits for the writer's lock.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;

use io_uring::{opcode, squeue, types};

use super::ring::Ring;
use crate::backend::BackendFile;
use crate::backend::pwrite::{allocate_file, write_zero};

/// Largest single Write SQE (its length field is 32 bits; Linux caps a write at ~2 GiB).
const MAX_CHUNK: usize = 1 << 30;

/// Consecutive `EINTR`/`EAGAIN` completions tolerated for one operation before giving up.
const MAX_RETRIES: u32 = 10_000;

/// An open file with its own two rings.
#[derive(Debug)]
pub(super) struct UringFile {
    file: File,
    /// Writes and write+fdatasync chains. Held for one whole `write_all_at[_sync]` call.
    io: Ring,
    /// Standalone `sync_data`. Separate so a sync and a write can be in flight at once.
    sync: Ring,
}

/// What one Write SQE (optionally followed by a linked Fsync) achieved.
enum Step {
    /// `n` bytes were written (`0 < n`); for a chain, whether the linked fsync succeeded.
    Wrote { n: usize, synced: bool },
    /// Transient failure (`EINTR`/`EAGAIN`): nothing written, submit again.
    Retry,
}

impl UringFile {
    pub(super) fn new(file: File) -> io::Result<UringFile> {
        Ok(UringFile {
            file,
            io: Ring::new()?,
            sync: Ring::new()?,
        })
    }

    fn fd(&self) -> types::Fd {
        types::Fd(self.file.as_raw_fd())
    }

    fn write_entry(&self, chunk: &[u8], offset: u64) -> squeue::Entry {
        // `chunk.len() <= MAX_CHUNK < u32::MAX`, checked by the callers.
        opcode::Write::new(self.fd(), chunk.as_ptr(), chunk.len() as u32)
            .offset(offset)
            .build()
    }

    fn datasync_entry(&self) -> squeue::Entry {
        opcode::Fsync::new(self.fd())
            .flags(types::FsyncFlags::DATASYNC)
            .build()
    }

    /// Submits one Write of `chunk` at `offset`, linked to an fdatasync when `sync` is set, and
    /// interprets the completions.
    fn step(&self, chunk: &[u8], offset: u64, sync: bool) -> io::Result<Step> {
        debug_assert!(!chunk.is_empty() && chunk.len() <= MAX_CHUNK);
        let (write_res, fsync_res) = if sync {
            let write = self
                .write_entry(chunk, offset)
                .flags(squeue::Flags::IO_LINK);
            // SAFETY: `chunk` is borrowed for this whole call and `self.file` (the fd) lives as
            // long as `self`; `Ring::run` returns only after both CQEs are reaped (or the
            // entries provably never reached the kernel), so neither is accessed afterwards.
            let [w, f] = unsafe { self.io.run([write, self.datasync_entry()]) }?;
            (w, Some(f))
        } else {
            // SAFETY: as above, for a single Write entry.
            let [w] = unsafe { self.io.run([self.write_entry(chunk, offset)]) }?;
            (w, None)
        };
        match write_res {
            r if r < 0 => {
                // A failed write cancels its linked fsync (-ECANCELED); report the write's error.
                match -r {
                    libc::EINTR | libc::EAGAIN => Ok(Step::Retry),
                    errno => Err(io::Error::from_raw_os_error(errno)),
                }
            }
            0 => Err(write_zero(offset)),
            r => {
                let n = usize::try_from(r).unwrap_or(usize::MAX);
                if n > chunk.len() {
                    return Err(io::Error::other(format!(
                        "io_uring write at byte {offset} reported {n} bytes for a {}-byte buffer",
                        chunk.len()
                    )));
                }
                let synced = match fsync_res {
                    None => false,
                    Some(0) => true,
                    // A short write breaks the link: the fsync never ran. The caller resubmits
                    // the remainder with a new linked fsync.
                    Some(f) if f == -libc::ECANCELED => false,
                    // The fsync ran and failed: never retried, the caller must poison itself.
                    Some(f) => return Err(io::Error::from_raw_os_error(-f)),
                };
                Ok(Step::Wrote { n, synced })
            }
        }
    }

    /// A standalone fdatasync on `ring`.
    fn datasync_on(&self, ring: &Ring) -> io::Result<()> {
        let mut retries = 0;
        loop {
            // SAFETY: an Fsync entry references no memory; the fd lives as long as `self`,
            // which outlives the call, and `Ring::run` reaps the CQE before returning.
            let [res] = unsafe { ring.run([self.datasync_entry()]) }?;
            match res {
                0 => return Ok(()),
                // The sync did not run (interrupted before starting); running it is no retry of
                // a failed sync.
                r if (r == -libc::EINTR || r == -libc::EAGAIN) && retries < MAX_RETRIES => {
                    retries += 1
                }
                r => return Err(io::Error::from_raw_os_error(-r)),
            }
        }
    }

    /// Writes all of `buf` at `offset`; with `sync`, the last Write of each submission that
    /// reaches the end of `buf` carries a linked fdatasync, and success means it completed.
    fn write_all(&self, buf: &[u8], offset: u64, sync: bool) -> io::Result<()> {
        let mut done = 0usize;
        let mut retries = 0u32;
        loop {
            let rest = &buf[done..];
            let at = offset + done as u64;
            if rest.is_empty() {
                // Only reached with `sync` when the data is all written but the linked fsync was
                // cancelled without running (or for an empty buffer): sync on its own.
                return if sync {
                    self.datasync_on(&self.io)
                } else {
                    Ok(())
                };
            }
            let chunk = &rest[..rest.len().min(MAX_CHUNK)];
            let last = chunk.len() == rest.len();
            match self.step(chunk, at, sync && last)? {
                Step::Retry if retries < MAX_RETRIES => retries += 1,
                Step::Retry => {
                    return Err(io::Error::new(
                        io::ErrorKind::Interrupted,
                        format!("io_uring write at byte {at} kept failing with EINTR/EAGAIN"),
                    ));
                }
                Step::Wrote { n, synced } => {
                    retries = 0;
                    done += n;
                    if done == buf.len() && (synced || !sync) {
                        return Ok(());
                    }
                }
            }
        }
    }
}

impl BackendFile for UringFile {
    /// `pread(2)` (reads are off the durability path; io_uring buys nothing here).
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        loop {
            match self.file.read_at(buf, offset) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => return other,
            }
        }
    }

    /// One Write SQE per chunk (at most 1 GiB), resubmitting the remainder after short writes.
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.write_all(buf, offset, false)
    }

    /// Write + `IOSQE_IO_LINK` + Fsync(`DATASYNC`) in one `io_uring_enter`. A short write
    /// cancels the fsync (`-ECANCELED`); the remainder is resubmitted with a new linked fsync.
    /// A failed write returns the write's error; a failed fsync returns its error, never
    /// retried.
    fn write_all_at_sync(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.write_all(buf, offset, true)
    }

    /// Fsync(`DATASYNC`) on the file's sync ring, so it does not wait for a writer holding the
    /// write ring. Covers every write that completed before the call.
    fn sync_data(&self) -> io::Result<()> {
        self.datasync_on(&self.sync)
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

    /// From the file system's map of holes (`crate::backend::file_data_end`): writes
    /// complete before `write_all_at` returns, so the map covers them.
    fn data_end(&self, from: u64, to: u64) -> io::Result<u64> {
        crate::backend::file_data_end(&self.file, from, to)
    }
}
