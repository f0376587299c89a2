//! `durlab run`: a scenario end to end: the bench matrix (through [`super::bench::execute`]),
//! recovery timing on each configuration's data directory, crash trials, then the report.

use std::path::Path;

use durlab_engine::{FsyncPolicy, Persistence};

use super::CliError;
use super::{bench, crash};
use crate::cli::{BenchArgs, CrashArgs, MatrixArgs, RunArgs};
use crate::crashlab::FaultKind;
use crate::driver::recovery;
use crate::progress::{Goal, Mode, Progress};
use crate::report::{self, load};
use crate::results::run_dir;
use crate::scenario::Scenario;

/// Longest bench per configuration with `--quick`, seconds.
pub const QUICK_DURATION_SECS: f64 = 3.0;

/// Most crash trials per configuration and fault with `--quick`.
pub const QUICK_CRASH_TRIALS: u64 = 2;

/// Runs `durlab run`.
///
/// # Errors
/// As `durlab bench` (a configuration that failed is reported after the report is written),
/// plus recovery measurements or the report that cannot be written.
pub fn run(args: &RunArgs) -> Result<(), CliError> {
    let mode = Mode::detect(args.quiet);
    let bench_args = bench_args(args)?;
    Progress::note(mode, "== 1/4 bench matrix");
    let outcome = bench::execute(&bench_args, mode)?;

    Progress::note(
        mode,
        "== 2/4 recovery time (Engine::open on each data directory)",
    );
    let mut measured = Vec::new();
    let n = outcome.records.len();
    for (i, record) in outcome.records.iter().enumerate() {
        let progress = Progress::begin(
            mode,
            i + 1,
            n,
            &format!("recover {}", record.label),
            Goal::Commands(0),
        );
        match recovery::measure(record) {
            Ok(Some(m)) => {
                progress.finish(&format!(
                    "{:.1} ms for {:.2} MiB, LSN {}",
                    m.open_ms,
                    m.data_bytes as f64 / (1024.0 * 1024.0),
                    m.recovered_lsn
                ));
                measured.push(m);
            }
            Ok(None) => progress.finish("skipped (policy off writes no files, or a server target)"),
            Err(e) => progress.finish(&format!("FAILED: {e}")),
        }
    }
    run_dir::write_json(&outcome.out_dir.join(load::RECOVERY_FILE), &measured)?;
    drop(outcome.work);

    Progress::note(mode, "== 3/4 crash trials");
    let crashed = match crash_args(
        args,
        &outcome.scenario,
        &outcome.out_dir,
        &outcome.run.run_id,
    ) {
        Some(crash_args) => crash::run(&crash_args),
        None => {
            Progress::note(
                mode,
                "the scenario has no [crash] plan the crash lab can run here: crash results are \
                 missing (the report says so)",
            );
            Ok(())
        }
    };

    Progress::note(mode, "== 4/4 report");
    let written = report::write_report(&outcome.out_dir)?;
    println!("{}", written.report.display());
    bench::failures_error(&outcome.run)?;
    crashed
}

/// The `durlab crash` flags `durlab run` amounts to: the scenario's `[crash]` plan over its
/// matrix, without policy `off` (which promises nothing) and without mode `snapshot` (not
/// supported by the crash lab yet). `None` when nothing is left to run.
fn crash_args(
    args: &RunArgs,
    scenario: &Scenario,
    out_dir: &Path,
    run_id: &str,
) -> Option<CrashArgs> {
    let plan = scenario.crash.as_ref()?;
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
        return None;
    }
    let trials = u64::from(plan.trials);
    Some(CrashArgs {
        scenario: Some(args.scenario.clone()),
        fault,
        matrix: MatrixArgs {
            policy,
            backend: matrix.backends.clone(),
            prealloc: matrix.prealloc.clone(),
            persistence,
            // The crash lab's own trials run the engine in a worker process; RESP targets'
            // kill -9 trials are `durlab crash --target ... --fault kill9`.
            target: Vec::new(),
        },
        trials: if args.quick {
            trials.min(QUICK_CRASH_TRIALS)
        } else {
            trials
        },
        trial: None,
        states: if args.quick { 8 } else { 16 },
        seed: None,
        trial_secs: if args.quick { 0.5 } else { 1.0 },
        stall_ms: 1000,
        stall: false,
        writers: None,
        writeback: false,
        // The scenario's `[crash] states` and `dir_model`.
        phase: Vec::new(),
        dir_model: None,
        broken_skip_dir_sync: false,
        dir: args.dir.clone(),
        keep: false,
        out: Some(out_dir.to_path_buf()),
        run_id: Some(run_id.to_string()),
        json: false,
        quiet: args.quiet,
        broken_ack_before_sync: false,
        oracle_seed: None,
    })
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
        writers: None,
        pipeline: None,
        duration,
        commands: None,
        warmup: None,
        value_size: None,
        seed: None,
        mix: None,
        dir: args.dir.clone(),
        keep: false,
        out: args.out.clone(),
        run_id: args.run_id.clone(),
        no_probe: args.no_probe,
        quiet: args.quiet,
        json: false,
    })
}
