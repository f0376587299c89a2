//! Running background work (serializing a snapshot) on a dedicated thread with a lower
//! scheduling priority than the writers.
//!
//! Why: a snapshot competes with the writers for CPU, and on a small machine (two cores, other
//! processes) for the same cores. The writers' latency is what users see; the snapshot only
//! has to finish. Linux applies nice values per thread (`setpriority(PRIO_PROCESS, 0, n)`, as
//! `nice(3)` calls it, changes only the calling thread), so a thread [`NICE_STEPS`] below a
//! nice-0 writer gets about a tenth of the writer's CPU share when both want the same core,
//! and all of an idle one. A dedicated thread is used because a thread cannot take its
//! priority back without `CAP_SYS_NICE`: lowering the caller's own would slow it for good. The snapshot takes the engine's lock only briefly per chunk
//! (see `point_in_time.rs`), so being preempted while holding it stays rare.

use std::io;

/// How many nice steps the thread runs below its caller: 10 (nice 10 under a nice-0 caller,
/// capped at 19), clearly below the writers without starving the snapshot.
pub(crate) const NICE_STEPS: libc::c_int = 10;

/// Runs `work` on a new thread named `name`, [`NICE_STEPS`] below the caller's priority, and
/// returns its result. Lowering the priority is best effort: where the system refuses, `work`
/// runs at the caller's.
///
/// # Errors
/// If the thread cannot be created. A panic in `work` is resumed on the caller.
pub(crate) fn run<T: Send>(name: &str, work: impl FnOnce() -> T + Send) -> io::Result<T> {
    std::thread::scope(|s| {
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn_scoped(s, || {
                lower_this_thread();
                work()
            })?;
        Ok(thread
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
    })
}

/// Raises the calling thread's nice value by [`NICE_STEPS`] (ignoring a refusal).
fn lower_this_thread() {
    // SAFETY: nice(3) only reads its integer argument and changes the calling thread's nice
    // value (never raising its priority for a positive step). Its result is ignored on
    // purpose: best effort, and -1 is both an error and a valid nice value.
    let _ = unsafe { libc::nice(NICE_STEPS) };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The nice value of the calling thread.
    fn nice_of_this_thread() -> libc::c_int {
        // SAFETY: getpriority only reads its arguments; who 0 with PRIO_PROCESS is the calling
        // thread.
        unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) }
    }

    #[test]
    fn work_runs_lower_and_the_caller_keeps_its_priority() {
        let before = nice_of_this_thread();
        let (result, nice) = run("durlab-test", || (6 * 7, nice_of_this_thread())).unwrap();
        assert_eq!(result, 42);
        // Lower, or equal where the system refuses or the caller is already at 19.
        assert!(
            nice >= before,
            "work ran at nice {nice}, caller at {before}"
        );
        assert!(
            nice == (before + NICE_STEPS).min(19) || nice == before,
            "{nice}"
        );
        assert_eq!(nice_of_this_thread(), before);
    }

    #[test]
    #[should_panic(expected = "boom")]
    fn a_panic_reaches_the_caller() {
        let _ = run("durlab-test", || panic!("boom"));
    }
}
