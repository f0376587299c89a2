//! The scenario file's shape: what a `scenarios/*.toml` file may contain.
//!
//! Every table denies unknown fields, so a typo is an error rather than a silently ignored
//! setting. Fields whose value needs checking beyond its type are [`Spanned`] so that the
//! error can point at the line.

use durlab_engine::{BackendKind, FsyncPolicy, Prealloc};
use serde::{Deserialize, Serialize};
use toml::Spanned;

pub use crate::driver::pacing::{Arrivals, Rate};
pub use crate::servers::Target;

/// A whole scenario file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Short name; results go to `results/<name>/`.
    pub name: String,
    /// The question the scenario answers, in one sentence a team would ask.
    pub question: String,
    /// How many milliseconds of acknowledged writes the team could tolerate losing (for reports).
    #[serde(default)]
    pub loss_tolerance_ms: Option<u64>,
    pub workload: WorkloadSpec,
    #[serde(default)]
    pub matrix: MatrixSpec,
    #[serde(default)]
    pub snapshot: Option<SnapshotSpec>,
    #[serde(default)]
    pub crash: Option<CrashPlan>,
    #[serde(default)]
    pub group_commit: GroupCommitSpec,
    #[serde(default)]
    pub recovery: RecoverySpec,
}

/// The group-commit sweep of `durlab run` (`[group_commit]`): every `always` configuration of
/// the matrix runs again once per writer count, for the group-commit plot (throughput
/// against writers).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupCommitSpec {
    /// Writer counts (client threads, or connections for RESP targets), each in 1..=1024.
    #[serde(default = "default_sweep_writers")]
    pub writers: Spanned<Vec<u32>>,
    /// Length of each point, warm-up (10%) included; default the workload's `duration_secs`
    /// (5 s in `commands` mode). `--quick` caps it at 1 s.
    #[serde(default)]
    pub duration_secs: Option<Spanned<f64>>,
}

impl Default for GroupCommitSpec {
    fn default() -> Self {
        GroupCommitSpec {
            writers: default_sweep_writers(),
            duration_secs: None,
        }
    }
}

fn default_sweep_writers() -> Spanned<Vec<u32>> {
    Spanned::new(0..0, vec![1, 4, 16, 32])
}

/// The recovery sweep of `durlab run` (`[recovery]`): for each persistence mode of the matrix,
/// one data directory is filled with the workload's write commands in steps and reopened
/// (`Engine::open` timed) after each step, for the recovery plot (recovery time against data
/// size).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecoverySpec {
    /// Steps, as MiB of log the write commands take (the same command counts for every mode:
    /// a snapshot holds only live keys, so its directory can be smaller). `--quick` divides
    /// each by 4.
    #[serde(default = "default_recovery_sizes")]
    pub data_mb: Spanned<Vec<f64>>,
    /// Persistence modes to sweep; empty (the default) = the matrix's.
    #[serde(default, deserialize_with = "de_named_list")]
    pub persistence: Vec<Persistence>,
}

impl Default for RecoverySpec {
    fn default() -> Self {
        RecoverySpec {
            data_mb: default_recovery_sizes(),
            persistence: Vec::new(),
        }
    }
}

fn default_recovery_sizes() -> Spanned<Vec<f64>> {
    Spanned::new(0..0, vec![32.0, 128.0, 512.0])
}

/// The command sequence and how it is driven.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadSpec {
    /// Seed of the whole command sequence (write command n is a pure function of seed and n).
    pub seed: u64,
    /// Concurrent client threads.
    pub writers: Spanned<u32>,
    /// Run each configuration for this long (exclusive with `commands`).
    #[serde(default)]
    pub duration_secs: Option<Spanned<f64>>,
    /// Or run each configuration until this many write commands were acknowledged.
    #[serde(default)]
    pub commands: Option<Spanned<u64>>,
    /// Time excluded from the measurement at the start; default 10% of `duration_secs`
    /// (0 with `commands`).
    #[serde(default)]
    pub warmup_secs: Option<Spanned<f64>>,
    /// The default key space of every command.
    pub keys: KeySpec,
    /// The default value size of every command that writes a value.
    pub values: ValueSpec,
    /// The command mix.
    pub ops: Spanned<Vec<OpSpec>>,
    /// The rate the team's system runs at: `rate = { ops_per_sec = 300, arrivals =
    /// "poisson" }`. Crash trials issue commands open loop at it (`driver::pacing`); benchmarks
    /// run flat-out regardless (the cost figure) and say so. Absent: everything flat-out.
    #[serde(default)]
    pub rate: Option<Spanned<RateSpec>>,
}

/// An open-loop target rate (`[workload] rate`).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateSpec {
    /// Commands (reads and writes) per second over all writers.
    pub ops_per_sec: f64,
    /// `poisson` (exponential gaps, the default) or `uniform` (fixed gaps).
    #[serde(default)]
    pub arrivals: Arrivals,
}

impl WorkloadSpec {
    /// The scenario's target rate (checked by `scenario::parse`), `None` when flat-out.
    pub fn rate(&self) -> Option<Rate> {
        self.rate.as_ref().map(|r| Rate {
            ops_per_sec: r.get_ref().ops_per_sec,
            arrivals: r.get_ref().arrivals,
        })
    }
}

/// How keys are drawn from a key space of `count` keys.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySpec {
    /// Number of distinct keys.
    pub count: Spanned<u64>,
    pub distribution: KeyDistributionKind,
    /// Zipf exponent s (weight of rank k is 1/k^s); required for `zipf`, in (0, 10].
    #[serde(default)]
    pub exponent: Option<Spanned<f64>>,
}

/// `uniform` or `zipf`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyDistributionKind {
    Uniform,
    Zipf,
}

/// Value sizes: `distribution = "fixed"` with `bytes`, or `"uniform"` with `min_bytes..=max_bytes`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValueSpec {
    pub distribution: ValueDistributionKind,
    #[serde(default)]
    pub bytes: Option<Spanned<u32>>,
    #[serde(default)]
    pub min_bytes: Option<Spanned<u32>>,
    #[serde(default)]
    pub max_bytes: Option<Spanned<u32>>,
}

/// `fixed` or `uniform`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ValueDistributionKind {
    Fixed,
    Uniform,
}

/// The commands a scenario can issue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CommandKind {
    Set,
    Get,
    Del,
    SetNx,
    IncrBy,
    PExpireAt,
    HSet,
    HDel,
    ZAdd,
    ZRem,
    ZPopMin,
    XAdd,
    /// A consumer's `XREADGROUP GROUP <group> c<i> COUNT <count> STREAMS key >`.
    XReadGroup,
    /// Consumers' `XACK` of the entries they processed (docs: workload/consumers.rs).
    XAck,
    /// The reclaimer's `XAUTOCLAIM key <group> reclaimer <min_idle_ms> 0-0 COUNT <count>`.
    XAutoClaim,
}

impl CommandKind {
    /// Every command, in declaration order.
    pub const ALL: [CommandKind; 15] = [
        CommandKind::Set,
        CommandKind::Get,
        CommandKind::Del,
        CommandKind::SetNx,
        CommandKind::IncrBy,
        CommandKind::PExpireAt,
        CommandKind::HSet,
        CommandKind::HDel,
        CommandKind::ZAdd,
        CommandKind::ZRem,
        CommandKind::ZPopMin,
        CommandKind::XAdd,
        CommandKind::XReadGroup,
        CommandKind::XAck,
        CommandKind::XAutoClaim,
    ];

    /// The lowercase name used in scenario files (`setnx`, `pexpireat`, ...).
    pub fn name(self) -> &'static str {
        match self {
            CommandKind::Set => "set",
            CommandKind::Get => "get",
            CommandKind::Del => "del",
            CommandKind::SetNx => "setnx",
            CommandKind::IncrBy => "incrby",
            CommandKind::PExpireAt => "pexpireat",
            CommandKind::HSet => "hset",
            CommandKind::HDel => "hdel",
            CommandKind::ZAdd => "zadd",
            CommandKind::ZRem => "zrem",
            CommandKind::ZPopMin => "zpopmin",
            CommandKind::XAdd => "xadd",
            CommandKind::XReadGroup => "xreadgroup",
            CommandKind::XAck => "xack",
            CommandKind::XAutoClaim => "xautoclaim",
        }
    }

    /// The consumer side of a stream (`xreadgroup`, `xack`, `xautoclaim`).
    pub fn is_consumer(self) -> bool {
        matches!(
            self,
            CommandKind::XReadGroup | CommandKind::XAck | CommandKind::XAutoClaim
        )
    }

    /// True for every command that is logged (all but `get`).
    pub fn is_write(self) -> bool {
        self != CommandKind::Get
    }

    /// Parses a lowercase name.
    ///
    /// # Errors
    /// A message listing the accepted names.
    pub fn parse(name: &str) -> Result<CommandKind, String> {
        CommandKind::ALL
            .into_iter()
            .find(|c| c.name() == name)
            .ok_or_else(|| {
                let names: Vec<_> = CommandKind::ALL.iter().map(|c| c.name()).collect();
                format!(
                    "unknown command '{name}': expected one of {}",
                    names.join(", ")
                )
            })
    }
}

/// One entry of the command mix: a command, its weight, and where its keys come from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpSpec {
    pub command: CommandKind,
    /// Relative frequency (any non-negative integers; at least one must be > 0).
    pub weight: u32,
    /// Keys are `<key_prefix><index><key_suffix>`; default prefix `key:`.
    #[serde(default)]
    pub key_prefix: Option<String>,
    #[serde(default)]
    pub key_suffix: Option<String>,
    /// Own key space for this command (defaults to `[workload.keys]`).
    #[serde(default)]
    pub keys: Option<KeySpec>,
    /// Own value sizes (defaults to `[workload.values]`).
    #[serde(default)]
    pub values: Option<ValueSpec>,
    /// `pexpireat`: expiry time = workload clock + `ttl_ms`; `set` with `set_options`: the
    /// relative expiry `PX ttl_ms`, logged as the absolute `PXAT` workload clock + `ttl_ms`.
    #[serde(default)]
    pub ttl_ms: Option<u64>,
    /// `set`: draw Redis's SET options for each command (default false, which keeps every
    /// existing seeded sequence unchanged): a condition (none, `NX`, `XX`), an expiry (none,
    /// `KEEPTTL`, `PX ttl_ms`) and `GET`, each uniformly.
    #[serde(default)]
    pub set_options: bool,
    /// `incrby`: delta drawn uniformly from `1..=delta_max` (default 1).
    #[serde(default)]
    pub delta_max: Option<Spanned<i64>>,
    /// `hset`/`hdel`: fields per command (default 1), drawn from `field_count` names `f<i>`.
    #[serde(default)]
    pub fields: Option<Spanned<u32>>,
    #[serde(default)]
    pub field_count: Option<Spanned<u32>>,
    /// `zadd`/`zrem`: members per command (default 1).
    #[serde(default)]
    pub members: Option<Spanned<u32>>,
    /// `zpopmin`: count per command (default 1); `xreadgroup`: `COUNT` (default 10);
    /// `xautoclaim`: `COUNT` (default 10).
    #[serde(default)]
    pub count: Option<Spanned<u64>>,
    /// `xreadgroup`, `xack`, `xautoclaim`: the consumer group (default `workers`), created at
    /// the start of the sequence on every key of each `xreadgroup` op (`XGROUP CREATE key
    /// group 0 MKSTREAM`).
    #[serde(default)]
    pub group: Option<String>,
    /// `xreadgroup`: consumers `c0`..`c<n-1>`, one drawn per read (default 4).
    #[serde(default)]
    pub consumers: Option<Spanned<u32>>,
    /// `xack`: write commands between an entry's `XADD` and its acknowledgement (default 100).
    #[serde(default)]
    pub ack_delay: Option<Spanned<u64>>,
    /// `xack`: the fraction of entries whose consumer crashed before acknowledging, in
    /// [0, 1] (default 0): the reclaimer acknowledges them `reclaim_delay` commands after
    /// their `XADD` instead.
    #[serde(default)]
    pub never_acked: Option<Spanned<f64>>,
    /// `xack`: write commands between a crashed consumer's entry's `XADD` and the reclaimer's
    /// acknowledgement (default 10 × `ack_delay`).
    #[serde(default)]
    pub reclaim_delay: Option<Spanned<u64>>,
    /// `xautoclaim`: min-idle-time in ms of the workload clock (default 0). RESP targets
    /// decide idle times by their own clocks, so a scenario with a RESP target needs 0.
    #[serde(default)]
    pub min_idle_ms: Option<Spanned<u64>>,
    /// `xadd`: `MAXLEN` trim (none when absent).
    #[serde(default)]
    pub maxlen: Option<u64>,
}

/// Persistence layouts: the engine's own enum (names `aof`, `snapshot`, `aof+snapshot`,
/// `hybrid`).
pub use durlab_engine::Persistence;

/// The engine configurations to run: the cross product of these lists.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatrixSpec {
    #[serde(default = "default_policies", deserialize_with = "de_named_list")]
    pub policies: Vec<FsyncPolicy>,
    #[serde(default = "default_backends", deserialize_with = "de_named_list")]
    pub backends: Vec<BackendKind>,
    #[serde(default = "default_prealloc", deserialize_with = "de_named_list")]
    pub prealloc: Vec<Prealloc>,
    #[serde(default = "default_persistence", deserialize_with = "de_named_list")]
    pub persistence: Vec<Persistence>,
    /// What runs each configuration: `engine` (in process), `durlab-server` (`durlab serve`
    /// over RESP on loopback) or `redis` (a real redis-server from PATH, persistence mapped to
    /// Redis's directives). Several targets run alternately, configuration by configuration.
    #[serde(default = "default_targets", deserialize_with = "de_named_list")]
    pub targets: Vec<Target>,
    /// RESP targets: commands each connection sends before reading the replies (default 1).
    #[serde(default = "default_pipeline")]
    pub pipeline: u32,
    /// Redis target: further redis-server settings the team runs with (for example
    /// `{ "no-appendfsync-on-rewrite" = "yes", "aof-load-truncated" = "no" }`), passed after
    /// the ones the matrix maps; recorded in every result. Keys: `redis_server::SETTABLE`.
    #[serde(default)]
    pub redis_config: std::collections::BTreeMap<String, String>,
}

impl Default for MatrixSpec {
    fn default() -> Self {
        MatrixSpec {
            policies: default_policies(),
            backends: default_backends(),
            prealloc: default_prealloc(),
            persistence: default_persistence(),
            targets: default_targets(),
            pipeline: default_pipeline(),
            redis_config: Default::default(),
        }
    }
}

fn default_policies() -> Vec<FsyncPolicy> {
    vec![FsyncPolicy::Always]
}
fn default_backends() -> Vec<BackendKind> {
    vec![BackendKind::Pwrite]
}
fn default_prealloc() -> Vec<Prealloc> {
    vec![Prealloc::None]
}
fn default_persistence() -> Vec<Persistence> {
    vec![Persistence::Aof]
}
fn default_targets() -> Vec<Target> {
    vec![Target::Engine]
}
fn default_pipeline() -> u32 {
    1
}

/// Deserializes a list of names through `FromStr` (the engine's enums are not serde types).
fn de_named_list<'de, D, T>(de: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: std::str::FromStr<Err = String>,
{
    let names = Vec::<String>::deserialize(de)?;
    names
        .iter()
        .map(|n| n.parse::<T>().map_err(serde::de::Error::custom))
        .collect()
}

/// Snapshot save points (`save = [[seconds, changes], ...]`, as Redis' `save` directive), used
/// by the `snapshot` and `aof+snapshot` persistence modes.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotSpec {
    #[serde(default)]
    pub save: Vec<(u64, u64)>,
}

/// The crash plan: what `durlab run` hands to the crash lab (`durlab crash` flags override it).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CrashPlan {
    /// Faults from the fault model (docs/design.md, "Fault model").
    #[serde(deserialize_with = "de_named_list", serialize_with = "ser_names")]
    pub faults: Vec<Fault>,
    /// Crashes per configuration and fault (`durlab run --trials` overrides it; `--quick`
    /// takes at most 2).
    pub trials: u32,
    /// Engine states to crash in.
    #[serde(default = "default_states", deserialize_with = "de_named_list")]
    pub states: Vec<Phase>,
    /// When directory entries survive a power loss in crash images: `pessimistic` (POSIX,
    /// the default) or `ext4-ordered` (docs: crashlab::images::direntry).
    #[serde(
        default,
        deserialize_with = "de_named",
        skip_serializing_if = "is_default_dir_model"
    )]
    pub dir_model: DirModel,
    /// Seconds each trial runs before its crash (`durlab run`; `--trial-secs` overrides it).
    /// Default: each configuration's own, derived from its promise (`crashlab::trial`:
    /// everysec and no 6 s under the image faults, else 1 s); `--quick` keeps it. A shorter
    /// value marks the results `short_trial`: loss windows can be no longer than the trial.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trial_secs: Option<f64>,
    /// Image faults: crash states spread over each trace (`durlab run`; default 16, 8 with
    /// `--quick`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_states: Option<usize>,
    /// Image faults: trials per configuration (`durlab run`; default `trials`; `--trials`
    /// overrides both; `--quick` takes at most 2). Each trial's trace gives `image_states`
    /// crash states and more, so a few traces carry hundreds of states while kill -9, one
    /// state per trial, needs many trials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_trials: Option<u32>,
    /// `live-copy`: what the team's backup copies: `"tree"` (`cp -r` or `tar` of the data
    /// directory) or a comma-separated list of paths inside it, copied in order
    /// (`--copy` overrides it; default `tree`).
    #[serde(
        default,
        deserialize_with = "de_named_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub copy: Option<crate::crashlab::images::copy::CopySource>,
    /// `live-copy`: the copy's read rate, MiB/s (`--copy-rate-mib` overrides it; default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy_rate_mib: Option<u64>,
    /// `live-copy`: when the team's backup copies: `"live"` (while the server writes),
    /// `"safe"` (after the server's own save or rewrite, waited for) or `"stop-copy-start"`
    /// (`--procedure` overrides it; default `live`).
    #[serde(
        default,
        deserialize_with = "de_named_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub procedure: Option<crate::crashlab::images::copy::Procedure>,
}

/// Deserializes an optional name through `FromStr`.
fn de_named_opt<'de, D, T>(de: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: std::str::FromStr<Err = String>,
{
    de_named(de).map(Some)
}

fn is_default_dir_model(m: &DirModel) -> bool {
    *m == DirModel::default()
}

/// Deserializes one name through `FromStr`.
fn de_named<'de, D, T>(de: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: std::str::FromStr<Err = String>,
{
    String::deserialize(de)?
        .parse::<T>()
        .map_err(serde::de::Error::custom)
}

fn ser_names<S: serde::Serializer, T: std::fmt::Display>(
    names: &[T],
    ser: S,
) -> Result<S::Ok, S::Error> {
    ser.collect_seq(names.iter().map(|n| n.to_string()))
}

fn default_states() -> Vec<Phase> {
    vec![Phase::Steady]
}

/// A fault of the fault model (docs/design.md, "Fault model"): the crash lab's own enum, which
/// also accepts the scenario spellings (`kill-9`, `torn-write`, ...).
pub use crate::crashlab::FaultKind as Fault;

pub use crate::crashlab::images::DirModel;
/// When during the engine's life a crash is aimed: the crash lab's own enum.
pub use crate::crashlab::phase::Phase;
