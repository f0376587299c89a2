//! CPU time and peak memory of this process, or of a server process it started.

use std::time::Duration;

/// User plus system CPU time used by this process so far.
pub fn cpu_time() -> Duration {
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF);
    match usage {
        Ok(u) => {
            let tv = |t: nix::sys::time::TimeVal| {
                Duration::new(t.tv_sec() as u64, t.tv_usec() as u32 * 1000)
            };
            tv(u.user_time()) + tv(u.system_time())
        }
        Err(_) => Duration::ZERO,
    }
}

/// Resets the peak resident set size (`VmHWM`) so that [`peak_rss_mb`] covers what follows.
/// Returns false where the kernel does not allow it (then the peak covers the process life).
pub fn reset_peak_rss() -> bool {
    reset_peak_rss_of("self")
}

/// [`reset_peak_rss`] for process `pid` (`"self"` or a number; needs permission over it).
pub fn reset_peak_rss_of(pid: &str) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

/// Peak resident set size of process `pid` in MiB (`VmHWM`), if readable.
pub fn peak_rss_mb_of(pid: &str) -> Option<f64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
}

/// User plus system CPU time of process `pid` (a number) so far, from `/proc/<pid>/stat`;
/// zero if unreadable.
pub fn cpu_time_of(pid: u32) -> Duration {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return Duration::ZERO;
    };
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // utime and stime are fields 14 and 15 of stat(5): indexes 11 and 12 after the name.
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Duration::from_secs_f64((ticks(11) + ticks(12)) as f64 / hz)
}

/// Peak resident set size in MiB since the last [`reset_peak_rss`] (or process start).
pub fn peak_rss_mb() -> f64 {
    match peak_rss_mb_of("self") {
        Some(mb) => mb,
        None => nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF)
            .map(|u| u.max_rss() as f64 / 1024.0)
            .unwrap_or(0.0),
    }
}
