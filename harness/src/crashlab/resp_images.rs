//! Image faults (`power-loss`, `prefix`, `torn`, `reorder`) for RESP servers, unmodified: the
//! server (redis-server or `durlab serve`) runs with its data directory on the recording
//! filesystem ([`crate::recfs`]), driven over RESP with LSN markers ([`crate::servers::drive`]);
//! it is killed at the end of the trial, the mount's trace gives the crash images exactly as
//! the engine's recording backend does, and a fresh server is started on every image (on
//! every core, in scratch space), read back and judged by the one judge
//! ([`super::verdict::Recovered::judge`], [`Lab::outcome`]) against the promise of [`power::promise`].
//!
//! With `--stall`, the filesystem holds one fsync for `--stall-ms` and the server is killed
//! inside the stall; `kill9` then restarts the server on what the kill left (the page cache
//! survives), judged against the kill -9 promise. A server that will not start on an image is
//! `refused`, with its own log line. Snapshot-only
//! persistence promises nothing here: a RESP server does not say when a save became durable.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use durlab_engine::clock::now_ns;
use durlab_engine::{BackendKind, Lsn, Persistence};

use super::ackpage::AckLog;
use super::phase::Phase;
use super::power;
use super::verdict::Recovered;
use super::{Crash, FaultKind, Lab, TrialOutcome, TrialStart};
use crate::driver::matrix::EngineSetup;
use crate::recfs::RecordingMount;
use crate::resp::Value;
use crate::servers::drive::Driver;
use crate::servers::kill9::restart_and_recover;
use crate::servers::{ServerProcess, ServerSpec};

/// A server run on the recording filesystem and killed.
struct Mounted {
    /// The mount point (the paths of the trace start here).
    root: PathBuf,
    /// The backing directory: what survives a kill -9 (the page cache).
    backing: PathBuf,
    trace: PathBuf,
    spec: ServerSpec,
    acks: AckLog,
    t_kill_ns: u64,
    /// When the workload started.
    began_ns: u64,
    seed: u64,
    notes: Vec<String>,
}

/// Mounts the recording filesystem in `dir`, runs `lab.target` on it with the workload, and
/// kills it (SIGKILL): at the end of the trial, or with `lab.stall`, a seeded time into a
/// stall of one fsync held by the filesystem for `lab.stall_ms` (armed a seeded time into the
/// trial). Unmounts before returning.
fn run_on_mount(
    lab: &Lab,
    setup: &EngineSetup,
    fault: FaultKind,
    k: u64,
    dir: &Path,
) -> Result<Mounted, String> {
    if setup.backend == BackendKind::Mmap {
        return Err(
            "the mmap backend cannot run on the recording filesystem (its files are opened for direct I/O, which shared writable mappings need to bypass); use pwrite or uring".into(),
        );
    }
    let stall = lab.stalls(fault);
    if stall && !super::kill9::syncs_while_writing(setup.policy) {
        return Err(format!(
            "policy {} issues no fsync while writing: no sync stall can begin",
            setup.policy
        ));
    }
    let mut start = TrialStart::new(lab, k, dir);
    let backing = dir.join("backing");
    std::fs::create_dir_all(&backing).map_err(|e| format!("{}: {e}", backing.display()))?;
    let trace = dir.join("io.trace");
    let mount =
        RecordingMount::mount(&backing, &dir.join("mnt"), &trace).map_err(|e| e.to_string())?;
    let root = mount.mountpoint().to_path_buf();
    let config = lab.config(setup, &root);
    let mut spec = ServerSpec::for_config(lab.target, &config).map_err(|e| e.to_string())?;
    spec.log = dir.join("server.log");
    spec.redis_config = lab.redis_config.clone();
    let mut server = ServerProcess::start(&spec).map_err(|e| e.to_string())?;
    let client = server.connect().map_err(|e| e.to_string())?;
    let stall_secs = lab.stall_ms as f64 / 1000.0;
    let trial_secs = lab.trial(fault, setup).secs;
    let max = Duration::from_secs_f64(trial_secs * 4.0 + 2.0 * stall_secs + 30.0);
    let began = Instant::now();
    let began_ns = now_ns();
    let rate = lab.rate_for(fault);
    let driver = Driver::start_paced(
        client,
        &lab.workload,
        lab.target,
        max,
        rate.map(|r| (r, start.seed)),
    );
    let churn = lab
        .phase
        .churns()
        .then(|| Churner::start(&server, lab.phase))
        .transpose()?;
    let mut notes = Vec::new();
    if stall {
        // Armed after a seeded part of the trial; the next fsync of any file is held.
        let arm_after = trial_secs * super::fraction(&mut start.rng, 0.3, 0.7);
        std::thread::sleep(Duration::from_secs_f64(arm_after));
        mount.stall().arm(Duration::from_millis(lab.stall_ms));
        let deadline = Instant::now() + Duration::from_secs_f64(trial_secs + 30.0);
        let began_ns = loop {
            if let Some(t) = mount.stall().began_ns() {
                break t;
            }
            if Instant::now() > deadline {
                driver.crashing();
                let _ = server.kill9();
                return Err("no fsync reached the filesystem after the stall was armed".into());
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        let into_ms = lab.stall_ms as f64 * super::fraction(&mut start.rng, 0.5, 0.95);
        let at = began_ns + (into_ms * 1e6) as u64;
        std::thread::sleep(Duration::from_nanos(at.saturating_sub(now_ns())));
        notes.push(format!(
            "killed {into_ms:.0} ms into a {} ms stall of an fsync (armed {:.0} ms into the trial)",
            lab.stall_ms,
            arm_after * 1e3
        ));
    } else {
        std::thread::sleep(Duration::from_secs_f64(trial_secs));
    }
    driver.crashing();
    if let Some(c) = &churn {
        c.crashing();
    }
    let t_kill_ns = now_ns();
    server
        .kill9()
        .map_err(|e| format!("kill -9 of the server: {e}"))?;
    let ran_secs = began.elapsed().as_secs_f64();
    if let Some(c) = churn {
        notes.push(c.join()?);
    }
    let driven = driver.join();
    let entries = mount.entries();
    mount.unmount().map_err(|e| e.to_string())?;
    let acks = driven?.into_ack_log();
    let acked = acks.acked_before(t_kill_ns);
    notes.push(format!(
        "{acked} writes acknowledged in {ran_secs:.1} s through the recording filesystem ({:.0}/s, {}); trace of {entries} entries",
        acked as f64 / ran_secs.max(1e-9),
        rate.map_or("flat-out".to_string(), |r| format!("open loop at {}", r.describe()))
    ));
    if setup.persistence == Persistence::Snapshot {
        notes.push(
            "snapshot-only persistence: a RESP server does not publish when a save became durable, so nothing is promised".into(),
        );
    }
    Ok(Mounted {
        root,
        backing,
        trace,
        spec,
        acks,
        t_kill_ns,
        began_ns,
        seed: start.seed,
        notes,
    })
}

/// Keeps a server saving (`BGSAVE`) or rewriting (`BGREWRITEAOF`) back to back on a
/// connection of its own, so that crashes land inside them (`--phase snapshot|rewrite`).
struct Churner {
    handle: std::thread::JoinHandle<Result<String, String>>,
    crashed: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Churner {
    fn start(server: &ServerProcess, phase: Phase) -> Result<Churner, String> {
        use std::sync::atomic::Ordering;
        let mut c = server.connect().map_err(|e| e.to_string())?;
        let crashed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = crashed.clone();
        let (command, field) = match phase {
            Phase::Rewrite => ("BGREWRITEAOF", "aof_rewrite_in_progress"),
            _ => ("BGSAVE", "rdb_bgsave_in_progress"),
        };
        let handle = std::thread::spawn(move || {
            let mut done = 0u64;
            // Ends only by an error: the server's crash, or a failure before it.
            let mut run = || -> Result<std::convert::Infallible, String> {
                loop {
                    match c.call(&[command]).map_err(|e| e.to_string())? {
                        Value::Error(e) if !e.contains("in progress") => {
                            return Err(format!("{command} replied -{e}"));
                        }
                        _ => {}
                    }
                    loop {
                        std::thread::sleep(Duration::from_millis(5));
                        let info = match c
                            .call(&["INFO", "persistence"])
                            .map_err(|e| e.to_string())?
                        {
                            Value::Bulk(b) => String::from_utf8_lossy(&b).into_owned(),
                            other => return Err(format!("INFO replied {other:?}")),
                        };
                        if crate::resp::info::fields(&info).contains(&(field, "0")) {
                            break;
                        }
                    }
                    done += 1;
                }
            };
            match run() {
                Err(_) if flag.load(Ordering::Acquire) => Ok(format!(
                    "{done} {command}s completed back to back before the crash"
                )),
                Err(e) => Err(e),
                Ok(never) => match never {},
            }
        });
        Ok(Churner { handle, crashed })
    }

    fn crashing(&self) {
        self.crashed
            .store(true, std::sync::atomic::Ordering::Release);
    }

    fn join(self) -> Result<String, String> {
        self.handle
            .join()
            .map_err(|_| "the BGSAVE/BGREWRITEAOF thread panicked".to_string())?
    }
}

/// Runs trial `k` of `setup` on `lab.target` under `fault` in `dir`: for an image fault, one
/// outcome per crash image; for kill9 (with `lab.stall`), one outcome for the server
/// restarted on what the kill left (the backing directory: the page cache survives).
///
/// # Errors
/// A message when the mount, the server, the driver or the trace fails, or an image cannot be
/// built.
pub fn run_trial(
    lab: &Lab,
    setup: &EngineSetup,
    fault: FaultKind,
    k: u64,
    dir: &Path,
) -> Result<Vec<TrialOutcome>, String> {
    let m = run_on_mount(lab, setup, fault, k, dir)?;
    if fault == FaultKind::Kill9 {
        return Ok(vec![judge_killed(lab, setup, fault, k, &m)]);
    }
    let acks = &m.acks;
    let issued = acks.highest_issued;
    power::judge_trace(
        lab,
        setup,
        fault,
        k,
        dir,
        &m.trace,
        &m.root,
        m.seed,
        power::CrashWindow {
            first_cut_ns: power::first_cut_ns(lab, setup, fault, m.began_ns),
            kill_ns: m.t_kill_ns,
        },
        |image| {
            let mut spec = m.spec.clone();
            spec.dir = image.dir.clone();
            spec.log = image.dir.with_extension("log");
            let recovered = restart_and_recover(&spec, &lab.oracle, issued).unwrap_or_else(|e| {
                Recovered::Refused(format!("reading the restarted server back: {e}"))
            });
            let _ = std::fs::remove_file(&spec.log);
            recovered
        },
        |image, opts, recovered, verify_seconds, t_ns| {
            let promised = if setup.persistence == Persistence::Snapshot {
                0
            } else {
                power::promise(lab, setup, opts, acks, t_ns)
            };
            conclude(
                lab,
                fault,
                k,
                &m,
                &image.dir,
                t_ns,
                promised,
                recovered,
                verify_seconds,
            )
        },
    )
}

/// kill -9 on the mount: the server restarted on the backing directory, judged against the
/// kill -9 promise at the kill.
fn judge_killed(
    lab: &Lab,
    setup: &EngineSetup,
    fault: FaultKind,
    k: u64,
    m: &Mounted,
) -> TrialOutcome {
    let mut spec = m.spec.clone();
    spec.dir = m.backing.clone();
    spec.log = m.backing.with_extension("restart.log");
    let promised = if setup.persistence == Persistence::Snapshot {
        0
    } else {
        super::kill9_promise(&lab.contract_setup(setup), &m.acks, m.t_kill_ns)
    };
    judge_restart(lab, fault, k, m, &spec, m.t_kill_ns, promised)
}

/// Starts a server on `spec.dir` (a crashed data directory), reads it back and judges it by
/// the one judge; the outcome carries the trial's notes.
fn judge_restart(
    lab: &Lab,
    fault: FaultKind,
    k: u64,
    m: &Mounted,
    spec: &ServerSpec,
    t_ns: u64,
    promised: Lsn,
) -> TrialOutcome {
    let verify = Instant::now();
    let recovered = restart_and_recover(spec, &lab.oracle, m.acks.highest_issued)
        .unwrap_or_else(|e| Recovered::Refused(format!("reading the restarted server back: {e}")));
    let secs = verify.elapsed().as_secs_f64();
    conclude(
        lab, fault, k, m, &spec.dir, t_ns, promised, &recovered, secs,
    )
}

/// The outcome of a restarted server's `recovered` state against `promised` at `t_ns`, with
/// the trial's notes.
#[allow(clippy::too_many_arguments)]
fn conclude(
    lab: &Lab,
    fault: FaultKind,
    k: u64,
    m: &Mounted,
    data: &Path,
    t_ns: u64,
    promised: Lsn,
    recovered: &Recovered,
    verify_seconds: f64,
) -> TrialOutcome {
    let mut out = lab.outcome(
        Crash {
            fault,
            k,
            seed: m.seed,
            data,
            acks: &m.acks,
            t_ns,
            promised: Some(promised),
        },
        promised,
        recovered.judge(promised),
        verify_seconds,
    );
    out.trial_acked_writes = super::acked_writes(&m.acks, m.acks.ready_ns, m.t_kill_ns);
    out.notes.extend(m.notes.iter().cloned());
    out
}

/// A RESP server's throughput through the recording filesystem against a plain directory:
/// the crash workload (one pipelined connection of MULTI/EXEC transactions) for the same time
/// on each, in the same run, alternating in [`OVERHEAD_ROUNDS`] rounds (direct, then mounted):
/// the device's sync latency drifts by 10x within seconds on a shared VM (measured here: 0.2 to
/// 2.8 ms per 200 B append + fdatasync, minutes apart), so one long run per side would compare
/// two regimes of the disk rather than the filesystem.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct MountOverhead {
    /// Acknowledged write commands per second on a plain directory (all rounds).
    pub direct_ops_per_sec: f64,
    /// The same on the recording filesystem.
    pub mounted_ops_per_sec: f64,
    /// `mounted / direct`.
    pub ratio: f64,
    /// Seconds each side ran in total.
    pub secs: f64,
    /// `mounted / direct` of each round, in order (their spread shows the drift; absent in
    /// results from before rounds).
    #[serde(default)]
    pub round_ratios: Vec<f64>,
}

/// Rounds of (direct, mounted) that [`mount_overhead`] alternates.
pub const OVERHEAD_ROUNDS: u32 = 3;

/// Measures [`MountOverhead`] for `setup` on `lab.target` in `dir` (each side runs `secs` in
/// total, split over [`OVERHEAD_ROUNDS`] alternating rounds, each on a fresh server and
/// directory).
///
/// # Errors
/// A server, mount or driver failure.
pub fn mount_overhead(
    lab: &Lab,
    setup: &EngineSetup,
    dir: &Path,
    secs: f64,
) -> Result<MountOverhead, String> {
    let slice = secs / f64::from(OVERHEAD_ROUNDS);
    // Acknowledged commands and seconds of one run on `data`.
    let run = |data: &Path| -> Result<(f64, f64), String> {
        let config = lab.config(setup, data);
        let mut spec = ServerSpec::for_config(lab.target, &config).map_err(|e| e.to_string())?;
        spec.log = data.with_extension("log");
        spec.redis_config = lab.redis_config.clone();
        let mut server = ServerProcess::start(&spec).map_err(|e| e.to_string())?;
        let client = server.connect().map_err(|e| e.to_string())?;
        let max = Duration::from_secs_f64(slice * 4.0 + 30.0);
        let began = Instant::now();
        let driver = Driver::start(client, &lab.workload, lab.target, max);
        std::thread::sleep(Duration::from_secs_f64(slice));
        driver.crashing();
        let t_ns = now_ns();
        let ran = began.elapsed().as_secs_f64();
        server.kill9().map_err(|e| e.to_string())?;
        let acked = driver.join()?.into_ack_log().acked_before(t_ns);
        Ok((acked as f64, ran))
    };
    let mkdir = |d: &Path| std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()));
    let (mut direct, mut mounted) = ((0.0, 0.0), (0.0, 0.0));
    let mut round_ratios = Vec::new();
    for round in 0..OVERHEAD_ROUNDS {
        let direct_dir = dir.join(format!("direct-{round}"));
        mkdir(&direct_dir)?;
        let d = run(&direct_dir)?;
        let backing = dir.join(format!("backing-{round}"));
        mkdir(&backing)?;
        let mount = RecordingMount::mount(
            &backing,
            &dir.join(format!("mnt-{round}")),
            &dir.join(format!("io-{round}.trace")),
        )
        .map_err(|e| e.to_string())?;
        let m = run(mount.mountpoint());
        mount.unmount().map_err(|e| e.to_string())?;
        let m = m?;
        round_ratios.push((m.0 / m.1.max(1e-9)) / (d.0 / d.1.max(1e-9)).max(1e-9));
        direct = (direct.0 + d.0, direct.1 + d.1);
        mounted = (mounted.0 + m.0, mounted.1 + m.1);
    }
    let direct = direct.0 / direct.1.max(1e-9);
    let mounted = mounted.0 / mounted.1.max(1e-9);
    Ok(MountOverhead {
        direct_ops_per_sec: direct,
        mounted_ops_per_sec: mounted,
        ratio: mounted / direct.max(1e-9),
        secs,
        round_ratios,
    })
}
