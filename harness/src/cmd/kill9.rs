//! `durlab kill9`: kill -9 trials against RESP targets (durlab serve, redis-server), with
//! the same verdicts and loss figures as the crash lab, written as
//! `crash-kill9-<label>.json` summaries that `durlab report` reads.

use std::path::Path;

use durlab_engine::FsyncPolicy;
use rand::Rng as _;

use super::CliError;
use super::bench::{load_scenario, save_points, server_spec, target_config_record, target_label};
use super::workdir::WorkDir;
use crate::cli::Kill9Args;
use crate::crashlab::FaultKind;
use crate::crashlab::loss::Summary;
use crate::crashlab::phase::Phase;
use crate::crashlab::report::{CrashRecord, VerdictCounts, WindowSummary};
use crate::crashlab::verdict::Verdict;
use crate::driver::matrix;
use crate::driver::pacing::AckedWrites;
use crate::progress::{Mode, Progress};
use crate::results::run_dir;
use crate::servers::Target;
use crate::servers::kill9::{self, Kill9Trial};
use crate::workload::Workload;
use crate::workload::rng::SplitMix64;

/// One configuration's summary (`crash-kill9-<label>.json`): the crash lab's record with this
/// target's per-trial results; fields as in docs/results.md.
pub type Kill9Summary = CrashRecord<Kill9Trial>;

/// Runs the trials and writes the summaries.
///
/// # Errors
/// A scenario that does not load, a directory that cannot be written, or violations (after
/// everything is written, each with its reproduction line on stderr).
pub fn run(args: &Kill9Args) -> Result<(), CliError> {
    let mode = Mode::detect(args.output.quiet);
    let started_utc = crate::results::time::rfc3339_now();
    let (mut scenario, scenario_file) = load_scenario(args.scenario.as_deref())?;
    super::overrides::apply_matrix(&mut scenario.matrix, &args.matrix);
    let targets = if args.matrix.target.is_empty() {
        vec![Target::DurlabServer]
    } else {
        args.matrix.target.clone()
    };
    if let Some(seed) = args.seed {
        scenario.workload.seed = seed;
    }
    let workload = Workload::new(&scenario.workload);
    let rate = crate::driver::pacing::resolve(scenario.workload.rate(), args.rate, args.arrivals)
        .map_err(CliError)?;
    let run_id = args.output.run_id();
    let out_dir = args.output.dir(&scenario.name, &run_id);
    std::fs::create_dir_all(&out_dir)?;
    let work = WorkDir::new(args.dir.as_deref(), &run_id, args.keep)?;
    let setups: Vec<_> = matrix::expand(&scenario.matrix)
        .into_iter()
        .filter(|s| !s.baseline_only)
        .collect();
    if targets.contains(&Target::Engine) {
        return Err(CliError("durlab kill9 drives RESP targets (durlab-server, redis); the engine's own kill -9 trials belong to the crash lab".into()));
    }
    let mut summaries = Vec::new();
    let mut violations = Vec::new();
    for (setup, target) in super::bench::target_runs(&setups, &targets) {
        let setup = &setup;
        {
            let label = target_label(setup, target);
            let mut trials = Vec::new();
            let mut failed = Vec::new();
            for k in 0..args.trials {
                let seed = SplitMix64::new(workload.seed() ^ k.wrapping_mul(0x9e37_79b9_7f4a_7c15))
                    .next_u64();
                let dir = work.path().join(&label).join(format!("trial-{k}"));
                let config = setup.engine_config(&dir.join("data"), &save_points(&scenario));
                let spec = server_spec(target, &config, &scenario)?;
                let p = Progress::begin(
                    mode,
                    (k + 1) as usize,
                    args.trials as usize,
                    &format!("kill -9 {label}"),
                    crate::progress::Goal::Commands(0),
                );
                match kill9::run_trial(&spec, &workload, args.trial_secs, seed, k, rate) {
                    Ok(t) => {
                        p.finish(&format!(
                            "{}: acked {}, recovered {}, loss window {:.1} ms",
                            t.verdict, t.acked, t.recovered_lsn, t.loss_window_ms
                        ));
                        if t.verdict != Verdict::Ok {
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
            let mut verdicts = VerdictCounts::default();
            for t in &trials {
                verdicts.add(t.verdict);
            }
            let mut config = target_config_record(
                setup,
                target,
                kill9::PIPELINE_TXNS as u32,
                &scenario,
                &workload,
            );
            config.writers = 1;
            let per_sec: Vec<f64> = trials
                .iter()
                .filter(|t| t.verify_seconds > 0.0)
                .map(|t| 1.0 / t.verify_seconds)
                .collect();
            let window = WindowSummary::of(trials.iter().map(|t| (t.loss_window_ms, t.censored)));
            let trial = crate::crashlab::trial::plan(
                setup,
                FaultKind::Kill9,
                crate::crashlab::trial::Bounds::of(
                    &setup.engine_config(Path::new("."), &[]),
                    false,
                ),
                Some(args.trial_secs),
            );
            let acked_writes = trials
                .iter()
                .fold(AckedWrites::default(), |a, t| a.plus(t.acked_writes));
            let mut summary = Kill9Summary {
                fault: FaultKind::Kill9.name().into(),
                case: format!("{}-{label}", FaultKind::Kill9),
                phase: Phase::Steady,
                dir_model: None,
                copy: None,
                label: label.clone(),
                run_id: run_id.clone(),
                seed: workload.seed(),
                trial_secs: args.trial_secs,
                loss_bound_ms: trial.bound_ms,
                short_trial: trial.short_trial,
                trials: trials.len() as u64,
                states: trials.len() as u64,
                distinct_states: trials.len() as u64,
                verdicts,
                violations: trials.iter().filter(|t| t.verdict != Verdict::Ok).count() as u64,
                lost_acked_ops: Summary::of(trials.iter().map(|t| t.lost_acked_ops as f64)),
                loss_window_ms: window.summary,
                censored: window.censored,
                loss_window_lower_bound: window.lower_bounds,
                lost_bytes: Summary::of(trials.iter().map(|t| t.lost_bytes as f64)),
                lost_acked_tail_damage: 0,
                everysec_lag_trials: 0,
                everysec_lag_violations: 0,
                everysec_lag_crossed: 0,
                stall: None,
                mount_overhead: None,
                states_per_sec: per_sec,
                acked_writes,
                write_ops_per_sec: acked_writes.per_sec(),
                rate: None,
                failed_trials: failed,
                trial_results: trials,
                config,
            };
            summary.set_rate(rate, 1.0 - workload.read_fraction());
            run_dir::write_json(
                &out_dir.join(format!("crash-{}.json", summary.case)),
                &summary,
            )?;
            summaries.push(summary);
        }
    }
    // A run.json, so that `durlab report` reads this directory as it reads `durlab crash`'s.
    super::crash::write_run_record(
        &out_dir,
        &super::crash::CrashRun {
            run_id: &run_id,
            scenario: &scenario,
            scenario_file: scenario_file.as_deref(),
            workload: &workload,
            writers: 1,
            trial_secs: args.trial_secs,
            rate,
            started_utc,
            machine_dir: work.path(),
            failures: summaries
                .iter()
                .filter(|s| !s.failed_trials.is_empty())
                .map(|s| (format!("crash-{}", s.case), s.failed_trials.join("; ")))
                .collect(),
        },
    )?;
    if args.output.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&summaries).expect("summaries serialize")
        );
    } else {
        print!("{}", crate::crashlab::report::render_table(&summaries));
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
