//! One io_uring instance behind a mutex, used synchronously: push a few SQEs, submit, and do
//! not return before every submitted SQE has completed.
//!
//! That "never return with an operation in flight" rule is what makes it sound to point SQEs at
//! borrowed buffers: the borrow outlives every kernel access to the buffer.

use std::io::{self, Write as _};
use std::time::Duration;

use io_uring::{IoUring, squeue};
use parking_lot::Mutex;

/// Submission/completion queue size. Every call submits at most two entries.
pub(super) const RING_ENTRIES: u32 = 8;

/// A ring owned by one file (or by the backend, for directory syncs).
pub(super) struct Ring {
    /// `None` after a submission failure left entries in the SQ that were never handed to the
    /// kernel: the ring is dropped (the kernel never reads those entries) and later calls fail.
    inner: Mutex<Option<IoUring>>,
}

impl std::fmt::Debug for Ring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let usable = self.inner.try_lock().map(|g| g.is_some());
        f.debug_struct("Ring").field("usable", &usable).finish()
    }
}

impl Ring {
    /// Creates a ring with [`RING_ENTRIES`] entries.
    ///
    /// # Errors
    /// The `io_uring_setup(2)` error.
    pub(super) fn new() -> io::Result<Ring> {
        Ok(Ring::from_ring(IoUring::new(RING_ENTRIES)?))
    }

    pub(super) fn from_ring(ring: IoUring) -> Ring {
        Ring {
            inner: Mutex::new(Some(ring)),
        }
    }

    /// Submits `entries` together (their `user_data` is overwritten with their index) and waits
    /// for all of their completions. Returns the CQE results in the order of `entries`,
    /// whatever order the kernel completed them in.
    ///
    /// # Errors
    /// An `io_uring_enter(2)` failure before the entries reached the kernel; the ring is then
    /// discarded and every later call fails.
    ///
    /// # Safety
    /// Every buffer and file descriptor referenced by `entries` must stay valid (and buffers
    /// unmoved) until this call returns. This call never returns (nor unwinds) while the kernel
    /// may still access them: it waits for every submitted entry, and aborts the process if
    /// waiting becomes impossible.
    pub(super) unsafe fn run<const N: usize>(
        &self,
        entries: [squeue::Entry; N],
    ) -> io::Result<[i32; N]> {
        const { assert!(N > 0 && N <= RING_ENTRIES as usize) };
        let mut guard = self.inner.lock();
        let Some(ring) = guard.as_mut() else {
            return Err(io::Error::other(
                "io_uring ring was discarded after an earlier submission failure",
            ));
        };
        // Every earlier call reaped all of its completions, so the queues are empty here.
        let mut tagged = entries;
        for (i, e) in tagged.iter_mut().enumerate() {
            *e = e.clone().user_data(i as u64);
        }
        {
            let mut sq = ring.submission();
            // SAFETY: the caller guarantees that the buffers and fds referenced by the entries
            // stay valid until we return, and we only return once the kernel is done with
            // them (see the wait loop below) or never received them (ring discarded).
            unsafe { sq.push_multiple(&tagged) }
                .map_err(|_| io::Error::other("io_uring submission queue unexpectedly full"))?;
        } // dropping `sq` publishes the new tail to the kernel

        let submit_error = submit(ring, N);
        let unsubmitted = ring.submission().len();
        let in_flight = N - unsubmitted.min(N);

        let results = wait_all::<N>(ring, in_flight);

        if let Err(e) = submit_error {
            // Entries still in the SQ were never seen by the kernel; dropping the ring (closing
            // its fd) guarantees it never will, so the borrowed buffers are released safely.
            *guard = None;
            return Err(e);
        }
        Ok(results.map(|r| r.unwrap_or(-libc::ECANCELED)))
    }
}

/// Hands the queued entries to the kernel, retrying transient `io_uring_enter` failures.
/// Returns the error of a non-transient failure; the caller then checks what was consumed.
fn submit(ring: &mut IoUring, want: usize) -> io::Result<()> {
    let mut transient = 0u32;
    loop {
        let res = ring.submit_and_wait(want);
        if ring.submission().is_empty() {
            // Everything was consumed. An error here concerned the wait only (EINTR, ...);
            // `wait_all` does the waiting.
            return Ok(());
        }
        let e = match res {
            // The kernel took only some entries (request allocation failed): try again.
            Ok(_) => io::Error::from_raw_os_error(libc::EAGAIN),
            Err(e) => e,
        };
        if !is_transient(&e) || transient >= 10_000 {
            return Err(e);
        }
        transient += 1;
        backoff(&e);
    }
}

/// Reaps completions until `in_flight` of our entries have completed. Never returns early:
/// a buffer may not be released while the kernel can still read it.
fn wait_all<const N: usize>(ring: &mut IoUring, in_flight: usize) -> [Option<i32>; N] {
    let mut results = [None; N];
    let mut pending = in_flight;
    loop {
        for cqe in ring.completion() {
            // Unknown or duplicate tags cannot occur (each call drains the ring), but are
            // ignored rather than trusted.
            if let Ok(i) = usize::try_from(cqe.user_data())
                && let Some(slot @ None) = results.get_mut(i)
            {
                *slot = Some(cqe.result());
                pending = pending.saturating_sub(1);
            }
        }
        if pending == 0 {
            return results;
        }
        match ring.submit_and_wait(1) {
            Ok(_) => {}
            Err(e) if is_transient(&e) => backoff(&e),
            Err(e) => {
                // Returning would free a buffer that the kernel may still read; unwinding
                // would too. There is no sound way out but to stop the process.
                // `eprintln!` could panic on a closed stderr; a failed report must not unwind.
                let _ = writeln!(
                    io::stderr(),
                    "durlab: io_uring wait failed with operations in flight: {e}; aborting"
                );
                std::process::abort();
            }
        }
    }
}

fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EINTR | libc::EAGAIN | libc::EBUSY)
    )
}

fn backoff(e: &io::Error) {
    if e.raw_os_error() == Some(libc::EINTR) {
        return;
    }
    std::thread::sleep(Duration::from_micros(100));
}
