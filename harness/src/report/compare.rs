//! Two runs side by side: per configuration (matched by label) ops/s, p99 latency and the
//! worst loss window per fault, with the ratio B/A, so that an engine change can be judged on
//! the same scenario.

use std::fmt::Write;

use super::model::{RatioText, RunResults, figure};
use super::plots::style;
use crate::results::json::BenchRecord;

/// One configuration in both runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub label: String,
    /// (A, B) ops/s; `None` where that run lacks the configuration.
    pub ops_per_sec: (Option<f64>, Option<f64>),
    pub latency_us_p99: (Option<f64>, Option<f64>),
    /// Per fault: (A, B) worst loss window (max over trials), ms.
    pub loss_window_ms_max: Vec<(String, Option<f64>, Option<f64>)>,
    /// Per fault, as `loss_window_ms_max`: whether A's and B's max is only a lower bound
    /// (censored, docs/design.md "Censoring").
    pub loss_lower_bound: Vec<(bool, bool)>,
    /// The ops/s ratio B/A with its interval and sample ([`RatioText`]).
    pub ops_ratio: String,
}

/// B/A when both exist and A is non-zero.
pub fn ratio(pair: (Option<f64>, Option<f64>)) -> Option<f64> {
    match pair {
        (Some(a), Some(b)) if a != 0.0 => Some(b / a),
        _ => None,
    }
}

/// The rows: configurations of A in order, then those only in B.
pub fn rows(a: &RunResults, b: &RunResults) -> Vec<Row> {
    let mut labels: Vec<&str> = a.benches.iter().map(|r| r.label.as_str()).collect();
    for r in &b.benches {
        if !labels.contains(&r.label.as_str()) {
            labels.push(&r.label);
        }
    }
    let mut faults = a.faults();
    for f in b.faults() {
        if !faults.contains(&f) {
            faults.push(f);
        }
    }
    labels
        .into_iter()
        .map(|label| {
            let (ra, rb) = (a.bench(label), b.bench(label));
            let both = |f: &dyn Fn(&BenchRecord) -> f64| (ra.map(f), rb.map(f));
            let loss = |run: &RunResults, rec: Option<&BenchRecord>, fault: &str| {
                rec.and_then(|x| run.crash(&x.config, fault))
                    .map(|c| c.window.summary.max)
            };
            let lower = |run: &RunResults, rec: Option<&BenchRecord>, fault: &str| {
                rec.and_then(|x| run.crash(&x.config, fault))
                    .is_some_and(|c| c.window.max_is_lower_bound())
            };
            Row {
                label: label.to_string(),
                ops_per_sec: both(&|r| r.ops_per_sec),
                latency_us_p99: both(&|r| r.latency_us.p99),
                loss_window_ms_max: faults
                    .iter()
                    .map(|f| (f.clone(), loss(a, ra, f), loss(b, rb, f)))
                    .collect(),
                loss_lower_bound: faults
                    .iter()
                    .map(|f| (lower(a, ra, f), lower(b, rb, f)))
                    .collect(),
                ops_ratio: match (ra, rb) {
                    (Some(x), Some(y)) => {
                        RatioText::cell(ratio(both(&|r| r.ops_per_sec)), y, Some(x))
                    }
                    _ => "-".into(),
                },
            }
        })
        .collect()
}

fn cell(v: Option<f64>, fmt: impl Fn(f64) -> String) -> String {
    v.map(fmt).unwrap_or_else(|| "-".into())
}

fn ratio_cell(pair: (Option<f64>, Option<f64>)) -> String {
    match (pair, ratio(pair)) {
        (_, Some(r)) => style::plain(r),
        ((Some(a), Some(b)), None) if a == 0.0 && b == 0.0 => "same (0)".into(),
        ((Some(_), Some(_)), None) => "from 0".into(),
        _ => "-".into(),
    }
}

/// The comparison as Markdown: a header naming both runs (with a warning when scenario or
/// machine differ) and one table row per configuration.
pub fn render(a: &RunResults, b: &RunResults) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# Compare: `{}` (A) vs `{}` (B)\n",
        a.run.run_id, b.run.run_id
    );
    let _ = writeln!(
        md,
        "- A: `{}`, scenario `{}`, git `{}`, {}",
        a.dir.display(),
        a.run.scenario,
        a.run.git_revision,
        a.run.machine.cpu_model
    );
    let _ = writeln!(
        md,
        "- B: `{}`, scenario `{}`, git `{}`, {}",
        b.dir.display(),
        b.run.scenario,
        b.run.git_revision,
        b.run.machine.cpu_model
    );
    if a.run.scenario != b.run.scenario {
        md.push_str("- **warning:** the runs are of different scenarios; ratios compare different workloads.\n");
    }
    if a.run.machine.cpu_model != b.run.machine.cpu_model
        || a.run.machine.data_fs != b.run.machine.data_fs
    {
        md.push_str("- **warning:** the runs are from different machines or file systems; ratios mix hardware with engine changes.\n");
    }
    md.push_str(
        "\nRatios are B/A (above 1: B has more ops/s, a higher p99 latency or a larger loss \
         window). Separate runs on a shared machine differ by noise too: treat small ratios \
         near 1 as no change.\n\n",
    );
    let rows = rows(a, b);
    let faults: Vec<String> = rows
        .first()
        .map(|r| r.loss_window_ms_max.iter().map(|l| l.0.clone()).collect())
        .unwrap_or_default();
    let mut head =
        String::from("| configuration | ops/s A | ops/s B | B/A | p99 µs A | p99 µs B | B/A |");
    let mut rule = String::from("|---|---:|---:|---:|---:|---:|---:|");
    for f in &faults {
        let _ = write!(head, " loss {f} max ms A | B | B/A |");
        rule.push_str("---:|---:|---:|");
    }
    let _ = writeln!(md, "{head}\n{rule}");
    for r in &rows {
        let mut line = format!(
            "| {} | {} | {} | {} | {} | {} | {} |",
            r.label,
            cell(r.ops_per_sec.0, |v| format!("{v:.0}")),
            cell(r.ops_per_sec.1, |v| format!("{v:.0}")),
            r.ops_ratio,
            cell(r.latency_us_p99.0, |v| format!("{v:.1}")),
            cell(r.latency_us_p99.1, |v| format!("{v:.1}")),
            ratio_cell(r.latency_us_p99),
        );
        for ((_, la, lb), (ca, cb)) in r.loss_window_ms_max.iter().zip(&r.loss_lower_bound) {
            let ms = |v: Option<f64>, lower: bool| cell(v, |x| figure(x, lower, None));
            // A ratio of lower bounds bounds nothing.
            let ratio = if *ca || *cb {
                "censored".to_string()
            } else {
                ratio_cell((*la, *lb))
            };
            let _ = write!(line, " {} | {} | {ratio} |", ms(*la, *ca), ms(*lb, *cb));
        }
        let _ = writeln!(md, "{line}");
    }
    md
}
