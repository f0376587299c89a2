//! RESP arguments of the consumer-group commands (`XGROUP`, `XREADGROUP`, `XACK`, `XDEL`,
//! `XCLAIM`, `XAUTOCLAIM`, `XPENDING`, `XINFO GROUPS`/`CONSUMERS`) to engine commands, with
//! Redis 7.0's argument checks and error texts. Commands that depend on time run at `now_ms`,
//! the time the request arrived (logged with the command, so a replay is exact).
//!
//! Differences from Redis, each an error reply rather than a silent change: `XREADGROUP`
//! reads one stream and does not block (`BLOCK` is refused).

use durlab_engine::Command;
use durlab_engine::keyspace::{
    ClaimTime, GroupStart, PendingRange, ReadStart, StreamId, XClaimOptions,
};

use super::Value;
use super::commands::{Request, invalid_id, stream_id};
use super::parse::parse_i64;

/// The names this module parses.
pub const NAMES: [&str; 9] = [
    "xgroup",
    "xreadgroup",
    "xack",
    "xdel",
    "xclaim",
    "xautoclaim",
    "xpending",
    "xinfo",
    "xsetid",
];

fn one(cmd: Command) -> Result<Request, Value> {
    Ok(Request::Engine {
        cmds: vec![cmd],
        sum: false,
    })
}

fn arity(name: &str) -> Value {
    Value::err(format!("wrong number of arguments for '{name}' command"))
}

fn syntax() -> Value {
    Value::err("syntax error")
}

/// Redis's `getLongLongFromObjectOrReply`: the integer, or `ERR value is not an integer or
/// out of range` (or `text` when Redis gives one).
fn int(a: &[u8], text: Option<&str>) -> Result<i64, Value> {
    parse_i64(a).ok_or_else(|| match text {
        Some(t) => Value::err(t),
        None => Value::Error(durlab_engine::keyspace::msg::NOT_AN_INTEGER.into()),
    })
}

/// A strict id (no `-` or `+`): `ms` or `ms-seq`.
fn strict_id(a: &[u8]) -> Result<StreamId, Value> {
    stream_id(a, 0).ok_or_else(invalid_id)
}

/// A non-strict id: also `-` (`0-0`) and `+` (the largest id); `ms` alone takes `fill`.
fn loose_id(a: &[u8], fill: u64) -> Result<StreamId, Value> {
    match a {
        b"-" => Ok(StreamId::default()),
        b"+" => Ok(StreamId::MAX),
        a => stream_id(a, fill).ok_or_else(invalid_id),
    }
}

/// An interval bound: a non-strict id, or `(id` for the id after (`next`) or before it.
fn interval_id(a: &[u8], fill: u64, start: bool) -> Result<StreamId, Value> {
    match a.strip_prefix(b"(") {
        Some(rest) if !rest.is_empty() => {
            let id = strict_id(rest)?;
            let moved = if start { id.next() } else { id.prev() };
            moved.ok_or_else(|| {
                Value::err(if start {
                    "invalid start ID for the interval"
                } else {
                    "invalid end ID for the interval"
                })
            })
        }
        _ => loose_id(a, fill),
    }
}

/// Redis's text for a container command's bad subcommand or argument count.
fn subcommand_error(container: &str, sub: &[u8]) -> Value {
    Value::err(format!(
        "unknown subcommand or wrong number of arguments for '{}'. Try {container} HELP.",
        String::from_utf8_lossy(sub)
    ))
}

fn subcommand_arity(container: &str, sub: &str) -> Value {
    Value::err(format!(
        "wrong number of arguments for '{container}|{sub}' command"
    ))
}

/// Parses a consumer-group request: `name` is the lower-cased command name (one of
/// [`NAMES`]), `rest` its arguments.
///
/// # Errors
/// The error reply Redis 7.0 would give for the arguments, or durlab's refusal of an option
/// it does not support.
pub fn parse(name: &str, rest: &[&[u8]], now_ms: u64) -> Result<Request, Value> {
    let n = rest.len() + 1;
    match name {
        "xgroup" => xgroup(rest, now_ms),
        "xreadgroup" if n >= 7 => xreadgroup(rest, now_ms),
        "xack" if n >= 4 => one(Command::XAck {
            key: rest[0].to_vec(),
            group: rest[1].to_vec(),
            ids: rest[2..]
                .iter()
                .map(|a| strict_id(a))
                .collect::<Result<_, _>>()?,
        }),
        "xdel" if n >= 3 => one(Command::XDel {
            key: rest[0].to_vec(),
            ids: rest[1..]
                .iter()
                .map(|a| strict_id(a))
                .collect::<Result<_, _>>()?,
        }),
        "xclaim" if n >= 6 => xclaim(rest, now_ms),
        "xautoclaim" if n >= 6 => xautoclaim(rest, now_ms),
        "xpending" if n >= 3 => xpending(rest, now_ms),
        "xinfo" => xinfo(rest, now_ms),
        "xsetid" => Err(Value::err("durlab serve does not support XSETID")),
        other => Err(arity(other)),
    }
}

fn xgroup(rest: &[&[u8]], now_ms: u64) -> Result<Request, Value> {
    let Some(sub) = rest.first() else {
        return Err(arity("xgroup"));
    };
    let is = |w: &str| sub.eq_ignore_ascii_case(w.as_bytes());
    let n = rest.len() + 1;
    let (name, min, max) = if is("create") {
        ("create", 5, 8)
    } else if is("setid") {
        ("setid", 5, 7)
    } else if is("destroy") {
        ("destroy", 4, 4)
    } else if is("createconsumer") {
        ("createconsumer", 5, 5)
    } else if is("delconsumer") {
        ("delconsumer", 5, 5)
    } else if is("help") {
        return Err(Value::err("durlab serve does not support XGROUP HELP"));
    } else {
        return Err(Value::err(format!(
            "unknown subcommand '{}'. Try XGROUP HELP.",
            String::from_utf8_lossy(sub)
        )));
    };
    if n < min {
        return Err(subcommand_arity("xgroup", name));
    }
    let (key, group) = (rest[1].to_vec(), rest[2].to_vec());
    // Options of CREATE and SETID, parsed before anything else as Redis does.
    let mut mkstream = false;
    let mut entries_read = None;
    let mut i = 4;
    while i < rest.len() {
        let a = rest[i];
        if name == "create" && a.eq_ignore_ascii_case(b"mkstream") {
            mkstream = true;
            i += 1;
        } else if (name == "create" || name == "setid")
            && a.eq_ignore_ascii_case(b"entriesread")
            && i + 1 < rest.len()
        {
            let v = int(rest[i + 1], None)?;
            if v < -1 {
                return Err(Value::err("value for ENTRIESREAD must be positive or -1"));
            }
            entries_read = u64::try_from(v).ok();
            i += 2;
        } else {
            return Err(subcommand_error("XGROUP", sub));
        }
    }
    if n > max || (name == "setid" && n == 6) {
        return Err(subcommand_error("XGROUP", sub));
    }
    let start = |a: &[u8], strict: bool| -> Result<GroupStart, Value> {
        Ok(match a {
            b"$" => GroupStart::Last,
            a if strict => GroupStart::Id(strict_id(a)?),
            a => GroupStart::Id(loose_id(a, 0)?),
        })
    };
    match name {
        "create" => one(Command::XGroupCreate {
            key,
            group,
            id: start(rest[3], true)?,
            mkstream,
            entries_read,
        }),
        "setid" => one(Command::XGroupSetId {
            key,
            group,
            id: start(rest[3], false)?,
            entries_read,
        }),
        "destroy" => one(Command::XGroupDestroy { key, group }),
        "createconsumer" => one(Command::XGroupCreateConsumer {
            key,
            group,
            consumer: rest[3].to_vec(),
            now_ms,
        }),
        _ => one(Command::XGroupDelConsumer {
            key,
            group,
            consumer: rest[3].to_vec(),
        }),
    }
}

fn xreadgroup(rest: &[&[u8]], now_ms: u64) -> Result<Request, Value> {
    let mut group = None;
    let mut count = None;
    let mut noack = false;
    let mut streams = None;
    let mut i = 0;
    while i < rest.len() {
        let a = rest[i];
        let more = rest.len() - 1 - i;
        let is = |w: &str| a.eq_ignore_ascii_case(w.as_bytes());
        if is("block") && more > 0 {
            return Err(Value::err(
                "durlab serve does not support XREADGROUP's BLOCK option",
            ));
        } else if is("count") && more > 0 {
            count = Some(u64::try_from(int(rest[i + 1], None)?).unwrap_or(0));
            i += 2;
        } else if is("streams") && more > 0 {
            streams = Some(i + 1);
            break;
        } else if is("group") && more >= 2 {
            group = Some((rest[i + 1], rest[i + 2]));
            i += 3;
        } else if is("noack") {
            noack = true;
            i += 1;
        } else {
            return Err(syntax());
        }
    }
    let Some(at) = streams else {
        return Err(syntax());
    };
    let listed = &rest[at..];
    if !listed.len().is_multiple_of(2) {
        return Err(Value::err(
            "Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified.",
        ));
    }
    let Some((group, consumer)) = group else {
        return Err(Value::err("Missing GROUP option for XREADGROUP"));
    };
    if listed.len() != 2 {
        return Err(Value::err(
            "durlab serve supports XREADGROUP on one stream only",
        ));
    }
    let start = match listed[1] {
        b">" => ReadStart::New,
        b"$" => {
            return Err(Value::err(
                "The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set.",
            ));
        }
        a => ReadStart::Pending(strict_id(a)?),
    };
    one(Command::XReadGroup {
        key: listed[0].to_vec(),
        group: group.to_vec(),
        consumer: consumer.to_vec(),
        count,
        start,
        noack,
        now_ms,
    })
}

fn xclaim(rest: &[&[u8]], now_ms: u64) -> Result<Request, Value> {
    let min_idle = int(rest[3], Some("Invalid min-idle-time argument for XCLAIM"))?;
    // Ids up to the first argument that is not one; the rest are options.
    let mut ids = Vec::new();
    let mut j = 4;
    while j < rest.len() {
        match stream_id(rest[j], 0) {
            Some(id) => ids.push(id),
            None => break,
        }
        j += 1;
    }
    let mut options = XClaimOptions::default();
    let mut justid = false;
    while j < rest.len() {
        let a = rest[j];
        let more = rest.len() - 1 - j;
        let is = |w: &str| a.eq_ignore_ascii_case(w.as_bytes());
        if is("force") {
            options.force = true;
        } else if is("justid") {
            justid = true;
        } else if is("idle") && more > 0 {
            j += 1;
            let idle = int(rest[j], Some("Invalid IDLE option argument for XCLAIM"))?;
            // A negative idle time is a delivery time in the future: Redis uses now.
            options.time = Some(ClaimTime::IdleMs(u64::try_from(idle).unwrap_or(0)));
        } else if is("time") && more > 0 {
            j += 1;
            let at = int(rest[j], Some("Invalid TIME option argument for XCLAIM"))?;
            options.time = Some(match u64::try_from(at) {
                Ok(at) => ClaimTime::AtMs(at),
                Err(_) => ClaimTime::IdleMs(0),
            });
        } else if is("retrycount") && more > 0 {
            j += 1;
            let n = int(
                rest[j],
                Some("Invalid RETRYCOUNT option argument for XCLAIM"),
            )?;
            options.retry_count = u64::try_from(n).ok();
        } else if is("lastid") && more > 0 {
            j += 1;
            options.last_id = Some(strict_id(rest[j])?);
        } else {
            return Err(Value::err(format!(
                "Unrecognized XCLAIM option '{}'",
                String::from_utf8_lossy(a)
            )));
        }
        j += 1;
    }
    one(Command::XClaim {
        key: rest[0].to_vec(),
        group: rest[1].to_vec(),
        consumer: rest[2].to_vec(),
        min_idle_ms: u64::try_from(min_idle).unwrap_or(0),
        ids,
        now_ms,
        justid,
        options,
    })
}

/// Redis's largest `XAUTOCLAIM` count: `LONG_MAX / 16` (the size of an id).
const MAX_AUTOCLAIM_COUNT: i64 = i64::MAX / 16;

fn xautoclaim(rest: &[&[u8]], now_ms: u64) -> Result<Request, Value> {
    let min_idle = int(
        rest[3],
        Some("Invalid min-idle-time argument for XAUTOCLAIM"),
    )?;
    let start = interval_id(rest[4], 0, true)?;
    let mut count = 100;
    let mut justid = false;
    let mut j = 5;
    while j < rest.len() {
        let a = rest[j];
        let more = rest.len() - 1 - j;
        if a.eq_ignore_ascii_case(b"count") && more > 0 {
            let n = parse_i64(rest[j + 1]).ok_or_else(|| Value::err("COUNT must be > 0"))?;
            if !(1..=MAX_AUTOCLAIM_COUNT).contains(&n) {
                return Err(Value::err("COUNT must be > 0"));
            }
            count = n as u64;
            j += 1;
        } else if a.eq_ignore_ascii_case(b"justid") {
            justid = true;
        } else {
            return Err(syntax());
        }
        j += 1;
    }
    one(Command::XAutoClaim {
        key: rest[0].to_vec(),
        group: rest[1].to_vec(),
        consumer: rest[2].to_vec(),
        min_idle_ms: u64::try_from(min_idle).unwrap_or(0),
        start,
        count,
        now_ms,
        justid,
    })
}

fn xpending(rest: &[&[u8]], now_ms: u64) -> Result<Request, Value> {
    let n = rest.len() + 1;
    if n != 3 && !(6..=9).contains(&n) {
        return Err(syntax());
    }
    let range = if n == 3 {
        None
    } else {
        let mut at = 2;
        let mut min_idle = 0;
        if rest[2].eq_ignore_ascii_case(b"idle") {
            min_idle = int(rest[3], None)?;
            if n < 8 {
                return Err(syntax());
            }
            at += 2;
        }
        let count = int(rest[at + 2], None)?;
        let start = interval_id(rest[at], 0, true)?;
        let end = interval_id(rest[at + 1], u64::MAX, false)?;
        Some(PendingRange {
            min_idle_ms: u64::try_from(min_idle).unwrap_or(0),
            start,
            end,
            count: u64::try_from(count).unwrap_or(0),
            consumer: rest.get(at + 3).map(|c| c.to_vec()),
        })
    };
    one(Command::XPending {
        key: rest[0].to_vec(),
        group: rest[1].to_vec(),
        range,
        now_ms,
    })
}

/// `XINFO GROUPS key` and `XINFO CONSUMERS key group` (`XINFO STREAM` is a
/// [`super::commands::Read`], parsed before this).
fn xinfo(rest: &[&[u8]], now_ms: u64) -> Result<Request, Value> {
    let Some(sub) = rest.first() else {
        return Err(arity("xinfo"));
    };
    let n = rest.len() + 1;
    if sub.eq_ignore_ascii_case(b"groups") {
        if n != 3 {
            return Err(subcommand_arity("xinfo", "groups"));
        }
        return one(Command::XInfoGroups {
            key: rest[1].to_vec(),
        });
    }
    if sub.eq_ignore_ascii_case(b"consumers") {
        if n != 4 {
            return Err(subcommand_arity("xinfo", "consumers"));
        }
        return one(Command::XInfoConsumers {
            key: rest[1].to_vec(),
            group: rest[2].to_vec(),
            now_ms,
        });
    }
    Err(Value::err(format!(
        "durlab serve supports XINFO STREAM, GROUPS and CONSUMERS, not XINFO {}",
        String::from_utf8_lossy(sub).to_uppercase()
    )))
}
