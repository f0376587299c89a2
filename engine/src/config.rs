//! Engine configuration: how durable, through which backend, with what preallocation.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use crate::backend::{Backend, BackendKind};

/// The one limit on the size of a command, in bytes of its encoding (key, values and their
/// lengths): 64 MiB. The log refuses to append a longer one, recovery and `durlab recover` read
/// records up to this length, and `durlab serve`'s longest bulk string (`--max-bulk-bytes`)
/// defaults to it and may not exceed it (docs/serve.md).
pub const MAX_RECORD_BYTES: u32 = 64 << 20;

/// When `execute` acknowledges a write command, and so what survives a crash.
///
/// | policy | acknowledges when | kill -9 | power loss |
/// |---|---|---|---|
/// | `Always` | an fdatasync covering the record completed | nothing acked lost | nothing acked lost |
/// | `EverySec` | the record was written to the OS | nothing acked lost | writes acked since the last completed background sync: at most `everysec_interval_ms` plus one sync's duration, and never more than `everysec_max_lag_ms` (writers stall past that) |
/// | `No` | the record was written to the OS | nothing acked lost | whatever the OS had not written back |
/// | `Off` | applied in memory | everything | everything |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FsyncPolicy {
    Always,
    EverySec,
    No,
    Off,
}

/// How the log file is extended ahead of the write position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Prealloc {
    /// The file grows with each write (each fdatasync also commits the new size).
    None,
    /// `fallocate(2)` chunks ahead (unwritten extents: the first write still changes metadata).
    Fallocate,
    /// Zeros written and synced chunk by chunk ahead (later fdatasyncs touch data only).
    Zero,
}

/// What recovery does when it finds a bad record followed by valid ones (damage in the middle).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecoveryMode {
    /// Refuse to open, naming the file and byte offset. Nothing on disk changes.
    Strict,
    /// Cut the log at the damage (after copying everything cut to a quarantine file).
    Lenient,
}

/// Which files make the keyspace durable. `docs/engine.md` describes each mode.
///
/// | mode | files | acknowledgement | recovery |
/// |---|---|---|---|
/// | `Aof` | `durlab.aof` | per [`FsyncPolicy`] | replays the log |
/// | `Snapshot` | `durlab.snap` | applied in memory (the fsync policy is ignored) | loads the last completed snapshot: everything after it is lost |
/// | `AofSnapshot` | `durlab.aof` and `durlab.snap`, independent | per [`FsyncPolicy`] | replays the log (the snapshot is a backup, as in Redis with both enabled) |
/// | `Hybrid` | `durlab.manifest`, `durlab.<seq>.base.snap`, `durlab.<seq>.incr.aof` | per [`FsyncPolicy`] | base, then the increments, in manifest order |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Persistence {
    Aof,
    Snapshot,
    AofSnapshot,
    Hybrid,
}

impl Persistence {
    /// True for the modes that append every write command to a log.
    pub fn has_log(self) -> bool {
        self != Persistence::Snapshot
    }
}

/// Everything [`crate::Engine::open`] needs.
#[derive(Clone)]
pub struct EngineConfig {
    /// Data directory (created if missing).
    pub dir: PathBuf,
    pub policy: FsyncPolicy,
    pub backend: BackendKind,
    pub prealloc: Prealloc,
    /// Size of each preallocation step.
    pub prealloc_chunk_bytes: u64,
    pub recovery: RecoveryMode,
    /// Background sync period for `EverySec`.
    pub everysec_interval_ms: u64,
    /// Under `EverySec`, writers wait once the last completed sync is older than this, which
    /// bounds the power-loss window even when a sync stalls (Redis uses 2 s likewise).
    pub everysec_max_lag_ms: u64,
    /// Largest command payload accepted in one record (default [`MAX_RECORD_BYTES`]). Recovery
    /// reads a longer record as invalid: never lower it below what a log was written with.
    pub max_record_bytes: u32,
    /// Replaces the backend built from `backend`, for wrappers that record or inject faults
    /// (and, in tests of the crash lab, for backends that lie about syncs: the engine itself
    /// has no deliberately broken mode). The wrapper must still do real I/O underneath.
    pub backend_override: Option<Arc<dyn Backend>>,
    /// Which files make the state durable (default `Aof`).
    pub persistence: Persistence,
    /// Redis-style save points `(seconds, changes)`: a background snapshot starts when at
    /// least `changes` write commands were applied and `seconds` have passed since the last
    /// snapshot (or since open). Used by `Snapshot` and `AofSnapshot`; empty = only explicit
    /// [`crate::Engine::save`].
    pub save_points: Vec<(u64, u64)>,
    /// `Hybrid`: rewrite automatically once the increments have grown by this percentage of
    /// the last base's size (0 disables automatic rewrites), like `auto-aof-rewrite-percentage`.
    pub auto_rewrite_percentage: u64,
    /// `Hybrid`: ... and the increments hold at least this many bytes
    /// (`auto-aof-rewrite-min-size`).
    pub auto_rewrite_min_bytes: u64,
    /// How often the background thread checks save points and rewrite triggers.
    pub maintenance_interval_ms: u64,
}

impl fmt::Debug for EngineConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EngineConfig")
            .field("dir", &self.dir)
            .field("policy", &self.policy)
            .field("backend", &self.backend)
            .field("prealloc", &self.prealloc)
            .field("prealloc_chunk_bytes", &self.prealloc_chunk_bytes)
            .field("recovery", &self.recovery)
            .field("everysec_interval_ms", &self.everysec_interval_ms)
            .field("everysec_max_lag_ms", &self.everysec_max_lag_ms)
            .field("max_record_bytes", &self.max_record_bytes)
            .field(
                "backend_override",
                &self.backend_override.as_ref().map(|b| b.name()),
            )
            .field("persistence", &self.persistence)
            .field("save_points", &self.save_points)
            .field("auto_rewrite_percentage", &self.auto_rewrite_percentage)
            .field("auto_rewrite_min_bytes", &self.auto_rewrite_min_bytes)
            .field("maintenance_interval_ms", &self.maintenance_interval_ms)
            .finish()
    }
}

impl EngineConfig {
    /// Defaults: `always`, pwrite, no preallocation, strict recovery, 1 s everysec period,
    /// persistence `aof`, no save points, automatic rewrite at 100 % growth over 64 MiB.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        EngineConfig {
            dir: dir.into(),
            policy: FsyncPolicy::Always,
            backend: BackendKind::Pwrite,
            prealloc: Prealloc::None,
            prealloc_chunk_bytes: 64 << 20,
            recovery: RecoveryMode::Strict,
            everysec_interval_ms: 1000,
            everysec_max_lag_ms: 2000,
            max_record_bytes: MAX_RECORD_BYTES,
            backend_override: None,
            persistence: Persistence::Aof,
            save_points: Vec::new(),
            auto_rewrite_percentage: 100,
            auto_rewrite_min_bytes: 64 << 20,
            maintenance_interval_ms: 100,
        }
    }

    pub fn persistence(mut self, persistence: Persistence) -> Self {
        self.persistence = persistence;
        self
    }

    pub fn save_points(mut self, save_points: Vec<(u64, u64)>) -> Self {
        self.save_points = save_points;
        self
    }

    pub fn policy(mut self, policy: FsyncPolicy) -> Self {
        self.policy = policy;
        self
    }

    pub fn backend(mut self, backend: BackendKind) -> Self {
        self.backend = backend;
        self
    }

    pub fn prealloc(mut self, prealloc: Prealloc) -> Self {
        self.prealloc = prealloc;
        self
    }

    pub fn recovery(mut self, recovery: RecoveryMode) -> Self {
        self.recovery = recovery;
        self
    }
}

use crate::named::named_enum;

named_enum!(FsyncPolicy { Always => "always", EverySec => "everysec", No => "no", Off => "off" });
named_enum!(Prealloc { None => "none", Fallocate => "fallocate", Zero => "zero" });
named_enum!(RecoveryMode { Strict => "strict", Lenient => "lenient" });
named_enum!(Persistence { Aof => "aof", Snapshot => "snapshot", AofSnapshot => "aof+snapshot", Hybrid => "hybrid" });
