//! `durlab run`, group-commit phase: `durlab bench` of the matrix's `always` configurations
//! once per writer count of `[group_commit]`, written as a run directory of its own,
//! `<out>/group-commit/` (records `<label>-w<N>.json` and `run.json` with seed, machine and
//! versions), which `durlab report` plots as throughput against writers.

use std::path::Path;

use durlab_engine::FsyncPolicy;

use super::CliError;
use super::bench::{self, BenchOutcome};
use crate::cli::{BenchArgs, MatrixArgs, OutputArgs, RunArgs};
use crate::progress::{Mode, Progress};
use crate::report::load;
use crate::scenario::Scenario;

/// Longest point of the sweep with `--quick`, seconds.
pub const QUICK_POINT_SECS: f64 = 1.0;

/// Length of a point when neither `[group_commit] duration_secs` nor the workload's
/// `duration_secs` gives one (a workload of `commands`), seconds.
pub const DEFAULT_POINT_SECS: f64 = 5.0;

/// Runs the sweep into `<out_dir>/group-commit/`; `None` (with a note) when the matrix has no
/// `always` configuration.
///
/// # Errors
/// As [`bench::execute`].
pub fn run(
    args: &RunArgs,
    scenario: &Scenario,
    out_dir: &Path,
    run_id: &str,
    mode: Mode,
) -> Result<Option<BenchOutcome>, CliError> {
    let spec = &scenario.group_commit;
    let writers = spec.writers.get_ref();
    Progress::note(
        mode,
        &format!(
            "== 3/5 group commit: `always` configurations with {} writers",
            writers
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    );
    if !scenario.matrix.policies.contains(&FsyncPolicy::Always) {
        Progress::note(
            mode,
            "the matrix has no `always` configuration: no group-commit sweep",
        );
        return Ok(None);
    }
    let own = spec
        .duration_secs
        .as_ref()
        .or(scenario.workload.duration_secs.as_ref())
        .map_or(DEFAULT_POINT_SECS, |d| *d.get_ref());
    let duration = if args.quick {
        own.min(QUICK_POINT_SECS)
    } else {
        own
    };
    let sweep = BenchArgs {
        scenario: Some(args.scenario.clone()),
        matrix: MatrixArgs {
            policy: vec![FsyncPolicy::Always],
            ..MatrixArgs::default()
        },
        writers: writers.clone(),
        pipeline: None,
        duration: Some(duration),
        commands: None,
        warmup: Some(duration * 0.1),
        value_size: None,
        seed: None,
        mix: None,
        dir: args.dir.clone(),
        keep: false,
        no_probe: true,
        no_baseline: true,
        output: OutputArgs {
            out: Some(out_dir.join(load::GROUP_COMMIT_DIR)),
            run_id: Some(run_id.to_string()),
            json: false,
            quiet: args.output.quiet,
        },
    };
    bench::execute(&sweep, mode).map(Some)
}
