//! Faults of the fault-injecting backend, in process (the page cache survives, as after
//! kill -9): one fdatasync fails with EIO (`fsync-eio`), the disk fills at a seeded byte
//! (`enospc`), one write reaches the file only in part and fails with EIO (`short-write`).
//! After the fault the engine must be poisoned (acknowledge nothing more, fail clearly), and
//! recovery must bring back every acknowledged command.
//!
//! Also the latency cost of a sync stall (`fsync-stall`): the same run with and without one
//! stalled fdatasync.

use std::path::Path;
use std::time::Duration;

use durlab_engine::clock::now_ns;
use durlab_engine::{Engine, FsyncPolicy};
use rand::RngExt;
use serde::Serialize;

use super::ackpage::{AckLog, AckPage};
use super::runner::{Crashed, FaultRunner, Promise, Recovery, Trial};
use super::worker::{install_faulty, run_writers};
use super::{FaultKind, Lab, TrialOutcome};
use crate::driver::bench::{AckHook, NoHook};
use crate::driver::latency::LatencySummaryUs;
use crate::driver::matrix::EngineSetup;
use crate::workload::WriterStream;

/// Extra write+sync rounds after the run, to reach a fault the run did not reach: a sync
/// fault under policies that do not sync while writing (`no`) or sync rarely (`everysec`),
/// a write fault on a slow disk.
const EXTRA_ROUNDS: u32 = 2_000;

/// Seeded fault positions for ENOSPC and short writes lie in `[0, this)` bytes after open:
/// small enough that `always` (a few hundred commands per second on a slow disk) gets there.
fn fault_span_bytes(policy: FsyncPolicy) -> u64 {
    if policy == FsyncPolicy::Always {
        8 * 1024
    } else {
        256 * 1024
    }
}

/// One write command through the engine, published to `page` like a writer's; `stream`
/// builds it (a writer's stream caches what its `xack`s look back at).
fn write_one(
    engine: &Engine,
    stream: &mut WriterStream<'_>,
    page: &AckPage,
) -> durlab_engine::Result<()> {
    let ack = engine.execute_next(|lsn| {
        page.issued(lsn);
        stream.write_command(lsn)
    })?;
    if let Some(lsn) = ack.lsn {
        page.acked(lsn);
    }
    Ok(())
}

/// The runner of the backend faults (`fsync-eio`, `enospc`, `short-write`) on the engine, in
/// process: the fault armed at a seeded point, the workload run until it fired, the engine
/// dropped (as after kill -9: the page cache survives), then recovered and judged with the
/// kill -9 promise.
#[derive(Debug, Clone, Copy)]
pub struct BackendFault;

/// What a backend fault trial saw, for [`BackendFault`]'s own checks.
#[derive(Debug, Clone, Copy)]
pub struct FaultFacts {
    /// The injected fault fired.
    fired: bool,
    /// Some command failed with the engine's error.
    reported: bool,
    /// A command was acknowledged after the fault fired (the engine was not poisoned).
    acked_after_fault: bool,
}

impl FaultRunner for BackendFault {
    type Facts = FaultFacts;

    fn crash(&self, trial: &mut Trial<'_>) -> Result<(Crashed, FaultFacts), String> {
        let (lab, setup, fault) = (trial.lab, trial.setup, trial.fault);
        let (faults, page, engine) = trial.open_in_process(lab.lies, |config| {
            install_faulty(config).map_err(|e| e.to_string())
        })?;
        let rng = &mut trial.rng;
        let injected = match fault {
            FaultKind::FsyncEio => {
                let n = rng.random_range(1..=3u64);
                faults.fail_sync(n);
                format!(
                    "fdatasync #{n} after open fails with EIO (without syncing); later ones succeed"
                )
            }
            FaultKind::Enospc => {
                let bytes = rng.random_range(0..fault_span_bytes(setup.policy));
                faults.fill_disk_after(bytes);
                format!(
                    "disk full after {bytes} more bytes: that write stores what fits, then ENOSPC"
                )
            }
            FaultKind::ShortWrite => {
                let bytes = rng.random_range(0..fault_span_bytes(setup.policy));
                faults.short_write_after(bytes);
                format!("the write crossing {bytes} more bytes stores only its prefix, then EIO")
            }
            other => return Err(format!("fault {other} is not a backend fault")),
        };
        let run = trial.run_writers(&engine, &page);
        let mut errors: Vec<String> = run.error.map(|e| e.to_string()).into_iter().collect();
        // Extra rounds until the fault has fired, and then one more: a failure that fired after
        // the run's writers stopped (everysec's background sync at the end of the trial) had no
        // caller yet, and the next one must get it. A round that began after the failure is
        // the verdict.
        let mut rounds = 0;
        let mut stream = lab.workload.writer(0);
        while errors.is_empty() && rounds < EXTRA_ROUNDS {
            let fired_before = faults.fired() > 0;
            if let Err(e) =
                write_one(&engine, &mut stream, &page).and_then(|()| engine.sync().map(|_| ()))
            {
                errors.push(e.to_string());
            }
            rounds += 1;
            if fired_before {
                break;
            }
        }
        let fired = faults.fired() > 0;
        // After the failure, the engine must acknowledge nothing more.
        let acked_after_fault = fired && write_one(&engine, &mut stream, &page).is_ok();
        let t_ns = now_ns();
        drop(engine);
        drop(page);

        let acks = AckLog::read(&trial.page).map_err(|e| e.to_string())?;
        let mut notes = vec![format!("injected: {injected}")];
        match errors.first() {
            Some(e) => notes.push(format!("engine error: {e}")),
            None if fired => notes.push("the fault fired but no command failed".into()),
            None => notes.push(format!(
                "the fault never fired: policy {} issued no matching I/O",
                setup.policy
            )),
        }
        let crashed = Crashed {
            recovery: Recovery::Engine {
                data: trial.data.clone(),
                promise: Promise::Kill9,
            },
            acks,
            t_ns,
            notes,
        };
        let facts = FaultFacts {
            fired,
            reported: !errors.is_empty(),
            acked_after_fault,
        };
        Ok((crashed, facts))
    }

    fn review(&self, _trial: &Trial<'_>, facts: &FaultFacts, out: &mut TrialOutcome) {
        if facts.fired && !facts.reported {
            out.violation = true;
            out.notes
                .push("VIOLATION: an I/O failure was not reported to any caller".into());
        }
        if facts.acked_after_fault {
            out.violation = true;
            out.notes.push(
                "VIOLATION: the engine acknowledged a command after the failure (not poisoned)"
                    .into(),
            );
        }
    }
}

/// Acknowledgement latency of one configuration with and without one stalled fdatasync.
#[derive(Debug, Clone, Serialize)]
pub struct StallLatency {
    pub stall_ms: u64,
    /// Whether the stall happened (never under `no` and `off`: they issue no fdatasync
    /// while writing).
    pub stall_fired: bool,
    /// Each run's length.
    pub run_secs: f64,
    pub baseline_latency_us: LatencySummaryUs,
    pub stalled_latency_us: LatencySummaryUs,
}

/// Runs `setup` twice in process in `dir` (fresh data directories), once plain and once
/// with the first fdatasync after open stalled for `lab.stall_ms`, and returns both
/// acknowledgement latency summaries (all commands, all writers).
///
/// # Errors
/// When the engine does not open.
pub fn stall_latency(lab: &Lab, setup: &EngineSetup, dir: &Path) -> Result<StallLatency, String> {
    // Long enough for everysec's first background sync (1 s) plus the stall.
    let trial_secs = lab.trial(FaultKind::FsyncStall, setup).secs;
    let run_secs = trial_secs.max(1.2) + lab.stall_ms as f64 / 1000.0 + 0.3;
    let mut summaries = Vec::new();
    let mut stall_fired = false;
    for stalled in [false, true] {
        let data = dir.join(if stalled { "stalled" } else { "baseline" });
        let mut config = lab.config(setup, &data);
        let faults = install_faulty(&mut config).map_err(|e| e.to_string())?;
        lab.lies.install(&mut config).map_err(|e| e.to_string())?;
        let (engine, _) = Engine::open(config)
            .map_err(|e| format!("opening the engine in {}: {e}", data.display()))?;
        if stalled {
            faults.stall_sync(1, Duration::from_millis(lab.stall_ms));
        }
        let hook: &dyn AckHook = &NoHook;
        let run = run_writers(
            &engine,
            &lab.workload,
            lab.writers,
            Duration::from_secs_f64(run_secs),
            hook,
        );
        if let Some(e) = run.error {
            return Err(format!("stall latency run of {}: {e}", setup.label()));
        }
        if stalled {
            stall_fired = faults.stall_started_ns() != 0;
        }
        summaries.push(run.latency.summary_us());
        drop(engine);
        let _ = std::fs::remove_dir_all(&data);
    }
    Ok(StallLatency {
        stall_ms: lab.stall_ms,
        stall_fired,
        run_secs,
        baseline_latency_us: summaries[0],
        stalled_latency_us: summaries[1],
    })
}
