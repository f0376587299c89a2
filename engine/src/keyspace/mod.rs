//! The in-memory keyspace: strings, hashes, sorted sets and streams with Redis-like,
//! deterministic semantics (no clock, no randomness), and the binary encoding of commands that
//! the log stores.

mod codec;
mod command;
mod space;

pub use codec::DecodeError;
pub use command::{Command, Reply, StreamId, XAddId};
pub use space::{Entry, Keyspace, Value};
