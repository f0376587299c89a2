//! RESP2, the Redis protocol: one parser and one encoder shared by `durlab serve`
//! ([`server`]) and the harness's own client (`crate::servers::client`).
//!
//! - [`parse`]: requests (arrays of bulk strings, or inline commands) and replies, with
//!   every length bounded ([`Limits`]) and Redis's protocol error texts.
//! - [`encode`]: replies and commands.
//! - [`commands`]: RESP arguments to engine commands and back, and the read commands that
//!   verification needs (`SCAN`, `TYPE`, `HGETALL`, `ZRANGE`, `XRANGE`, ...).
//! - [`server`]: the TCP server on 127.0.0.1.

pub mod commands;
pub mod encode;
pub mod groups;
pub mod info;
pub mod parse;
pub mod server;

pub use parse::{Limits, ProtocolError};

use durlab_engine::Reply;

/// One RESP2 value (a reply, or a request as an array of bulk strings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// `+text`
    Simple(String),
    /// `-text` (the text includes the error code, e.g. `ERR ...`, `WRONGTYPE ...`).
    Error(String),
    /// `:n`
    Int(i64),
    /// `$len` + bytes
    Bulk(Vec<u8>),
    /// `$-1`
    Nil,
    /// `*n` + n values
    Array(Vec<Value>),
    /// `*-1` (EXEC after a WATCH failure; never produced by durlab)
    NilArray,
}

impl Value {
    /// `+OK`.
    pub fn ok() -> Value {
        Value::Simple("OK".into())
    }

    /// An error reply `-ERR <text>`.
    pub fn err(text: impl std::fmt::Display) -> Value {
        Value::Error(format!("ERR {text}"))
    }

    /// A bulk string from text.
    pub fn bulk(text: impl AsRef<[u8]>) -> Value {
        Value::Bulk(text.as_ref().to_vec())
    }

    /// The bytes of a bulk or simple string.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bulk(b) => Some(b),
            Value::Simple(s) => Some(s.as_bytes()),
            _ => None,
        }
    }

    /// The integer of an `:n` reply.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(n) => Some(*n),
            _ => None,
        }
    }

    /// True for an error reply.
    pub fn is_error(&self) -> bool {
        matches!(self, Value::Error(_))
    }
}

impl From<Reply> for Value {
    fn from(r: Reply) -> Value {
        match r {
            Reply::Ok => Value::ok(),
            Reply::Nil => Value::Nil,
            Reply::NilArray => Value::NilArray,
            Reply::Int(n) => Value::Int(n),
            Reply::Bulk(b) => Value::Bulk(b),
            Reply::Array(items) => Value::Array(items.into_iter().map(Value::from).collect()),
            Reply::Error(e) => Value::Error(e),
        }
    }
}
