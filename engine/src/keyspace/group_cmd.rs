//! The consumer-group commands (`XGROUP`, `XREADGROUP`, `XACK`, `XCLAIM`, `XAUTOCLAIM`,
//! `XPENDING`, `XINFO GROUPS`/`CONSUMERS`) and `XDEL`, with Redis 7.0's semantics, replies and
//! error texts. Deterministic: every time comes from the command (`now_ms`).

use super::entry::{Entry, Value};
use super::group::Group;
use super::store::Store;
use super::stream::Stream;
use super::{
    ClaimTime, Command, FieldValue, GroupStart, PendingRange, ReadStart, Reply, StreamId,
    XClaimOptions, msg,
};

/// Applies a consumer-group command or `XDEL`; `None` for any other command.
pub(super) fn apply(map: &mut Store, cmd: &Command) -> Option<Reply> {
    Some(match cmd {
        Command::XGroupCreate {
            key,
            group,
            id,
            mkstream,
            entries_read,
        } => xgroup_create(map, key, group, *id, *mkstream, *entries_read),
        Command::XGroupSetId {
            key,
            group,
            id,
            entries_read,
        } => with_group(map, key, group, Missing::Xgroup, |s, g| {
            g.last_id = match id {
                GroupStart::Last => s.last_id(),
                GroupStart::Id(id) => *id,
            };
            g.entries_read = *entries_read;
            Reply::Ok
        }),
        Command::XGroupDestroy { key, group } => match stream_mut(map, key) {
            Err(e) => e,
            Ok(None) => error(msg::XGROUP_NO_KEY),
            Ok(Some(s)) => Reply::Int(i64::from(s.groups.remove(group.as_slice()).is_some())),
        },
        Command::XGroupCreateConsumer {
            key,
            group,
            consumer,
            now_ms,
        } => with_group(map, key, group, Missing::Xgroup, |_, g| {
            Reply::Int(i64::from(g.create_consumer(consumer, *now_ms)))
        }),
        Command::XGroupDelConsumer {
            key,
            group,
            consumer,
        } => with_group(map, key, group, Missing::Xgroup, |_, g| {
            Reply::Int(g.remove_consumer(consumer).map_or(0, count_i64))
        }),
        Command::XReadGroup {
            key,
            group,
            consumer,
            count,
            start,
            noack,
            now_ms,
        } => {
            let limit = count.filter(|n| *n > 0).unwrap_or(u64::MAX);
            with_group(map, key, group, Missing::ReadGroup, |s, g| {
                let entries = match start {
                    ReadStart::New => {
                        let newer = s.last_entry_id().is_some_and(|id| id > g.last_id);
                        if !newer {
                            return Reply::NilArray;
                        }
                        g.touch_consumer(consumer, *now_ms);
                        read_new(s, g, consumer, limit, *noack, *now_ms)
                    }
                    ReadStart::Pending(after) => {
                        g.touch_consumer(consumer, *now_ms);
                        read_history(s, g, consumer, *after, limit, *now_ms)
                    }
                };
                Reply::Array(vec![Reply::Array(vec![
                    Reply::Bulk(key.clone()),
                    Reply::Array(entries),
                ])])
            })
        }
        Command::XAck { key, group, ids } => xack(map, key, group, ids),
        Command::XDel { key, ids } => match stream_mut(map, key) {
            Err(e) => e,
            Ok(None) => Reply::Int(0),
            Ok(Some(s)) => Reply::Int(count_i64(ids.iter().filter(|id| s.delete(**id)).count())),
        },
        Command::XClaim {
            key,
            group,
            consumer,
            min_idle_ms,
            ids,
            now_ms,
            justid,
            options,
        } => with_group(map, key, group, Missing::KeyOrGroup, |s, g| {
            xclaim(s, g, consumer, *min_idle_ms, ids, *now_ms, *justid, options)
        }),
        Command::XAutoClaim {
            key,
            group,
            consumer,
            min_idle_ms,
            start,
            count,
            now_ms,
            justid,
        } => with_group(map, key, group, Missing::KeyOrGroup, |s, g| {
            xautoclaim(
                s,
                g,
                consumer,
                *min_idle_ms,
                *start,
                *count,
                *now_ms,
                *justid,
            )
        }),
        Command::XPending {
            key,
            group,
            range,
            now_ms,
        } => match read_group(map, key, group, Missing::KeyOrGroup) {
            Err(e) => e,
            Ok((_, g)) => match range {
                None => pending_summary(g),
                Some(r) => pending_range(g, r, *now_ms),
            },
        },
        Command::XInfoGroups { key } => match stream_ref(map, key) {
            Err(e) => e,
            Ok(None) => error(msg::NO_SUCH_KEY),
            Ok(Some(s)) => {
                Reply::Array(s.groups().map(|(name, g)| group_info(s, name, g)).collect())
            }
        },
        Command::XInfoConsumers { key, group, now_ms } => match stream_ref(map, key) {
            Err(e) => e,
            Ok(None) => error(msg::NO_SUCH_KEY),
            Ok(Some(s)) => match s.groups.get(group.as_slice()) {
                None => Reply::Error(no_group(Missing::Xgroup, key, group)),
                Some(g) => Reply::Array(
                    g.consumers()
                        .iter()
                        .map(|(name, c)| {
                            Reply::Array(vec![
                                bulk("name"),
                                Reply::Bulk(name.clone()),
                                bulk("pending"),
                                Reply::Int(count_i64(c.pending().len())),
                                bulk("idle"),
                                Reply::Int(idle_i64(*now_ms, c.seen_time_ms)),
                            ])
                        })
                        .collect(),
                ),
            },
        },
        _ => return None,
    })
}

fn error(text: &'static str) -> Reply {
    Reply::Error(text.to_owned())
}

fn bulk(text: &str) -> Reply {
    Reply::Bulk(text.as_bytes().to_vec())
}

fn id_reply(id: StreamId) -> Reply {
    Reply::Bulk(id.to_string().into_bytes())
}

fn entry_reply(id: StreamId, fields: &[FieldValue]) -> Reply {
    Reply::Array(vec![
        id_reply(id),
        Reply::Array(
            fields
                .iter()
                .flat_map(|(f, v)| [Reply::Bulk(f.clone()), Reply::Bulk(v.clone())])
                .collect(),
        ),
    ])
}

fn count_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// `now - then` as Redis computes an idle time for a reply (never negative).
fn idle_i64(now_ms: u64, then_ms: u64) -> i64 {
    i64::try_from(now_ms.saturating_sub(then_ms)).unwrap_or(i64::MAX)
}

/// True if an entry delivered at `time_ms` has been idle less than `min_idle_ms` at
/// `now_ms`: Redis skips it (with a minimum of 0, nothing is skipped).
fn too_fresh(now_ms: u64, time_ms: u64, min_idle_ms: u64) -> bool {
    min_idle_ms > 0 && now_ms.saturating_sub(time_ms) < min_idle_ms
}

/// Which error a missing key or group gets: each command words it its own way.
#[derive(Clone, Copy)]
enum Missing {
    /// `XGROUP SETID`/`CREATECONSUMER`/`DELCONSUMER` and `XINFO CONSUMERS`.
    Xgroup,
    /// `XREADGROUP`.
    ReadGroup,
    /// `XPENDING`, `XCLAIM`, `XAUTOCLAIM`.
    KeyOrGroup,
}

/// The `NOGROUP` error text. Names are shown as text (Redis prints them with `%s`).
fn no_group(missing: Missing, key: &[u8], group: &[u8]) -> String {
    let key = String::from_utf8_lossy(key);
    let group = String::from_utf8_lossy(group);
    match missing {
        Missing::Xgroup => {
            format!("NOGROUP No such consumer group '{group}' for key name '{key}'")
        }
        Missing::ReadGroup => format!(
            "NOGROUP No such key '{key}' or consumer group '{group}' in XREADGROUP with GROUP option"
        ),
        Missing::KeyOrGroup => {
            format!("NOGROUP No such key '{key}' or consumer group '{group}'")
        }
    }
}

fn stream_ref<'a>(map: &'a Store, key: &[u8]) -> Result<Option<&'a Stream>, Reply> {
    match map.get(key).map(|e| &e.value) {
        None => Ok(None),
        Some(Value::Stream(s)) => Ok(Some(s)),
        Some(_) => Err(error(msg::WRONGTYPE)),
    }
}

fn stream_mut<'a>(map: &'a mut Store, key: &[u8]) -> Result<Option<&'a mut Stream>, Reply> {
    // Look first without `get_mut`, which would copy an entry a snapshot shares.
    stream_ref(map, key)?;
    match map.get_mut(key).map(|e| &mut e.value) {
        Some(Value::Stream(s)) => Ok(Some(s)),
        _ => Ok(None),
    }
}

fn read_group<'a>(
    map: &'a Store,
    key: &[u8],
    group: &[u8],
    missing: Missing,
) -> Result<(&'a Stream, &'a Group), Reply> {
    let no_group = || Reply::Error(no_group(missing, key, group));
    let s = stream_ref(map, key)?.ok_or_else(no_group)?;
    let g = s.groups.get(group).ok_or_else(no_group)?;
    Ok((s, g))
}

/// Runs `f` on the stream under `key` and its group `group`, or replies the error for a
/// wrong type, a missing key or a missing group (for [`Missing::Xgroup`] a missing key has
/// `XGROUP`'s own error).
fn with_group(
    map: &mut Store,
    key: &[u8],
    group: &[u8],
    missing: Missing,
    f: impl FnOnce(&Stream, &mut Group) -> Reply,
) -> Reply {
    match stream_ref(map, key) {
        Err(e) => return e,
        Ok(None) if matches!(missing, Missing::Xgroup) => return error(msg::XGROUP_NO_KEY),
        Ok(None) => return Reply::Error(no_group(missing, key, group)),
        Ok(Some(s)) if !s.groups.contains_key(group) => {
            return Reply::Error(no_group(missing, key, group));
        }
        Ok(Some(_)) => {}
    }
    let Ok(Some(s)) = stream_mut(map, key) else {
        unreachable!("checked above");
    };
    // The group is taken out while `f` runs so that `f` can read the stream's entries and
    // counters while it changes the group.
    let Some(slot) = s.groups.get_mut(group) else {
        unreachable!("checked above");
    };
    let mut g = std::mem::take(slot);
    let reply = f(s, &mut g);
    if let Some(slot) = s.groups.get_mut(group) {
        *slot = g;
    }
    reply
}

fn xgroup_create(
    map: &mut Store,
    key: &[u8],
    group: &[u8],
    id: GroupStart,
    mkstream: bool,
    entries_read: Option<u64>,
) -> Reply {
    let s = match stream_mut(map, key) {
        Err(e) => return e,
        Ok(Some(s)) => s,
        Ok(None) if !mkstream => return error(msg::XGROUP_NO_KEY),
        Ok(None) => {
            map.put(key.to_vec(), Entry::new(Value::Stream(Stream::new())));
            match map.get_mut(key).map(|e| &mut e.value) {
                Some(Value::Stream(s)) => s,
                _ => unreachable!("just stored"),
            }
        }
    };
    if s.groups.contains_key(group) {
        return error(msg::BUSYGROUP);
    }
    let last_id = match id {
        GroupStart::Last => s.last_id(),
        GroupStart::Id(id) => id,
    };
    s.groups
        .insert(group.to_vec(), Group::new(last_id, entries_read));
    Reply::Ok
}

fn xack(map: &mut Store, key: &[u8], group: &[u8], ids: &[StreamId]) -> Reply {
    // A missing key or group acknowledges nothing (no error), as in Redis.
    match stream_ref(map, key) {
        Err(e) => return e,
        Ok(Some(s))
            if s.groups
                .get(group)
                .is_some_and(|g| ids.iter().any(|id| g.pel().contains_key(id))) => {}
        Ok(_) => return Reply::Int(0),
    }
    let Ok(Some(s)) = stream_mut(map, key) else {
        return Reply::Int(0);
    };
    let Some(g) = s.groups.get_mut(group) else {
        return Reply::Int(0);
    };
    Reply::Int(count_i64(
        ids.iter().filter(|id| g.remove_pending(**id)).count(),
    ))
}

/// True if an `XDEL` may have left a gap in the stream at or after `start` (Redis's
/// `streamRangeHasTombstones` with an open end).
fn has_tombstones_from(s: &Stream, start: StreamId) -> bool {
    let max_deleted = s.max_deleted_id();
    if s.is_empty() || max_deleted == StreamId::default() || s.first_id() > max_deleted {
        return false;
    }
    start <= max_deleted
}

/// How many entries the stream had added up to and including `id`, if that can be known
/// (Redis's `streamEstimateDistanceFromFirstEverEntry`); `None` where Redis has -1.
fn entries_up_to(s: &Stream, id: StreamId) -> Option<u64> {
    let added = s.entries_added();
    if added == 0 {
        return Some(0);
    }
    if s.is_empty() && id <= s.last_id() {
        return Some(added);
    }
    if id == s.last_id() {
        return Some(added);
    }
    if id > s.last_id() {
        return None;
    }
    let max_deleted = s.max_deleted_id();
    let first = s.first_id();
    if max_deleted == StreamId::default() || max_deleted < first {
        let before_first = added - s.len() as u64;
        if id < first {
            return Some(before_first);
        }
        if id == first {
            return Some(before_first + 1);
        }
    }
    None
}

/// `XINFO GROUPS`' lag: entries not yet delivered to the group, if known.
fn lag(s: &Stream, g: &Group) -> Option<i64> {
    let added = s.entries_added();
    if added == 0 {
        return Some(0);
    }
    let read = match g.entries_read {
        Some(read) if !has_tombstones_from(s, g.last_id) => read,
        _ => entries_up_to(s, g.last_id)?,
    };
    // Redis subtracts as signed 64-bit integers; ENTRIESREAD may exceed the entries added.
    Some((added as i64).wrapping_sub(read as i64))
}

fn group_info(s: &Stream, name: &[u8], g: &Group) -> Reply {
    let opt = |n: Option<i64>| n.map_or(Reply::Nil, Reply::Int);
    Reply::Array(vec![
        bulk("name"),
        Reply::Bulk(name.to_vec()),
        bulk("consumers"),
        Reply::Int(count_i64(g.consumers().len())),
        bulk("pending"),
        Reply::Int(count_i64(g.pel().len())),
        bulk("last-delivered-id"),
        id_reply(g.last_id),
        bulk("entries-read"),
        opt(g.entries_read.map(|n| n as i64)),
        bulk("lag"),
        opt(lag(s, g)),
    ])
}

/// `XREADGROUP ... >`: delivers entries above the group's last id (the caller checked that
/// there is one), up to `limit`.
fn read_new(
    s: &Stream,
    g: &mut Group,
    consumer: &[u8],
    limit: u64,
    noack: bool,
    now_ms: u64,
) -> Vec<Reply> {
    let mut out = Vec::new();
    let Some(start) = g.last_id.next() else {
        return out;
    };
    for (id, fields) in s.iter_from(start) {
        g.entries_read = match g.entries_read {
            Some(read) if !has_tombstones_from(s, id) => Some(read.saturating_add(1)),
            _ if s.entries_added() != 0 => entries_up_to(s, id),
            other => other,
        };
        g.last_id = id;
        out.push(entry_reply(id, fields));
        if !noack {
            g.assign(id, consumer, now_ms, 1);
        }
        if out.len() as u64 == limit {
            break;
        }
    }
    out
}

/// `XREADGROUP` with an id: the consumer's pending entries above `after`, each still in the
/// stream redelivered (count + 1, time `now_ms`), each deleted one as its id and a nil array.
fn read_history(
    s: &Stream,
    g: &mut Group,
    consumer: &[u8],
    after: StreamId,
    limit: u64,
    now_ms: u64,
) -> Vec<Reply> {
    // Redis increments the id first; past the last id it wraps to 0-0.
    let start = after.next().unwrap_or_default();
    let ids: Vec<StreamId> = g
        .consumer(consumer)
        .map(|c| {
            c.pending()
                .range(start..)
                .take(usize::try_from(limit).unwrap_or(usize::MAX))
                .copied()
                .collect()
        })
        .unwrap_or_default();
    ids.into_iter()
        .map(|id| match s.get(id) {
            Some(fields) => {
                g.redeliver(id, now_ms);
                entry_reply(id, fields)
            }
            None => Reply::Array(vec![id_reply(id), Reply::NilArray]),
        })
        .collect()
}

/// The delivery time `XCLAIM` sets: the option's, kept within `[0, now_ms]` as Redis does.
fn claim_time(time: Option<ClaimTime>, now_ms: u64) -> u64 {
    match time {
        None => now_ms,
        Some(ClaimTime::IdleMs(idle)) => now_ms.checked_sub(idle).unwrap_or(now_ms),
        Some(ClaimTime::AtMs(at)) if at > now_ms => now_ms,
        Some(ClaimTime::AtMs(at)) => at,
    }
}

#[allow(clippy::too_many_arguments)]
fn xclaim(
    s: &Stream,
    g: &mut Group,
    consumer: &[u8],
    min_idle_ms: u64,
    ids: &[StreamId],
    now_ms: u64,
    justid: bool,
    options: &XClaimOptions,
) -> Reply {
    if let Some(last) = options.last_id
        && last > g.last_id
    {
        g.last_id = last;
    }
    let time_ms = claim_time(options.time, now_ms);
    let mut out = Vec::new();
    let mut touched = false;
    for &id in ids {
        let Some(fields) = s.get(id) else {
            // Gone from the stream: dropped from the PEL, not claimed (Redis 7.0).
            g.remove_pending(id);
            continue;
        };
        let old_count = match g.pel().get(&id) {
            Some(p) if too_fresh(now_ms, p.delivery_time_ms, min_idle_ms) => continue,
            Some(p) => p.delivery_count,
            // FORCE creates the pending entry (delivery count 1) without an idle check.
            None if options.force => 1,
            None => continue,
        };
        if !touched {
            g.touch_consumer(consumer, now_ms);
            touched = true;
        }
        let count = match options.retry_count {
            Some(n) => n,
            None if justid => old_count,
            None => old_count.saturating_add(1),
        };
        g.assign(id, consumer, time_ms, count);
        out.push(if justid {
            id_reply(id)
        } else {
            entry_reply(id, fields)
        });
    }
    Reply::Array(out)
}

#[allow(clippy::too_many_arguments)]
fn xautoclaim(
    s: &Stream,
    g: &mut Group,
    consumer: &[u8],
    min_idle_ms: u64,
    start: StreamId,
    count: u64,
    now_ms: u64,
    justid: bool,
) -> Reply {
    let mut attempts = count.saturating_mul(10);
    let mut left = count;
    let mut claimed = Vec::new();
    let mut deleted = Vec::new();
    // The next PEL id to look at; `None` once past the largest id.
    let mut cursor = Some(start);
    let mut touched = false;
    while attempts > 0 && left > 0 {
        attempts -= 1;
        let Some(from) = cursor else { break };
        let Some((&id, p)) = g.pel().range(from..).next() else {
            cursor = None;
            break;
        };
        cursor = id.next();
        let Some(fields) = s.get(id) else {
            g.remove_pending(id);
            deleted.push(id_reply(id));
            left -= 1;
            continue;
        };
        if too_fresh(now_ms, p.delivery_time_ms, min_idle_ms) {
            continue;
        }
        let count = if justid {
            p.delivery_count
        } else {
            p.delivery_count.saturating_add(1)
        };
        if !touched {
            g.touch_consumer(consumer, now_ms);
            touched = true;
        }
        g.assign(id, consumer, now_ms, count);
        claimed.push(if justid {
            id_reply(id)
        } else {
            entry_reply(id, fields)
        });
        left -= 1;
    }
    // The cursor is the next pending id after the last one looked at, 0-0 at the end.
    let next = cursor
        .and_then(|from| g.pel().range(from..).next().map(|(id, _)| *id))
        .unwrap_or_default();
    Reply::Array(vec![
        id_reply(next),
        Reply::Array(claimed),
        Reply::Array(deleted),
    ])
}

fn pending_summary(g: &Group) -> Reply {
    let pel = g.pel();
    let (Some((first, _)), Some((last, _))) = (pel.first_key_value(), pel.last_key_value()) else {
        return Reply::Array(vec![Reply::Int(0), Reply::Nil, Reply::Nil, Reply::NilArray]);
    };
    let holders = g
        .consumers()
        .iter()
        .filter(|(_, c)| !c.pending().is_empty())
        .map(|(name, c)| {
            Reply::Array(vec![
                Reply::Bulk(name.clone()),
                Reply::Bulk(c.pending().len().to_string().into_bytes()),
            ])
        })
        .collect();
    Reply::Array(vec![
        Reply::Int(count_i64(pel.len())),
        id_reply(*first),
        id_reply(*last),
        Reply::Array(holders),
    ])
}

fn pending_range(g: &Group, r: &PendingRange, now_ms: u64) -> Reply {
    let ids: Box<dyn Iterator<Item = StreamId> + '_> = match &r.consumer {
        None => Box::new(g.pel().range(r.start..).map(|(id, _)| *id)),
        Some(name) => match g.consumer(name) {
            None => return Reply::Array(Vec::new()),
            Some(c) => Box::new(c.pending().range(r.start..).copied()),
        },
    };
    let mut out = Vec::new();
    for id in ids {
        if out.len() as u64 >= r.count || id > r.end {
            break;
        }
        let Some(p) = g.pel().get(&id) else { continue };
        if too_fresh(now_ms, p.delivery_time_ms, r.min_idle_ms) {
            continue;
        }
        out.push(Reply::Array(vec![
            id_reply(id),
            Reply::Bulk(p.consumer.clone()),
            Reply::Int(idle_i64(now_ms, p.delivery_time_ms)),
            Reply::Int(i64::try_from(p.delivery_count).unwrap_or(i64::MAX)),
        ]));
    }
    Reply::Array(out)
}
