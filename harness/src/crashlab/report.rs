//! Per configuration × fault summaries: verdict counts, violations, loss window, and the
//! readable table. Every field is documented in docs/results.md ("Crash lab results").

use serde::{Deserialize, Serialize};

use super::faults::StallLatency;
use super::images::DirModel;
use super::loss::{LowerBounds, Summary};
use super::phase::Phase;
use super::verdict::Verdict;
use super::{FaultKind, TrialOutcome};
use crate::driver::pacing::{AckedWrites, Rate, RateRecord};
use crate::results::json::ConfigRecord;

/// How many trials got each verdict (docs/design.md, "Oracle and verdicts"); also what the report
/// reads back.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct VerdictCounts {
    pub ok: u64,
    pub lost_acked: u64,
    pub divergent: u64,
    pub phantom: u64,
    pub refused: u64,
}

impl VerdictCounts {
    pub fn add(&mut self, v: Verdict) {
        match v {
            Verdict::Ok => self.ok += 1,
            Verdict::LostAcked => self.lost_acked += 1,
            Verdict::Divergent => self.divergent += 1,
            Verdict::Phantom => self.phantom += 1,
            Verdict::Refused => self.refused += 1,
        }
    }
}

/// One configuration × fault (`crash-<fault>-<label>.json`, one element of `--json`). `T` is
/// the per-trial record: the crash lab's [`TrialOutcome`], or a RESP target's kill -9 trial.
#[derive(Debug, Clone, Serialize)]
pub struct CrashRecord<T = TrialOutcome> {
    pub fault: String,
    pub config: ConfigRecord,
    pub label: String,
    /// Where the crashes were aimed (`steady`, `snapshot`, `rewrite`).
    pub phase: Phase,
    /// Image faults: the directory-entry model (`pessimistic`, `ext4-ordered`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dir_model: Option<DirModel>,
    /// `live-copy`: the backup procedure (`cp -r of the directory at 100 MiB/s`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub copy: Option<String>,
    /// `<fault>-<label>[-during-<phase>]`: the result file is `crash-<case>.json`.
    pub case: String,
    pub run_id: String,
    pub seed: u64,
    pub trial_secs: f64,
    /// The loss the configuration promises not to exceed under this fault, ms (0: nothing
    /// acknowledged; `null`: no bound), from which the default trial length is derived
    /// (`crashlab::trial`).
    pub loss_bound_ms: Option<u64>,
    /// The trials ran shorter than that default (a user-given `--trial-secs`): windows near or
    /// past the bound may not show.
    pub short_trial: bool,
    /// Trials that ran to a verdict (an image fault judges many crash states per trial).
    pub trials: u64,
    /// Crash states verified: one per trial, or one per crash image for the image faults.
    pub states: u64,
    /// Image faults: states whose image was not byte-identical to an earlier one of its trace
    /// (each recovered on its own); the others shared an earlier image's recovery.
    pub distinct_states: u64,
    pub verdicts: VerdictCounts,
    pub violations: u64,
    /// `lost-acked` trials caused by damage to the last record (not violations).
    pub lost_acked_tail_damage: u64,
    /// Trials whose `everysec` lag was checked (`crashlab::lag`: image faults, `everysec`,
    /// mode `aof`), and those that broke it (each counted once in `violations`).
    pub everysec_lag_trials: u64,
    pub everysec_lag_violations: u64,
    /// Of `everysec_lag_trials`, those whose crash came more than the bound after the last
    /// completed sync began: where a writer ignoring the bound would have been caught.
    pub everysec_lag_crossed: u64,
    pub lost_acked_ops: Summary,
    pub loss_window_ms: Summary,
    /// Crash states whose loss window is censored: it reaches back to the trial's first
    /// acknowledgement, so it is only a lower bound (docs/design.md, "Censoring").
    pub censored: u64,
    /// Which figures of `loss_window_ms` are only lower bounds (censored windows at or below
    /// them).
    pub loss_window_lower_bound: LowerBounds,
    pub lost_bytes: Summary,
    /// Consumer-group workloads: the delivery verdicts added up over the crash states
    /// (`crate::oracle::deliveries`, docs/results.md, "Delivery verdicts"), beside the loss
    /// window that explains them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deliveries: Option<crate::oracle::deliveries::DeliverySummary>,
    /// Per trial: crash states verified per second of recovery + verification.
    pub states_per_sec: Vec<f64>,
    /// Write commands acknowledged before the crashes and the seconds from each trial's start
    /// to its crash, added up over the trials (0 where not measured: the in-process faults).
    pub acked_writes: AckedWrites,
    /// `acked_writes` per second: the trials' throughput, flat-out when `rate` is null.
    pub write_ops_per_sec: f64,
    /// The open-loop target rate the trials ran at, and whether it was achieved
    /// (docs/results.md, "Target rate"); null: flat-out.
    pub rate: Option<RateRecord>,
    /// `fsync-stall` only: acknowledgement latency with and without the stall.
    pub stall: Option<StallLatency>,
    /// RESP targets on the recording filesystem: the server's throughput on the mount
    /// against a plain directory, measured in the same run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mount_overhead: Option<crate::crashlab::resp_images::MountOverhead>,
    /// Trials that could not run, with the reason.
    pub failed_trials: Vec<String>,
    pub trial_results: Vec<T>,
}

impl CrashRecord {
    /// Summarises `trials` of `fault` under `config`.
    pub fn new(
        fault: FaultKind,
        config: ConfigRecord,
        label: String,
        run_id: &str,
        seed: u64,
        trial_secs: f64,
        trials: Vec<TrialOutcome>,
    ) -> CrashRecord {
        let mut verdicts = VerdictCounts::default();
        for t in &trials {
            verdicts.add(t.verdict);
        }
        let window = WindowSummary::of(
            trials
                .iter()
                .map(|t| (t.loss.loss_window_ms, t.loss.censored)),
        );
        CrashRecord {
            fault: fault.name().into(),
            config,
            case: format!("{}-{label}", fault.name()),
            label,
            phase: Phase::Steady,
            dir_model: None,
            copy: None,
            run_id: run_id.into(),
            seed,
            trial_secs,
            loss_bound_ms: None,
            short_trial: false,
            trials: distinct_trials(&trials),
            states: trials.iter().map(|t| t.states).sum(),
            distinct_states: trials
                .iter()
                .filter(|t| !t.shared_recovery)
                .map(|t| t.states)
                .sum(),
            verdicts,
            violations: trials.iter().filter(|t| t.violation).count() as u64,
            lost_acked_tail_damage: trials.iter().filter(|t| t.tail_damage).count() as u64,
            everysec_lag_trials: trials.iter().filter(|t| t.everysec_lag.is_some()).count() as u64,
            everysec_lag_violations: trials
                .iter()
                .filter(|t| {
                    t.everysec_lag
                        .as_ref()
                        .is_some_and(|l| l.violation.is_some())
                })
                .count() as u64,
            everysec_lag_crossed: trials
                .iter()
                .filter(|t| t.everysec_lag.as_ref().is_some_and(|l| l.bound_crossed))
                .count() as u64,
            lost_acked_ops: Summary::of(trials.iter().map(|t| t.loss.lost_acked_ops as f64)),
            loss_window_ms: window.summary,
            censored: window.censored,
            loss_window_lower_bound: window.lower_bounds,
            lost_bytes: Summary::of(trials.iter().map(|t| t.loss.lost_bytes as f64)),
            deliveries: crate::oracle::deliveries::DeliverySummary::of(
                trials.iter().filter_map(|t| t.deliveries.as_ref()),
            ),
            states_per_sec: states_per_sec(&trials),
            acked_writes: trial_writes(&trials),
            write_ops_per_sec: trial_writes(&trials).per_sec(),
            rate: None,
            stall: None,
            mount_overhead: None,
            failed_trials: Vec::new(),
            trial_results: trials,
        }
    }
}

/// The loss windows of a record's crash states summarised with their censoring: the one
/// place every crash record (engine and RESP targets) gets these three fields.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct WindowSummary {
    pub summary: Summary,
    /// States whose window is censored.
    pub censored: u64,
    pub lower_bounds: LowerBounds,
}

impl WindowSummary {
    /// Summarises `(window ms, censored)` per crash state.
    pub fn of(states: impl IntoIterator<Item = (f64, bool)>) -> WindowSummary {
        let states: Vec<(f64, bool)> = states.into_iter().collect();
        let summary = Summary::of(states.iter().map(|s| s.0));
        let censored = states.iter().filter(|s| s.1).map(|s| s.0);
        WindowSummary {
            summary,
            censored: censored.clone().count() as u64,
            lower_bounds: LowerBounds::of(&summary, censored),
        }
    }
}

impl<T> CrashRecord<T> {
    /// Sets [`CrashRecord::rate`] from the trials' rate `rate` (None: flat-out) for a mix whose
    /// commands are writes at `write_fraction`, and says on stderr when it was not achieved.
    pub fn set_rate(&mut self, rate: Option<Rate>, write_fraction: f64) {
        self.rate = rate.map(|r| RateRecord::new(r, write_fraction, self.acked_writes));
        if let Some(w) = self.rate.as_ref().and_then(|r| r.warning.as_ref()) {
            eprintln!("WARNING {}: {w}", self.case);
        }
    }
}

/// The trials' acknowledged writes added up (each trial once, however many crash states it
/// has).
fn trial_writes(outcomes: &[TrialOutcome]) -> AckedWrites {
    let mut per: std::collections::BTreeMap<u64, AckedWrites> = Default::default();
    for t in outcomes {
        per.insert(t.trial, t.trial_acked_writes);
    }
    per.values().fold(AckedWrites::default(), |a, &w| a.plus(w))
}

/// How many distinct trials `outcomes` (one per crash state) come from.
fn distinct_trials(outcomes: &[TrialOutcome]) -> u64 {
    let mut ks: Vec<u64> = outcomes.iter().map(|t| t.trial).collect();
    ks.sort_unstable();
    ks.dedup();
    ks.len() as u64
}

/// Per trial: its crash states over the wall seconds spent building, recovering and
/// verifying them ([`TrialOutcome::state_seconds`]).
fn states_per_sec(outcomes: &[TrialOutcome]) -> Vec<f64> {
    let mut per: std::collections::BTreeMap<u64, (u64, f64)> = Default::default();
    for t in outcomes {
        let e = per.entry(t.trial).or_default();
        e.0 += t.states;
        e.1 += t.state_seconds;
    }
    per.values()
        .map(|&(n, secs)| if secs > 0.0 { n as f64 / secs } else { 0.0 })
        .collect()
}

/// A loss-window figure for the command-line tables: `≥ ` before a lower bound.
fn window_figure(ms: f64, lower_bound: bool) -> String {
    format!("{}{ms:.1} ms", if lower_bound { "≥ " } else { "" })
}

/// The summary table of `records`, one line per record (any target's per-trial type): the
/// same columns under the same headings for `durlab crash` and `durlab kill9`, and a legend
/// saying what each column counts.
pub fn render_table<T>(records: &[CrashRecord<T>]) -> String {
    let mut out = format!(
        "{:<12} {:<44} {:>6} {:>6} {:>5} {:>8} {:>5} {:>5} {:>5} {:>5} {:>12} {:>13} {:>13} {:>9}\n",
        "fault",
        "configuration [phase]",
        "trials",
        "states",
        "ok",
        "lost-ack",
        "div",
        "phan",
        "refus",
        "VIOL",
        "lost ops p99",
        "window p99",
        "window max",
        "censored"
    );
    for r in records {
        let v = &r.verdicts;
        let config = match r.phase {
            Phase::Steady => r.label.clone(),
            p => format!("{} [{p}]", r.label),
        };
        let lb = r.loss_window_lower_bound;
        out.push_str(&format!(
            "{:<12} {:<44} {:>6} {:>6} {:>5} {:>8} {:>5} {:>5} {:>5} {:>5} {:>12.0} {:>13} {:>13} {:>9}\n",
            r.fault,
            config,
            r.trials,
            r.states,
            v.ok,
            v.lost_acked,
            v.divergent,
            v.phantom,
            v.refused,
            r.violations,
            r.lost_acked_ops.p99,
            window_figure(r.loss_window_ms.p99, lb.p99),
            window_figure(r.loss_window_ms.max, lb.max),
            format!("{}/{}", r.censored, r.states)
        ));
        out.push_str(&format!(
            "{:<12} {:<44} {}\n",
            "",
            "",
            rate_line(r.rate.as_ref(), r.write_ops_per_sec)
        ));
        if let Some(d) = &r.deliveries {
            out.push_str(&format!(
                "{:<12} {:<44} deliveries ({} of {} states with anomalies): {} acked then redelivered, {} delivered then lost, {} handed to two consumers, {} last-delivered id regressions\n",
                "", "", d.states_with_anomalies, d.states_judged, d.total.acked_redelivered,
                d.total.delivered_lost, d.total.double_handed, d.total.last_delivered_regressions
            ));
        }
        if r.everysec_lag_trials > 0 {
            out.push_str(&format!(
                "{:<12} {:<44} everysec lag check: {} of {} trials broke it; {} crashed past the bound (docs/design.md, \"The everysec lag\")\n",
                "", "", r.everysec_lag_violations, r.everysec_lag_trials, r.everysec_lag_crossed
            ));
        }
        if let Some(s) = &r.stall {
            out.push_str(&format!(
                "{:<12} {:<44} ack latency p99/max: {:.0}/{:.0} us without, {:.0}/{:.0} us with a {} ms stall{}\n",
                "", "", s.baseline_latency_us.p99, s.baseline_latency_us.max, s.stalled_latency_us.p99,
                s.stalled_latency_us.max, s.stall_ms, if s.stall_fired { "" } else { " (never began)" }
            ));
        }
        for f in &r.failed_trials {
            out.push_str(&format!("  trial failed: {f}\n"));
        }
    }
    out.push_str(
        "trials: runs of the workload; states: crash states judged (one per kill, one per \
         image); ok to VIOL: crash states by verdict, VIOL those breaking the promise; lost ops: \
         acknowledged commands lost; window: loss window, ≥ a lower bound; censored: states \
         whose window reaches the trial's first acknowledgement (docs/design.md, \"Censoring\"); \
         under each line: flat-out or the open-loop target rate, and the write commands \
         acknowledged per second before the crash\n",
    );
    out
}

/// How a record's trials were driven: `flat-out: 41234 writes/s`, or the target rate and
/// what was achieved, with the warning when it was not.
fn rate_line(rate: Option<&RateRecord>, write_ops_per_sec: f64) -> String {
    let measured = if write_ops_per_sec > 0.0 {
        format!("{write_ops_per_sec:.0} writes/s acknowledged")
    } else {
        "writes/s not measured (in-process fault)".to_string()
    };
    match rate {
        None => format!("flat-out: {measured}"),
        Some(r) => format!(
            "open loop at {}: {measured} of {:.0} targeted{}",
            r.describe(),
            r.target_write_ops_per_sec,
            r.warning
                .as_ref()
                .map_or(String::new(), |w| format!("; WARNING {w}"))
        ),
    }
}

/// Violating crash states printed in full per configuration, fault and verdict. An image
/// fault can yield hundreds with one cause (a server refusing every torn image, say); the
/// rest are counted, per verdict so that a rarer one is never hidden behind them, and every
/// one stays in the record's `trial_results`.
pub const VIOLATIONS_SHOWN: usize = 3;

/// Decides which violating states of one configuration and fault are printed in full:
/// the first [`VIOLATIONS_SHOWN`] of each verdict.
#[derive(Debug, Default)]
pub struct ShownViolations {
    seen: std::collections::BTreeMap<Verdict, usize>,
}

impl ShownViolations {
    /// Counts a violating state; true if it is to be printed in full.
    pub fn admit(&mut self, verdict: Verdict) -> bool {
        let n = self.seen.entry(verdict).or_default();
        *n += 1;
        *n <= VIOLATIONS_SHOWN
    }

    /// One line per verdict with states not printed: how many, and where they all are.
    pub fn hidden_lines(&self, fault: impl std::fmt::Display, label: &str, case: &str) -> String {
        let mut out = String::new();
        for (verdict, &n) in &self.seen {
            if n > VIOLATIONS_SHOWN {
                out.push_str(&format!(
                    "VIOLATION {fault} {label}: {} more {verdict} not shown; all {n} are in crash-{case}.json (trial_results)\n",
                    n - VIOLATIONS_SHOWN
                ));
            }
        }
        out
    }
}

/// [`render_table`], then the reproduction lines of the violating states that
/// [`ShownViolations`] admits, per record, and how many more there are.
pub fn render(records: &[CrashRecord]) -> String {
    let mut out = render_table(records);
    for r in records {
        let mut shown = ShownViolations::default();
        for t in r.trial_results.iter().filter(|t| t.violation) {
            if !shown.admit(t.verdict) {
                continue;
            }
            out.push_str(&format!(
                "VIOLATION {} {} trial {}: {} {}\n  reproduce: {}\n",
                r.fault,
                r.label,
                t.trial,
                t.verdict,
                t.detail,
                t.repro.as_deref().unwrap_or("-")
            ));
        }
        out.push_str(&shown.hidden_lines(&r.fault, &r.label, &r.case));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn violations_are_capped_per_verdict_and_the_rest_counted() {
        let mut shown = ShownViolations::default();
        let admitted: Vec<bool> = (0..5).map(|_| shown.admit(Verdict::Refused)).collect();
        assert_eq!(admitted, [true, true, true, false, false]);
        // A rarer verdict after many of another is still printed.
        assert!(shown.admit(Verdict::LostAcked));
        let lines = shown.hidden_lines("torn", "redis-always-aof", "torn-redis-always-aof");
        assert_eq!(
            lines,
            "VIOLATION torn redis-always-aof: 2 more refused not shown; all 5 are in crash-torn-redis-always-aof.json (trial_results)\n"
        );
    }
}
