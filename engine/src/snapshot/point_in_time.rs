//! Serializing the state at one LSN while writers go on, without fork.
//!
//! The caller starts the snapshot under the engine's lock at LSN `s`
//! ([`crate::Keyspace::begin_snapshot`]); from then on the keyspace keeps the pre-image of
//! every key the snapshot has not reached yet at its first modification (see
//! `keyspace/store.rs`). This module then takes the lock once per chunk of [`CHUNK_KEYS`]
//! keys, copies `(key, Arc<Entry>)` pairs (reference-count increments, no deep copies), and
//! encodes and writes them with the lock released. Writers wait at most for one chunk copy.

use std::path::Path;

use parking_lot::Mutex;

use super::SnapshotInfo;
use super::writer;
use crate::Lsn;
use crate::backend::Backend;
use crate::error::Result;
use crate::keyspace::Keyspace;

/// Keys copied per lock acquisition: small enough that a writer's wait is a few tens of
/// microseconds, large enough that the lock is not taken a million times.
pub(crate) const CHUNK_KEYS: usize = 1000;

/// Writes the snapshot started under `core`'s lock at `lsn` to `path` (atomically, see
/// [`writer::write_snapshot`]). `keyspace` projects the keyspace out of the locked state.
/// Whatever happens, the snapshot is ended: on error or panic its bookkeeping stops.
///
/// # Errors
/// As [`writer::write_snapshot`].
pub(crate) fn write<C>(
    core: &Mutex<C>,
    keyspace: impl Fn(&mut C) -> &mut Keyspace,
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
    writer::write_snapshot(backend, path, lsn, |out| {
        (guard.keyspace)(&mut guard.core.lock()).snapshot_chunk(CHUNK_KEYS, out)
    })
}
