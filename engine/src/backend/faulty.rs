//! A fault-injecting backend that wraps a real one: failed fsyncs (EIO once, as in the
//! fsyncgate pattern), a disk that fills at a chosen byte (ENOSPC), a write that reaches the
//! file only in part (short write), and an fdatasync that stalls. All other I/O is real.
//!
//! What each fault models, exactly:
//! - [`Faults::fail_sync`]: the n-th data sync returns EIO *without syncing*; later syncs
//!   succeed (the kernel has cleared the error). The written bytes stay in the page cache.
//! - [`Faults::fill_disk_after`]: the write crossing the limit writes the bytes that fit, then
//!   fails with ENOSPC, as does every later write and `fallocate`.
//! - [`Faults::short_write_after`]: once, the write crossing the limit writes only the bytes
//!   before it and then fails with EIO: what the backend's resubmission loop reports when the
//!   device accepted part of a write and errored on the rest. It is injected below that loop
//!   (inside [`BackendFile::write_all_at`]), so the partial record really is in the file.
//!   Later writes succeed.
//! - [`Faults::stall_sync`]: the n-th data sync sleeps for a while and then really syncs (a
//!   slow or congested device).
//!
//! Every fault here is one a real device or kernel can produce. Backends that *lie* (report a
//! sync done that was not), used to show that the crash lab's checks can fail, live with those
//! tests in the harness (`durlab_harness::crashlab::lying`).

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::{Backend, BackendFile, OpenMode};

const NEVER: u64 = u64::MAX;

/// Which faults to inject. Counters are shared by every file opened through the backend.
#[derive(Debug)]
pub struct Faults {
    /// The n-th (1-based) data sync fails with EIO without syncing; later ones succeed.
    sync_eio_at: AtomicU64,
    /// Total bytes that writes may add before the disk is full; the write crossing it writes
    /// what fits and then fails with ENOSPC, as do all later writes.
    space_bytes: AtomicU64,
    syncs: AtomicU64,
    written_bytes: AtomicU64,
    /// The write crossing this total writes only up to it, then fails with EIO (once).
    short_write_at: AtomicU64,
    /// The n-th (1-based) data sync sleeps `stall_ms` before syncing.
    stall_at: AtomicU64,
    stall_ms: AtomicU64,
    /// [`crate::clock::now_ns`] when the stall began (0: not yet).
    stall_started_ns: AtomicU64,
    /// Faults that fired so far (any kind).
    fired: AtomicU64,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            sync_eio_at: AtomicU64::new(NEVER),
            space_bytes: AtomicU64::new(NEVER),
            syncs: AtomicU64::new(0),
            written_bytes: AtomicU64::new(0),
            short_write_at: AtomicU64::new(NEVER),
            stall_at: AtomicU64::new(NEVER),
            stall_ms: AtomicU64::new(0),
            stall_started_ns: AtomicU64::new(0),
            fired: AtomicU64::new(0),
        }
    }
}

impl Faults {
    /// Makes the `n`-th data sync from now (1 = the next) fail with EIO.
    pub fn fail_sync(&self, n: u64) {
        let seen = self.syncs.load(Ordering::SeqCst);
        self.sync_eio_at.store(seen + n.max(1), Ordering::SeqCst);
    }

    /// Lets writes add `bytes` more bytes, then fails them with ENOSPC.
    pub fn fill_disk_after(&self, bytes: u64) {
        let written = self.written_bytes.load(Ordering::SeqCst);
        self.space_bytes
            .store(written.saturating_add(bytes), Ordering::SeqCst);
    }

    /// Once, the write that would take the total past `bytes` more bytes from now writes
    /// only the bytes before that point and then fails with EIO. `bytes == 0` cuts the next
    /// write to nothing.
    pub fn short_write_after(&self, bytes: u64) {
        let written = self.written_bytes.load(Ordering::SeqCst);
        self.short_write_at
            .store(written.saturating_add(bytes), Ordering::SeqCst);
    }

    /// Makes the `n`-th data sync from now (1 = the next) sleep `duration` before it really
    /// syncs. [`Faults::stall_started_ns`] tells when the stall began.
    pub fn stall_sync(&self, n: u64, duration: Duration) {
        let seen = self.syncs.load(Ordering::SeqCst);
        self.stall_ms.store(
            u64::try_from(duration.as_millis()).unwrap_or(u64::MAX),
            Ordering::SeqCst,
        );
        self.stall_at.store(seen + n.max(1), Ordering::SeqCst);
    }

    /// [`crate::clock::now_ns`] at the start of the armed sync stall, 0 until it begins.
    pub fn stall_started_ns(&self) -> u64 {
        self.stall_started_ns.load(Ordering::SeqCst)
    }

    /// Data syncs seen so far.
    pub fn syncs(&self) -> u64 {
        self.syncs.load(Ordering::SeqCst)
    }

    /// Bytes that writes tried to add so far (including the part refused by a fault).
    pub fn written_bytes(&self) -> u64 {
        self.written_bytes.load(Ordering::SeqCst)
    }

    /// How many injected faults fired so far (an EIO or ENOSPC returned, a stall begun).
    pub fn fired(&self) -> u64 {
        self.fired.load(Ordering::SeqCst)
    }

    fn on_sync(&self) -> io::Result<()> {
        let n = self.syncs.fetch_add(1, Ordering::SeqCst) + 1;
        if n == self.sync_eio_at.load(Ordering::SeqCst) {
            self.fired.fetch_add(1, Ordering::SeqCst);
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        if n == self.stall_at.load(Ordering::SeqCst) {
            self.fired.fetch_add(1, Ordering::SeqCst);
            self.stall_started_ns
                .store(crate::clock::now_ns(), Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(self.stall_ms.load(Ordering::SeqCst)));
        }
        Ok(())
    }

    /// How many of `len` bytes may be written, and the error to return after writing them
    /// when that is fewer than `len`.
    fn admit(&self, len: usize) -> (usize, Option<io::Error>) {
        let before = self.written_bytes.fetch_add(len as u64, Ordering::SeqCst);
        let after = before.saturating_add(len as u64);
        let space = self.space_bytes.load(Ordering::SeqCst);
        if after > space {
            self.fired.fetch_add(1, Ordering::SeqCst);
            let n = space.saturating_sub(before).min(len as u64) as usize;
            return (n, Some(io::Error::from_raw_os_error(libc::ENOSPC)));
        }
        let cut = self.short_write_at.load(Ordering::SeqCst);
        if after > cut
            && self
                .short_write_at
                .compare_exchange(cut, NEVER, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
        {
            self.fired.fetch_add(1, Ordering::SeqCst);
            let n = cut.saturating_sub(before).min(len as u64) as usize;
            return (n, Some(io::Error::from_raw_os_error(libc::EIO)));
        }
        (len, None)
    }
}

/// Wraps `inner`; every file it opens injects the shared [`Faults`].
#[derive(Debug)]
pub struct FaultyBackend {
    inner: Arc<dyn Backend>,
    faults: Arc<Faults>,
}

impl FaultyBackend {
    pub fn new(inner: Arc<dyn Backend>) -> Self {
        FaultyBackend {
            inner,
            faults: Arc::new(Faults::default()),
        }
    }

    /// The fault controls, to arm while the engine runs.
    pub fn faults(&self) -> Arc<Faults> {
        self.faults.clone()
    }
}

impl Backend for FaultyBackend {
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn BackendFile>> {
        let inner = self.inner.open(path, mode)?;
        Ok(Arc::new(FaultyFile {
            inner,
            faults: self.faults.clone(),
        }))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.rename(from, to)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        self.inner.remove(path)
    }

    fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.hard_link(from, to)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.inner.sync_dir(dir)
    }

    fn name(&self) -> String {
        format!("faulty({})", self.inner.name())
    }
}

#[derive(Debug)]
struct FaultyFile {
    inner: Arc<dyn BackendFile>,
    faults: Arc<Faults>,
}

// `write_all_at_sync` keeps the trait default (write, then sync through this file), so both
// halves pass the fault hooks instead of the inner backend's combined call.
impl BackendFile for FaultyFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.inner.read_at(buf, offset)
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        let (admitted, error) = self.faults.admit(buf.len());
        self.inner.write_all_at(&buf[..admitted], offset)?;
        match error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn sync_data(&self) -> io::Result<()> {
        self.faults.on_sync()?;
        self.inner.sync_data()
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }

    fn allocate(&self, offset: u64, len: u64) -> io::Result<()> {
        let space = self.faults.space_bytes.load(Ordering::SeqCst);
        if self
            .faults
            .written_bytes
            .load(Ordering::SeqCst)
            .saturating_add(len)
            > space
        {
            return Err(io::Error::from_raw_os_error(libc::ENOSPC));
        }
        self.inner.allocate(offset, len)
    }

    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::pwrite::PwriteBackend;

    fn open(dir: &Path) -> (Arc<dyn BackendFile>, Arc<Faults>) {
        let backend = FaultyBackend::new(Arc::new(PwriteBackend::new()));
        let file = backend
            .open(&dir.join("f"), OpenMode::CreateNew)
            .expect("create");
        (file, backend.faults())
    }

    #[test]
    fn short_write_writes_a_prefix_once_then_eio() {
        let dir = tempfile::tempdir().unwrap();
        let (file, faults) = open(dir.path());
        file.write_all_at(&[1; 10], 0).unwrap();
        faults.short_write_after(4);
        let err = file.write_all_at(&[2; 10], 10).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EIO));
        assert_eq!(
            file.len().unwrap(),
            14,
            "exactly the 4-byte prefix reached the file"
        );
        assert_eq!(faults.fired(), 1);
        file.write_all_at(&[3; 10], 14).unwrap();
        assert_eq!(file.len().unwrap(), 24, "later writes succeed");
    }

    #[test]
    fn stall_sleeps_then_syncs() {
        let dir = tempfile::tempdir().unwrap();
        let (file, faults) = open(dir.path());
        faults.stall_sync(2, Duration::from_millis(30));
        file.sync_data().unwrap();
        assert_eq!(faults.stall_started_ns(), 0);
        let before = crate::clock::now_ns();
        file.sync_data().unwrap();
        let started = faults.stall_started_ns();
        assert!(started >= before);
        assert!(crate::clock::now_ns() - started >= 30_000_000);
        assert_eq!(faults.fired(), 1);
    }
}
