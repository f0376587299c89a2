//! `durlab bench`: load the scenario, run its matrix, write and print results.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use durlab_engine::{EngineConfig, FsyncPolicy, Prealloc};

use super::CliError;
use super::overrides;
use super::workdir::WorkDir;
use crate::cli::BenchArgs;
use crate::driver::bench::{self, RunLimits, Stop};
use crate::driver::matrix::{self, EngineSetup};
use crate::driver::resp;
use crate::probe;
use crate::progress::{Goal, Mode, Progress};
use crate::results::json::{BenchRecord, ConfigRecord};
use crate::results::run_dir::{self, HistogramRecord, RunRecord, WorkloadRecord};
use crate::results::{machine, ratios, table, time};
use crate::scenario::{self, Scenario, builtin, locate};
use crate::servers::{ServerProcess, ServerSpec, Target};
use crate::workload::Workload;

/// What [`execute`] produced: the records and `run.json` it wrote, and the data directories.
#[derive(Debug)]
pub struct BenchOutcome {
    /// One record per configuration that completed, in run order.
    pub records: Vec<BenchRecord>,
    /// What was written as `run.json`.
    pub run: RunRecord,
    /// The result directory (holding `<label>.json` and `run.json`).
    pub out_dir: PathBuf,
    /// The data directories (`<work>/<label>`); removed when this is dropped unless `--keep`.
    pub work: WorkDir,
    /// The scenario after command-line overrides.
    pub scenario: Scenario,
}

/// Runs `durlab bench`: [`execute`], then prints the table (or `--json`).
///
/// # Errors
/// A scenario that does not load, bad flags, a data or results directory that cannot be
/// written, or configurations that failed (all others still run and are written).
pub fn run(args: &BenchArgs) -> Result<(), CliError> {
    let mode = Mode::detect(args.output.quiet);
    let outcome = execute(args, mode)?;
    if args.output.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&outcome.records).expect("records serialize")
        );
    } else {
        print!("{}", table::render(&outcome.records));
    }
    Progress::note(mode, &format!("results: {}", outcome.out_dir.display()));
    if args.keep {
        Progress::note(
            mode,
            &format!("data kept in {}", outcome.work.path().display()),
        );
    }
    failures_error(&outcome.run)
}

/// An error listing the failed configurations of `run`, if any.
///
/// # Errors
/// When `run.failures` is not empty.
pub fn failures_error(run: &RunRecord) -> Result<(), CliError> {
    if run.failures.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = run
        .failures
        .iter()
        .map(|(l, e)| format!("{l}: {e}"))
        .collect();
    Err(CliError(format!(
        "{} configuration(s) failed:\n  {}",
        run.failures.len(),
        list.join("\n  ")
    )))
}

/// Loads the scenario, applies the flags, runs the probe and the matrix, and writes every
/// `<label>.json` and `run.json`. Configurations that fail are recorded in
/// `run.failures` and the others still run; the data directories stay until the returned
/// [`BenchOutcome::work`] is dropped.
///
/// # Errors
/// A scenario that does not load, bad flags, a probe that fails, or a data or results
/// directory that cannot be written.
pub fn execute(args: &BenchArgs, mode: Mode) -> Result<BenchOutcome, CliError> {
    let (mut scenario, scenario_file) = load_scenario(args.scenario.as_deref())?;
    overrides::apply(&mut scenario, args)?;
    let workload = Workload::new(&scenario.workload);
    let limits = limits(&scenario);
    let mut setups = matrix::expand(&scenario.matrix);
    if args.no_baseline {
        setups.retain(|s| !s.baseline_only);
    }
    let writer_counts = match args.writers.as_slice() {
        [] | [_] => vec![limits.writers],
        several => several.to_vec(),
    };

    let run_id = args.output.run_id();
    let out_dir = args.output.dir(&scenario.name, &run_id);
    let work = WorkDir::new(args.dir.as_deref(), &run_id, args.keep)?;
    if let Some(w) = work.fs_warning() {
        Progress::note(mode, &w);
    }
    let started_utc = time::rfc3339_now();

    let probe = if args.no_probe {
        None
    } else {
        Progress::note(mode, &format!("probe (quick) in {}", work.path().display()));
        let probe_dir = work.path().join("probe");
        std::fs::create_dir_all(&probe_dir)?;
        let p = probe::run(&probe_dir, true)?;
        let _ = std::fs::remove_dir_all(&probe_dir);
        Some(p)
    };

    let mut records = Vec::new();
    let mut histograms = BTreeMap::new();
    let mut failures = BTreeMap::new();
    let runs: Vec<(EngineSetup, Target, u32)> = target_runs(&setups, &scenario.matrix.targets)
        .into_iter()
        .flat_map(|(s, t)| writer_counts.iter().map(move |&w| (s, t, w)))
        .collect();
    let pipeline = scenario.matrix.pipeline;
    for (i, (setup, target, writers)) in runs.iter().enumerate() {
        let (setup, target) = (setup, *target);
        let limits = RunLimits {
            writers: *writers,
            ..limits
        };
        let label = if writer_counts.len() > 1 {
            format!("{}-w{writers}", target_label(setup, target))
        } else {
            target_label(setup, target)
        };
        let dir = work.path().join(&label);
        let config = setup.engine_config(&dir, &save_points(&scenario));
        let goal = match limits.stop {
            Stop::After(d) => Goal::Duration(d),
            Stop::Commands(n) => Goal::Commands(n),
        };
        let adjacent = |when: &str| -> Result<Option<f64>, CliError> {
            if probe.is_none() || setup.policy != FsyncPolicy::Always {
                return Ok(None);
            }
            let kind = probe::kind_for(setup.prealloc);
            probe::matching_iops(work.path(), kind, workload.value_size().mean())
                .map(Some)
                .map_err(|e| {
                    CliError(format!(
                        "probe {when} {label} in {}: {e}",
                        work.path().display()
                    ))
                })
        };
        let probe_before = adjacent("before")?;
        let mut progress = Progress::begin(mode, i + 1, runs.len(), &label, goal);
        let result = if target == Target::Engine {
            bench::run(config, &workload, limits, &mut progress).map_err(|e| e.to_string())
        } else {
            run_resp(
                target,
                &config,
                &redis_config(&scenario),
                &workload,
                limits,
                pipeline,
                &mut progress,
            )
        };
        let probe_after = adjacent("after")?;
        match result {
            Ok(m) => {
                progress.finish(&format!(
                    "{:.0} ops/s, p99 {:.1} us, {} syncs",
                    m.ops_per_sec(),
                    m.latency.summary_us().p99,
                    m.stats.syncs
                ));
                histograms.insert(label.clone(), HistogramRecord::v2(m.latency.to_v2_base64()));
                let mut config =
                    target_config_record(setup, target, pipeline, &scenario, &workload);
                config.writers = limits.writers;
                let mut record = BenchRecord::new(setup, config, &run_id, workload.seed(), &m);
                record.label = label.clone();
                record.probe_fdatasync_iops =
                    probe_before.zip(probe_after).map(|(a, b)| (a + b) / 2.0);
                records.push(record);
            }
            Err(e) => {
                progress.finish(&format!("FAILED: {e}"));
                failures.insert(label, e.to_string());
            }
        }
    }
    ratios::apply(&mut records, probe.as_ref());

    let (git_revision, git_dirty) = machine::git_revision(&locate::repo_root());
    let run = RunRecord {
        run_id: run_id.clone(),
        scenario: scenario.name.clone(),
        scenario_file: scenario_file.map(|p| p.display().to_string()),
        question: scenario.question.clone(),
        seed: workload.seed(),
        started_utc,
        finished_utc: time::rfc3339_now(),
        command_line: std::env::args().collect(),
        git_revision,
        git_dirty,
        versions: machine::versions(),
        machine: machine::collect(work.path()),
        probe,
        workload: workload_record(&scenario, &workload, limits),
        loss_tolerance_ms: scenario.loss_tolerance_ms,
        snapshot: scenario.snapshot.clone(),
        crash: scenario.crash.clone(),
        configs: records.iter().map(|r| r.label.clone()).collect(),
        histograms,
        failures,
    };
    run_dir::write_all(&out_dir, &records, &run)?;
    Ok(BenchOutcome {
        records,
        run,
        out_dir,
        work,
        scenario,
    })
}

/// Each configuration once per target, targets alternating within a configuration. Redis
/// ignores backend and preallocation, so it runs once per policy and persistence mode.
pub fn target_runs(setups: &[EngineSetup], targets: &[Target]) -> Vec<(EngineSetup, Target)> {
    let mut runs = Vec::new();
    let mut redis_done = Vec::new();
    for setup in setups {
        for &target in targets {
            if target == Target::Redis {
                if redis_done.contains(&(setup.policy, setup.persistence)) {
                    continue;
                }
                redis_done.push((setup.policy, setup.persistence));
            }
            runs.push((*setup, target));
        }
    }
    runs
}

/// The label of `setup` on `target`: the setup's own for `engine`, prefixed with
/// `durlab-server-`, or `redis-<policy>-<persistence>` (Redis has no backend or prealloc).
pub fn target_label(setup: &EngineSetup, target: Target) -> String {
    target.label(setup)
}

/// The server spec that runs `config` on `target` (logs next to the data directory).
pub fn server_spec(
    target: Target,
    config: &EngineConfig,
    s: &Scenario,
) -> Result<ServerSpec, CliError> {
    let mut spec = ServerSpec::for_config(target, config).map_err(|e| CliError(e.to_string()))?;
    spec.redis_config = redis_config(s);
    Ok(spec)
}

/// The scenario's further Redis settings, in key order.
pub fn redis_config(s: &Scenario) -> Vec<(String, String)> {
    s.matrix
        .redis_config
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Starts the server for `config` on `target`, drives it, and stops it (SIGKILL: what it
/// persisted is not measured here).
fn run_resp(
    target: Target,
    config: &EngineConfig,
    redis_config: &[(String, String)],
    workload: &Workload,
    limits: RunLimits,
    pipeline: u32,
    progress: &mut Progress,
) -> Result<bench::Measurement, String> {
    let mut spec = ServerSpec::for_config(target, config).map_err(|e| e.to_string())?;
    spec.redis_config = redis_config.to_vec();
    let mut server = ServerProcess::start(&spec).map_err(|e| e.to_string())?;
    let m = resp::run(&server, workload, limits, pipeline, progress).map_err(|e| e.to_string());
    server
        .kill9()
        .map_err(|e| format!("stopping {target}: {e}"))?;
    m
}

/// Loads the scenario named by `arg` (a name or path), or the built-in one; with its file.
///
/// # Errors
/// When the scenario cannot be found or does not load.
pub fn load_scenario(arg: Option<&str>) -> Result<(Scenario, Option<PathBuf>), CliError> {
    match arg {
        None => Ok((builtin::scenario(), None)),
        Some(a) => {
            let path = locate::find_scenario(a).map_err(CliError)?;
            let s = scenario::load(&path).map_err(|e| CliError(e.to_string()))?;
            Ok((s, Some(path)))
        }
    }
}

fn limits(s: &Scenario) -> RunLimits {
    let w = &s.workload;
    let writers = *w.writers.get_ref();
    match (&w.duration_secs, &w.commands) {
        (Some(d), _) => {
            let d = *d.get_ref();
            let warmup = w
                .warmup_secs
                .as_ref()
                .map(|x| *x.get_ref())
                .unwrap_or(d * 0.1);
            RunLimits {
                writers,
                stop: Stop::After(Duration::from_secs_f64(d)),
                warmup: Duration::from_secs_f64(warmup),
            }
        }
        (None, c) => {
            let n = c.as_ref().map(|c| *c.get_ref()).unwrap_or(1);
            let warmup = w.warmup_secs.as_ref().map(|x| *x.get_ref()).unwrap_or(0.0);
            RunLimits {
                writers,
                stop: Stop::Commands(n),
                warmup: Duration::from_secs_f64(warmup),
            }
        }
    }
}

/// The scenario's snapshot save points (none without a `[snapshot]` table).
pub fn save_points(s: &Scenario) -> Vec<(u64, u64)> {
    s.snapshot
        .as_ref()
        .map(|s| s.save.clone())
        .unwrap_or_default()
}

/// The `config` part of a result record.
pub fn config_record(setup: &EngineSetup, s: &Scenario, w: &Workload) -> ConfigRecord {
    let (min, max) = w.value_size().bounds();
    ConfigRecord {
        policy: setup.policy.name().into(),
        backend: setup.backend.name().into(),
        prealloc: setup.prealloc.name().into(),
        writers: *s.workload.writers.get_ref(),
        value_size: w.value_size().mean(),
        value_size_min: min,
        value_size_max: max,
        persistence: setup.persistence.name().into(),
        scenario: s.name.clone(),
        baseline_only: setup.baseline_only,
        target: Target::Engine.name().into(),
        pipeline: 1,
        redis_config: Vec::new(),
        server_version: None,
    }
}

/// [`config_record`] of `setup` run on `target` with `pipeline`: Redis has no backend or
/// preallocation (`redis`, `none`), and only RESP targets pipeline.
pub fn target_config_record(
    setup: &EngineSetup,
    target: Target,
    pipeline: u32,
    s: &Scenario,
    w: &Workload,
) -> ConfigRecord {
    let mut config = config_record(setup, s, w);
    config.target = target.name().into();
    config.pipeline = if target.is_resp() { pipeline } else { 1 };
    match target {
        Target::Redis => {
            config.backend = "redis".into();
            config.prealloc = Prealloc::None.name().into();
            config.redis_config = crate::servers::redis_server::settings(
                setup.policy,
                setup.persistence,
                &save_points(s),
                &redis_config(s),
            )
            .into_iter()
            .map(|(k, v)| {
                if v.is_empty() {
                    format!("{k} \"\"")
                } else {
                    format!("{k} {v}")
                }
            })
            .collect();
            config.server_version = Some(crate::servers::redis_server::version());
        }
        Target::DurlabServer => {
            config.server_version = Some(format!("durlab {}", env!("CARGO_PKG_VERSION")));
        }
        Target::Engine => {}
    }
    config
}

/// The `workload` part of `run.json`.
pub fn workload_record(s: &Scenario, w: &Workload, limits: RunLimits) -> WorkloadRecord {
    let (min, max) = w.value_size().bounds();
    WorkloadRecord {
        writers: limits.writers,
        duration_secs: s.workload.duration_secs.as_ref().map(|d| *d.get_ref()),
        commands: s.workload.commands.as_ref().map(|c| *c.get_ref()),
        warmup_secs: limits.warmup.as_secs_f64(),
        read_fraction: w.read_fraction(),
        value_size_min: min,
        value_size_max: max,
        crash_rate: s.workload.rate(),
    }
}
