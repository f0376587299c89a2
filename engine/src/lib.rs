//! durlab-engine: the storage engine that durlab measures and crashes.
//!
//! An in-memory keyspace with a Redis-like command subset ([`keyspace`]), made durable by an
//! append-only log ([`aof`]) written through a small [`backend`] trait (pwrite, io_uring or mmap),
//! and rebuilt at open by [`recovery`]. [`Engine`] ties them together under a [`FsyncPolicy`].
//!
//! Contracts: docs/design.md, "Durability contracts". Every acknowledged write command
//! has a dense log sequence number (LSN) starting at 1, and what is recovered is always a prefix.

pub mod aof;
pub mod backend;
pub mod clock;
pub mod config;
mod datadir;
mod engine;
pub mod error;
pub mod failpoint;
pub mod hybrid;
pub mod inspect;
pub mod keyspace;
mod named;
pub mod quantile;
pub mod rawio;
pub mod recovery;
pub mod snapshot;
pub mod stats;

pub use backend::BackendKind;
pub use config::{EngineConfig, FsyncPolicy, Persistence, Prealloc, RecoveryMode};
pub use engine::{Ack, Engine, ReplayBase};
pub use error::{Error, Result};
pub use hybrid::RewriteInfo;
pub use keyspace::{Command, Keyspace, Reply};
pub use recovery::RecoveryReport;
pub use snapshot::SnapshotInfo;
pub use stats::Stats;

/// A log sequence number: the position of a write command in the log, dense from 1.
pub type Lsn = u64;
