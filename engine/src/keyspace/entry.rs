//! What the keyspace stores under a key: a [`Value`] of one of the four types, and its
//! [`Entry`] with the expiry metadata. The data model only; the command semantics live in
//! [`super::space`].

use super::hash::Hash;
use super::stream::Stream;
use super::zset::ZSet;

/// A stored value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(Vec<u8>),
    Hash(Hash),
    ZSet(ZSet),
    Stream(Stream),
}

impl Value {
    /// The Redis `TYPE` name: `string`, `hash`, `zset` or `stream`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::Hash(_) => "hash",
            Value::ZSet(_) => "zset",
            Value::Stream(_) => "stream",
        }
    }
}

/// A key's value plus its expiry metadata (absolute ms, from `PEXPIREAT`).
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub value: Value,
    pub expire_at_ms: Option<u64>,
}

impl Entry {
    /// An entry without expiry.
    pub fn new(value: Value) -> Self {
        Entry {
            value,
            expire_at_ms: None,
        }
    }

    /// True if the entry has expired at `now_ms` (ms since the Unix epoch): its expiry time
    /// is in the past. Redis's rule (`keyIsExpired`): at exactly its expiry time a key still
    /// exists.
    pub fn is_expired_at(&self, now_ms: u64) -> bool {
        self.expire_at_ms.is_some_and(|at| at < now_ms)
    }
}
