//! `durlab kill9`: kill -9 trials against RESP targets (durlab serve, redis-server): the crash
//! lab's `kill9` fault on those targets (`durlab crash --fault kill9 --target ...`, the runner
//! in `crashlab/resp_kill9.rs`), with the same verdicts, loss figures and result files
//! (`crash-kill9-<label>.json` and run.json, which `durlab report` reads).

use super::CliError;
use crate::cli::{CrashArgs, Kill9Args};
use crate::crashlab::FaultKind;
use crate::servers::Target;

/// Runs the trials and writes the results, as `durlab crash --fault kill9` does for RESP
/// targets (default `durlab-server`).
///
/// # Errors
/// The engine as a target (its kill -9 trials are `durlab crash`'s), and whatever
/// [`super::crash::run`] returns: a scenario that does not load, a directory that cannot be
/// written, or violations (after everything is written, each with its reproduction line).
pub fn run(args: &Kill9Args) -> Result<(), CliError> {
    let mut matrix = args.matrix.clone();
    if matrix.target.is_empty() {
        matrix.target = vec![Target::DurlabServer];
    }
    if matrix.target.contains(&Target::Engine) {
        return Err(CliError("durlab kill9 drives RESP targets (durlab-server, redis); the engine's own kill -9 trials belong to the crash lab".into()));
    }
    super::crash::run(&CrashArgs {
        scenario: args.scenario.clone(),
        fault: vec![FaultKind::Kill9],
        matrix,
        trials: args.trials,
        seed: args.seed,
        trial_secs: Some(args.trial_secs),
        rate: args.rate,
        arrivals: args.arrivals,
        dir: args.dir.clone(),
        keep: args.keep,
        output: args.output.clone(),
        // As `durlab crash`'s flags default (unused by kill -9 without a stall).
        stall_ms: 1000,
        states: 16,
        ..CrashArgs::default()
    })
}
