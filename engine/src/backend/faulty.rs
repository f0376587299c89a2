//! A fault-injecting backend that wraps a real one: failed fsyncs (EIO once, as in the
//! fsyncgate pattern), a disk that fills at a chosen byte (ENOSPC). All other I/O is real.

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

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
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            sync_eio_at: AtomicU64::new(NEVER),
            space_bytes: AtomicU64::new(NEVER),
            syncs: AtomicU64::new(0),
            written_bytes: AtomicU64::new(0),
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

    /// Data syncs seen so far.
    pub fn syncs(&self) -> u64 {
        self.syncs.load(Ordering::SeqCst)
    }

    fn on_sync(&self) -> io::Result<()> {
        let n = self.syncs.fetch_add(1, Ordering::SeqCst) + 1;
        if n == self.sync_eio_at.load(Ordering::SeqCst) {
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        Ok(())
    }

    /// How many of `len` bytes may be written before the disk is full.
    fn admit(&self, len: usize) -> usize {
        let before = self.written_bytes.fetch_add(len as u64, Ordering::SeqCst);
        let space = self.space_bytes.load(Ordering::SeqCst);
        space.saturating_sub(before).min(len as u64) as usize
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

impl BackendFile for FaultyFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.inner.read_at(buf, offset)
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        let admitted = self.faults.admit(buf.len());
        self.inner.write_all_at(&buf[..admitted], offset)?;
        if admitted < buf.len() {
            return Err(io::Error::from_raw_os_error(libc::ENOSPC));
        }
        Ok(())
    }

    fn write_all_at_sync(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.write_all_at(buf, offset)?;
        self.sync_data()
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
