//! Comparing a recovered engine state with the oracle's. [`compare_keyspace`] first checks the
//! engine's keyspace against the model directly, key by key through lookups (no copies: the
//! common case of a crash image, which must be cheap); only when they differ are both turned
//! into one canonical form (keys sorted, fields sorted, scores as bits), digested, and diffed
//! key by key ([`compare`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use durlab_engine::Keyspace;
use durlab_engine::keyspace::{
    ClaimTime, Entry, GroupStart, ReadStart, SetCond, SetTtl, StreamId, Value, XAddId,
};
use durlab_engine::{Command, Reply};

use super::deliveries::{GroupView, GroupViews};
use super::groups::{self, ClaimAt, ClaimExtra};
use super::model::{
    Answer, Cond, Expiry, Group, Id, IdSpec, Model, ModelEntry, ModelValue, Op, Pairs,
};

/// One value in canonical form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Canon {
    Str(Vec<u8>),
    /// Fields in byte order.
    Hash(Pairs),
    /// `(member, score bits)` in member byte order.
    ZSet(Vec<(Vec<u8>, u64)>),
    Stream {
        last_id: StreamId,
        entries: Vec<(StreamId, Pairs)>,
        /// Consumer groups in name order.
        groups: Vec<CanonGroup>,
    },
}

/// One consumer group in canonical form. Times are `None` where the state was read from a
/// RESP server, whose delivery and seen times are its own clock's (and then the oracle's are
/// dropped too, [`untimed`]); from the engine and the model they are the commands' `now_ms`,
/// the workload's clock, and compared exactly. `entries-read` is not compared (the model does
/// not keep it: oracle/groups.rs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanonGroup {
    pub name: Vec<u8>,
    pub last_delivered: StreamId,
    /// The pending entries list in id order.
    pub pending: Vec<CanonPending>,
    /// Consumers in name order, with their seen times.
    pub consumers: Vec<(Vec<u8>, Option<u64>)>,
}

/// One pending entry in canonical form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanonPending {
    pub id: StreamId,
    pub consumer: Vec<u8>,
    pub deliveries: u64,
    pub delivered_at_ms: Option<u64>,
}

/// `state` without delivery and seen times (for a comparison with a RESP server's state).
pub fn untimed(mut state: CanonState) -> CanonState {
    for e in state.values_mut() {
        if let Canon::Stream { groups, .. } = &mut e.value {
            for g in groups {
                g.pending.iter_mut().for_each(|p| p.delivered_at_ms = None);
                g.consumers.iter_mut().for_each(|c| c.1 = None);
            }
        }
    }
    state
}

fn engine_group(name: &[u8], g: &durlab_engine::keyspace::Group) -> CanonGroup {
    CanonGroup {
        name: name.to_vec(),
        last_delivered: g.last_id,
        pending: g
            .pel()
            .iter()
            .map(|(id, p)| CanonPending {
                id: *id,
                consumer: p.consumer.clone(),
                deliveries: p.delivery_count,
                delivered_at_ms: Some(p.delivery_time_ms),
            })
            .collect(),
        consumers: g
            .consumers()
            .iter()
            .map(|(n, c)| (n.clone(), Some(c.seen_time_ms)))
            .collect(),
    }
}

fn model_group(name: &[u8], g: &Group) -> CanonGroup {
    CanonGroup {
        name: name.to_vec(),
        last_delivered: stream_id(g.last_delivered),
        pending: g
            .pel
            .iter()
            .map(|(id, p)| CanonPending {
                id: stream_id(*id),
                consumer: p.consumer.clone(),
                deliveries: p.deliveries,
                delivered_at_ms: Some(p.delivered_at_ms),
            })
            .collect(),
        consumers: g
            .consumers
            .iter()
            .map(|(n, c)| (n.clone(), Some(c.seen_at_ms)))
            .collect(),
    }
}

/// A key's canonical value and expiry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanonEntry {
    pub value: Canon,
    pub expire_at_ms: Option<u64>,
}

/// A whole state in canonical form, keys in byte order.
pub type CanonState = BTreeMap<Vec<u8>, CanonEntry>;

/// The engine's keyspace in canonical form, read only through its public accessors.
pub fn from_engine(ks: &Keyspace) -> CanonState {
    ks.iter()
        .map(|(key, entry)| {
            let value = match &entry.value {
                Value::Str(v) => Canon::Str(v.clone()),
                Value::Hash(h) => {
                    Canon::Hash(h.iter().map(|(f, v)| (f.to_vec(), v.to_vec())).collect())
                }
                Value::ZSet(z) => {
                    let mut pairs: Vec<_> =
                        z.iter().map(|(s, m)| (m.to_vec(), s.to_bits())).collect();
                    pairs.sort();
                    Canon::ZSet(pairs)
                }
                Value::Stream(s) => Canon::Stream {
                    last_id: s.last_id(),
                    entries: s.iter().map(|(id, f)| (id, f.to_vec())).collect(),
                    groups: s.groups().map(|(n, g)| engine_group(n, g)).collect(),
                },
            };
            (
                key.to_vec(),
                CanonEntry {
                    value,
                    expire_at_ms: entry.expire_at_ms,
                },
            )
        })
        .collect()
}

/// The oracle's model in canonical form.
pub fn from_model(m: &Model) -> CanonState {
    m.map
        .iter()
        .map(|(key, entry)| {
            let value = match &entry.value {
                ModelValue::Str(v) => Canon::Str(v.clone()),
                ModelValue::Hash(h) => {
                    Canon::Hash(h.iter().map(|(f, v)| (f.clone(), v.clone())).collect())
                }
                ModelValue::ZSet(z) => {
                    Canon::ZSet(z.iter().map(|(m, s)| (m.clone(), s.to_bits())).collect())
                }
                ModelValue::Stream {
                    entries,
                    last_id,
                    groups,
                } => Canon::Stream {
                    last_id: stream_id(*last_id),
                    entries: entries
                        .iter()
                        .map(|(id, pairs)| (stream_id(*id), pairs.to_vec()))
                        .collect(),
                    groups: groups.iter().map(|(n, g)| model_group(n, g)).collect(),
                },
            };
            (
                key.clone(),
                CanonEntry {
                    value,
                    expire_at_ms: entry.expire_at_ms,
                },
            )
        })
        .collect()
}

/// The groups of the engine's keyspace, for the delivery verdicts.
pub fn views_from_engine(ks: &Keyspace) -> GroupViews {
    let mut views = GroupViews::new();
    for (key, entry) in ks.iter() {
        let Value::Stream(s) = &entry.value else {
            continue;
        };
        if s.groups().len() == 0 {
            continue;
        }
        let live: std::collections::BTreeSet<Id> = s.iter().map(|(id, _)| model_id(id)).collect();
        for (name, g) in s.groups() {
            views.insert(
                (key.to_vec(), name.to_vec()),
                GroupView {
                    last_delivered: model_id(g.last_id),
                    pending: g
                        .pel()
                        .iter()
                        .map(|(id, p)| (model_id(*id), p.consumer.clone()))
                        .collect(),
                    live: live.clone(),
                },
            );
        }
    }
    views
}

/// The groups of a canonical state (a RESP server's, read back), for the delivery verdicts.
pub fn views_from_canon(state: &CanonState) -> GroupViews {
    let mut views = GroupViews::new();
    for (key, e) in state {
        let Canon::Stream {
            entries, groups, ..
        } = &e.value
        else {
            continue;
        };
        let live: std::collections::BTreeSet<Id> =
            entries.iter().map(|(id, _)| model_id(*id)).collect();
        for g in groups {
            views.insert(
                (key.clone(), g.name.clone()),
                GroupView {
                    last_delivered: model_id(g.last_delivered),
                    pending: g
                        .pending
                        .iter()
                        .map(|p| (model_id(p.id), p.consumer.clone()))
                        .collect(),
                    live: live.clone(),
                },
            );
        }
    }
    views
}

/// FNV-1a, 64 bits: stable across Rust versions and platforms, so digests in result files
/// can be compared between runs.
#[derive(Debug, Clone, Copy)]
struct Fnv(u64);

impl Fnv {
    fn bytes(&mut self, b: &[u8]) {
        self.u64(b.len() as u64);
        for &x in b {
            self.0 = (self.0 ^ u64::from(x)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    fn u64(&mut self, v: u64) {
        for x in v.to_le_bytes() {
            self.0 = (self.0 ^ u64::from(x)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    fn pairs(&mut self, p: &Pairs) {
        self.u64(p.len() as u64);
        for (a, b) in p {
            self.bytes(a);
            self.bytes(b);
        }
    }
}

/// An order-independent digest of a state: a hash of its canonical (sorted) encoding.
/// Equal states have equal digests; a different digest means a different state.
pub fn digest(state: &CanonState) -> u64 {
    let mut h = Fnv(0xcbf2_9ce4_8422_2325);
    h.u64(state.len() as u64);
    for (key, e) in state {
        h.bytes(key);
        h.u64(e.expire_at_ms.map_or(0, |t| t.wrapping_add(1)));
        match &e.value {
            Canon::Str(v) => {
                h.u64(1);
                h.bytes(v);
            }
            Canon::Hash(p) => {
                h.u64(2);
                h.pairs(p);
            }
            Canon::ZSet(z) => {
                h.u64(3);
                h.u64(z.len() as u64);
                for (m, s) in z {
                    h.bytes(m);
                    h.u64(*s);
                }
            }
            Canon::Stream {
                last_id,
                entries,
                groups,
            } => {
                h.u64(4);
                h.u64(last_id.ms);
                h.u64(last_id.seq);
                h.u64(entries.len() as u64);
                for (id, p) in entries {
                    h.u64(id.ms);
                    h.u64(id.seq);
                    h.pairs(p);
                }
                // No groups hashes as before groups existed (digests in result files stay).
                for g in groups {
                    h.bytes(&g.name);
                    h.u64(g.last_delivered.ms);
                    h.u64(g.last_delivered.seq);
                    h.u64(g.pending.len() as u64);
                    for p in &g.pending {
                        h.u64(p.id.ms);
                        h.u64(p.id.seq);
                        h.bytes(&p.consumer);
                        h.u64(p.deliveries);
                        h.u64(p.delivered_at_ms.map_or(0, |t| t.wrapping_add(1)));
                    }
                    h.u64(g.consumers.len() as u64);
                    for (n, seen) in &g.consumers {
                        h.bytes(n);
                        h.u64(seen.map_or(0, |t| t.wrapping_add(1)));
                    }
                }
            }
        }
    }
    h.0
}

/// Bytes as text: printable ASCII as is, the rest as `\xNN`; long values cut with `...`.
pub fn show_bytes(b: &[u8]) -> String {
    const MAX: usize = 48;
    let mut s = String::new();
    for &x in b.iter().take(MAX) {
        if x.is_ascii_graphic() || x == b' ' {
            s.push(x as char);
        } else {
            let _ = write!(s, "\\x{x:02x}");
        }
    }
    if b.len() > MAX {
        let _ = write!(s, "...({} bytes)", b.len());
    }
    s
}

/// A canonical entry as one short line.
pub fn show_entry(e: &CanonEntry) -> String {
    let value = match &e.value {
        Canon::Str(v) => format!("string \"{}\"", show_bytes(v)),
        Canon::Hash(p) => format!(
            "hash of {} fields, first {:?}",
            p.len(),
            p.first().map(|(f, v)| (show_bytes(f), show_bytes(v)))
        ),
        Canon::ZSet(z) => format!(
            "zset of {} members, first {:?}",
            z.len(),
            z.first().map(|(m, s)| (show_bytes(m), f64::from_bits(*s)))
        ),
        Canon::Stream {
            last_id,
            entries,
            groups,
        } => {
            let mut s = format!(
                "stream of {} entries, last id {last_id}, first id {:?}",
                entries.len(),
                entries.first().map(|(id, _)| id.to_string())
            );
            for g in groups {
                let _ = write!(
                    s,
                    ", group \"{}\" last-delivered {} with {} pending (first {:?}) and {} consumers",
                    show_bytes(&g.name),
                    g.last_delivered,
                    g.pending.len(),
                    g.pending.first().map(|p| format!(
                        "{} held by \"{}\" delivered {} times at {:?} ms",
                        p.id,
                        show_bytes(&p.consumer),
                        p.deliveries,
                        p.delivered_at_ms
                    )),
                    g.consumers.len()
                );
            }
            s
        }
    };
    match e.expire_at_ms {
        Some(t) => format!("{value}, expires at {t} ms"),
        None => value,
    }
}

/// Where two entries of one key first differ, engine side first, oracle side second.
fn first_difference(a: &CanonEntry, b: &CanonEntry) -> String {
    fn first<T: PartialEq + std::fmt::Debug>(what: &str, a: &[T], b: &[T]) -> String {
        match a.iter().zip(b).position(|(x, y)| x != y) {
            Some(i) => format!("{what} {i}: {:?} vs {:?}", a[i], b[i]),
            None => format!("{what}: {} vs {}", a.len(), b.len()),
        }
    }
    if a.expire_at_ms != b.expire_at_ms {
        return format!("expiry {:?} vs {:?} ms", a.expire_at_ms, b.expire_at_ms);
    }
    match (&a.value, &b.value) {
        (Canon::Str(x), Canon::Str(y)) => first("byte", x, y),
        (Canon::Hash(x), Canon::Hash(y)) => first("field", x, y),
        (Canon::ZSet(x), Canon::ZSet(y)) => first("member", x, y),
        (
            Canon::Stream {
                last_id: l1,
                entries: e1,
                groups: g1,
            },
            Canon::Stream {
                last_id: l2,
                entries: e2,
                groups: g2,
            },
        ) => {
            if e1 != e2 {
                return match e1.iter().zip(e2).position(|(x, y)| x != y) {
                    Some(i) => format!(
                        "entry {} ({}): {} vs {}",
                        i,
                        e1[i].0,
                        show_fields(&e1[i].1),
                        show_fields(&e2[i].1)
                    ),
                    None => format!("entries: {} vs {}", e1.len(), e2.len()),
                };
            }
            if l1 != l2 {
                return format!("last id {l1} vs {l2}");
            }
            match g1.iter().zip(g2).find(|(x, y)| x != y) {
                Some((x, y)) if x.pending != y.pending => first(
                    &format!("group \"{}\" pending entry", show_bytes(&x.name)),
                    &x.pending,
                    &y.pending,
                ),
                Some((x, y)) => format!(
                    "group \"{}\": consumers {:?} vs {:?}",
                    show_bytes(&x.name),
                    x.consumers
                        .iter()
                        .map(|(c, t)| (show_bytes(c), t))
                        .collect::<Vec<_>>(),
                    y.consumers
                        .iter()
                        .map(|(c, t)| (show_bytes(c), t))
                        .collect::<Vec<_>>()
                ),
                None => format!("groups: {} vs {}", g1.len(), g2.len()),
            }
        }
        _ => "value types".to_string(),
    }
}

/// A stream entry's fields, each value cut to its first bytes.
fn show_fields(pairs: &Pairs) -> String {
    let shown: Vec<String> = pairs
        .iter()
        .map(|(f, v)| {
            let cut = &v[..v.len().min(24)];
            let zeros = v.iter().filter(|&&b| b == 0).count();
            format!(
                "{}={}{} ({} bytes, {zeros} zero)",
                show_bytes(f),
                show_bytes(cut),
                if v.len() > cut.len() { "..." } else { "" },
                v.len()
            )
        })
        .collect();
    shown.join(" ")
}

/// One key whose value differs (`None`: the key is missing on that side).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyDiff {
    pub key: String,
    pub engine: Option<String>,
    pub oracle: Option<String>,
}

/// The result of comparing a recovered state with the oracle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comparison {
    /// [`digest`] of each side when they differ; `None` when they were found equal (equal
    /// states are not digested).
    pub digest_engine: Option<u64>,
    pub digest_oracle: Option<u64>,
    pub keys_engine: usize,
    pub keys_oracle: usize,
    /// Keys that differ (counted in full).
    pub differing_keys: usize,
    /// The first differing keys in key order (at most the limit given to [`compare`]).
    pub first_diffs: Vec<KeyDiff>,
}

impl Comparison {
    /// True when the two states are equal.
    pub fn equal(&self) -> bool {
        self.differing_keys == 0
    }

    /// One paragraph describing the difference (empty when equal).
    pub fn describe(&self) -> String {
        if self.equal() {
            return String::new();
        }
        let mut s = format!(
            "state differs from the oracle: digest {:016x} vs {:016x}, {} vs {} keys, {} keys differ",
            self.digest_engine.unwrap_or(0),
            self.digest_oracle.unwrap_or(0),
            self.keys_engine,
            self.keys_oracle,
            self.differing_keys
        );
        for d in &self.first_diffs {
            let _ = write!(
                s,
                "; key \"{}\": engine {}, oracle {}",
                d.key,
                d.engine.as_deref().unwrap_or("missing"),
                d.oracle.as_deref().unwrap_or("missing")
            );
        }
        s
    }
}

/// Compares the states directly; only when they differ digests both (for the report) and
/// walks them in key order, listing the first `max_diffs` differing keys. Equal states get
/// no digests: a digest hashes every byte of the state, and the crash lab compares one state
/// per crash image, nearly all of them equal.
pub fn compare(engine: &CanonState, oracle: &CanonState, max_diffs: usize) -> Comparison {
    let mut c = Comparison {
        digest_engine: None,
        digest_oracle: None,
        keys_engine: engine.len(),
        keys_oracle: oracle.len(),
        differing_keys: 0,
        first_diffs: Vec::new(),
    };
    if engine == oracle {
        return c;
    }
    (c.digest_engine, c.digest_oracle) = (Some(digest(engine)), Some(digest(oracle)));
    let keys: std::collections::BTreeSet<&Vec<u8>> = engine.keys().chain(oracle.keys()).collect();
    for key in keys {
        let (a, b) = (engine.get(key), oracle.get(key));
        if a == b {
            continue;
        }
        c.differing_keys += 1;
        if c.first_diffs.len() < max_diffs {
            let (mut engine_text, oracle_text) = (a.map(show_entry), b.map(show_entry));
            // Summaries that read alike (a stream entry's bytes, a pending entry's owner)
            // would hide where the two differ: name it.
            if let (Some(a), Some(b), Some(text)) = (a, b, engine_text.as_mut()) {
                text.push_str(&format!(" (first difference: {})", first_difference(a, b)));
            }
            c.first_diffs.push(KeyDiff {
                key: show_bytes(key),
                engine: engine_text,
                oracle: oracle_text,
            });
        }
    }
    c
}

/// Compares the engine's keyspace with the model: directly when they are equal (the cheap,
/// common case), else through [`compare`] for the digests and the first `max_diffs` diffs.
pub fn compare_keyspace(ks: &Keyspace, model: &Model, max_diffs: usize) -> Comparison {
    if keyspace_equals(ks, model) {
        return Comparison {
            digest_engine: None,
            digest_oracle: None,
            keys_engine: ks.len(),
            keys_oracle: model.map.len(),
            differing_keys: 0,
            first_diffs: Vec::new(),
        };
    }
    let c = compare(&from_engine(ks), &from_model(model), max_diffs);
    assert!(!c.equal(), "direct and canonical comparisons disagree");
    c
}

/// Whether `ks` holds exactly the model's keys with equal values and expiries (the same
/// equality as [`CanonState`]'s, scores compared as bits).
pub fn keyspace_equals(ks: &Keyspace, model: &Model) -> bool {
    ks.len() == model.map.len()
        && model
            .map
            .iter()
            .all(|(key, want)| ks.get_entry(key).is_some_and(|got| entry_equals(got, want)))
}

/// Whether one key's engine entry equals the model's (value and expiry; scores as bits).
pub(crate) fn entry_equals(got: &Entry, want: &ModelEntry) -> bool {
    if got.expire_at_ms != want.expire_at_ms {
        return false;
    }
    match (&got.value, &want.value) {
        (Value::Str(a), ModelValue::Str(b)) => a == b,
        (Value::Hash(a), ModelValue::Hash(b)) => {
            a.len() == b.len() && b.iter().all(|(f, v)| a.get(f) == Some(v.as_slice()))
        }
        (Value::ZSet(a), ModelValue::ZSet(b)) => {
            a.len() == b.len()
                && b.iter()
                    .all(|(m, s)| a.score(m).map(f64::to_bits) == Some(s.to_bits()))
        }
        (
            Value::Stream(a),
            ModelValue::Stream {
                entries: b,
                last_id,
                groups,
            },
        ) => {
            a.last_id() == stream_id(*last_id)
                && a.len() == b.len()
                && a.iter()
                    .zip(b)
                    .all(|((id_a, fa), (id_b, fb))| id_a == stream_id(*id_b) && fa == fb.as_slice())
                && a.groups().len() == groups.len()
                && a.groups()
                    .zip(groups)
                    .all(|((na, ga), (nb, gb))| engine_group(na, ga) == model_group(nb, gb))
        }
        _ => false,
    }
}

// ---------- the boundary: engine commands into the model, its replies back ----------

/// The model's stream id as the engine's.
fn stream_id(id: Id) -> StreamId {
    StreamId {
        ms: id.ms,
        seq: id.seq,
    }
}

/// The engine's stream id as the model's.
fn model_id(id: StreamId) -> Id {
    Id {
        ms: id.ms,
        seq: id.seq,
    }
}

fn group_start(start: GroupStart) -> groups::GroupStart {
    match start {
        GroupStart::Id(id) => groups::GroupStart::Id(model_id(id)),
        GroupStart::Last => groups::GroupStart::Last,
    }
}

/// The model's command for an engine command (the same request, field by field).
pub fn op(cmd: &Command) -> Op {
    match cmd {
        Command::Set { key, value } => Op::Set {
            key: key.clone(),
            value: value.clone(),
            cond: Cond::Any,
            expiry: Expiry::Remove,
            get: false,
        },
        Command::SetOpts { key, value, opts } => Op::Set {
            key: key.clone(),
            value: value.clone(),
            cond: match opts.cond {
                SetCond::Always => Cond::Any,
                SetCond::Nx => Cond::IfAbsent,
                SetCond::Xx => Cond::IfPresent,
            },
            expiry: match opts.ttl {
                SetTtl::Clear => Expiry::Remove,
                SetTtl::Keep => Expiry::Keep,
                SetTtl::At(t) => Expiry::At(t),
            },
            get: opts.get,
        },
        Command::Get { key } => Op::Get { key: key.clone() },
        Command::Del { key } => Op::Del { key: key.clone() },
        Command::SetNx { key, value } => Op::SetNx {
            key: key.clone(),
            value: value.clone(),
        },
        Command::IncrBy { key, delta } => Op::IncrBy {
            key: key.clone(),
            delta: *delta,
        },
        Command::PExpireAt { key, at_ms } => Op::PExpireAt {
            key: key.clone(),
            at_ms: *at_ms,
        },
        Command::Persist { key } => Op::Persist { key: key.clone() },
        Command::HSet { key, fields } => Op::HSet {
            key: key.clone(),
            fields: fields.clone(),
        },
        Command::HDel { key, fields } => Op::HDel {
            key: key.clone(),
            fields: fields.clone(),
        },
        Command::HIncrBy { key, field, delta } => Op::HIncrBy {
            key: key.clone(),
            field: field.clone(),
            delta: *delta,
        },
        Command::ZAdd { key, members } => Op::ZAdd {
            key: key.clone(),
            members: members.clone(),
        },
        Command::ZRem { key, members } => Op::ZRem {
            key: key.clone(),
            members: members.clone(),
        },
        Command::ZPopMin { key, count } => Op::ZPopMin {
            key: key.clone(),
            count: *count,
        },
        Command::XAdd {
            key,
            id,
            fields,
            maxlen,
        } => Op::XAdd {
            key: key.clone(),
            id: match *id {
                XAddId::Auto => IdSpec::Next,
                XAddId::Explicit(StreamId { ms, seq }) => IdSpec::Given(Id { ms, seq }),
                XAddId::Time { now_ms } => IdSpec::Time(now_ms),
                XAddId::AutoSeq { ms } => IdSpec::SeqFor(ms),
            },
            fields: fields.clone(),
            maxlen: *maxlen,
        },
        Command::FlushAll => Op::FlushAll,
        Command::Multi { cmds } => Op::Multi(cmds.iter().map(op).collect()),
        Command::XGroupCreate {
            key,
            group,
            id,
            mkstream,
            // entries-read is not modelled (oracle/groups.rs).
            entries_read: _,
        } => Op::XGroupCreate {
            key: key.clone(),
            group: group.clone(),
            start: group_start(*id),
            mkstream: *mkstream,
        },
        Command::XGroupSetId { key, group, id, .. } => Op::XGroupSetId {
            key: key.clone(),
            group: group.clone(),
            start: group_start(*id),
        },
        Command::XGroupDestroy { key, group } => Op::XGroupDestroy {
            key: key.clone(),
            group: group.clone(),
        },
        Command::XGroupCreateConsumer {
            key,
            group,
            consumer,
            now_ms,
        } => Op::XGroupCreateConsumer {
            key: key.clone(),
            group: group.clone(),
            consumer: consumer.clone(),
            now_ms: *now_ms,
        },
        Command::XGroupDelConsumer {
            key,
            group,
            consumer,
        } => Op::XGroupDelConsumer {
            key: key.clone(),
            group: group.clone(),
            consumer: consumer.clone(),
        },
        Command::XReadGroup {
            key,
            group,
            consumer,
            count,
            start,
            noack,
            now_ms,
        } => Op::XReadGroup {
            key: key.clone(),
            group: group.clone(),
            consumer: consumer.clone(),
            count: *count,
            start: match start {
                ReadStart::New => groups::ReadStart::New,
                ReadStart::Pending(id) => groups::ReadStart::Pending(model_id(*id)),
            },
            noack: *noack,
            now_ms: *now_ms,
        },
        Command::XAck { key, group, ids } => Op::XAck {
            key: key.clone(),
            group: group.clone(),
            ids: ids.iter().copied().map(model_id).collect(),
        },
        Command::XDel { key, ids } => Op::XDel {
            key: key.clone(),
            ids: ids.iter().copied().map(model_id).collect(),
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
        } => Op::XClaim {
            key: key.clone(),
            group: group.clone(),
            consumer: consumer.clone(),
            min_idle_ms: *min_idle_ms,
            ids: ids.iter().copied().map(model_id).collect(),
            now_ms: *now_ms,
            justid: *justid,
            extra: ClaimExtra {
                at: options.time.map(|t| match t {
                    ClaimTime::IdleMs(ms) => ClaimAt::IdleMs(ms),
                    ClaimTime::AtMs(ms) => ClaimAt::Ms(ms),
                }),
                retry_count: options.retry_count,
                force: options.force,
                last_id: options.last_id.map(model_id),
            },
        },
        Command::XAutoClaim {
            key,
            group,
            consumer,
            min_idle_ms,
            start,
            count,
            now_ms,
            justid,
        } => Op::XAutoClaim {
            key: key.clone(),
            group: group.clone(),
            consumer: consumer.clone(),
            min_idle_ms: *min_idle_ms,
            start: model_id(*start),
            count: *count,
            now_ms: *now_ms,
            justid: *justid,
        },
        Command::XPending {
            key,
            group,
            range: None,
            ..
        } => Op::XPending {
            key: key.clone(),
            group: group.clone(),
        },
        Command::XPending {
            key,
            group,
            range: Some(r),
            now_ms,
        } => Op::XPendingRange {
            key: key.clone(),
            group: group.clone(),
            min_idle_ms: r.min_idle_ms,
            start: model_id(r.start),
            end: model_id(r.end),
            count: r.count,
            consumer: r.consumer.clone(),
            now_ms: *now_ms,
        },
        Command::XInfoGroups { key } => Op::XInfoGroups { key: key.clone() },
        Command::XInfoConsumers { key, group, now_ms } => Op::XInfoConsumers {
            key: key.clone(),
            group: group.clone(),
            now_ms: *now_ms,
        },
    }
}

/// The engine's reply for a model answer.
pub fn reply(answer: Answer) -> Reply {
    match answer {
        Answer::Ok => Reply::Ok,
        Answer::Nil => Reply::Nil,
        Answer::NilArray => Reply::NilArray,
        Answer::Int(n) => Reply::Int(n),
        Answer::Bulk(b) => Reply::Bulk(b),
        Answer::Array(a) => Reply::Array(a.into_iter().map(reply).collect()),
        Answer::Error(e) => Reply::Error(e),
    }
}

impl Model {
    /// Applies an engine command: [`Model::run`] of its [`op`], the answer as an engine
    /// reply.
    pub fn apply(&mut self, cmd: &Command) -> Reply {
        reply(self.run(&op(cmd)))
    }

    /// Applies an engine command for its effect on the state alone: [`Model::run_quiet`] of
    /// its [`op`], the same changes as [`Model::apply`] without building a reply.
    pub fn apply_quiet(&mut self, cmd: &Command) {
        self.run_quiet(&op(cmd));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(value: &[u8]) -> CanonEntry {
        let id = |ms| StreamId { ms, seq: 0 };
        CanonEntry {
            value: Canon::Stream {
                last_id: id(2),
                entries: vec![
                    (id(1), vec![(b"f".to_vec(), b"a".to_vec())]),
                    (id(2), vec![(b"f".to_vec(), value.to_vec())]),
                ],
                groups: Vec::new(),
            },
            expire_at_ms: None,
        }
    }

    /// A stream entry whose bytes a lost sector zeroed (as redis-server loads it from an AOF,
    /// which has no checksums) reads like the oracle's in the summary; the description names
    /// the entry and shows the zeros.
    #[test]
    fn a_difference_inside_a_stream_entry_is_named() {
        let key = b"events:1".to_vec();
        let got = CanonState::from([(key.clone(), stream(&[b'x', 0, 0, 0]))]);
        let want = CanonState::from([(key, stream(b"xyzw"))]);
        let text = compare(&got, &want, 5).describe();
        assert!(
            text.contains("(first difference: entry 1 (2-0): f=x\\x00\\x00\\x00 (4 bytes, 3 zero) vs f=xyzw (4 bytes, 0 zero))"),
            "{text}"
        );
    }
}
