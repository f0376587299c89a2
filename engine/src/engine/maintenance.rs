//! The background thread of an engine with save points or automatic rewrites: checks the
//! triggers every `maintenance_interval_ms` and runs the snapshot or rewrite itself, so
//! writers never do that work.

use std::time::Duration;

use super::Shared;
use super::persist::{rewrite_due, rewrite_locked, save_locked};
use crate::aof::syncer::StopSignal;
use crate::config::{EngineConfig, Persistence};

/// True if the configuration has anything for the thread to do.
pub(super) fn needed(config: &EngineConfig) -> bool {
    match config.persistence {
        Persistence::Snapshot | Persistence::AofSnapshot => !config.save_points.is_empty(),
        Persistence::Hybrid => config.auto_rewrite_percentage > 0,
        Persistence::Aof => false,
    }
}

/// Runs until stopped. A failed save or rewrite is retried at the next trigger (Redis does
/// the same after a failed BGSAVE); a poisoned engine stops the thread.
pub(super) fn run(shared: &Shared, stop: &StopSignal) {
    let interval = Duration::from_millis(shared.config.maintenance_interval_ms.max(1));
    while !stop.wait(interval) {
        if shared.core.lock().log.check_poisoned().is_err() {
            return;
        }
        let mut persist = shared.persist.lock();
        let last_lsn = shared.core.lock().last_lsn;
        let _ = match shared.config.persistence {
            Persistence::Snapshot | Persistence::AofSnapshot => {
                let changes = last_lsn - persist.last_save.lsn;
                let elapsed_s = persist.last_save.at.elapsed().as_secs();
                let due = shared
                    .config
                    .save_points
                    .iter()
                    .any(|&(seconds, min_changes)| {
                        changes > 0 && changes >= min_changes && elapsed_s >= seconds
                    });
                if due {
                    save_locked(shared, &mut persist).map(drop)
                } else {
                    Ok(())
                }
            }
            Persistence::Hybrid => {
                if rewrite_due(shared, &persist) {
                    rewrite_locked(shared, &mut persist).map(drop)
                } else {
                    Ok(())
                }
            }
            Persistence::Aof => Ok(()),
        };
    }
}
