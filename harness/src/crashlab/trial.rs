//! How long a trial runs and when its crash falls, derived from what the configuration
//! promises under the fault (docs/design.md, "Loss window", "Trial length").
//!
//! A crash can only show a loss as long as the history before it, so a trial must outlast the
//! bound it tests: `everysec`'s `everysec_max_lag_ms` (2 s) under power loss, the kernel's
//! dirty expiry for `no` with `--writeback` (about 35 s). The defaults:
//!
//! | configuration × fault | bound | default trial | crash drawn in |
//! |---|---|---|---|
//! | process crashes (kill9, fsync-stall, the backend faults, media damage); `always` under power loss | 0 (nothing acknowledged may be lost) | 1 s | [0.1, 1.0] × trial |
//! | `everysec` under an image fault | `everysec_max_lag_ms` (2 s) | bound + min(2 × bound, 10 s) = 6 s | [bound, trial] |
//! | `no` + `--writeback` under an image fault | dirty expiry (35 s) | bound + min(2 × bound, 10 s) = 45 s | [bound, trial] |
//! | `no` without `--writeback` under an image fault | none (it may lose everything) | as `everysec` of the same engine: 6 s | [2 s, 6 s] |
//! | `off`, and persistence `snapshot` | none | 1 s | [0.1, 1.0] × trial |
//!
//! `no` without writeback promises nothing, so no length shows its bound; it runs exactly as
//! long as `everysec` and crashes in the same range, so that the two are compared over the same
//! histories (its window then grows with the trial, which the report shows). Past 10 s the
//! margin stops growing: a 105 s trial (3 × 35 s) would show nothing the 45 s one does not.
//!
//! A `--trial-secs` shorter than the default is honoured and marked
//! ([`TrialPlan::short_trial`], `short_trial` in `crash-*.json`); crashes then fall in
//! [bound, trial] while the trial outlasts the bound, else in [0.1, 1.0] × trial.

use durlab_engine::{EngineConfig, FsyncPolicy, Persistence};

use super::FaultKind;
use crate::driver::matrix::EngineSetup;

/// Default trial length, seconds, where nothing longer is needed (bound 0 or none).
pub const SHORT_TRIAL_SECS: f64 = 1.0;

/// Past the bound, a trial runs twice the bound more, but at most this long (seconds).
pub const MAX_MARGIN_SECS: f64 = 10.0;

/// Earliest crash, as a fraction of the trial, when there is no bound to wait for.
pub const EARLIEST_CRASH_FRACTION: f64 = 0.1;

/// What one configuration's trials under one fault run for, and why.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrialPlan {
    /// How long the workload runs at most before its crash, seconds.
    pub secs: f64,
    /// The crash falls in [`crash_from_secs`, `secs`] after the worker is ready.
    pub crash_from_secs: f64,
    /// The loss the configuration promises not to exceed under the fault, ms: 0 for "nothing
    /// acknowledged", `None` when it promises no bound (`no` without writeback, `off`,
    /// snapshot-only persistence).
    pub bound_ms: Option<u64>,
    /// The length [`plan`] derives without a user-given one, seconds.
    pub default_secs: f64,
    /// The configuration has a bound to reach (or, for `no` without writeback, everysec's to
    /// compare with) and the trial is shorter than [`TrialPlan::default_secs`] (a user-given
    /// `--trial-secs`): loss windows near or past the bound may not show. Where nothing needs
    /// time to show (bound 0 or none), no length is short.
    pub short_trial: bool,
}

/// Facts about the engine and the machine the plan depends on.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// The engine's `everysec_max_lag_ms`.
    pub everysec_max_lag_ms: u64,
    /// Image faults with `--writeback`: age at which dirty data is written back, ns
    /// ([`super::images::default_dirty_expire_ns`]); `None` without writeback.
    pub writeback_expire_ns: Option<u64>,
}

impl Bounds {
    /// The bounds of an engine configured as `config`; `writeback`: image faults count
    /// expired dirty data as written back (this machine's dirty expiry).
    pub fn of(config: &EngineConfig, writeback: bool) -> Bounds {
        Bounds {
            everysec_max_lag_ms: config.everysec_max_lag_ms,
            writeback_expire_ns: writeback.then(super::images::default_dirty_expire_ns),
        }
    }
}

/// The loss bound `setup` promises under `fault`, ms (see [`TrialPlan::bound_ms`]).
pub fn bound_ms(setup: &EngineSetup, fault: FaultKind, bounds: Bounds) -> Option<u64> {
    if setup.persistence == Persistence::Snapshot || setup.policy == FsyncPolicy::Off {
        return None;
    }
    if fault == FaultKind::LiveCopy {
        // A copy promises nothing about freshness.
        return None;
    }
    if !fault.needs_images() {
        // A process crash keeps the page cache: every acknowledged command survives.
        return Some(0);
    }
    match setup.policy {
        FsyncPolicy::Always => Some(0),
        FsyncPolicy::EverySec => Some(bounds.everysec_max_lag_ms),
        FsyncPolicy::No => bounds.writeback_expire_ns.map(|ns| ns / 1_000_000),
        FsyncPolicy::Off => None,
    }
}

/// The trial of `setup` under `fault`: `user_secs` (`--trial-secs`, `[crash] trial_secs`)
/// when given, else the default of the module's table.
pub fn plan(
    setup: &EngineSetup,
    fault: FaultKind,
    bounds: Bounds,
    user_secs: Option<f64>,
) -> TrialPlan {
    let bound_ms = bound_ms(setup, fault, bounds);
    // The time a crash must be past to reach the bound (`no` without writeback: everysec's).
    let reach_secs = match bound_ms {
        Some(ms) => ms as f64 / 1e3,
        None if setup.policy == FsyncPolicy::No
            && fault.needs_images()
            && setup.persistence != Persistence::Snapshot =>
        {
            bounds.everysec_max_lag_ms as f64 / 1e3
        }
        None => 0.0,
    };
    let default_secs = if reach_secs > 0.0 {
        reach_secs + (2.0 * reach_secs).min(MAX_MARGIN_SECS)
    } else {
        SHORT_TRIAL_SECS
    };
    let secs = user_secs.unwrap_or(default_secs);
    let crash_from_secs = if reach_secs > 0.0 && reach_secs < secs {
        reach_secs
    } else {
        EARLIEST_CRASH_FRACTION * secs
    };
    TrialPlan {
        secs,
        crash_from_secs,
        bound_ms,
        default_secs,
        short_trial: reach_secs > 0.0 && secs < default_secs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use durlab_engine::{BackendKind, Prealloc};

    fn setup(policy: FsyncPolicy, persistence: Persistence) -> EngineSetup {
        EngineSetup {
            policy,
            backend: BackendKind::Pwrite,
            prealloc: Prealloc::None,
            persistence,
            baseline_only: false,
        }
    }

    const ENGINE: Bounds = Bounds {
        everysec_max_lag_ms: 2000,
        writeback_expire_ns: None,
    };

    #[test]
    fn defaults_follow_each_policys_bound() {
        let aof = |p| setup(p, Persistence::Aof);
        let power = |p| plan(&aof(p), FaultKind::PowerLoss, ENGINE, None);
        let everysec = power(FsyncPolicy::EverySec);
        assert_eq!(
            (everysec.secs, everysec.crash_from_secs, everysec.bound_ms),
            (6.0, 2.0, Some(2000))
        );
        let no = power(FsyncPolicy::No);
        assert_eq!((no.secs, no.crash_from_secs, no.bound_ms), (6.0, 2.0, None));
        for p in [FsyncPolicy::Always, FsyncPolicy::Off] {
            let short = power(p);
            assert_eq!((short.secs, short.crash_from_secs), (1.0, 0.1), "{p}");
            assert!(!short.short_trial);
        }
        let written_back = Bounds {
            writeback_expire_ns: Some(35_000_000_000),
            ..ENGINE
        };
        let no_wb = plan(&aof(FsyncPolicy::No), FaultKind::Torn, written_back, None);
        assert_eq!(
            (no_wb.secs, no_wb.crash_from_secs, no_wb.bound_ms),
            (45.0, 35.0, Some(35_000))
        );
        // A process crash loses nothing acknowledged under any policy that writes.
        let kill9 = plan(&aof(FsyncPolicy::EverySec), FaultKind::Kill9, ENGINE, None);
        assert_eq!((kill9.secs, kill9.bound_ms), (1.0, Some(0)));
        let snap = plan(
            &setup(FsyncPolicy::EverySec, Persistence::Snapshot),
            FaultKind::PowerLoss,
            ENGINE,
            None,
        );
        assert_eq!((snap.secs, snap.bound_ms), (1.0, None));
    }

    #[test]
    fn a_shorter_user_trial_is_kept_and_marked() {
        let everysec = setup(FsyncPolicy::EverySec, Persistence::Aof);
        let short = plan(&everysec, FaultKind::PowerLoss, ENGINE, Some(1.0));
        assert_eq!((short.secs, short.crash_from_secs), (1.0, 0.1));
        assert!(short.short_trial, "{short:?}");
        let past = plan(&everysec, FaultKind::PowerLoss, ENGINE, Some(3.0));
        assert_eq!((past.crash_from_secs, past.short_trial), (2.0, true));
        let long = plan(&everysec, FaultKind::PowerLoss, ENGINE, Some(8.0));
        assert!(!long.short_trial, "{long:?}");
        let always = setup(FsyncPolicy::Always, Persistence::Aof);
        let quick = plan(&always, FaultKind::PowerLoss, ENGINE, Some(0.3));
        assert!(
            !quick.short_trial,
            "nothing to wait for under always: {quick:?}"
        );
    }
}
