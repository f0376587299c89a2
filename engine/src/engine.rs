//! [`Engine`]: keyspace + log under one durability policy.

use std::sync::Arc;

use crate::config::EngineConfig;
use crate::error::Result;
use crate::keyspace::{Command, Keyspace, Reply};
use crate::recovery::RecoveryReport;
use crate::stats::Stats;
use crate::Lsn;

/// The outcome of one command: its reply and, for write commands, the LSN it was logged under.
#[derive(Debug, Clone, PartialEq)]
pub struct Ack {
    pub reply: Reply,
    pub lsn: Option<Lsn>,
}

/// A durable keyspace. `Send + Sync`: share it (`&Engine` or `Arc<Engine>`) across threads;
/// concurrent writers under `always` share one write and one fdatasync (group commit).
#[derive(Debug, Clone)]
pub struct Engine {
    inner: Arc<()>,
}

impl Engine {
    /// Opens (recovering) or creates the data directory in `config.dir`.
    pub fn open(config: EngineConfig) -> Result<(Engine, RecoveryReport)> {
        let _ = config;
        unimplemented!()
    }

    /// Executes `cmd`; returns once it is acknowledged under the configured policy.
    pub fn execute(&self, cmd: Command) -> Result<Reply> {
        self.execute_ack(cmd).map(|a| a.reply)
    }

    /// Like [`Engine::execute`], also returning the LSN a write command was logged under.
    pub fn execute_ack(&self, cmd: Command) -> Result<Ack> {
        self.execute_next(|_| cmd)
    }

    /// Builds the next command under the log lock from the LSN it will receive if it is a
    /// write, so a driver can make the command with LSN n be command n of its sequence.
    /// `make` must be cheap: it runs while other writers wait.
    pub fn execute_next(&self, make: impl FnOnce(Lsn) -> Command) -> Result<Ack> {
        let _ = make;
        unimplemented!()
    }

    /// Highest LSN assigned so far (acknowledged or about to be).
    pub fn last_lsn(&self) -> Lsn {
        unimplemented!()
    }

    /// Highest LSN covered by a completed fdatasync.
    pub fn durable_lsn(&self) -> Lsn {
        unimplemented!()
    }

    pub fn stats(&self) -> Stats {
        unimplemented!()
    }

    /// Runs `f` on the current keyspace (under the write lock: keep it short).
    pub fn read<R>(&self, f: impl FnOnce(&Keyspace) -> R) -> R {
        let _ = f;
        unimplemented!()
    }
}
