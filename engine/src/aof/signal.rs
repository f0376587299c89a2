//! Wakes writers waiting for a flush without making them re-take the engine's mutex.
//!
//! With many writers, every batch ends with each of its writers waking up; a condition variable
//! would make each of them re-acquire the engine's mutex just to see that its record is covered,
//! contending with the writers appending the next batch. Here a waiter sleeps on a futex word
//! (an epoch bumped after every flush) and, once woken, checks the published LSNs atomically.
//!
//! Why a raw futex and not a crate's condition variable (docs/aof.md, "Waking followers"):
//! measured against a `parking_lot` `Mutex<()>` + `Condvar` of its own (commit 84a3f58,
//! "Measurement only", reverted by the next commit) with `cargo bench -p durlab-engine --bench aof --
//! 'writers/64B/(everysec|no)/pwrite/(8|32)$'` on a shared 2-core VM (load 12-17), 4 runs per
//! cell: the typical cost per acknowledged write is the same (2-4 µs), but the condition
//! variable wakes its waiters one at a time through its mutex, and 4 of its 16 runs stalled
//! (7, 8, 152 and 192 µs per write) where the futex, which wakes every waiter at once and
//! needs no lock to return, stayed at 2.2-4.7 µs in all 16.

use std::sync::atomic::{AtomicU32, Ordering::SeqCst};

/// A futex-backed epoch. `wake_all` costs no system call when nobody waits.
#[derive(Debug, Default)]
pub(crate) struct AckSignal {
    epoch: AtomicU32,
    waiters: AtomicU32,
}

impl AckSignal {
    /// The current epoch; read it before releasing the lock that orders it with the waker.
    pub(crate) fn epoch(&self) -> u32 {
        self.epoch.load(SeqCst)
    }

    /// Sleeps until the epoch differs from `seen` (possibly returning early, spuriously).
    pub(crate) fn wait(&self, seen: u32) {
        // The waiter count and the epoch are both SeqCst: either the waker sees this waiter, or
        // this waiter sees the new epoch (and the futex call returns at once).
        self.waiters.fetch_add(1, SeqCst);
        if self.epoch.load(SeqCst) == seen {
            // SAFETY: FUTEX_WAIT on the address of a live, aligned AtomicU32 owned by `self`,
            // which outlives the call; the kernel only compares it with `seen` and sleeps.
            unsafe {
                libc::syscall(
                    libc::SYS_futex,
                    self.epoch.as_ptr(),
                    libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
                    seen,
                    std::ptr::null::<libc::timespec>(),
                );
            }
        }
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
            // SAFETY: FUTEX_WAKE on the address of a live, aligned AtomicU32 owned by `self`;
            // it touches no memory, only wakes threads sleeping on that address.
            unsafe {
                libc::syscall(
                    libc::SYS_futex,
                    self.epoch.as_ptr(),
                    libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
                    i32::MAX,
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn wait_returns_after_wake_and_when_epoch_moved() {
        let s = Arc::new(AckSignal::default());
        let seen = s.epoch();
        s.wake_all();
        s.wait(seen); // epoch already moved: returns at once
        let seen = s.epoch();
        let t = {
            let s = s.clone();
            std::thread::spawn(move || {
                while s.epoch() == seen {
                    s.wait(seen);
                }
            })
        };
        while s.waiters.load(SeqCst) == 0 && !t.is_finished() {
            std::thread::yield_now();
        }
        s.wake_all();
        t.join().unwrap();
    }
}
