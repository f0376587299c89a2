//! The recommendation paragraph: written from the measured numbers only, phrased for an
//! architecture decision record. It never states a loss figure that was not measured: without
//! crash results it says so and recommends nothing about durability.

use super::model::{CrashRecord, RunResults, display_label};
use super::plots::style;
use crate::results::json::BenchRecord;

/// One configuration judged against the loss tolerance.
#[derive(Debug, Clone)]
pub struct Judged<'a> {
    pub bench: &'a BenchRecord,
    pub crashes: Vec<&'a CrashRecord>,
    /// Worst loss window observed over every fault and trial (max of `loss_window_ms.max`).
    pub worst_ms: f64,
    /// Contract violations (divergent and phantom verdicts included), over every fault.
    pub violations: u64,
    /// Faults of the crash plan this configuration has no results for.
    pub untested: Vec<String>,
}

/// What the numbers support.
#[derive(Debug, Clone)]
pub enum Verdict<'a> {
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
                .map(|c| c.loss_window_ms.max)
                .fold(0.0, f64::max);
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
                violations,
                untested,
            })
        })
        .collect()
}

/// Decides what `results` support (see [`Verdict`]). The recommended configuration is the
/// one with the highest throughput among those with no violations whose worst observed loss
/// window is at most the scenario's `loss_tolerance_ms`.
pub fn decide(results: &RunResults) -> Verdict<'_> {
    if results.crashes.is_empty() {
        return Verdict::NoCrashResults;
    }
    let judged = judge(results);
    let Some(tolerance_ms) = results.run.loss_tolerance_ms else {
        return Verdict::NoTolerance { judged };
    };
    let best = judged
        .iter()
        .enumerate()
        .filter(|(_, j)| j.violations == 0 && j.worst_ms <= tolerance_ms as f64)
        .max_by(|a, b| a.1.bench.ops_per_sec.total_cmp(&b.1.bench.ops_per_sec))
        .map(|(i, _)| i);
    match best {
        Some(i) => {
            let mut others = judged;
            let chosen = others.remove(i);
            Verdict::Recommended {
                tolerance_ms,
                chosen,
                others,
            }
        }
        None => Verdict::NoneWithin {
            tolerance_ms,
            judged,
        },
    }
}

/// The label of the recommended configuration, if the numbers support one.
pub fn recommended_label(results: &RunResults) -> Option<String> {
    match decide(results) {
        Verdict::Recommended { chosen, .. } => Some(chosen.bench.label.clone()),
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
            .map(|c| {
                format!(
                    "{} p50 {} / p99 {} / max {} ms",
                    c.fault,
                    style::plain(c.loss_window_ms.p50),
                    style::plain(c.loss_window_ms.p99),
                    style::plain(c.loss_window_ms.max)
                )
            })
            .collect();
        format!(
            "had a worst observed loss window of {} ms ({})",
            style::plain(j.worst_ms),
            per.join("; ")
        )
    }
}

fn ratio_to_off(b: &BenchRecord) -> String {
    b.ratio_to_off
        .map(|r| format!(" ({r:.2}× memory-only)"))
        .unwrap_or_default()
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

fn alternative(j: &Judged, base: &BenchRecord, tolerance_ms: Option<u64>) -> String {
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
        Some(_) => ", within the tolerance".to_string(),
        None => String::new(),
    };
    format!(
        "- `{}`: {} ops/s{}, {delta}; worst loss window {} ms{}{}.",
        display_label(j.bench),
        style::si(j.bench.ops_per_sec),
        ratio_to_off(j.bench),
        style::plain(j.worst_ms),
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
        Verdict::NoCrashResults => {
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
                    ratio_to_off(b),
                    style::plain(b.latency_us.p99)
                ));
            }
        }
        Verdict::NoTolerance { judged } => {
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
                    ratio_to_off(j.bench),
                    loss_text(j),
                    untested_text(j)
                ));
            }
        }
        Verdict::Recommended {
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
                 contract violation: in {context} it sustained {} ops/s{}, p99 latency {} µs, \
                 and {} over {}{}.",
                c.policy,
                c.backend,
                c.prealloc,
                c.persistence,
                style::si(chosen.bench.ops_per_sec),
                ratio_to_off(chosen.bench),
                style::plain(chosen.bench.latency_us.p99),
                loss_text(&chosen),
                trials_text(&chosen),
                untested_text(&chosen),
            ));
            if c.policy == "no" {
                out.push_str(
                    " Caution: `no` has no loss bound of its own. A crash trial runs for a \
                     fraction of a second, so its measured window is capped by the trial; on a \
                     real power loss the kernel may still hold unsynced writes for up to \
                     `vm.dirty_expire_centisecs` + the writeback interval (about 35 s by \
                     default). Prefer `everysec` (bounded at 2 s) unless that risk is accepted.",
                );
            }
            if !others.is_empty() {
                out.push_str(" Alternatives measured in the same run:\n\n");
                for j in &others {
                    out.push_str(&alternative(j, chosen.bench, Some(tolerance_ms)));
                    out.push('\n');
                }
            } else {
                out.push('\n');
            }
        }
        Verdict::NoneWithin {
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
                    ratio_to_off(j.bench),
                    loss_text(j),
                    if j.violations > 0 {
                        format!(", **{} contract violation(s)**", j.violations)
                    } else {
                        String::new()
                    },
                    untested_text(j),
                ));
            }
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
