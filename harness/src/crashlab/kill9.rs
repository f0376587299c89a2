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
use super::fraction;
use super::runner::{Crashed, FaultRunner, Promise, Recovery, Trial};

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

/// What a killed worker left behind (its data directory is the trial's).
#[derive(Debug)]
pub struct Killed {
    pub acks: AckLog,
    /// T: just before the SIGKILL.
    pub t_ns: u64,
    pub notes: Vec<String>,
}

/// The runner of `kill9` and `fsync-stall` on the engine: kill -9 of the worker, then
/// recovery of its data directory, judged with the kill -9 promise.
#[derive(Debug, Clone, Copy)]
pub struct Kill9;

impl FaultRunner for Kill9 {
    type Facts = ();

    fn crash(&self, trial: &mut Trial<'_>) -> Result<(Crashed, ()), String> {
        let killed = run_and_kill(trial, None)?;
        let crashed = Crashed {
            recovery: Recovery::Engine {
                data: trial.data.clone(),
                promise: Promise::Kill9,
            },
            acks: killed.acks,
            t_ns: killed.t_ns,
            notes: killed.notes,
        };
        Ok((crashed, ()))
    }
}

/// A running worker of a trial: its process, ack page and log.
#[derive(Debug)]
pub struct Running {
    child: Child,
    page: std::path::PathBuf,
    log: std::path::PathBuf,
    /// When the worker was ready ([`now_ns`]): its writers start then.
    pub ready_ns: u64,
}

impl Running {
    /// Polls the ack page until `ready(header)` holds; fails if the worker exits or `timeout`
    /// passes (then it is killed), naming `what` and quoting the worker's log.
    ///
    /// # Errors
    /// As said.
    pub fn wait_for(
        &mut self,
        timeout: Duration,
        what: &str,
        ready: impl Fn(&AckLog) -> bool,
    ) -> Result<AckLog, String> {
        wait_for(&mut self.child, &self.page, &self.log, timeout, what, ready)
    }

    /// The worker's ack page.
    pub fn page(&self) -> &Path {
        &self.page
    }

    /// SIGKILLs the worker now (T is just before the signal), reaps it and reads its ack page.
    ///
    /// # Errors
    /// The worker had already ended by itself, or filled its ack page.
    pub fn kill(mut self, trial: &Trial<'_>, mut notes: Vec<String>) -> Result<Killed, String> {
        let t_ns = now_ns();
        let child = &mut self.child;
        kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL)
            .map_err(|e| format!("kill -9 of worker {}: {e}", child.id()))?;
        let status = child
            .wait()
            .map_err(|e| format!("waiting for worker {}: {e}", child.id()))?;
        if status.signal() != Some(Signal::SIGKILL as i32) {
            return Err(format!(
                "worker ended by itself ({status}) before the kill: {}",
                worker_log(&self.log)
            ));
        }
        let page = &self.page;
        let acks = AckLog::read(page).map_err(|e| e.to_string())?;
        if acks.full_at_lsn != 0 {
            return Err(format!(
                "ack page {} filled up at LSN {} ({} slots, sized for {} acknowledgements/s): acknowledgements after it were not recorded; shorten --trial-secs",
                page.display(),
                acks.full_at_lsn,
                acks.capacity,
                ackpage::MAX_ACKS_PER_SEC
            ));
        }
        if let Some(rate) = trial.lab.rate_for(trial.fault) {
            let acked_writes = super::acked_writes(&acks, acks.ready_ns, t_ns);
            notes.push(format!(
                "open loop at {}: {:.0} write commands/s acknowledged",
                rate.describe(),
                acked_writes.per_sec()
            ));
        }
        Ok(Killed { acks, t_ns, notes })
    }
}

/// A worker left running on an error path is killed and reaped (a killed one is already).
impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            kill_and_reap(&mut self.child);
        }
    }
}

/// Starts a worker for `trial` (recording an I/O trace to `trace` when given; stalling a
/// sync for `FsyncStall`), waits until it runs, sends SIGKILL at a seeded time (during the
/// stall for `FsyncStall`), reaps it and reads its ack page.
///
/// # Errors
/// A message when the worker failed to start, exited by itself, or filled its ack page.
pub fn run_and_kill(trial: &mut Trial<'_>, trace: Option<&Path>) -> Result<Killed, String> {
    let (lab, setup, fault) = (trial.lab, trial.setup, trial.fault);
    let stall = (lab.stalls(fault) && syncs_while_writing(setup.policy)).then(|| {
        let n = if setup.policy == FsyncPolicy::Always {
            trial.rng.random_range(1..=20u64)
        } else {
            1
        };
        (n, lab.stall_ms)
    });
    let mut running = start(trial, trace, stall)?;
    let plan = lab.trial(fault, setup);
    let rng = &mut trial.rng;
    let mut notes = Vec::new();
    match stall {
        Some((n, ms)) => {
            let timeout = Duration::from_secs_f64(30.0 + 2.0 * plan.secs);
            let h = running.wait_for(timeout, "the sync stall", |h| h.stall_started_ns != 0)?;
            let into_ms = ms as f64 * fraction(rng, 0.1, 0.9);
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
            let after = fraction(rng, plan.crash_from_secs, plan.secs);
            std::thread::sleep(Duration::from_secs_f64(after));
            notes.push(format!(
                "killed {:.0} ms after the worker was ready (drawn in [{:.0}, {:.0}] ms)",
                after * 1e3,
                plan.crash_from_secs * 1e3,
                plan.secs * 1e3
            ));
        }
    }
    running.kill(trial, notes)
}

/// Starts a worker for `trial` (recording an I/O trace to `trace` when given; stalling
/// fdatasync number `stall.0` after open for `stall.1` ms) and waits until it is ready (under
/// a churning phase: until its first save is durable).
///
/// # Errors
/// A worker that could not be started or exited before it was ready.
pub fn start(
    trial: &Trial<'_>,
    trace: Option<&Path>,
    stall: Option<(u64, u64)>,
) -> Result<Running, String> {
    let (lab, setup, fault) = (trial.lab, trial.setup, trial.fault);
    let (dir, data, page) = (trial.dir.clone(), trial.data.clone(), trial.page.clone());
    let log = dir.join("worker.log");
    let plan = lab.trial(fault, setup);
    let stall_secs = lab.stall_ms as f64 / 1000.0;
    let max_secs = 30.0 + 4.0 * plan.secs + 2.0 * stall_secs;

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
            &ackpage::capacity_for(plan.secs + stall_secs).to_string(),
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
            .args(["--arrival-seed", &trial.seed.to_string()]);
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

    let ready = wait_for(&mut child, &page, &log, READY_TIMEOUT, "ready", |h| {
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
    Ok(Running {
        child,
        page,
        log,
        ready_ns: ready.ready_ns,
    })
}
