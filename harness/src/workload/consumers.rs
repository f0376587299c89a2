//! The consumer side of a stream workload (scenario ops `xreadgroup`, `xack`, `xautoclaim`):
//! producers' `XADD`s interleaved with consumers reading through a group, acknowledging what
//! they processed some commands later (some never: crashed consumers), and a reclaimer taking
//! over what stays pending.
//!
//! Every command is still a pure function of (seed, n), computed from the command sequence
//! alone, never from a state, so the crash lab regenerates any LSN cheaply:
//! - **Setup.** With any consumer op, write commands 1..=S are `XGROUP CREATE key group 0
//!   MKSTREAM` for every key of every `xreadgroup` op (S is [`Workload::setup_len`]), and
//!   every `XADD` names its id: `<CLOCK_EPOCH_MS + n>-0` for command n ([`entry_id`]), Redis's
//!   `*` at the workload clock. So the id of the entry command j added is known from j alone.
//! - **`xreadgroup`**: `XREADGROUP GROUP g c<i> COUNT count STREAMS key >`, consumer drawn
//!   uniformly, run at the workload clock of n.
//! - **`xack`** at n on key K acknowledges the entries that `XADD`s on K at commands j added,
//!   for j in `(p - ack_delay, n - ack_delay]`, where p is the previous `xack` on K (found by
//!   regenerating op and key of the commands before n, at most [`MAX_ACK_SCAN_LSNS`] back), so
//!   successive acks on a key tile the sequence. (A writer caches those ops and keys:
//!   harness/src/workload/lookback.rs.) A `never_acked` fraction of entries (drawn
//!   from j alone: their consumer crashed) are skipped there and acknowledged instead by the
//!   reclaimer's window `(p - reclaim_delay, n - reclaim_delay]`. An entry not delivered by
//!   then is acknowledged in vain (XACK counts 0) and stays pending once read: the reclaimer
//!   keeps claiming it. A window without entries acknowledges `0-0` (nothing).
//! - **`xautoclaim`**: `XAUTOCLAIM key g reclaimer min_idle_ms 0-0 COUNT count` at the
//!   workload clock of n: the oldest pending entries idle long enough. On RESP targets the
//!   server's clock decides idle times, so the scenario parser insists on min_idle_ms = 0
//!   there (then the clock does not matter).

use durlab_engine::keyspace::{GroupStart, ReadStart, StreamId};
use durlab_engine::{Command, Lsn};
use rand::RngExt;

use super::generator::{CLOCK_EPOCH_MS, Op, Workload, key};
use super::rng::SplitMix64;
use crate::scenario::model::{CommandKind, OpSpec};
use crate::scenario::parse::MAX_CONSUMER_KEYS;

/// The group of consumer ops without `group`.
pub const DEFAULT_GROUP: &str = "workers";
/// Consumers of an `xreadgroup` op without `consumers`.
pub const DEFAULT_CONSUMERS: u32 = 4;
/// `COUNT` of `xreadgroup` and `xautoclaim` without `count`.
pub const DEFAULT_COUNT: u64 = 10;
/// `ack_delay` without the field.
pub const DEFAULT_ACK_DELAY: u64 = 100;
/// `reclaim_delay` is this many `ack_delay`s without the field.
pub const DEFAULT_RECLAIM_FACTOR: u64 = 10;
/// How far back an `xack` looks for the previous `xack` on its key (bounds its cost; an
/// entry older than this window behind a rare key's acks is not acknowledged).
pub const MAX_ACK_SCAN_LSNS: u64 = 4096;
/// `ack_delay` and `reclaim_delay` at most (the scenario parser insists, defaults included):
/// bounds how far back an `xack` looks, so a writer's cache of it
/// (harness/src/workload/lookback.rs) stays small.
pub const MAX_ACK_DELAY_LSNS: u64 = 100_000;
/// How far back before n generating `xack` n reads ops and keys, at most: the scan for the
/// previous `xack` reaches `n - MAX_ACK_SCAN_LSNS`, and a window then starts `delay` before
/// the previous `xack` it found (or before the scan's floor).
pub const MAX_LOOKBACK_LSNS: u64 = MAX_ACK_SCAN_LSNS + MAX_ACK_DELAY_LSNS;
/// The reclaimer's consumer name.
pub const RECLAIMER: &[u8] = b"reclaimer";

/// The consumer fields of one op, compiled.
#[derive(Debug, Clone, Default)]
pub struct ConsumerOp {
    pub group: Vec<u8>,
    pub consumers: u32,
    pub count: u64,
    pub ack_delay: u64,
    /// `never_acked` as a threshold out of 2^32.
    pub never_acked_per_2_32: u64,
    pub reclaim_delay: u64,
    pub min_idle_ms: u64,
    /// `xadd`: name ids from the LSN (set when the workload has consumer ops).
    pub explicit_ids: bool,
}

impl ConsumerOp {
    /// The consumer fields of `o` with their defaults.
    pub fn new(o: &OpSpec) -> ConsumerOp {
        let ack_delay = o
            .ack_delay
            .as_ref()
            .map_or(DEFAULT_ACK_DELAY, |d| *d.get_ref());
        let never = o.never_acked.as_ref().map_or(0.0, |f| *f.get_ref());
        ConsumerOp {
            group: o
                .group
                .clone()
                .unwrap_or_else(|| DEFAULT_GROUP.into())
                .into_bytes(),
            consumers: o
                .consumers
                .as_ref()
                .map_or(DEFAULT_CONSUMERS, |c| *c.get_ref()),
            count: o.count.as_ref().map_or(DEFAULT_COUNT, |c| *c.get_ref()),
            ack_delay,
            never_acked_per_2_32: (never.clamp(0.0, 1.0) * 4_294_967_296.0) as u64,
            reclaim_delay: o
                .reclaim_delay
                .as_ref()
                .map_or(ack_delay * DEFAULT_RECLAIM_FACTOR, |d| *d.get_ref()),
            min_idle_ms: o.min_idle_ms.as_ref().map_or(0, |m| *m.get_ref()),
            explicit_ids: false,
        }
    }
}

/// The id of the entry write command `n` adds when the workload has consumers.
pub fn entry_id(n: Lsn) -> StreamId {
    StreamId {
        ms: CLOCK_EPOCH_MS + n,
        seq: 0,
    }
}

/// The LSN whose `XADD` added `id` (the inverse of [`entry_id`]), if it is such an id.
pub fn entry_lsn(id: StreamId) -> Option<Lsn> {
    (id.seq == 0)
        .then(|| id.ms.checked_sub(CLOCK_EPOCH_MS))
        .flatten()
        .filter(|n| *n > 0)
}

/// Whether the consumer of the entry added at `j` crashed before acknowledging it: drawn from
/// `seed` and `j` alone.
pub fn crashed(seed: u64, j: Lsn, never_acked_per_2_32: u64) -> bool {
    let mut r = SplitMix64::new(seed ^ j.wrapping_mul(0xA24B_AED4_963E_E407));
    r.random_range(0..1u64 << 32) < never_acked_per_2_32
}

/// The setup commands for `ops` (the write mix): `XGROUP CREATE key group 0 MKSTREAM` for each
/// key of each `xreadgroup` op with weight, each (key, group) once; none without one.
pub(super) fn setup(ops: &[Op]) -> Vec<Command> {
    let mut seen = std::collections::BTreeSet::new();
    let mut cmds = Vec::new();
    for op in ops.iter().filter(|o| o.kind == CommandKind::XReadGroup) {
        for index in 0..op.keys.count().min(MAX_CONSUMER_KEYS) {
            let key = key(op, index);
            if seen.insert((key.clone(), op.consumer.group.clone())) {
                cmds.push(Command::XGroupCreate {
                    key,
                    group: op.consumer.group.clone(),
                    id: GroupStart::Id(StreamId::default()),
                    mkstream: true,
                    entries_read: None,
                });
            }
        }
    }
    cmds
}

/// Write command `n` of an `xreadgroup` op on `key`.
pub(super) fn xreadgroup(op: &Op, key: Vec<u8>, n: Lsn, rng: &mut SplitMix64) -> Command {
    let c = rng.random_range(0..op.consumer.consumers.max(1));
    Command::XReadGroup {
        key,
        group: op.consumer.group.clone(),
        consumer: format!("c{c}").into_bytes(),
        count: Some(op.consumer.count),
        start: ReadStart::New,
        noack: false,
        now_ms: CLOCK_EPOCH_MS + n,
    }
}

/// Write command `n` of an `xautoclaim` op on `key`.
pub(super) fn xautoclaim(op: &Op, key: Vec<u8>, n: Lsn) -> Command {
    Command::XAutoClaim {
        key,
        group: op.consumer.group.clone(),
        consumer: RECLAIMER.to_vec(),
        min_idle_ms: op.consumer.min_idle_ms,
        start: StreamId::default(),
        count: op.consumer.count,
        now_ms: CLOCK_EPOCH_MS + n,
        justid: false,
    }
}

/// How far back generating an `xack` of `ops` (the write mix) reads ops and keys, in LSNs
/// (0 without `xack` ops): [`MAX_ACK_SCAN_LSNS`] plus its longest delay.
///
/// # Panics
/// If a delay is over [`MAX_ACK_DELAY_LSNS`] (the scenario parser rejects those).
pub(super) fn lookback_lsns(ops: &[Op]) -> Lsn {
    let longest = ops
        .iter()
        .filter(|o| o.kind == CommandKind::XAck)
        .map(|o| {
            let c = &o.consumer;
            let reclaim = if c.never_acked_per_2_32 > 0 {
                c.reclaim_delay
            } else {
                0
            };
            c.ack_delay.max(reclaim)
        })
        .max();
    longest.map_or(0, |d| {
        assert!(
            d <= MAX_ACK_DELAY_LSNS,
            "an xack delay of {d} LSNs is over MAX_ACK_DELAY_LSNS ({MAX_ACK_DELAY_LSNS})"
        );
        MAX_ACK_SCAN_LSNS + d
    })
}

/// Write command `n` of the `xack` op at index `me` of the write mix (its generator `rng` past
/// the op's pick): see the module's comment. `op_and_key(m)` is [`Workload::op_and_key`] of
/// write command m, for m in `n - lookback_lsns(..) .. n` (derived, or from a writer's cache).
pub(super) fn xack(
    w: &Workload,
    me: usize,
    n: Lsn,
    rng: &mut SplitMix64,
    mut op_and_key: impl FnMut(Lsn) -> (usize, u64),
) -> Command {
    let op = &w.writes.ops[me];
    let index = op.keys.sample(rng);
    let key = key(op, index);
    let c = &op.consumer;
    let first = w.setup_len() + 1;
    // The previous xack of this op on this key (or the scan's limit).
    let floor = n.saturating_sub(MAX_ACK_SCAN_LSNS).max(first);
    let prev = (floor..n)
        .rev()
        .find(|&m| op_and_key(m) == (me, index))
        .unwrap_or(floor.saturating_sub(1));
    let mut ids = Vec::new();
    let mut window = |delay: u64, want_crashed: bool| {
        let hi = n.saturating_sub(delay);
        let lo = prev.saturating_sub(delay).max(first.saturating_sub(1));
        for j in lo + 1..=hi {
            let (at, i) = op_and_key(j);
            if w.writes.ops[at].kind == CommandKind::XAdd
                && w.same_key((at, i), (me, index), &key)
                && crashed(w.seed(), j, c.never_acked_per_2_32) == want_crashed
            {
                ids.push(entry_id(j));
            }
        }
    };
    window(c.ack_delay, false);
    if c.never_acked_per_2_32 > 0 {
        window(c.reclaim_delay, true);
    }
    if ids.is_empty() {
        ids.push(StreamId::default());
    }
    Command::XAck {
        key,
        group: c.group.clone(),
        ids,
    }
}
