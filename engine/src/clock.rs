//! The one clock that acknowledgement times, crash times and I/O traces share.

/// Nanoseconds of `CLOCK_MONOTONIC`: comparable across processes on the same boot (a crash
/// lab parent and its child read the same clock), never going backwards, unaffected by
/// wall-clock changes. Not comparable across reboots.
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec that lives across the call;
    // CLOCK_MONOTONIC is always supported on Linux, so the call only writes `ts`.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    debug_assert_eq!(rc, 0, "clock_gettime(CLOCK_MONOTONIC) failed");
    (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64
}

#[cfg(test)]
mod tests {
    #[test]
    fn monotonic() {
        let a = super::now_ns();
        let b = super::now_ns();
        assert!(a > 0 && b >= a);
    }
}
