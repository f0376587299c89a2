//! The crash lab: crash the engine on purpose, recover, check against the oracle, and measure
//! what was lost (docs/design.md, "Fault model", "Oracle and verdicts", "Loss window").
//!
//! - [`runner`]: the one shape of every trial (set up, run, crash, recover, judge) and the
//!   runner of each fault and target; the runners:
//!   - [`kill9`]: real SIGKILL of the engine's worker at a seeded time (also during a sync
//!     stall);
//!   - [`faults`]: the fault-injecting backend in process: fsync EIO, ENOSPC, short write, and
//!     the latency cost of a sync stall;
//!   - [`damage`]: bit flips and zeroed sectors in synced data;
//!   - [`power`]: the crash images of a killed, recorded worker's trace;
//!   - [`resp_kill9`]: real SIGKILL of a RESP server, restarted on its directory;
//!   - [`resp_images`]: a RESP server on the recording filesystem: its crash images, or kill -9
//!     inside a held fsync.
//! - [`backup`]: backup procedures during a trial (a safe save before copying, a clean
//!   stop) and real copies beside the simulated ones; [`worker_save`]: the safe procedure on
//!   the engine's worker, asked through its ack page.
//! - [`ackpage`]: acknowledgements published to a file-backed page that survives SIGKILL.
//! - [`worker`]: the child process (`durlab worker`) that runs the engine and the workload.
//! - [`resp_server`]: a RESP server driven, killed, restarted and read back.
//! - [`images`]: crash images (power loss, prefix, torn, reorder) and live copies from an I/O
//!   trace.
//! - [`verdict`], [`loss`]: judging one crash; [`lag`]: the `everysec` lag check of a trial;
//!   [`report`]: summaries per configuration × fault.

pub mod ackpage;
pub mod backup;
pub mod bases;
pub mod damage;
pub mod faults;
pub mod images;
pub mod kill9;
pub mod lag;
pub mod loss;
pub mod lying;
pub mod phase;
pub mod power;
pub mod report;
pub mod resp_images;
pub mod resp_kill9;
pub mod resp_server;
pub mod runner;
pub mod trial;
pub mod verdict;
pub mod worker;
pub mod worker_save;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use durlab_engine::{EngineConfig, FsyncPolicy, Lsn};
use rand::RngExt;
use serde::Serialize;

use crate::driver::matrix::EngineSetup;
use crate::driver::pacing::{AckedWrites, Rate};
use crate::oracle::Oracle;
use crate::scenario::model::Persistence;
use crate::servers::Target;
use crate::workload::Workload;
use crate::workload::rng::SplitMix64;
use ackpage::AckLog;
use images::DirModel;
use loss::Loss;
use phase::Phase;
use verdict::Verdict;

/// A fault of the fault model, as named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaultKind {
    Kill9,
    FsyncEio,
    Enospc,
    ShortWrite,
    FsyncStall,
    BitFlip,
    ZeroSector,
    PowerLoss,
    Prefix,
    Torn,
    Reorder,
    /// A backup copied from the live data directory while the workload runs, then restored
    /// (`images::copy`): not a crash of the server, a test of a backup procedure.
    LiveCopy,
}

impl FaultKind {
    /// Every fault, in report order.
    pub const ALL: [FaultKind; 12] = [
        FaultKind::Kill9,
        FaultKind::FsyncEio,
        FaultKind::Enospc,
        FaultKind::ShortWrite,
        FaultKind::FsyncStall,
        FaultKind::BitFlip,
        FaultKind::ZeroSector,
        FaultKind::PowerLoss,
        FaultKind::Prefix,
        FaultKind::Torn,
        FaultKind::Reorder,
        FaultKind::LiveCopy,
    ];

    /// The name used on the command line and in result files.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Kill9 => "kill9",
            FaultKind::FsyncEio => "fsync-eio",
            FaultKind::Enospc => "enospc",
            FaultKind::ShortWrite => "short-write",
            FaultKind::FsyncStall => "fsync-stall",
            FaultKind::BitFlip => "bitflip",
            FaultKind::ZeroSector => "zero-sector",
            FaultKind::PowerLoss => "power-loss",
            FaultKind::Prefix => "prefix",
            FaultKind::Torn => "torn",
            FaultKind::Reorder => "reorder",
            FaultKind::LiveCopy => "live-copy",
        }
    }

    /// Faults that damage data that was already synced (media errors).
    pub fn damages_synced_data(self) -> bool {
        matches!(self, FaultKind::BitFlip | FaultKind::ZeroSector)
    }

    /// Faults where refusing to recover (naming file and offset) is an acceptable outcome:
    /// damage to synced data, and a live copy, whose refusal is a finding about the backup
    /// procedure (reported as such), not a broken promise of the server.
    pub fn may_refuse(self) -> bool {
        self.damages_synced_data() || self == FaultKind::LiveCopy
    }

    /// Whether trials of this fault run on `target` ([`runner::run_trial`]): every fault on
    /// the engine; on a RESP server only those acting outside its process (kill9 and the image
    /// faults), since the others need the engine's backend in the harness's hands.
    pub fn runs_on(self, target: Target) -> bool {
        !target.is_resp() || self == FaultKind::Kill9 || self.needs_images()
    }

    /// Faults built from crash images of an I/O trace (another part of the crash lab).
    pub fn needs_images(self) -> bool {
        matches!(
            self,
            FaultKind::PowerLoss
                | FaultKind::Prefix
                | FaultKind::Torn
                | FaultKind::Reorder
                | FaultKind::LiveCopy
        )
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for FaultKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        // Also the spellings of scenario files' `[crash] faults`.
        let alias = match s {
            "kill-9" => "kill9",
            "bit-flip" => "bitflip",
            "zeroed-sector" => "zero-sector",
            "torn-write" => "torn",
            other => other,
        };
        FaultKind::ALL
            .into_iter()
            .find(|f| f.name() == alias)
            .ok_or_else(|| {
                let names: Vec<_> = FaultKind::ALL.iter().map(|f| f.name()).collect();
                format!("unknown fault '{s}': expected one of {}", names.join(", "))
            })
    }
}

/// Everything every trial of a run shares.
#[derive(Debug, Clone)]
pub struct Lab {
    /// The scenario argument as given (for the worker and reproduction lines).
    pub scenario_arg: Option<String>,
    pub workload: Workload,
    /// What recovered states are checked against: `workload`, except in tests of the checker.
    pub oracle: Oracle,
    /// Log bytes of `workload`'s commands (for lost bytes).
    pub record_bytes: loss::RecordBytes,
    /// Seed of the command sequence and of every trial's derived seed.
    pub seed: u64,
    pub writers: u32,
    /// Length of one run before its crash as the user gave it (`--trial-secs`, `[crash]
    /// trial_secs`); `None`: each configuration's default ([`Lab::trial`]).
    pub trial_secs: Option<f64>,
    /// Length of the injected sync stall (`fsync-stall`, and `stall`).
    pub stall_ms: u64,
    /// kill9 and image faults: crash inside a sync stall of `stall_ms`.
    pub stall: bool,
    /// The scenario's snapshot save points.
    pub save_points: Vec<(u64, u64)>,
    /// Image faults: spread crash states per trace.
    pub states: usize,
    /// Image faults: count old unsynced data as written back.
    pub writeback: bool,
    /// Test only: run the engine's trials over a [`lying::LyingBackend`] telling these lies
    /// (recovery and judging never lie).
    pub lies: lying::Lies,
    /// Where crashes are aimed (the worker saves or rewrites back to back for `snapshot` and
    /// `rewrite`).
    pub phase: Phase,
    /// Image faults: when directory entries are durable.
    pub dir_model: DirModel,
    /// `live-copy`: how the backup is copied.
    pub copy: images::copy::CopyProcedure,
    /// `live-copy`: real copies (`cp -r`, `tar`, or a named-path list's `cp`
    /// lines) per trial, judged beside the simulated copies of the same moments ([`backup`]).
    pub real_copies: u32,
    /// Test only (`--broken-copy-before-save-done`): the safe procedure copies as soon as it
    /// has asked for the save or rewrite, before it finished ([`backup::during`]).
    pub copy_before_save_done: bool,
    /// Where trial directories go.
    pub work: PathBuf,
    /// Image faults: where crash images are built (see [`images::scratch`]); `None`: inside
    /// each trial's directory.
    pub image_root: Option<PathBuf>,
    /// Keep every trial directory (else only violating ones).
    pub keep_all: bool,
    /// Redis target: further redis-server settings (`[matrix] redis_config`).
    pub redis_config: Vec<(String, String)>,
    /// Judge against this policy's promise instead of each configuration's own.
    pub contract: Option<FsyncPolicy>,
    /// What runs: the engine in a worker process, or a RESP server (image faults run it on
    /// the recording filesystem, [`resp_images`]).
    pub target: Target,
    /// Open-loop target rate of the workload (`--rate`, the scenario's `[workload] rate`);
    /// `None`: flat-out. See [`Lab::rate_for`].
    pub rate: Option<Rate>,
}

impl Lab {
    /// The engine configuration of `setup` on `dir` (honest: a trial installs [`Lab::lies`]
    /// itself).
    pub fn config(&self, setup: &EngineSetup, dir: &Path) -> EngineConfig {
        setup.engine_config(dir, &self.save_points)
    }

    /// `setup` with the policy whose promise it is judged against (`contract`, else its own).
    pub fn contract_setup(&self, setup: &EngineSetup) -> EngineSetup {
        let mut s = *setup;
        if let Some(p) = self.contract {
            s.policy = p;
        }
        s
    }

    /// `<fault>-<label>`, plus `-<procedure>` for a `live-copy` procedure other than `live`,
    /// `-during-<phase>` when aimed at a phase and `-in-stall` when
    /// crashing inside a sync stall: names the case's directory and result file.
    pub fn case_name(&self, fault: FaultKind, setup: &EngineSetup) -> String {
        let mut name = format!("{}-{}", fault.name(), self.target.label(setup));
        if fault == FaultKind::LiveCopy && self.copy.procedure != images::copy::Procedure::Live {
            name.push_str(&format!("-{}", self.copy.procedure));
        }
        if self.phase != Phase::Steady {
            name.push_str(&format!("-during-{}", self.phase));
        }
        if self.stalls(fault) && fault != FaultKind::FsyncStall {
            name.push_str("-in-stall");
        }
        name
    }

    /// How long trials of `setup` under `fault` run and when they crash ([`trial::plan`]).
    pub fn trial(&self, fault: FaultKind, setup: &EngineSetup) -> trial::TrialPlan {
        let bounds = trial::Bounds::of(&self.config(setup, Path::new(".")), self.writeback);
        trial::plan(setup, fault, bounds, self.trial_secs)
    }

    /// The rate trials of `fault` run at: [`Lab::rate`] where the workload runs in a worker
    /// process or against a RESP server (kill -9, `fsync-stall`, the image faults). The
    /// in-process backend faults and media damage run flat-out: their fault positions are
    /// drawn over the bytes a flat-out trial writes.
    pub fn rate_for(&self, fault: FaultKind) -> Option<Rate> {
        let paced =
            matches!(fault, FaultKind::Kill9 | FaultKind::FsyncStall) || fault.needs_images();
        self.rate.filter(|_| paced)
    }

    /// Whether trials of `fault` crash inside an injected sync stall.
    pub fn stalls(&self, fault: FaultKind) -> bool {
        fault == FaultKind::FsyncStall
            || (self.stall && (fault == FaultKind::Kill9 || fault.needs_images()))
    }

    /// Where the trials of `fault` × `setup` go.
    pub fn case_dir(&self, fault: FaultKind, setup: &EngineSetup) -> PathBuf {
        self.work.join(self.case_name(fault, setup))
    }

    /// The directory of trial `k` of `setup` under `fault` (created empty).
    ///
    /// # Errors
    /// When it cannot be created.
    pub fn trial_dir(
        &self,
        fault: FaultKind,
        setup: &EngineSetup,
        k: u64,
    ) -> std::io::Result<PathBuf> {
        let dir = self.case_dir(fault, setup).join(format!("trial-{k}"));
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        std::fs::create_dir_all(&dir)?;
        Ok(dir)
    }
}

/// The seed of trial `k`: a pure function of (seed, k), so `--trial K` repeats it exactly.
pub fn trial_seed(seed: u64, k: u64) -> u64 {
    let mut sm = SplitMix64::new(seed ^ k.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    sm.random_range(0..u64::MAX)
}

/// A uniform value in [lo, hi) from `rng` (a fraction, or seconds).
pub fn fraction(rng: &mut SplitMix64, lo: f64, hi: f64) -> f64 {
    lo + (hi - lo) * (rng.random_range(0..1_000_000u32) as f64 / 1e6)
}

/// What one trial found.
#[derive(Debug, Clone, Serialize)]
pub struct TrialOutcome {
    pub trial: u64,
    /// The trial's derived seed (kill time, fault position).
    pub trial_seed: u64,
    pub verdict: Verdict,
    pub violation: bool,
    /// acked(T): highest LSN acknowledged before the crash.
    pub acked_lsn: Lsn,
    /// The LSN the policy promised to keep for this fault.
    pub promised_lsn: Lsn,
    /// r: the LSN recovery reached.
    pub recovered_lsn: Lsn,
    /// Highest LSN ever assigned.
    pub issued_lsn: Lsn,
    #[serde(flatten)]
    pub loss: Loss,
    /// Crash states verified in this trial.
    pub states: u64,
    /// Seconds spent recovering and verifying them.
    pub verify_seconds: f64,
    /// Wall seconds this outcome accounts for: its share of the time spent building,
    /// recovering and verifying every crash state of its trace (image faults, judged on
    /// several threads), else `verify_seconds`. States per second = states / these.
    pub state_seconds: f64,
    /// Why (recovery error, state difference, injected fault and the engine's error).
    pub detail: String,
    pub notes: Vec<String>,
    /// True when this state's image was byte-identical to an earlier one of its trace, whose
    /// recovery it shares (image faults; counted as a state, and apart as not distinct).
    #[serde(default)]
    pub shared_recovery: bool,
    /// True when a lost-acked verdict comes from damage to the last records, which a log
    /// without a commit marker cannot tell from a torn append (counted apart, not a violation).
    pub tail_damage: bool,
    /// Write commands acknowledged in this state's trial from the start of the workload to
    /// the crash, and the seconds in between (0 and 0: not measured, for the in-process
    /// faults): what the record's achieved rate adds up.
    #[serde(default)]
    pub trial_acked_writes: AckedWrites,
    /// `everysec` in mode `aof`, image faults: the lag check of this state's trial
    /// ([`lag`]), carried by the state at the end of the trace (one per trial).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub everysec_lag: Option<lag::LagCheck>,
    /// `live-copy` with a procedure's moments or real copies: who made this copy (`model`,
    /// `twin`, `real-cp`, `real-tar`); absent for copies at cut points and for crashes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub copied_by: Option<images::copy::CopiedBy>,
    /// `live-copy`: the procedure's moment this copy was taken at, within its trial: a real
    /// copy and its simulated twin share it ([`backup`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub copy_moment: Option<u32>,
    /// Consumer-group workloads, loaded states: the delivery anomalies of the recovered
    /// state against the acknowledged LSN ([`crate::oracle::deliveries`], docs/results.md).
    /// Beyond what the loss window explains (r >= acked) any of them is a violation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deliveries: Option<crate::oracle::deliveries::DeliveryCounts>,
    /// The command that repeats this trial exactly (violations only).
    pub repro: Option<String>,
    /// Where its data directory and ack page were kept.
    pub kept_dir: Option<String>,
}

/// One crash to judge.
#[derive(Debug, Clone, Copy)]
pub struct Crash<'a> {
    pub fault: FaultKind,
    /// Trial number and its derived seed.
    pub k: u64,
    pub seed: u64,
    /// The acknowledgements published before the crash.
    pub acks: &'a AckLog,
    /// T: when the crash happened ([`durlab_engine::clock::now_ns`]).
    pub t_ns: u64,
}

/// What a crash of the process alone (the page cache survives) must keep at `t_ns`: with a
/// log, every acknowledged command (nothing under policy `off`); snapshot-only persistence,
/// the last snapshot published durable before `t_ns`.
pub fn kill9_promise(setup: &EngineSetup, acks: &AckLog, t_ns: u64) -> Lsn {
    if setup.persistence == Persistence::Snapshot {
        acks.saved_before(t_ns)
    } else if setup.policy == FsyncPolicy::Off {
        0
    } else {
        acks.acked_before(t_ns)
    }
}

/// Write commands acknowledged from `from_ns` (the start of the workload) to the crash at
/// `t_ns`, over that span (nothing when `from_ns` is unknown): a trial's achieved rate.
pub fn acked_writes(acks: &AckLog, from_ns: u64, t_ns: u64) -> AckedWrites {
    if from_ns == 0 {
        return AckedWrites::default();
    }
    AckedWrites {
        writes: acks.acked_before(t_ns),
        secs: t_ns.saturating_sub(from_ns) as f64 / 1e9,
    }
}

/// Where `t_ns` fell relative to the published saves (for trial notes), if any were made.
pub fn phase_note(acks: &AckLog, t_ns: u64) -> Option<String> {
    if acks.saves.is_empty() {
        return None;
    }
    let done = acks
        .saves
        .iter()
        .filter(|s| s.end_ns != 0 && s.end_ns < t_ns)
        .count();
    Some(match acks.save_in_progress(t_ns) {
        Some((i, s)) => format!(
            "crashed during save #{} ({:.1} ms after it began; {done} completed before)",
            i + 1,
            (t_ns - s.begin_ns) as f64 / 1e6
        ),
        None => format!("crashed between saves ({done} completed before)"),
    })
}

impl Lab {
    /// The outcome of `crash`, judged `j` (by any target's recovery) against `promised`,
    /// with its loss window: the one place a judgement becomes a result.
    pub fn outcome(
        &self,
        crash: Crash<'_>,
        promised: Lsn,
        j: verdict::Judgement,
        verify_seconds: f64,
    ) -> TrialOutcome {
        let acked = crash.acks.acked_before(crash.t_ns);
        // A refusal recovers nothing but loses nothing silently either: the data is still on
        // disk and the operator is told where. Loss figures cover loaded states only.
        let loss = if j.verdict == Verdict::Refused {
            Loss::default()
        } else {
            loss::measure(
                crash.acks,
                crash.t_ns,
                acked,
                j.recovered_lsn,
                &self.record_bytes,
            )
        };
        let deliveries = j.deliveries(&self.oracle, acked);
        let mut detail = j.detail;
        let mut violation = j.verdict.is_violation(crash.fault);
        if let Some(d) = deliveries
            && d.any()
        {
            violation |= verdict::deliveries_violate(&d, j.recovered_lsn, acked);
            detail = format!("{detail} {}", d.describe()).trim().to_string();
        }
        TrialOutcome {
            trial: crash.k,
            trial_seed: crash.seed,
            violation,
            verdict: j.verdict,
            acked_lsn: acked,
            promised_lsn: promised,
            recovered_lsn: j.recovered_lsn,
            issued_lsn: crash.acks.highest_issued,
            loss,
            states: 1,
            verify_seconds,
            state_seconds: verify_seconds,
            detail,
            notes: Vec::new(),
            shared_recovery: false,
            tail_damage: false,
            trial_acked_writes: AckedWrites::default(),
            everysec_lag: None,
            copied_by: None,
            copy_moment: None,
            deliveries,
            repro: None,
            kept_dir: None,
        }
    }
}
