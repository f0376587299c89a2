//! The model's consumer groups: `XGROUP`, `XREADGROUP`, `XACK`, `XDEL`, `XCLAIM`,
//! `XAUTOCLAIM`, `XPENDING`, `XINFO GROUPS`/`CONSUMERS`, written from Redis's command
//! documentation and checked against redis-server 7.0.15 (harness/tests/oracle_groups.rs runs
//! a seeded sequence through both and compares every reply), never against the engine.
//!
//! A group has a last-delivered id, a pending entries list (PEL: id → owner, delivery time,
//! delivery count) and consumers (name → seen time). What Redis 7.0 does, and the model with it:
//! - `XREADGROUP ... >` delivers the live entries after the last-delivered id (at most COUNT):
//!   each becomes pending for the reader (delivery count 1, delivered now; an id already in
//!   the PEL, after `XGROUP SETID` moved back, changes owner and restarts at 1) and moves the
//!   last-delivered id. With nothing to deliver it replies nil and changes nothing: the
//!   consumer is not even created.
//! - `XREADGROUP` with an id reads the consumer's own pending entries after that id (creating
//!   the consumer): a live entry is returned and counts as delivered again (count + 1,
//!   delivered now), a deleted one is returned as `[id, nil]` and left as it is.
//! - `XACK` of ids not pending (or of a missing key or group) counts 0; duplicates count once.
//! - `XCLAIM` takes the listed ids that are pending and idle at least min-idle-time: a live
//!   entry changes owner, is delivered now and counts + 1 (not with `JUSTID`); a deleted one
//!   leaves the PEL and is not returned. The consumer is created only when it claims one.
//! - `XAUTOCLAIM` does the same over the PEL from `start`: it examines at most 10 × COUNT
//!   entries, stops after COUNT claimed or deleted ones, and replies with the next PEL id to
//!   scan (`0-0` at the end), the claimed entries, and the deleted ids it dropped.
//! - Trimming (`MAXLEN`) and `XDEL` never touch a PEL.
//! - Idle times (`XPENDING`'s, `XINFO CONSUMERS`') are `now_ms` minus the recorded time.
//!
//! Not modelled: `XINFO GROUPS`' `entries-read` and `lag` (Redis 7 counters of entries read
//! that the workload never asks for; the model's `XINFO GROUPS` replies without them, and the
//! comparison with redis-server drops them explicitly), `NOACK`, `XCLAIM`'s `IDLE`/`TIME`/
//! `RETRYCOUNT`/`FORCE`/`LASTID`, `XGROUP CREATECONSUMER` and `ENTRIESREAD`.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::model::{Answer, Id, Model, ModelValue, Op, Pairs, Replies, err, text, wrongtype};

/// Where a new group (`XGROUP CREATE`) or `XGROUP SETID` puts the last-delivered id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupStart {
    /// This id.
    Id(Id),
    /// `$`: the stream's last id.
    Last,
}

/// What `XREADGROUP` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadStart {
    /// `>`: entries never delivered to the group.
    New,
    /// An id: the consumer's own pending entries after it.
    Pending(Id),
}

/// The delivery time `XCLAIM`'s `IDLE` or `TIME` sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimAt {
    /// `IDLE ms`: `ms` before the command's time (the command's time if that is negative).
    IdleMs(u64),
    /// `TIME ms`: this time (the command's time if it is later).
    Ms(u64),
}

/// `XCLAIM`'s options beyond `JUSTID` (what Redis uses to replicate a claim).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClaimExtra {
    pub at: Option<ClaimAt>,
    /// `RETRYCOUNT`: the delivery count, set instead of counted.
    pub retry_count: Option<u64>,
    /// `FORCE`: an id in the stream but pending nowhere becomes pending (count 1 before the
    /// claim counts it) whatever its idle time.
    pub force: bool,
    /// `LASTID`: the group's last-delivered id, if above it.
    pub last_id: Option<Id>,
}

/// One pending entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub consumer: Vec<u8>,
    /// When it was last delivered (the command's `now_ms`).
    pub delivered_at_ms: u64,
    pub deliveries: u64,
}

/// One consumer of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumer {
    /// When the consumer last read or claimed (Redis 7.0's `seen-time`).
    pub seen_at_ms: u64,
}

/// One consumer group.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Group {
    pub last_delivered: Id,
    pub pel: BTreeMap<Id, Pending>,
    pub consumers: BTreeMap<Vec<u8>, Consumer>,
}

impl Group {
    /// Pending entries owned by `consumer`.
    pub fn pending_of(&self, consumer: &[u8]) -> usize {
        self.pel.values().filter(|p| p.consumer == consumer).count()
    }

    fn touch(&mut self, consumer: &[u8], now_ms: u64) {
        self.consumers
            .insert(consumer.to_vec(), Consumer { seen_at_ms: now_ms });
    }
}

fn bulk(b: &[u8]) -> Answer {
    Answer::Bulk(b.to_vec())
}

fn id_bulk(id: Id) -> Answer {
    Answer::Bulk(id.to_string().into_bytes())
}

fn int(n: usize) -> Answer {
    Answer::Int(i64::try_from(n).unwrap_or(i64::MAX))
}

fn entry_reply(id: Id, fields: Option<&Pairs>) -> Answer {
    let fields = match fields {
        Some(p) => Answer::Array(p.iter().flat_map(|(f, v)| [bulk(f), bulk(v)]).collect()),
        None => Answer::NilArray,
    };
    Answer::Array(vec![id_bulk(id), fields])
}

fn find(entries: &[(Id, Arc<Pairs>)], id: Id) -> Option<&Pairs> {
    entries
        .binary_search_by_key(&id, |(i, _)| *i)
        .ok()
        .map(|i| &*entries[i].1)
}

/// A stream's parts, borrowed mutably.
struct StreamMut<'a> {
    entries: &'a mut Vec<(Id, Arc<Pairs>)>,
    last_id: Id,
    groups: &'a mut BTreeMap<Vec<u8>, Group>,
}

/// How a claim sets an entry: its delivery time, and the delivery count (set, or counted
/// unless `justid`).
#[derive(Debug, Clone, Copy)]
struct ClaimHow {
    min_idle_ms: u64,
    now_ms: u64,
    delivered_at_ms: u64,
    retry_count: Option<u64>,
    force: bool,
    justid: bool,
    /// Whether the claimed entry's reply item is built ([`Replies`]).
    replies: Replies,
}

/// Claims `id` for `consumer`. Redis looks at the stream first: an entry deleted from it
/// leaves the PEL whatever its idle time; then a pending entry idle at least min-idle-time
/// (or one `FORCE` just made pending) changes owner. Returns the reply item of a claim.
fn claim(
    g: &mut Group,
    entries: &[(Id, Arc<Pairs>)],
    id: Id,
    consumer: &[u8],
    how: ClaimHow,
) -> Claim {
    let Some(fields) = find(entries, id) else {
        return match g.pel.remove(&id) {
            Some(_) => Claim::Deleted,
            None => Claim::Skipped,
        };
    };
    let forced = how.force && !g.pel.contains_key(&id);
    if forced {
        g.pel.insert(
            id,
            Pending {
                consumer: Vec::new(),
                delivered_at_ms: how.now_ms,
                deliveries: 1,
            },
        );
    }
    let Some(p) = g.pel.get_mut(&id) else {
        return Claim::Skipped;
    };
    if !forced && how.now_ms.saturating_sub(p.delivered_at_ms) < how.min_idle_ms {
        return Claim::Skipped;
    }
    p.consumer = consumer.to_vec();
    p.delivered_at_ms = how.delivered_at_ms;
    match how.retry_count {
        Some(n) => p.deliveries = n,
        None if !how.justid => p.deliveries += 1,
        None => {}
    }
    g.touch(consumer, how.now_ms);
    Claim::Claimed(if how.replies == Replies::Skipped {
        Answer::Nil
    } else if how.justid {
        id_bulk(id)
    } else {
        entry_reply(id, Some(fields))
    })
}

enum Claim {
    Skipped,
    Deleted,
    Claimed(Answer),
}

/// A stream's entries and last id, and one of its groups.
struct GroupMut<'a> {
    entries: &'a mut Vec<(Id, Arc<Pairs>)>,
    last_id: Id,
    group: &'a mut Group,
}

/// Which error a command replies when its key or its group is missing: Redis's texts differ
/// by command (harness/tests/oracle_groups.rs checks them against redis-server).
#[derive(Debug, Clone, Copy)]
enum Missing {
    /// `XGROUP` subcommands: [`text::XGROUP_NO_KEY`], then [`text::nogroup`].
    XGroup,
    /// `XINFO CONSUMERS`: [`text::NO_SUCH_KEY`], then [`text::nogroup`].
    XInfo,
    /// `XREADGROUP`: [`text::nogroup_read`] for either.
    Read,
    /// `XCLAIM`, `XAUTOCLAIM`, `XPENDING`: [`text::nokey_or_group`] for either.
    Claim,
}

impl Missing {
    fn no_key(self, key: &[u8], group: &[u8]) -> Answer {
        match self {
            Missing::XGroup => err(text::XGROUP_NO_KEY),
            Missing::XInfo => err(text::NO_SUCH_KEY),
            Missing::Read | Missing::Claim => self.no_group(key, group),
        }
    }

    fn no_group(self, key: &[u8], group: &[u8]) -> Answer {
        Answer::Error(match self {
            Missing::XGroup | Missing::XInfo => text::nogroup(key, group),
            Missing::Read => text::nogroup_read(key, group),
            Missing::Claim => text::nokey_or_group(key, group),
        })
    }
}

impl Model {
    fn stream_mut(&mut self, key: &[u8]) -> Result<Option<StreamMut<'_>>, Answer> {
        match self.map.get_mut(key).map(|e| &mut e.value) {
            None => Ok(None),
            Some(ModelValue::Stream {
                entries,
                last_id,
                groups,
            }) => Ok(Some(StreamMut {
                entries,
                last_id: *last_id,
                groups,
            })),
            Some(_) => Err(wrongtype()),
        }
    }

    /// The stream at `key` and its group `group`.
    ///
    /// # Errors
    /// WRONGTYPE when `key` holds another type; `missing`'s error when there is no key, or no
    /// such group.
    fn group_mut(
        &mut self,
        key: &[u8],
        group: &[u8],
        missing: Missing,
    ) -> Result<GroupMut<'_>, Answer> {
        let StreamMut {
            entries,
            last_id,
            groups,
        } = self
            .stream_mut(key)?
            .ok_or_else(|| missing.no_key(key, group))?;
        let group = groups
            .get_mut(group)
            .ok_or_else(|| missing.no_group(key, group))?;
        Ok(GroupMut {
            entries,
            last_id,
            group,
        })
    }

    /// The group commands of [`Model::run`] (replies built as `replies` says:
    /// [`Model::exec`]).
    pub(super) fn run_group(&mut self, op: &Op, replies: Replies) -> Answer {
        match self.group_op(op, replies) {
            Ok(a) | Err(a) => a,
        }
    }

    fn group_op(&mut self, op: &Op, replies: Replies) -> Result<Answer, Answer> {
        let built = replies == Replies::Built;
        match op {
            Op::XGroupCreate {
                key,
                group,
                start,
                mkstream,
            } => {
                if *mkstream && !self.map.contains_key(key) {
                    self.map.insert(
                        key.clone(),
                        super::model::ModelEntry {
                            value: ModelValue::empty_stream(),
                            expire_at_ms: None,
                        },
                    );
                }
                let s = self.stream_mut(key)?.ok_or(err(text::XGROUP_NO_KEY))?;
                if s.groups.contains_key(group) {
                    return Err(err(text::BUSYGROUP));
                }
                let last_delivered = match start {
                    GroupStart::Id(id) => *id,
                    GroupStart::Last => s.last_id,
                };
                s.groups.insert(
                    group.clone(),
                    Group {
                        last_delivered,
                        ..Group::default()
                    },
                );
                Ok(Answer::Ok)
            }
            Op::XGroupDestroy { key, group } => {
                let s = self.stream_mut(key)?.ok_or(err(text::XGROUP_NO_KEY))?;
                Ok(Answer::Int(i64::from(s.groups.remove(group).is_some())))
            }
            Op::XGroupCreateConsumer {
                key,
                group,
                consumer,
                now_ms,
            } => {
                let g = self.group_mut(key, group, Missing::XGroup)?.group;
                if g.consumers.contains_key(consumer) {
                    return Ok(Answer::Int(0));
                }
                g.touch(consumer, *now_ms);
                Ok(Answer::Int(1))
            }
            Op::XGroupSetId { key, group, start } => {
                let s = self.group_mut(key, group, Missing::XGroup)?;
                s.group.last_delivered = match start {
                    GroupStart::Id(id) => *id,
                    GroupStart::Last => s.last_id,
                };
                Ok(Answer::Ok)
            }
            Op::XGroupDelConsumer {
                key,
                group,
                consumer,
            } => {
                let g = self.group_mut(key, group, Missing::XGroup)?.group;
                if g.consumers.remove(consumer).is_none() {
                    return Ok(Answer::Int(0));
                }
                let before = g.pel.len();
                g.pel.retain(|_, p| p.consumer != *consumer);
                Ok(int(before - g.pel.len()))
            }
            Op::XReadGroup {
                key,
                group,
                consumer,
                count,
                start,
                noack,
                now_ms,
            } => {
                let GroupMut {
                    entries, group: g, ..
                } = self.group_mut(key, group, Missing::Read)?;
                let limit = match count {
                    None | Some(0) => usize::MAX,
                    Some(n) => usize::try_from(*n).unwrap_or(usize::MAX),
                };
                let items = match start {
                    ReadStart::New => {
                        let first = entries.partition_point(|(id, _)| *id <= g.last_delivered);
                        let new: Vec<_> = entries[first..].iter().take(limit).collect();
                        if new.is_empty() {
                            return Ok(Answer::NilArray);
                        }
                        g.touch(consumer, *now_ms);
                        let mut items = Vec::with_capacity(if built { new.len() } else { 0 });
                        for (id, fields) in new {
                            g.last_delivered = *id;
                            if built {
                                items.push(entry_reply(*id, Some(fields)));
                            }
                            if *noack {
                                continue;
                            }
                            g.pel.insert(
                                *id,
                                Pending {
                                    consumer: consumer.clone(),
                                    delivered_at_ms: *now_ms,
                                    deliveries: 1,
                                },
                            );
                        }
                        items
                    }
                    ReadStart::Pending(after) => {
                        g.touch(consumer, *now_ms);
                        let mut items = Vec::new();
                        let mut read = 0;
                        for (id, p) in g.pel.range_mut(..) {
                            if *id <= *after || p.consumer != *consumer {
                                continue;
                            }
                            if read == limit {
                                break;
                            }
                            read += 1;
                            let fields = find(entries, *id);
                            if fields.is_some() {
                                p.delivered_at_ms = *now_ms;
                                p.deliveries += 1;
                            }
                            if built {
                                items.push(entry_reply(*id, fields));
                            }
                        }
                        items
                    }
                };
                if !built {
                    return Ok(Answer::Nil);
                }
                Ok(Answer::Array(vec![Answer::Array(vec![
                    bulk(key),
                    Answer::Array(items),
                ])]))
            }
            Op::XAck { key, group, ids } => {
                let Some(s) = self.stream_mut(key)? else {
                    return Ok(Answer::Int(0));
                };
                let Some(g) = s.groups.get_mut(group) else {
                    return Ok(Answer::Int(0));
                };
                Ok(int(ids
                    .iter()
                    .filter(|id| g.pel.remove(id).is_some())
                    .count()))
            }
            Op::XDel { key, ids } => {
                let Some(s) = self.stream_mut(key)? else {
                    return Ok(Answer::Int(0));
                };
                let before = s.entries.len();
                s.entries.retain(|(id, _)| !ids.contains(id));
                Ok(int(before - s.entries.len()))
            }
            Op::XClaim {
                key,
                group,
                consumer,
                min_idle_ms,
                ids,
                now_ms,
                justid,
                extra,
            } => {
                let GroupMut {
                    entries, group: g, ..
                } = self.group_mut(key, group, Missing::Claim)?;
                if let Some(last) = extra.last_id
                    && last > g.last_delivered
                {
                    g.last_delivered = last;
                }
                let delivered_at_ms = match extra.at {
                    None => *now_ms,
                    Some(ClaimAt::IdleMs(ms)) => now_ms.checked_sub(ms).unwrap_or(*now_ms),
                    Some(ClaimAt::Ms(at)) => at.min(*now_ms),
                };
                let how = ClaimHow {
                    min_idle_ms: *min_idle_ms,
                    now_ms: *now_ms,
                    delivered_at_ms,
                    retry_count: extra.retry_count,
                    force: extra.force,
                    justid: *justid,
                    replies,
                };
                let mut items = Vec::new();
                for id in ids {
                    if let Claim::Claimed(item) = claim(g, entries, *id, consumer, how) {
                        items.push(item);
                    }
                }
                Ok(Answer::Array(items))
            }
            Op::XAutoClaim {
                key,
                group,
                consumer,
                min_idle_ms,
                start,
                count,
                now_ms,
                justid,
            } => {
                let GroupMut {
                    entries, group: g, ..
                } = self.group_mut(key, group, Missing::Claim)?;
                let ids: Vec<Id> = g.pel.range(*start..).map(|(id, _)| *id).collect();
                let mut attempts = count.saturating_mul(10);
                let mut left = *count;
                let (mut claimed, mut deleted) = (Vec::new(), Vec::new());
                let how = ClaimHow {
                    min_idle_ms: *min_idle_ms,
                    now_ms: *now_ms,
                    delivered_at_ms: *now_ms,
                    retry_count: None,
                    force: false,
                    justid: *justid,
                    replies,
                };
                let mut next = 0;
                while attempts > 0 && left > 0 && next < ids.len() {
                    attempts -= 1;
                    let id = ids[next];
                    next += 1;
                    match claim(g, entries, id, consumer, how) {
                        Claim::Skipped => {}
                        Claim::Deleted => {
                            if built {
                                deleted.push(id_bulk(id));
                            }
                            left -= 1;
                        }
                        Claim::Claimed(item) => {
                            claimed.push(item);
                            left -= 1;
                        }
                    }
                }
                if !built {
                    return Ok(Answer::Nil);
                }
                let cursor = ids.get(next).copied().unwrap_or_default();
                Ok(Answer::Array(vec![
                    id_bulk(cursor),
                    Answer::Array(claimed),
                    Answer::Array(deleted),
                ]))
            }
            Op::XPending { key, group } => {
                let g = self.group_mut(key, group, Missing::Claim)?.group;
                let (Some((min, _)), Some((max, _))) =
                    (g.pel.first_key_value(), g.pel.last_key_value())
                else {
                    return Ok(Answer::Array(vec![
                        Answer::Int(0),
                        Answer::Nil,
                        Answer::Nil,
                        Answer::NilArray,
                    ]));
                };
                let mut per: BTreeMap<&[u8], usize> = BTreeMap::new();
                for p in g.pel.values() {
                    *per.entry(&p.consumer).or_default() += 1;
                }
                Ok(Answer::Array(vec![
                    int(g.pel.len()),
                    id_bulk(*min),
                    id_bulk(*max),
                    Answer::Array(
                        per.into_iter()
                            .map(|(c, n)| {
                                Answer::Array(vec![bulk(c), bulk(n.to_string().as_bytes())])
                            })
                            .collect(),
                    ),
                ]))
            }
            Op::XPendingRange {
                key,
                group,
                min_idle_ms,
                start,
                end,
                count,
                consumer,
                now_ms,
            } => {
                let g = self.group_mut(key, group, Missing::Claim)?.group;
                if start > end {
                    return Ok(Answer::Array(Vec::new()));
                }
                let items = g
                    .pel
                    .range(*start..=*end)
                    .filter(|(_, p)| consumer.as_ref().is_none_or(|c| p.consumer == *c))
                    .filter(|(_, p)| now_ms.saturating_sub(p.delivered_at_ms) >= *min_idle_ms)
                    .take(usize::try_from(*count).unwrap_or(usize::MAX))
                    .map(|(id, p)| {
                        Answer::Array(vec![
                            id_bulk(*id),
                            bulk(&p.consumer),
                            idle(*now_ms, p.delivered_at_ms),
                            Answer::Int(i64::try_from(p.deliveries).unwrap_or(i64::MAX)),
                        ])
                    })
                    .collect();
                Ok(Answer::Array(items))
            }
            Op::XInfoGroups { key } => {
                let s = self.stream_mut(key)?.ok_or(err(text::NO_SUCH_KEY))?;
                Ok(Answer::Array(
                    s.groups
                        .iter()
                        .map(|(name, g)| {
                            Answer::Array(vec![
                                bulk(b"name"),
                                bulk(name),
                                bulk(b"consumers"),
                                int(g.consumers.len()),
                                bulk(b"pending"),
                                int(g.pel.len()),
                                bulk(b"last-delivered-id"),
                                id_bulk(g.last_delivered),
                            ])
                        })
                        .collect(),
                ))
            }
            Op::XInfoConsumers { key, group, now_ms } => {
                let g = self.group_mut(key, group, Missing::XInfo)?.group;
                Ok(Answer::Array(
                    g.consumers
                        .iter()
                        .map(|(name, c)| {
                            Answer::Array(vec![
                                bulk(b"name"),
                                bulk(name),
                                bulk(b"pending"),
                                int(g.pending_of(name)),
                                bulk(b"idle"),
                                idle(*now_ms, c.seen_at_ms),
                            ])
                        })
                        .collect(),
                ))
            }
            other => unreachable!("not a group command: {other:?}"),
        }
    }
}

fn idle(now_ms: u64, at_ms: u64) -> Answer {
    Answer::Int(i64::try_from(now_ms.saturating_sub(at_ms)).unwrap_or(i64::MAX))
}
