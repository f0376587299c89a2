//! The online rewrite of a hybrid directory (BGREWRITEAOF analogue), and its automatic trigger.
//!
//! 1. Under the engine's lock at LSN `s`: the writer finishes every batch for the old
//!    increment and fdatasyncs it (so the old file ends exactly at `s`, with no hole after a
//!    power loss); a new increment with `base_lsn = s` is created and synced; a manifest
//!    listing it after the old files is installed; appends switch to it; a point-in-time
//!    snapshot of the keyspace at `s` begins. No record goes to the new increment before a
//!    durable manifest lists it, so no acknowledged record is ever outside the manifest.
//! 2. Lock released: the new base (state at `s`) is written while writers go on.
//! 3. A manifest listing only the new base and the new increment is installed atomically.
//! 4. The files no longer listed are removed (they are superseded, not lost: the base holds
//!    their content), and the directory is synced.
//!
//! A crash at any point leaves a manifest whose files hold every acknowledged record.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;

use super::manifest::{self, BaseFile, IncrFile, Install, Manifest};
use super::{HybridState, RewriteInfo};
use crate::Lsn;
use crate::aof::writer::{Log, LogState, Segment};
use crate::aof::{self, FIRST_RECORD_OFFSET};
use crate::backend::Backend;
use crate::config::EngineConfig;
use crate::error::{Error, Result};
use crate::failpoint::failpoint;
use crate::keyspace::Keyspace;
use crate::snapshot::point_in_time;

/// The state under the engine's lock that a rewrite reads and switches: the log's state (to
/// drain it and switch it to the new increment), the LSN of the last applied write, and the
/// keyspace (to start the point-in-time snapshot). Holding the lock orders all three.
pub(crate) trait Locked: AsMut<LogState> + Send {
    /// LSN of the last write applied (and appended to the log's pending batch).
    fn last_lsn(&self) -> Lsn;
    /// The keyspace the new base is taken from.
    fn keyspace(&mut self) -> &mut Keyspace;
}

/// What a rewrite works on: the engine's lock over `C`, its log, backend and data directory.
pub(crate) struct Target<'a, C> {
    pub(crate) core: &'a Mutex<C>,
    pub(crate) log: &'a Log,
    pub(crate) backend: &'a dyn Backend,
    pub(crate) dir: &'a Path,
}

/// True when automatic rewrite is on and the increments have grown past both thresholds:
/// at least `auto_rewrite_min_bytes`, and `auto_rewrite_percentage` % of the last base.
pub(crate) fn due(state: &HybridState, log: &Log, config: &EngineConfig) -> bool {
    let pct = config.auto_rewrite_percentage;
    if pct == 0 {
        return false;
    }
    let written = log.counters.snapshot().bytes_written;
    let incr_bytes =
        state.incr_bytes_at_mark + written.saturating_sub(state.written_counter_at_mark);
    incr_bytes >= config.auto_rewrite_min_bytes
        && u128::from(incr_bytes) * 100 >= u128::from(state.base_bytes) * u128::from(pct)
}

/// Runs one rewrite of `target`'s directory, whose manifest and counters are `state` (see the
/// module docs). The caller makes rewrites one at a time (it holds `state` exclusively) and
/// is told through `saved` the LSN of the new base once the final manifest is installed,
/// before the superseded files are removed.
///
/// # Errors
/// As [`crate::Engine::rewrite`].
pub(crate) fn run<C: Locked>(
    target: &Target<'_, C>,
    state: &mut HybridState,
    saved: impl FnOnce(Lsn),
) -> Result<RewriteInfo> {
    let started = Instant::now();
    let Target {
        core: locked,
        log,
        backend,
        dir,
    } = *target;
    let seq = state.next_seq;
    state.next_seq += 1;

    // Step 1, under the engine's lock.
    let mut core = locked.lock();
    log.drain_and_sync(&mut core)?;
    let lsn = core.last_lsn();
    let incr = IncrFile {
        name: manifest::incr_name(seq),
        base_lsn: lsn,
    };
    let incr_path = dir.join(&incr.name);
    let file = aof::create_log(backend, &incr_path, lsn)?;
    failpoint!("rewrite.after_incr_create");
    let mut switched = state.manifest.clone();
    switched.incrs.push(incr.clone());
    state.generation_high += 1;
    switched.generation = state.generation_high;
    if let Err(e) = manifest::install(backend, dir, &switched, Install::Switch) {
        // If the manifest listing the new increment may be in place (the failure came after
        // the rename, or it cannot be told), appending more records to the old increment
        // would put them outside the manifest: stop acknowledging anything.
        let on_disk = manifest::read(backend, &dir.join(manifest::MANIFEST_FILE_NAME));
        if on_disk.ok().as_ref() != Some(&state.manifest) {
            log.poison(
                core.as_mut(),
                format!("rewrite stopped while installing a manifest: {e}"),
            );
        }
        return Err(e);
    }
    state.manifest = switched;
    let segment = Arc::new(Segment {
        file,
        path: incr_path,
    });
    log.switch_segment(core.as_mut(), segment, FIRST_RECORD_OFFSET)?;
    state.incr_bytes_at_mark = 0;
    state.written_counter_at_mark = log.counters.snapshot().bytes_written;
    failpoint!("rewrite.after_switch");
    core.keyspace().begin_snapshot();
    drop(core);
    let switch_duration = started.elapsed();

    // Step 2: the base, while writers go on.
    let base = BaseFile {
        name: manifest::base_name(seq),
        lsn,
    };
    let base_path = dir.join(&base.name);
    let info = point_in_time::write(locked, C::keyspace, backend, &base_path, lsn)?;
    failpoint!("rewrite.after_base");

    // Step 3.
    let previous = state.manifest.clone();
    state.generation_high += 1;
    let fin = Manifest {
        generation: state.generation_high,
        base: Some(base),
        incrs: vec![incr],
    };
    manifest::install(backend, dir, &fin, Install::Final)?;
    let keep = fin.files();
    let superseded: Vec<PathBuf> = previous
        .files()
        .into_iter()
        .filter(|n| !keep.contains(n))
        .map(|n| dir.join(n))
        .collect();
    let generation = fin.generation;
    state.manifest = fin;
    state.base_bytes = info.bytes;
    saved(lsn);

    // Step 4.
    for (i, path) in superseded.iter().enumerate() {
        backend
            .remove(path)
            .map_err(|e| Error::io("remove", path, None, e))?;
        if i == 0 {
            failpoint!("rewrite.after_first_remove");
        }
    }
    backend
        .sync_dir(dir)
        .map_err(|e| Error::io("fsync dir", dir, None, e))?;
    Ok(RewriteInfo {
        base: info,
        manifest_generation: generation,
        removed: superseded,
        switch_duration,
        duration: started.elapsed(),
    })
}
