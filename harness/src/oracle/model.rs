//! The oracle's model: a second, deliberately plain implementation of the command set.
//!
//! Plain `BTreeMap`s and `Vec`s, and nothing of `durlab_engine`: its own command ([`Op`]),
//! reply ([`Answer`]) and stream id ([`Id`]) types, its own argument validation and its own
//! copies of Redis's error texts ([`text`]), written from Redis's documented semantics, so
//! that a bug in the engine's types or rules is not approved by the oracle. Only
//! [`super::compare`] touches engine types: it turns an engine command into an [`Op`] and an
//! [`Answer`] into an engine reply, at the boundary (`Model::apply`). Sorted sets keep
//! member → score and find the minimum by a scan; streams are a `Vec`. Slow, and obviously
//! right: that is the point.
//!
//! Semantics mirrored (Redis 7 as the engine documents it): `SET` clears the expiry, `INCRBY`
//! keeps it; `HDEL`, `ZREM` and `ZPOPMIN` delete a key they empty; a command on a key of
//! another type replies WRONGTYPE and changes nothing; scores `-0.0` are stored as `0.0`;
//! `XADD` with an automatic id takes `last.ms-(last.seq+1)` (`0-1` for a new stream, `ms+1-0`
//! when seq overflows), `MAXLEN` trims exactly and a stream keeps its last id even when empty;
//! malformed argument lists (no fields, NaN score, XADD id `0-0`) change nothing. A transaction
//! ([`Op::Multi`]) is Redis's EXEC: each queued command runs in order and gets its own reply
//! in the array reply, an error reply does not stop the others; a transaction inside a
//! transaction is refused as a whole (Redis refuses `MULTI` inside `MULTI`).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

pub use super::groups::{ClaimAt, ClaimExtra, Consumer, Group, GroupStart, Pending, ReadStart};

/// Redis 7's error texts, as its documentation and replies give them.
pub mod text {
    pub const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
    pub const NOT_AN_INTEGER: &str = "ERR value is not an integer or out of range";
    pub const HASH_NOT_AN_INTEGER: &str = "ERR hash value is not an integer";
    pub const OVERFLOW: &str = "ERR increment or decrement would overflow";
    pub const NOT_A_FLOAT: &str = "ERR value is not a valid float";
    pub const XADD_ZERO: &str = "ERR The ID specified in XADD must be greater than 0-0";
    pub const XADD_SMALL: &str =
        "ERR The ID specified in XADD is equal or smaller than the target stream top item";
    pub const XADD_EXHAUSTED: &str =
        "ERR The stream has exhausted the last possible ID, unable to add more items";
    pub const MULTI_NESTED: &str = "ERR MULTI calls can not be nested";
    pub const XGROUP_NO_KEY: &str = "ERR The XGROUP subcommand requires the key to exist. \
         Note that for CREATE you may want to use the MKSTREAM option to create an empty \
         stream automatically.";
    pub const BUSYGROUP: &str = "BUSYGROUP Consumer Group name already exists";
    pub const NO_SUCH_KEY: &str = "ERR no such key";
    pub const COUNT_POSITIVE: &str = "ERR COUNT must be > 0";

    /// `XGROUP SETID`/`DELCONSUMER` and `XINFO CONSUMERS` naming a group the key lacks.
    pub fn nogroup(key: &[u8], group: &[u8]) -> String {
        format!(
            "NOGROUP No such consumer group '{}' for key name '{}'",
            String::from_utf8_lossy(group),
            String::from_utf8_lossy(key)
        )
    }

    /// `XCLAIM`, `XAUTOCLAIM`, `XPENDING` on a missing key or group.
    pub fn nokey_or_group(key: &[u8], group: &[u8]) -> String {
        format!(
            "NOGROUP No such key '{}' or consumer group '{}'",
            String::from_utf8_lossy(key),
            String::from_utf8_lossy(group)
        )
    }

    /// `XREADGROUP` on a missing key or group.
    pub fn nogroup_read(key: &[u8], group: &[u8]) -> String {
        format!(
            "{} in XREADGROUP with GROUP option",
            nokey_or_group(key, group)
        )
    }

    /// `ERR wrong number of arguments for '<name>' command`.
    pub fn arity(name: &str) -> String {
        format!("ERR wrong number of arguments for '{name}' command")
    }
}

/// A stream entry id, `ms-seq`; ordered by `ms`, then `seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Id {
    pub ms: u64,
    pub seq: u64,
}

impl Id {
    /// The last possible id: once a stream has it, every XADD is refused.
    pub const MAX: Id = Id {
        ms: u64::MAX,
        seq: u64::MAX,
    };
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// How an `XADD` names its entry.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum IdSpec {
    /// The last id's ms with seq + 1 (`ms + 1`-0 when seq is at its maximum).
    Next,
    /// This id.
    Given(Id),
    /// Redis's `*` received at this time: `now-0`, or [`IdSpec::Next`] if the stream's last
    /// id is not below `now`.
    Time(u64),
    /// Redis's `ms-*`: this ms with the next sequence number.
    SeqFor(u64),
}

/// `SET`'s condition: none, `NX`, `XX`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cond {
    Any,
    IfAbsent,
    IfPresent,
}

/// What `SET` does to the key's expiry: removes it (no option), `KEEPTTL`, `PXAT`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Expiry {
    Remove,
    Keep,
    At(u64),
}

/// A command of the model.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Set {
        key: Vec<u8>,
        value: Vec<u8>,
        cond: Cond,
        expiry: Expiry,
        get: bool,
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
    PExpireAt {
        key: Vec<u8>,
        at_ms: u64,
    },
    Persist {
        key: Vec<u8>,
    },
    HSet {
        key: Vec<u8>,
        fields: Pairs,
    },
    HDel {
        key: Vec<u8>,
        fields: Vec<Vec<u8>>,
    },
    HIncrBy {
        key: Vec<u8>,
        field: Vec<u8>,
        delta: i64,
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
        id: IdSpec,
        fields: Pairs,
        maxlen: Option<u64>,
    },
    /// `XGROUP CREATE key group id|$ [MKSTREAM]`.
    XGroupCreate {
        key: Vec<u8>,
        group: Vec<u8>,
        start: GroupStart,
        mkstream: bool,
    },
    /// `XGROUP DESTROY key group`.
    XGroupDestroy {
        key: Vec<u8>,
        group: Vec<u8>,
    },
    /// `XGROUP CREATECONSUMER key group consumer`, run at `now_ms`.
    XGroupCreateConsumer {
        key: Vec<u8>,
        group: Vec<u8>,
        consumer: Vec<u8>,
        now_ms: u64,
    },
    /// `XGROUP SETID key group id|$`.
    XGroupSetId {
        key: Vec<u8>,
        group: Vec<u8>,
        start: GroupStart,
    },
    /// `XGROUP DELCONSUMER key group consumer`.
    XGroupDelConsumer {
        key: Vec<u8>,
        group: Vec<u8>,
        consumer: Vec<u8>,
    },
    /// `XREADGROUP GROUP group consumer [COUNT count] [NOACK] STREAMS key >|id`, run at
    /// `now_ms`. `count` `None` or 0: no limit.
    XReadGroup {
        key: Vec<u8>,
        group: Vec<u8>,
        consumer: Vec<u8>,
        count: Option<u64>,
        start: ReadStart,
        noack: bool,
        now_ms: u64,
    },
    /// `XACK key group id...`.
    XAck {
        key: Vec<u8>,
        group: Vec<u8>,
        ids: Vec<Id>,
    },
    /// `XDEL key id...`.
    XDel {
        key: Vec<u8>,
        ids: Vec<Id>,
    },
    /// `XCLAIM key group consumer min-idle-time id... [IDLE ms|TIME ms] [RETRYCOUNT n]
    /// [FORCE] [JUSTID] [LASTID id]`, run at `now_ms`.
    XClaim {
        key: Vec<u8>,
        group: Vec<u8>,
        consumer: Vec<u8>,
        min_idle_ms: u64,
        ids: Vec<Id>,
        now_ms: u64,
        justid: bool,
        extra: ClaimExtra,
    },
    /// `XAUTOCLAIM key group consumer min-idle-time start [COUNT count] [JUSTID]`, run at
    /// `now_ms`.
    XAutoClaim {
        key: Vec<u8>,
        group: Vec<u8>,
        consumer: Vec<u8>,
        min_idle_ms: u64,
        start: Id,
        count: u64,
        now_ms: u64,
        justid: bool,
    },
    /// `XPENDING key group` (the summary form).
    XPending {
        key: Vec<u8>,
        group: Vec<u8>,
    },
    /// `XPENDING key group [IDLE min] start end count [consumer]`, run at `now_ms`.
    XPendingRange {
        key: Vec<u8>,
        group: Vec<u8>,
        min_idle_ms: u64,
        start: Id,
        end: Id,
        count: u64,
        consumer: Option<Vec<u8>>,
        now_ms: u64,
    },
    /// `XINFO GROUPS key`.
    XInfoGroups {
        key: Vec<u8>,
    },
    /// `XINFO CONSUMERS key group`, run at `now_ms`.
    XInfoConsumers {
        key: Vec<u8>,
        group: Vec<u8>,
        now_ms: u64,
    },
    FlushAll,
    /// MULTI ... EXEC.
    Multi(Vec<Op>),
}

/// A reply of the model.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Ok,
    Nil,
    Int(i64),
    Bulk(Vec<u8>),
    Array(Vec<Answer>),
    /// Redis's null array (`*-1`): XREADGROUP with nothing new, a deleted pending entry's
    /// fields, the consumers of an empty pending list.
    NilArray,
    Error(String),
}

/// Whether running a command builds its reply ([`Model::run`]) or only changes the state
/// ([`Model::run_quiet`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Replies {
    Built,
    Skipped,
}

/// A field-value list of one stream entry, in the order given.
pub type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// A value of the model.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelValue {
    Str(Vec<u8>),
    Hash(BTreeMap<Vec<u8>, Vec<u8>>),
    /// member → score (never NaN, never `-0.0`).
    ZSet(BTreeMap<Vec<u8>, f64>),
    Stream {
        /// Entries in id order. An entry's fields never change once added, so copies of the
        /// model (the oracle's checkpoints, and restoring one) share them.
        entries: Vec<(Id, Arc<Pairs>)>,
        last_id: Id,
        /// Consumer groups by name ([`super::groups`]).
        groups: BTreeMap<Vec<u8>, Group>,
    },
}

impl ModelValue {
    /// A stream without entries or groups, last id 0-0 (what `XGROUP CREATE ... MKSTREAM`
    /// makes, and every stream before its first entry).
    pub fn empty_stream() -> ModelValue {
        ModelValue::Stream {
            entries: Vec::new(),
            last_id: Id::default(),
            groups: BTreeMap::new(),
        }
    }
}

/// A key's value and expiry metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelEntry {
    pub value: ModelValue,
    pub expire_at_ms: Option<u64>,
}

/// The whole model state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Model {
    pub map: BTreeMap<Vec<u8>, ModelEntry>,
}

pub(super) fn err(text: &str) -> Answer {
    Answer::Error(text.to_string())
}

pub(super) fn wrongtype() -> Answer {
    err(text::WRONGTYPE)
}

/// The error reply of a command whose arguments Redis refuses whatever the state: a command
/// that takes pairs or a list given none (Redis's arity check), a score that is not a number,
/// the XADD id 0-0, MULTI inside MULTI.
fn malformed(op: &Op) -> Option<String> {
    let arity = |name: &str| Some(text::arity(name));
    match op {
        Op::HSet { fields, .. } if fields.is_empty() => arity("hset"),
        Op::HDel { fields, .. } if fields.is_empty() => arity("hdel"),
        Op::ZAdd { members, .. } if members.is_empty() => arity("zadd"),
        Op::ZAdd { members, .. } if members.iter().any(|(s, _)| s.is_nan()) => {
            Some(text::NOT_A_FLOAT.into())
        }
        Op::ZRem { members, .. } if members.is_empty() => arity("zrem"),
        Op::XAdd { fields, .. } if fields.is_empty() => arity("xadd"),
        Op::XAck { ids, .. } if ids.is_empty() => arity("xack"),
        Op::XDel { ids, .. } if ids.is_empty() => arity("xdel"),
        Op::XClaim { ids, .. } if ids.is_empty() => arity("xclaim"),
        Op::XAutoClaim { count: 0, .. } => Some(text::COUNT_POSITIVE.into()),
        Op::XAdd {
            id: IdSpec::Given(Id { ms: 0, seq: 0 }),
            ..
        } => Some(text::XADD_ZERO.into()),
        Op::Multi(ops) if ops.iter().any(|o| matches!(o, Op::Multi(_))) => {
            Some(text::MULTI_NESTED.into())
        }
        _ => None,
    }
}

/// A score as Redis 7.0 replies it: C's `%.17g`, from the C library itself (an
/// implementation independent of the engine's).
fn score_text(score: f64) -> String {
    let mut buf = [0u8; 64];
    // SAFETY: `buf` is writable for `buf.len()` bytes, which bounds what snprintf writes
    // (terminating NUL included); the format is a NUL-terminated literal with exactly one
    // conversion, a double, which `score` is.
    let n = unsafe { libc::snprintf(buf.as_mut_ptr().cast(), buf.len(), c"%.17g".as_ptr(), score) };
    let n = usize::try_from(n).unwrap_or(0).min(buf.len() - 1);
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// A canonical decimal: exactly what `i64` prints back (no `+`, no leading zeros, no `-0`).
fn parse_canonical_i64(bytes: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(bytes).ok()?;
    let n: i64 = text.parse().ok()?;
    (n.to_string() == text).then_some(n)
}

impl Model {
    /// An empty model.
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `op` and returns its reply.
    pub fn run(&mut self, op: &Op) -> Answer {
        self.exec(op, Replies::Built)
    }

    /// Runs `op` for its effect on the state alone: exactly the changes of [`Model::run`],
    /// without building its reply (an `XREADGROUP`'s or `XAUTOCLAIM`'s copies of the entries
    /// it hands out, an `XADD`'s id text, a `ZPOPMIN`'s scores). What a cursor stepping
    /// through the workload's commands needs (harness/src/oracle/cursor.rs); the unit test
    /// `quiet_runs_change_what_runs_change` holds it to [`Model::run`].
    pub fn run_quiet(&mut self, op: &Op) {
        self.exec(op, Replies::Skipped);
    }

    /// [`Model::run`], building the reply only when `replies` says so (else some placeholder
    /// answer of no meaning, never looked at). Whether a reply is built never decides what
    /// changes.
    pub(super) fn exec(&mut self, op: &Op, replies: Replies) -> Answer {
        if let Some(text) = malformed(op) {
            return Answer::Error(text);
        }
        let built = replies == Replies::Built;
        match op {
            Op::Set {
                key,
                value,
                cond,
                expiry,
                get,
            } => self.set(key, value, *cond, *expiry, *get, replies),
            Op::Get { .. } if !built => Answer::Nil,
            Op::Get { key } => match self.map.get(key).map(|e| &e.value) {
                None => Answer::Nil,
                Some(ModelValue::Str(v)) => Answer::Bulk(v.clone()),
                Some(_) => wrongtype(),
            },
            Op::Del { key } => Answer::Int(i64::from(self.map.remove(key).is_some())),
            Op::SetNx { key, value } => {
                if self.map.contains_key(key) {
                    Answer::Int(0)
                } else {
                    self.put(key, ModelValue::Str(value.clone()));
                    Answer::Int(1)
                }
            }
            Op::IncrBy { key, delta } => self.incrby(key, *delta),
            Op::PExpireAt { key, at_ms } => match self.map.get_mut(key) {
                Some(e) => {
                    e.expire_at_ms = Some(*at_ms);
                    Answer::Int(1)
                }
                None => Answer::Int(0),
            },
            Op::Persist { key } => match self.map.get_mut(key) {
                Some(e) if e.expire_at_ms.is_some() => {
                    e.expire_at_ms = None;
                    Answer::Int(1)
                }
                _ => Answer::Int(0),
            },
            Op::HIncrBy { key, field, delta } => self.hincrby(key, field, *delta),
            Op::FlushAll => {
                self.map.clear();
                Answer::Ok
            }
            Op::HSet { key, fields } => self.hset(key, fields),
            Op::HDel { key, fields } => self.remove_items(key, fields, true),
            Op::ZAdd { key, members } => self.zadd(key, members),
            Op::ZRem { key, members } => self.remove_items(key, members, false),
            Op::ZPopMin { key, count } => self.zpopmin(key, *count, replies),
            Op::XAdd {
                key,
                id,
                fields,
                maxlen,
            } => self.xadd(key, *id, fields, *maxlen, replies),
            Op::Multi(ops) if built => {
                Answer::Array(ops.iter().map(|o| self.exec(o, replies)).collect())
            }
            Op::Multi(ops) => {
                for o in ops {
                    self.exec(o, replies);
                }
                Answer::Nil
            }
            group_op => self.run_group(group_op, replies),
        }
    }

    /// Stores `value` under `key` without expiry.
    fn put(&mut self, key: &[u8], value: ModelValue) {
        self.map.insert(
            key.to_vec(),
            ModelEntry {
                value,
                expire_at_ms: None,
            },
        );
    }

    fn incrby(&mut self, key: &[u8], delta: i64) -> Answer {
        let Some(entry) = self.map.get_mut(key) else {
            self.put(key, ModelValue::Str(delta.to_string().into_bytes()));
            return Answer::Int(delta);
        };
        let ModelValue::Str(text) = &mut entry.value else {
            return wrongtype();
        };
        let Some(current) = parse_canonical_i64(text) else {
            return err(text::NOT_AN_INTEGER);
        };
        let Some(sum) = current.checked_add(delta) else {
            return err(text::OVERFLOW);
        };
        *text = sum.to_string().into_bytes();
        Answer::Int(sum)
    }

    /// `SET` (with its options): the old value is read (GET), then the condition decides.
    fn set(
        &mut self,
        key: &[u8],
        value: &[u8],
        cond: Cond,
        expiry: Expiry,
        get: bool,
        replies: Replies,
    ) -> Answer {
        let old = self.map.get(key);
        let old_reply = match old.map(|e| &e.value) {
            None => Answer::Nil,
            Some(ModelValue::Str(_)) if replies == Replies::Skipped => Answer::Nil,
            Some(ModelValue::Str(v)) => Answer::Bulk(v.clone()),
            Some(_) if get => return wrongtype(),
            Some(_) => Answer::Nil,
        };
        let skip = match cond {
            Cond::Any => false,
            Cond::IfAbsent => old.is_some(),
            Cond::IfPresent => old.is_none(),
        };
        let reply = if get {
            old_reply
        } else if skip {
            Answer::Nil
        } else {
            Answer::Ok
        };
        if skip {
            return reply;
        }
        let expire_at_ms = match expiry {
            Expiry::Remove => None,
            Expiry::Keep => old.and_then(|e| e.expire_at_ms),
            Expiry::At(t) => Some(t),
        };
        self.map.insert(
            key.to_vec(),
            ModelEntry {
                value: ModelValue::Str(value.to_vec()),
                expire_at_ms,
            },
        );
        reply
    }

    fn hincrby(&mut self, key: &[u8], field: &[u8], delta: i64) -> Answer {
        let current = match self.map.get(key).map(|e| &e.value) {
            None => None,
            Some(ModelValue::Hash(h)) => h.get(field),
            Some(_) => return wrongtype(),
        };
        let current = match current.map(|t| parse_canonical_i64(t)) {
            None => 0,
            Some(Some(n)) => n,
            Some(None) => return err(text::HASH_NOT_AN_INTEGER),
        };
        let Some(sum) = current.checked_add(delta) else {
            return err(text::OVERFLOW);
        };
        self.hset(key, &[(field.to_vec(), sum.to_string().into_bytes())]);
        Answer::Int(sum)
    }

    fn hset(&mut self, key: &[u8], fields: &[(Vec<u8>, Vec<u8>)]) -> Answer {
        let entry = self.map.entry(key.to_vec()).or_insert(ModelEntry {
            value: ModelValue::Hash(BTreeMap::new()),
            expire_at_ms: None,
        });
        let ModelValue::Hash(hash) = &mut entry.value else {
            return wrongtype();
        };
        let mut added = 0;
        for (f, v) in fields {
            if hash.insert(f.clone(), v.clone()).is_none() {
                added += 1;
            }
        }
        Answer::Int(added)
    }

    /// `HDEL` (`hash`) or `ZREM`: removes items, deleting the key when it becomes empty.
    fn remove_items(&mut self, key: &[u8], items: &[Vec<u8>], hash: bool) -> Answer {
        let Some(entry) = self.map.get_mut(key) else {
            return Answer::Int(0);
        };
        let mut removed = 0;
        let now_empty = match (&mut entry.value, hash) {
            (ModelValue::Hash(h), true) => {
                for f in items {
                    removed += i64::from(h.remove(f).is_some());
                }
                h.is_empty()
            }
            (ModelValue::ZSet(z), false) => {
                for m in items {
                    removed += i64::from(z.remove(m).is_some());
                }
                z.is_empty()
            }
            _ => return wrongtype(),
        };
        if now_empty {
            self.map.remove(key);
        }
        Answer::Int(removed)
    }

    fn zadd(&mut self, key: &[u8], members: &[(f64, Vec<u8>)]) -> Answer {
        let entry = self.map.entry(key.to_vec()).or_insert(ModelEntry {
            value: ModelValue::ZSet(BTreeMap::new()),
            expire_at_ms: None,
        });
        let ModelValue::ZSet(z) = &mut entry.value else {
            return wrongtype();
        };
        let mut added = 0;
        for (score, member) in members {
            let score = if *score == 0.0 { 0.0 } else { *score };
            if z.insert(member.clone(), score).is_none() {
                added += 1;
            }
        }
        Answer::Int(added)
    }

    fn zpopmin(&mut self, key: &[u8], count: u64, replies: Replies) -> Answer {
        let Some(entry) = self.map.get_mut(key) else {
            return Answer::Array(Vec::new());
        };
        let ModelValue::ZSet(z) = &mut entry.value else {
            return wrongtype();
        };
        let mut out = Vec::new();
        let mut popped = 0u64;
        while popped < count {
            // The lowest score; among equal scores the smallest member (the map's order).
            let Some((member, score)) = z
                .iter()
                .fold(None::<(&Vec<u8>, f64)>, |best, (m, &s)| match best {
                    Some((_, bs)) if s >= bs => best,
                    _ => Some((m, s)),
                })
                .map(|(m, s)| (m.clone(), s))
            else {
                break;
            };
            z.remove(&member);
            if replies == Replies::Built {
                out.push(Answer::Bulk(member));
                out.push(Answer::Bulk(score_text(score).into_bytes()));
            }
            popped += 1;
        }
        if z.is_empty() {
            self.map.remove(key);
        }
        Answer::Array(out)
    }

    fn xadd(
        &mut self,
        key: &[u8],
        id: IdSpec,
        fields: &Pairs,
        maxlen: Option<u64>,
        replies: Replies,
    ) -> Answer {
        let last = match self.map.get(key).map(|e| &e.value) {
            None => Id::default(),
            Some(ModelValue::Stream { last_id, .. }) => *last_id,
            Some(_) => return wrongtype(),
        };
        // Redis refuses any XADD once the last possible id is taken, before looking at the id.
        if last == Id::MAX {
            return err(text::XADD_EXHAUSTED);
        }
        let new_id = match id {
            IdSpec::Given(id) if id <= last => return err(text::XADD_SMALL),
            IdSpec::Given(id) => id,
            IdSpec::Next if last.seq < u64::MAX => Id {
                ms: last.ms,
                seq: last.seq + 1,
            },
            IdSpec::Next => Id {
                ms: last.ms + 1,
                seq: 0,
            },
            IdSpec::Time(now) if now > last.ms => Id { ms: now, seq: 0 },
            IdSpec::Time(_) => return self.xadd(key, IdSpec::Next, fields, maxlen, replies),
            IdSpec::SeqFor(ms) if ms > last.ms => Id { ms, seq: 0 },
            IdSpec::SeqFor(ms) if ms == last.ms && last.seq < u64::MAX => Id {
                ms,
                seq: last.seq + 1,
            },
            IdSpec::SeqFor(_) => return err(text::XADD_SMALL),
        };
        let entry = self.map.entry(key.to_vec()).or_insert(ModelEntry {
            value: ModelValue::empty_stream(),
            expire_at_ms: None,
        });
        let ModelValue::Stream {
            entries, last_id, ..
        } = &mut entry.value
        else {
            unreachable!("type checked above");
        };
        entries.push((new_id, Arc::new(fields.clone())));
        *last_id = new_id;
        if let Some(maxlen) = maxlen {
            while entries.len() as u64 > maxlen {
                entries.remove(0);
            }
        }
        match replies {
            Replies::Built => Answer::Bulk(format!("{}-{}", new_id.ms, new_id.seq).into_bytes()),
            Replies::Skipped => Answer::Nil,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_text_is_c_printf() {
        assert_eq!(score_text(0.1), "0.10000000000000001");
        assert_eq!(score_text(3.0), "3");
        assert_eq!(score_text(f64::NEG_INFINITY), "-inf");
        assert_eq!(score_text(1e300), "1.0000000000000001e+300");
    }

    #[test]
    fn canonical_integers() {
        for ok in [
            "0",
            "-1",
            "42",
            "9223372036854775807",
            "-9223372036854775808",
        ] {
            assert!(parse_canonical_i64(ok.as_bytes()).is_some(), "{ok}");
        }
        for bad in ["", "-0", "+1", "01", " 1", "1.0", "9223372036854775808"] {
            assert_eq!(parse_canonical_i64(bad.as_bytes()), None, "{bad}");
        }
    }

    fn set(k: &str, v: &str) -> Op {
        Op::Set {
            key: k.as_bytes().to_vec(),
            value: v.as_bytes().to_vec(),
            cond: Cond::Any,
            expiry: Expiry::Remove,
            get: false,
        }
    }

    #[test]
    fn multi_is_exec_of_its_commands() {
        let mut m = Model::new();
        let reply = m.run(&Op::Multi(vec![
            set("s", "x"),
            Op::IncrBy {
                key: b"s".to_vec(),
                delta: 1,
            },
            Op::Get { key: b"s".to_vec() },
            set("t", "1"),
        ]));
        assert_eq!(
            reply,
            Answer::Array(vec![
                Answer::Ok,
                err(text::NOT_AN_INTEGER),
                Answer::Bulk(b"x".to_vec()),
                Answer::Ok,
            ])
        );
        assert_eq!(
            m.map.len(),
            2,
            "an error does not stop the commands after it"
        );
        let nested = Op::Multi(vec![set("u", "1"), Op::Multi(vec![set("v", "1")])]);
        assert_eq!(m.run(&nested), err(text::MULTI_NESTED));
        assert_eq!(m.map.len(), 2, "a nested transaction runs nothing");
    }

    #[test]
    fn incrby_keeps_expiry_and_set_clears_it() {
        let mut m = Model::new();
        let k = b"k".to_vec();
        m.run(&Op::IncrBy {
            key: k.clone(),
            delta: 5,
        });
        m.run(&Op::PExpireAt {
            key: k.clone(),
            at_ms: 9,
        });
        m.run(&Op::IncrBy {
            key: k.clone(),
            delta: 1,
        });
        assert_eq!(m.map[&k].expire_at_ms, Some(9));
        assert_eq!(m.map[&k].value, ModelValue::Str(b"6".to_vec()));
        m.run(&set("k", "x"));
        assert_eq!(m.map[&k].expire_at_ms, None);
    }

    #[test]
    fn set_options_follow_redis() {
        let mut m = Model::new();
        let opt = |v: &str, cond, expiry, get| Op::Set {
            key: b"k".to_vec(),
            value: v.as_bytes().to_vec(),
            cond,
            expiry,
            get,
        };
        assert_eq!(
            m.run(&opt("1", Cond::IfPresent, Expiry::Remove, true)),
            Answer::Nil
        );
        assert!(m.map.is_empty());
        assert_eq!(
            m.run(&opt("1", Cond::IfAbsent, Expiry::At(7), false)),
            Answer::Ok
        );
        assert_eq!(
            m.run(&opt("2", Cond::IfAbsent, Expiry::Remove, true)),
            Answer::Bulk(b"1".to_vec())
        );
        assert_eq!(m.run(&opt("3", Cond::Any, Expiry::Keep, false)), Answer::Ok);
        assert_eq!(m.map[&b"k".to_vec()].expire_at_ms, Some(7));
        m.run(&Op::Del { key: b"k".to_vec() });
        m.run(&Op::HSet {
            key: b"k".to_vec(),
            fields: vec![(b"f".to_vec(), b"v".to_vec())],
        });
        assert_eq!(
            m.run(&opt("4", Cond::Any, Expiry::Remove, true)),
            wrongtype()
        );
    }
}
