//! The keyspace itself.

use std::collections::HashMap;

use super::{Command, Reply};

/// A stored value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(Vec<u8>),
}

/// A key's value plus its expiry metadata (absolute ms, from `PEXPIREAT`).
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub value: Value,
    pub expire_at_ms: Option<u64>,
}

/// The in-memory state.
#[derive(Debug, Default, Clone)]
pub struct Keyspace {
    map: HashMap<Vec<u8>, Entry>,
}

impl Keyspace {
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies `cmd` and returns its reply. Never panics on any input.
    pub fn apply(&mut self, cmd: &Command) -> Reply {
        let _ = cmd;
        unimplemented!("keyspace helper")
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}
