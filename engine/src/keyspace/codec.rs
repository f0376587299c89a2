//! Binary encoding of a [`Command`] (the payload of a log record), byte by byte in
//! `docs/format.md`, "Command payload".
//!
//! An opcode byte, then the fields in declaration order. Byte strings are a `u32`
//! little-endian length then the bytes; lists are a `u32` little-endian count then the
//! elements; integers are 8 bytes little-endian; scores are the IEEE-754 bits of the `f64`,
//! little-endian. Fixed-width lengths rather than varints: decoding is branch-light, and 3
//! bytes more per string is small next to a record header and a typical value.
//!
//! The encoding is canonical: every accepted payload re-encodes to the same bytes.

use super::{
    ClaimTime, Command, FieldValue, GroupStart, PendingRange, ReadStart, SetCond, SetOptions,
    SetTtl, StreamId, XAddId, XClaimOptions,
};

/// Why a payload could not be decoded; `offset` is relative to the payload start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad command payload at byte {offset}: {reason}")]
pub struct DecodeError {
    pub offset: usize,
    pub reason: &'static str,
}

/// Longest key, value, field or member the format can hold (its length is a `u32`).
pub const MAX_BLOB_LEN: usize = u32::MAX as usize;
/// Most elements a list (fields, members) can hold (its count is a `u32`).
pub const MAX_COUNT: usize = u32::MAX as usize;

/// Opcodes. 0 is never used, so that a zeroed payload is rejected.
mod op {
    pub const SET: u8 = 1;
    pub const GET: u8 = 2;
    pub const DEL: u8 = 3;
    pub const SETNX: u8 = 4;
    pub const INCRBY: u8 = 5;
    pub const PEXPIREAT: u8 = 6;
    pub const HSET: u8 = 7;
    pub const HDEL: u8 = 8;
    pub const ZADD: u8 = 9;
    pub const ZREM: u8 = 10;
    pub const ZPOPMIN: u8 = 11;
    pub const XADD: u8 = 12;
    pub const MULTI: u8 = 13;
    pub const SETOPTS: u8 = 14;
    pub const PERSIST: u8 = 15;
    pub const HINCRBY: u8 = 16;
    pub const FLUSHALL: u8 = 17;
    pub const XGROUP_CREATE: u8 = 18;
    pub const XGROUP_SETID: u8 = 19;
    pub const XGROUP_DESTROY: u8 = 20;
    pub const XGROUP_CREATECONSUMER: u8 = 21;
    pub const XGROUP_DELCONSUMER: u8 = 22;
    pub const XREADGROUP: u8 = 23;
    pub const XACK: u8 = 24;
    pub const XDEL: u8 = 25;
    pub const XCLAIM: u8 = 26;
    pub const XAUTOCLAIM: u8 = 27;
    pub const XPENDING: u8 = 28;
    pub const XINFO_GROUPS: u8 = 29;
    pub const XINFO_CONSUMERS: u8 = 30;
    /// The largest opcode.
    pub const LAST: u8 = XINFO_CONSUMERS;
}

// Smallest encoding of one list element, used to reject counts the remaining bytes cannot hold.
pub(crate) const MIN_PAIR: usize = 8; // two empty byte strings
pub(crate) const MIN_BLOB: usize = 4; // one empty byte string
pub(crate) const MIN_SCORED: usize = 12; // score + empty byte string
pub(crate) const ID_LEN: usize = 16; // a stream id: ms then seq
/// A nested command's length prefix plus the smallest command (`FLUSHALL`, its opcode alone).
pub(crate) const MIN_NESTED: usize = 4 + 1;

pub(crate) fn blob_len(b: &[u8]) -> usize {
    4 + b.len()
}

fn pairs_len(pairs: &[(Vec<u8>, Vec<u8>)]) -> usize {
    4 + pairs
        .iter()
        .map(|(f, v)| blob_len(f) + blob_len(v))
        .sum::<usize>()
}

fn blobs_len(blobs: &[Vec<u8>]) -> usize {
    4 + blobs.iter().map(|b| blob_len(b)).sum::<usize>()
}

fn ids_len(ids: &[StreamId]) -> usize {
    4 + ID_LEN * ids.len()
}

/// A flag byte, then 8 bytes if set.
fn opt_u64_len(n: Option<u64>) -> usize {
    if n.is_some() { 9 } else { 1 }
}

fn group_start_len(id: GroupStart) -> usize {
    match id {
        GroupStart::Last => 1,
        GroupStart::Id(_) => 1 + ID_LEN,
    }
}

pub(crate) fn put_id(out: &mut Vec<u8>, id: StreamId) {
    put_u64(out, id.ms);
    put_u64(out, id.seq);
}

fn put_ids(out: &mut Vec<u8>, ids: &[StreamId]) {
    put_len(out, ids.len(), MAX_COUNT, "id count");
    for id in ids {
        put_id(out, *id);
    }
}

pub(crate) fn put_opt_u64(out: &mut Vec<u8>, n: Option<u64>) {
    match n {
        None => out.push(0),
        Some(n) => {
            out.push(1);
            put_u64(out, n);
        }
    }
}

fn put_group_start(out: &mut Vec<u8>, id: GroupStart) {
    match id {
        GroupStart::Last => out.push(0),
        GroupStart::Id(id) => {
            out.push(1);
            put_id(out, id);
        }
    }
}

pub(crate) fn put_len(out: &mut Vec<u8>, n: usize, limit: usize, what: &str) {
    assert!(
        n <= limit,
        "{what} of {n} exceeds the payload format's limit of {limit}"
    );
    // The assert above makes the cast lossless.
    out.extend_from_slice(&(n as u32).to_le_bytes());
}

pub(crate) fn put_blob(out: &mut Vec<u8>, b: &[u8]) {
    put_len(out, b.len(), MAX_BLOB_LEN, "byte string length");
    out.extend_from_slice(b);
}

pub(crate) fn put_u64(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(&n.to_le_bytes());
}

pub(crate) fn put_pairs(out: &mut Vec<u8>, pairs: &[(Vec<u8>, Vec<u8>)]) {
    put_len(out, pairs.len(), MAX_COUNT, "pair count");
    for (f, v) in pairs {
        put_blob(out, f);
        put_blob(out, v);
    }
}

pub(crate) fn put_blobs(out: &mut Vec<u8>, blobs: &[Vec<u8>]) {
    put_len(out, blobs.len(), MAX_COUNT, "element count");
    for b in blobs {
        put_blob(out, b);
    }
}

impl Command {
    /// Exact number of bytes [`Command::encode`] appends. O(number of fields).
    pub fn encoded_len(&self) -> usize {
        1 + match self {
            Command::Set { key, value } | Command::SetNx { key, value } => {
                blob_len(key) + blob_len(value)
            }
            Command::Get { key } | Command::Del { key } | Command::Persist { key } => blob_len(key),
            Command::SetOpts { key, value, opts } => {
                let ttl_len = match opts.ttl {
                    SetTtl::At(_) => 9,
                    SetTtl::Clear | SetTtl::Keep => 1,
                };
                blob_len(key) + blob_len(value) + 1 + ttl_len + 1
            }
            Command::HIncrBy { key, field, .. } => blob_len(key) + blob_len(field) + 8,
            Command::FlushAll => 0,
            Command::IncrBy { key, .. } | Command::PExpireAt { key, .. } => blob_len(key) + 8,
            Command::ZPopMin { key, .. } => blob_len(key) + 8,
            Command::HSet { key, fields } => blob_len(key) + pairs_len(fields),
            Command::HDel { key, fields } => blob_len(key) + blobs_len(fields),
            Command::ZRem { key, members } => blob_len(key) + blobs_len(members),
            Command::ZAdd { key, members } => {
                blob_len(key) + 4 + members.iter().map(|(_, m)| 8 + blob_len(m)).sum::<usize>()
            }
            Command::XAdd {
                key,
                id,
                fields,
                maxlen,
            } => {
                let id_len = match id {
                    XAddId::Auto => 1,
                    XAddId::Explicit(_) => 17,
                    XAddId::Time { .. } | XAddId::AutoSeq { .. } => 9,
                };
                let maxlen_len = if maxlen.is_some() { 9 } else { 1 };
                blob_len(key) + id_len + maxlen_len + pairs_len(fields)
            }
            Command::Multi { cmds } => 4 + cmds.iter().map(|c| 4 + c.encoded_len()).sum::<usize>(),
            Command::XGroupCreate {
                key,
                group,
                id,
                entries_read,
                ..
            } => {
                blob_len(key)
                    + blob_len(group)
                    + group_start_len(*id)
                    + 1
                    + opt_u64_len(*entries_read)
            }
            Command::XGroupSetId {
                key,
                group,
                id,
                entries_read,
            } => {
                blob_len(key) + blob_len(group) + group_start_len(*id) + opt_u64_len(*entries_read)
            }
            Command::XGroupDestroy { key, group } => blob_len(key) + blob_len(group),
            Command::XGroupCreateConsumer {
                key,
                group,
                consumer,
                ..
            } => blob_len(key) + blob_len(group) + blob_len(consumer) + 8,
            Command::XGroupDelConsumer {
                key,
                group,
                consumer,
            } => blob_len(key) + blob_len(group) + blob_len(consumer),
            Command::XReadGroup {
                key,
                group,
                consumer,
                count,
                start,
                ..
            } => {
                let start_len = match start {
                    ReadStart::New => 1,
                    ReadStart::Pending(_) => 1 + ID_LEN,
                };
                blob_len(key)
                    + blob_len(group)
                    + blob_len(consumer)
                    + opt_u64_len(*count)
                    + start_len
                    + 1
                    + 8
            }
            Command::XAck { key, group, ids } => blob_len(key) + blob_len(group) + ids_len(ids),
            Command::XDel { key, ids } => blob_len(key) + ids_len(ids),
            Command::XClaim {
                key,
                group,
                consumer,
                ids,
                options,
                ..
            } => {
                let time_len = if options.time.is_some() { 9 } else { 1 };
                let last_len = if options.last_id.is_some() {
                    1 + ID_LEN
                } else {
                    1
                };
                blob_len(key)
                    + blob_len(group)
                    + blob_len(consumer)
                    + 8
                    + ids_len(ids)
                    + 8
                    + 1
                    + time_len
                    + opt_u64_len(options.retry_count)
                    + 1
                    + last_len
            }
            Command::XAutoClaim {
                key,
                group,
                consumer,
                ..
            } => blob_len(key) + blob_len(group) + blob_len(consumer) + 8 + ID_LEN + 8 + 8 + 1,
            Command::XPending {
                key, group, range, ..
            } => {
                let range_len = match range {
                    None => 1,
                    Some(r) => {
                        1 + 8 + 2 * ID_LEN + 8 + 1 + r.consumer.as_ref().map_or(0, |c| blob_len(c))
                    }
                };
                blob_len(key) + blob_len(group) + 8 + range_len
            }
            Command::XInfoGroups { key } => blob_len(key),
            Command::XInfoConsumers { key, group, .. } => blob_len(key) + blob_len(group) + 8,
        }
    }

    /// Appends the encoding of `self` to `out`, reserving the exact space first.
    ///
    /// A NaN score is written as is, but [`Command::decode`] rejects it: such a `ZADD` only
    /// ever gets an error reply (see [`Command::arg_error`]) and need not be logged. Likewise
    /// a `Multi` nested in a `Multi` is written as is and rejected by decoding.
    ///
    /// # Panics
    /// If a byte string is longer than [`MAX_BLOB_LEN`], a list longer than [`MAX_COUNT`], or
    /// a sub-command of a `Multi` encodes to more than [`MAX_BLOB_LEN`] bytes.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.reserve(self.encoded_len());
        match self {
            Command::Set { key, value } => {
                out.push(op::SET);
                put_blob(out, key);
                put_blob(out, value);
            }
            Command::Get { key } => {
                out.push(op::GET);
                put_blob(out, key);
            }
            Command::Del { key } => {
                out.push(op::DEL);
                put_blob(out, key);
            }
            Command::SetNx { key, value } => {
                out.push(op::SETNX);
                put_blob(out, key);
                put_blob(out, value);
            }
            Command::IncrBy { key, delta } => {
                out.push(op::INCRBY);
                put_blob(out, key);
                out.extend_from_slice(&delta.to_le_bytes());
            }
            Command::PExpireAt { key, at_ms } => {
                out.push(op::PEXPIREAT);
                put_blob(out, key);
                put_u64(out, *at_ms);
            }
            Command::HSet { key, fields } => {
                out.push(op::HSET);
                put_blob(out, key);
                put_pairs(out, fields);
            }
            Command::HDel { key, fields } => {
                out.push(op::HDEL);
                put_blob(out, key);
                put_blobs(out, fields);
            }
            Command::ZAdd { key, members } => {
                out.push(op::ZADD);
                put_blob(out, key);
                put_len(out, members.len(), MAX_COUNT, "member count");
                for (score, member) in members {
                    put_u64(out, score.to_bits());
                    put_blob(out, member);
                }
            }
            Command::ZRem { key, members } => {
                out.push(op::ZREM);
                put_blob(out, key);
                put_blobs(out, members);
            }
            Command::ZPopMin { key, count } => {
                out.push(op::ZPOPMIN);
                put_blob(out, key);
                put_u64(out, *count);
            }
            Command::XAdd {
                key,
                id,
                fields,
                maxlen,
            } => {
                out.push(op::XADD);
                put_blob(out, key);
                match id {
                    XAddId::Auto => out.push(0),
                    XAddId::Explicit(StreamId { ms, seq }) => {
                        out.push(1);
                        put_u64(out, *ms);
                        put_u64(out, *seq);
                    }
                    XAddId::Time { now_ms } => {
                        out.push(2);
                        put_u64(out, *now_ms);
                    }
                    XAddId::AutoSeq { ms } => {
                        out.push(3);
                        put_u64(out, *ms);
                    }
                }
                match maxlen {
                    None => out.push(0),
                    Some(n) => {
                        out.push(1);
                        put_u64(out, *n);
                    }
                }
                put_pairs(out, fields);
            }
            Command::SetOpts { key, value, opts } => {
                out.push(op::SETOPTS);
                put_blob(out, key);
                put_blob(out, value);
                out.push(match opts.cond {
                    SetCond::Always => 0,
                    SetCond::Nx => 1,
                    SetCond::Xx => 2,
                });
                match opts.ttl {
                    SetTtl::Clear => out.push(0),
                    SetTtl::Keep => out.push(1),
                    SetTtl::At(at_ms) => {
                        out.push(2);
                        put_u64(out, at_ms);
                    }
                }
                out.push(u8::from(opts.get));
            }
            Command::Persist { key } => {
                out.push(op::PERSIST);
                put_blob(out, key);
            }
            Command::HIncrBy { key, field, delta } => {
                out.push(op::HINCRBY);
                put_blob(out, key);
                put_blob(out, field);
                out.extend_from_slice(&delta.to_le_bytes());
            }
            Command::FlushAll => out.push(op::FLUSHALL),
            Command::Multi { cmds } => {
                out.push(op::MULTI);
                put_len(out, cmds.len(), MAX_COUNT, "transaction command count");
                for cmd in cmds {
                    // Each sub-command is length-prefixed: its payload, like a record's, does
                    // not say where it ends, and the prefix lets decoding bound it.
                    put_len(
                        out,
                        cmd.encoded_len(),
                        MAX_BLOB_LEN,
                        "nested command length",
                    );
                    cmd.encode(out);
                }
            }
            Command::XGroupCreate {
                key,
                group,
                id,
                mkstream,
                entries_read,
            } => {
                out.push(op::XGROUP_CREATE);
                put_blob(out, key);
                put_blob(out, group);
                put_group_start(out, *id);
                out.push(u8::from(*mkstream));
                put_opt_u64(out, *entries_read);
            }
            Command::XGroupSetId {
                key,
                group,
                id,
                entries_read,
            } => {
                out.push(op::XGROUP_SETID);
                put_blob(out, key);
                put_blob(out, group);
                put_group_start(out, *id);
                put_opt_u64(out, *entries_read);
            }
            Command::XGroupDestroy { key, group } => {
                out.push(op::XGROUP_DESTROY);
                put_blob(out, key);
                put_blob(out, group);
            }
            Command::XGroupCreateConsumer {
                key,
                group,
                consumer,
                now_ms,
            } => {
                out.push(op::XGROUP_CREATECONSUMER);
                put_blob(out, key);
                put_blob(out, group);
                put_blob(out, consumer);
                put_u64(out, *now_ms);
            }
            Command::XGroupDelConsumer {
                key,
                group,
                consumer,
            } => {
                out.push(op::XGROUP_DELCONSUMER);
                put_blob(out, key);
                put_blob(out, group);
                put_blob(out, consumer);
            }
            Command::XReadGroup {
                key,
                group,
                consumer,
                count,
                start,
                noack,
                now_ms,
            } => {
                out.push(op::XREADGROUP);
                put_blob(out, key);
                put_blob(out, group);
                put_blob(out, consumer);
                put_opt_u64(out, *count);
                match start {
                    ReadStart::New => out.push(0),
                    ReadStart::Pending(id) => {
                        out.push(1);
                        put_id(out, *id);
                    }
                }
                out.push(u8::from(*noack));
                put_u64(out, *now_ms);
            }
            Command::XAck { key, group, ids } => {
                out.push(op::XACK);
                put_blob(out, key);
                put_blob(out, group);
                put_ids(out, ids);
            }
            Command::XDel { key, ids } => {
                out.push(op::XDEL);
                put_blob(out, key);
                put_ids(out, ids);
            }
            Command::XClaim {
                key,
                group,
                consumer,
                min_idle_ms,
                ids,
                now_ms,
                justid,
                options,
            } => {
                out.push(op::XCLAIM);
                put_blob(out, key);
                put_blob(out, group);
                put_blob(out, consumer);
                put_u64(out, *min_idle_ms);
                put_ids(out, ids);
                put_u64(out, *now_ms);
                out.push(u8::from(*justid));
                match options.time {
                    None => out.push(0),
                    Some(ClaimTime::IdleMs(ms)) => {
                        out.push(1);
                        put_u64(out, ms);
                    }
                    Some(ClaimTime::AtMs(ms)) => {
                        out.push(2);
                        put_u64(out, ms);
                    }
                }
                put_opt_u64(out, options.retry_count);
                out.push(u8::from(options.force));
                match options.last_id {
                    None => out.push(0),
                    Some(id) => {
                        out.push(1);
                        put_id(out, id);
                    }
                }
            }
            Command::XAutoClaim {
                key,
                group,
                consumer,
                min_idle_ms,
                start,
                count,
                now_ms,
                justid,
            } => {
                out.push(op::XAUTOCLAIM);
                put_blob(out, key);
                put_blob(out, group);
                put_blob(out, consumer);
                put_u64(out, *min_idle_ms);
                put_id(out, *start);
                put_u64(out, *count);
                put_u64(out, *now_ms);
                out.push(u8::from(*justid));
            }
            Command::XPending {
                key,
                group,
                range,
                now_ms,
            } => {
                out.push(op::XPENDING);
                put_blob(out, key);
                put_blob(out, group);
                put_u64(out, *now_ms);
                match range {
                    None => out.push(0),
                    Some(r) => {
                        out.push(1);
                        put_u64(out, r.min_idle_ms);
                        put_id(out, r.start);
                        put_id(out, r.end);
                        put_u64(out, r.count);
                        match &r.consumer {
                            None => out.push(0),
                            Some(c) => {
                                out.push(1);
                                put_blob(out, c);
                            }
                        }
                    }
                }
            }
            Command::XInfoGroups { key } => {
                out.push(op::XINFO_GROUPS);
                put_blob(out, key);
            }
            Command::XInfoConsumers { key, group, now_ms } => {
                out.push(op::XINFO_CONSUMERS);
                put_blob(out, key);
                put_blob(out, group);
                put_u64(out, *now_ms);
            }
        }
        debug_assert_eq!(out.len() - start, self.encoded_len());
    }

    /// Decodes one command occupying all of `payload`.
    ///
    /// # Errors
    /// Truncated input, trailing bytes, an unknown opcode or flag byte, a length or count the
    /// remaining bytes cannot hold, a NaN score, a `Multi` nested in a `Multi`; an error inside
    /// a `Multi`'s sub-command is reported at its offset in `payload`. Never panics; allocates
    /// at most a small constant multiple of `payload.len()`.
    pub fn decode(payload: &[u8]) -> Result<Command, DecodeError> {
        Command::decode_nested(payload, true)
    }

    /// Decodes one command occupying all of `payload`; a `Multi` only if `multi_allowed` (false
    /// for a transaction's sub-commands, so that recursion is one level deep at most).
    fn decode_nested(payload: &[u8], multi_allowed: bool) -> Result<Command, DecodeError> {
        let mut r = Reader {
            buf: payload,
            pos: 0,
        };
        let opcode = r.u8()?;
        let unknown = DecodeError {
            offset: 0,
            reason: "unknown opcode",
        };
        // Checked before the key, so that garbage is reported as a bad opcode.
        if !(op::SET..=op::LAST).contains(&opcode) {
            return Err(unknown);
        }
        if opcode == op::FLUSHALL {
            return r.finish(Command::FlushAll);
        }
        if opcode == op::MULTI {
            if !multi_allowed {
                return Err(DecodeError {
                    offset: 0,
                    reason: "transaction nested in a transaction",
                });
            }
            let cmd = Command::Multi { cmds: r.nested()? };
            return r.finish(cmd);
        }
        let key = r.blob()?;
        let cmd = match opcode {
            op::SET => Command::Set {
                key,
                value: r.blob()?,
            },
            op::GET => Command::Get { key },
            op::DEL => Command::Del { key },
            op::SETNX => Command::SetNx {
                key,
                value: r.blob()?,
            },
            op::INCRBY => Command::IncrBy {
                key,
                delta: i64::from_le_bytes(r.array()?),
            },
            op::PEXPIREAT => Command::PExpireAt {
                key,
                at_ms: r.u64()?,
            },
            op::HSET => Command::HSet {
                key,
                fields: r.pairs()?,
            },
            op::HDEL => Command::HDel {
                key,
                fields: r.blobs()?,
            },
            op::ZADD => {
                let n = r.count(MIN_SCORED)?;
                let mut members = Vec::with_capacity(n);
                for _ in 0..n {
                    let score = r.score()?;
                    members.push((score, r.blob()?));
                }
                Command::ZAdd { key, members }
            }
            op::ZREM => Command::ZRem {
                key,
                members: r.blobs()?,
            },
            op::ZPOPMIN => Command::ZPopMin {
                key,
                count: r.u64()?,
            },
            op::XADD => {
                let at = r.pos();
                let id = match r.u8()? {
                    0 => XAddId::Auto,
                    1 => XAddId::Explicit(StreamId {
                        ms: r.u64()?,
                        seq: r.u64()?,
                    }),
                    2 => XAddId::Time { now_ms: r.u64()? },
                    3 => XAddId::AutoSeq { ms: r.u64()? },
                    _ => {
                        return Err(DecodeError {
                            offset: at,
                            reason: "XADD id kind is not 0 (auto), 1 (explicit), 2 (time) or 3 (ms-*)",
                        });
                    }
                };
                let maxlen = match r.flag("MAXLEN flag is neither 0 nor 1")? {
                    false => None,
                    true => Some(r.u64()?),
                };
                Command::XAdd {
                    key,
                    id,
                    fields: r.pairs()?,
                    maxlen,
                }
            }
            op::SETOPTS => {
                let value = r.blob()?;
                let at = r.pos();
                let cond = match r.u8()? {
                    0 => SetCond::Always,
                    1 => SetCond::Nx,
                    2 => SetCond::Xx,
                    _ => {
                        return Err(DecodeError {
                            offset: at,
                            reason: "SET condition is not 0 (none), 1 (NX) or 2 (XX)",
                        });
                    }
                };
                let at = r.pos();
                let ttl = match r.u8()? {
                    0 => SetTtl::Clear,
                    1 => SetTtl::Keep,
                    2 => SetTtl::At(r.u64()?),
                    _ => {
                        return Err(DecodeError {
                            offset: at,
                            reason: "SET expiry kind is not 0 (clear), 1 (KEEPTTL) or 2 (PXAT)",
                        });
                    }
                };
                let get = r.flag("SET GET flag is neither 0 nor 1")?;
                Command::SetOpts {
                    key,
                    value,
                    opts: SetOptions { cond, ttl, get },
                }
            }
            op::PERSIST => Command::Persist { key },
            op::HINCRBY => Command::HIncrBy {
                key,
                field: r.blob()?,
                delta: i64::from_le_bytes(r.array()?),
            },
            op::XGROUP_CREATE => Command::XGroupCreate {
                key,
                group: r.blob()?,
                id: r.group_start()?,
                mkstream: r.flag("MKSTREAM flag is neither 0 nor 1")?,
                entries_read: r.opt_u64("ENTRIESREAD flag is neither 0 nor 1")?,
            },
            op::XGROUP_SETID => Command::XGroupSetId {
                key,
                group: r.blob()?,
                id: r.group_start()?,
                entries_read: r.opt_u64("ENTRIESREAD flag is neither 0 nor 1")?,
            },
            op::XGROUP_DESTROY => Command::XGroupDestroy {
                key,
                group: r.blob()?,
            },
            op::XGROUP_CREATECONSUMER => Command::XGroupCreateConsumer {
                key,
                group: r.blob()?,
                consumer: r.blob()?,
                now_ms: r.u64()?,
            },
            op::XGROUP_DELCONSUMER => Command::XGroupDelConsumer {
                key,
                group: r.blob()?,
                consumer: r.blob()?,
            },
            op::XREADGROUP => Command::XReadGroup {
                key,
                group: r.blob()?,
                consumer: r.blob()?,
                count: r.opt_u64("COUNT flag is neither 0 nor 1")?,
                start: match r.flag("XREADGROUP start kind is neither 0 (>) nor 1 (id)")? {
                    false => ReadStart::New,
                    true => ReadStart::Pending(r.id()?),
                },
                noack: r.flag("NOACK flag is neither 0 nor 1")?,
                now_ms: r.u64()?,
            },
            op::XACK => Command::XAck {
                key,
                group: r.blob()?,
                ids: r.ids()?,
            },
            op::XDEL => Command::XDel { key, ids: r.ids()? },
            op::XCLAIM => {
                let group = r.blob()?;
                let consumer = r.blob()?;
                let min_idle_ms = r.u64()?;
                let ids = r.ids()?;
                let now_ms = r.u64()?;
                let justid = r.flag("JUSTID flag is neither 0 nor 1")?;
                let at = r.pos();
                let time = match r.u8()? {
                    0 => None,
                    1 => Some(ClaimTime::IdleMs(r.u64()?)),
                    2 => Some(ClaimTime::AtMs(r.u64()?)),
                    _ => {
                        return Err(DecodeError {
                            offset: at,
                            reason: "XCLAIM time kind is not 0 (none), 1 (IDLE) or 2 (TIME)",
                        });
                    }
                };
                let retry_count = r.opt_u64("RETRYCOUNT flag is neither 0 nor 1")?;
                let force = r.flag("FORCE flag is neither 0 nor 1")?;
                let last_id = match r.flag("LASTID flag is neither 0 nor 1")? {
                    false => None,
                    true => Some(r.id()?),
                };
                Command::XClaim {
                    key,
                    group,
                    consumer,
                    min_idle_ms,
                    ids,
                    now_ms,
                    justid,
                    options: XClaimOptions {
                        time,
                        retry_count,
                        force,
                        last_id,
                    },
                }
            }
            op::XAUTOCLAIM => Command::XAutoClaim {
                key,
                group: r.blob()?,
                consumer: r.blob()?,
                min_idle_ms: r.u64()?,
                start: r.id()?,
                count: r.u64()?,
                now_ms: r.u64()?,
                justid: r.flag("JUSTID flag is neither 0 nor 1")?,
            },
            op::XPENDING => {
                let group = r.blob()?;
                let now_ms = r.u64()?;
                let range = match r.flag("XPENDING range flag is neither 0 nor 1")? {
                    false => None,
                    true => Some(PendingRange {
                        min_idle_ms: r.u64()?,
                        start: r.id()?,
                        end: r.id()?,
                        count: r.u64()?,
                        consumer: match r.flag("XPENDING consumer flag is neither 0 nor 1")? {
                            false => None,
                            true => Some(r.blob()?),
                        },
                    }),
                };
                Command::XPending {
                    key,
                    group,
                    range,
                    now_ms,
                }
            }
            op::XINFO_GROUPS => Command::XInfoGroups { key },
            op::XINFO_CONSUMERS => Command::XInfoConsumers {
                key,
                group: r.blob()?,
                now_ms: r.u64()?,
            },
            _ => return Err(unknown),
        };
        r.finish(cmd)
    }
}

/// A cursor over a payload; every read checks the remaining length first.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Bytes consumed so far.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.remaining() {
            return Err(DecodeError {
                offset: self.pos,
                reason: "truncated",
            });
        }
        let bytes = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(bytes)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut a = [0; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u32(&mut self) -> Result<usize, DecodeError> {
        // u32 fits in usize on every target this crate builds for (64-bit Linux).
        Ok(u32::from_le_bytes(self.array()?) as usize)
    }

    pub(crate) fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    pub(crate) fn score(&mut self) -> Result<f64, DecodeError> {
        let at = self.pos;
        let score = f64::from_bits(self.u64()?);
        if score.is_nan() {
            return Err(DecodeError {
                offset: at,
                reason: "score is NaN",
            });
        }
        Ok(score)
    }

    /// A byte that must be 0 or 1 (so that the encoding stays canonical).
    pub(crate) fn flag(&mut self, reason: &'static str) -> Result<bool, DecodeError> {
        let at = self.pos;
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError { offset: at, reason }),
        }
    }

    pub(crate) fn blob(&mut self) -> Result<Vec<u8>, DecodeError> {
        let at = self.pos;
        let len = self.u32()?;
        if len > self.remaining() {
            return Err(DecodeError {
                offset: at,
                reason: "length exceeds the remaining bytes",
            });
        }
        Ok(self.take(len)?.to_vec())
    }

    /// A list count, checked against the remaining bytes so that it bounds any allocation.
    pub(crate) fn count(&mut self, min_element_len: usize) -> Result<usize, DecodeError> {
        let at = self.pos;
        let n = self.u32()?;
        if n.saturating_mul(min_element_len) > self.remaining() {
            return Err(DecodeError {
                offset: at,
                reason: "count exceeds the remaining bytes",
            });
        }
        Ok(n)
    }

    pub(crate) fn id(&mut self) -> Result<StreamId, DecodeError> {
        Ok(StreamId {
            ms: self.u64()?,
            seq: self.u64()?,
        })
    }

    pub(crate) fn ids(&mut self) -> Result<Vec<StreamId>, DecodeError> {
        let n = self.count(ID_LEN)?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(self.id()?);
        }
        Ok(out)
    }

    /// A flag byte, then a `u64` if it is 1.
    pub(crate) fn opt_u64(&mut self, reason: &'static str) -> Result<Option<u64>, DecodeError> {
        Ok(match self.flag(reason)? {
            false => None,
            true => Some(self.u64()?),
        })
    }

    fn group_start(&mut self) -> Result<GroupStart, DecodeError> {
        Ok(
            match self.flag("XGROUP id kind is neither 0 ($) nor 1 (id)")? {
                false => GroupStart::Last,
                true => GroupStart::Id(self.id()?),
            },
        )
    }

    pub(crate) fn blobs(&mut self) -> Result<Vec<Vec<u8>>, DecodeError> {
        let n = self.count(MIN_BLOB)?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(self.blob()?);
        }
        Ok(out)
    }

    /// `cmd` if the whole buffer has been read, else the trailing-bytes error.
    fn finish(&self, cmd: Command) -> Result<Command, DecodeError> {
        if self.pos != self.buf.len() {
            return Err(DecodeError {
                offset: self.pos,
                reason: "trailing bytes after the command",
            });
        }
        Ok(cmd)
    }

    /// A transaction's sub-commands: a count, then each one's `u32` length and payload. A
    /// sub-command's error is reported at its offset in the whole buffer.
    fn nested(&mut self) -> Result<Vec<Command>, DecodeError> {
        let n = self.count(MIN_NESTED)?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let at = self.pos;
            let len = self.u32()?;
            if len > self.remaining() {
                return Err(DecodeError {
                    offset: at,
                    reason: "length exceeds the remaining bytes",
                });
            }
            let start = self.pos;
            let cmd = Command::decode_nested(self.take(len)?, false).map_err(|e| DecodeError {
                offset: start + e.offset,
                reason: e.reason,
            })?;
            out.push(cmd);
        }
        Ok(out)
    }

    pub(crate) fn pairs(&mut self) -> Result<Vec<FieldValue>, DecodeError> {
        let n = self.count(MIN_PAIR)?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let field = self.blob()?;
            out.push((field, self.blob()?));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_layout() {
        let mut out = Vec::new();
        Command::Set {
            key: b"k".to_vec(),
            value: b"vv".to_vec(),
        }
        .encode(&mut out);
        assert_eq!(out, [1, 1, 0, 0, 0, b'k', 2, 0, 0, 0, b'v', b'v']);
    }

    #[test]
    fn xadd_layout() {
        let mut out = Vec::new();
        let cmd = Command::XAdd {
            key: b"s".to_vec(),
            id: XAddId::Explicit(StreamId { ms: 2, seq: 3 }),
            fields: vec![(b"f".to_vec(), b"v".to_vec())],
            maxlen: Some(7),
        };
        cmd.encode(&mut out);
        let mut want = vec![
            12, 1, 0, 0, 0, b's', 1, 2, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0,
        ];
        want.extend_from_slice(&[1, 7, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0]);
        want.extend_from_slice(&[1, 0, 0, 0, b'f', 1, 0, 0, 0, b'v']);
        assert_eq!(out, want);
        assert_eq!(Command::decode(&out), Ok(cmd));
    }

    /// The example in docs/format.md, "Consumer groups".
    #[test]
    fn xreadgroup_layout() {
        let cmd = Command::XReadGroup {
            key: b"s".to_vec(),
            group: b"g".to_vec(),
            consumer: b"c".to_vec(),
            count: None,
            start: ReadStart::New,
            noack: false,
            now_ms: 5,
        };
        let mut out = Vec::new();
        cmd.encode(&mut out);
        let want = [
            23, 1, 0, 0, 0, b's', 1, 0, 0, 0, b'g', 1, 0, 0, 0, b'c', 0, 0, 0, 5, 0, 0, 0, 0, 0, 0,
            0,
        ];
        assert_eq!(out, want);
        assert_eq!(Command::decode(&out), Ok(cmd));
        let mut bad = out.clone();
        bad[17] = 2;
        assert_eq!(
            Command::decode(&bad),
            Err(DecodeError {
                offset: 17,
                reason: "XREADGROUP start kind is neither 0 (>) nor 1 (id)"
            })
        );
    }

    #[test]
    fn huge_id_count_is_rejected_before_allocating() {
        let mut p = vec![op::XDEL, 1, 0, 0, 0, b's'];
        p.extend_from_slice(&u32::MAX.to_le_bytes());
        p.extend_from_slice(&[0; 16]);
        assert_eq!(
            Command::decode(&p),
            Err(DecodeError {
                offset: 6,
                reason: "count exceeds the remaining bytes"
            })
        );
    }

    #[test]
    fn huge_count_is_rejected_before_allocating() {
        let mut p = vec![op::HDEL, 0, 0, 0, 0];
        p.extend_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            Command::decode(&p),
            Err(DecodeError {
                offset: 5,
                reason: "count exceeds the remaining bytes"
            })
        );
    }

    #[test]
    fn errors_name_offsets() {
        assert_eq!(Command::decode(&[]).unwrap_err().offset, 0);
        assert_eq!(
            Command::decode(&[0, 0, 0, 0, 0]).unwrap_err().reason,
            "unknown opcode"
        );
        let e = Command::decode(&[op::GET, 0, 0, 0, 0, 9]).unwrap_err();
        assert_eq!(
            (e.offset, e.reason),
            (5, "trailing bytes after the command")
        );
        let mut nan = vec![op::ZADD, 0, 0, 0, 0, 1, 0, 0, 0];
        nan.extend_from_slice(&f64::NAN.to_bits().to_le_bytes());
        nan.extend_from_slice(&[0, 0, 0, 0]);
        assert_eq!(
            Command::decode(&nan),
            Err(DecodeError {
                offset: 9,
                reason: "score is NaN"
            })
        );
    }
}
