//! CPU time and peak memory of this process.

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
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Peak resident set size in MiB since the last [`reset_peak_rss`] (or process start).
pub fn peak_rss_mb() -> f64 {
    let from_status = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        });
    match from_status {
        Some(kb) => kb / 1024.0,
        None => nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF)
            .map(|u| u.max_rss() as f64 / 1024.0)
            .unwrap_or(0.0),
    }
}
