//! The in-memory keyspace: strings, hashes, sorted sets and streams with Redis-like,
//! deterministic semantics (no clock, no randomness), and the binary encoding of commands that
//! the log stores (`docs/format.md`, "Command payload").

pub(crate) mod bulk;
mod chunk;
pub(crate) mod codec;
mod command;
mod entry;
pub mod group;
mod group_cmd;
mod hash;
mod journal;
pub mod msg;
mod space;
mod store;
mod stream;
mod zset;

pub use chunk::SnapshotChunk;
pub use codec::{DecodeError, MAX_BLOB_LEN, MAX_COUNT};
pub use command::{
    ClaimTime, Command, FieldValue, GroupStart, PendingRange, ReadStart, Reply, SetCond,
    SetOptions, SetTtl, StreamId, XAddId, XClaimOptions,
};
pub use entry::{Entry, Value};
pub use group::{Consumer, Group, GroupError, Pending};
pub use hash::Hash;
pub use space::Keyspace;
pub use stream::{Stream, StreamError, StreamFields};
pub use zset::{NanScore, ZSet, format_score};
