//! TEST ONLY: backends that lie about syncs, to show that the crash lab's checks can fail.
//!
//! A checker that cannot fail proves nothing. The engine has no deliberately broken mode;
//! instead, these tests run it over a [`LyingBackend`]: a wrapper over a real backend (passed
//! in as [`EngineConfig::backend_override`], outermost, so a recording backend below it traces
//! only what really happened) that reports syncs done which it never issued. All other I/O is
//! the real backend's. Selected by the hidden `durlab crash` / `durlab worker` flags
//! `--broken-ack-before-sync`, `--broken-skip-dir-sync`, `--broken-swallow-sync-errors` and
//! `--broken-early-sync`.

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use durlab_engine::EngineConfig;
use durlab_engine::aof::FIRST_RECORD_OFFSET;
use durlab_engine::backend::{Backend, BackendFile, OpenMode};

/// Which lies a [`LyingBackend`] tells.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lies {
    /// A write+fdatasync past a file's header (the log's group-commit flush under `always`)
    /// writes and returns without syncing: the engine acknowledges records never synced.
    /// (Headers, written at creation, are really synced, as are plain data syncs.)
    pub ack_before_sync: bool,
    /// The first directory fsync after each rename returns without syncing: a snapshot or
    /// manifest is reported installed although a power loss can still undo its name.
    pub skip_dir_sync: bool,
    /// A failed fdatasync (alone or after a write) is reported as done: the engine never
    /// learns that the data it acknowledged may be gone (the fsyncgate mistake), so the
    /// `fsync-eio` check must say no caller was told.
    pub swallow_sync_errors: bool,
    /// A plain fdatasync returns at once while the real one runs on a thread of its own and
    /// completes when the disk does (its failure is lost): the engine takes a stalled sync for
    /// a completed one and goes on acknowledging however long the disk lags, so the
    /// `everysec` lag check (`crashlab::lag`) must fail.
    pub early_sync: bool,
}

impl Lies {
    /// True if any lie is told.
    pub fn any(self) -> bool {
        self.ack_before_sync || self.skip_dir_sync || self.swallow_sync_errors || self.early_sync
    }

    /// Wraps the backend `config` would use (its override, else a real backend of
    /// `config.backend`) in a [`LyingBackend`] telling these lies, unless there are none.
    ///
    /// # Errors
    /// When the real backend cannot be built (io_uring refused).
    pub fn install(self, config: &mut EngineConfig) -> durlab_engine::Result<()> {
        if self.any() {
            let inner = super::worker::take_backend(config)?;
            config.backend_override = Some(Arc::new(LyingBackend::new(inner, self)));
        }
        Ok(())
    }
}

/// A real backend that tells [`Lies`].
#[derive(Debug)]
pub struct LyingBackend {
    inner: Arc<dyn Backend>,
    lies: Lies,
    /// A rename happened since the last directory fsync.
    renamed: AtomicBool,
}

impl LyingBackend {
    pub fn new(inner: Arc<dyn Backend>, lies: Lies) -> Self {
        LyingBackend {
            inner,
            lies,
            renamed: AtomicBool::new(false),
        }
    }
}

impl Backend for LyingBackend {
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn BackendFile>> {
        let inner = self.inner.open(path, mode)?;
        Ok(
            if self.lies.ack_before_sync || self.lies.swallow_sync_errors || self.lies.early_sync {
                Arc::new(LyingFile {
                    inner,
                    lies: self.lies,
                    syncs_in_order: Arc::new(std::sync::Mutex::new(())),
                })
            } else {
                inner
            },
        )
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.rename(from, to)?;
        self.renamed.store(true, Ordering::SeqCst);
        Ok(())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        self.inner.remove(path)
    }

    fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.hard_link(from, to)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        if self.renamed.swap(false, Ordering::SeqCst) && self.lies.skip_dir_sync {
            return Ok(());
        }
        self.inner.sync_dir(dir)
    }

    fn name(&self) -> String {
        format!("lying({})", self.inner.name())
    }
}

/// A real file whose write+fdatasync past the header does not sync (`ack_before_sync`), or
/// whose failed syncs report success (`swallow_sync_errors`).
#[derive(Debug)]
struct LyingFile {
    inner: Arc<dyn BackendFile>,
    lies: Lies,
    /// `early_sync`: held by the background sync running, so that the real syncs complete
    /// one after another, as a disk completes them (a stalled one holds up those after it).
    syncs_in_order: Arc<std::sync::Mutex<()>>,
}

impl LyingFile {
    /// `result` of a sync, as this file reports it.
    fn told(&self, result: io::Result<()>) -> io::Result<()> {
        if self.lies.swallow_sync_errors {
            Ok(())
        } else {
            result
        }
    }
}

impl BackendFile for LyingFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.inner.read_at(buf, offset)
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.inner.write_all_at(buf, offset)
    }

    fn write_all_at_sync(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.inner.write_all_at(buf, offset)?;
        if offset < FIRST_RECORD_OFFSET || !self.lies.ack_before_sync {
            self.told(self.inner.sync_data())
        } else {
            Ok(())
        }
    }

    fn sync_data(&self) -> io::Result<()> {
        if self.lies.early_sync {
            let (inner, order) = (self.inner.clone(), self.syncs_in_order.clone());
            // Detached on purpose: the lie is that nobody waits for it.
            std::thread::spawn(move || {
                let _in_order = order
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                inner.sync_data()
            });
            return Ok(());
        }
        self.told(self.inner.sync_data())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }

    fn allocate(&self, offset: u64, len: u64) -> io::Result<()> {
        self.inner.allocate(offset, len)
    }

    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use durlab_engine::backend;
    use durlab_engine::backend::faulty::FaultyBackend;
    use durlab_engine::backend::recording::{Op, RecordingBackend, read_trace};
    use durlab_engine::{BackendKind, Command, Engine, FsyncPolicy, Persistence};

    fn set(i: u64) -> Command {
        Command::Set {
            key: format!("k{i}").into_bytes(),
            value: b"v".to_vec(),
        }
    }

    /// Data syncs that reached the real backend while 10 commands were acknowledged under
    /// `always`, and the durable LSN the engine claimed.
    fn syncs_behind_ten_acks(lies: Lies) -> (u64, u64) {
        let dir = tempfile::tempdir().unwrap();
        let faulty = FaultyBackend::new(backend::open_backend(BackendKind::Pwrite).unwrap());
        let faults = faulty.faults();
        let mut config = EngineConfig::new(dir.path()).policy(FsyncPolicy::Always);
        config.backend_override = Some(Arc::new(faulty));
        lies.install(&mut config).unwrap();
        let (engine, _) = Engine::open(config).unwrap();
        let before = faults.syncs();
        for i in 0..10 {
            engine.execute(set(i)).unwrap();
        }
        (faults.syncs() - before, engine.durable_lsn())
    }

    /// The engine over the lie claims every acknowledged command durable without one real
    /// sync; the same check on an honest backend counts one sync per command.
    #[test]
    fn ack_before_sync_acknowledges_without_syncing() {
        let lying = Lies {
            ack_before_sync: true,
            ..Lies::default()
        };
        assert_eq!(syncs_behind_ten_acks(lying), (0, 10));
        assert_eq!(syncs_behind_ten_acks(Lies::default()), (10, 10));
    }

    /// Directory fsyncs that reached the recorder right after a rename, over 4 snapshot
    /// installations: the empty state's at the first start, then 3 saves.
    fn synced_renames(lies: Lies) -> (usize, usize) {
        let dir = tempfile::tempdir().unwrap();
        let trace = dir.path().join("io.trace");
        let rec =
            RecordingBackend::new(backend::open_backend(BackendKind::Pwrite).unwrap(), &trace)
                .unwrap();
        let mut config =
            EngineConfig::new(dir.path().join("data")).persistence(Persistence::Snapshot);
        config.backend_override = Some(Arc::new(rec));
        lies.install(&mut config).unwrap();
        let (engine, _) = Engine::open(config).unwrap();
        for i in 0..3 {
            engine.execute(set(i)).unwrap();
            engine.save().unwrap();
        }
        drop(engine);
        let ops: Vec<Op> = read_trace(&trace)
            .unwrap()
            .entries
            .into_iter()
            .map(|e| e.op)
            .collect();
        let renames = ops
            .iter()
            .filter(|o| matches!(o, Op::Rename { .. }))
            .count();
        let synced = ops
            .windows(2)
            .filter(|w| matches!((&w[0], &w[1]), (Op::Rename { .. }, Op::SyncDir { .. })))
            .count();
        (renames, synced)
    }

    /// Over the lie no rename is followed by its directory fsync; over the honest backend each is.
    #[test]
    fn skip_dir_sync_leaves_every_rename_unsynced() {
        let lying = Lies {
            skip_dir_sync: true,
            ..Lies::default()
        };
        assert_eq!(synced_renames(lying), (4, 0));
        assert_eq!(synced_renames(Lies::default()), (4, 4));
    }
}
