//! What a report is made from: one run directory's bench records, `run.json`, crash lab
//! summaries and recovery measurements, joined by configuration.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::driver::latency::Latency;
use crate::results::json::{BenchRecord, ConfigRecord};
use crate::results::run_dir::RunRecord;

use super::plots::style::plain;
use super::uncertainty::{Interval, SummaryIntervals, ratio_interval, summary_intervals};
/// p50, p99 and max over a configuration's crash states: the crash lab's own summary.
pub use crate::crashlab::loss::Summary as Spread;
use crate::crashlab::loss::{LowerBounds, Summary};

/// How many trials ended in each verdict: the crash lab's own counts.
pub use crate::crashlab::report::VerdictCounts as Verdicts;

/// Contract violations: a count, or the list of them (each counts one).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Violations {
    Count(u64),
    List(Vec<serde_json::Value>),
}

impl Violations {
    /// How many violations there were.
    pub fn count(&self) -> u64 {
        match self {
            Violations::Count(n) => *n,
            Violations::List(l) => l.len() as u64,
        }
    }
}

/// One crash lab summary: a configuration under one fault (`crash-<case>.json`).
/// Unknown fields are ignored; every field here is required.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CrashRecord {
    /// Fault name as in the scenario's crash plan (`kill-9`, `power-loss`, ...).
    pub fault: String,
    pub config: ConfigRecord,
    pub trials: u64,
    /// The engine states crashed in (kept as written; not interpreted).
    pub states: serde_json::Value,
    pub verdicts: Verdicts,
    pub violations: Violations,
    pub lost_acked_ops: Spread,
    pub loss_window_ms: Spread,
    pub lost_bytes: Spread,
    pub states_per_sec: StatesPerSec,
    /// Where crashes were aimed (absent in older results: `steady`).
    #[serde(default)]
    pub phase: Option<String>,
    /// `<fault>-<label>[-during-<phase>][-in-stall]` (absent in older results).
    #[serde(default)]
    pub case: Option<String>,
    /// Image faults: the directory-entry model (absent for other faults).
    #[serde(default)]
    pub dir_model: Option<String>,
    /// `live-copy`: the backup procedure (absent for crashes).
    #[serde(default)]
    pub copy: Option<String>,
    /// RESP targets on the recording filesystem: throughput on the mount against a plain
    /// directory (absent otherwise).
    #[serde(default)]
    pub mount_overhead: Option<crate::crashlab::resp_images::MountOverhead>,
    /// Crash states whose loss window is censored (absent in results older than the mark).
    #[serde(default)]
    pub censored: Option<u64>,
    /// Which loss-window figures are lower bounds (absent in older results).
    #[serde(default)]
    pub loss_window_lower_bound: Option<LowerBounds>,
    /// One row per crash state (absent in hand-made summaries).
    #[serde(default)]
    pub trial_results: Vec<StateRow>,
    /// The trials' acknowledged write commands per second (absent in older results).
    #[serde(default)]
    pub write_ops_per_sec: Option<f64>,
    /// The open-loop target rate and what was achieved; null or absent: flat-out.
    #[serde(default)]
    pub rate: Option<crate::driver::pacing::RateRecord>,
    /// The loss window as the report shows it, computed once by [`LossFigures::of`] when
    /// the record is loaded.
    #[serde(skip)]
    pub window: LossFigures,
}

/// A throughput ratio with its uncertainty, for tables and sentences.
#[derive(Debug, Clone, PartialEq)]
pub struct RatioText {
    /// Three significant digits and the 95% interval when known: `0.0042 [0.0039–0.0045]`.
    pub value: String,
    /// The sample: `n = 98 / 97 intervals`, or why there is no interval.
    pub sample: String,
}

impl RatioText {
    /// `ratio` of `num` to `den` (`None` when there is no ratio). The interval is the
    /// moving-block bootstrap of the two records' per-interval write rates
    /// ([`ratio_interval`]), taken relative to their ratio of mean write rates and applied to
    /// `ratio` (which compares ops/s).
    pub fn of(
        ratio: Option<f64>,
        num: &BenchRecord,
        den: Option<&BenchRecord>,
    ) -> Option<RatioText> {
        let r = ratio?;
        let text = |value: String, sample: &str| RatioText {
            value,
            sample: sample.to_string(),
        };
        let Some(den) = den else {
            return Some(text(plain(r), "one measurement, no interval"));
        };
        if std::ptr::eq(den, num) {
            return Some(text(plain(r), "the baseline itself"));
        }
        let (a, b) = (&num.write_rates, &den.write_rates);
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
        Some(match ratio_interval(a, b).filter(|_| mean(a) > 0.0) {
            Some(i) => {
                let scale = r / (mean(a) / mean(b));
                text(
                    format!(
                        "{} [{}–{}]",
                        plain(r),
                        plain(i.lo * scale),
                        plain(i.hi * scale)
                    ),
                    &format!("n = {} / {} intervals of ~100 ms", a.len(), b.len()),
                )
            }
            None => text(
                plain(r),
                "n = 1 run each, no interval (no per-interval rates recorded)",
            ),
        })
    }

    /// As a table cell: `0.0042 [0.0039–0.0045]; n = 98 / 97 intervals of ~100 ms`, `-`
    /// without a ratio.
    pub fn cell(ratio: Option<f64>, num: &BenchRecord, den: Option<&BenchRecord>) -> String {
        RatioText::of(ratio, num, den)
            .map_or_else(|| "-".into(), |t| format!("{}; {}", t.value, t.sample))
    }
}

/// One figure with `≥` when it is a lower bound and its interval in brackets when known.
pub fn figure(v: f64, lower_bound: bool, interval: Option<Interval>) -> String {
    let ge = if lower_bound { "≥ " } else { "" };
    match interval {
        Some(i) => format!("{ge}{} [{}–{}]", plain(v), plain(i.lo), plain(i.hi)),
        None => format!("{ge}{}", plain(v)),
    }
}

/// The parts of one crash state's row the report reads (`trial_results[]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StateRow {
    /// The trial it belongs to (absent: a trial of its own).
    #[serde(default)]
    pub trial: Option<u64>,
    #[serde(default)]
    pub loss_window_ms: f64,
    /// The censored mark (absent in results older than it).
    #[serde(default)]
    pub censored: Option<bool>,
    #[serde(default)]
    pub recovered_lsn: Option<u64>,
    /// acked(T): the highest LSN acknowledged before the state's crash time (a copy's end).
    #[serde(default)]
    pub acked_lsn: Option<u64>,
    /// The state's verdict (`ok`, `refused`, ...; absent in hand-made summaries).
    #[serde(default)]
    pub verdict: Option<String>,
    /// Why it was refused, what differed, or what recovery cut.
    #[serde(default)]
    pub detail: Option<String>,
    /// `live-copy`: who made the copy (`model`, `twin`, `real-cp`, `real-tar`; absent in
    /// older results and for crashes).
    #[serde(default)]
    pub copied_by: Option<String>,
    /// `live-copy`: the procedure's moment within its trial (a real copy and its twin share
    /// it).
    #[serde(default)]
    pub copy_moment: Option<u32>,
}

impl StateRow {
    /// A copy that restored nothing although commands had been acknowledged before it ended
    /// (for rows without `acked_lsn`: one with a loss window). A copy of a server that had
    /// acknowledged nothing yet is exact, not empty.
    pub fn restored_empty(&self) -> bool {
        self.verdict.as_deref() == Some("ok")
            && self.recovered_lsn == Some(0)
            && self
                .acked_lsn
                .map_or(self.loss_window_ms > 0.0 || self.is_censored(), |a| a > 0)
    }

    /// Whether the window is censored: the row's mark, or for rows older than the mark the
    /// case it always covers, nothing recovered (r = 0) from an empty start with a window.
    pub fn is_censored(&self) -> bool {
        self.censored
            .unwrap_or(self.recovered_lsn == Some(0) && self.loss_window_ms > 0.0)
    }
}

/// A record's loss window as the report shows it: the nearest-rank figures, which of them are
/// lower bounds, their confidence intervals and the sample they come from.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LossFigures {
    pub summary: Summary,
    pub lower_bounds: LowerBounds,
    /// `None` without per-state rows (nothing to resample).
    pub intervals: Option<SummaryIntervals>,
    /// Crash states the figures are over.
    pub states: u64,
    /// Trials those states come from.
    pub trials: u64,
    /// Censored states (`None`: the file records neither marks nor rows).
    pub censored: Option<u64>,
}

impl LossFigures {
    /// The figures as one table cell: `420 [380–470] / 880 [850–950] / ≥ 950 [900–950] ms;
    /// n = 40 states of 10 trials; censored 3/40`. `≥` marks a lower bound (censored windows
    /// at or below it; its interval is then a lower bound too), brackets hold the 95%
    /// bootstrap interval.
    pub fn cell(&self) -> String {
        let s = &self.summary;
        let lb = &self.lower_bounds;
        let iv = self.intervals;
        let figures = format!(
            "{} / {} / {} ms",
            figure(s.p50, lb.p50, iv.map(|i| i.p50)),
            figure(s.p99, lb.p99, iv.map(|i| i.p99)),
            figure(s.max, lb.max, iv.map(|i| i.max)),
        );
        let sample = match self.intervals {
            Some(_) => format!(
                "n = {} states of {} trial{}",
                self.states,
                self.trials,
                if self.trials == 1 { "" } else { "s" }
            ),
            None => format!(
                "n = {} trials, no interval (no per-state rows)",
                self.trials
            ),
        };
        let censored = match self.censored {
            Some(c) if c > 0 => format!("; **censored {c}/{}**", self.states),
            Some(_) => String::new(),
            None => "; censoring not recorded".into(),
        };
        format!("{figures}; {sample}{censored}")
    }

    /// True when the worst figure (max) is only a lower bound.
    pub fn max_is_lower_bound(&self) -> bool {
        self.lower_bounds.max
    }
    /// The figures of `r`: from its per-state rows when it has them (the same estimator as
    /// the crash lab, plus the bootstrap of [`summary_intervals`]), else the summary as
    /// written, without an interval.
    pub fn of(r: &CrashRecord) -> LossFigures {
        if r.trial_results.is_empty() {
            return LossFigures {
                summary: r.loss_window_ms,
                lower_bounds: r.loss_window_lower_bound.unwrap_or_default(),
                intervals: None,
                states: r.trials,
                trials: r.trials,
                censored: r.censored,
            };
        }
        let mut groups: std::collections::BTreeMap<(bool, u64), Vec<f64>> = Default::default();
        for (i, row) in r.trial_results.iter().enumerate() {
            let key = row.trial.map_or((false, i as u64), |t| (true, t));
            groups.entry(key).or_default().push(row.loss_window_ms);
        }
        let trials: Vec<Vec<f64>> = groups.into_values().collect();
        let summary = Summary::of(r.trial_results.iter().map(|t| t.loss_window_ms));
        let censored = r.trial_results.iter().filter(|t| t.is_censored());
        LossFigures {
            summary,
            lower_bounds: LowerBounds::of(&summary, censored.clone().map(|t| t.loss_window_ms)),
            intervals: summary_intervals(&trials),
            states: r.trial_results.len() as u64,
            trials: trials.len() as u64,
            censored: Some(censored.count() as u64),
        }
    }
}

impl CrashRecord {
    /// How the trials were driven, for the crash table: `flat-out, 41.2k writes/s`, or the
    /// target rate with what was achieved (`NOT achieved` when the target could not keep
    /// up).
    pub fn workload_rate(&self) -> String {
        let measured = self
            .write_ops_per_sec
            .filter(|w| *w > 0.0)
            .map(|w| format!("{} writes/s", super::plots::style::si(w)));
        match &self.rate {
            None => match measured {
                Some(m) => format!("flat-out, {m}"),
                None => "flat-out".into(),
            },
            Some(r) => format!(
                "{} ops/s {}: {} of {} writes/s{}",
                super::plots::style::si(r.target_ops_per_sec),
                r.arrivals,
                super::plots::style::si(r.achieved_write_ops_per_sec),
                super::plots::style::si(r.target_write_ops_per_sec),
                if r.achieved {
                    String::new()
                } else {
                    format!(" (**NOT achieved**, {:.0}%)", r.achieved_ratio * 100.0)
                }
            ),
        }
    }

    /// The report's column for this record: the fault, plus where it was aimed (`power-loss
    /// during snapshot`) or that it crashed inside a sync stall (`kill9 in stall`), so such
    /// cases never stand in for the plain fault.
    pub fn column(&self) -> String {
        let mut column = self.fault.clone();
        if let Some(p) = self.phase.as_deref().filter(|p| *p != "steady") {
            column.push_str(&format!(" during {p}"));
        }
        if self
            .case
            .as_deref()
            .is_some_and(|c| c.ends_with("-in-stall"))
        {
            column.push_str(" in stall");
        }
        column
    }
}

/// Crash states verified per second: one figure, or one per trial (as `durlab crash`
/// writes it).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum StatesPerSec {
    One(f64),
    PerTrial(Vec<f64>),
}

impl StatesPerSec {
    /// The figure, or the mean over trials (0 for none).
    pub fn mean(&self) -> f64 {
        match self {
            StatesPerSec::One(v) => *v,
            StatesPerSec::PerTrial(v) if v.is_empty() => 0.0,
            StatesPerSec::PerTrial(v) => v.iter().sum::<f64>() / v.len() as f64,
        }
    }
}

/// One recovery measurement (an element of `recovery.json`): `Engine::open` on a
/// configuration's data directory right after its bench, or on a directory of the recovery
/// sweep (`fill_mb` and `fill_commands` set).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecoveryRecord {
    pub label: String,
    pub config: ConfigRecord,
    /// Bytes of every file in the data directory before opening.
    pub data_bytes: u64,
    /// Log bytes recovery read.
    pub bytes_read: u64,
    pub recovered_lsn: u64,
    pub records_replayed: u64,
    /// Wall-clock time of `Engine::open`, ms.
    pub open_ms: f64,
    /// The engine's own measure of the replay (`RecoveryReport::duration`), ms.
    pub replay_ms: f64,
    /// Recovery sweep only: the step, MiB of log its write commands take.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fill_mb: Option<f64>,
    /// Recovery sweep only: the directory holds write commands 1..=this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fill_commands: Option<u64>,
}

/// The parts of a configuration that crash summaries and bench records are joined on
/// (target × policy × backend × prealloc × persistence; writers are not part of it).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConfigKey {
    /// `engine`, `durlab-server` or `redis`.
    pub target: String,
    pub policy: String,
    pub backend: String,
    pub prealloc: String,
    pub persistence: String,
}

impl ConfigKey {
    /// The key of `c`.
    pub fn of(c: &ConfigRecord) -> ConfigKey {
        ConfigKey {
            target: c.target.clone(),
            policy: c.policy.clone(),
            backend: c.backend.clone(),
            prealloc: c.prealloc.clone(),
            persistence: c.persistence.clone(),
        }
    }
}

/// Everything in one run directory.
#[derive(Debug)]
pub struct RunResults {
    pub dir: PathBuf,
    pub run: RunRecord,
    /// Bench records in `run.configs` order.
    pub benches: Vec<BenchRecord>,
    /// Crash summaries, sorted by file name (backups apart: `backups`).
    pub crashes: Vec<CrashRecord>,
    /// `live-copy` summaries: backups copied from the live directory and restored. Not
    /// crashes: their windows are staleness, which no durability contract bounds, so they stay
    /// out of the crash tables and the recommendation.
    pub backups: Vec<CrashRecord>,
    /// Recovery measurements (empty when `recovery.json` is absent).
    pub recovery: Vec<RecoveryRecord>,
    /// Decoded latency histograms by label.
    pub latencies: BTreeMap<String, Latency>,
    /// The group-commit sweep (`group-commit/`: `always` configurations at several writer
    /// counts), when the run has one.
    pub group_commit: Option<Box<RunResults>>,
}

impl RunResults {
    /// Fault names present in the crash summaries: the crash plan's order first, then others
    /// alphabetically.
    pub fn faults(&self) -> Vec<String> {
        let mut planned: Vec<String> = self
            .run
            .crash
            .as_ref()
            .map(|c| c.faults.iter().map(|f| f.name().to_string()).collect())
            .unwrap_or_default();
        planned.retain(|f| self.crashes.iter().any(|c| &c.fault == f));
        let mut others: Vec<String> = self
            .crashes
            .iter()
            .map(|c| c.fault.clone())
            .filter(|f| !planned.contains(f))
            .collect();
        others.sort();
        others.dedup();
        planned.extend(others);
        planned
    }

    /// The crash summary of `config` under `fault`, if the run has one.
    pub fn crash(&self, config: &ConfigRecord, fault: &str) -> Option<&CrashRecord> {
        let key = ConfigKey::of(config);
        self.crashes
            .iter()
            .find(|c| c.fault == fault && ConfigKey::of(&c.config) == key)
    }

    /// Every crash summary of `config`.
    pub fn crashes_of(&self, config: &ConfigRecord) -> Vec<&CrashRecord> {
        let key = ConfigKey::of(config);
        self.crashes
            .iter()
            .filter(|c| ConfigKey::of(&c.config) == key)
            .collect()
    }

    /// The bench record labelled `label`.
    pub fn bench(&self, label: &str) -> Option<&BenchRecord> {
        self.benches.iter().find(|b| b.label == label)
    }
}

/// A record's configuration for tables and plots: `always / pwrite / none / aof`.
pub fn display_label(b: &BenchRecord) -> String {
    config_label(&b.config)
}

/// A configuration for tables and plots: `always / pwrite / none / aof`, prefixed with the
/// target for `durlab-server`, and `redis-server / always / aof` for Redis.
pub fn config_label(c: &ConfigRecord) -> String {
    let label = format!(
        "{} / {} / {} / {}",
        c.policy, c.backend, c.prealloc, c.persistence
    );
    match c.target.as_str() {
        "engine" => label,
        "redis" => format!("redis-server / {} / {}", c.policy, c.persistence),
        t => format!("{t} / {label}"),
    }
}

/// Indices of the Pareto front of `points` given as (throughput, loss): the points that no
/// other point beats on one axis without losing on the other (higher throughput is better,
/// lower loss is better). Ties are all kept. Ordered by throughput, ascending.
pub fn pareto_front(points: &[(f64, f64)]) -> Vec<usize> {
    let mut front: Vec<usize> = (0..points.len())
        .filter(|&i| {
            let (xi, yi) = points[i];
            !points
                .iter()
                .any(|&(xj, yj)| xj >= xi && yj <= yi && (xj > xi || yj < yi))
        })
        .collect();
    front.sort_by(|&a, &b| points[a].0.total_cmp(&points[b].0));
    front
}

#[cfg(test)]
mod tests {
    #[test]
    fn aimed_and_stalled_cases_are_columns_of_their_own() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/run-a/crash-power-loss-always-pwrite-none-aof.json"
        );
        let mut r: super::CrashRecord =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let plain = r.column();
        assert_eq!(plain, r.fault, "older records have no phase");
        r.phase = Some("steady".into());
        assert_eq!(r.column(), plain);
        r.phase = Some("snapshot".into());
        r.case = Some("power-loss-always-pwrite-none-aof-during-snapshot-in-stall".into());
        assert_eq!(r.column(), format!("{plain} during snapshot in stall"));
    }

    #[test]
    fn pareto_keeps_undominated_points() {
        // (ops/s, loss ms): always 0 ms slow, everysec fast with 900 ms, no faster with 2000 ms,
        // and a dominated point (slower than everysec and losing more).
        let pts = [
            (1000.0, 0.0),
            (50_000.0, 900.0),
            (60_000.0, 2000.0),
            (40_000.0, 1500.0),
        ];
        assert_eq!(super::pareto_front(&pts), vec![0, 1, 2]);
    }
}
