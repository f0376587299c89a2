//! `report.md`: the question, machine and probe limits, one table row per configuration,
//! the plots with captions, recovery figures and the recommendation.

use std::fmt::Write;

use super::model::{RatioText, RunResults, config_label, display_label, pareto_front};
use super::plots::group_commit::GroupCommit;
use super::plots::loss_vs_throughput::{DODGE_FACTOR, zero_floor_ms};
use super::plots::style;
use super::recommend;
use crate::probe::PerCase;
use crate::results::json::BenchRecord;
use crate::results::ratios;

/// `-` for a missing figure.
fn opt(v: Option<f64>, f: impl Fn(f64) -> String) -> String {
    v.map(f).unwrap_or_else(|| "-".into())
}

/// The report of `results` as Markdown. Every number is taken from `results`.
pub fn render(results: &RunResults) -> String {
    let mut md = String::new();
    let run = &results.run;
    let _ = writeln!(md, "# {}: durability and throughput report\n", run.scenario);
    let _ = writeln!(md, "**Question:** {}\n", run.question);
    let tolerance = run
        .loss_tolerance_ms
        .map(|t| format!("{t} ms"))
        .unwrap_or_else(|| "not set".into());
    let _ = writeln!(
        md,
        "Run `{}` ({} to {}), seed {}, git `{}`{}; loss tolerance: {tolerance}.\n",
        run.run_id,
        run.started_utc,
        run.finished_utc,
        run.seed,
        run.git_revision,
        if run.git_dirty == Some(true) {
            " (with uncommitted changes)"
        } else {
            ""
        },
    );

    md.push_str("## Recommendation\n\n");
    md.push_str(&recommend::render(results));
    md.push('\n');

    machine(&mut md, results);
    servers(&mut md, results);
    table(&mut md, results);
    crash_details(&mut md, results);
    deliveries(&mut md, results);
    backups(&mut md, results);
    plots(&mut md, results);
    group_commit(&mut md, results);
    recovery(&mut md, results);
    if !run.failures.is_empty() {
        md.push_str("## Failed configurations\n\n");
        for (label, e) in &run.failures {
            let _ = writeln!(md, "- `{label}`: {e}");
        }
        md.push('\n');
    }
    md
}

fn machine(md: &mut String, r: &RunResults) {
    let m = &r.run.machine;
    let w = &r.run.workload;
    md.push_str("## Machine and limits\n\n");
    let _ = writeln!(
        md,
        "- {} ({} CPUs usable), {:.0} MiB memory, kernel {}",
        m.cpu_model, m.cpu_count, m.memory_total_mb, m.kernel
    );
    let mount = m
        .data_mount
        .as_ref()
        .map(|x| format!(" (`{}` on `{}`, {})", x.source, x.target, x.options))
        .unwrap_or_default();
    let _ = writeln!(md, "- data file system: {}{mount}", m.data_fs);
    let length = match (w.duration_secs, w.commands) {
        (Some(d), _) => format!("{d} s per configuration"),
        (None, Some(c)) => format!("{c} write commands per configuration"),
        _ => "unknown length".into(),
    };
    let _ = writeln!(
        md,
        "- workload: {} writers, {length}, {} s warm-up excluded, {:.0}% reads, values {}–{} B; {}",
        w.writers,
        w.warmup_secs,
        w.read_fraction * 100.0,
        w.value_size_min,
        w.value_size_max,
        match &w.crash_rate {
            Some(rate) => format!(
                "benchmarks flat-out, crash trials open loop at {} (see each crash row's `workload`)",
                rate.describe()
            ),
            None => "benchmarks and crash trials flat-out".into(),
        }
    );
    match &r.run.probe {
        None => md.push_str("- device limits: no probe in this run (`--no-probe`)\n"),
        Some(p) => {
            let row = |name: &str, c: &PerCase, f: &dyn Fn(f64) -> String| {
                format!(
                    "| {name} | {} | {} | {} | {} | {} | {} |\n",
                    f(c.append_64),
                    f(c.append_4k),
                    f(c.fallocate_64),
                    f(c.fallocate_4k),
                    f(c.zeroed_64),
                    f(c.zeroed_4k)
                )
            };
            let _ = writeln!(
                md,
                "- device limits (`durlab probe`{}): buffered writes {:.0} MB/s, O_DIRECT {}\n",
                if p.quick { ", quick" } else { "" },
                p.buffered_write_mb_s,
                opt(p.direct_write_mb_s, |v| format!("{v:.0} MB/s"))
            );
            md.push_str("| pwrite+fdatasync | append 64 B | append 4 KiB | fallocate 64 B | fallocate 4 KiB | zeroed 64 B | zeroed 4 KiB |\n");
            md.push_str("|---|---|---|---|---|---|---|\n");
            md.push_str(&row("ops/s", &p.fdatasync_iops, &|v| format!("{v:.0}")));
            md.push_str(&row("p50 µs", &p.fdatasync_p50_us, &|v| format!("{v:.1}")));
            md.push_str(&row("p99 µs", &p.fdatasync_p99_us, &|v| format!("{v:.1}")));
        }
    }
    md.push('\n');
}

/// The servers behind the RESP rows: each label once, with the server's version and, for
/// redis-server, every persistence directive it ran with (results from before these were
/// recorded show what they have).
fn servers(md: &mut String, r: &RunResults) {
    let configs = r
        .benches
        .iter()
        .map(|b| &b.config)
        .chain(r.crashes.iter().map(|c| &c.config));
    let mut seen = std::collections::BTreeMap::new();
    for config in configs {
        if config.target != "engine" {
            seen.entry(config_label(config)).or_insert(config);
        }
    }
    if seen.is_empty() {
        return;
    }
    md.push_str(
        "## Servers

",
    );
    for (label, config) in seen {
        let version = config
            .server_version
            .as_deref()
            .map(|v| format!(" ({v})"))
            .unwrap_or_default();
        let settings = if config.redis_config.is_empty() {
            String::new()
        } else {
            let list: Vec<String> = config
                .redis_config
                .iter()
                .map(|s| format!("`{s}`"))
                .collect();
            format!(": {}", list.join(", "))
        };
        let _ = writeln!(md, "- `{label}`{version}{settings}");
    }
    md.push('\n');
}

/// "Is our backup procedure safe": one row and one sentence per backup procedure and
/// configuration (`live-copy` results); where real copies ran beside the simulated ones, a
/// row for each tool and for their simulated twins, and one sentence comparing them.
fn backups(md: &mut String, r: &RunResults) {
    if r.backups.is_empty() {
        return;
    }
    md.push_str(
        "## Backups copied from the live directory\n\n\
         Each copy was read from the running server's directory (page cache: synced or not) \
         while the workload wrote, file by file at the stated rate, then restored by starting \
         the server on it and checked against the oracle. A copy may be stale but must load a \
         state the server once had. Staleness: the copy's end minus the acknowledgement of \
         the first command it lacks (p50 / p99 / max; ≥: censored, the copy lost everything); \
         *restore empty*: a copy that restored nothing although commands had been acknowledged \
         before it ended (a copy taken before the first acknowledgement restores). \
         Procedures: a copy at any moment (`cp -r`, `tar`, a runbook's `cp` lines); after the \
         server's own save or rewrite, asked for and waited for (`save or rewrite and wait`); \
         after a clean stop (`stop, then`). Rows marked *real* are real `cp -r` and `tar` \
         processes run over the live directory during the trial, each beside its *simulated \
         twin*: the model's copy started at the same moment at the real copy's measured rate.\n\n\
         | configuration | procedure | copies | restore | restore empty | refused | wrong state | staleness |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    let mut sentences = Vec::new();
    for b in &r.backups {
        let rows = &b.trial_results;
        let procedure = b.copy.as_deref().unwrap_or("a copy");
        let label = config_label(&b.config);
        let by = |who: Option<&str>| -> Vec<&super::model::StateRow> {
            rows.iter()
                .filter(|s| match who {
                    None => matches!(s.copied_by.as_deref(), None | Some("model")),
                    Some(w) => s.copied_by.as_deref() == Some(w),
                })
                .collect()
        };
        let own = by(None);
        if !own.is_empty() {
            let c = BackupCounts::of(&own);
            let _ = writeln!(md, "| {label} | {procedure} | {} |", c.cells(&own));
            sentences.push(format!("- `{label}`, {procedure}: {}", c.sentence(&own)));
        }
        for (who, name) in [
            ("real-cp", "*real* `cp -r`"),
            ("real-tar", "*real* `tar`"),
            ("twin", "*simulated twins* of the real copies"),
        ] {
            let group = by(Some(who));
            if !group.is_empty() {
                let c = BackupCounts::of(&group);
                let _ = writeln!(
                    md,
                    "| {label} | {procedure}: {name} | {} |",
                    c.cells(&group)
                );
            }
        }
        if let Some(s) = ground_truth(rows) {
            sentences.push(format!("- `{label}`, {procedure}, ground truth: {s}"));
        }
    }
    md.push('\n');
    for s in sentences {
        md.push_str(&s);
        md.push('\n');
    }
    md.push('\n');
}

/// Verdicts of a set of copies, as the backups table counts them.
struct BackupCounts {
    states: usize,
    restore: usize,
    empty: usize,
    refused: usize,
    wrong: usize,
}

impl BackupCounts {
    fn of(rows: &[&super::model::StateRow]) -> BackupCounts {
        let is = |s: &&&super::model::StateRow, v: &str| s.verdict.as_deref() == Some(v);
        let ok = rows.iter().filter(|s| is(s, "ok")).count();
        let empty = rows.iter().filter(|s| s.restored_empty()).count();
        let refused = rows.iter().filter(|s| is(s, "refused")).count();
        BackupCounts {
            states: rows.len(),
            restore: ok - empty,
            empty,
            refused,
            wrong: rows.len() - ok - refused,
        }
    }

    /// The table's cells after the procedure.
    fn cells(&self, rows: &[&super::model::StateRow]) -> String {
        format!(
            "{} | {} | {} | {} | {} | {}",
            self.states,
            self.restore,
            self.empty,
            self.refused,
            self.wrong,
            staleness(rows)
        )
    }

    /// The procedure's sentence: unsafe (and why), or every copy restored.
    fn sentence(&self, rows: &[&super::model::StateRow]) -> String {
        let states = self.states;
        let mut s = String::new();
        if self.wrong > 0 {
            let _ = write!(
                s,
                "**unsafe**: {} of {states} copies restored a state the server never had.",
                self.wrong
            );
        } else if self.refused > 0 || self.empty > 0 {
            let mut what = Vec::new();
            if self.refused > 0 {
                what.push(format!(
                    "{} of {states} copies do not restore",
                    self.refused
                ));
            }
            if self.empty > 0 {
                what.push(format!(
                    "{} of {states} restore an empty server",
                    self.empty
                ));
            }
            let _ = write!(s, "**unsafe**: {}", what.join(" and "));
            if let Some(why) = rows
                .iter()
                .find(|s| s.verdict.as_deref() == Some("refused"))
                .and_then(|s| s.detail.as_deref())
            {
                // The server's own last words: the end of the detail (a log line).
                let tail: String = why
                    .rsplit(" | ")
                    .next()
                    .unwrap_or(why)
                    .chars()
                    .take(160)
                    .collect();
                let _ = write!(s, " (\"{}\")", tail.trim());
            }
            s.push('.');
        } else {
            let _ = write!(
                s,
                "every one of {states} copies restored; staleness {}.",
                staleness(rows)
            );
        }
        s
    }
}

/// The verdict class a backup row falls in: restore, restore empty, refused or wrong.
fn backup_class(s: &super::model::StateRow) -> &'static str {
    match s.verdict.as_deref() {
        Some("ok") if s.restored_empty() => "restore empty",
        Some("ok") => "restore",
        Some("refused") => "refused",
        _ => "wrong",
    }
}

/// Real copies against their simulated twins (same trial and moment): how many land in the
/// same class, and each side's staleness; `None` without real copies.
fn ground_truth(rows: &[super::model::StateRow]) -> Option<String> {
    let real: Vec<_> = rows
        .iter()
        .filter(|s| matches!(s.copied_by.as_deref(), Some("real-cp" | "real-tar")))
        .collect();
    if real.is_empty() {
        return None;
    }
    let mut agree = 0;
    let mut differ = Vec::new();
    for r in &real {
        let twin = rows.iter().find(|s| {
            s.copied_by.as_deref() == Some("twin")
                && s.trial == r.trial
                && s.copy_moment == r.copy_moment
        });
        match twin {
            Some(t) if backup_class(t) == backup_class(r) => agree += 1,
            Some(t) => differ.push(format!(
                "trial {} moment {}: real {}, simulated {}",
                r.trial.unwrap_or(0),
                r.copy_moment.unwrap_or(0),
                backup_class(r),
                backup_class(t)
            )),
            None => differ.push(format!(
                "trial {} moment {}: no twin",
                r.trial.unwrap_or(0),
                r.copy_moment.unwrap_or(0)
            )),
        }
    }
    let twins: Vec<_> = rows
        .iter()
        .filter(|s| s.copied_by.as_deref() == Some("twin"))
        .collect();
    // The tools that ran (a named-path list is copied by `cp` lines only).
    let tools: Vec<&str> = [("real-cp", "`cp -r`"), ("real-tar", "`tar`")]
        .into_iter()
        .filter(|(who, _)| real.iter().any(|s| s.copied_by.as_deref() == Some(*who)))
        .map(|(_, name)| name)
        .collect();
    let mut s = format!(
        "{agree} of {} real copies ({}) land where their simulated twin does \
         (restore / restore empty / refused / wrong); staleness real {}, simulated {}",
        real.len(),
        tools.join(", "),
        staleness(&real),
        staleness(&twins)
    );
    if !differ.is_empty() {
        let _ = write!(s, "; they differ at {}", differ.join(", "));
    }
    s.push('.');
    Some(s)
}

/// The staleness of the copies that restored (verdict ok): p50 / p99 / max of their windows,
/// with `≥` where a censored window is at or above the figure, and the sample.
fn staleness(rows: &[&super::model::StateRow]) -> String {
    let restored: Vec<_> = rows
        .iter()
        .filter(|s| s.verdict.as_deref() == Some("ok"))
        .collect();
    if restored.is_empty() {
        return "- (no copy restored)".into();
    }
    let sum = crate::crashlab::loss::Summary::of(restored.iter().map(|s| s.loss_window_ms));
    let censored: Vec<f64> = restored
        .iter()
        .filter(|s| s.is_censored())
        .map(|s| s.loss_window_ms)
        .collect();
    let lb = crate::crashlab::loss::LowerBounds::of(&sum, censored.iter().copied());
    // A copy that read the idle directory is as fresh as its end: its window is clock
    // granularity, shown as under a microsecond rather than as noise digits (0.000266 ms).
    let f = |v: f64, lower: bool| match v {
        v if !lower && v > 0.0 && v < 0.001 => "< 0.001".to_string(),
        v => super::model::figure(v, lower, None),
    };
    format!(
        "{} / {} / {} ms; n = {} restored{}",
        f(sum.p50, lb.p50),
        f(sum.p99, lb.p99),
        f(sum.max, lb.max),
        restored.len(),
        if censored.is_empty() {
            String::new()
        } else {
            format!(", {} censored", censored.len())
        }
    )
}

/// Configuration name as shown in the table (writers added when the run has several counts).
fn row_name(b: &BenchRecord, several_writers: bool) -> String {
    let mut name = display_label(b);
    if several_writers {
        let _ = write!(name, " ({} writers)", b.config.writers);
    }
    if b.config.baseline_only {
        name.push_str(" (baseline)");
    }
    name
}

fn table(md: &mut String, r: &RunResults) {
    let faults = r.faults();
    let several = {
        let mut w: Vec<u32> = r.benches.iter().map(|b| b.config.writers).collect();
        w.sort_unstable();
        w.dedup();
        w.len() > 1
    };
    md.push_str("## Results per configuration\n\n");
    md.push_str(
        "Benchmarks run flat-out (closed loop: each writer sends its next command when the \
         previous one is answered), so ops/s is the most each configuration can do here; the \
         crash trials may run at the scenario's target rate instead (their `workload` column). \
         ops/s counts reads and writes; `× off` is the ratio to the memory-only run of this \
         run, `× device` (policy `always` only) the ratio of write commands per second to the \
         matching raw pwrite+fdatasync rate measured next to it. Loss window columns are \
         p50 / p99 / max in ms over the crash states of that fault (nearest rank), each with \
         its 95% confidence interval in brackets (bootstrap over trials and the states within \
         them) and the sample it comes from; `≥` marks a lower bound: censored windows, which \
         reach back to the trial's first acknowledgement, sit at or below it.\n\n",
    );
    let mut head = String::from("| configuration | ops/s | × off | × device | p50 µs | p99 µs |");
    let mut rule = String::from("|---|---:|---:|---:|---:|---:|");
    for f in &faults {
        let _ = write!(head, " loss window {f}: p50 / p99 / max ms [95% CI] |");
        rule.push_str("---:|");
    }
    head.push_str(" violations (crash states) |");
    rule.push_str("---:|");
    let _ = writeln!(md, "{head}\n{rule}");
    for b in &r.benches {
        let mut line = format!(
            "| {} | {:.0} | {} | {} | {:.1} | {:.1} |",
            row_name(b, several),
            b.ops_per_sec,
            RatioText::cell(
                b.ratio_to_off,
                b,
                ratios::off_baseline(&r.benches, &b.config)
            ),
            // The probe is no bench record: the interval covers the engine's rate only.
            opt(b.ratio_to_probe, |p| format!(
                "{} (probe: mean of 2 quick runs)",
                style::plain(p)
            )),
            b.latency_us.p50,
            b.latency_us.p99
        );
        for f in &faults {
            let cell = r
                .crash(&b.config, f)
                .map(|c| c.window.cell())
                .unwrap_or_else(|| "not measured".into());
            let _ = write!(line, " {cell} |");
        }
        let crashes = r.crashes_of(&b.config);
        let violations = if crashes.is_empty() {
            "not measured".to_string()
        } else {
            crashes
                .iter()
                .map(|c| c.violations.count())
                .sum::<u64>()
                .to_string()
        };
        let _ = writeln!(md, "{line} {violations} |");
    }
    uring_notes(md, r);
    if r.crashes.is_empty() {
        md.push_str(
            "\nCrash results are missing from this run: no loss window or violation was \
             measured (\"not measured\" above).\n",
        );
    }
    md.push('\n');
}

/// How much slower `uring` must be than `pwrite` under the same policy for the report to
/// explain it: a result that surprising needs its reason beside it.
const URING_SLOWDOWN_EXPLAINED: f64 = 0.5;

/// A note under the table for each `uring` configuration of a non-`always` policy that ran at
/// most [`URING_SLOWDOWN_EXPLAINED`] times as fast as its `pwrite` twin.
fn uring_notes(md: &mut String, r: &RunResults) {
    for u in r.benches.iter().filter(|b| {
        b.config.backend == "uring" && b.config.policy != "always" && b.config.policy != "off"
    }) {
        let Some(p) = r.benches.iter().find(|p| {
            let (a, b) = (&p.config, &u.config);
            a.backend == "pwrite"
                && (&a.target, &a.policy, &a.prealloc, &a.persistence, a.writers)
                    == (&b.target, &b.policy, &b.prealloc, &b.persistence, b.writers)
        }) else {
            continue;
        };
        let factor = u.ops_per_sec / p.ops_per_sec;
        if p.ops_per_sec > 0.0 && factor <= URING_SLOWDOWN_EXPLAINED {
            let _ = writeln!(
                md,
                "\n**Why `{}` is slower than `{}`** ({}× its ops/s): outside `always` the \
                 engine hands io_uring buffered writes, which ext4 cannot complete without \
                 blocking, so the kernel punts each one to an io-wq worker thread and the \
                 write pays a thread hand-off that `pwrite` does not (durlab's docs/aof.md, \
                 \"Backends\"). Under `always` the fdatasync dominates, so the hand-off matters \
                 little there.",
                display_label(u),
                display_label(p),
                style::plain(factor)
            );
        }
    }
}

fn crash_details(md: &mut String, r: &RunResults) {
    if r.crashes.is_empty() {
        return;
    }
    md.push_str("## Crash trials\n\n");
    md.push_str(
        "kill -9 kills the process and keeps the page cache, so it only shows what a server \
         acknowledged before writing it: it cannot tell `always`, `everysec` and `no` apart. \
         The image faults (power-loss, prefix, torn, reorder) lose what was not synced, so \
         they do; for redis-server and durlab-server they come from the recording \
         filesystem's trace of the unmodified server. `trials` counts runs of the workload; \
         `crash states` and every verdict column count crash states (one per kill -9 trial, \
         one per crash image of an image trial); `lost-acked` is a verdict count, while the \
         lost acknowledged commands are a number of commands per state; lost bytes are log \
         bytes (RESP bytes for RESP servers) of those commands. `workload` says how the trials \
         were driven: flat-out, or open loop at a target rate (commands per second, with its \
         arrivals) with the write commands per second it implies and achieved. Lost commands \
         scale with the rate, the loss window does not.\n\n",
    );
    md.push_str(
        "| configuration | fault | trials (runs) | crash states | ok (states) | lost-acked \
         (states) | divergent (states) | phantom (states) | refused (states) | violations \
         (states) | loss window: p50 / p99 / max ms [95% CI] | lost acknowledged commands \
         p50 / p99 / max | lost log bytes p50 / p99 / max | states verified /s | workload |\n",
    );
    md.push_str("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n");
    for c in &r.crashes {
        let v = c.verdicts;
        let s3 = |s: super::model::Spread, f: &dyn Fn(f64) -> String| {
            format!("{} / {} / {}", f(s.p50), f(s.p99), f(s.max))
        };
        let cfg = &c.config;
        let _ = writeln!(
            md,
            "| {} | {}{} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.1} | {} |",
            super::model::config_label(cfg),
            c.fault,
            c.dir_model
                .as_deref()
                .map(|m| format!(" ({m} dirs)"))
                .unwrap_or_default(),
            c.trials,
            v.ok + v.lost_acked + v.divergent + v.phantom + v.refused,
            v.ok,
            v.lost_acked,
            v.divergent,
            v.phantom,
            v.refused,
            c.violations.count(),
            c.window.cell(),
            s3(c.lost_acked_ops, &style::plain),
            s3(c.lost_bytes, &style::bytes),
            c.states_per_sec.mean(),
            c.workload_rate()
        );
    }
    md.push('\n');
    for c in r.crashes.iter() {
        if let Some(w) = c.rate.as_ref().and_then(|r| r.warning.as_ref()) {
            let _ = writeln!(
                md,
                "**Warning**, {} {}: {w}.\n",
                super::model::config_label(&c.config),
                c.column()
            );
        }
    }
    let overheads: Vec<String> = r
        .crashes
        .iter()
        .filter_map(|c| {
            let o = c.mount_overhead.as_ref()?;
            let rounds = if o.round_ratios.is_empty() {
                String::new()
            } else {
                let each: Vec<String> = o.round_ratios.iter().map(|x| format!("{x:.2}")).collect();
                format!(" (rounds: {}×)", each.join(", "))
            };
            Some(format!(
                "- {} ({}): {} acknowledged writes/s on the mount, {} on a plain directory: {:.2}×{rounds}",
                super::model::config_label(&c.config),
                c.fault,
                style::si(o.mounted_ops_per_sec),
                style::si(o.direct_ops_per_sec),
                o.ratio
            ))
        })
        .collect();
    if !overheads.is_empty() {
        md.push_str(
            "Recording filesystem overhead (the crash workload, one pipelined connection, \
             measured next to each case's trials in alternating rounds, direct then mounted: \
             the disk's own sync latency drifts, so rounds that disagree mean the ratio is \
             noise):\n\n",
        );
        for o in overheads {
            md.push_str(&o);
            md.push('\n');
        }
        md.push('\n');
    }
}

/// Consumer-group workloads: what each configuration's crashes did to deliveries, beside its
/// loss window (docs/results.md, "Delivery verdicts").
fn deliveries(md: &mut String, r: &RunResults) {
    let rows: Vec<_> = r
        .crashes
        .iter()
        .filter_map(|c| Some((c, c.deliveries?)))
        .collect();
    if rows.is_empty() {
        return;
    }
    md.push_str(
        "## Deliveries to consumer groups

",
    );
    md.push_str(
        "What each crash did to the deliveries the consumers were told of, counted per crash \
         state against the highest LSN acknowledged before it (docs/results.md, \
         \"Delivery verdicts\"): entries acknowledged and then handed out again, entries \
         delivered and then pending nowhere without an acknowledgement, entries held by one \
         consumer and handed to another, and groups whose last-delivered id went back. A \
         state that recovered everything acknowledged must show none of them; below that, \
         they are what the loss window costs the consumers.\n\n",
    );
    md.push_str(
        "| configuration | fault | states judged | states with anomalies | acked then \
         redelivered | delivered then lost | handed to two consumers | last-delivered id \
         regressions | loss window p50 / p99 / max ms |\n",
    );
    md.push_str("|---|---|---:|---:|---:|---:|---:|---:|---:|\n");
    for (c, d) in rows {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            super::model::config_label(&c.config),
            c.fault,
            d.states_judged,
            d.states_with_anomalies,
            d.total.acked_redelivered,
            d.total.delivered_lost,
            d.total.double_handed,
            d.total.last_delivered_regressions,
            c.window.cell()
        );
    }
    md.push('\n');
}

fn plots(md: &mut String, r: &RunResults) {
    md.push_str("## Plots\n\n");
    md.push_str("![loss window vs throughput](loss-vs-throughput.svg)\n\n");
    if r.crashes.is_empty() {
        md.push_str(
            "*Loss window vs throughput.* No crash results in this run, so the plot shows \
             only where each configuration's throughput lies (dashed verticals); no loss \
             window is drawn.\n\n",
        );
    } else {
        let floor = zero_floor_ms(r.crashes.iter().flat_map(|c| {
            [
                c.loss_window_ms.p50,
                c.loss_window_ms.p99,
                c.loss_window_ms.max,
            ]
        }));
        let mut fronts = Vec::new();
        for f in r.faults() {
            let pts: Vec<(&BenchRecord, f64)> = r
                .benches
                .iter()
                .filter_map(|b| r.crash(&b.config, &f).map(|c| (b, c.loss_window_ms.p50)))
                .collect();
            let xy: Vec<(f64, f64)> = pts.iter().map(|(b, l)| (b.ops_per_sec, *l)).collect();
            let names: Vec<String> = pareto_front(&xy)
                .into_iter()
                .map(|i| format!("`{}`", pts[i].0.label))
                .collect();
            fronts.push(format!("{f}: {}", names.join(", ")));
        }
        let _ = writeln!(
            md,
            "*Loss window vs throughput.* One point per configuration and fault (marker shape \
             and colour per fault): x is throughput from the bench (ops/s, log scale), y the \
             loss window over the crash trials (marker p50, ring p99, cap max; ms, log scale). \
             A log axis cannot show zero, so a loss window of 0 ms is drawn on the dashed floor \
             line labelled \"0 ms\" at {} ms, one decade below the smallest non-zero figure; a \
             point on that line lost no acknowledged write. Points of different faults for one \
             configuration are shifted sideways by a factor of {DODGE_FACTOR} so they do not \
             hide each other. The Pareto front on p50 (no other configuration is both faster and \
             loses less) is joined by a dashed line and ringed: {}.\n",
            style::plain(floor),
            fronts.join("; ")
        );
    }
    md.push_str("![acknowledgement latency](latency-cdf.svg)\n\n");
    md.push_str(
        "*Acknowledgement latency.* Distribution of the time to acknowledge each command, per \
         configuration, from the HdrHistograms in run.json: x is latency (µs, log scale), y the \
         share of commands acknowledged within it on a nines scale (50%, 90%, 99%, 99.9%, …) \
         so that the tail is as readable as the median.\n\n",
    );
    md.push_str("![group commit](group-commit.svg)\n\n");
    let gc = GroupCommit::new(r);
    let writers = gc.writer_counts();
    let counts = writers
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let _ = match (writers.len(), gc.from_sweep()) {
        (0, _) => writeln!(
            md,
            "*Group commit.* No `always` configuration in this run, so there is nothing to draw.\n"
        ),
        (1, _) => writeln!(
            md,
            "*Group commit.* Throughput of `always` against the number of writers. This run \
             has a single writer count ({counts}), so the plot shows one point per \
             configuration and no scaling curve; `durlab run` adds a sweep over \
             `[group_commit] writers`, `durlab bench --writers 1,4,16,32` makes one. Labels \
             give the average records per log write (batch).\n"
        ),
        (_, sweep) => writeln!(
            md,
            "*Group commit.* Throughput of `always` against the number of writers ({counts}; \
             log2 axis), one line per configuration{}; labels give ops/s and the average \
             records per log write (batch): under `always`, writers that arrive while an \
             fdatasync is in flight share the next one. Figures in the table under \
             \"Group commit\" below.\n",
            if sweep {
                ", from the group-commit sweep in `group-commit/`"
            } else {
                ""
            }
        ),
    };
    md.push_str("![recovery](recovery.svg)\n\n");
    if r.recovery.is_empty() {
        md.push_str(
            "*Recovery.* No recovery measurements in this run (`recovery.json` is written by \
             `durlab run`), so the plot is empty.\n\n",
        );
    } else {
        md.push_str(
            "*Recovery.* Time of `Engine::open` against the size of the data directory it \
             opened, one colour per persistence mode, both axes logarithmic. Filled markers \
             joined by a line: the recovery sweep, one directory per mode filled with the \
             workload's first write commands up to each step and reopened after each. Open \
             markers: each bench configuration's directory right after its bench. Figures in \
             the table under \"Recovery\" below.\n\n",
        );
    }
    md.push_str("PNG versions of every plot sit next to the SVGs.\n\n");
}

fn group_commit(md: &mut String, r: &RunResults) {
    let gc = GroupCommit::new(r);
    if !gc.from_sweep() || gc.records().is_empty() {
        return;
    }
    md.push_str("## Group commit\n\n");
    md.push_str(
        "Policy `always` at each writer count of the sweep (`group-commit/`, same workload \
         and seed, shorter runs than the table above).\n\n| configuration | writers | ops/s | \
         × 1 writer | p99 µs | records per write | syncs |\n|---|---:|---:|---:|---:|---:|---:|\n",
    );
    let mut records = gc.records();
    records.sort_by_key(|b| (config_label(&b.config), b.config.writers));
    for b in &records {
        let name = config_label(&b.config);
        let one = records
            .iter()
            .find(|o| o.config.writers == 1 && config_label(&o.config) == name)
            .copied()
            .filter(|o| o.ops_per_sec > 0.0);
        let _ = writeln!(
            md,
            "| {name} | {} | {:.0} | {} | {:.1} | {:.1} | {} |",
            b.config.writers,
            b.ops_per_sec,
            RatioText::cell(one.map(|o| b.ops_per_sec / o.ops_per_sec), b, one),
            b.latency_us.p99,
            b.avg_batch,
            b.syncs
        );
    }
    if let Some(sweep) = &r.group_commit {
        for (label, e) in &sweep.run.failures {
            let _ = writeln!(md, "\nFailed in the sweep: `{label}`: {e}");
        }
    }
    md.push('\n');
}

fn recovery(md: &mut String, r: &RunResults) {
    if r.recovery.is_empty() {
        return;
    }
    md.push_str("## Recovery\n\n");
    md.push_str(
        "`after bench`: the configuration's directory right after its bench. `sweep N MiB`: \
         a directory (policy `no`, no preallocation) holding the workload's first write \
         commands, as many as take N MiB of log; snapshot and hybrid directories keep only \
         live keys and can be smaller.\n\n",
    );
    md.push_str("| configuration | measured | data MiB | recovered LSN | records replayed | open ms | replay ms |\n|---|---|---:|---:|---:|---:|---:|\n");
    for m in &r.recovery {
        let when = m.fill_mb.map_or_else(
            || "after bench".to_string(),
            |mb| format!("sweep {} MiB", style::plain(mb)),
        );
        let _ = writeln!(
            md,
            "| `{}` | {when} | {:.2} | {} | {} | {:.1} | {:.1} |",
            m.label,
            m.data_bytes as f64 / (1024.0 * 1024.0),
            m.recovered_lsn,
            m.records_replayed,
            m.open_ms,
            m.replay_ms
        );
    }
    md.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::model::StateRow;

    fn row(by: &str, moment: u32, verdict: &str, lsn: u64, window_ms: f64) -> StateRow {
        StateRow {
            trial: Some(0),
            loss_window_ms: window_ms,
            censored: Some(false),
            recovered_lsn: Some(lsn),
            acked_lsn: Some(30),
            verdict: Some(verdict.into()),
            detail: None,
            copied_by: Some(by.into()),
            copy_moment: Some(moment),
        }
    }

    /// Real copies are matched to the twin of their own moment, and a disagreement is named;
    /// without real copies there is no ground-truth sentence.
    #[test]
    fn ground_truth_pairs_real_copies_with_their_twins_and_names_disagreements() {
        let rows = vec![
            row("model", 0, "ok", 10, 1.0),
            row("twin", 0, "ok", 10, 2.0),
            row("real-cp", 0, "ok", 11, 1.5),
            row("twin", 1, "ok", 20, 3.0),
            row("real-tar", 1, "refused", 0, 0.0),
        ];
        let s = ground_truth(&rows).unwrap();
        assert!(s.starts_with("1 of 2 real copies (`cp -r`, `tar`)"), "{s}");
        assert!(
            s.contains("they differ at trial 0 moment 1: real refused, simulated restore"),
            "{s}"
        );
        let agreeing: Vec<StateRow> = rows[..3].to_vec();
        let s = ground_truth(&agreeing).unwrap();
        assert!(
            s.starts_with("1 of 1 real copies (`cp -r`) land") && !s.contains("differ"),
            "{s}"
        );
        assert_eq!(ground_truth(&rows[..2]), None);
    }

    /// A copy that restores nothing is empty only if something had been acknowledged before
    /// it ended.
    #[test]
    fn a_copy_before_the_first_acknowledgement_restores_not_empty() {
        let mut early = row("model", 0, "ok", 0, 0.0);
        early.acked_lsn = Some(0);
        assert_eq!(backup_class(&early), "restore");
        let late = row("model", 1, "ok", 0, 5.0);
        assert_eq!(backup_class(&late), "restore empty");
        let c = BackupCounts::of(&[&early, &late]);
        assert_eq!((c.restore, c.empty), (1, 1));
    }

    /// Sub-microsecond staleness (a copy of an idle directory) prints as such, not as noise
    /// digits; larger windows keep three significant digits; refused copies do not count.
    #[test]
    fn staleness_under_a_microsecond_prints_as_such() {
        let rows = [
            row("model", 0, "ok", 10, 0.000266),
            row("model", 1, "ok", 10, 0.000266),
            row("model", 2, "refused", 0, 9.0),
        ];
        let refs: Vec<&StateRow> = rows.iter().collect();
        assert_eq!(
            staleness(&refs),
            "< 0.001 / < 0.001 / < 0.001 ms; n = 2 restored"
        );
        let rows = [
            row("model", 0, "ok", 10, 12.345),
            row("model", 1, "ok", 10, 0.0),
        ];
        let refs: Vec<&StateRow> = rows.iter().collect();
        assert_eq!(staleness(&refs), "0 / 12.3 / 12.3 ms; n = 2 restored");
    }
}
