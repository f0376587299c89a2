//! The oracle's model: a second, deliberately plain implementation of the command set.
//!
//! Plain `BTreeMap`s and `Vec`s, no code shared with `durlab_engine::keyspace` (only the
//! [`Command`] and [`Reply`] types and the error texts of `keyspace::msg`). Sorted sets keep
//! member → score and find the minimum by a scan; streams are a `Vec`. Slow, and obviously
//! right: that is the point.
//!
//! Semantics mirrored (Redis 7 as the engine documents it): `SET` clears the expiry, `INCRBY`
//! keeps it; `HDEL`, `ZREM` and `ZPOPMIN` delete a key they empty; a command on a key of
//! another type replies WRONGTYPE and changes nothing; scores `-0.0` are stored as `0.0`;
//! `XADD` with an automatic id takes `last.ms-(last.seq+1)` (`0-1` for a new stream, `ms+1-0`
//! when seq overflows), `MAXLEN` trims exactly and a stream keeps its last id even when empty;
//! malformed argument lists (no fields, NaN score, XADD id `0-0`) change nothing. A transaction
//! (`Command::Multi`) is Redis's EXEC: each queued command runs in order and gets its own reply
//! in the array reply, an error reply does not stop the others; a transaction inside a
//! transaction is refused as a whole (Redis refuses `MULTI` inside `MULTI`).

use std::collections::BTreeMap;

use durlab_engine::keyspace::msg;
use durlab_engine::keyspace::{SetCond, SetOptions, SetTtl, StreamId, XAddId};
use durlab_engine::{Command, Reply};

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
        entries: Vec<(StreamId, Pairs)>,
        last_id: StreamId,
    },
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

fn err(text: &str) -> Reply {
    Reply::Error(text.to_string())
}

fn wrongtype() -> Reply {
    err(msg::WRONGTYPE)
}

/// The command's error reply if its arguments are malformed whatever the state.
fn malformed(cmd: &Command) -> Option<&'static str> {
    match cmd {
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
        Command::Multi { cmds } if cmds.iter().any(|c| matches!(c, Command::Multi { .. })) => {
            Some(msg::MULTI_NESTED)
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

    /// Applies `cmd` and returns its reply.
    pub fn apply(&mut self, cmd: &Command) -> Reply {
        if let Some(text) = malformed(cmd) {
            return err(text);
        }
        match cmd {
            Command::Set { key, value } => {
                self.put(key, ModelValue::Str(value.clone()));
                Reply::Ok
            }
            Command::Get { key } => match self.map.get(key).map(|e| &e.value) {
                None => Reply::Nil,
                Some(ModelValue::Str(v)) => Reply::Bulk(v.clone()),
                Some(_) => wrongtype(),
            },
            Command::Del { key } => Reply::Int(i64::from(self.map.remove(key).is_some())),
            Command::SetNx { key, value } => {
                if self.map.contains_key(key) {
                    Reply::Int(0)
                } else {
                    self.put(key, ModelValue::Str(value.clone()));
                    Reply::Int(1)
                }
            }
            Command::IncrBy { key, delta } => self.incrby(key, *delta),
            Command::PExpireAt { key, at_ms } => match self.map.get_mut(key) {
                Some(e) => {
                    e.expire_at_ms = Some(*at_ms);
                    Reply::Int(1)
                }
                None => Reply::Int(0),
            },
            Command::SetOpts { key, value, opts } => self.set_opts(key, value, *opts),
            Command::Persist { key } => match self.map.get_mut(key) {
                Some(e) if e.expire_at_ms.is_some() => {
                    e.expire_at_ms = None;
                    Reply::Int(1)
                }
                _ => Reply::Int(0),
            },
            Command::HIncrBy { key, field, delta } => self.hincrby(key, field, *delta),
            Command::FlushAll => {
                self.map.clear();
                Reply::Ok
            }
            Command::HSet { key, fields } => self.hset(key, fields),
            Command::HDel { key, fields } => self.remove_items(key, fields, true),
            Command::ZAdd { key, members } => self.zadd(key, members),
            Command::ZRem { key, members } => self.remove_items(key, members, false),
            Command::ZPopMin { key, count } => self.zpopmin(key, *count),
            Command::XAdd {
                key,
                id,
                fields,
                maxlen,
            } => self.xadd(key, *id, fields, *maxlen),
            Command::Multi { cmds } => {
                let mut replies = Vec::new();
                for queued in cmds {
                    replies.push(self.apply(queued));
                }
                Reply::Array(replies)
            }
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

    fn incrby(&mut self, key: &[u8], delta: i64) -> Reply {
        let Some(entry) = self.map.get_mut(key) else {
            self.put(key, ModelValue::Str(delta.to_string().into_bytes()));
            return Reply::Int(delta);
        };
        let ModelValue::Str(text) = &mut entry.value else {
            return wrongtype();
        };
        let Some(current) = parse_canonical_i64(text) else {
            return err(msg::NOT_AN_INTEGER);
        };
        let Some(sum) = current.checked_add(delta) else {
            return err(msg::INCR_OVERFLOW);
        };
        *text = sum.to_string().into_bytes();
        Reply::Int(sum)
    }

    /// `SET` with options: the old value is read (GET), then the condition decides.
    fn set_opts(&mut self, key: &[u8], value: &[u8], opts: SetOptions) -> Reply {
        let old = self.map.get(key);
        let old_reply = match old.map(|e| &e.value) {
            None => Reply::Nil,
            Some(ModelValue::Str(v)) => Reply::Bulk(v.clone()),
            Some(_) if opts.get => return wrongtype(),
            Some(_) => Reply::Nil,
        };
        let skip = match opts.cond {
            SetCond::Always => false,
            SetCond::Nx => old.is_some(),
            SetCond::Xx => old.is_none(),
        };
        let reply = if opts.get {
            old_reply
        } else if skip {
            Reply::Nil
        } else {
            Reply::Ok
        };
        if skip {
            return reply;
        }
        let expire_at_ms = match opts.ttl {
            SetTtl::Clear => None,
            SetTtl::Keep => old.and_then(|e| e.expire_at_ms),
            SetTtl::At(t) => Some(t),
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

    fn hincrby(&mut self, key: &[u8], field: &[u8], delta: i64) -> Reply {
        let current = match self.map.get(key).map(|e| &e.value) {
            None => None,
            Some(ModelValue::Hash(h)) => h.get(field),
            Some(_) => return wrongtype(),
        };
        let current = match current.map(|t| parse_canonical_i64(t)) {
            None => 0,
            Some(Some(n)) => n,
            Some(None) => return err(msg::HASH_NOT_AN_INTEGER),
        };
        let Some(sum) = current.checked_add(delta) else {
            return err(msg::INCR_OVERFLOW);
        };
        self.hset(key, &[(field.to_vec(), sum.to_string().into_bytes())]);
        Reply::Int(sum)
    }

    fn hset(&mut self, key: &[u8], fields: &[(Vec<u8>, Vec<u8>)]) -> Reply {
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
        Reply::Int(added)
    }

    /// `HDEL` (`hash`) or `ZREM`: removes items, deleting the key when it becomes empty.
    fn remove_items(&mut self, key: &[u8], items: &[Vec<u8>], hash: bool) -> Reply {
        let Some(entry) = self.map.get_mut(key) else {
            return Reply::Int(0);
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
        Reply::Int(removed)
    }

    fn zadd(&mut self, key: &[u8], members: &[(f64, Vec<u8>)]) -> Reply {
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
        Reply::Int(added)
    }

    fn zpopmin(&mut self, key: &[u8], count: u64) -> Reply {
        let Some(entry) = self.map.get_mut(key) else {
            return Reply::Array(Vec::new());
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
            out.push(Reply::Bulk(member));
            out.push(Reply::Bulk(score_text(score).into_bytes()));
            popped += 1;
        }
        if z.is_empty() {
            self.map.remove(key);
        }
        Reply::Array(out)
    }

    fn xadd(&mut self, key: &[u8], id: XAddId, fields: &Pairs, maxlen: Option<u64>) -> Reply {
        let last = match self.map.get(key).map(|e| &e.value) {
            None => StreamId::default(),
            Some(ModelValue::Stream { last_id, .. }) => *last_id,
            Some(_) => return wrongtype(),
        };
        // Redis refuses any XADD once the last possible id is taken, before looking at the id.
        if last
            == (StreamId {
                ms: u64::MAX,
                seq: u64::MAX,
            })
        {
            return err(msg::XADD_ID_EXHAUSTED);
        }
        let new_id = match id {
            XAddId::Explicit(id) if id <= last => return err(msg::XADD_ID_TOO_SMALL),
            XAddId::Explicit(id) => id,
            XAddId::Auto if last.seq < u64::MAX => StreamId {
                ms: last.ms,
                seq: last.seq + 1,
            },
            XAddId::Auto if last.ms < u64::MAX => StreamId {
                ms: last.ms + 1,
                seq: 0,
            },
            XAddId::Auto => return err(msg::XADD_ID_EXHAUSTED),
            XAddId::Time { now_ms } if now_ms > last.ms => StreamId { ms: now_ms, seq: 0 },
            XAddId::Time { .. } => return self.xadd(key, XAddId::Auto, fields, maxlen),
            XAddId::AutoSeq { ms } if ms > last.ms => StreamId { ms, seq: 0 },
            XAddId::AutoSeq { ms } if ms == last.ms && last.seq < u64::MAX => StreamId {
                ms,
                seq: last.seq + 1,
            },
            XAddId::AutoSeq { .. } => return err(msg::XADD_ID_TOO_SMALL),
        };
        let entry = self.map.entry(key.to_vec()).or_insert(ModelEntry {
            value: ModelValue::Stream {
                entries: Vec::new(),
                last_id: StreamId::default(),
            },
            expire_at_ms: None,
        });
        let ModelValue::Stream { entries, last_id } = &mut entry.value else {
            unreachable!("type checked above");
        };
        entries.push((new_id, fields.clone()));
        *last_id = new_id;
        if let Some(maxlen) = maxlen {
            while entries.len() as u64 > maxlen {
                entries.remove(0);
            }
        }
        Reply::Bulk(format!("{}-{}", new_id.ms, new_id.seq).into_bytes())
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

    #[test]
    fn multi_is_exec_of_its_commands() {
        let mut m = Model::new();
        let set = |k: &str, v: &str| Command::Set {
            key: k.as_bytes().to_vec(),
            value: v.as_bytes().to_vec(),
        };
        let reply = m.apply(&Command::Multi {
            cmds: vec![
                set("s", "x"),
                Command::IncrBy {
                    key: b"s".to_vec(),
                    delta: 1,
                },
                Command::Get { key: b"s".to_vec() },
                set("t", "1"),
            ],
        });
        assert_eq!(
            reply,
            Reply::Array(vec![
                Reply::Ok,
                err(msg::NOT_AN_INTEGER),
                Reply::Bulk(b"x".to_vec()),
                Reply::Ok,
            ])
        );
        assert_eq!(
            m.map.len(),
            2,
            "an error does not stop the commands after it"
        );
        let nested = Command::Multi {
            cmds: vec![
                set("u", "1"),
                Command::Multi {
                    cmds: vec![set("v", "1")],
                },
            ],
        };
        assert_eq!(m.apply(&nested), err(msg::MULTI_NESTED));
        assert_eq!(m.map.len(), 2, "a nested transaction runs nothing");
    }

    #[test]
    fn incrby_keeps_expiry_and_set_clears_it() {
        let mut m = Model::new();
        let k = b"k".to_vec();
        m.apply(&Command::IncrBy {
            key: k.clone(),
            delta: 5,
        });
        m.apply(&Command::PExpireAt {
            key: k.clone(),
            at_ms: 9,
        });
        m.apply(&Command::IncrBy {
            key: k.clone(),
            delta: 1,
        });
        assert_eq!(m.map[&k].expire_at_ms, Some(9));
        assert_eq!(m.map[&k].value, ModelValue::Str(b"6".to_vec()));
        m.apply(&Command::Set {
            key: k.clone(),
            value: b"x".to_vec(),
        });
        assert_eq!(m.map[&k].expire_at_ms, None);
    }
}
