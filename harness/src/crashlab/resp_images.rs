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
use std::time::Duration;

use durlab_engine::BackendKind;
use durlab_engine::clock::now_ns;

use super::ackpage::AckLog;
use super::backup::{self, ProcedureCopies};
use super::images::copy::Procedure;
use super::phase::Phase;
use super::power;
use super::resp_server::Driving;
use super::runner::{Crashed, FaultRunner, Promise, Recovery, TraceImages, Trial};
use super::{FaultKind, Lab};
use crate::driver::matrix::EngineSetup;
use crate::recfs::RecordingMount;
use crate::resp::Value;
use crate::scenario::model::Persistence;
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
    notes: Vec<String>,
    /// `live-copy`: what the backup procedure copied ([`backup`]).
    copies: ProcedureCopies,
}

/// Mounts the recording filesystem in the trial's directory, runs `lab.target` on it with the
/// workload, and kills it (SIGKILL): at the end of the trial, or with `lab.stall`, a seeded
/// time into a stall of one fsync held by the filesystem for `lab.stall_ms` (armed a seeded
/// time into the trial). Unmounts before returning.
fn run_on_mount(trial: &mut Trial<'_>) -> Result<Mounted, String> {
    let (lab, setup, fault, dir) = (trial.lab, trial.setup, trial.fault, trial.dir.clone());
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
    if stall
        && fault == FaultKind::LiveCopy
        && (lab.real_copies > 0 || lab.copy.procedure != Procedure::Live)
    {
        return Err(
            "--stall ends a live-copy trial inside a held fsync: it takes no procedure but live and no real copies".into(),
        );
    }
    let stall_secs = lab.stall_ms as f64 / 1000.0;
    let trial_secs = trial.plan().secs;
    let max = Duration::from_secs_f64(trial_secs * 4.0 + 2.0 * stall_secs + 30.0);
    let rate = lab.rate_for(fault);
    let driving = Driving::start(lab, &spec, max, rate.map(|r| (r, trial.seed)))?;
    let began_ns = driving.began_ns;
    let churn = lab
        .phase
        .churns()
        .then(|| Churner::start(driving.server(), lab.phase))
        .transpose()?;
    let mut notes = Vec::new();
    let mut copies = ProcedureCopies::default();
    if stall {
        // Armed after a seeded part of the trial; the next fsync of any file is held.
        let arm_after = trial_secs * super::fraction(&mut trial.rng, 0.3, 0.7);
        std::thread::sleep(Duration::from_secs_f64(arm_after));
        mount.stall().arm(Duration::from_millis(lab.stall_ms));
        let deadline = std::time::Instant::now() + Duration::from_secs_f64(trial_secs + 30.0);
        let began_ns = loop {
            if let Some(t) = mount.stall().began_ns() {
                break t;
            }
            if std::time::Instant::now() > deadline {
                let _ = driving.kill();
                return Err("no fsync reached the filesystem after the stall was armed".into());
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        let into_ms = lab.stall_ms as f64 * super::fraction(&mut trial.rng, 0.5, 0.95);
        let at = began_ns + (into_ms * 1e6) as u64;
        std::thread::sleep(Duration::from_nanos(at.saturating_sub(now_ns())));
        notes.push(format!(
            "killed {into_ms:.0} ms into a {} ms stall of an fsync (armed {:.0} ms into the trial)",
            lab.stall_ms,
            arm_after * 1e3
        ));
    } else if fault == FaultKind::LiveCopy {
        let from_secs = trial.plan().crash_from_secs;
        let began = driving.began();
        let mut saver = backup::RespSave::new(&driving, lab.target, setup.persistence);
        let during = backup::during(
            lab,
            &mut saver,
            &root,
            &dir,
            &mut trial.rng,
            began,
            from_secs,
            trial_secs,
        );
        match during {
            Ok(c) => copies = c,
            Err(e) => {
                let _ = driving.kill();
                return Err(e);
            }
        }
    } else {
        std::thread::sleep(Duration::from_secs_f64(trial_secs));
    }
    if let Some(c) = &churn {
        c.crashing();
    }
    let stop = fault == FaultKind::LiveCopy && lab.copy.procedure == Procedure::StopCopyStart;
    let killed = if stop {
        driving.stop(STOP_TIMEOUT).and_then(|s| {
            let how = "stopped cleanly (SHUTDOWN); copied once the server had exited";
            copies = backup::after_stop(lab, &root, &dir, s.t_kill_ns, how)?;
            Ok(s)
        })
    } else {
        driving.kill()
    };
    if let Some(c) = churn {
        notes.push(c.join()?);
    }
    let entries = mount.entries();
    mount.unmount().map_err(|e| e.to_string())?;
    let killed = killed?;
    let acks = killed.acks;
    let t_kill_ns = killed.t_kill_ns;
    let ran_secs = killed.ran_secs;
    let acked = acks.acked_before(t_kill_ns);
    notes.extend(copies.notes.iter().cloned());
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
        notes,
        copies,
    })
}

/// How long a clean stop (stop-copy-start) may take.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

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

/// The runner of `lab.target` on the recording filesystem: for an image fault, every crash
/// image of the mount's trace, each recovered by a fresh server; for kill9 (with `lab.stall`
/// or a phase), the server restarted on what the kill left (the backing directory: the page
/// cache survives), judged against the kill -9 promise at the kill.
#[derive(Debug, Clone, Copy)]
pub struct OnMount;

impl FaultRunner for OnMount {
    type Facts = ();

    fn crash(&self, trial: &mut Trial<'_>) -> Result<(Crashed, ()), String> {
        let m = run_on_mount(trial)?;
        let recovery = if trial.fault == FaultKind::Kill9 {
            let mut spec = m.spec;
            spec.dir = m.backing.clone();
            spec.log = m.backing.with_extension("restart.log");
            Recovery::Server {
                spec,
                promise: Promise::Kill9,
            }
        } else {
            Recovery::Images(TraceImages {
                trace: m.trace,
                root: m.root,
                window: power::CrashWindow {
                    first_cut_ns: power::first_cut_ns(
                        trial.lab,
                        trial.setup,
                        trial.fault,
                        m.began_ns,
                    ),
                    kill_ns: m.t_kill_ns,
                },
                server: Some(m.spec),
                copies: m.copies,
            })
        };
        let crashed = Crashed {
            recovery,
            acks: m.acks,
            t_ns: m.t_kill_ns,
            notes: m.notes,
        };
        Ok((crashed, ()))
    }
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
        let max = Duration::from_secs_f64(slice * 4.0 + 30.0);
        let driving = Driving::start(lab, &spec, max, None)?;
        std::thread::sleep(Duration::from_secs_f64(slice));
        let killed = driving.kill()?;
        Ok((
            killed.acks.acked_before(killed.t_kill_ns) as f64,
            killed.ran_secs,
        ))
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
