//! RESP arguments to requests (engine commands, read commands, server commands), and engine
//! commands back to RESP arguments for the client: one mapping in both directions, so the
//! server and the client cannot disagree (`parse(to_args(c)) == c` is tested).

use durlab_engine::keyspace::{
    ClaimTime, Entry, GroupStart, ReadStart, SetCond, SetOptions, SetTtl, StreamId,
    Value as Stored, XAddId, format_score, msg,
};
use durlab_engine::{Command, Keyspace};

use super::Value;
use super::parse::parse_i64;

/// How [`to_args`] spells an automatic `XADD` id ([`XAddId::Auto`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoId {
    /// `*`: for `durlab serve` and Redis alike, a time-based id ([`XAddId::Time`]); the same
    /// ids as [`XAddId::Auto`] only while the clock is not ahead of the stream's last id.
    Star,
    /// `0-*`: Redis 7's "ms 0, next sequence number", which gives the same ids as durlab's
    /// `*` while every id of the stream has ms 0 (always so for the workload's streams).
    /// Redis's own `*` reads the clock instead, so state could not be compared.
    ZeroMsStar,
}

/// What a request does.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// Engine commands run as one batch; `sum` adds their integer replies into one
    /// (multi-key `DEL`), else there is exactly one command.
    Engine {
        cmds: Vec<Command>,
        sum: bool,
    },
    /// A read served from the keyspace under the engine's lock.
    Read(Read),
    Ping(Option<Vec<u8>>),
    Echo(Vec<u8>),
    Multi,
    Exec,
    Discard,
    /// `INFO [section]` (lowercase).
    Info(Option<String>),
    /// `CONFIG GET pattern` (lowercase).
    ConfigGet(String),
    BgRewriteAof,
    BgSave,
    /// `SAVE`: a synchronous snapshot.
    Save,
    Shutdown,
    /// `SELECT db` (only 0 exists), `CLIENT ...`, `COMMAND ...`: harmless client chatter.
    Select(i64),
    Client,
    CommandDocs,
    Quit,
}

/// The read commands verification needs.
#[derive(Debug, Clone, PartialEq)]
pub enum Read {
    Type(Vec<u8>),
    Exists(Vec<Vec<u8>>),
    HGetAll(Vec<u8>),
    /// `ZRANGE key start stop [WITHSCORES]` by rank.
    ZRange {
        key: Vec<u8>,
        start: i64,
        stop: i64,
        withscores: bool,
    },
    /// `XRANGE key start end [COUNT n]` (`-` and `+` or explicit ids).
    XRange {
        key: Vec<u8>,
        start: StreamId,
        end: StreamId,
        count: Option<u64>,
    },
    /// `XINFO STREAM key`: `length` and `last-generated-id`.
    XInfoStream(Vec<u8>),
    PTtl(Vec<u8>),
    /// `TTL`: [`Read::PTtl`] in seconds, rounded to the nearest.
    Ttl(Vec<u8>),
    PExpireTime(Vec<u8>),
    HGet(Vec<u8>, Vec<u8>),
    HMGet(Vec<u8>, Vec<Vec<u8>>),
    HExists(Vec<u8>, Vec<u8>),
    HLen(Vec<u8>),
    ZScore(Vec<u8>, Vec<u8>),
    ZCard(Vec<u8>),
    XLen(Vec<u8>),
    /// `SCAN cursor [COUNT n]`: the cursor is a position in the keyspace's iteration order.
    Scan {
        cursor: u64,
        count: u64,
    },
    DbSize,
}

fn lower(a: &[u8]) -> String {
    String::from_utf8_lossy(a).to_ascii_lowercase()
}

fn arity(name: &str) -> Value {
    Value::err(format!("wrong number of arguments for '{name}' command"))
}

fn syntax() -> Value {
    Value::err("syntax error")
}

fn int(a: &[u8]) -> Result<i64, Value> {
    parse_i64(a).ok_or_else(|| Value::Error(msg::NOT_AN_INTEGER.into()))
}

fn uint(a: &[u8]) -> Result<u64, Value> {
    u64::try_from(int(a)?).map_err(|_| Value::Error(msg::NOT_AN_INTEGER.into()))
}

/// A score as Redis's `strtod` reads it, without NaN.
fn score(a: &[u8]) -> Result<f64, Value> {
    let bad = || Value::Error(msg::NOT_A_FLOAT.into());
    let s = std::str::from_utf8(a).map_err(|_| bad())?;
    let v: f64 = s.parse().map_err(|_| bad())?;
    if v.is_nan() { Err(bad()) } else { Ok(v) }
}

fn pairs(args: &[&[u8]]) -> Vec<(Vec<u8>, Vec<u8>)> {
    args.chunks_exact(2)
        .map(|p| (p[0].to_vec(), p[1].to_vec()))
        .collect()
}

fn owned(args: &[&[u8]]) -> Vec<Vec<u8>> {
    args.iter().map(|a| a.to_vec()).collect()
}

/// `ms-seq` or `ms` (seq 0 for an explicit id, as Redis reads XADD ids; `fill` is the seq
/// for XRANGE's end).
pub(super) fn stream_id(a: &[u8], fill: u64) -> Option<StreamId> {
    let s = std::str::from_utf8(a).ok()?;
    let (ms, seq) = match s.split_once('-') {
        Some((ms, seq)) => (ms.parse().ok()?, seq.parse().ok()?),
        None => (s.parse().ok()?, fill),
    };
    Some(StreamId { ms, seq })
}

pub(super) fn invalid_id() -> Value {
    Value::err("Invalid stream ID specified as stream command argument")
}

fn invalid_expire(command: &str) -> Value {
    Value::err(format!("invalid expire time in '{command}' command"))
}

/// Redis's text for an unknown command: the name and the first arguments, each cut to what
/// fits in 128 bytes, line breaks turned into spaces (an error reply is one line).
fn unknown_command(first: &[u8], rest: &[&[u8]]) -> Value {
    const SHOWN_BYTES: usize = 128;
    let mut shown = Vec::new();
    // Redis prints them as C strings: each ends at its first NUL byte.
    let c_str = |a: &[u8]| -> usize { a.iter().position(|&b| b == 0).unwrap_or(a.len()) };
    for a in rest {
        if shown.len() >= SHOWN_BYTES {
            break;
        }
        let room = SHOWN_BYTES - shown.len();
        let a = &a[..c_str(a)];
        shown.push(b'\'');
        shown.extend_from_slice(&a[..a.len().min(room)]);
        shown.extend_from_slice(b"' ");
    }
    let name = &first[..c_str(first).min(SHOWN_BYTES)];
    let mut text = b"unknown command '".to_vec();
    text.extend_from_slice(name);
    text.extend_from_slice(b"', with args beginning with: ");
    text.extend_from_slice(&shown);
    for b in &mut text {
        if *b == b'\r' || *b == b'\n' {
            *b = b' ';
        }
    }
    Value::err(String::from_utf8_lossy(&text))
}

/// `SET key value` followed by `opts`: `NX`|`XX`, `GET`, `KEEPTTL`|`EX`|`PX`|`EXAT`|`PXAT`
/// time, any case, in any order. A relative time becomes absolute against `now_ms`, as Redis
/// propagates it (`PXAT`).
fn set_with_options(
    key: &[u8],
    value: &[u8],
    opts: &[&[u8]],
    now_ms: u64,
) -> Result<Request, Value> {
    let mut o = SetOptions::default();
    // (which option, its time argument): a later option of the same kind replaces it, of
    // another kind is a syntax error, as in Redis.
    const EXPIRES: [(&str, i64, bool); 4] = [
        ("ex", 1000, true),
        ("px", 1, true),
        ("exat", 1000, false),
        ("pxat", 1, false),
    ];
    let mut expire: Option<(usize, &[u8])> = None;
    let mut keep = false;
    let mut i = 0;
    while i < opts.len() {
        let a = opts[i];
        let is = |w: &str| a.eq_ignore_ascii_case(w.as_bytes());
        let kind = EXPIRES.iter().position(|(w, ..)| is(w));
        if is("nx") && o.cond != SetCond::Xx {
            o.cond = SetCond::Nx;
        } else if is("xx") && o.cond != SetCond::Nx {
            o.cond = SetCond::Xx;
        } else if is("get") {
            o.get = true;
        } else if is("keepttl") && expire.is_none() {
            keep = true;
        } else if let (Some(kind), Some(t)) = (kind, opts.get(i + 1))
            && !keep
            && expire.is_none_or(|(k, _)| k == kind)
        {
            expire = Some((kind, t));
            i += 1;
        } else {
            return Err(syntax());
        }
        i += 1;
    }
    o.ttl = match expire {
        None if keep => SetTtl::Keep,
        None => SetTtl::Clear,
        Some((kind, t)) => {
            let (_, unit, relative) = EXPIRES[kind];
            let n = int(t)?;
            let invalid = || invalid_expire("set");
            if n <= 0 || (unit == 1000 && n > i64::MAX / 1000) {
                return Err(invalid());
            }
            let mut at = n * unit;
            if relative {
                at = at.checked_add(now_i64(now_ms)).ok_or_else(invalid)?;
            }
            SetTtl::At(u64::try_from(at).map_err(|_| invalid())?)
        }
    };
    Ok(Request::Engine {
        cmds: vec![Command::SetOpts {
            key: key.to_vec(),
            value: value.to_vec(),
            opts: o,
        }],
        sum: false,
    })
}

fn now_i64(now_ms: u64) -> i64 {
    i64::try_from(now_ms).unwrap_or(i64::MAX)
}

/// `EXPIRE`, `PEXPIRE`, `EXPIREAT`, `PEXPIREAT key time`: `unit` ms per unit of `time`,
/// `base_ms` what it is relative to (0 for the absolute forms). A time not after `now_ms`
/// deletes the key (replying 1 if it existed), as Redis does and propagates (`DEL`); a later
/// one is logged as `PEXPIREAT`.
fn expire(
    name: &str,
    key: &[u8],
    time: &[u8],
    unit: i64,
    base_ms: i64,
    now_ms: u64,
) -> Result<Request, Value> {
    let n = int(time)?;
    let invalid = || invalid_expire(name);
    let at = n
        .checked_mul(unit)
        .and_then(|ms| ms.checked_add(base_ms))
        .ok_or_else(invalid)?;
    let cmd = if at <= now_i64(now_ms) {
        Command::Del { key: key.to_vec() }
    } else {
        Command::PExpireAt {
            key: key.to_vec(),
            at_ms: at as u64,
        }
    };
    Ok(Request::Engine {
        cmds: vec![cmd],
        sum: false,
    })
}

/// Parses a request's arguments (`args[0]` is the command name, any case) received at
/// `now_ms` (ms since the Unix epoch): relative expiries become absolute against it, and
/// `XADD key *` takes its id from it.
///
/// Allocates only what the request keeps (keys, values): the server calls this once per
/// request on slices of its input buffer.
///
/// # Errors
/// The error reply Redis would give: unknown command, wrong number of arguments, syntax
/// error, not an integer, not a valid float, invalid stream id, invalid expire time.
pub fn parse(args: &[&[u8]], now_ms: u64) -> Result<Request, Value> {
    let Some((first, rest)) = args.split_first() else {
        return Err(Value::err("empty command"));
    };
    // Command names are short: lower-case into a stack buffer (no allocation per request).
    let mut lowered = [0u8; 16];
    let name = match lowered.get_mut(..first.len()) {
        Some(buf) => {
            buf.copy_from_slice(first);
            buf.make_ascii_lowercase();
            std::str::from_utf8(buf).unwrap_or("")
        }
        None => "",
    };
    let n = args.len();
    let one = |cmd: Command| {
        Ok(Request::Engine {
            cmds: vec![cmd],
            sum: false,
        })
    };
    let key = || rest[0].to_vec();
    match name {
        "set" if n == 3 => one(Command::Set {
            key: key(),
            value: rest[1].to_vec(),
        }),
        "set" if n > 3 => set_with_options(rest[0], rest[1], &rest[2..], now_ms),
        "get" if n == 2 => one(Command::Get { key: key() }),
        "del" if n >= 2 => Ok(Request::Engine {
            cmds: rest
                .iter()
                .map(|k| Command::Del { key: k.to_vec() })
                .collect(),
            sum: true,
        }),
        "setnx" if n == 3 => one(Command::SetNx {
            key: key(),
            value: rest[1].to_vec(),
        }),
        "incrby" if n == 3 => one(Command::IncrBy {
            key: key(),
            delta: int(rest[1])?,
        }),
        "incr" if n == 2 => one(Command::IncrBy {
            key: key(),
            delta: 1,
        }),
        "decr" if n == 2 => one(Command::IncrBy {
            key: key(),
            delta: -1,
        }),
        "decrby" if n == 3 => {
            let d = int(rest[1])?
                .checked_neg()
                .ok_or_else(|| Value::err("decrement would overflow"))?;
            one(Command::IncrBy {
                key: key(),
                delta: d,
            })
        }
        // Redis 7's NX|XX|GT|LT options are not supported (see the conformance corpus).
        "expire" if n == 3 => expire(name, rest[0], rest[1], 1000, now_i64(now_ms), now_ms),
        "pexpire" if n == 3 => expire(name, rest[0], rest[1], 1, now_i64(now_ms), now_ms),
        "expireat" if n == 3 => expire(name, rest[0], rest[1], 1000, 0, now_ms),
        "pexpireat" if n == 3 => expire(name, rest[0], rest[1], 1, 0, now_ms),
        "expire" | "pexpire" | "expireat" | "pexpireat" if n > 3 => {
            match rest[2..].iter().find(|o| {
                !["nx", "xx", "gt", "lt"]
                    .iter()
                    .any(|w| o.eq_ignore_ascii_case(w.as_bytes()))
            }) {
                Some(other) => Err(Value::err(format!(
                    "Unsupported option {}",
                    String::from_utf8_lossy(other)
                ))),
                None => Err(Value::err(format!(
                    "durlab serve does not support {}'s NX, XX, GT and LT options",
                    name.to_uppercase()
                ))),
            }
        }
        "persist" if n == 2 => one(Command::Persist { key: key() }),
        "hincrby" if n == 4 => one(Command::HIncrBy {
            key: key(),
            field: rest[1].to_vec(),
            delta: int(rest[2])?,
        }),
        "flushall" if n == 1 => one(Command::FlushAll),
        "flushall" if n > 2 => Err(syntax()),
        "flushall" if n == 2 => {
            if rest[0].eq_ignore_ascii_case(b"sync") || rest[0].eq_ignore_ascii_case(b"async") {
                one(Command::FlushAll)
            } else {
                Err(syntax())
            }
        }
        "hset" if n >= 4 && n.is_multiple_of(2) => one(Command::HSet {
            key: key(),
            fields: pairs(&rest[1..]),
        }),
        "hdel" if n >= 3 => one(Command::HDel {
            key: key(),
            fields: owned(&rest[1..]),
        }),
        "zadd" if n >= 4 && n.is_multiple_of(2) => {
            let members = rest[1..]
                .chunks_exact(2)
                .map(|p| Ok((score(p[0])?, p[1].to_vec())))
                .collect::<Result<_, Value>>()?;
            one(Command::ZAdd {
                key: key(),
                members,
            })
        }
        "zrem" if n >= 3 => one(Command::ZRem {
            key: key(),
            members: owned(&rest[1..]),
        }),
        "zpopmin" if n == 2 || n == 3 => {
            let count = match rest.get(1) {
                Some(c) => {
                    uint(c).map_err(|_| Value::err("value is out of range, must be positive"))?
                }
                None => 1,
            };
            one(Command::ZPopMin { key: key(), count })
        }
        "xadd" if n >= 5 => xadd(rest, now_ms),
        "hget" if n == 3 => Ok(Request::Read(Read::HGet(key(), rest[1].to_vec()))),
        "hmget" if n >= 3 => Ok(Request::Read(Read::HMGet(key(), owned(&rest[1..])))),
        "hexists" if n == 3 => Ok(Request::Read(Read::HExists(key(), rest[1].to_vec()))),
        "hlen" if n == 2 => Ok(Request::Read(Read::HLen(key()))),
        "zscore" if n == 3 => Ok(Request::Read(Read::ZScore(key(), rest[1].to_vec()))),
        "zcard" if n == 2 => Ok(Request::Read(Read::ZCard(key()))),
        "xlen" if n == 2 => Ok(Request::Read(Read::XLen(key()))),
        "ttl" if n == 2 => Ok(Request::Read(Read::Ttl(key()))),
        "type" if n == 2 => Ok(Request::Read(Read::Type(key()))),
        "exists" if n >= 2 => Ok(Request::Read(Read::Exists(owned(rest)))),
        "hgetall" if n == 2 => Ok(Request::Read(Read::HGetAll(key()))),
        "zrange" if n == 4 || n == 5 => {
            let withscores = match rest.get(3) {
                None => false,
                Some(w) if w.eq_ignore_ascii_case(b"withscores") => true,
                Some(_) => return Err(syntax()),
            };
            Ok(Request::Read(Read::ZRange {
                key: key(),
                start: int(rest[1])?,
                stop: int(rest[2])?,
                withscores,
            }))
        }
        "xrange" if n == 4 || n == 6 => {
            let start = match rest[1] {
                b"-" => StreamId::default(),
                a => stream_id(a, 0).ok_or_else(invalid_id)?,
            };
            let end = match rest[2] {
                b"+" => StreamId {
                    ms: u64::MAX,
                    seq: u64::MAX,
                },
                a => stream_id(a, u64::MAX).ok_or_else(invalid_id)?,
            };
            let count = match rest.get(3) {
                None => None,
                Some(c) if c.eq_ignore_ascii_case(b"count") => Some(uint(rest[4])?),
                Some(_) => return Err(syntax()),
            };
            Ok(Request::Read(Read::XRange {
                key: key(),
                start,
                end,
                count,
            }))
        }
        "xinfo" if n == 3 && rest[0].eq_ignore_ascii_case(b"stream") => {
            Ok(Request::Read(Read::XInfoStream(rest[1].to_vec())))
        }
        name if super::groups::NAMES.contains(&name) => super::groups::parse(name, rest, now_ms),
        "pttl" if n == 2 => Ok(Request::Read(Read::PTtl(key()))),
        "pexpiretime" if n == 2 => Ok(Request::Read(Read::PExpireTime(key()))),
        "scan" if n == 2 || n == 4 => {
            let cursor = uint(rest[0]).map_err(|_| Value::err("invalid cursor"))?;
            let count = match rest.get(1) {
                None => 10,
                Some(c) if c.eq_ignore_ascii_case(b"count") => match uint(rest[2])? {
                    0 => return Err(syntax()),
                    c => c,
                },
                Some(_) => return Err(syntax()),
            };
            Ok(Request::Read(Read::Scan { cursor, count }))
        }
        "dbsize" if n == 1 => Ok(Request::Read(Read::DbSize)),
        "ping" if n <= 2 => Ok(Request::Ping(rest.first().map(|m| m.to_vec()))),
        "echo" if n == 2 => Ok(Request::Echo(key())),
        "multi" if n == 1 => Ok(Request::Multi),
        "exec" if n == 1 => Ok(Request::Exec),
        "discard" if n == 1 => Ok(Request::Discard),
        "info" if n <= 2 => Ok(Request::Info(rest.first().map(|s| lower(s)))),
        "config" if n == 3 && rest[0].eq_ignore_ascii_case(b"get") => {
            Ok(Request::ConfigGet(lower(rest[1])))
        }
        "config" if n >= 2 => Err(Value::err(format!(
            "durlab serve supports only CONFIG GET, not CONFIG {}",
            lower(rest[0]).to_uppercase()
        ))),
        "bgrewriteaof" if n == 1 => Ok(Request::BgRewriteAof),
        "bgsave" if n <= 2 => Ok(Request::BgSave),
        "save" if n == 1 => Ok(Request::Save),
        "shutdown" if n <= 2 => Ok(Request::Shutdown),
        "select" if n == 2 => Ok(Request::Select(int(rest[0])?)),
        "client" if n >= 2 => Ok(Request::Client),
        "command" => Ok(Request::CommandDocs),
        "quit" => Ok(Request::Quit),
        "set" | "get" | "del" | "setnx" | "incrby" | "incr" | "decr" | "decrby" | "pexpireat"
        | "expire" | "pexpire" | "expireat" | "persist" | "hincrby" | "flushall" | "hget"
        | "hmget" | "hexists" | "hlen" | "zscore" | "zcard" | "xlen" | "ttl" | "hset" | "hdel"
        | "zadd" | "zrem" | "zpopmin" | "xadd" | "type" | "exists" | "hgetall" | "zrange"
        | "xrange" | "xinfo" | "pttl" | "pexpiretime" | "scan" | "dbsize" | "ping" | "echo"
        | "multi" | "exec" | "discard" | "info" | "config" | "bgrewriteaof" | "bgsave" | "save"
        | "shutdown" | "select" | "client" => Err(arity(name)),
        _ => Err(unknown_command(first, rest)),
    }
}

/// Requests with at most this many arguments are parsed without allocating a slice list.
const STACK_ARGS: usize = 8;

/// [`parse`] of the arguments at `spans` (`(offset, length)`) of `buf`, as
/// [`super::parse::scan_request`] leaves them; `None` for an empty request (which Redis
/// skips).
pub fn parse_spans(
    buf: &[u8],
    spans: &[(usize, usize)],
    now_ms: u64,
) -> Option<Result<Request, Value>> {
    let arg = |&(at, len): &(usize, usize)| &buf[at..at + len];
    Some(match spans.len() {
        0 => return None,
        n if n <= STACK_ARGS => {
            let mut args: [&[u8]; STACK_ARGS] = [&[]; STACK_ARGS];
            for (a, s) in args.iter_mut().zip(spans) {
                *a = arg(s);
            }
            parse(&args[..n], now_ms)
        }
        _ => parse(&spans.iter().map(arg).collect::<Vec<_>>(), now_ms),
    })
}

/// `XADD key [MAXLEN [=] n] <* | ms-* | ms-seq | ms> field value [field value ...]`; `*`
/// takes its id from `now_ms`.
fn xadd(rest: &[&[u8]], now_ms: u64) -> Result<Request, Value> {
    let mut i = 1;
    let mut maxlen = None;
    if rest[i].eq_ignore_ascii_case(b"maxlen") {
        i += 1;
        if rest.get(i) == Some(&&b"="[..]) {
            i += 1;
        }
        let n = rest.get(i).ok_or_else(syntax)?;
        maxlen = Some(uint(n).map_err(|_| Value::err("The MAXLEN argument must be >= 0."))?);
        i += 1;
    }
    let Some(id_arg) = rest.get(i) else {
        return Err(arity("xadd"));
    };
    let id = match *id_arg {
        b"*" => XAddId::Time { now_ms },
        a => match a.strip_suffix(b"-*") {
            Some(ms) => XAddId::AutoSeq {
                ms: std::str::from_utf8(ms)
                    .ok()
                    .and_then(|t| t.parse().ok())
                    .ok_or_else(invalid_id)?,
            },
            None => XAddId::Explicit(stream_id(a, 0).ok_or_else(invalid_id)?),
        },
    };
    let fields = &rest[i + 1..];
    if fields.is_empty() || !fields.len().is_multiple_of(2) {
        return Err(arity("xadd"));
    }
    Ok(Request::Engine {
        cmds: vec![Command::XAdd {
            key: rest[0].to_vec(),
            id,
            fields: pairs(fields),
            maxlen,
        }],
        sum: false,
    })
}

/// The RESP requests that run `cmd`: one request, [`to_args`], for every command but a
/// [`Command::Multi`], which is `MULTI`, each sub-command's request, `EXEC` (its replies:
/// `+OK`, one `+QUEUED` per sub-command, then the array of their replies).
pub fn to_requests(cmd: &Command, auto: AutoId) -> Vec<Vec<Vec<u8>>> {
    match cmd {
        Command::Multi { cmds } => std::iter::once(vec![b"MULTI".to_vec()])
            .chain(cmds.iter().map(|c| to_args(c, auto)))
            .chain(std::iter::once(vec![b"EXEC".to_vec()]))
            .collect(),
        other => vec![to_args(other, auto)],
    }
}

/// The RESP arguments of `cmd`, as [`parse`] reads them back. A [`Command::Multi`] takes
/// several requests ([`to_requests`]); for it this returns the last of them, `EXEC` (the
/// workload generator never produces one, so callers that send one request per write never
/// see it; sent alone, `EXEC` is refused with `EXEC without MULTI`, never half-run).
pub fn to_args(cmd: &Command, auto: AutoId) -> Vec<Vec<u8>> {
    let b = |s: &str| s.as_bytes().to_vec();
    let mut a = vec![];
    match cmd {
        Command::Set { key, value } => a.extend([b("SET"), key.clone(), value.clone()]),
        Command::Get { key } => a.extend([b("GET"), key.clone()]),
        Command::Del { key } => a.extend([b("DEL"), key.clone()]),
        Command::SetNx { key, value } => a.extend([b("SETNX"), key.clone(), value.clone()]),
        Command::IncrBy { key, delta } => {
            a.extend([b("INCRBY"), key.clone(), b(&delta.to_string())])
        }
        Command::PExpireAt { key, at_ms } => {
            a.extend([b("PEXPIREAT"), key.clone(), b(&at_ms.to_string())])
        }
        Command::SetOpts { key, value, opts } => {
            a.extend([b("SET"), key.clone(), value.clone()]);
            match opts.cond {
                SetCond::Always => {}
                SetCond::Nx => a.push(b("NX")),
                SetCond::Xx => a.push(b("XX")),
            }
            match opts.ttl {
                SetTtl::Clear => {}
                SetTtl::Keep => a.push(b("KEEPTTL")),
                SetTtl::At(at_ms) => a.extend([b("PXAT"), b(&at_ms.to_string())]),
            }
            if opts.get {
                a.push(b("GET"));
            }
        }
        Command::Persist { key } => a.extend([b("PERSIST"), key.clone()]),
        Command::HIncrBy { key, field, delta } => a.extend([
            b("HINCRBY"),
            key.clone(),
            field.clone(),
            b(&delta.to_string()),
        ]),
        Command::FlushAll => a.push(b("FLUSHALL")),
        Command::HSet { key, fields } => {
            a.extend([b("HSET"), key.clone()]);
            a.extend(fields.iter().flat_map(|(f, v)| [f.clone(), v.clone()]));
        }
        Command::HDel { key, fields } => {
            a.extend([b("HDEL"), key.clone()]);
            a.extend(fields.iter().cloned());
        }
        Command::ZAdd { key, members } => {
            a.extend([b("ZADD"), key.clone()]);
            a.extend(
                members
                    .iter()
                    .flat_map(|(s, m)| [b(&format_score(*s)), m.clone()]),
            );
        }
        Command::ZRem { key, members } => {
            a.extend([b("ZREM"), key.clone()]);
            a.extend(members.iter().cloned());
        }
        Command::ZPopMin { key, count } => {
            a.extend([b("ZPOPMIN"), key.clone(), b(&count.to_string())])
        }
        Command::XAdd {
            key,
            id,
            fields,
            maxlen,
        } => {
            a.extend([b("XADD"), key.clone()]);
            if let Some(m) = maxlen {
                a.extend([b("MAXLEN"), b(&m.to_string())]);
            }
            a.push(match (id, auto) {
                (XAddId::Auto, AutoId::Star) => b("*"),
                (XAddId::Auto, AutoId::ZeroMsStar) => b("0-*"),
                (XAddId::Explicit(id), _) => b(&id.to_string()),
                (XAddId::Time { .. }, _) => b("*"),
                (XAddId::AutoSeq { ms }, _) => b(&format!("{ms}-*")),
            });
            a.extend(fields.iter().flat_map(|(f, v)| [f.clone(), v.clone()]));
        }
        Command::Multi { .. } => a.push(b("EXEC")),
        Command::XGroupCreate {
            key,
            group,
            id,
            mkstream,
            entries_read,
        } => {
            a.extend([b("XGROUP"), b("CREATE"), key.clone(), group.clone()]);
            a.push(group_start(*id));
            if *mkstream {
                a.push(b("MKSTREAM"));
            }
            if let Some(n) = entries_read {
                a.extend([b("ENTRIESREAD"), b(&n.to_string())]);
            }
        }
        Command::XGroupSetId {
            key,
            group,
            id,
            entries_read,
        } => {
            a.extend([b("XGROUP"), b("SETID"), key.clone(), group.clone()]);
            a.push(group_start(*id));
            if let Some(n) = entries_read {
                a.extend([b("ENTRIESREAD"), b(&n.to_string())]);
            }
        }
        Command::XGroupDestroy { key, group } => {
            a.extend([b("XGROUP"), b("DESTROY"), key.clone(), group.clone()])
        }
        Command::XGroupCreateConsumer {
            key,
            group,
            consumer,
            ..
        } => a.extend([
            b("XGROUP"),
            b("CREATECONSUMER"),
            key.clone(),
            group.clone(),
            consumer.clone(),
        ]),
        Command::XGroupDelConsumer {
            key,
            group,
            consumer,
        } => a.extend([
            b("XGROUP"),
            b("DELCONSUMER"),
            key.clone(),
            group.clone(),
            consumer.clone(),
        ]),
        Command::XReadGroup {
            key,
            group,
            consumer,
            count,
            start,
            noack,
            ..
        } => {
            a.extend([b("XREADGROUP"), b("GROUP"), group.clone(), consumer.clone()]);
            if let Some(n) = count {
                a.extend([b("COUNT"), b(&n.to_string())]);
            }
            if *noack {
                a.push(b("NOACK"));
            }
            a.extend([b("STREAMS"), key.clone()]);
            a.push(match start {
                ReadStart::New => b(">"),
                ReadStart::Pending(id) => b(&id.to_string()),
            });
        }
        Command::XAck { key, group, ids } => {
            a.extend([b("XACK"), key.clone(), group.clone()]);
            a.extend(ids.iter().map(|id| b(&id.to_string())));
        }
        Command::XDel { key, ids } => {
            a.extend([b("XDEL"), key.clone()]);
            a.extend(ids.iter().map(|id| b(&id.to_string())));
        }
        Command::XClaim {
            key,
            group,
            consumer,
            min_idle_ms,
            ids,
            justid,
            options,
            ..
        } => {
            a.extend([
                b("XCLAIM"),
                key.clone(),
                group.clone(),
                consumer.clone(),
                b(&min_idle_ms.to_string()),
            ]);
            a.extend(ids.iter().map(|id| b(&id.to_string())));
            match options.time {
                None => {}
                Some(ClaimTime::IdleMs(ms)) => a.extend([b("IDLE"), b(&ms.to_string())]),
                Some(ClaimTime::AtMs(ms)) => a.extend([b("TIME"), b(&ms.to_string())]),
            }
            if let Some(n) = options.retry_count {
                a.extend([b("RETRYCOUNT"), b(&n.to_string())]);
            }
            if options.force {
                a.push(b("FORCE"));
            }
            if *justid {
                a.push(b("JUSTID"));
            }
            if let Some(id) = options.last_id {
                a.extend([b("LASTID"), b(&id.to_string())]);
            }
        }
        Command::XAutoClaim {
            key,
            group,
            consumer,
            min_idle_ms,
            start,
            count,
            justid,
            ..
        } => {
            a.extend([
                b("XAUTOCLAIM"),
                key.clone(),
                group.clone(),
                consumer.clone(),
                b(&min_idle_ms.to_string()),
                b(&start.to_string()),
                b("COUNT"),
                b(&count.to_string()),
            ]);
            if *justid {
                a.push(b("JUSTID"));
            }
        }
        Command::XPending {
            key, group, range, ..
        } => {
            a.extend([b("XPENDING"), key.clone(), group.clone()]);
            if let Some(r) = range {
                if r.min_idle_ms > 0 {
                    a.extend([b("IDLE"), b(&r.min_idle_ms.to_string())]);
                }
                a.extend([
                    b(&r.start.to_string()),
                    b(&r.end.to_string()),
                    b(&r.count.to_string()),
                ]);
                a.extend(r.consumer.clone());
            }
        }
        Command::XInfoGroups { key } => a.extend([b("XINFO"), b("GROUPS"), key.clone()]),
        Command::XInfoConsumers { key, group, .. } => {
            a.extend([b("XINFO"), b("CONSUMERS"), key.clone(), group.clone()])
        }
    }
    a
}

/// `XGROUP CREATE`/`SETID`'s id argument.
fn group_start(id: GroupStart) -> Vec<u8> {
    match id {
        GroupStart::Last => b"$".to_vec(),
        GroupStart::Id(id) => id.to_string().into_bytes(),
    }
}

/// Runs a read against `ks` at `now_ms` (the wall clock): keys expired by then are absent
/// (`DBSIZE` counts only live keys, so it reads every key's expiry).
pub fn read(ks: &Keyspace, r: &Read, now_ms: u64) -> Value {
    let wrongtype = || Value::Error(msg::WRONGTYPE.into());
    let live = |key: &[u8]| ks.live_entry(key, now_ms);
    let value = |key: &[u8]| live(key).map(|e| &e.value);
    match r {
        Read::Type(k) => Value::Simple(value(k).map_or("none", Stored::type_name).into()),
        Read::Exists(keys) => Value::Int(keys.iter().filter(|k| live(k).is_some()).count() as i64),
        Read::HGet(key, field) => match value(key) {
            None => Value::Nil,
            Some(Stored::Hash(h)) => h.get(field).map_or(Value::Nil, Value::bulk),
            Some(_) => wrongtype(),
        },
        Read::HMGet(key, fields) => match value(key) {
            None => Value::Array(fields.iter().map(|_| Value::Nil).collect()),
            Some(Stored::Hash(h)) => Value::Array(
                fields
                    .iter()
                    .map(|f| h.get(f).map_or(Value::Nil, Value::bulk))
                    .collect(),
            ),
            Some(_) => wrongtype(),
        },
        Read::HExists(key, field) => match value(key) {
            None => Value::Int(0),
            Some(Stored::Hash(h)) => Value::Int(i64::from(h.get(field).is_some())),
            Some(_) => wrongtype(),
        },
        Read::HLen(key) => match value(key) {
            None => Value::Int(0),
            Some(Stored::Hash(h)) => Value::Int(h.len() as i64),
            Some(_) => wrongtype(),
        },
        Read::ZScore(key, member) => match value(key) {
            None => Value::Nil,
            Some(Stored::ZSet(z)) => z
                .score(member)
                .map_or(Value::Nil, |s| Value::bulk(format_score(s))),
            Some(_) => wrongtype(),
        },
        Read::ZCard(key) => match value(key) {
            None => Value::Int(0),
            Some(Stored::ZSet(z)) => Value::Int(z.len() as i64),
            Some(_) => wrongtype(),
        },
        Read::XLen(key) => match value(key) {
            None => Value::Int(0),
            Some(Stored::Stream(s)) => Value::Int(s.len() as i64),
            Some(_) => wrongtype(),
        },
        Read::HGetAll(k) => match value(k) {
            None => Value::Array(vec![]),
            Some(Stored::Hash(h)) => Value::Array(
                h.iter()
                    .flat_map(|(f, v)| [Value::bulk(f), Value::bulk(v)])
                    .collect(),
            ),
            Some(_) => wrongtype(),
        },
        Read::ZRange {
            key,
            start,
            stop,
            withscores,
        } => match value(key) {
            None => Value::Array(vec![]),
            Some(Stored::ZSet(z)) => {
                let len = z.len() as i64;
                let from = if *start < 0 {
                    (len + start).max(0)
                } else {
                    *start
                };
                let to = if *stop < 0 {
                    len + stop
                } else {
                    (*stop).min(len - 1)
                };
                let mut out = Vec::new();
                if from <= to {
                    for (s, m) in z.iter().skip(from as usize).take((to - from + 1) as usize) {
                        out.push(Value::bulk(m));
                        if *withscores {
                            out.push(Value::bulk(format_score(s)));
                        }
                    }
                }
                Value::Array(out)
            }
            Some(_) => wrongtype(),
        },
        Read::XRange {
            key,
            start,
            end,
            count,
        } => match value(key) {
            None => Value::Array(vec![]),
            Some(Stored::Stream(s)) => Value::Array(
                s.iter()
                    .filter(|(id, _)| id >= start && id <= end)
                    .take(count.map_or(usize::MAX, |c| c as usize))
                    .map(|(id, fields)| {
                        let fv = fields
                            .iter()
                            .flat_map(|(f, v)| [Value::bulk(f), Value::bulk(v)])
                            .collect();
                        Value::Array(vec![Value::bulk(id.to_string()), Value::Array(fv)])
                    })
                    .collect(),
            ),
            Some(_) => wrongtype(),
        },
        Read::XInfoStream(key) => match value(key) {
            None => Value::err("no such key"),
            Some(Stored::Stream(s)) => Value::Array(vec![
                Value::bulk("length"),
                Value::Int(s.len() as i64),
                Value::bulk("last-generated-id"),
                Value::bulk(s.last_id().to_string()),
            ]),
            Some(_) => wrongtype(),
        },
        Read::PTtl(key) => ttl(live(key), now_ms, 1),
        Read::Ttl(key) => ttl(live(key), now_ms, 1000),
        Read::PExpireTime(key) => match live(key) {
            None => Value::Int(-2),
            Some(e) => Value::Int(
                e.expire_at_ms
                    .map_or(-1, |at| i64::try_from(at).unwrap_or(i64::MAX)),
            ),
        },
        Read::Scan { cursor, count } => {
            let start = usize::try_from(*cursor).unwrap_or(usize::MAX);
            let count = usize::try_from(*count).unwrap_or(usize::MAX);
            let keys: Vec<Value> = ks
                .iter()
                .skip(start)
                .take(count)
                .filter(|(_, e)| !e.is_expired_at(now_ms))
                .map(|(k, _)| Value::bulk(k))
                .collect();
            let next = if start.saturating_add(count) >= ks.len() {
                0
            } else {
                start + count
            };
            Value::Array(vec![Value::bulk(next.to_string()), Value::Array(keys)])
        }
        Read::DbSize => {
            Value::Int(ks.iter().filter(|(_, e)| !e.is_expired_at(now_ms)).count() as i64)
        }
    }
}

/// `PTTL` (`unit_ms` 1) or `TTL` (1000, rounded to the nearest second as Redis does) of a
/// live entry: -2 without one, -1 without expiry.
fn ttl(entry: Option<&Entry>, now_ms: u64, unit_ms: u64) -> Value {
    match entry {
        None => Value::Int(-2),
        Some(e) => match e.expire_at_ms {
            None => Value::Int(-1),
            Some(at) => {
                let left = at.saturating_sub(now_ms);
                let rounded = if unit_ms == 1 {
                    left
                } else {
                    left.saturating_add(unit_ms / 2) / unit_ms
                };
                Value::Int(i64::try_from(rounded).unwrap_or(i64::MAX))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_round_trips() {
        let cmds = [
            Command::Set {
                key: b"k".to_vec(),
                value: vec![0, 255, b'\r', b'\n'],
            },
            Command::Get { key: b"k".to_vec() },
            Command::Del { key: b"k".to_vec() },
            Command::SetNx {
                key: b"k".to_vec(),
                value: b"v".to_vec(),
            },
            Command::IncrBy {
                key: b"n".to_vec(),
                delta: i64::MIN,
            },
            Command::PExpireAt {
                key: b"k".to_vec(),
                at_ms: u64::MAX >> 1,
            },
            Command::HSet {
                key: b"h".to_vec(),
                fields: vec![(b"f".to_vec(), b"v".to_vec())],
            },
            Command::HDel {
                key: b"h".to_vec(),
                fields: vec![b"f".to_vec(), b"g".to_vec()],
            },
            Command::ZAdd {
                key: b"z".to_vec(),
                members: vec![
                    (0.1, b"a".to_vec()),
                    (f64::NEG_INFINITY, b"b".to_vec()),
                    (1e300, b"c".to_vec()),
                ],
            },
            Command::ZRem {
                key: b"z".to_vec(),
                members: vec![b"a".to_vec()],
            },
            Command::ZPopMin {
                key: b"z".to_vec(),
                count: 3,
            },
            // `*` is time-based: parsed at now = 1 it is this command again.
            Command::XAdd {
                key: b"s".to_vec(),
                id: XAddId::Time { now_ms: 1 },
                fields: vec![(b"v".to_vec(), b"x".to_vec())],
                maxlen: Some(0),
            },
            Command::XAdd {
                key: b"s".to_vec(),
                id: XAddId::AutoSeq { ms: 0 },
                fields: vec![(b"v".to_vec(), b"x".to_vec())],
                maxlen: None,
            },
            Command::SetOpts {
                key: b"k".to_vec(),
                value: b"v".to_vec(),
                opts: SetOptions {
                    cond: SetCond::Nx,
                    ttl: SetTtl::At(5),
                    get: true,
                },
            },
            Command::SetOpts {
                key: b"k".to_vec(),
                value: b"v".to_vec(),
                opts: SetOptions {
                    cond: SetCond::Xx,
                    ttl: SetTtl::Keep,
                    get: false,
                },
            },
            Command::Persist { key: b"k".to_vec() },
            Command::HIncrBy {
                key: b"h".to_vec(),
                field: b"f".to_vec(),
                delta: -3,
            },
            Command::FlushAll,
            Command::XAdd {
                key: b"s".to_vec(),
                id: XAddId::Explicit(StreamId { ms: 5, seq: 7 }),
                fields: vec![(b"v".to_vec(), b"x".to_vec())],
                maxlen: None,
            },
        ];
        // Consumer-group commands, each option once; times are the parse time (1).
        use durlab_engine::keyspace::{PendingRange, XClaimOptions};
        let (s, g, c) = (b"s".to_vec(), b"g".to_vec(), b"c".to_vec());
        let id = |ms, seq| StreamId { ms, seq };
        let groups = [
            Command::XGroupCreate {
                key: s.clone(),
                group: g.clone(),
                id: GroupStart::Last,
                mkstream: true,
                entries_read: Some(4),
            },
            Command::XGroupCreate {
                key: s.clone(),
                group: g.clone(),
                id: GroupStart::Id(id(1, 2)),
                mkstream: false,
                entries_read: None,
            },
            Command::XGroupSetId {
                key: s.clone(),
                group: g.clone(),
                id: GroupStart::Id(id(3, 4)),
                entries_read: Some(0),
            },
            Command::XGroupDestroy {
                key: s.clone(),
                group: g.clone(),
            },
            Command::XGroupCreateConsumer {
                key: s.clone(),
                group: g.clone(),
                consumer: c.clone(),
                now_ms: 1,
            },
            Command::XGroupDelConsumer {
                key: s.clone(),
                group: g.clone(),
                consumer: c.clone(),
            },
            Command::XReadGroup {
                key: s.clone(),
                group: g.clone(),
                consumer: c.clone(),
                count: Some(3),
                start: ReadStart::New,
                noack: true,
                now_ms: 1,
            },
            Command::XReadGroup {
                key: s.clone(),
                group: g.clone(),
                consumer: c.clone(),
                count: None,
                start: ReadStart::Pending(id(0, 0)),
                noack: false,
                now_ms: 1,
            },
            Command::XAck {
                key: s.clone(),
                group: g.clone(),
                ids: vec![id(1, 2), id(3, 4)],
            },
            Command::XDel {
                key: s.clone(),
                ids: vec![id(1, 2)],
            },
            Command::XClaim {
                key: s.clone(),
                group: g.clone(),
                consumer: c.clone(),
                min_idle_ms: 5,
                ids: vec![id(1, 2)],
                now_ms: 1,
                justid: true,
                options: XClaimOptions {
                    time: Some(ClaimTime::AtMs(9)),
                    retry_count: Some(2),
                    force: true,
                    last_id: Some(id(8, 8)),
                },
            },
            Command::XClaim {
                key: s.clone(),
                group: g.clone(),
                consumer: c.clone(),
                min_idle_ms: 0,
                ids: vec![id(1, 2)],
                now_ms: 1,
                justid: false,
                options: XClaimOptions {
                    time: Some(ClaimTime::IdleMs(9)),
                    ..XClaimOptions::default()
                },
            },
            Command::XAutoClaim {
                key: s.clone(),
                group: g.clone(),
                consumer: c.clone(),
                min_idle_ms: 5,
                start: id(0, 0),
                count: 10,
                now_ms: 1,
                justid: true,
            },
            Command::XPending {
                key: s.clone(),
                group: g.clone(),
                range: None,
                now_ms: 1,
            },
            Command::XPending {
                key: s.clone(),
                group: g.clone(),
                range: Some(PendingRange {
                    min_idle_ms: 7,
                    start: id(1, 0),
                    end: id(9, 9),
                    count: 5,
                    consumer: Some(c.clone()),
                }),
                now_ms: 1,
            },
            Command::XInfoGroups { key: s.clone() },
            Command::XInfoConsumers {
                key: s.clone(),
                group: g.clone(),
                now_ms: 1,
            },
        ];
        for c in cmds.into_iter().chain(groups) {
            // DEL sums its replies (one key here: the same reply).
            let args = to_args(&c, AutoId::ZeroMsStar);
            let args: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
            let Ok(Request::Engine { cmds, .. }) = parse(&args, 1) else {
                panic!("{c:?} did not parse as an engine command");
            };
            assert_eq!(cmds, vec![c.clone()]);
        }
    }

    #[test]
    fn a_transaction_is_spelt_as_multi_its_commands_exec() {
        let set = Command::Set {
            key: b"k".to_vec(),
            value: b"v".to_vec(),
        };
        let get = Command::Get { key: b"k".to_vec() };
        let tx = Command::Multi {
            cmds: vec![set.clone(), get.clone()],
        };
        let reqs = to_requests(&tx, AutoId::Star);
        assert_eq!(reqs.len(), 4);
        assert_eq!(reqs[0], vec![b"MULTI".to_vec()]);
        assert_eq!(reqs[1], to_args(&set, AutoId::Star));
        assert_eq!(reqs[2], to_args(&get, AutoId::Star));
        assert_eq!(reqs[3], vec![b"EXEC".to_vec()]);
        assert_eq!(to_args(&tx, AutoId::Star), vec![b"EXEC".to_vec()]);
        assert_eq!(
            to_requests(&set, AutoId::Star),
            vec![to_args(&set, AutoId::Star)]
        );
    }

    fn parse_at(s: &str, now_ms: u64) -> Result<Request, Value> {
        parse(&s.split(' ').map(str::as_bytes).collect::<Vec<_>>(), now_ms)
    }

    fn one(r: Result<Request, Value>) -> Command {
        match r {
            Ok(Request::Engine {
                mut cmds,
                sum: false,
            }) if cmds.len() == 1 => cmds.remove(0),
            other => panic!("not one engine command: {other:?}"),
        }
    }

    /// Relative expiries are logged as absolute times; a time already past deletes the key.
    #[test]
    fn expiries_become_absolute() {
        let set = |line: &str| match one(parse_at(line, 1_000)) {
            Command::SetOpts { opts, .. } => opts,
            other => panic!("{other:?}"),
        };
        assert_eq!(set("SET k v EX 2").ttl, SetTtl::At(3_000));
        assert_eq!(set("set k v px 5").ttl, SetTtl::At(1_005));
        assert_eq!(set("SET k v EXAT 7").ttl, SetTtl::At(7_000));
        assert_eq!(set("SET k v PXAT 7").ttl, SetTtl::At(7));
        assert_eq!(
            set("SET k v EX 1 EX 2").ttl,
            SetTtl::At(3_000),
            "the last wins"
        );
        assert_eq!(set("SET k v KEEPTTL GET NX").ttl, SetTtl::Keep);
        let o = set("SET k v xx get");
        assert_eq!((o.cond, o.get), (SetCond::Xx, true));
        for bad in [
            "SET k v NX XX",
            "SET k v EX 1 PX 1",
            "SET k v KEEPTTL EX 1",
            "SET k v EX 1 KEEPTTL",
            "SET k v EX",
            "SET k v FOO",
        ] {
            assert_eq!(parse_at(bad, 1_000), Err(syntax()), "{bad}");
        }
        for bad in [
            "SET k v EX 0",
            "SET k v PX -1",
            "SET k v EX 9223372036854775807",
        ] {
            assert_eq!(parse_at(bad, 1_000), Err(invalid_expire("set")), "{bad}");
        }
        assert_eq!(
            parse_at("SET k v PX 9223372036854775000", 1_000),
            Err(invalid_expire("set")),
            "overflows when made absolute"
        );
        assert_eq!(
            one(parse_at("EXPIRE k 2", 1_000)),
            Command::PExpireAt {
                key: b"k".to_vec(),
                at_ms: 3_000
            }
        );
        assert_eq!(
            one(parse_at("PEXPIRE k 0", 1_000)),
            Command::Del { key: b"k".to_vec() }
        );
        assert_eq!(
            one(parse_at("PEXPIREAT k 1000", 1_000)),
            Command::Del { key: b"k".to_vec() },
            "a time not after now deletes"
        );
        assert_eq!(
            one(parse_at("EXPIREAT k -5", 1_000)),
            Command::Del { key: b"k".to_vec() }
        );
        assert_eq!(
            parse_at("EXPIRE k 9223372036854775807", 1_000),
            Err(invalid_expire("expire"))
        );
        assert_eq!(
            parse_at("EXPIRE k 10 foo", 1_000),
            Err(Value::err("Unsupported option foo"))
        );
        assert_eq!(
            one(parse_at("XADD s * f v", 42)),
            Command::XAdd {
                key: b"s".to_vec(),
                id: XAddId::Time { now_ms: 42 },
                fields: vec![(b"f".to_vec(), b"v".to_vec())],
                maxlen: None,
            }
        );
    }

    #[test]
    fn unknown_commands_echo_at_most_128_bytes_of_arguments() {
        let long = "a".repeat(200);
        let Err(Value::Error(e)) = parse_at(&format!("nosuch {long} b"), 0) else {
            panic!("not refused");
        };
        assert_eq!(
            e,
            format!(
                "ERR unknown command 'nosuch', with args beginning with: '{}' ",
                "a".repeat(128)
            )
        );
        let Err(Value::Error(e)) = parse(&[b"x", b"a\r\nb", b"c"], 0) else {
            panic!("not refused");
        };
        assert_eq!(
            e,
            "ERR unknown command 'x', with args beginning with: 'a  b' 'c' "
        );
    }

    #[test]
    fn errors_are_redis_texts() {
        let p = |s: &str| parse(&s.split(' ').map(str::as_bytes).collect::<Vec<_>>(), 1);
        assert_eq!(
            p("get"),
            Err(Value::err("wrong number of arguments for 'get' command"))
        );
        assert_eq!(
            p("incrby k x"),
            Err(Value::Error(msg::NOT_AN_INTEGER.into()))
        );
        assert_eq!(
            p("zadd z nan m"),
            Err(Value::Error(msg::NOT_A_FLOAT.into()))
        );
        assert!(
            matches!(p("nosuch a"), Err(Value::Error(e)) if e.starts_with("ERR unknown command 'nosuch'"))
        );
        assert_eq!(p("xadd s 1-x f v"), Err(invalid_id()));
        assert!(
            matches!(p("averyveryverylongcommandname"), Err(Value::Error(e)) if e.starts_with("ERR unknown command 'averyveryverylongcommandname'"))
        );
        assert!(matches!(
            p("SeT k v"),
            Ok(Request::Engine { sum: false, .. })
        ));
        assert!(matches!(p("DEL a b"), Ok(Request::Engine { cmds, sum: true }) if cmds.len() == 2));
    }
}
