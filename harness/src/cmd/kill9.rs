//! `durlab kill9`: kill -9 trials against RESP targets (durlab serve, redis-server), with
//! the same verdicts and loss figures as the crash lab, written as
//! `crash-kill-9-<label>.json` summaries that `durlab report` reads.

use std::path::PathBuf;

use durlab_engine::{EngineConfig, FsyncPolicy};
use rand::Rng as _;
use serde::Serialize;

use super::CliError;
use super::bench::{load_scenario, server_spec, target_label};
use super::workdir::WorkDir;
use crate::cli::Kill9Args;
use crate::driver::matrix;
use crate::progress::{Mode, Progress};
use crate::report::model::{Spread, Verdicts};
use crate::results::json::ConfigRecord;
use crate::results::run_dir;
use crate::target::Target;
use crate::target::kill9::{self, Kill9Trial};
use crate::workload::Workload;
use crate::workload::rng::SplitMix64;

/// One configuration's summary (`crash-kill-9-<label>.json`); fields as in docs/results.md.
#[derive(Debug, Clone, Serialize)]
pub struct Kill9Summary {
    pub fault: String,
    pub config: ConfigRecord,
    pub label: String,
    pub run_id: String,
    pub seed: u64,
    pub trial_secs: f64,
    pub trials: u64,
    pub states: u64,
    pub verdicts: Verdicts,
    /// Trials whose verdict breaks the kill -9 contract (anything but `ok`).
    pub violations: u64,
    pub lost_acked_ops: Spread,
    pub loss_window_ms: Spread,
    pub lost_bytes: Spread,
    /// Trials verified per second of restart + read-back + comparison (mean).
    pub states_per_sec: f64,
    pub failed_trials: Vec<String>,
    pub trial_results: Vec<Kill9Trial>,
}

/// p50, p99 and max (nearest rank) of `v`; zeros when empty.
pub fn spread(mut v: Vec<f64>) -> Spread {
    if v.is_empty() {
        return Spread::default();
    }
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
    Spread {
        p50: at(0.5),
        p99: at(0.99),
        max: v[v.len() - 1],
    }
}

/// Runs the trials and writes the summaries.
///
/// # Errors
/// A scenario that does not load, a directory that cannot be written, or violations (after
/// everything is written, each with its reproduction line on stderr).
pub fn run(args: &Kill9Args) -> Result<(), CliError> {
    let mode = Mode::detect(args.quiet);
    let (mut scenario, _) = load_scenario(args.scenario.as_deref())?;
    if !args.policy.is_empty() {
        scenario.matrix.policies = args.policy.clone();
    }
    if !args.persistence.is_empty() {
        scenario.matrix.persistence = args.persistence.clone();
    }
    if let Some(seed) = args.seed {
        scenario.workload.seed = seed;
    }
    let workload = Workload::new(&scenario.workload);
    let run_id = args.run_id.clone().unwrap_or_else(run_dir::new_run_id);
    let out_dir: PathBuf = args.out.clone().unwrap_or_else(|| {
        crate::scenario::locate::repo_root()
            .join("results")
            .join(&scenario.name)
            .join(&run_id)
    });
    std::fs::create_dir_all(&out_dir)?;
    let work = WorkDir::new(args.dir.as_deref(), &run_id, args.keep)?;
    let setups: Vec<_> = matrix::expand(&scenario.matrix)
        .into_iter()
        .filter(|s| !s.baseline_only)
        .collect();
    if args.target.contains(&Target::Engine) {
        return Err(CliError("durlab kill9 drives RESP targets (durlab-server, redis); the engine's own kill -9 trials belong to the crash lab".into()));
    }
    let mut summaries = Vec::new();
    let mut violations = Vec::new();
    for (setup, target) in super::bench::target_runs(&setups, &args.target) {
        let setup = &setup;
        {
            let label = target_label(setup, target);
            let mut trials = Vec::new();
            let mut failed = Vec::new();
            for k in 0..args.trials {
                let seed = SplitMix64::new(workload.seed() ^ k.wrapping_mul(0x9e37_79b9_7f4a_7c15))
                    .next_u64();
                let dir = work.path().join(&label).join(format!("trial-{k}"));
                let mut config = EngineConfig::new(dir.join("data"))
                    .policy(setup.policy)
                    .backend(setup.backend)
                    .prealloc(setup.prealloc);
                config.persistence = setup.persistence;
                let spec = server_spec(target, &config)?;
                let p = Progress::begin(
                    mode,
                    (k + 1) as usize,
                    args.trials as usize,
                    &format!("kill -9 {label}"),
                    crate::progress::Goal::Commands(0),
                );
                match kill9::run_trial(&spec, &workload, args.trial_secs, seed, k) {
                    Ok(t) => {
                        p.finish(&format!(
                            "{}: acked {}, recovered {}, loss window {:.1} ms",
                            t.verdict, t.acked, t.recovered_lsn, t.loss_window_ms
                        ));
                        if t.verdict != "ok" {
                            violations.push(format!(
                                "{label} trial {k} ({}): {}",
                                t.verdict,
                                t.notes.join("; ")
                            ));
                        }
                        trials.push(t);
                    }
                    Err(e) => {
                        p.finish(&format!("FAILED: {e}"));
                        failed.push(format!("trial {k}: {e}"));
                    }
                }
            }
            let mut verdicts = Verdicts::default();
            for t in &trials {
                match t.verdict {
                    "ok" => verdicts.ok += 1,
                    "lost-acked" => verdicts.lost_acked += 1,
                    "divergent" => verdicts.divergent += 1,
                    "phantom" => verdicts.phantom += 1,
                    _ => verdicts.refused += 1,
                }
            }
            let mut config = ConfigRecord {
                policy: setup.policy.name().into(),
                backend: setup.backend.name().into(),
                prealloc: setup.prealloc.name().into(),
                writers: 1,
                value_size: workload.value_size().mean(),
                value_size_min: workload.value_size().bounds().0,
                value_size_max: workload.value_size().bounds().1,
                persistence: setup.persistence.name().into(),
                scenario: scenario.name.clone(),
                baseline_only: false,
                target: target.name().into(),
                pipeline: kill9::PIPELINE_TXNS as u32,
            };
            if target == Target::Redis {
                config.backend = "redis".into();
                config.prealloc = "none".into();
            }
            let per_sec: Vec<f64> = trials
                .iter()
                .filter(|t| t.verify_seconds > 0.0)
                .map(|t| 1.0 / t.verify_seconds)
                .collect();
            let summary = Kill9Summary {
                fault: "kill-9".into(),
                label: label.clone(),
                run_id: run_id.clone(),
                seed: workload.seed(),
                trial_secs: args.trial_secs,
                trials: trials.len() as u64,
                states: trials.len() as u64,
                verdicts,
                violations: trials.iter().filter(|t| t.verdict != "ok").count() as u64,
                lost_acked_ops: spread(trials.iter().map(|t| t.lost_acked_ops as f64).collect()),
                loss_window_ms: spread(trials.iter().map(|t| t.loss_window_ms).collect()),
                lost_bytes: spread(trials.iter().map(|t| t.lost_bytes as f64).collect()),
                states_per_sec: if per_sec.is_empty() {
                    0.0
                } else {
                    per_sec.iter().sum::<f64>() / per_sec.len() as f64
                },
                failed_trials: failed,
                trial_results: trials,
                config,
            };
            run_dir::write_json(
                &out_dir.join(format!("crash-kill-9-{label}.json")),
                &summary,
            )?;
            summaries.push(summary);
        }
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&summaries).expect("summaries serialize")
        );
    } else {
        println!(
            "{:<44} {:>6} {:>4} {:>10} {:>12} {:>12} {:>12}",
            "configuration", "trials", "ok", "violations", "lost p50", "window p99", "window max"
        );
        for s in &summaries {
            println!(
                "{:<44} {:>6} {:>4} {:>10} {:>12.0} {:>9.1} ms {:>9.1} ms",
                s.label,
                s.trials,
                s.verdicts.ok,
                s.violations,
                s.lost_acked_ops.p50,
                s.loss_window_ms.p99,
                s.loss_window_ms.max
            );
        }
    }
    Progress::note(mode, &format!("results: {}", out_dir.display()));
    let failed: usize = summaries.iter().map(|s| s.failed_trials.len()).sum();
    if !violations.is_empty() || failed > 0 {
        for v in &violations {
            eprintln!("violation: {v}");
        }
        let policy_note = summaries
            .iter()
            .any(|s| s.config.target == "redis" && s.config.policy != FsyncPolicy::Always.name());
        return Err(CliError(format!(
            "{} violation(s), {failed} failed trial(s){}",
            violations.len(),
            if policy_note {
                " (Redis's own figures are measurements of Redis, reported as they are)"
            } else {
                ""
            }
        )));
    }
    Ok(())
}
