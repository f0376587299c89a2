//! Saves and rewrites, one at a time under the persist lock: what the engine keeps between
//! them, and how it hands its lock, log and directory to `snapshot/point_in_time.rs` and
//! `hybrid/rewrite.rs` (which see only the generic locked state, never the engine).

use std::sync::atomic::Ordering;
use std::time::Instant;

use super::{Core, Shared};
use crate::Lsn;
use crate::error::{Error, Result};
use crate::hybrid::rewrite::{self, Locked, Target};
use crate::hybrid::{HybridState, RewriteInfo};
use crate::keyspace::Keyspace;
use crate::snapshot::{SNAPSHOT_FILE_NAME, SnapshotInfo, point_in_time};

/// What saves and rewrites need between runs; its mutex also makes them one at a time.
#[derive(Debug)]
pub(crate) struct Persist {
    /// The last completed snapshot (mode `snapshot`: what a crash keeps).
    pub(crate) last_save: LastSave,
    /// Mode `hybrid` only.
    pub(crate) hybrid: Option<HybridState>,
}

/// The last completed snapshot: `save`, a save point, or a hybrid base.
#[derive(Debug)]
pub(crate) struct LastSave {
    pub(crate) lsn: Lsn,
    pub(crate) at: Instant,
}

impl Locked for Core {
    fn last_lsn(&self) -> Lsn {
        self.last_lsn
    }

    fn keyspace(&mut self) -> &mut Keyspace {
        &mut self.keyspace
    }
}

/// Saves `durlab.snap` with the persist lock held.
///
/// # Errors
/// As [`crate::Engine::save`].
pub(crate) fn save_locked(shared: &Shared, persist: &mut Persist) -> Result<SnapshotInfo> {
    let backend = shared
        .backend
        .as_deref()
        .expect("snapshot modes have a backend");
    let lsn = {
        let mut core = shared.core.lock();
        core.keyspace.begin_snapshot();
        core.last_lsn
    };
    let path = shared.config.dir.join(SNAPSHOT_FILE_NAME);
    let info = point_in_time::write(&shared.core, |c| &mut c.keyspace, backend, &path, lsn)?;
    shared.note_saved(&mut persist.last_save, lsn);
    Ok(info)
}

/// Rewrites the hybrid directory with the persist lock held ([`rewrite::run`]).
///
/// # Errors
/// As [`crate::Engine::rewrite`].
pub(crate) fn rewrite_locked(shared: &Shared, persist: &mut Persist) -> Result<RewriteInfo> {
    let (Some(state), Some(log), Some(backend)) = (
        persist.hybrid.as_mut(),
        &shared.log,
        shared.backend.as_deref(),
    ) else {
        return Err(Error::Config("rewrite needs persistence hybrid".into()));
    };
    let target = Target {
        core: &shared.core,
        log,
        backend,
        dir: &shared.config.dir,
    };
    let last_save = &mut persist.last_save;
    rewrite::run(&target, state, |lsn| shared.note_saved(last_save, lsn))
}

/// True when the hybrid directory's increments have grown enough for an automatic rewrite
/// ([`rewrite::due`]); false in other modes.
pub(crate) fn rewrite_due(shared: &Shared, persist: &Persist) -> bool {
    match (&persist.hybrid, &shared.log) {
        (Some(state), Some(log)) => rewrite::due(state, log, &shared.config),
        _ => false,
    }
}

impl Shared {
    /// Records a completed snapshot at `lsn`.
    fn note_saved(&self, last_save: &mut LastSave, lsn: Lsn) {
        last_save.lsn = lsn;
        last_save.at = Instant::now();
        self.saved_lsn.store(lsn, Ordering::Release);
    }
}
