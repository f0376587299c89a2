//! The command set and its replies.

use super::msg;

/// A field and its value (`HSET`, `XADD`).
pub type FieldValue = (Vec<u8>, Vec<u8>);

/// A stream entry id, `ms-seq`, ordered as Redis orders them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct StreamId {
    pub ms: u64,
    pub seq: u64,
}

/// How `XADD` picks the new entry's id. Deterministic in every case: no clock is read when
/// the command is applied (a time-based id carries the time it was given, so a replay of the
/// logged command picks the same id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XAddId {
    /// The last id's `ms` with `seq + 1` (`0-1` for an empty stream).
    Auto,
    /// This id; must be greater than the stream's last id, else an error reply.
    Explicit(StreamId),
    /// Redis's `*`: `now_ms-0` if `now_ms` is above the last id's `ms`, else the last id's
    /// `ms` with `seq + 1`, so ids never go backwards when the clock does.
    Time { now_ms: u64 },
    /// Redis 7's `ms-*`: `ms` with the next sequence number (`seq + 1` if the last id has this
    /// `ms`, else 0, or 1 for `0-*`); an error if `ms` is below the last id's.
    AutoSeq { ms: u64 },
}

/// Where `XGROUP CREATE` and `XGROUP SETID` put a group's last-delivered id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupStart {
    /// This id (entries above it are new to the group).
    Id(StreamId),
    /// Redis's `$`: the stream's last id when the command runs (`0-0` for a stream created by
    /// `MKSTREAM`), so only entries added later are new to the group.
    Last,
}

/// Which entries `XREADGROUP` delivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadStart {
    /// Redis's `>`: entries never delivered to the group (above its last-delivered id); each
    /// becomes pending for the consumer (unless `NOACK`) and moves the last-delivered id.
    New,
    /// An explicit id: the consumer's own pending entries with ids strictly above this one
    /// (`0` for all of them), as Redis serves a history read. Each one still in the stream
    /// has its delivery count bumped and its delivery time set to the command's time; one
    /// deleted from the stream is replied as its id with a nil array.
    Pending(StreamId),
}

/// The delivery time `XCLAIM`'s `IDLE` or `TIME` option sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimTime {
    /// `IDLE ms`: delivered `ms` before the command's time (at the command's time if that
    /// would be before the epoch).
    IdleMs(u64),
    /// `TIME ms`: delivered at this Unix time in ms (at the command's time if it is later).
    AtMs(u64),
}

/// `XCLAIM`'s options beyond `JUSTID` (Redis uses them to replicate deliveries).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct XClaimOptions {
    /// `IDLE`/`TIME`: the claimed entries' delivery time; the command's time if `None`.
    pub time: Option<ClaimTime>,
    /// `RETRYCOUNT`: sets the delivery count instead of incrementing it.
    pub retry_count: Option<u64>,
    /// `FORCE`: creates a pending entry for an id that is in the stream but pending nowhere.
    pub force: bool,
    /// `LASTID`: raises the group's last-delivered id to this one if it is above it.
    pub last_id: Option<StreamId>,
}

/// The extended form of `XPENDING`: `[IDLE min] start end count [consumer]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingRange {
    /// Only entries idle at least this long (0: all).
    pub min_idle_ms: u64,
    /// First id (inclusive; an exclusive `(id` is parsed into the next id).
    pub start: StreamId,
    /// Last id (inclusive).
    pub end: StreamId,
    /// At most this many entries.
    pub count: u64,
    /// Only this consumer's pending entries (an empty reply if it does not exist).
    pub consumer: Option<Vec<u8>>,
}

/// The condition of a `SET` with options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SetCond {
    /// Set whatever the key holds.
    #[default]
    Always,
    /// `NX`: only if the key does not exist.
    Nx,
    /// `XX`: only if the key exists.
    Xx,
}

/// What a `SET` with options does to the key's expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SetTtl {
    /// No expiry option: the key's expiry is removed (as a plain `SET`).
    #[default]
    Clear,
    /// `KEEPTTL`: the expiry of the key it overwrites stays.
    Keep,
    /// `PXAT` (every relative `EX`/`PX` and `EXAT` is logged in this absolute form, as Redis
    /// propagates them): expires at this time, ms since the Unix epoch.
    At(u64),
}

/// The options of [`Command::SetOpts`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SetOptions {
    pub cond: SetCond,
    pub ttl: SetTtl,
    /// `GET`: reply with the old string value (nil if none) instead of `OK`; an error, and no
    /// change, if the key holds another type.
    pub get: bool,
}

/// One command of the Redis-like subset. Everything but `Get`, `XPending`, `XInfoGroups`,
/// `XInfoConsumers` (and a `Multi` of reads only) is a write and gets an LSN.
///
/// Consumer-group commands (`XGroup*`, `XReadGroup`, `XAck`, `XClaim`, `XAutoClaim`) that
/// depend on time carry the time they run at (`now_ms`, ms since the Unix epoch), given by
/// the caller and logged with them: applying them reads no clock, so a replay gives the same
/// delivery times.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Set {
        key: Vec<u8>,
        value: Vec<u8>,
    },
    Get {
        key: Vec<u8>,
    },
    Del {
        key: Vec<u8>,
    },
    SetNx {
        key: Vec<u8>,
        value: Vec<u8>,
    },
    IncrBy {
        key: Vec<u8>,
        delta: i64,
    },
    /// Stores an absolute expiry time (ms) as metadata; nothing expires in the background.
    PExpireAt {
        key: Vec<u8>,
        at_ms: u64,
    },
    /// `SET key value` with options (`NX`/`XX`, `KEEPTTL`/`PXAT`, `GET`); a plain `SET` is
    /// [`Command::Set`]. Replies `OK`, or nil when the condition fails, or with `GET` the old
    /// value.
    SetOpts {
        key: Vec<u8>,
        value: Vec<u8>,
        opts: SetOptions,
    },
    /// Removes the key's expiry: 1 if it had one, else 0.
    Persist {
        key: Vec<u8>,
    },
    /// Adds `delta` to the integer in a hash field (0 if absent) and replies the new value.
    HIncrBy {
        key: Vec<u8>,
        field: Vec<u8>,
        delta: i64,
    },
    /// Removes every key. Replies `OK`.
    FlushAll,
    HSet {
        key: Vec<u8>,
        fields: Vec<(Vec<u8>, Vec<u8>)>,
    },
    HDel {
        key: Vec<u8>,
        fields: Vec<Vec<u8>>,
    },
    ZAdd {
        key: Vec<u8>,
        members: Vec<(f64, Vec<u8>)>,
    },
    ZRem {
        key: Vec<u8>,
        members: Vec<Vec<u8>>,
    },
    ZPopMin {
        key: Vec<u8>,
        count: u64,
    },
    XAdd {
        key: Vec<u8>,
        id: XAddId,
        fields: Vec<(Vec<u8>, Vec<u8>)>,
        maxlen: Option<u64>,
    },
    /// `XGROUP CREATE key group id|$ [MKSTREAM] [ENTRIESREAD n]`: `OK`; `BUSYGROUP` if the
    /// group exists; an error if the key does not exist and `mkstream` is false.
    XGroupCreate {
        key: Vec<u8>,
        group: Vec<u8>,
        id: GroupStart,
        mkstream: bool,
        /// The group's entries-read counter; `None` for unknown (Redis's -1, the default).
        entries_read: Option<u64>,
    },
    /// `XGROUP SETID key group id|$ [ENTRIESREAD n]`: `OK`; the pending entries stay.
    XGroupSetId {
        key: Vec<u8>,
        group: Vec<u8>,
        id: GroupStart,
        entries_read: Option<u64>,
    },
    /// `XGROUP DESTROY key group`: 1 if the group existed (with its pending entries), else 0.
    XGroupDestroy {
        key: Vec<u8>,
        group: Vec<u8>,
    },
    /// `XGROUP CREATECONSUMER key group consumer`: 1 if created (seen at `now_ms`), 0 if it
    /// existed.
    XGroupCreateConsumer {
        key: Vec<u8>,
        group: Vec<u8>,
        consumer: Vec<u8>,
        now_ms: u64,
    },
    /// `XGROUP DELCONSUMER key group consumer`: the number of entries it had pending (which
    /// leave the group's pending list), 0 if it did not exist.
    XGroupDelConsumer {
        key: Vec<u8>,
        group: Vec<u8>,
        consumer: Vec<u8>,
    },
    /// `XREADGROUP GROUP group consumer [COUNT n] [NOACK] STREAMS key id`, one stream.
    /// Always a write: it creates the consumer and sets its seen time, and delivers. Runs at
    /// `now_ms` (delivery and seen times), which the log keeps so that a replay is exact.
    XReadGroup {
        key: Vec<u8>,
        group: Vec<u8>,
        consumer: Vec<u8>,
        /// `COUNT`: at most this many entries; `None` or `Some(0)` for no limit.
        count: Option<u64>,
        start: ReadStart,
        /// `NOACK`: new entries are delivered without becoming pending.
        noack: bool,
        now_ms: u64,
    },
    /// `XACK key group id...`: how many of `ids` were pending (and no longer are).
    XAck {
        key: Vec<u8>,
        group: Vec<u8>,
        ids: Vec<StreamId>,
    },
    /// `XDEL key id...`: how many entries it removed. Pending entries for them stay pending.
    XDel {
        key: Vec<u8>,
        ids: Vec<StreamId>,
    },
    /// `XCLAIM key group consumer min-idle id... [IDLE ms|TIME ms] [RETRYCOUNT n] [FORCE]
    /// [JUSTID] [LASTID id]` at `now_ms`.
    XClaim {
        key: Vec<u8>,
        group: Vec<u8>,
        consumer: Vec<u8>,
        min_idle_ms: u64,
        ids: Vec<StreamId>,
        now_ms: u64,
        /// `JUSTID`: reply ids only and leave the delivery count alone.
        justid: bool,
        options: XClaimOptions,
    },
    /// `XAUTOCLAIM key group consumer min-idle start [COUNT n] [JUSTID]` at `now_ms`.
    XAutoClaim {
        key: Vec<u8>,
        group: Vec<u8>,
        consumer: Vec<u8>,
        min_idle_ms: u64,
        /// First pending id to look at (inclusive).
        start: StreamId,
        /// At most this many entries claimed or found deleted (1 or more; Redis's default 100).
        count: u64,
        now_ms: u64,
        justid: bool,
    },
    /// `XPENDING key group [range]`: the summary, or with `range` the extended form. A read.
    XPending {
        key: Vec<u8>,
        group: Vec<u8>,
        range: Option<PendingRange>,
        /// The time idle times are measured at.
        now_ms: u64,
    },
    /// `XINFO GROUPS key`, Redis 7.0's fields. A read.
    XInfoGroups {
        key: Vec<u8>,
    },
    /// `XINFO CONSUMERS key group`, Redis 7.0's fields (idle measured at `now_ms`). A read.
    XInfoConsumers {
        key: Vec<u8>,
        group: Vec<u8>,
        now_ms: u64,
    },
    /// A transaction (the commands of a MULTI/EXEC): `cmds` applied in order, each with its own
    /// reply, the whole replying [`Reply::Array`] of those replies. A sub-command's error reply
    /// does not stop the others (Redis's EXEC semantics for errors at run time). Logged as one
    /// record with one LSN, so recovery keeps all of it or none of it. A `Multi` inside a
    /// `Multi` is refused ([`Command::arg_error`]).
    Multi {
        cmds: Vec<Command>,
    },
}

/// A Redis-like reply. Wrong-type use and bad arguments give [`Reply::Error`], never a panic.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Ok,
    Nil,
    Int(i64),
    Bulk(Vec<u8>),
    Array(Vec<Reply>),
    /// Redis's null array (`*-1` in RESP2): `XREADGROUP` with nothing to deliver, a pending
    /// entry whose stream entry was deleted, `XPENDING`'s consumers of an empty pending list.
    NilArray,
    /// An error reply such as `WRONGTYPE Operation against a key holding the wrong kind of value`.
    Error(String),
}

impl Command {
    /// True for every command that changes (or may change) the keyspace and so is logged: all
    /// but `Get`, and a `Multi` if any of its sub-commands is a write.
    pub fn is_write(&self) -> bool {
        match self {
            Command::Get { .. }
            | Command::XPending { .. }
            | Command::XInfoGroups { .. }
            | Command::XInfoConsumers { .. } => false,
            Command::Multi { cmds } => cmds.iter().any(Command::is_write),
            _ => true,
        }
    }

    /// The key the command addresses; `None` for a [`Command::Multi`], which may address any
    /// number of keys (ask its sub-commands), and for [`Command::FlushAll`], which addresses
    /// all of them.
    pub fn key(&self) -> Option<&[u8]> {
        Some(match self {
            Command::Set { key, .. }
            | Command::Get { key }
            | Command::Del { key }
            | Command::SetNx { key, .. }
            | Command::IncrBy { key, .. }
            | Command::PExpireAt { key, .. }
            | Command::SetOpts { key, .. }
            | Command::Persist { key }
            | Command::HIncrBy { key, .. }
            | Command::HSet { key, .. }
            | Command::HDel { key, .. }
            | Command::ZAdd { key, .. }
            | Command::ZRem { key, .. }
            | Command::ZPopMin { key, .. }
            | Command::XAdd { key, .. }
            | Command::XGroupCreate { key, .. }
            | Command::XGroupSetId { key, .. }
            | Command::XGroupDestroy { key, .. }
            | Command::XGroupCreateConsumer { key, .. }
            | Command::XGroupDelConsumer { key, .. }
            | Command::XReadGroup { key, .. }
            | Command::XAck { key, .. }
            | Command::XDel { key, .. }
            | Command::XClaim { key, .. }
            | Command::XAutoClaim { key, .. }
            | Command::XPending { key, .. }
            | Command::XInfoGroups { key }
            | Command::XInfoConsumers { key, .. } => key,
            Command::Multi { .. } | Command::FlushAll => return None,
        })
    }

    /// The error reply `self` gets whatever the keyspace holds, if any: an empty field or
    /// member list, a NaN score, the `XADD` id `0-0`, a `Multi` inside a `Multi`.
    /// [`Keyspace::apply`] checks this first, so such a command never changes state. A writer
    /// may call it to skip logging commands that can only fail (a NaN score also cannot be
    /// decoded, nor can a nested `Multi`).
    ///
    /// A `Multi` reports only nesting here: its other sub-commands' own argument errors are
    /// their own error replies inside its array reply, and the others still run (as in EXEC).
    /// A writer logging a `Multi` should leave such sub-commands out of the record (they change
    /// nothing, and a NaN score would not decode).
    ///
    /// [`Keyspace::apply`]: super::Keyspace::apply
    pub fn arg_error(&self) -> Option<&'static str> {
        match self {
            Command::HSet { fields, .. } if fields.is_empty() => Some(msg::ARITY_HSET),
            Command::HDel { fields, .. } if fields.is_empty() => Some(msg::ARITY_HDEL),
            Command::ZAdd { members, .. } if members.is_empty() => Some(msg::ARITY_ZADD),
            Command::ZAdd { members, .. } if members.iter().any(|(s, _)| s.is_nan()) => {
                Some(msg::NOT_A_FLOAT)
            }
            Command::ZRem { members, .. } if members.is_empty() => Some(msg::ARITY_ZREM),
            Command::XAdd { fields, .. } if fields.is_empty() => Some(msg::ARITY_XADD),
            Command::XAdd {
                id: XAddId::Explicit(StreamId { ms: 0, seq: 0 }),
                ..
            } => Some(msg::XADD_ID_ZERO),
            Command::XAck { ids, .. } | Command::XDel { ids, .. } if ids.is_empty() => {
                Some(match self {
                    Command::XAck { .. } => msg::ARITY_XACK,
                    _ => msg::ARITY_XDEL,
                })
            }
            Command::XAutoClaim { count: 0, .. } => Some(msg::XAUTOCLAIM_COUNT),
            Command::Multi { cmds } if cmds.iter().any(|c| matches!(c, Command::Multi { .. })) => {
                Some(msg::MULTI_NESTED)
            }
            _ => None,
        }
    }
}
