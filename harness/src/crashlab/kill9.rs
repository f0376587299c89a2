//! kill -9: a `durlab worker` child runs the engine and the workload, the parent sends a real
//! SIGKILL at a seeded time (for `fsync-stall`: during an injected sync stall), then recovers
//! the data directory and judges it. The OS page cache survives, so under `always`,
//! `everysec` and `no` nothing acknowledged may be lost.

use std::fs::File;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use durlab_engine::FsyncPolicy;
use durlab_engine::clock::now_ns;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use rand::RngExt;

use super::ackpage::{self, AckLog};
use super::{Crash, FaultKind, Lab, TrialOutcome, TrialStart, fraction};
use crate::driver::matrix::EngineSetup;

/// How long the worker may take to open the engine and start.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// True for the policies that issue fdatasync while writing (a stall can only happen there).
pub fn syncs_while_writing(policy: FsyncPolicy) -> bool {
    matches!(policy, FsyncPolicy::Always | FsyncPolicy::EverySec)
}

/// Kills the child with SIGKILL and reaps it (for error paths).
fn kill_and_reap(child: &mut Child) {
    let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
    let _ = child.wait();
}

fn worker_log(path: &Path) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Polls the ack page until `ready(header)` holds; fails if the child exits or time runs out.
fn wait_for(
    child: &mut Child,
    page: &Path,
    log: &Path,
    timeout: Duration,
    what: &str,
    ready: impl Fn(&AckLog) -> bool,
) -> Result<AckLog, String> {
    let start = Instant::now();
    loop {
        if let Ok(h) = AckLog::read_header(page)
            && ready(&h)
        {
            return Ok(h);
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "worker exited ({status}) before {what}: {}",
                worker_log(log)
            ));
        }
        if start.elapsed() > timeout {
            kill_and_reap(child);
            return Err(format!(
                "worker did not reach '{what}' within {timeout:?}: {}",
                worker_log(log)
            ));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// What a killed worker left behind.
#[derive(Debug)]
pub struct Killed {
    pub seed: u64,
    /// The data directory.
    pub data: std::path::PathBuf,
    pub acks: AckLog,
    /// T: just before the SIGKILL.
    pub t_ns: u64,
    /// Write commands acknowledged from the worker's start to T.
    pub acked_writes: crate::driver::pacing::AckedWrites,
    pub notes: Vec<String>,
}

/// Starts a worker for trial `k` of `setup` in `dir` (recording an I/O trace to `trace` when
/// given; stalling a sync for `FsyncStall`), waits until it runs, sends SIGKILL at a seeded
/// time (during the stall for `FsyncStall`), reaps it and reads its ack page.
///
/// # Errors
/// A message when the worker failed to start, exited by itself, or filled its ack page.
pub fn run_and_kill(
    lab: &Lab,
    setup: &EngineSetup,
    fault: FaultKind,
    k: u64,
    dir: &Path,
    trace: Option<&Path>,
) -> Result<Killed, String> {
    let TrialStart {
        seed,
        mut rng,
        data,
        page,
    } = TrialStart::new(lab, k, dir);
    let log = dir.join("worker.log");
    let stall = (lab.stalls(fault) && syncs_while_writing(setup.policy)).then(|| {
        let n = if setup.policy == FsyncPolicy::Always {
            rng.random_range(1..=20u64)
        } else {
            1
        };
        (n, lab.stall_ms)
    });
    let trial = lab.trial(fault, setup);
    let stall_secs = lab.stall_ms as f64 / 1000.0;
    let max_secs = 30.0 + 4.0 * trial.secs + 2.0 * stall_secs;

    let exe = std::env::current_exe().map_err(|e| format!("finding the durlab binary: {e}"))?;
    let mut cmd = Command::new(exe);
    cmd.arg("worker");
    if let Some(s) = &lab.scenario_arg {
        cmd.arg(s);
    }
    cmd.args(["--seed", &lab.seed.to_string()])
        .args(["--policy", setup.policy.name()])
        .args(["--backend", setup.backend.name()])
        .args(["--prealloc", setup.prealloc.name()])
        .args(["--persistence", setup.persistence.name()])
        .args(["--writers", &lab.writers.to_string()])
        .args(["--max-secs", &max_secs.to_string()])
        .args([
            "--capacity",
            &ackpage::capacity_for(trial.secs + stall_secs).to_string(),
        ])
        .arg("--dir")
        .arg(&data)
        .arg("--ack-page")
        .arg(&page);
    if let Some((n, ms)) = stall {
        cmd.args([
            "--stall-sync",
            &n.to_string(),
            "--stall-ms",
            &ms.to_string(),
        ]);
    }
    if lab.lies.ack_before_sync {
        cmd.arg("--broken-ack-before-sync");
    }
    if lab.lies.skip_dir_sync {
        cmd.arg("--broken-skip-dir-sync");
    }
    if lab.lies.swallow_sync_errors {
        cmd.arg("--broken-swallow-sync-errors");
    }
    if lab.lies.early_sync {
        cmd.arg("--broken-early-sync");
    }
    cmd.args(["--phase", lab.phase.name()]);
    if let Some(rate) = lab.rate_for(fault) {
        cmd.args(["--rate", &rate.ops_per_sec.to_string()])
            .args(["--arrivals", rate.arrivals.name()])
            .args(["--arrival-seed", &seed.to_string()]);
    }
    if let Some(t) = trace {
        cmd.arg("--trace").arg(t);
    }
    let stderr = File::create(&log).map_err(|e| format!("creating {}: {e}", log.display()))?;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .map_err(|e| format!("starting the worker: {e}"))?;

    wait_for(&mut child, &page, &log, READY_TIMEOUT, "ready", |h| {
        h.ready_ns != 0
    })?;
    if lab.phase.churns() {
        // Aim at the phase: start the clock once the first save or rewrite is durable, so
        // the crash lands in a later one with an earlier one to keep, however slow the disk.
        wait_for(
            &mut child,
            &page,
            &log,
            READY_TIMEOUT,
            "the end of the first save",
            |h| h.saves_done != 0,
        )?;
    }
    let mut notes = Vec::new();
    match stall {
        Some((n, ms)) => {
            let timeout = Duration::from_secs_f64(30.0 + 2.0 * trial.secs);
            let h = wait_for(&mut child, &page, &log, timeout, "the sync stall", |h| {
                h.stall_started_ns != 0
            })?;
            let into_ms = ms as f64 * fraction(&mut rng, 0.1, 0.9);
            let at = h.stall_started_ns + (into_ms * 1e6) as u64;
            std::thread::sleep(Duration::from_nanos(at.saturating_sub(now_ns())));
            notes.push(format!(
                "killed {into_ms:.0} ms into a {ms} ms stall of fdatasync #{n} after open"
            ));
        }
        None => {
            if lab.stalls(fault) {
                notes.push(format!(
                    "policy {} issues no fdatasync while writing: no stall can begin; killed at a seeded time",
                    setup.policy
                ));
            }
            // Past the bound, so that a loss as long as the promise allows can show.
            let after = fraction(&mut rng, trial.crash_from_secs, trial.secs);
            std::thread::sleep(Duration::from_secs_f64(after));
            notes.push(format!(
                "killed {:.0} ms after the worker was ready (drawn in [{:.0}, {:.0}] ms)",
                after * 1e3,
                trial.crash_from_secs * 1e3,
                trial.secs * 1e3
            ));
        }
    }
    let t_ns = now_ns();
    kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL)
        .map_err(|e| format!("kill -9 of worker {}: {e}", child.id()))?;
    let status = child
        .wait()
        .map_err(|e| format!("waiting for worker {}: {e}", child.id()))?;
    if status.signal() != Some(Signal::SIGKILL as i32) {
        return Err(format!(
            "worker ended by itself ({status}) before the kill: {}",
            worker_log(&log)
        ));
    }

    let acks = AckLog::read(&page).map_err(|e| e.to_string())?;
    if acks.full_at_lsn != 0 {
        return Err(format!(
            "ack page {} filled up at LSN {} ({} slots, sized for {} acknowledgements/s): acknowledgements after it were not recorded; shorten --trial-secs",
            page.display(),
            acks.full_at_lsn,
            acks.capacity,
            ackpage::MAX_ACKS_PER_SEC
        ));
    }
    let acked_writes = super::acked_writes(&acks, acks.ready_ns, t_ns);
    if let Some(rate) = lab.rate_for(fault) {
        notes.push(format!(
            "open loop at {}: {:.0} write commands/s acknowledged",
            rate.describe(),
            acked_writes.per_sec()
        ));
    }
    Ok(Killed {
        seed,
        data,
        acks,
        t_ns,
        acked_writes,
        notes,
    })
}

/// Runs trial `k` of `setup` under `fault` (`Kill9` or `FsyncStall`) in `dir`: kill -9 of the
/// worker, then recovery of its data directory, judged with the kill -9 promise.
///
/// # Errors
/// As [`run_and_kill`]; a verdict, even a violating one, is not an error.
pub fn run_trial(
    lab: &Lab,
    setup: &EngineSetup,
    fault: FaultKind,
    k: u64,
    dir: &Path,
) -> Result<TrialOutcome, String> {
    let killed = run_and_kill(lab, setup, fault, k, dir, None)?;
    let mut out = lab.judge(
        setup,
        Crash {
            fault,
            k,
            seed: killed.seed,
            data: &killed.data,
            acks: &killed.acks,
            t_ns: killed.t_ns,
            promised: None,
        },
    );
    out.trial_acked_writes = killed.acked_writes;
    out.notes = killed.notes;
    out.notes
        .extend(super::phase_note(&killed.acks, killed.t_ns));
    Ok(out)
}
