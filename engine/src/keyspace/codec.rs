//! Binary encoding of a [`Command`] (the payload of a log record). Format: `docs/format.md`.

use super::Command;

/// Why a payload could not be decoded; `offset` is relative to the payload start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad command payload at byte {offset}: {reason}")]
pub struct DecodeError {
    pub offset: usize,
    pub reason: &'static str,
}

impl Command {
    /// Appends the encoding of `self` to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let _ = out;
        unimplemented!("keyspace helper")
    }

    /// Decodes one command occupying all of `payload`.
    ///
    /// # Errors
    /// Any malformed input; never panics, never allocates more than `payload.len()` allows.
    pub fn decode(payload: &[u8]) -> Result<Command, DecodeError> {
        let _ = payload;
        unimplemented!("keyspace helper")
    }
}
