//! The recommendation paragraph: written from the measured numbers only, phrased for an
//! architecture decision record. It never states a loss figure that was not measured: without
//! crash results it says so and recommends nothing about durability.

use super::model::{CrashRecord, RatioText, RunResults, display_label, figure};
use super::plots::style;
use crate::results::json::BenchRecord;
use crate::results::ratios;

/// One configuration judged against the loss tolerance.
#[derive(Debug, Clone)]
pub struct Judged<'a> {
    pub bench: &'a BenchRecord,
    pub crashes: Vec<&'a CrashRecord>,
    /// Worst loss window observed over every fault and trial (max of `loss_window_ms.max`).
    pub worst_ms: f64,
    /// Some fault's worst window is censored: `worst_ms` may be only a lower bound, so it can
    /// never count as within a tolerance.
    pub worst_is_lower_bound: bool,
    /// Contract violations (divergent and phantom verdicts included), over every fault.
    pub violations: u64,
    /// Faults of the crash plan this configuration has no results for.
    pub untested: Vec<String>,
}

impl Judged<'_> {
    /// No violation, and a worst loss window known to be at most `tolerance_ms`.
    pub fn within(&self, tolerance_ms: u64) -> bool {
        self.violations == 0 && !self.worst_is_lower_bound && self.worst_ms <= tolerance_ms as f64
    }
}

/// What the numbers support.
#[derive(Debug, Clone)]
pub enum Decision<'a> {
    /// No crash summaries at all: only throughput was measured.
    NoCrashResults,
    /// The scenario sets no `loss_tolerance_ms`.
    NoTolerance { judged: Vec<Judged<'a>> },
    /// The fastest configuration within the tolerance without violations.
    Recommended {
        tolerance_ms: u64,
        chosen: Judged<'a>,
        others: Vec<Judged<'a>>,
    },
    /// None stayed within the tolerance without violations.
    NoneWithin {
        tolerance_ms: u64,
        judged: Vec<Judged<'a>>,
    },
}

/// Judges every crash-tested configuration (the harness's `off` baseline excluded) of
/// `results`.
pub fn judge(results: &RunResults) -> Vec<Judged<'_>> {
    let planned = results.faults();
    results
        .benches
        .iter()
        .filter(|b| !b.config.baseline_only)
        .filter_map(|b| {
            let crashes = results.crashes_of(&b.config);
            if crashes.is_empty() {
                return None;
            }
            let worst_ms = crashes
                .iter()
                .map(|c| c.window.summary.max)
                .fold(0.0, f64::max);
            let worst_is_lower_bound = crashes.iter().any(|c| c.window.max_is_lower_bound());
            // Divergent and phantom verdicts are violations already (counted once).
            let violations = crashes.iter().map(|c| c.violations.count()).sum();
            let untested = planned
                .iter()
                .filter(|f| !crashes.iter().any(|c| &&c.fault == f))
                .cloned()
                .collect();
            Some(Judged {
                bench: b,
                crashes,
                worst_ms,
                worst_is_lower_bound,
                violations,
                untested,
            })
        })
        .collect()
}

/// Decides what `results` support (see [`Decision`]). The recommended configuration is the
/// one with the highest throughput among those with no violations whose worst observed loss
/// window is at most the scenario's `loss_tolerance_ms` and is not censored: a censored
/// window is only a lower bound, so it is never within a tolerance.
pub fn decide(results: &RunResults) -> Decision<'_> {
    if results.crashes.is_empty() {
        return Decision::NoCrashResults;
    }
    let judged = judge(results);
    let Some(tolerance_ms) = results.run.loss_tolerance_ms else {
        return Decision::NoTolerance { judged };
    };
    let best = judged
        .iter()
        .enumerate()
        .filter(|(_, j)| j.within(tolerance_ms))
        .max_by(|a, b| a.1.bench.ops_per_sec.total_cmp(&b.1.bench.ops_per_sec))
        .map(|(i, _)| i);
    match best {
        Some(i) => {
            let mut others = judged;
            let chosen = others.remove(i);
            Decision::Recommended {
                tolerance_ms,
                chosen,
                others,
            }
        }
        None => Decision::NoneWithin {
            tolerance_ms,
            judged,
        },
    }
}

/// The label of the recommended configuration, if the numbers support one.
pub fn recommended_label(results: &RunResults) -> Option<String> {
    match decide(results) {
        Decision::Recommended { chosen, .. } => Some(chosen.bench.label.clone()),
        _ => None,
    }
}

fn trials_text(j: &Judged) -> String {
    let parts: Vec<String> = j
        .crashes
        .iter()
        .map(|c| format!("{} {}", c.trials, c.fault))
        .collect();
    format!("{} trials", parts.join(" and "))
}

fn loss_text(j: &Judged) -> String {
    if j.worst_ms == 0.0 {
        "lost no acknowledged write in any trial (loss window 0 ms)".to_string()
    } else {
        let per: Vec<String> = j
            .crashes
            .iter()
            .map(|c| format!("{} {}", c.fault, c.window.cell()))
            .collect();
        format!(
            "had a worst observed loss window of {}{} ms{} ({})",
            if j.worst_is_lower_bound { "≥ " } else { "" },
            style::plain(j.worst_ms),
            censored_note(j),
            per.join("; ")
        )
    }
}

/// Why a censored worst window says nothing about a tolerance (empty when not censored).
fn censored_note(j: &Judged) -> &'static str {
    if j.worst_is_lower_bound {
        " (censored: only a lower bound, since the window reaches back to its trial's first \
         acknowledgement and the trial was too short to show all of it)"
    } else {
        ""
    }
}

/// The ratio to the memory-only run, with its interval and sample sizes.
fn ratio_to_off(results: &RunResults, b: &BenchRecord) -> String {
    RatioText::of(
        b.ratio_to_off,
        b,
        ratios::off_baseline(&results.benches, &b.config),
    )
    .map(|t| format!(" ({}× memory-only; {})", t.value, t.sample))
    .unwrap_or_default()
}

/// Pairs of configurations whose p50 loss-window intervals overlap under the same fault:
/// the data cannot tell them apart there. One sentence, empty when every pair separates.
fn indistinguishable(judged: &[&Judged]) -> String {
    let mut pairs = Vec::new();
    for (i, a) in judged.iter().enumerate() {
        for b in &judged[i + 1..] {
            for ca in &a.crashes {
                let Some(cb) = b.crashes.iter().find(|cb| cb.fault == ca.fault) else {
                    continue;
                };
                let (Some(ia), Some(ib)) = (ca.window.intervals, cb.window.intervals) else {
                    continue;
                };
                // Two configurations that both lost nothing are equal, not uncertain: the
                // loss text already says so.
                let zero = |i: &super::uncertainty::Interval| i.hi == 0.0;
                if ia.p50.overlaps(&ib.p50) && !(zero(&ia.p50) && zero(&ib.p50)) {
                    let w = |c: &CrashRecord, i| {
                        figure(c.window.summary.p50, c.window.lower_bounds.p50, Some(i))
                    };
                    pairs.push(format!(
                        "`{}` ({} ms) and `{}` ({} ms) under {}",
                        display_label(a.bench),
                        w(ca, ia.p50),
                        display_label(b.bench),
                        w(cb, ib.p50),
                        ca.fault,
                    ));
                }
            }
        }
    }
    if pairs.is_empty() {
        String::new()
    } else {
        format!(
            "\n**Cannot be told apart** on the p50 loss window (their 95% intervals overlap): \
             {}.\n",
            pairs.join("; ")
        )
    }
}

fn untested_text(j: &Judged) -> String {
    let kill9_only = j.crashes.iter().all(|c| c.fault.starts_with("kill"));
    let mut out = String::new();
    if !j.untested.is_empty() {
        out.push_str(&format!(" (not tested under {})", j.untested.join(", ")));
    }
    if kill9_only {
        out.push_str(
            " (kill -9 only: the page cache survives it, so it cannot separate the fsync \
             policies; only power-loss images can)",
        );
    }
    out
}

fn alternative(
    results: &RunResults,
    j: &Judged,
    base: &BenchRecord,
    tolerance_ms: Option<u64>,
) -> String {
    let factor = j.bench.ops_per_sec / base.ops_per_sec;
    let delta = if factor >= 2.0 {
        format!("{factor:.1}× the throughput of the recommendation")
    } else {
        format!(
            "{:+.0}% throughput against the recommendation",
            (factor - 1.0) * 100.0
        )
    };
    let verdict = match tolerance_ms {
        _ if j.violations > 0 => format!(", **{} contract violation(s)**", j.violations),
        Some(t) if j.worst_ms > t as f64 => format!(", beyond the {t} ms tolerance"),
        Some(_) if j.worst_is_lower_bound => {
            ", **censored: not known to be within the tolerance**".to_string()
        }
        Some(_) => ", within the tolerance".to_string(),
        None => String::new(),
    };
    format!(
        "- `{}`: {} ops/s{}, {delta}; worst loss window {}{} ms{}{}{}.",
        display_label(j.bench),
        style::si(j.bench.ops_per_sec),
        ratio_to_off(results, j.bench),
        if j.worst_is_lower_bound { "≥ " } else { "" },
        style::plain(j.worst_ms),
        censored_note(j),
        verdict,
        untested_text(j),
    )
}

/// The recommendation as Markdown (a paragraph and a list of alternatives).
pub fn render(results: &RunResults) -> String {
    let run = &results.run;
    let context = format!(
        "run `{}` of scenario `{}` on {} ({} CPUs, {})",
        run.run_id, run.scenario, run.machine.cpu_model, run.machine.cpu_count, run.machine.data_fs
    );
    let mut out = String::new();
    match decide(results) {
        Decision::NoCrashResults => {
            out.push_str(&format!(
                "**Crash results are missing from this run** (no `crash-*.json` in the run \
                 directory), so no loss window was measured and this report makes no \
                 durability recommendation. The loss promises of each policy are design claims \
                 until the crash lab measures them. What {context} did measure is throughput:\n\n"
            ));
            for b in &results.benches {
                out.push_str(&format!(
                    "- `{}`: {} ops/s{}, p99 latency {} µs.\n",
                    display_label(b),
                    style::si(b.ops_per_sec),
                    ratio_to_off(results, b),
                    style::plain(b.latency_us.p99)
                ));
            }
        }
        Decision::NoTolerance { judged } => {
            out.push_str(&format!(
                "The scenario sets no `loss_tolerance_ms`, so no single configuration is \
                 recommended. Measured in {context} (worst observed loss window over all \
                 faults and trials):\n\n"
            ));
            for j in &judged {
                out.push_str(&format!(
                    "- `{}`: {} ops/s{}, {}{}.\n",
                    display_label(j.bench),
                    style::si(j.bench.ops_per_sec),
                    ratio_to_off(results, j.bench),
                    loss_text(j),
                    untested_text(j)
                ));
            }
            out.push_str(&indistinguishable(&judged.iter().collect::<Vec<_>>()));
        }
        Decision::Recommended {
            tolerance_ms,
            chosen,
            others,
        } => {
            let c = &chosen.bench.config;
            // A RESP target's runs sit next to another server's: name the server chosen.
            let on = match c.target.as_str() {
                "" | "engine" => String::new(),
                t => format!(" on `{t}`"),
            };
            out.push_str(&format!(
                "**Decision:** use `appendfsync {}`{on} (backend `{}`, preallocation `{}`, \
                 persistence `{}`). It is the fastest measured configuration that kept the loss \
                 window within the tolerance of {tolerance_ms} ms in every trial with no \
                 contract violation and no censored window: in {context} it sustained {} ops/s{}, p99 latency {} µs, \
                 and {} over {}{}.",
                c.policy,
                c.backend,
                c.prealloc,
                c.persistence,
                style::si(chosen.bench.ops_per_sec),
                ratio_to_off(results, chosen.bench),
                style::plain(chosen.bench.latency_us.p99),
                loss_text(&chosen),
                trials_text(&chosen),
                untested_text(&chosen),
            ));
            if c.policy == "no" {
                out.push_str(
                    " Caution: `no` has no loss bound of its own. A crash trial's measured \
                     window is capped by the trial's length; on a \
                     real power loss the kernel may still hold unsynced writes for up to \
                     `vm.dirty_expire_centisecs` + the writeback interval (about 35 s by \
                     default). Prefer `everysec` (bounded at 2 s) unless that risk is accepted.",
                );
            }
            if !others.is_empty() {
                out.push_str(" Alternatives measured in the same run:\n\n");
                for j in &others {
                    out.push_str(&alternative(results, j, chosen.bench, Some(tolerance_ms)));
                    out.push('\n');
                }
            } else {
                out.push('\n');
            }
            let all: Vec<&Judged> = std::iter::once(&chosen).chain(&others).collect();
            out.push_str(&indistinguishable(&all));
        }
        Decision::NoneWithin {
            tolerance_ms,
            judged,
        } => {
            out.push_str(&format!(
                "**No measured configuration kept the loss window within {tolerance_ms} ms \
                 without violations** in {context}. Measured:\n\n"
            ));
            for j in &judged {
                out.push_str(&format!(
                    "- `{}`: {} ops/s{}, {}{}{}.\n",
                    display_label(j.bench),
                    style::si(j.bench.ops_per_sec),
                    ratio_to_off(results, j.bench),
                    loss_text(j),
                    if j.violations > 0 {
                        format!(", **{} contract violation(s)**", j.violations)
                    } else {
                        String::new()
                    },
                    untested_text(j),
                ));
            }
            out.push_str(&indistinguishable(&judged.iter().collect::<Vec<_>>()));
        }
    }
    let untested: Vec<String> = results
        .benches
        .iter()
        .filter(|b| !b.config.baseline_only && results.crashes_of(&b.config).is_empty())
        .map(|b| format!("`{}`", display_label(b)))
        .collect();
    if !results.crashes.is_empty() && !untested.is_empty() {
        out.push_str(&format!(
            "\nNot crash-tested, so not judged on loss: {}.\n",
            untested.join(", ")
        ));
    }
    out.push_str(
        "\nThroughput figures come from one run on a shared machine; compare them only as \
         ratios within this run.\n",
    );
    out
}
