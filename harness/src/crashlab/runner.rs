//! The one shape of every crash trial: set up, run, crash, recover, judge (docs/design.md,
//! "Fault model", "Oracle and verdicts").
//!
//! A [`FaultRunner`] does the first three for its fault and target — it sets the trial up, runs
//! the workload and crashes it — and says what the crash left ([`Crashed`]): how it is to be
//! recovered ([`Recovery`]: the engine in this process, a RESP server restarted on the data
//! directory, or every crash image of an I/O trace, by either) and against which promise.
//! [`run_trial`] then recovers and judges it the same way for every fault and target, by the
//! one judge ([`super::verdict::Recovered::judge`], [`Lab::outcome`]), and lets the runner add
//! the checks that are its fault's own ([`FaultRunner::review`]). A new fault or target is a
//! runner in this folder and one arm of [`run_trial`].

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use durlab_engine::{Engine, EngineConfig, Lsn};

use super::ackpage::{self, AckLog, AckPage};
use super::bases::Bases;
use super::images::ImageOptions;
use super::lying::Lies;
use super::phase::Phase;
use super::power::{self, CrashWindow};
use super::verdict::{self, Recovered};
use super::worker::{WritersResult, run_writers};
use super::{
    Crash, FaultKind, Lab, TrialOutcome, backup, damage, faults, kill9, kill9_promise, phase_note,
    resp_images, resp_kill9, resp_server, trial_seed,
};
use crate::driver::matrix::EngineSetup;
use crate::servers::ServerSpec;
use crate::workload::rng::SplitMix64;

/// One trial being run: what it runs, its derived seed and generator, and where its files go.
#[derive(Debug)]
pub struct Trial<'a> {
    pub lab: &'a Lab,
    pub setup: &'a EngineSetup,
    pub fault: FaultKind,
    /// Trial number.
    pub k: u64,
    /// The trial's directory (created empty by [`Lab::trial_dir`]).
    pub dir: PathBuf,
    /// The trial's derived seed ([`trial_seed`]): every seeded choice of the trial.
    pub seed: u64,
    /// A generator seeded with `seed`.
    pub rng: SplitMix64,
    /// The data directory, inside `dir`.
    pub data: PathBuf,
    /// The ack page, inside `dir`.
    pub page: PathBuf,
}

impl<'a> Trial<'a> {
    /// Trial `k` of `setup` under `fault` in `dir`.
    pub fn new(
        lab: &'a Lab,
        setup: &'a EngineSetup,
        fault: FaultKind,
        k: u64,
        dir: &Path,
    ) -> Trial<'a> {
        let seed = trial_seed(lab.seed, k);
        Trial {
            lab,
            setup,
            fault,
            k,
            dir: dir.to_path_buf(),
            seed,
            rng: SplitMix64::new(seed),
            data: dir.join("data"),
            page: dir.join("ack.page"),
        }
    }

    /// The honest engine configuration of the trial on its data directory (a runner installs
    /// [`Lab::lies`] itself; recovery never lies).
    pub fn config(&self) -> EngineConfig {
        self.lab.config(self.setup, &self.data)
    }

    /// How long the trial runs and when it crashes ([`Lab::trial`]).
    pub fn plan(&self) -> super::trial::TrialPlan {
        self.lab.trial(self.fault, self.setup)
    }

    /// For trials run in this process: the trial's configuration with `prepare` applied (a
    /// fault-injecting backend installed, say) and then `lies` (outermost, test only), its ack
    /// page created (sized by [`ackpage::capacity_for`] the trial's length), and the engine
    /// opened on it. Returns what `prepare` returned.
    ///
    /// # Errors
    /// `prepare`'s error, a backend that cannot be built, or a message naming the page or the
    /// data directory that failed.
    pub fn open_in_process<R>(
        &self,
        lies: Lies,
        prepare: impl FnOnce(&mut EngineConfig) -> Result<R, String>,
    ) -> Result<(R, AckPage, Engine), String> {
        let mut config = self.config();
        let prepared = prepare(&mut config)?;
        lies.install(&mut config).map_err(|e| e.to_string())?;
        let page = AckPage::create(&self.page, ackpage::capacity_for(self.plan().secs))
            .map_err(|e| e.to_string())?;
        let (engine, _) = Engine::open(config)
            .map_err(|e| format!("opening the engine in {}: {e}", self.data.display()))?;
        Ok((prepared, page, engine))
    }

    /// Runs the trial's writers ([`Lab::writers`] of [`Lab::workload`]) on `engine` for the
    /// trial's length, publishing to `page` ([`run_writers`]).
    pub fn run_writers(&self, engine: &Engine, page: &AckPage) -> WritersResult {
        run_writers(
            engine,
            &self.lab.workload,
            self.lab.writers,
            Duration::from_secs_f64(self.plan().secs),
            page,
        )
    }
}

/// What one crashed state must keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Promise {
    /// What a crash of the process alone keeps at the crash time ([`kill9_promise`], of the
    /// setup judged against: its own policy or `--contract`).
    Kill9,
    /// Exactly this LSN (media damage after a final sync: what the sync made durable).
    Lsn(Lsn),
}

/// How what a crash left is brought back and verified.
#[derive(Debug, Clone)]
pub enum Recovery {
    /// The engine opens `data` in this process with the trial's honest configuration.
    Engine { data: PathBuf, promise: Promise },
    /// A RESP server is started on `spec.dir` (the data directory as the crash left it) and
    /// read back.
    Server { spec: ServerSpec, promise: Promise },
    /// Every crash image of an I/O trace, judged against what power loss promises at the
    /// image's crash time ([`power::promise`]).
    Images(TraceImages),
}

/// The crash images of one trial's I/O trace: those of `trace` (its paths under `root`) with
/// a cut in `window`, each recovered by the engine, or with `server` by a server started on
/// the image. For `live-copy`, `copies` may name the copies to build instead (a procedure's
/// moments) and real copies to judge beside them ([`backup`]).
#[derive(Debug, Clone)]
pub struct TraceImages {
    pub trace: PathBuf,
    pub root: PathBuf,
    pub window: CrashWindow,
    pub server: Option<ServerSpec>,
    pub copies: backup::ProcedureCopies,
}

/// What a runner's crash left for judging.
#[derive(Debug)]
pub struct Crashed {
    pub recovery: Recovery,
    /// The acknowledgements published before the crash.
    pub acks: AckLog,
    /// T: when the crash happened ([`durlab_engine::clock::now_ns`]); for images, the kill
    /// (the crash time of the image at the end of the trace).
    pub t_ns: u64,
    /// What the run and the crash did (given to every outcome, after the image's note).
    pub notes: Vec<String>,
}

/// One fault on one kind of target: the set-up, run and crash of its trials.
pub trait FaultRunner {
    /// What [`FaultRunner::crash`] learned that [`FaultRunner::review`] needs.
    type Facts;

    /// Sets `trial` up, runs the workload and crashes it.
    ///
    /// # Errors
    /// A message when the trial could not run (a verdict, even a violating one, is not an
    /// error).
    fn crash(&self, trial: &mut Trial<'_>) -> Result<(Crashed, Self::Facts), String>;

    /// The fault's own checks on a judged outcome: they may add notes and mark a violation
    /// the judge's verdict alone does not show. None by default.
    fn review(&self, _trial: &Trial<'_>, _facts: &Self::Facts, _out: &mut TrialOutcome) {}

    /// The fault's own checks over all of a trial's outcomes (in cut order), for checks of
    /// the trial as a whole: by default [`FaultRunner::review`] of each.
    fn review_all(&self, trial: &Trial<'_>, facts: &Self::Facts, outcomes: &mut [TrialOutcome]) {
        for out in outcomes {
            self.review(trial, facts, out);
        }
    }
}

/// Runs trial `k` of `setup` under `fault` on `lab.target` in a fresh trial directory: one
/// outcome per crash state.
///
/// # Errors
/// A message when the trial could not run.
pub fn run_trial(
    lab: &Lab,
    setup: &EngineSetup,
    fault: FaultKind,
    k: u64,
) -> Result<Vec<TrialOutcome>, String> {
    let dir = lab
        .trial_dir(fault, setup, k)
        .map_err(|e| format!("trial directory: {e}"))?;
    let trial = Trial::new(lab, setup, fault, k, &dir);
    if lab.target.is_resp() {
        // kill -9 needs the recording filesystem only to stall an fsync or to aim at a phase.
        return if fault == FaultKind::Kill9 && !lab.stalls(fault) && lab.phase == Phase::Steady {
            run(&resp_kill9::RespKill9, trial)
        } else {
            run(&resp_images::OnMount, trial)
        };
    }
    match fault {
        FaultKind::Kill9 | FaultKind::FsyncStall => run(&kill9::Kill9, trial),
        FaultKind::FsyncEio | FaultKind::Enospc | FaultKind::ShortWrite => {
            run(&faults::BackendFault, trial)
        }
        FaultKind::BitFlip | FaultKind::ZeroSector => run(&damage::MediaDamage, trial),
        FaultKind::PowerLoss
        | FaultKind::Prefix
        | FaultKind::Torn
        | FaultKind::Reorder
        | FaultKind::LiveCopy => run(&power::PowerLoss, trial),
    }
}

/// Whether the trials of `fault` on `lab.target` may run at once ([`run_trials`]): a kill -9
/// trial runs its own process (the engine's worker, or a server on its own port) on its own
/// data directory and ack page, kills and recovers it alone, so trials share nothing but the
/// machine. Not kill -9 of a RESP target on the recording filesystem (`--stall`, a phase),
/// nor the other faults: the image faults already judge each trace on every core, and the
/// in-process faults and `fsync-stall` measure timings that other trials would disturb.
pub fn parallel_trials(lab: &Lab, fault: FaultKind) -> bool {
    fault == FaultKind::Kill9
        && !(lab.target.is_resp() && (lab.stalls(fault) || lab.phase != Phase::Steady))
}

/// Trials run at once, at most ([`run_trials`]).
const MAX_PARALLEL_TRIALS: usize = 8;

/// Runs trials `ks` of `setup` under `fault` ([`run_trial`]): one per core at once where
/// [`parallel_trials`] allows, else one after another. `done` is called on the calling thread
/// as each trial finishes (in the order they finish); the results come back in the order of
/// `ks`. A trial's seed depends only on its number, so the order they run in changes nothing
/// but timing.
pub fn run_trials(
    lab: &Lab,
    setup: &EngineSetup,
    fault: FaultKind,
    ks: &[u64],
    mut done: impl FnMut(u64, &Result<Vec<TrialOutcome>, String>),
) -> Vec<(u64, Result<Vec<TrialOutcome>, String>)> {
    let threads = if parallel_trials(lab, fault) {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, MAX_PARALLEL_TRIALS)
            .min(ks.len())
    } else {
        1
    };
    if threads <= 1 {
        return ks
            .iter()
            .map(|&k| {
                let r = run_trial(lab, setup, fault, k);
                done(k, &r);
                (k, r)
            })
            .collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let (tx, rx) = std::sync::mpsc::channel();
    let mut results = std::thread::scope(|s| {
        for _ in 0..threads {
            let (tx, next) = (tx.clone(), &next);
            s.spawn(move || {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(&k) = ks.get(i) else { break };
                    // The receiver outlives every sender.
                    let _ = tx.send((i, k, run_trial(lab, setup, fault, k)));
                }
            });
        }
        drop(tx);
        let mut results = Vec::with_capacity(ks.len());
        for (i, k, r) in rx {
            done(k, &r);
            results.push((i, k, r));
        }
        results
    });
    results.sort_unstable_by_key(|(i, ..)| *i);
    results.into_iter().map(|(_, k, r)| (k, r)).collect()
}

/// Crash, recover, judge, review.
fn run<R: FaultRunner>(runner: &R, mut trial: Trial<'_>) -> Result<Vec<TrialOutcome>, String> {
    let (crashed, facts) = runner.crash(&mut trial)?;
    let mut outcomes = judge(&trial, crashed)?;
    runner.review_all(&trial, &facts, &mut outcomes);
    Ok(outcomes)
}

/// Recovers what `crashed` left as its [`Recovery`] says and judges every state: the one
/// place crash states of every fault and target become outcomes.
///
/// # Errors
/// For images: a trace that cannot be read, or an image that cannot be built.
fn judge(trial: &Trial<'_>, crashed: Crashed) -> Result<Vec<TrialOutcome>, String> {
    let Trial {
        lab, setup, fault, ..
    } = *trial;
    let acks = &crashed.acks;
    let issued = acks.highest_issued;
    let promised = |promise: Promise, t_ns: u64| match promise {
        Promise::Kill9 => kill9_promise(&lab.contract_setup(setup), acks, t_ns),
        Promise::Lsn(lsn) => lsn,
    };
    let conclude = |t_ns: u64, promised: Lsn, recovered: &Recovered, verify_seconds: f64| {
        let crash = Crash {
            fault,
            k: trial.k,
            seed: trial.seed,
            acks,
            t_ns,
        };
        let mut out = lab.outcome(crash, promised, recovered.judge(promised), verify_seconds);
        out.trial_acked_writes = super::acked_writes(acks, acks.ready_ns, crashed.t_ns);
        out.notes.extend(crashed.notes.iter().cloned());
        out.notes.extend(phase_note(acks, t_ns));
        out
    };
    let timed = |recover: &dyn Fn() -> Recovered| {
        let started = Instant::now();
        let recovered = recover();
        (recovered, started.elapsed().as_secs_f64())
    };
    match &crashed.recovery {
        Recovery::Engine { data, promise } => {
            let (recovered, secs) =
                timed(&|| verdict::recover(lab.config(setup, data), &lab.oracle, issued));
            let promised = promised(*promise, crashed.t_ns);
            Ok(vec![conclude(crashed.t_ns, promised, &recovered, secs)])
        }
        Recovery::Server { spec, promise } => {
            let (recovered, secs) = timed(&|| resp_server::restart_and_recover(spec, lab, issued));
            let promised = promised(*promise, crashed.t_ns);
            Ok(vec![conclude(crashed.t_ns, promised, &recovered, secs)])
        }
        Recovery::Images(TraceImages {
            trace,
            root,
            window,
            server,
            copies,
        }) => {
            let bases = Bases::new();
            let recover = |dir: &Path| match server {
                None => {
                    verdict::recover_from(lab.config(setup, dir), &lab.oracle, issued, Some(&bases))
                }
                Some(spec) => {
                    let mut spec = spec.clone();
                    spec.dir = dir.to_path_buf();
                    spec.log = dir.with_extension("log");
                    let recovered = resp_server::restart_and_recover(&spec, lab, issued);
                    let _ = std::fs::remove_file(&spec.log);
                    recovered
                }
            };
            let plans: Vec<_> = copies.plans.iter().map(|(p, _)| p.clone()).collect();
            let mut outcomes = power::judge_trace(
                trial,
                trace,
                root,
                *window,
                &plans,
                |image| recover(&image.dir),
                |opts: &ImageOptions, recovered, verify_seconds, t_ns| {
                    let promised = power::promise(lab, setup, opts, acks, t_ns);
                    conclude(t_ns, promised, recovered, verify_seconds)
                },
            )?;
            // Real copies: the same recovery and judge, with a copy's empty promise.
            backup::judge_real(
                &mut outcomes,
                copies,
                |dir| timed(&|| recover(dir)),
                |t_ns, r, s| conclude(t_ns, 0, r, s),
            );
            Ok(outcomes)
        }
    }
}
