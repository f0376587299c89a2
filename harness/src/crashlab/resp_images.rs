//! Image faults (`power-loss`, `prefix`, `torn`, `reorder`) for RESP servers, unmodified: the
//! server (redis-server or `durlab serve`) runs with its data directory on the recording
//! filesystem ([`crate::recfs`]), driven over RESP with LSN markers ([`crate::target::drive`]);
//! it is killed at the end of the trial, the mount's trace gives the crash images exactly as
//! the engine's recording backend does, and a fresh server is started on every image (on
//! every core, in scratch space), read back and judged by the one judge
//! ([`super::verdict::decide`], [`Lab::outcome`]) against the promise of [`power::promise`].
//!
//! A server that will not start on an image is `refused`, with its own log line. Snapshot-only
//! persistence promises nothing here: a RESP server does not say when a save became durable.

use std::path::Path;
use std::time::{Duration, Instant};

use durlab_engine::clock::now_ns;
use durlab_engine::{BackendKind, Persistence};

use super::images::{ImageOptions, crash_images};
use super::power::{self, judge_images};
use super::{Crash, FaultKind, Lab, TrialOutcome, TrialStart};
use crate::driver::matrix::EngineSetup;
use crate::recfs::RecordingMount;
use crate::target::drive::Driver;
use crate::target::kill9::restart_and_judge;
use crate::target::{ServerProcess, ServerSpec};

/// Runs trial `k` of `setup` on `lab.target` under an image fault in `dir`: one outcome per
/// crash image.
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
    let variant =
        power::variant(fault).ok_or_else(|| format!("fault {fault} builds no crash images"))?;
    if setup.backend == BackendKind::Mmap {
        return Err(
            "the mmap backend cannot run on the recording filesystem (its files are opened for direct I/O, which shared writable mappings need to bypass); use pwrite or uring".into(),
        );
    }
    let start = TrialStart::new(lab, k, dir);
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
    let max = Duration::from_secs_f64(lab.trial_secs * 4.0 + 30.0);
    let began = Instant::now();
    let driver = Driver::start(client, &lab.workload, lab.target, max);
    std::thread::sleep(Duration::from_secs_f64(lab.trial_secs));
    driver.crashing();
    let t_kill_ns = now_ns();
    server
        .kill9()
        .map_err(|e| format!("kill -9 of the server: {e}"))?;
    let ran_secs = began.elapsed().as_secs_f64();
    let driven = driver.join();
    let entries = mount.entries();
    mount.unmount().map_err(|e| e.to_string())?;
    let acks = driven?.ack_log();
    let acked = acks.acked_before(t_kill_ns);
    let mut notes = vec![format!(
        "{acked} writes acknowledged in {ran_secs:.1} s through the recording filesystem ({:.0}/s); trace of {entries} entries",
        acked as f64 / ran_secs.max(1e-9)
    )];
    if setup.persistence == Persistence::Snapshot {
        notes.push(
            "snapshot-only persistence: a RESP server does not publish when a save became durable, so nothing is promised".into(),
        );
    }

    let mut opts = ImageOptions::new(variant);
    opts.states = lab.states;
    opts.seed = start.seed;
    opts.writeback = lab.writeback;
    opts.dir_model = lab.dir_model;
    let kept_images = dir.join("images");
    let built_in = match &lab.image_root {
        Some(r) => r.join(format!("{}-trial-{k}", lab.case_name(fault, setup))),
        None => kept_images.clone(),
    };
    let images = crash_images(&trace, &root, &opts, &built_in).map_err(|e| e.to_string())?;
    let started = Instant::now();
    let mut outcomes = judge_images(images, |image| {
        let t_ns = image.cut_ns.saturating_add(1);
        let promised = if setup.persistence == Persistence::Snapshot {
            0
        } else {
            power::promise(lab, setup, &opts, &acks, t_ns)
        };
        let mut spec = spec.clone();
        spec.dir = image.dir.clone();
        spec.log = image.dir.with_extension("log");
        let verify = Instant::now();
        let j = match restart_and_judge(&spec, &lab.oracle, promised, acks.highest_issued) {
            Ok(j) => j,
            Err(e) => super::verdict::refused(format!("reading the restarted server back: {e}")),
        };
        let _ = std::fs::remove_file(&spec.log);
        let mut out = lab.outcome(
            Crash {
                fault,
                k,
                seed: start.seed,
                data: &image.dir,
                acks: &acks,
                t_ns,
                promised: Some(promised),
            },
            promised,
            j,
            verify.elapsed().as_secs_f64(),
        );
        out.notes.push(format!(
            "crash image at trace op {} ({}): {}",
            image.cut_op, image.variant, image.description
        ));
        out.notes.extend(notes.iter().cloned());
        if out.violation {
            out.kept_dir = Some(match image.keep_in(&kept_images) {
                Ok(kept) => kept.display().to_string(),
                Err(e) => format!("not kept: {e}"),
            });
        }
        out
    })?;
    let share = started.elapsed().as_secs_f64() / outcomes.len().max(1) as f64;
    for out in &mut outcomes {
        out.state_seconds = share;
    }
    Ok(outcomes)
}
