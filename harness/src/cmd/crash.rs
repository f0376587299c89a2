//! `durlab crash`: run trials of each fault over each configuration, judge them, write and
//! print the results, and print a reproduction line for every violation.

use std::path::Path;

use durlab_engine::clock::now_ns;

use super::CliError;
use super::bench::{
    config_record, load_scenario, save_points, target_config_record, workload_record,
};
use super::overrides::apply_matrix;
use super::workdir::WorkDir;
use crate::cli::CrashArgs;
use crate::crashlab::images::DirModel;
use crate::crashlab::images::scratch::scratch_dir;
use crate::crashlab::lying::Lies;
use crate::crashlab::phase::Phase;
use crate::crashlab::report::{self, CrashRecord};
use crate::crashlab::runner::run_trials;
use crate::crashlab::{FaultKind, Lab, faults, resp_images};
use crate::driver::bench::{RunLimits, Stop};
use crate::driver::matrix::{self, EngineSetup};
use crate::driver::pacing;
use crate::oracle::Oracle;
use crate::progress::{Goal, Mode, Progress};
use crate::results::run_dir::{self, RunRecord, WorkloadRecord};
use crate::results::{machine, time};
use crate::scenario::locate;
use crate::scenario::model::{Persistence, Scenario};
use crate::servers::Target;
use crate::servers::drive::PIPELINE_TXNS;
use crate::workload::Workload;

/// Seconds each side of the recording filesystem's overhead measurement runs (at most; the
/// trial length when shorter).
const MOUNT_OVERHEAD_SECS: f64 = 2.0;

/// Runs `durlab crash`.
///
/// # Errors
/// Bad flags, a scenario that does not load, directories that cannot be written, or any
/// violating trial (after all results are written).
pub fn run(args: &CrashArgs) -> Result<(), CliError> {
    check_trial_secs(args.trial_secs)?;
    let targets: Vec<Target> = if args.matrix.target.is_empty() {
        vec![Target::Engine]
    } else {
        args.matrix.target.clone()
    };
    let faults = args.fault.clone();
    // One id for every part of this run.
    let run_id = args.output.run_id();
    if targets.iter().any(|t| t.is_resp()) {
        if targets.contains(&Target::Engine) {
            return Err(CliError(
                "--target engine cannot be mixed with RESP targets in one crash run: run them apart".into(),
            ));
        }
        if let Some(f) = faults
            .iter()
            .find(|f| targets.iter().any(|&t| !f.runs_on(t)))
        {
            return Err(CliError(format!(
                "fault {f} acts inside the engine's process; RESP targets (durlab-server, redis) take kill9 and the image faults (power-loss, prefix, torn, reorder)"
            )));
        }
    }
    let (mut scenario, scenario_file) = load_scenario(args.scenario.as_deref())?;
    apply_matrix(&mut scenario.matrix, &args.matrix);
    // The scenario's checks again, on the lists the flags chose (e.g. `--target redis` with a
    // reclaimer whose min idle time only the engine's workload clock can follow).
    crate::scenario::parse::validate(&scenario)
        .map_err(|e| CliError(format!("after applying the command-line flags: {e}")))?;
    if scenario
        .matrix
        .persistence
        .iter()
        .any(|p| *p != Persistence::Aof)
        && args.fault.iter().any(|f| f.damages_synced_data())
    {
        return Err(CliError(
            "bitflip and zero-sector damage the single log of persistence mode 'aof' only".into(),
        ));
    }
    if let Some(seed) = args.seed {
        scenario.workload.seed = seed;
    }
    if let Some(w) = args.writers {
        scenario.workload.writers = toml::Spanned::new(0..0, w);
    }
    let workload = Workload::new(&scenario.workload);
    let rate =
        pacing::resolve(scenario.workload.rate(), args.rate, args.arrivals).map_err(CliError)?;
    let setups: Vec<EngineSetup> = matrix::expand(&scenario.matrix)
        .into_iter()
        .filter(|s| !s.baseline_only)
        .collect();
    let mode = Mode::detect(args.output.quiet);
    let out_dir = args.output.dir(&scenario.name, &run_id);
    let mut work = WorkDir::new(args.dir.as_deref(), &run_id, args.keep)?;
    if let Some(w) = work.fs_warning() {
        Progress::note(mode, &w);
    }
    let oracle = match args.oracle_seed {
        Some(seed) => {
            let mut spec = scenario.workload.clone();
            spec.seed = seed;
            Workload::new(&spec)
        }
        None => workload.clone(),
    };
    let oracle = Oracle::new(oracle);
    let phases = phases(args, &scenario, &setups, mode)?;
    let scratch = if faults.iter().any(|f| f.needs_images()) {
        scratch_dir(args.image_dir.as_deref()).map_err(|e| CliError(e.to_string()))?
    } else {
        None
    };
    if let Some(t) = &scratch {
        Progress::note(
            mode,
            &format!(
                "crash images are built and recovered in {} ({})",
                t.path().display(),
                crate::results::machine::fs_type(t.path())
            ),
        );
    }
    let dir_model = args
        .dir_model
        .or(scenario.crash.as_ref().map(|c| c.dir_model))
        .unwrap_or_default();
    let mut lab = Lab {
        scenario_arg: args.scenario.clone(),
        workload: workload.clone(),
        record_bytes: crate::crashlab::loss::RecordBytes::new(workload.clone()),
        oracle,
        seed: workload.seed(),
        writers: *scenario.workload.writers.get_ref(),
        trial_secs: args.trial_secs,
        stall_ms: args.stall_ms,
        stall: args.stall,
        save_points: save_points(&scenario),
        states: args.states,
        writeback: args.writeback,
        lies: Lies {
            ack_before_sync: args.broken_ack_before_sync,
            skip_dir_sync: args.broken_skip_dir_sync,
            swallow_sync_errors: args.broken_swallow_sync_errors,
            early_sync: args.broken_early_sync,
        },
        phase: Phase::Steady,
        dir_model,
        copy: copy_procedure(args, scenario.crash.as_ref()),
        real_copies: args.real_copies,
        copy_before_save_done: args.broken_copy_before_save_done,
        work: work.path().to_path_buf(),
        image_root: scratch.as_ref().map(|t| t.path().to_path_buf()),
        keep_all: args.keep,
        contract: args.contract,
        redis_config: super::bench::redis_config(&scenario),
        target: Target::Engine,
        rate,
    };
    crate::crashlab::backup::check_real_copies(lab.real_copies).map_err(CliError)?;
    let started_utc = time::rfc3339_now();
    let trials: Vec<u64> = match args.trial {
        Some(k) => vec![k],
        None => (0..args.trials).collect(),
    };

    let mut records = Vec::new();
    // Redis has no backend or preallocation: each of its configurations runs once, not once
    // per engine setup that maps to it (`target_runs`).
    let runs = super::bench::target_runs(&setups, &targets);
    // The safe procedure asks for its own saves: a phase that saves back to back is not one
    // it can run in (the rest of the scenario's phases still run).
    let safe = lab.copy.procedure == crate::crashlab::images::copy::Procedure::Safe;
    if safe && faults.contains(&FaultKind::LiveCopy) && phases.iter().any(|p| p.churns()) {
        Progress::note(
            mode,
            "live-copy --procedure safe asks for its own saves: it skips the phases that save back to back",
        );
    }
    let cases: Vec<(Target, FaultKind, Phase, &EngineSetup)> = targets
        .iter()
        .flat_map(|&t| faults.iter().map(move |&f| (t, f)))
        .flat_map(|(t, f)| phases.iter().map(move |&p| (t, f, p)))
        .filter(|&(_, f, p)| !(safe && f == FaultKind::LiveCopy && p.churns()))
        .flat_map(|(t, f, p)| {
            runs.iter()
                .filter(move |(s, rt)| *rt == t && p.check(s.persistence).is_ok())
                .map(move |(s, _)| (t, f, p, s))
        })
        .collect();
    let total = cases.len();
    let mut violations = 0;
    for (i, &(target, fault, phase, setup)) in cases.iter().enumerate() {
        lab.phase = phase;
        lab.target = target;
        let label = target.label(setup);
        let plan = lab.trial(fault, setup);
        if plan.short_trial {
            Progress::note(
                mode,
                &format!(
                    "{}: {} s trials are shorter than the {} s this configuration needs to show its loss bound; its results are marked short_trial",
                    lab.case_name(fault, setup),
                    plan.secs,
                    plan.default_secs
                ),
            );
        }
        let mut progress = Progress::begin(
            mode,
            i + 1,
            total,
            &lab.case_name(fault, setup),
            Goal::Trials(trials.len() as u64),
        );
        let t0 = now_ns();
        let mut outcomes = Vec::new();
        let mut failed = Vec::new();
        let mut done = 0;
        let mut shown = report::ShownViolations::default();
        let results = run_trials(&lab, setup, fault, &trials, |_, _| {
            done += 1;
            progress.tick(std::time::Duration::from_nanos(now_ns() - t0), done);
        });
        for (k, result) in results {
            match result {
                Ok(outs) => {
                    let violating = outs.iter().any(|o| o.violation);
                    for mut out in outs {
                        if out.violation {
                            out.repro = Some(repro_line(args, &lab, fault, setup, k));
                            let kept = trial_path(&lab, fault, setup, k);
                            out.kept_dir
                                .get_or_insert_with(|| kept.display().to_string());
                            if shown.admit(out.verdict) {
                                eprintln!(
                                    "VIOLATION {fault} {label} trial {k}: {} {}\n  reproduce: {}\n  kept: {}",
                                    out.verdict,
                                    out.detail,
                                    out.repro.as_deref().unwrap_or_default(),
                                    out.kept_dir.as_deref().unwrap_or_default()
                                );
                            }
                        }
                        outcomes.push(out);
                    }
                    if violating {
                        work.retain();
                    } else if !lab.keep_all {
                        let _ = std::fs::remove_dir_all(trial_path(&lab, fault, setup, k));
                    }
                }
                Err(e) => failed.push(format!("trial {k}: {e}")),
            }
        }
        let config = if target.is_resp() {
            // One pipelined connection drives a RESP server (`servers::drive`).
            let mut c =
                target_config_record(setup, target, PIPELINE_TXNS as u32, &scenario, &workload);
            c.writers = 1;
            c
        } else {
            config_record(setup, &scenario, &workload)
        };
        let mut record = CrashRecord::new(
            fault,
            config,
            label.clone(),
            &run_id,
            lab.seed,
            plan.secs,
            outcomes,
        );
        record.loss_bound_ms = plan.bound_ms;
        record.short_trial = plan.short_trial;
        record.failed_trials = failed;
        record.phase = phase;
        record.case = lab.case_name(fault, setup);
        record.dir_model = fault.needs_images().then_some(lab.dir_model);
        record.set_rate(lab.rate_for(fault), 1.0 - workload.read_fraction());
        record.copy = (fault == FaultKind::LiveCopy).then(|| lab.copy.to_string());
        if target.is_resp() && (fault.needs_images() || lab.stalls(fault)) {
            let dir = lab.case_dir(fault, setup).join("overhead");
            let secs = plan.secs.min(MOUNT_OVERHEAD_SECS);
            match resp_images::mount_overhead(&lab, setup, &dir, secs) {
                Ok(o) => record.mount_overhead = Some(o),
                Err(e) => record
                    .failed_trials
                    .push(format!("filesystem overhead: {e}")),
            }
            let _ = std::fs::remove_dir_all(&dir);
        }
        if fault == FaultKind::FsyncStall {
            let dir = lab.case_dir(fault, setup).join("latency");
            match faults::stall_latency(&lab, setup, &dir) {
                Ok(s) => record.stall = Some(s),
                Err(e) => record.failed_trials.push(format!("stall latency: {e}")),
            }
        }
        eprint!("{}", shown.hidden_lines(fault, &label, &record.case));
        violations += record.violations;
        progress.finish(&format!(
            "{} trials, {} states ({} distinct images, {} ok), {} violations, lost acked p99 {:.0}, window max {:.1} ms{}",
            record.trials,
            record.states,
            record.distinct_states,
            record.verdicts.ok,
            record.violations,
            record.lost_acked_ops.p99,
            record.loss_window_ms.max,
            if record.failed_trials.is_empty() {
                String::new()
            } else {
                format!(", {} trials FAILED to run", record.failed_trials.len())
            }
        ));
        records.push(record);
    }

    let mut failures = std::collections::BTreeMap::new();
    for r in &records {
        let name = format!("crash-{}", r.case);
        run_dir::write_json(&out_dir.join(format!("{name}.json")), r)?;
        if !r.failed_trials.is_empty() {
            failures.insert(name.clone(), r.failed_trials.join("; "));
        }
    }
    write_run_record(
        &out_dir,
        &CrashRun {
            run_id: &run_id,
            scenario: &scenario,
            scenario_file: scenario_file.as_deref(),
            workload: &workload,
            writers: lab.writers,
            // The longest trial of the run.
            trial_secs: records.iter().map(|r| r.trial_secs).fold(0.0, f64::max),
            started_utc,
            machine_dir: work.path(),
            failures: failures.clone(),
            rate: lab.rate,
        },
    )?;

    if args.output.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&records).expect("records serialize")
        );
    } else {
        print!("{}", report::render(&records));
    }
    Progress::note(mode, &format!("results: {}", out_dir.display()));
    if violations > 0 {
        return Err(CliError(format!(
            "{violations} violating trial(s); data kept in {}",
            work.path().display()
        )));
    }
    if !failures.is_empty() {
        return Err(CliError(format!(
            "{} configuration(s) had trials that could not run",
            failures.len()
        )));
    }
    Ok(())
}

/// What the run.json of a crash-only run (`durlab crash`, `durlab kill9`) records.
pub(super) struct CrashRun<'a> {
    pub run_id: &'a str,
    pub scenario: &'a Scenario,
    pub scenario_file: Option<&'a Path>,
    pub workload: &'a Workload,
    pub writers: u32,
    /// The longest trial, seconds (the workload record's length).
    pub trial_secs: f64,
    pub started_utc: String,
    /// A directory on the storage the trials ran on (for the machine facts).
    pub machine_dir: &'a Path,
    /// Result file name (without `.json`) to why some of its trials could not run.
    pub failures: std::collections::BTreeMap<String, String>,
    /// The trials' open-loop target rate (`None`: flat-out).
    pub rate: Option<crate::driver::pacing::Rate>,
}

/// Writes `run`'s record into `out_dir`: `run.json`, or `run-crash.json` when a bench run's
/// `run.json` is already there (so that `durlab report` joins both and reads the bench's).
/// With it, `durlab report` reads a crash-only directory like a bench run's.
///
/// # Errors
/// When the file cannot be written.
pub(super) fn write_run_record(out_dir: &Path, run: &CrashRun<'_>) -> Result<(), CliError> {
    let (git_revision, git_dirty) = machine::git_revision(&locate::repo_root());
    let limits = RunLimits {
        writers: run.writers,
        stop: Stop::After(std::time::Duration::from_secs_f64(run.trial_secs)),
        warmup: std::time::Duration::ZERO,
    };
    let record = RunRecord {
        run_id: run.run_id.to_string(),
        scenario: run.scenario.name.clone(),
        scenario_file: run.scenario_file.map(|p| p.display().to_string()),
        question: run.scenario.question.clone(),
        seed: run.workload.seed(),
        started_utc: run.started_utc.clone(),
        finished_utc: time::rfc3339_now(),
        command_line: std::env::args().collect(),
        git_revision,
        git_dirty,
        versions: machine::versions(),
        machine: machine::collect(run.machine_dir),
        probe: None,
        workload: WorkloadRecord {
            crash_rate: run.rate,
            ..workload_record(run.scenario, run.workload, limits)
        },
        loss_tolerance_ms: run.scenario.loss_tolerance_ms,
        snapshot: run.scenario.snapshot.clone(),
        crash: run.scenario.crash.clone(),
        // Crash records are found by their `crash-` prefix; `configs` lists bench records.
        configs: Vec::new(),
        histograms: Default::default(),
        failures: run.failures.clone(),
    };
    let run_file = if out_dir.join("run.json").exists() {
        "run-crash.json"
    } else {
        "run.json"
    };
    run_dir::write_json(&out_dir.join(run_file), &record)?;
    Ok(())
}

/// Checks a user-given trial length.
///
/// # Errors
/// When it is not a positive, finite number of seconds.
pub fn check_trial_secs(secs: Option<f64>) -> Result<(), CliError> {
    match secs {
        Some(s) if !(s > 0.0 && s.is_finite()) => {
            Err(CliError(format!("--trial-secs must be positive, got {s}")))
        }
        _ => Ok(()),
    }
}

fn trial_path(lab: &Lab, fault: FaultKind, setup: &EngineSetup, k: u64) -> std::path::PathBuf {
    lab.case_dir(fault, setup).join(format!("trial-{k}"))
}

/// The phases to aim at: `--phase`, else the scenario's `[crash] states`, else steady. Pairs of
/// a phase and a configuration that cannot go together are skipped (with a note for the
/// scenario's phases).
///
/// # Errors
/// A phase given with `--phase` that no configuration of the matrix can run.
fn phases(
    args: &CrashArgs,
    scenario: &crate::scenario::model::Scenario,
    setups: &[EngineSetup],
    mode: Mode,
) -> Result<Vec<Phase>, CliError> {
    let explicit = !args.phase.is_empty();
    let wanted = if explicit {
        args.phase.clone()
    } else {
        scenario
            .crash
            .as_ref()
            .map_or_else(|| vec![Phase::Steady], |c| c.states.clone())
    };
    let mut phases = Vec::new();
    for p in wanted {
        let why_not: Vec<String> = setups
            .iter()
            .filter_map(|s| p.check(s.persistence).err())
            .collect();
        if why_not.len() < setups.len() {
            if !phases.contains(&p) {
                phases.push(p);
            }
        } else if explicit {
            return Err(CliError(format!("--phase {p}: {}", why_not[0])));
        } else {
            Progress::note(
                mode,
                &format!("skipping crash state '{p}' of the scenario: {}", why_not[0]),
            );
        }
    }
    if phases.is_empty() {
        phases.push(Phase::Steady);
    }
    Ok(phases)
}

/// The `live-copy` procedure: the flags, else the scenario's `[crash] copy` and
/// `copy_rate_mib`, else the defaults.
fn copy_procedure(
    args: &CrashArgs,
    plan: Option<&crate::scenario::model::CrashPlan>,
) -> crate::crashlab::images::copy::CopyProcedure {
    let default = crate::crashlab::images::copy::CopyProcedure::default();
    let source = args
        .copy
        .clone()
        .or_else(|| plan.and_then(|p| p.copy.clone()))
        .unwrap_or(default.source);
    let rate_bytes_per_sec = args
        .copy_rate_mib
        .or_else(|| plan.and_then(|p| p.copy_rate_mib))
        .map_or(default.rate_bytes_per_sec, |mib| mib << 20);
    let procedure = args
        .procedure
        .or_else(|| plan.and_then(|p| p.procedure))
        .unwrap_or(default.procedure);
    crate::crashlab::images::copy::CopyProcedure {
        procedure,
        source,
        rate_bytes_per_sec,
        ..default
    }
}

/// The `durlab crash` command line that repeats trial `k` exactly.
fn repro_line(
    args: &CrashArgs,
    lab: &Lab,
    fault: FaultKind,
    setup: &EngineSetup,
    k: u64,
) -> String {
    let mut line = String::from("durlab crash");
    if let Some(s) = &args.scenario {
        line.push(' ');
        line.push_str(s);
    }
    line.push_str(&format!(
        " --fault {fault} --policy {} --backend {} --prealloc {} --persistence {} --seed {} --trial {k} --trial-secs {} --writers {}",
        setup.policy, setup.backend, setup.prealloc, setup.persistence.name(), lab.seed, lab.trial(fault, setup).secs, lab.writers
    ));
    if lab.target.is_resp() {
        line.push_str(&format!(" --target {}", lab.target));
    }
    if let Some(c) = lab.contract {
        line.push_str(&format!(" --contract {c}"));
    }
    if lab.stalls(fault) {
        if fault != FaultKind::FsyncStall {
            line.push_str(" --stall");
        }
        line.push_str(&format!(" --stall-ms {}", lab.stall_ms));
    }
    if fault.needs_images() {
        line.push_str(&format!(" --states {}", lab.states));
        if lab.writeback {
            line.push_str(" --writeback");
        }
    }
    if lab.phase != Phase::Steady {
        line.push_str(&format!(" --phase {}", lab.phase));
    }
    if let Some(r) = lab.rate_for(fault) {
        line.push_str(&format!(
            " --rate {} --arrivals {}",
            r.ops_per_sec, r.arrivals
        ));
    } else if lab.rate.is_some() {
        line.push_str(" --rate flat-out");
    }
    if fault.needs_images() && lab.dir_model != DirModel::default() {
        line.push_str(&format!(" --dir-model {}", lab.dir_model));
    }
    if fault == FaultKind::LiveCopy {
        line.push_str(&format!(
            " --copy {} --copy-rate-mib {} --procedure {}",
            lab.copy.source,
            lab.copy.rate_bytes_per_sec >> 20,
            lab.copy.procedure
        ));
        if lab.real_copies > 0 {
            line.push_str(&format!(" --real-copies {}", lab.real_copies));
        }
        if lab.copy_before_save_done {
            line.push_str(" --broken-copy-before-save-done");
        }
    }
    if lab.lies.ack_before_sync {
        line.push_str(" --broken-ack-before-sync");
    }
    if lab.lies.skip_dir_sync {
        line.push_str(" --broken-skip-dir-sync");
    }
    if lab.lies.swallow_sync_errors {
        line.push_str(" --broken-swallow-sync-errors");
    }
    if lab.lies.early_sync {
        line.push_str(" --broken-early-sync");
    }
    if let Some(seed) = args.oracle_seed {
        line.push_str(&format!(" --oracle-seed {seed}"));
    }
    let dir = lab.work.parent().unwrap_or(Path::new("."));
    line.push_str(&format!(" --dir {} --keep", dir.display()));
    line
}
