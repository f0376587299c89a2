//! The engine side of a crash trial: writer threads driving the workload through the engine
//! and publishing every acknowledgement to an [`AckPage`]. Runs in the `durlab worker` child
//! process for kill -9, and in process for the fault-injecting backend.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

use durlab_engine::backend::faulty::{Faults, FaultyBackend};
use durlab_engine::backend::recording::RecordingBackend;
use durlab_engine::backend::{self, Backend};
use durlab_engine::{Engine, EngineConfig, Lsn};

use super::ackpage::AckPage;
use super::lying::Lies;
use super::phase::Phase;
use crate::driver::bench::{self, AckHook, Pace, WriterLimits};
use crate::driver::latency::Latency;
use crate::driver::pacing::Rate;
use crate::scenario::model::Persistence;
use crate::workload::Workload;

/// What the writers of one run saw.
#[derive(Debug)]
pub struct WritersResult {
    /// Acknowledgement latency of every command (reads and writes), all writers merged.
    pub latency: Latency,
    /// The first command error, if any (then every writer stopped).
    pub error: Option<durlab_engine::Error>,
}

/// Runs `writers` threads over `engine` (each `bench::drive` with `hook`) flat-out until
/// `run_for` has passed, a command fails, or `hook` declines an acknowledgement.
pub fn run_writers(
    engine: &Engine,
    workload: &Workload,
    writers: u32,
    run_for: Duration,
    hook: &dyn AckHook,
) -> WritersResult {
    run_writers_paced(engine, workload, writers, run_for, hook, None)
}

/// [`run_writers`], open loop at `rate` when given (arrival times seeded with `seed`, shared
/// by the writers: `driver::pacing`).
pub fn run_writers_paced(
    engine: &Engine,
    workload: &Workload,
    writers: u32,
    run_for: Duration,
    hook: &dyn AckHook,
    rate: Option<(Rate, u64)>,
) -> WritersResult {
    let stop = AtomicBool::new(false);
    let start = Instant::now();
    let limits = WriterLimits {
        measure_from: start,
        deadline: Some(start + run_for),
        target_lsn: u64::MAX,
        stop: &stop,
        pace: rate.map(|(rate, seed)| Pace {
            rate,
            streams: writers.max(1),
            seed,
            start,
        }),
    };
    let outcomes: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..writers.max(1))
            .map(|id| s.spawn(move || bench::drive(engine, workload, id, limits, hook)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("writer thread panicked"))
            .collect()
    });
    let mut latency = Latency::new();
    let mut error = None;
    for (r, e) in outcomes {
        latency.merge(&r.latency);
        if error.is_none() {
            error = e;
        }
    }
    WritersResult { latency, error }
}

/// The config's backend (its override, e.g. a recording one, else a real backend of
/// `config.backend`) wrapped in a [`FaultyBackend`], installed as the override; returns the
/// fault controls.
///
/// # Errors
/// When the backend cannot be built (io_uring refused).
pub fn install_faulty(config: &mut EngineConfig) -> durlab_engine::Result<Arc<Faults>> {
    let faulty = FaultyBackend::new(take_backend(config)?);
    let faults = faulty.faults();
    let shared: Arc<dyn Backend> = Arc::new(faulty);
    config.backend_override = Some(shared);
    Ok(faults)
}

/// Takes the backend `config` would use out of it, to wrap: its override (e.g. a recording
/// one), else a real backend of `config.backend`.
///
/// # Errors
/// When the backend cannot be built (io_uring refused).
pub fn take_backend(config: &mut EngineConfig) -> durlab_engine::Result<Arc<dyn Backend>> {
    match config.backend_override.take() {
        Some(b) => Ok(b),
        None => backend::open_backend(config.backend),
    }
}

/// Publishes every save to `page` until `done`: under a churning `phase` it saves (or, in mode
/// `hybrid`, rewrites) back to back, publishing when each began and when it returned durable;
/// otherwise it serves the crash lab's save requests (a backup's safe procedure: one
/// [`Engine::save`], a rewrite in mode `hybrid`, begun after the request and published once
/// durable) and publishes the saves of the engine's own save points as it notices them.
///
/// # Errors
/// The first failed save (the engine's error): the worker then exits, which the lab waiting
/// for its request sees.
fn publish_saves(
    engine: &Engine,
    page: &AckPage,
    phase: Phase,
    done: &AtomicBool,
) -> durlab_engine::Result<()> {
    let mut noticed = engine.last_save_lsn();
    // A churning phase's first save must hold a write: the kill clock starts once a save is
    // durable, and a save of nothing promises nothing (on a loaded machine the writers may not
    // have started yet).
    while phase.churns() && engine.last_lsn() == 0 && !done.load(Relaxed) {
        std::thread::sleep(Duration::from_micros(200));
    }
    while !done.load(Relaxed) {
        if phase.churns() {
            let Some(slot) = page.save_began() else {
                return Ok(()); // out of save records: the promise stays where it is
            };
            let lsn = match phase {
                Phase::Rewrite => engine.rewrite()?.base.lsn,
                _ => engine.save()?.lsn,
            };
            page.save_done(slot, lsn);
        } else {
            let asked = page.save_requests();
            if asked > page.save_requests_served() {
                let slot = page.save_began();
                let lsn = engine.save()?.lsn;
                if let Some(slot) = slot {
                    page.save_done(slot, lsn);
                }
                noticed = noticed.max(lsn);
                // Every request made before this save began is served by it.
                page.serve_save_requests(asked);
                continue;
            }
            let lsn = engine.last_save_lsn();
            if lsn > noticed {
                noticed = lsn;
                page.save_noticed(lsn);
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    Ok(())
}

/// Acknowledgements at full speed before a churning phase's first save, at most (a sixteenth
/// of [`super::ackpage::MIN_CAPACITY_LSNS`]).
const PACE_AFTER_LSNS: u64 = super::ackpage::MIN_CAPACITY_LSNS / 16;

/// The ack page as the writers' hook. Under a churning phase it slows them (1 ms per
/// acknowledgement, past [`PACE_AFTER_LSNS`]) until the first save is durable: the kill
/// clock starts only then, and writers acknowledging at memory speed (mode `snapshot`) would
/// otherwise fill the page while a starved low-priority serializer is still writing.
struct PacedUntilFirstSave<'a> {
    page: &'a AckPage,
    pace: bool,
}

impl AckHook for PacedUntilFirstSave<'_> {
    fn issued(&self, lsn: Lsn) {
        self.page.issued(lsn);
    }

    fn acked(&self, lsn: Lsn) -> bool {
        let more = self.page.acked(lsn);
        if self.pace && lsn > PACE_AFTER_LSNS && self.page.saves_done() == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        more
    }
}

/// What `durlab worker` runs.
#[derive(Debug, Clone)]
pub struct WorkerPlan {
    pub config: EngineConfig,
    pub writers: u32,
    pub ack_page: PathBuf,
    pub capacity_lsns: u64,
    /// The worker exits by itself after this long (the crash lab kills it well before).
    pub max_secs: f64,
    /// Stall the n-th data sync after open for this many ms.
    pub stall: Option<(u64, u64)>,
    /// Record every file operation to this trace (for crash images).
    pub trace: Option<PathBuf>,
    /// `snapshot`/`rewrite`: save back to back in the background while the writers run.
    pub phase: Phase,
    /// TEST ONLY: run the engine over a backend telling these lies (outermost, above the
    /// recording and fault-injecting ones).
    pub lies: Lies,
    /// Open loop at this rate, arrival times seeded with the second; `None`: flat-out.
    pub rate: Option<(Rate, u64)>,
}

/// The worker: creates the ack page, opens the engine (recording a trace if asked), marks the page ready, drives the
/// workload until killed (or `max_secs`).
///
/// # Errors
/// A message naming what failed: the page, the engine's open, a command (the engine's
/// error), or a full ack page.
pub fn run(plan: WorkerPlan, workload: &Workload) -> Result<(), String> {
    let page = AckPage::create(&plan.ack_page, plan.capacity_lsns).map_err(|e| e.to_string())?;
    let mut config = plan.config;
    let dir = config.dir.clone();
    if let Some(trace) = &plan.trace {
        let inner = backend::open_backend(config.backend).map_err(|e| e.to_string())?;
        let recording = RecordingBackend::new(inner, trace).map_err(|e| e.to_string())?;
        config.backend_override = Some(Arc::new(recording));
    }
    let faults = match plan.stall {
        Some(_) => Some(install_faulty(&mut config).map_err(|e| e.to_string())?),
        None => None,
    };
    plan.lies.install(&mut config).map_err(|e| e.to_string())?;
    let (engine, _) = Engine::open(config)
        .map_err(|e| format!("opening the engine in {}: {e}", dir.display()))?;
    if let (Some(f), Some((n, ms))) = (&faults, plan.stall) {
        f.stall_sync(n, Duration::from_millis(ms));
    }
    page.set_ready();
    let done = AtomicBool::new(false);
    let saving = engine.config().persistence != Persistence::Aof;
    let result = std::thread::scope(|s| {
        let (engine, page, done) = (&engine, &page, &done);
        let saver = saving.then(|| s.spawn(move || publish_saves(engine, page, plan.phase, done)));
        if let Some(f) = &faults {
            s.spawn(move || {
                while !done.load(Relaxed) {
                    let t = f.stall_started_ns();
                    if t != 0 {
                        page.set_stall_started(t);
                        return;
                    }
                    std::thread::sleep(Duration::from_micros(500));
                }
            });
        }
        let hook = PacedUntilFirstSave {
            page,
            pace: plan.phase.churns(),
        };
        let r = run_writers_paced(
            engine,
            workload,
            plan.writers,
            Duration::from_secs_f64(plan.max_secs),
            &hook,
            plan.rate,
        );
        done.store(true, Relaxed);
        let saved = saver.map_or(Ok(()), |h| h.join().expect("saver thread panicked"));
        (r, saved)
    });
    let (result, saved) = result;
    if let Some(e) = result.error {
        return Err(format!("a writer failed: {e}"));
    }
    saved.map_err(|e| format!("a background save failed: {e}"))?;
    let full = super::ackpage::AckLog::read_header(&plan.ack_page).map_err(|e| e.to_string())?;
    if full.full_at_lsn != 0 {
        return Err(format!(
            "ack page {} is full: LSN {} does not fit its {} slots; stopped acknowledging (shorten --trial-secs)",
            plan.ack_page.display(),
            full.full_at_lsn,
            page.capacity()
        ));
    }
    Ok(())
}
