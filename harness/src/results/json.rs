//! The per-configuration result record (one JSON object per configuration; the array printed
//! by `durlab bench --json`). Every field is documented in docs/results.md.

use serde::{Deserialize, Serialize};

use crate::driver::bench::Measurement;
use crate::driver::latency::LatencySummaryUs;
use crate::driver::matrix::EngineSetup;

/// The configuration a record measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConfigRecord {
    pub policy: String,
    pub backend: String,
    pub prealloc: String,
    pub writers: u32,
    /// Mean value size in bytes of the workload's default value distribution.
    pub value_size: f64,
    pub value_size_min: u32,
    pub value_size_max: u32,
    pub persistence: String,
    pub scenario: String,
    /// True when the harness added this `off` run only as the `ratio_to_off` baseline.
    pub baseline_only: bool,
    /// `engine`, `durlab-server` or `redis` (records from before targets existed: `engine`).
    #[serde(default = "engine_target")]
    pub target: String,
    /// Commands per connection sent before reading replies (RESP targets; 1 for `engine`).
    #[serde(default = "one")]
    pub pipeline: u32,
    /// Redis target: every persistence directive it ran with, the mapped ones and then the
    /// scenario's and `--redis-config`'s, `key value` each (Redis takes the last of a key).
    /// Records from before this held only the added ones.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redis_config: Vec<String>,
    /// RESP targets: the server's version (`redis-server --version`; `durlab serve`'s crate
    /// version).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_version: Option<String>,
}

fn engine_target() -> String {
    "engine".into()
}

fn one() -> u32 {
    1
}

/// One configuration's result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchRecord {
    pub config: ConfigRecord,
    pub label: String,
    pub run_id: String,
    pub seed: u64,
    /// Commands acknowledged in the measured window (reads + writes).
    pub ops: u64,
    pub reads: u64,
    pub writes: u64,
    /// Length of the measured window (after warm-up).
    pub seconds: f64,
    pub warmup_seconds: f64,
    pub ops_per_sec: f64,
    /// Write commands per second (what `ratio_to_probe` compares).
    pub writes_per_sec: f64,
    pub latency_us: LatencySummaryUs,
    pub syncs: u64,
    pub bytes_written: u64,
    pub avg_batch: f64,
    pub max_batch: u64,
    pub cpu_seconds: f64,
    pub max_rss_mb: f64,
    pub last_lsn: u64,
    pub ratio_to_off: Option<f64>,
    pub ratio_to_probe: Option<f64>,
    /// The probe rate `ratio_to_probe` divides by: the mean of quick matching probes run just
    /// before and just after this configuration (null when not applicable or `--no-probe`).
    pub probe_fdatasync_iops: Option<f64>,
    /// Which probe figure `ratio_to_probe` divides by (`append_64`, ...), when it applies.
    pub probe_case: Option<String>,
    /// `ops_per_sec` divided by that of the `redis` record with the same policy, persistence,
    /// connections and pipeline in this run (null when there is none, and for `redis` itself).
    #[serde(default)]
    pub ratio_to_redis: Option<f64>,
    pub data_dir: String,
    /// Write commands per second over each ~100 ms interval of the window, in time order
    /// (empty in results older than the field): what the report's throughput intervals
    /// resample.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub write_rates: Vec<f64>,
}

impl BenchRecord {
    /// A record without ratios (filled in by [`super::ratios::apply`]).
    pub fn new(
        setup: &EngineSetup,
        config: ConfigRecord,
        run_id: &str,
        seed: u64,
        m: &Measurement,
    ) -> BenchRecord {
        BenchRecord {
            label: setup.label(),
            config,
            run_id: run_id.to_string(),
            seed,
            ops: m.ops,
            reads: m.reads,
            writes: m.writes,
            seconds: m.seconds,
            warmup_seconds: m.warmup_seconds,
            ops_per_sec: m.ops_per_sec(),
            writes_per_sec: if m.seconds > 0.0 {
                m.writes as f64 / m.seconds
            } else {
                0.0
            },
            latency_us: m.latency.summary_us(),
            syncs: m.stats.syncs,
            bytes_written: m.stats.bytes_written,
            avg_batch: m.stats.batch_records_avg(),
            max_batch: m.stats.batch_records_max,
            cpu_seconds: m.cpu_seconds,
            max_rss_mb: m.max_rss_mb,
            last_lsn: m.last_lsn,
            ratio_to_off: None,
            ratio_to_probe: None,
            probe_case: None,
            probe_fdatasync_iops: None,
            ratio_to_redis: None,
            data_dir: m.data_dir.display().to_string(),
            write_rates: m.write_rates.iter().map(|r| r.round()).collect(),
        }
    }
}
