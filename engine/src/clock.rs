//! One clock for every timestamp that crosses a process boundary: ack times recorded by a
//! driver, trace entries written by the recording backend, crash times chosen by the crash lab.

/// Nanoseconds on `CLOCK_MONOTONIC`.
///
/// The clock is system-wide: two processes on the same machine read the same clock, so a
/// parent can compare its own readings with timestamps a (killed) child wrote. It never goes
/// backwards and does not jump with wall-clock changes; it does not advance during suspend.
/// Its zero is arbitrary (boot), so only differences and comparisons mean anything.
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec that lives for the whole call;
    // clock_gettime writes only into it.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    // CLOCK_MONOTONIC is supported by every Linux kernel, and `ts` is a valid pointer, so the
    // call cannot fail (EINVAL / EFAULT are the only documented errors).
    assert_eq!(rc, 0, "clock_gettime(CLOCK_MONOTONIC) failed");
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}

#[cfg(test)]
mod tests {
    use super::now_ns;

    #[test]
    fn never_goes_backwards() {
        let mut last = now_ns();
        assert!(last > 0);
        for _ in 0..10_000 {
            let now = now_ns();
            assert!(now >= last, "{now} < {last}");
            last = now;
        }
    }
}
