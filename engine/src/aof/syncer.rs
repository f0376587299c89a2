//! The `everysec` background thread: one fdatasync per interval, concurrent with writes.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use super::writer::{Log, LogState};

/// Tells the syncer to stop; waking it at once rather than at its next tick.
#[derive(Debug, Default)]
pub(crate) struct StopSignal {
    stopped: Mutex<bool>,
    cond: Condvar,
}

impl StopSignal {
    pub(crate) fn stop(&self) {
        *self.stopped.lock() = true;
        self.cond.notify_all();
    }

    /// Sleeps up to `timeout`; true if stopped.
    pub(crate) fn wait(&self, timeout: Duration) -> bool {
        let mut stopped = self.stopped.lock();
        if !*stopped {
            self.cond.wait_for(&mut stopped, timeout);
        }
        *stopped
    }
}

/// Runs until stopped or until a sync fails (which poisons the log: a failed fsync is never
/// retried). `log` and `core` are the engine's.
pub(crate) fn run<C: AsMut<LogState>>(
    log: &Log,
    core: &Mutex<C>,
    stop: &Arc<StopSignal>,
    interval: Duration,
) {
    while !stop.wait(interval) {
        if log.sync_written(core).is_err() {
            return;
        }
    }
}
