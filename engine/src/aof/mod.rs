//! The append-only log: record framing ([`record`]) and the group-committing writer.

pub mod record;

use std::path::Path;

use crate::error::Result;
use crate::keyspace::Command;
use crate::Lsn;

/// File name of the single log inside the data directory (persistence mode `aof`).
pub const LOG_FILE_NAME: &str = "durlab.aof";

/// Reads every valid record of the log in `dir` (read-only, stopping at the first bad record)
/// and decodes its command: for tests and tools that check what was logged under which LSN.
pub fn read_commands(dir: &Path) -> Result<Vec<(Lsn, Command)>> {
    let _ = dir;
    unimplemented!("engine")
}
