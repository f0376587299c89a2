//! Wakes writers waiting for a flush without making them re-take the engine's mutex.
//!
//! MEASUREMENT VARIANT (parking_lot Mutex<()> + Condvar of its own, not the engine's lock).

use std::sync::atomic::{AtomicU32, Ordering::SeqCst};

use parking_lot::{Condvar, Mutex};

/// An epoch with a condition variable of its own.
#[derive(Debug, Default)]
pub(crate) struct AckSignal {
    epoch: AtomicU32,
    waiters: AtomicU32,
    lock: Mutex<()>,
    cond: Condvar,
}

impl AckSignal {
    /// The current epoch; read it before releasing the lock that orders it with the waker.
    pub(crate) fn epoch(&self) -> u32 {
        self.epoch.load(SeqCst)
    }

    /// Sleeps until the epoch differs from `seen` (possibly returning early, spuriously).
    pub(crate) fn wait(&self, seen: u32) {
        self.waiters.fetch_add(1, SeqCst);
        let mut guard = self.lock.lock();
        if self.epoch.load(SeqCst) == seen {
            self.cond.wait(&mut guard);
        }
        drop(guard);
        self.waiters.fetch_sub(1, SeqCst);
    }

    /// How many threads are inside [`AckSignal::wait`] (tests place followers with it).
    #[cfg(test)]
    pub(crate) fn waiting(&self) -> u32 {
        self.waiters.load(SeqCst)
    }

    /// Advances the epoch and wakes every waiter.
    pub(crate) fn wake_all(&self) {
        self.epoch.fetch_add(1, SeqCst);
        if self.waiters.load(SeqCst) > 0 {
            // Under the lock: a waiter between its epoch check and its sleep holds it, so the
            // notification cannot fall between the two.
            let _guard = self.lock.lock();
            self.cond.notify_all();
        }
    }
}
