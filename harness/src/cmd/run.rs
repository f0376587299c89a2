//! `durlab run`: a scenario end to end: the bench matrix (through [`super::bench::execute`]),
//! recovery timing ([`super::run_recovery`]), the group-commit sweep
//! ([`super::run_group_commit`]), crash trials, then the report.

use std::path::Path;

use durlab_engine::{FsyncPolicy, Persistence};

use super::CliError;
use super::{bench, crash, run_group_commit, run_recovery};
use crate::cli::{BenchArgs, CrashArgs, MatrixArgs, OutputArgs, RunArgs};
use crate::crashlab::FaultKind;
use crate::progress::{Mode, Progress};
use crate::report;
use crate::scenario::Scenario;
use crate::servers::Target;

/// Longest bench per configuration with `--quick`, seconds.
pub const QUICK_DURATION_SECS: f64 = 3.0;

/// Most crash trials per configuration and fault with `--quick`.
pub const QUICK_CRASH_TRIALS: u64 = 2;

/// Runs `durlab run`.
///
/// # Errors
/// As `durlab bench` (a configuration that failed, in the matrix or the group-commit sweep,
/// is reported after the report is written), plus a recovery file or report that cannot be
/// written.
pub fn run(args: &RunArgs) -> Result<(), CliError> {
    let mode = Mode::detect(args.output.quiet);
    // Before the bench matrix runs, not minutes later in the crash step.
    crash::check_trial_secs(args.trial_secs)?;
    let bench_args = bench_args(args)?;
    Progress::note(mode, "== 1/5 bench matrix");
    let outcome = bench::execute(&bench_args, mode)?;
    run_recovery::run(&outcome, args.quick, mode)?;
    let out_dir = outcome.out_dir.clone();
    let run_id = outcome.run.run_id.clone();
    // The sweep's data directories take the same <dir>/<run-id> once these are gone.
    drop(outcome.work);
    // Only its record is kept: its data directories go now, so that the crash trials can take
    // the same <dir>/<run-id> (with --dir they would find it not empty).
    let sweep =
        run_group_commit::run(args, &outcome.scenario, &out_dir, &run_id, mode)?.map(|s| s.run);

    Progress::note(mode, "== 4/5 crash trials");
    let plans = crash_args(args, &outcome.scenario, &out_dir, &run_id);
    if plans.is_empty() {
        Progress::note(
            mode,
            "the scenario has no [crash] plan the crash lab can run here: crash results are \
             missing (the report says so)",
        );
    }
    // Every plan runs; the first failure is reported after the report is written.
    let mut crashed = Ok(());
    for plan in &plans {
        let r = crash::run(plan);
        if crashed.is_ok() {
            crashed = r;
        }
    }

    Progress::note(mode, "== 5/5 report");
    let written = report::write_report(&out_dir)?;
    if args.output.json {
        let paths = serde_json::json!({
            "report": written.report,
            "dir": out_dir,
        });
        println!("{paths}");
    } else {
        println!("{}", written.report.display());
    }
    bench::failures_error(&outcome.run)?;
    if let Some(sweep) = &sweep {
        bench::failures_error(sweep).map_err(|e| CliError(format!("group-commit sweep: {e}")))?;
    }
    crashed
}

/// The `durlab crash` runs `durlab run` amounts to: the scenario's `[crash]` plan over its
/// matrix, without policy `off` (which promises nothing): the crash lab's trials for target
/// `engine`, and kill -9 trials of the servers (`--target durlab-server,redis --fault kill9`)
/// for the scenario's RESP targets, so that the report shows Redis's loss window next to
/// durlab's. Empty when nothing is left to run.
fn crash_args(args: &RunArgs, scenario: &Scenario, out_dir: &Path, run_id: &str) -> Vec<CrashArgs> {
    let Some(plan) = scenario.crash.as_ref() else {
        return Vec::new();
    };
    let matrix = &scenario.matrix;
    let policy: Vec<FsyncPolicy> = matrix
        .policies
        .iter()
        .copied()
        .filter(|p| *p != FsyncPolicy::Off)
        .collect();
    let persistence = matrix.persistence.clone();
    let only_aof = persistence.iter().all(|p| *p == Persistence::Aof);
    let fault: Vec<FaultKind> = plan
        .faults
        .iter()
        .copied()
        .filter(|f| only_aof || !f.damages_synced_data())
        .collect();
    if policy.is_empty() || persistence.is_empty() || fault.is_empty() {
        return Vec::new();
    }
    let resp: Vec<Target> = matrix
        .targets
        .iter()
        .copied()
        .filter(|t| t.is_resp())
        .collect();
    let mut plans = Vec::new();
    if matrix.targets.contains(&Target::Engine) {
        // The crash lab's own trials run the engine in a worker process.
        plans.push((fault.clone(), Vec::new()));
    }
    // RESP servers take kill -9 and the image faults (run on the recording filesystem).
    let resp_faults: Vec<FaultKind> = fault
        .iter()
        .copied()
        .filter(|f| *f == FaultKind::Kill9 || f.needs_images())
        .collect();
    if !resp.is_empty() && !resp_faults.is_empty() {
        plans.push((resp_faults, resp));
    }
    let count = |n: u32| {
        args.trials.unwrap_or(if args.quick {
            u64::from(n).min(QUICK_CRASH_TRIALS)
        } else {
            u64::from(n)
        })
    };
    let trials = count(plan.trials);
    let image_trials = count(plan.image_trials.unwrap_or(plan.trials));
    // Image faults with their own trial count run as plans of their own.
    let plans: Vec<(Vec<FaultKind>, Vec<Target>, u64)> = plans
        .into_iter()
        .flat_map(|(faults, target)| {
            if image_trials == trials {
                return vec![(faults, target, trials)];
            }
            let (images, others): (Vec<FaultKind>, Vec<FaultKind>) =
                faults.into_iter().partition(|f| f.needs_images());
            vec![
                (others, target.clone(), trials),
                (images, target, image_trials),
            ]
        })
        .filter(|(faults, ..)| !faults.is_empty())
        .collect();
    let states = plan
        .image_states
        .map_or(if args.quick { 8 } else { 16 }, |n| {
            if args.quick { n.div_ceil(2) } else { n }
        });
    if args.quick {
        Progress::note(
            Mode::detect(args.output.quiet),
            &format!(
                "--quick: {trials} crash trial(s) per configuration and fault ({image_trials} for the image faults), {states} image states per trace; trial lengths unchanged"
            ),
        );
    }
    let crash = |(fault, target, trials): (Vec<FaultKind>, Vec<Target>, u64)| CrashArgs {
        scenario: Some(args.scenario.clone()),
        fault,
        matrix: MatrixArgs {
            policy: policy.clone(),
            backend: matrix.backends.clone(),
            prealloc: matrix.prealloc.clone(),
            persistence: persistence.clone(),
            target,
            // The scenario's own `[matrix] redis_config` applies (crash loads the scenario).
            redis_config: Vec::new(),
        },
        trials,
        trial: None,
        states,
        seed: None,
        // The flag, else the scenario's, else each configuration's own (`crashlab::trial`).
        trial_secs: args.trial_secs.or(plan.trial_secs),
        stall_ms: 1000,
        stall: false,
        writers: None,
        writeback: false,
        // The flags, else the scenario's `[workload] rate`.
        rate: args.rate,
        arrivals: args.arrivals,
        // The scenario's `[crash] states` and `dir_model`.
        phase: Vec::new(),
        dir_model: None,
        // The scenario's `[crash] copy` and `copy_rate_mib`.
        copy: None,
        copy_rate_mib: None,
        procedure: None,
        real_copies: 0,
        broken_skip_dir_sync: false,
        broken_swallow_sync_errors: false,
        broken_early_sync: false,
        broken_copy_before_save_done: false,
        contract: None,
        dir: args.dir.clone(),
        image_dir: None,
        keep: false,
        output: OutputArgs {
            out: Some(out_dir.to_path_buf()),
            run_id: Some(run_id.to_string()),
            json: false,
            quiet: args.output.quiet,
        },
        broken_ack_before_sync: false,
        oracle_seed: None,
    };
    plans.into_iter().map(crash).collect()
}

/// The `durlab bench` flags `durlab run` amounts to.
fn bench_args(args: &RunArgs) -> Result<BenchArgs, CliError> {
    let duration = if args.quick {
        let path = crate::scenario::locate::find_scenario(&args.scenario).map_err(CliError)?;
        let s = crate::scenario::load(&path).map_err(|e| CliError(e.to_string()))?;
        let own = s.workload.duration_secs.map(|d| *d.get_ref());
        Some(own.map_or(QUICK_DURATION_SECS, |d| d.min(QUICK_DURATION_SECS)))
    } else {
        None
    };
    Ok(BenchArgs {
        scenario: Some(args.scenario.clone()),
        matrix: MatrixArgs::default(),
        writers: Vec::new(),
        pipeline: None,
        duration,
        commands: None,
        warmup: None,
        value_size: None,
        seed: None,
        mix: None,
        dir: args.dir.clone(),
        keep: false,
        no_probe: args.no_probe,
        no_baseline: false,
        output: OutputArgs {
            json: false,
            ..args.output.clone()
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(quick: bool, trials: Option<u64>, trial_secs: Option<f64>) -> RunArgs {
        RunArgs {
            scenario: "quickstart".into(),
            quick,
            trials,
            trial_secs,
            rate: None,
            arrivals: None,
            dir: None,
            no_probe: true,
            output: OutputArgs::default(),
        }
    }

    /// Quickstart with a crash plan of 2 trials of every fault and the default image states.
    fn quickstart(trial_secs: Option<f64>) -> Scenario {
        let path = crate::scenario::locate::find_scenario("quickstart").unwrap();
        let mut s = crate::scenario::load(&path).unwrap();
        let c = s.crash.as_mut().unwrap();
        c.trial_secs = trial_secs;
        c.trials = 2;
        c.image_trials = None;
        c.image_states = None;
        s
    }

    fn plan(args: &RunArgs, s: &Scenario) -> (u64, Option<f64>, usize) {
        let plans = crash_args(args, s, Path::new("out"), "id");
        assert!(!plans.is_empty());
        let first = &plans[0];
        assert!(plans.iter().all(|p| p.trials == first.trials));
        (first.trials, first.trial_secs, first.states)
    }

    /// `--quick` cuts counts (trials, image states) but never the trial length; the flags and
    /// the scenario's `[crash]` fields set both, flags first.
    #[test]
    fn quick_cuts_counts_and_keeps_trial_length() {
        let own = quickstart(Some(3.0));
        let full = plan(&args(false, None, None), &own);
        let quick = plan(&args(true, None, None), &own);
        assert_eq!(full, (2, Some(3.0), 16));
        assert_eq!(
            quick,
            (2, Some(3.0), 8),
            "quickstart's 2 trials are within --quick"
        );
        let derived = quickstart(None);
        assert_eq!(plan(&args(true, None, None), &derived).1, None);
        assert_eq!(
            plan(&args(true, Some(7), Some(4.5)), &own),
            (7, Some(4.5), 8),
            "the flags win over --quick and the scenario"
        );
        let mut many = quickstart(None);
        many.crash.as_mut().unwrap().trials = 20;
        assert_eq!(plan(&args(true, None, None), &many).0, QUICK_CRASH_TRIALS);
        assert_eq!(plan(&args(false, None, None), &many).0, 20);
    }

    /// `image_trials` gives the image faults their own trial count, as a plan of their own;
    /// `--trials` sets both, `--quick` caps both.
    #[test]
    fn image_faults_take_their_own_trial_count() {
        let faults = |p: &CrashArgs| p.fault.iter().map(|f| f.name()).collect::<Vec<_>>();
        let mut s = quickstart(None);
        let c = s.crash.as_mut().unwrap();
        c.trials = 20;
        c.image_trials = Some(3);
        let plans = crash_args(&args(false, None, None), &s, Path::new("out"), "id");
        let got: Vec<_> = plans.iter().map(|p| (faults(p), p.trials)).collect();
        assert_eq!(got, [(vec!["kill9"], 20), (vec!["power-loss"], 3)]);
        let quick = crash_args(&args(true, None, None), &s, Path::new("out"), "id");
        let got: Vec<_> = quick.iter().map(|p| (faults(p), p.trials)).collect();
        assert_eq!(got, [(vec!["kill9", "power-loss"], QUICK_CRASH_TRIALS)]);
        let flag = crash_args(&args(false, Some(4), None), &s, Path::new("out"), "id");
        let got: Vec<_> = flag.iter().map(|p| (faults(p), p.trials)).collect();
        assert_eq!(
            got,
            [(vec!["kill9", "power-loss"], 4)],
            "one plan, in the scenario's order"
        );
        // The shipped quickstart: at least 20 kill -9 trials and 300 image states per cell.
        let path = crate::scenario::locate::find_scenario("quickstart").unwrap();
        let shipped = crate::scenario::load(&path).unwrap();
        let c = shipped.crash.as_ref().unwrap();
        assert!(c.trials >= 20);
        let states = c.image_states.unwrap() * c.image_trials.unwrap() as usize;
        assert!(states >= 300, "{states} image states spread per cell");
    }
}
