//! `durlab run`, recovery phase: `Engine::open` timed on every bench configuration's data
//! directory, then the recovery sweep (recovery time against data size per persistence
//! mode); both go to `recovery.json`.

use durlab_engine::{BackendKind, FsyncPolicy, Prealloc};

use super::CliError;
use super::bench::{BenchOutcome, config_record, save_points};
use crate::driver::matrix::EngineSetup;
use crate::driver::{recovery, recovery_sweep};
use crate::progress::{Goal, Mode, Progress};
use crate::report::load;
use crate::report::model::RecoveryRecord;
use crate::report::plots::style;
use crate::results::run_dir;
use crate::workload::Workload;

/// `--quick` divides each step of `[recovery] data_mb` by this.
pub const QUICK_SIZE_DIVISOR: f64 = 4.0;

const MIB: f64 = 1024.0 * 1024.0;

/// Measures recovery on the bench's data directories (which must still exist) and runs the
/// sweep in `<work>/recovery-<mode>/`, then writes `recovery.json` into the result directory.
/// A measurement that fails is shown as FAILED and left out (a failed sweep step ends its
/// mode's sweep).
///
/// # Errors
/// `recovery.json` that cannot be written.
pub fn run(outcome: &BenchOutcome, quick: bool, mode: Mode) -> Result<(), CliError> {
    Progress::note(
        mode,
        "== 2/5 recovery time (Engine::open) on each configuration's data directory",
    );
    let mut measured = after_bench(outcome, mode);
    Progress::note(
        mode,
        "== 2/5 recovery time against data size (fill one directory per persistence mode in \
         steps, reopen after each)",
    );
    measured.extend(sweep(outcome, quick, mode));
    run_dir::write_json(&outcome.out_dir.join(load::RECOVERY_FILE), &measured)?;
    Ok(())
}

fn after_bench(outcome: &BenchOutcome, mode: Mode) -> Vec<RecoveryRecord> {
    let mut measured = Vec::new();
    let n = outcome.records.len();
    for (i, record) in outcome.records.iter().enumerate() {
        let label = format!("recover {}", record.label);
        let progress = Progress::begin(mode, i + 1, n, &label, Goal::Commands(0));
        match recovery::measure(record) {
            Ok(Some(m)) => {
                progress.finish(&summary(&m));
                measured.push(m);
            }
            Ok(None) => progress.finish("skipped (policy off writes no files, or a server target)"),
            Err(e) => progress.finish(&format!("FAILED: {e}")),
        }
    }
    measured
}

/// The sweep: for each persistence mode (`[recovery] persistence`, else the matrix's), one
/// directory under policy `no` (recovery reads the same files under every policy, and `no`
/// fills fastest), the matrix's first backend and no preallocation (preallocated space would
/// count as data), filled to each step in turn.
fn sweep(outcome: &BenchOutcome, quick: bool, mode: Mode) -> Vec<RecoveryRecord> {
    let scenario = &outcome.scenario;
    let spec = &scenario.recovery;
    let mut steps: Vec<f64> = spec
        .data_mb
        .get_ref()
        .iter()
        .map(|&mb| if quick { mb / QUICK_SIZE_DIVISOR } else { mb })
        .collect();
    steps.sort_by(f64::total_cmp);
    steps.dedup();
    let modes = if spec.persistence.is_empty() {
        scenario.matrix.persistence.clone()
    } else {
        spec.persistence.clone()
    };
    let workload = Workload::new(&scenario.workload);
    let counts = recovery_sweep::commands_for(&workload, &steps);
    let writers = *scenario.workload.writers.get_ref();
    let backend = scenario
        .matrix
        .backends
        .first()
        .copied()
        .unwrap_or(BackendKind::Pwrite);
    let total = modes.len() * steps.len();
    let mut measured = Vec::new();
    for (mi, &persistence) in modes.iter().enumerate() {
        let setup = EngineSetup {
            policy: FsyncPolicy::No,
            backend,
            prealloc: Prealloc::None,
            persistence,
            baseline_only: false,
        };
        let label = setup.label();
        let dir = outcome.work.path().join(format!("recovery-{label}"));
        let config = || setup.engine_config(&dir, &save_points(scenario));
        let record = config_record(&setup, scenario, &workload);
        for (si, (&mb, &commands)) in steps.iter().zip(&counts).enumerate() {
            let progress = Progress::begin(
                mode,
                mi * steps.len() + si + 1,
                total,
                &format!("recover {label} after {} MiB of log", style::plain(mb)),
                Goal::Commands(0),
            );
            let step = recovery_sweep::fill(config(), &workload, writers, commands)
                .and_then(|()| recovery::time_open(&label, &record, config()));
            match step {
                Ok(mut m) => {
                    m.fill_mb = Some(mb);
                    m.fill_commands = Some(commands);
                    progress.finish(&summary(&m));
                    measured.push(m);
                }
                Err(e) => {
                    progress.finish(&format!(
                        "FAILED: {e}; the larger steps of {label} are skipped"
                    ));
                    break;
                }
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
    measured
}

fn summary(m: &RecoveryRecord) -> String {
    format!(
        "{:.1} ms for {:.2} MiB, LSN {}",
        m.open_ms,
        m.data_bytes as f64 / MIB,
        m.recovered_lsn
    )
}
