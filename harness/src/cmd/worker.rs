//! `durlab worker`: the hidden child process of `durlab crash --fault kill9`.

use nix::sys::signal::Signal;

use super::CliError;
use super::bench::{load_scenario, save_points};
use crate::cli::WorkerArgs;
use crate::crashlab::lying::Lies;
use crate::crashlab::worker::{self, WorkerPlan};
use crate::driver::matrix::EngineSetup;
use crate::driver::pacing::Rate;
use crate::workload::Workload;

/// Runs the worker until it is killed (or `--max-secs` pass).
///
/// # Errors
/// The scenario does not load, or the worker fails (engine error, full ack page).
pub fn run(args: &WorkerArgs) -> Result<(), CliError> {
    // Die with the crash lab rather than run on as an orphan.
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
    let (mut scenario, _) = load_scenario(args.scenario.as_deref())?;
    scenario.workload.seed = args.seed;
    let workload = Workload::new(&scenario.workload);
    let setup = EngineSetup {
        policy: args.policy,
        backend: args.backend,
        prealloc: args.prealloc,
        persistence: args.persistence,
        baseline_only: false,
    };
    let config = setup.engine_config(&args.dir, &save_points(&scenario));
    args.phase.check(args.persistence).map_err(CliError)?;
    let plan = WorkerPlan {
        config,
        writers: args.writers,
        ack_page: args.ack_page.clone(),
        capacity_lsns: args.capacity,
        max_secs: args.max_secs,
        stall: args.stall_sync.zip(args.stall_ms),
        trace: args.trace.clone(),
        phase: args.phase,
        lies: Lies {
            ack_before_sync: args.broken_ack_before_sync,
            skip_dir_sync: args.broken_skip_dir_sync,
            swallow_sync_errors: args.broken_swallow_sync_errors,
            early_sync: args.broken_early_sync,
        },
        rate: match (args.rate, args.arrival_seed) {
            (Some(r), Some(seed)) => Some((Rate::new(r, args.arrivals).map_err(CliError)?, seed)),
            _ => None,
        },
    };
    worker::run(plan, &workload).map_err(CliError)
}
