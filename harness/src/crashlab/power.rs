//! Power loss and its variants (`power-loss`, `prefix`, `torn`, `reorder`): a worker runs
//! with the recording backend (its I/O trace survives SIGKILL) and is killed at a seeded time;
//! then every crash image of its trace ([`super::images`]) is recovered and judged, with
//! acked(T) taken at the image's cut (T = `cut_ns`: acknowledgements published at or before it).
//!
//! The promise after power loss, per policy (DESIGN.md, "Durability contracts"): `always`
//! keeps acked(T); `everysec` keeps what was acknowledged `everysec_max_lag_ms` before T (the
//! engine's documented bound: writers stall once the last completed sync is older); `no` keeps
//! nothing (with `--writeback`: what was acknowledged a dirty-expiry period before T); `off`
//! keeps nothing. Snapshot-only persistence keeps the last snapshot published durable before T.

use std::path::Path;

use durlab_engine::{FsyncPolicy, Lsn};

use super::ackpage::AckLog;
use super::images::{ImageOptions, Variant, crash_images};
use super::{Crash, FaultKind, Lab, TrialOutcome, kill9};
use crate::driver::matrix::EngineSetup;
use crate::scenario::model::Persistence;

/// The image variant of an image fault.
pub fn variant(fault: FaultKind) -> Option<Variant> {
    match fault {
        FaultKind::PowerLoss => Some(Variant::PowerLoss),
        FaultKind::Prefix => Some(Variant::Prefix),
        FaultKind::Torn => Some(Variant::Torn),
        FaultKind::Reorder => Some(Variant::Reorder),
        _ => None,
    }
}

/// What the policy promises to keep after a power loss at `t_ns`.
pub fn promise(
    lab: &Lab,
    setup: &EngineSetup,
    opts: &ImageOptions,
    acks: &AckLog,
    t_ns: u64,
) -> Lsn {
    let before = |lag_ns: u64| acks.acked_before(t_ns.saturating_sub(lag_ns));
    if setup.persistence == Persistence::Snapshot {
        // A save is published after its rename and directory sync: durable on any disk.
        return acks.saved_before(t_ns);
    }
    match setup.policy {
        FsyncPolicy::Always => acks.acked_before(t_ns),
        FsyncPolicy::EverySec => before(
            lab.config(setup, Path::new("."))
                .everysec_max_lag_ms
                .saturating_mul(1_000_000),
        ),
        FsyncPolicy::No if opts.writeback => before(opts.dirty_expire_ns),
        FsyncPolicy::No | FsyncPolicy::Off => 0,
    }
}

/// Runs trial `k` of `setup` under an image fault in `dir`: one outcome per crash image.
///
/// # Errors
/// A message when the worker or the trace fails, or an image cannot be built.
pub fn run_trial(
    lab: &Lab,
    setup: &EngineSetup,
    fault: FaultKind,
    k: u64,
    dir: &Path,
) -> Result<Vec<TrialOutcome>, String> {
    let variant = variant(fault).ok_or_else(|| format!("fault {fault} builds no crash images"))?;
    let trace = dir.join("io.trace");
    let killed = kill9::run_and_kill(lab, setup, fault, k, dir, Some(&trace))?;
    let mut opts = ImageOptions::new(variant);
    opts.states = lab.states;
    opts.seed = killed.seed;
    opts.writeback = lab.writeback;
    opts.dir_model = lab.dir_model;
    let images = crash_images(&trace, &killed.data, &opts, &dir.join("images"))
        .map_err(|e| e.to_string())?;
    let mut outcomes = Vec::new();
    for image in images {
        let image = image.map_err(|e| e.to_string())?;
        // Acknowledgements published at or before the cut happened before the crash.
        let t_ns = image.cut_ns.saturating_add(1);
        let promised = promise(lab, setup, &opts, &killed.acks, t_ns);
        let mut out = lab.judge(
            setup,
            Crash {
                fault,
                k,
                seed: killed.seed,
                data: &image.dir,
                acks: &killed.acks,
                t_ns,
                promised: Some(promised),
            },
        );
        out.notes.push(format!(
            "crash image at trace op {} ({}): {}",
            image.cut_op, image.variant, image.description
        ));
        out.notes.extend(killed.notes.iter().cloned());
        out.notes.extend(super::phase_note(&killed.acks, t_ns));
        if out.violation {
            image.keep();
            out.kept_dir = Some(image.dir.display().to_string());
        }
        outcomes.push(out);
    }
    Ok(outcomes)
}
