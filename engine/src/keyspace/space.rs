//! The keyspace itself: one map from key to [`Entry`] ([`super::store`], which also provides
//! copy-on-write point-in-time snapshots), and the command semantics.

use std::borrow::Cow;
use std::sync::Arc;

use super::chunk::SnapshotChunk;
use super::entry::{Entry, Value};
use super::hash::Hash;
use super::store::Store;
use super::stream::Stream;
use super::zset::{ZSet, format_score};
use super::{Command, FieldValue, Reply, SetCond, SetOptions, SetTtl, XAddId, msg};

/// The in-memory state. Deterministic: no clock, no randomness. Expiry is metadata that
/// [`Keyspace::apply`] never acts on; a caller that has a clock hides expired keys from
/// readers ([`Keyspace::live_entry`]) and removes them before a write touches them
/// ([`Keyspace::expired_keys`]), logging that removal so a replay stays deterministic.
///
/// Invariant: no key holds an empty hash or sorted set (a stream may be empty).
#[derive(Debug, Default, Clone)]
pub struct Keyspace {
    pub(super) map: Store,
}

fn error(text: &'static str) -> Reply {
    Reply::Error(text.to_owned())
}

fn wrongtype() -> Reply {
    error(msg::WRONGTYPE)
}

impl Keyspace {
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty keyspace with room for `keys` keys before it reallocates.
    pub fn with_capacity(keys: usize) -> Self {
        Keyspace {
            map: Store::with_capacity(keys),
        }
    }

    /// Applies `cmd` and returns its reply. Never panics on any input. A command that replies
    /// with [`Reply::Error`] changes nothing. A [`Command::Multi`] applies its sub-commands in
    /// order and replies with the array of their replies (one failing does not stop the rest).
    ///
    /// Copies only what it stores; for `SET` over an existing string it reuses the old buffer.
    pub fn apply(&mut self, cmd: &Command) -> Reply {
        if let Some(text) = cmd.arg_error() {
            return error(text);
        }
        match cmd {
            Command::Set { key, value } => self.set(Cow::Borrowed(key), Cow::Borrowed(value)),
            Command::Get { key } => self.get(key),
            Command::Del { key } => self.del(key),
            Command::SetNx { key, value } => self.setnx(Cow::Borrowed(key), Cow::Borrowed(value)),
            Command::IncrBy { key, delta } => self.incrby(Cow::Borrowed(key), *delta),
            Command::PExpireAt { key, at_ms } => self.pexpireat(key, *at_ms),
            Command::SetOpts { key, value, opts } => {
                self.set_opts(Cow::Borrowed(key), Cow::Borrowed(value), *opts)
            }
            Command::Persist { key } => self.persist(key),
            Command::HIncrBy { key, field, delta } => self.hincrby(key, field, *delta),
            Command::FlushAll => {
                self.map.clear();
                Reply::Ok
            }
            Command::HSet { key, fields } => self.hset(Cow::Borrowed(key), Cow::Borrowed(fields)),
            Command::HDel { key, fields } => self.hdel(key, fields),
            Command::ZAdd { key, members } => self.zadd(Cow::Borrowed(key), Cow::Borrowed(members)),
            Command::ZRem { key, members } => self.zrem(key, members),
            Command::ZPopMin { key, count } => self.zpopmin(key, *count),
            Command::XAdd {
                key,
                id,
                fields,
                maxlen,
            } => self.xadd(Cow::Borrowed(key), *id, Cow::Borrowed(fields), *maxlen),
            Command::XGroupCreate { .. }
            | Command::XGroupSetId { .. }
            | Command::XGroupDestroy { .. }
            | Command::XGroupCreateConsumer { .. }
            | Command::XGroupDelConsumer { .. }
            | Command::XReadGroup { .. }
            | Command::XAck { .. }
            | Command::XDel { .. }
            | Command::XClaim { .. }
            | Command::XAutoClaim { .. }
            | Command::XPending { .. }
            | Command::XInfoGroups { .. }
            | Command::XInfoConsumers { .. } => super::group_cmd::apply(&mut self.map, cmd)
                .unwrap_or_else(|| unreachable!("a consumer-group command")),
            // `arg_error` has refused nesting, so this recursion is one level deep.
            Command::Multi { cmds } => Reply::Array(cmds.iter().map(|c| self.apply(c)).collect()),
        }
    }

    /// Like [`Keyspace::apply`], but moves keys and values out of `cmd` instead of copying
    /// them: `SET` of a new or existing key is one hash-map operation and no allocation.
    pub fn apply_owned(&mut self, cmd: Command) -> Reply {
        if let Some(text) = cmd.arg_error() {
            return error(text);
        }
        match cmd {
            Command::Set { key, value } => self.set(Cow::Owned(key), Cow::Owned(value)),
            Command::SetNx { key, value } => self.setnx(Cow::Owned(key), Cow::Owned(value)),
            Command::SetOpts { key, value, opts } => {
                self.set_opts(Cow::Owned(key), Cow::Owned(value), opts)
            }
            Command::IncrBy { key, delta } => self.incrby(Cow::Owned(key), delta),
            Command::HSet { key, fields } => self.hset(Cow::Owned(key), Cow::Owned(fields)),
            Command::ZAdd { key, members } => self.zadd(Cow::Owned(key), Cow::Owned(members)),
            Command::XAdd {
                key,
                id,
                fields,
                maxlen,
            } => self.xadd(Cow::Owned(key), id, Cow::Owned(fields), maxlen),
            Command::Multi { cmds } => {
                Reply::Array(cmds.into_iter().map(|c| self.apply_owned(c)).collect())
            }
            // The rest store nothing from the command.
            other => self.apply(&other),
        }
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.len() == 0
    }

    /// The entry under `key`, if any.
    pub fn get_entry(&self, key: &[u8]) -> Option<&Entry> {
        self.map.get(key)
    }

    /// The entry under `key` unless it has expired at `now_ms` (Redis's rule: a key expires
    /// once the clock is past its expiry time). What a reader with a clock sees.
    pub fn live_entry(&self, key: &[u8], now_ms: u64) -> Option<&Entry> {
        self.map.get(key).filter(|e| !e.is_expired_at(now_ms))
    }

    /// The keys `cmd` addresses (a transaction's sub-commands' included, each once) that hold
    /// an entry expired at `now_ms`. A caller with a clock removes them (and logs the
    /// removal) before applying `cmd`, so that `cmd` sees them absent, as Redis's lazy expiry
    /// does. [`Command::FlushAll`] addresses no key in particular: it removes all of them.
    pub fn expired_keys(&self, cmd: &Command, now_ms: u64) -> Vec<Vec<u8>> {
        let mut out: Vec<Vec<u8>> = Vec::new();
        let mut visit = |key: &[u8]| {
            if self.map.get(key).is_some_and(|e| e.is_expired_at(now_ms))
                && !out.iter().any(|k| k == key)
            {
                out.push(key.to_vec());
            }
        };
        match cmd {
            Command::Multi { cmds } => cmds.iter().filter_map(Command::key).for_each(&mut visit),
            other => other.key().into_iter().for_each(visit),
        }
        out
    }

    /// Every key at which `self` may differ from `base`, a keyspace it was cloned from: keys
    /// written or added since the clone and keys removed since (possibly some twice). Every
    /// other key holds in both the same shared entry, never written in place, so equal. What
    /// lets a checker compare a recovered keyspace with a verified one in time proportional to
    /// what changed (the crash lab, `durlab_harness::oracle`). For keyspaces not cloned from
    /// one another it lists about every key.
    ///
    /// For a keyspace lent from `base` to the recovery that made it (`crate::ReplayBase`), the
    /// keys come from its undo journal, without a pass over `base` (`docs/engine.md`,
    /// "Lending a replay base's keyspace").
    pub fn changed_keys<'a>(&'a self, base: &'a Keyspace) -> Vec<&'a [u8]> {
        self.map.changed_keys(&base.map)
    }

    /// Marks this keyspace as a replay base's state, never written again (see
    /// [`Keyspace::lend_from`]), keeping every change if it was lent; returns its lineage.
    pub(crate) fn mark_base(&mut self) -> u64 {
        self.map.mark_base()
    }

    /// Lends this keyspace, equal to `base` (marked: [`Keyspace::mark_base`]), to one
    /// recovery: from now on every change is journaled, [`Keyspace::changed_keys`] against
    /// `base` lists the journal's keys, and [`Keyspace::put_back`] undoes the changes.
    pub(crate) fn lend_from(&mut self, base: &Keyspace) {
        self.map.begin_journal(&base.map);
    }

    /// Undoes every change since [`Keyspace::lend_from`]: the keyspace is again exactly its
    /// base's. False, with nothing changed, when it was not lent or its journal was dropped
    /// for holding too many changes.
    #[must_use]
    pub(crate) fn put_back(&mut self) -> bool {
        self.map.undo_journal()
    }

    /// Every key with its entry, in no particular order (hash-map order: not stable across
    /// runs; sort the keys for a canonical order).
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&[u8], &Entry)> + '_ {
        self.map.iter()
    }

    /// Stores `entry` under `key` (for loading a snapshot) and returns the entry it replaced.
    /// An empty hash or sorted set cannot exist, so inserting one removes `key` instead.
    pub fn insert_entry(&mut self, key: Vec<u8>, entry: Entry) -> Option<Entry> {
        let empty = match &entry.value {
            Value::Hash(h) => h.is_empty(),
            Value::ZSet(z) => z.is_empty(),
            Value::Str(_) | Value::Stream(_) => false,
        };
        let old = if empty {
            self.map.remove(&key)
        } else {
            self.map.replace(key, entry)
        };
        old.map(Arc::unwrap_or_clone)
    }

    /// Makes room for `additional` more keys.
    pub fn reserve(&mut self, additional: usize) {
        self.map.reserve(additional);
    }

    /// Removes `key`, returning its entry.
    pub fn remove_entry(&mut self, key: &[u8]) -> Option<Entry> {
        self.map.remove(key).map(Arc::unwrap_or_clone)
    }

    /// Removes every key.
    pub fn clear(&mut self) {
        self.map.clear();
    }

    /// Starts a point-in-time snapshot of the current state, to be read with
    /// [`Keyspace::snapshot_chunk`] while commands go on being applied. A snapshot already
    /// active is abandoned.
    pub(crate) fn begin_snapshot(&mut self) {
        self.map.begin_snapshot();
    }

    /// Appends the next entries of the active snapshot (about `max_slots` at most, plus
    /// pre-images saved since the last call) to `out`; true once the snapshot is complete.
    pub(crate) fn snapshot_chunk(&mut self, max_slots: usize, out: &mut SnapshotChunk) -> bool {
        self.map.snapshot_chunk(max_slots, out)
    }

    /// Abandons the active snapshot, if any (stops the pre-image bookkeeping).
    pub(crate) fn abort_snapshot(&mut self) {
        self.map.abort_snapshot();
    }

    /// True while a point-in-time snapshot is being read.
    pub fn snapshot_active(&self) -> bool {
        self.map.snapshot_active()
    }

    /// Panics if any invariant is broken: an empty hash or sorted set, a sorted set whose two
    /// indexes disagree, a stream out of order. O(total size); for tests.
    pub fn assert_invariants(&self) {
        for (key, entry) in self.map.iter() {
            match &entry.value {
                Value::Str(_) => {}
                Value::Hash(h) => assert!(!h.is_empty(), "empty hash under {key:?}"),
                Value::ZSet(z) => {
                    assert!(!z.is_empty(), "empty zset under {key:?}");
                    z.assert_invariants();
                }
                Value::Stream(s) => s.assert_invariants(),
            }
        }
    }

    fn set(&mut self, key: Cow<'_, [u8]>, value: Cow<'_, [u8]>) -> Reply {
        match (key, value) {
            (Cow::Owned(key), Cow::Owned(value)) => {
                self.map.put(key, Entry::new(Value::Str(value)));
            }
            (key, value) => match self.map.get_mut(key.as_ref()) {
                Some(entry) => {
                    entry.expire_at_ms = None;
                    match (&mut entry.value, value) {
                        // Reuse the old buffer unless that would pin a much larger one.
                        (Value::Str(buf), Cow::Borrowed(v))
                            if buf.capacity() <= 2 * v.len() + 64 =>
                        {
                            buf.clear();
                            buf.extend_from_slice(v);
                        }
                        (slot, value) => *slot = Value::Str(value.into_owned()),
                    }
                }
                None => {
                    self.map
                        .put(key.into_owned(), Entry::new(Value::Str(value.into_owned())));
                }
            },
        }
        Reply::Ok
    }

    fn set_opts(&mut self, key: Cow<'_, [u8]>, value: Cow<'_, [u8]>, opts: SetOptions) -> Reply {
        let existing = self.map.get(key.as_ref());
        // GET is answered (and a wrong type refused) before the condition is checked, as
        // Redis does.
        let old = match existing.map(|e| &e.value) {
            _ if !opts.get => None,
            None => Some(Reply::Nil),
            Some(Value::Str(v)) => Some(Reply::Bulk(v.clone())),
            Some(_) => return wrongtype(),
        };
        let blocked = match opts.cond {
            SetCond::Always => false,
            SetCond::Nx => existing.is_some(),
            SetCond::Xx => existing.is_none(),
        };
        if blocked {
            return old.unwrap_or(Reply::Nil);
        }
        let expire_at_ms = match opts.ttl {
            SetTtl::Clear => None,
            SetTtl::Keep => existing.and_then(|e| e.expire_at_ms),
            SetTtl::At(at_ms) => Some(at_ms),
        };
        self.map.put(
            key.into_owned(),
            Entry {
                value: Value::Str(value.into_owned()),
                expire_at_ms,
            },
        );
        old.unwrap_or(Reply::Ok)
    }

    fn persist(&mut self, key: &[u8]) -> Reply {
        // Read first: `get_mut` would copy an entry a snapshot shares even when nothing changes.
        if self.map.get(key).and_then(|e| e.expire_at_ms).is_none() {
            return Reply::Int(0);
        }
        if let Some(entry) = self.map.get_mut(key) {
            entry.expire_at_ms = None;
        }
        Reply::Int(1)
    }

    fn hincrby(&mut self, key: &[u8], field: &[u8], delta: i64) -> Reply {
        let current = match self.map.get(key).map(|e| &e.value) {
            None => None,
            Some(Value::Hash(h)) => h.get(field),
            Some(_) => return wrongtype(),
        };
        let current = match current {
            None => 0,
            Some(text) => match parse_i64(text) {
                Some(n) => n,
                None => return error(msg::HASH_NOT_AN_INTEGER),
            },
        };
        let Some(new) = current.checked_add(delta) else {
            return error(msg::INCR_OVERFLOW);
        };
        let mut text = Vec::with_capacity(20);
        push_i64(&mut text, new);
        match self.map.get_mut(key) {
            Some(entry) => {
                if let Value::Hash(hash) = &mut entry.value {
                    hash.insert(field.to_vec(), text);
                }
            }
            None => {
                let mut hash = Hash::new();
                hash.insert(field.to_vec(), text);
                self.map.put(key.to_vec(), Entry::new(Value::Hash(hash)));
            }
        }
        Reply::Int(new)
    }

    fn get(&self, key: &[u8]) -> Reply {
        match self.map.get(key).map(|e| &e.value) {
            None => Reply::Nil,
            Some(Value::Str(v)) => Reply::Bulk(v.clone()),
            Some(_) => wrongtype(),
        }
    }

    fn del(&mut self, key: &[u8]) -> Reply {
        Reply::Int(i64::from(self.map.remove(key).is_some()))
    }

    fn setnx(&mut self, key: Cow<'_, [u8]>, value: Cow<'_, [u8]>) -> Reply {
        if self.map.contains_key(key.as_ref()) {
            return Reply::Int(0);
        }
        self.map
            .put(key.into_owned(), Entry::new(Value::Str(value.into_owned())));
        Reply::Int(1)
    }

    fn incrby(&mut self, key: Cow<'_, [u8]>, delta: i64) -> Reply {
        match self.map.get_mut(key.as_ref()) {
            Some(entry) => {
                let Value::Str(buf) = &mut entry.value else {
                    return wrongtype();
                };
                let Some(current) = parse_i64(buf) else {
                    return error(msg::NOT_AN_INTEGER);
                };
                let Some(new) = current.checked_add(delta) else {
                    return error(msg::INCR_OVERFLOW);
                };
                buf.clear();
                push_i64(buf, new);
                Reply::Int(new)
            }
            None => {
                let mut buf = Vec::with_capacity(20);
                push_i64(&mut buf, delta);
                self.map.put(key.into_owned(), Entry::new(Value::Str(buf)));
                Reply::Int(delta)
            }
        }
    }

    fn pexpireat(&mut self, key: &[u8], at_ms: u64) -> Reply {
        match self.map.get_mut(key) {
            Some(entry) => {
                entry.expire_at_ms = Some(at_ms);
                Reply::Int(1)
            }
            None => Reply::Int(0),
        }
    }

    fn hset(&mut self, key: Cow<'_, [u8]>, fields: Cow<'_, [FieldValue]>) -> Reply {
        fn fill(hash: &mut Hash, fields: Cow<'_, [FieldValue]>) -> i64 {
            let mut added = 0;
            match fields {
                Cow::Owned(fields) => {
                    for (f, v) in fields {
                        added += i64::from(hash.insert(f, v));
                    }
                }
                Cow::Borrowed(fields) => {
                    for (f, v) in fields {
                        added += i64::from(hash.insert(f.clone(), v.clone()));
                    }
                }
            }
            added
        }
        match self.map.get_mut(key.as_ref()) {
            Some(entry) => match &mut entry.value {
                Value::Hash(hash) => Reply::Int(fill(hash, fields)),
                _ => wrongtype(),
            },
            None => {
                let mut hash = Hash::new();
                let added = fill(&mut hash, fields);
                debug_assert!(!hash.is_empty());
                self.map
                    .put(key.into_owned(), Entry::new(Value::Hash(hash)));
                Reply::Int(added)
            }
        }
    }

    fn hdel(&mut self, key: &[u8], fields: &[Vec<u8>]) -> Reply {
        let Some(entry) = self.map.get_mut(key) else {
            return Reply::Int(0);
        };
        let Value::Hash(hash) = &mut entry.value else {
            return wrongtype();
        };
        let removed = fields.iter().filter(|f| hash.remove(f)).count();
        if hash.is_empty() {
            self.map.remove(key);
        }
        Reply::Int(count_i64(removed))
    }

    fn zadd(&mut self, key: Cow<'_, [u8]>, members: Cow<'_, [(f64, Vec<u8>)]>) -> Reply {
        // `arg_error` has ruled out NaN, so `insert` cannot fail here.
        fn fill(zset: &mut ZSet, members: Cow<'_, [(f64, Vec<u8>)]>) -> i64 {
            let mut added = 0;
            match members {
                Cow::Owned(members) => {
                    for (score, m) in members {
                        added += i64::from(zset.insert(score, m) == Ok(true));
                    }
                }
                Cow::Borrowed(members) => {
                    for (score, m) in members {
                        // Skip the copy when nothing changes.
                        if zset.score(m).map(f64::to_bits) != Some((*score + 0.0).to_bits()) {
                            added += i64::from(zset.insert(*score, m.clone()) == Ok(true));
                        }
                    }
                }
            }
            added
        }
        match self.map.get_mut(key.as_ref()) {
            Some(entry) => match &mut entry.value {
                Value::ZSet(zset) => Reply::Int(fill(zset, members)),
                _ => wrongtype(),
            },
            None => {
                let mut zset = ZSet::new();
                let added = fill(&mut zset, members);
                debug_assert!(!zset.is_empty());
                self.map
                    .put(key.into_owned(), Entry::new(Value::ZSet(zset)));
                Reply::Int(added)
            }
        }
    }

    fn zrem(&mut self, key: &[u8], members: &[Vec<u8>]) -> Reply {
        let Some(entry) = self.map.get_mut(key) else {
            return Reply::Int(0);
        };
        let Value::ZSet(zset) = &mut entry.value else {
            return wrongtype();
        };
        let removed = members.iter().filter(|m| zset.remove(m)).count();
        if zset.is_empty() {
            self.map.remove(key);
        }
        Reply::Int(count_i64(removed))
    }

    fn zpopmin(&mut self, key: &[u8], count: u64) -> Reply {
        let Some(entry) = self.map.get_mut(key) else {
            return Reply::Array(Vec::new());
        };
        let Value::ZSet(zset) = &mut entry.value else {
            return wrongtype();
        };
        let n = usize::try_from(count).unwrap_or(usize::MAX).min(zset.len());
        let mut out = Vec::with_capacity(2 * n);
        for _ in 0..n {
            let Some((score, member)) = zset.pop_min() else {
                break;
            };
            out.push(Reply::Bulk(member));
            out.push(Reply::Bulk(format_score(score).into_bytes()));
        }
        if zset.is_empty() {
            self.map.remove(key);
        }
        Reply::Array(out)
    }

    fn xadd(
        &mut self,
        key: Cow<'_, [u8]>,
        id: XAddId,
        fields: Cow<'_, [FieldValue]>,
        maxlen: Option<u64>,
    ) -> Reply {
        fn add(
            stream: &mut Stream,
            id: XAddId,
            fields: Cow<'_, [FieldValue]>,
            maxlen: Option<u64>,
        ) -> Reply {
            // Pick the id first so that a bad id costs no copy of the fields.
            let id = match stream.next_id(id) {
                Ok(id) => id,
                Err(e) => return Reply::Error(e.to_string()),
            };
            if let Err(e) = stream.add(XAddId::Explicit(id), fields.into_owned()) {
                return Reply::Error(e.to_string());
            }
            if let Some(maxlen) = maxlen {
                stream.trim(maxlen);
            }
            Reply::Bulk(id.to_string().into_bytes())
        }
        match self.map.get_mut(key.as_ref()) {
            Some(entry) => match &mut entry.value {
                Value::Stream(stream) => add(stream, id, fields, maxlen),
                _ => wrongtype(),
            },
            None => {
                let mut stream = Stream::new();
                let reply = add(&mut stream, id, fields, maxlen);
                if !matches!(reply, Reply::Error(_)) {
                    self.map
                        .put(key.into_owned(), Entry::new(Value::Stream(stream)));
                }
                reply
            }
        }
    }
}

fn count_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Parses a canonical `i64` decimal as Redis's `string2ll` does: optional `-`, no `+`, no
/// leading zeros, no `-0`, no spaces.
fn parse_i64(bytes: &[u8]) -> Option<i64> {
    let digits = bytes.strip_prefix(b"-").unwrap_or(bytes);
    let canonical = match digits {
        [] => false,
        [b'0'] => bytes.len() == 1,
        [first, rest @ ..] => (b'1'..=b'9').contains(first) && rest.iter().all(u8::is_ascii_digit),
    };
    if !canonical || bytes.len() > 20 {
        return None;
    }
    // ASCII digits and '-' only, so valid UTF-8; `parse` catches out-of-range values.
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

/// Appends the decimal text of `n` without allocating a temporary string.
fn push_i64(out: &mut Vec<u8>, n: i64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut rest = n.unsigned_abs();
    loop {
        i -= 1;
        digits[i] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    if n < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(&digits[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_i64_is_strict() {
        for ok in [
            "0",
            "1",
            "-1",
            "9223372036854775807",
            "-9223372036854775808",
            "10",
        ] {
            assert_eq!(parse_i64(ok.as_bytes()), ok.parse().ok(), "{ok}");
        }
        for bad in [
            "",
            "-",
            "-0",
            "01",
            "+1",
            " 1",
            "1 ",
            "1.0",
            "9223372036854775808",
            "-9223372036854775809",
            "00",
            "1e3",
            "99999999999999999999",
        ] {
            assert_eq!(parse_i64(bad.as_bytes()), None, "{bad}");
        }
    }

    #[test]
    fn push_i64_matches_display() {
        for n in [0, 1, -1, 42, -1000, i64::MAX, i64::MIN] {
            let mut out = Vec::new();
            push_i64(&mut out, n);
            assert_eq!(out, n.to_string().into_bytes());
        }
    }

    #[test]
    fn set_reuses_buffer() {
        let mut ks = Keyspace::new();
        ks.apply(&Command::Set {
            key: b"k".to_vec(),
            value: vec![1; 64],
        });
        let before = match &ks.get_entry(b"k").unwrap().value {
            Value::Str(v) => v.as_ptr(),
            _ => unreachable!(),
        };
        ks.apply(&Command::Set {
            key: b"k".to_vec(),
            value: vec![2; 64],
        });
        let Value::Str(after) = &ks.get_entry(b"k").unwrap().value else {
            unreachable!()
        };
        assert_eq!(after.as_ptr(), before);
        assert_eq!(after, &vec![2; 64]);
    }
}
