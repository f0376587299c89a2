//! `durlab run`: a scenario end to end: the bench matrix (through [`super::bench::execute`]),
//! recovery timing on each configuration's data directory, crash trials, then the report.

use super::CliError;
use super::bench;
use crate::cli::{BenchArgs, MatrixArgs, RunArgs};
use crate::driver::recovery;
use crate::progress::{Goal, Mode, Progress};
use crate::report::{self, load};
use crate::results::run_dir;

/// Longest bench per configuration with `--quick`, seconds.
pub const QUICK_DURATION_SECS: f64 = 3.0;

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
    Progress::note(
        mode,
        "the crash lab is not part of this build: crash results are missing (the report says so)",
    );

    Progress::note(mode, "== 4/4 report");
    let written = report::write_report(&outcome.out_dir)?;
    println!("{}", written.report.display());
    bench::failures_error(&outcome.run)
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
