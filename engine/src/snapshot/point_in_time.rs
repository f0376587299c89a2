//! Serializing the state at one LSN while writers go on, without fork.
//!
//! The caller starts the snapshot under the engine's lock at LSN `s`
//! ([`crate::Keyspace::begin_snapshot`]); from then on the keyspace keeps the pre-image of
//! every key the snapshot has not reached yet at its first modification (see
//! `keyspace/store.rs`). This module then serializes on a dedicated thread below the writers'
//! priority ([`low_priority`]): it takes the lock once per chunk of [`CHUNK_KEYS`] positions,
//! preferably while it is free ([`lock_when_free`]), copies the keys and `Arc<Entry>`s into a
//! reused [`crate::keyspace::SnapshotChunk`] (reference-count increments, no deep copies, no
//! allocation per key), and encodes and writes them with the lock released, yielding to the
//! writers between chunks. Writers wait at most for one chunk copy, about a microsecond.

use std::path::Path;

use parking_lot::{Mutex, MutexGuard};

use super::SnapshotInfo;
use super::{low_priority, writer};
use crate::Lsn;
use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::keyspace::Keyspace;

/// Positions copied per lock acquisition. The copy costs some 30 ns per key (a key copy into
/// the chunk's buffer and a reference-count increment), so a writer that finds the lock taken
/// waits about a microsecond, below a SET's own p99; a million keys take some 30,000 short
/// acquisitions, a few milliseconds of locking overhead in all.
pub(crate) const CHUNK_KEYS: usize = 32;

/// Attempts to take the lock while it is free before queueing for it ([`lock_when_free`]).
const TRY_LOCK_ATTEMPTS: usize = 256;

/// Writes the snapshot started under `core`'s lock at `lsn` to `path` (atomically, see
/// [`writer::write_snapshot`]). `keyspace` projects the keyspace out of the locked state.
/// Whatever happens, the snapshot is ended: on error or panic its bookkeeping stops.
///
/// # Errors
/// As [`writer::write_snapshot`].
pub(crate) fn write<C: Send>(
    core: &Mutex<C>,
    keyspace: impl Fn(&mut C) -> &mut Keyspace + Sync,
    backend: &dyn Backend,
    path: &Path,
    lsn: Lsn,
) -> Result<SnapshotInfo> {
    struct AbortOnDrop<'a, C, F: Fn(&mut C) -> &mut Keyspace> {
        core: &'a Mutex<C>,
        keyspace: F,
    }
    impl<C, F: Fn(&mut C) -> &mut Keyspace> Drop for AbortOnDrop<'_, C, F> {
        fn drop(&mut self) {
            (self.keyspace)(&mut self.core.lock()).abort_snapshot();
        }
    }
    let guard = AbortOnDrop { core, keyspace };
    low_priority::run("durlab-snapshot", || {
        writer::write_snapshot(backend, path, lsn, |out| {
            let done =
                (guard.keyspace)(&mut lock_when_free(guard.core)).snapshot_chunk(CHUNK_KEYS, out);
            // On a shared core, let a writer run before this thread encodes the chunk.
            std::thread::yield_now();
            done
        })
    })
    .map_err(|e| Error::io("spawn snapshot thread for", path, None, e))?
}

/// Takes `core`'s lock, preferably at a moment when it is free: up to [`TRY_LOCK_ATTEMPTS`]
/// attempts, yielding between them, before a blocking `lock`. A thread blocked in `lock` is
/// parked, and then the writer that releases the lock must wake it (a system call on the
/// writer's path) or, under the mutex's eventual fairness, hand the lock over and wait for
/// the whole chunk copy itself. A snapshot that takes the lock between two writes costs the
/// writers neither; the blocking fallback keeps it progressing under constant contention.
fn lock_when_free<C>(core: &Mutex<C>) -> MutexGuard<'_, C> {
    for _ in 0..TRY_LOCK_ATTEMPTS {
        if let Some(guard) = core.try_lock() {
            return guard;
        }
        std::thread::yield_now();
    }
    core.lock()
}
