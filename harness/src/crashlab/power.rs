//! Power loss and its variants (`power-loss`, `prefix`, `torn`, `reorder`): a worker runs
//! with the recording backend (its I/O trace survives SIGKILL) and is killed at a seeded time;
//! then every crash image of its trace ([`super::images`]) is recovered and judged, with
//! acked(T) taken at the image's cut (T = `cut_ns`: acknowledgements published at or before it).
//!
//! The promise after power loss, per policy (docs/design.md, "Durability contracts"): `always`
//! keeps acked(T); `everysec` keeps what was acknowledged `everysec_max_lag_ms` before T (the
//! engine's documented bound: writers stall once the last completed sync is older); `no` keeps
//! nothing (with `--writeback`: what was acknowledged a dirty-expiry period before T); `off`
//! keeps nothing. Snapshot-only persistence keeps the last snapshot published durable before T.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Instant;

use durlab_engine::{FsyncPolicy, Lsn};

use super::ackpage::AckLog;
use super::images::copy::{CopyPlan, Procedure};
use super::images::{CrashImage, CrashImages, ImageOptions, PreparedImage, Variant, crash_images};
use super::lag::{self, LagCheck};
use super::report::{ShownViolations, VIOLATIONS_SHOWN};
use super::runner::{Crashed, FaultRunner, Recovery, TraceImages, Trial};
use super::verdict::Recovered;
use super::{FaultKind, Lab, TrialOutcome, backup, kill9, worker_save};
use crate::driver::matrix::EngineSetup;
use crate::scenario::model::Persistence;

/// The image variant of an image fault.
pub fn variant(fault: FaultKind) -> Option<Variant> {
    match fault {
        FaultKind::PowerLoss => Some(Variant::PowerLoss),
        FaultKind::Prefix => Some(Variant::Prefix),
        FaultKind::Torn => Some(Variant::Torn),
        FaultKind::Reorder => Some(Variant::Reorder),
        FaultKind::LiveCopy => Some(Variant::LiveCopy),
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
    if opts.variant == Variant::LiveCopy {
        // A copy may be as stale as it likes: how stale is what the trial measures.
        return 0;
    }
    let before = |lag_ns: u64| acks.acked_before(t_ns.saturating_sub(lag_ns));
    let setup = &lab.contract_setup(setup);
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

/// The runner of the image faults on the engine: a recorded worker killed at a seeded time
/// ([`kill9::run_and_kill`]), then every crash image of its trace.
#[derive(Debug, Clone, Copy)]
pub struct PowerLoss;

impl FaultRunner for PowerLoss {
    /// The everysec lag check of the trial's trace, where it applies ([`lag::check_trial`]).
    type Facts = Option<LagCheck>;

    fn crash(&self, trial: &mut Trial<'_>) -> Result<(Crashed, Option<LagCheck>), String> {
        let trace = trial.dir.join("io.trace");
        let procedure = trial.lab.copy.procedure;
        let live_copy = trial.fault == FaultKind::LiveCopy;
        let beside = procedure == Procedure::Safe
            || (procedure == Procedure::Live && trial.lab.real_copies > 0);
        let (killed, during) = if live_copy && beside {
            // The procedure runs beside the worker ([`worker_save`]).
            let (killed, copies) = worker_save::run_procedure(trial, &trace)?;
            (killed, Some(copies))
        } else {
            (kill9::run_and_kill(trial, Some(&trace))?, None)
        };
        let lag = lag::check_trial(trial.lab, trial.setup, &trace, &killed.acks, killed.t_ns)?;
        let window = CrashWindow {
            first_cut_ns: first_cut_ns(trial.lab, trial.setup, trial.fault, killed.acks.ready_ns),
            kill_ns: killed.t_ns,
        };
        let mut notes = killed.notes;
        let copies = if live_copy && procedure == Procedure::StopCopyStart {
            // The worker has no clean stop: it is stopped by the kill, which keeps every
            // acknowledged write in the page cache (kill -9's promise), all a copy reads.
            let how = "the worker was stopped (SIGKILL) and its directory copied after it exited";
            backup::after_stop(trial.lab, &trial.data, &trial.dir, killed.t_ns, how)?
        } else {
            during.unwrap_or_default()
        };
        notes.extend(copies.notes.iter().cloned());
        let crashed = Crashed {
            recovery: Recovery::Images(TraceImages {
                trace,
                root: trial.data.clone(),
                window,
                server: None,
                copies,
            }),
            acks: killed.acks,
            t_ns: killed.t_ns,
            notes,
        };
        Ok((crashed, lag))
    }

    /// The lag check's verdict goes to the state at the end of the trace (the last, in cut
    /// order), the one judged at the kill.
    fn review_all(
        &self,
        _trial: &Trial<'_>,
        lag: &Option<LagCheck>,
        outcomes: &mut [TrialOutcome],
    ) {
        if let Some(check) = lag {
            lag::attach(outcomes, check.clone());
        }
    }
}

/// When the crashes of one trace may fall.
#[derive(Debug, Clone, Copy)]
pub struct CrashWindow {
    /// Cuts before this are not taken (see [`ImageOptions::first_cut_ns`]).
    pub first_cut_ns: u64,
    /// When the traced process was killed: the crash time of the image at the end of the
    /// trace.
    pub kill_ns: u64,
}

/// Where the crash states of a trace of `setup` under `fault` begin: `started_ns` (when the
/// workload started) plus the trial's earliest crash ([`Lab::trial`]), so that states fall
/// where the policy's bound can be reached; anywhere (0) when crashing inside a stall.
pub(crate) fn first_cut_ns(
    lab: &Lab,
    setup: &EngineSetup,
    fault: FaultKind,
    started_ns: u64,
) -> u64 {
    if lab.stalls(fault) || started_ns == 0 {
        return 0;
    }
    started_ns.saturating_add((lab.trial(fault, setup).crash_from_secs * 1e9) as u64)
}

/// The crash time T of `image`, one of `trace_len` entries' images: just after its cut
/// (acknowledgements published at or before the cut happened before the crash), except at
/// the end of the trace, which is the state at the kill: nothing the trace records happened
/// between the last entry and the kill, and every acknowledgement before the kill followed
/// the entries it depended on (entries are appended when their operation returns). So a
/// configuration that writes nothing (policy `off`: an empty trace) is judged at the kill,
/// losing everything it acknowledged, as kill -9 shows.
pub(crate) fn crash_ns(image: &CrashImage, trace_len: u64, kill_ns: u64) -> u64 {
    let after_cut = image.cut_ns.saturating_add(1);
    if image.cut_op == trace_len {
        after_cut.max(kill_ns)
    } else {
        after_cut
    }
}

/// Builds the crash images of `trace` (its paths under `root`) for `trial` (seeded with its
/// seed), with cuts in `window` (for `live-copy` with `copies`: exactly those copies), and
/// judges each on every core: `recover` recovers an image
/// (once per distinct image, see [`judge_images`]), `conclude` judges its recovery at the
/// image's crash time ([`crash_ns`]) given the image options and the seconds recovery took.
/// The one image pipeline of every target ([`super::runner`]).
/// Each outcome gets the image's cut as its first note, a violating image is
/// kept under `dir/images`, and every outcome its share of the wall time spent on the trace's
/// states (built, recovered and verified, on every judging thread: what states per second is
/// computed from).
///
/// # Errors
/// A fault that builds no images, a trace that cannot be read, or an image that cannot be
/// built.
#[allow(clippy::too_many_arguments)]
pub(crate) fn judge_trace(
    trial: &Trial<'_>,
    trace: &Path,
    root: &Path,
    window: CrashWindow,
    copies: &[CopyPlan],
    recover: impl Fn(&CrashImage) -> Recovered + Sync,
    conclude: impl Fn(&ImageOptions, &Recovered, f64, u64) -> TrialOutcome + Sync,
) -> Result<Vec<TrialOutcome>, String> {
    let Trial {
        lab,
        setup,
        fault,
        k,
        seed,
        ..
    } = *trial;
    let dir = &trial.dir;
    let variant = variant(fault).ok_or_else(|| format!("fault {fault} builds no crash images"))?;
    let mut opts = ImageOptions::new(variant);
    opts.states = lab.states;
    opts.seed = seed;
    opts.writeback = lab.writeback;
    opts.dir_model = lab.dir_model;
    opts.first_cut_ns = window.first_cut_ns;
    opts.copy = lab.copy.clone();
    opts.copies = copies.to_vec();
    let kept_images = dir.join("images");
    let built_in = match &lab.image_root {
        Some(r) => r.join(format!("{}-trial-{k}", lab.case_name(fault, setup))),
        None => kept_images.clone(),
    };
    let images = crash_images(trace, root, &opts, &built_in).map_err(|e| e.to_string())?;
    let trace_len = images.trace_len();
    let started = Instant::now();
    let mut outcomes = judge_images(
        images,
        recover,
        |image, recovered, verify_seconds| {
            let t_ns = crash_ns(image, trace_len, window.kill_ns);
            let mut out = conclude(&opts, recovered, verify_seconds, t_ns);
            out.notes.insert(
                0,
                format!(
                    "crash image at trace op {} ({}): {}",
                    image.cut_op, image.variant, image.description
                ),
            );
            out
        },
        &kept_images,
        lab.keep_all,
        judging_threads(lab.target.is_resp()),
    )?;
    let share = started.elapsed().as_secs_f64() / outcomes.len().max(1) as f64;
    for out in &mut outcomes {
        out.state_seconds = share;
    }
    Ok(outcomes)
}

/// Threads that recover and verify images at once (each image is independent: its own
/// directory, its own engine or server; the oracle keeps a cursor per thread): one per core,
/// or for a RESP target [`RESP_THREADS_PER_CORE`] per core, since a thread there spends much
/// of an image waiting for its server (the start, the round trips of the read-back) while
/// the server's process, not the thread, uses the core.
fn judging_threads(resp: bool) -> usize {
    let per_core = if resp { RESP_THREADS_PER_CORE } else { 1 };
    std::thread::available_parallelism()
        .map_or(1, |n| (n.get() * per_core).min(MAX_JUDGING_THREADS))
}

/// Judging threads per core for a RESP target ([`judging_threads`]).
const RESP_THREADS_PER_CORE: usize = 2;

/// At most this many images are judged at once (each holds an engine and an image on disk).
const MAX_JUDGING_THREADS: usize = 8;

/// Judged images waiting for removal, at most (bounds the space they hold).
const IMAGES_AWAITING_REMOVAL: usize = 8;

/// Builds the images and judges them on `threads` threads; returns the outcomes in
/// cut order. Byte-identical images ([`PreparedImage::key`]) are recovered once: the first is
/// written and recovered, the others are judged from its [`Recovered`] (their outcomes say
/// `shared_recovery`), and are written only if they violate, to be kept. Violating images are
/// kept under `kept`: every one with `keep_every` (`--keep`), else the first
/// [`VIOLATIONS_SHOWN`] of each verdict. An image is as large as the server's files (a Redis
/// torn run refused 800 images of 12 MB each), and the trial's trace, kept with them,
/// rebuilds any other: its reproduction line with `--keep` does. A thread of its own removes judged images: when they are on a disk
/// mounted with `discard`, unlinking a synced file waits for the device (3.5 ms measured here).
///
/// # Errors
/// The first image that could not be built (judging stops there).
fn judge_images(
    images: CrashImages,
    recover: impl Fn(&CrashImage) -> Recovered + Sync,
    conclude: impl Fn(&CrashImage, &Recovered, f64) -> TrialOutcome + Sync,
    kept: &Path,
    keep_every: bool,
    threads: usize,
) -> Result<Vec<TrialOutcome>, String> {
    type Shared = Arc<OnceLock<Result<Recovered, String>>>;
    let keeping = Mutex::new(ShownViolations::default());
    let next_index = AtomicUsize::new(0);
    let judged = Mutex::new(Vec::new());
    let failed = Mutex::new(None);
    let recoveries: Mutex<HashMap<u128, Shared>> = Mutex::new(HashMap::new());
    let order = judging_order(&images);
    let next = || {
        let i = *order.get(next_index.fetch_add(1, Ordering::Relaxed))?;
        if lock(&failed).is_some() {
            return None;
        }
        Some((i, images.prepare(i)))
    };
    let fail = |e: String| {
        lock(&failed).get_or_insert(e);
    };
    // One image: its recovery (shared with identical images), its outcome, and the image
    // itself if it was written (for the reaper).
    let judge_one =
        |prepared: PreparedImage<'_>| -> Result<(TrialOutcome, Option<CrashImage>), String> {
            let cell: Shared = lock(&recoveries).entry(prepared.key()).or_default().clone();
            let mut prepared = Some(prepared);
            let mut written = None;
            let verify = Instant::now();
            let recovered = cell.get_or_init(|| {
                let image = prepared
                    .take()
                    .expect("taken once")
                    .write()
                    .map_err(|e| e.to_string())?;
                let r = recover(&image);
                written = Some(image);
                Ok(r)
            });
            let recovered = recovered.as_ref().map_err(Clone::clone)?;
            let verify_seconds = if written.is_some() {
                verify.elapsed().as_secs_f64()
            } else {
                0.0
            };
            // Exactly one is set: the image this thread wrote, or the prepared one whose
            // identical twin was recovered.
            let image = match &written {
                Some(image) => image,
                None => prepared.as_ref().expect("prepared unless written").image(),
            };
            let mut out = conclude(image, recovered, verify_seconds);
            out.shared_recovery = written.is_none();
            if out.violation && !(lock(&keeping).admit(out.verdict) || keep_every) {
                out.kept_dir = Some(format!(
                    "not kept (the first {VIOLATIONS_SHOWN} violating images of each verdict are; the trial's trace and its reproduce line with --keep rebuild this one)"
                ));
            } else if out.violation {
                let image = match written.take() {
                    Some(image) => image,
                    None => prepared
                        .take()
                        .expect("prepared unless written")
                        .write()
                        .map_err(|e| e.to_string())?,
                };
                out.kept_dir = Some(match image.keep_in(kept) {
                    Ok(at) => at.display().to_string(),
                    Err(e) => format!("not kept: {e}"),
                });
                written = Some(image);
            }
            Ok((out, written))
        };
    let (reap, reaper) = std::sync::mpsc::sync_channel::<CrashImage>(IMAGES_AWAITING_REMOVAL);
    let (judge_one, judged_ref, fail) = (&judge_one, &judged, &fail);
    std::thread::scope(|s| {
        s.spawn(move || reaper.into_iter().for_each(drop));
        for _ in 0..threads {
            let reap = reap.clone();
            s.spawn(move || {
                while let Some((i, prepared)) = next() {
                    match judge_one(prepared) {
                        Ok((out, written)) => {
                            lock(judged_ref).push((i, out));
                            if let Some(image) = written {
                                // The reaper only stops once every sender is gone.
                                let _ = reap.send(image);
                            }
                        }
                        Err(e) => fail(e),
                    }
                }
            });
        }
        drop(reap);
    });
    if let Some(e) = failed.into_inner().unwrap_or_else(PoisonError::into_inner) {
        return Err(e);
    }
    let mut judged = judged.into_inner().unwrap_or_else(PoisonError::into_inner);
    judged.sort_unstable_by_key(|(i, _)| *i);
    Ok(judged.into_iter().map(|(_, out)| out).collect())
}

/// The order in which the images are judged (indices into [`CrashImages::cut_ops`]): cut
/// order for power-loss, reorder and live copies, else by [`PreparedImage::size_bytes`],
/// smallest first (cut order among equals). The unsynced tail that survives in a torn or
/// prefix image is seeded per image, so in cut order consecutive images hold a random amount
/// of it and seldom start with what the one before recovered; in size order each mostly does,
/// so its recovery resumes from the state just before it ([`super::bases`]: a short replay, a
/// short comparison, a short step of the oracle) instead of from the last sync. A reorder
/// image's size says nothing of what it recovers: any one surviving sector near the end of
/// the unsynced tail gives it the cut's whole length, while recovery stops at its first hole.
/// So its size would be cut order again, at the price of a walk over every pending write per
/// image (a policy-`no` log's whole tail: an eighth of the judging time, measured). The order
/// decides no verdict: a recovery from a base is the recovery from the start (docs/design.md,
/// "Fault model"), and outcomes come back in cut order. Size order costs one
/// [`CrashImages::size_bytes`] of each image (its choices, without its bytes), on every
/// judging thread.
fn judging_order(images: &CrashImages) -> Vec<usize> {
    let n = images.cut_ops().len();
    let mut order: Vec<usize> = (0..n).collect();
    if matches!(
        images.variant(),
        Variant::PowerLoss | Variant::LiveCopy | Variant::Reorder
    ) {
        return order;
    }
    let next = AtomicUsize::new(0);
    let sizes = Mutex::new(vec![0u64; n]);
    std::thread::scope(|s| {
        for _ in 0..judging_threads(false) {
            s.spawn(|| {
                while let Some(i) = Some(next.fetch_add(1, Ordering::Relaxed)).filter(|&i| i < n) {
                    let size = images.size_bytes(i);
                    lock(&sizes)[i] = size;
                }
            });
        }
    });
    let sizes = sizes.into_inner().unwrap_or_else(PoisonError::into_inner);
    order.sort_by_key(|&i| (sizes[i], i));
    order
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
