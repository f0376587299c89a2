//! [`OpKeyRing`]: a writer's cache of the (op, key index) of recent LSNs, so that generating an
//! `xack` (harness/src/workload/consumers.rs) derives no earlier command twice.
//!
//! An `xack` at n reads the op and key of up to [`Workload::lookback_lsns`] LSNs before n: back
//! to the previous `xack` on its key, then over its acknowledgement windows. Without a cache
//! every `xack` re-derives them all (a ChaCha8 window, a SplitMix64, a pick and a key draw
//! each), most of them derived by the `xack`s just before it; the engine driver pays that under
//! the engine's lock (`Engine::execute_next`). The ring holds each LSN's pair in slot
//! `lsn % len` (`len` the look-back rounded up to a power of two), tagged with the LSN, so a slot answers only for the LSN it holds: a miss (first
//! use, or an LSN evicted by a later one) derives the pair afresh, which is a pure function of
//! (seed, LSN), so cached and fresh derivations give byte-identical commands whatever order the
//! writer visits LSNs in.

use durlab_engine::Lsn;

use super::generator::Workload;
use super::rng::CommandSeeds;

/// One cached LSN (`lsn` 0: empty; write LSNs start at 1).
#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    lsn: Lsn,
    op: usize,
    key: u64,
}

/// The (op, key index) of the last [`Workload::lookback_lsns`] LSNs a writer's `xack`s looked
/// at; see the module's comment.
#[derive(Debug, Clone)]
pub(super) struct OpKeyRing {
    /// Its own seeds: look-backs jump around, and sharing the writer's would make it refill
    /// its ChaCha8 window for the next command.
    seeds: CommandSeeds,
    /// [`Workload::lookback_lsns`] of its workload.
    lookback_lsns: Lsn,
    /// A power of two, at least `lookback_lsns`.
    slots: Box<[Slot]>,
}

impl OpKeyRing {
    /// A ring for `w`'s `xack`s, or `None` when `w` has none (no look-back to cache).
    pub(super) fn for_workload(w: &Workload) -> Option<OpKeyRing> {
        let lookback_lsns = w.lookback_lsns();
        let len = usize::try_from(lookback_lsns)
            .expect("look-back fits memory")
            .next_power_of_two();
        (lookback_lsns > 0).then(|| OpKeyRing {
            seeds: w.command_seeds(),
            lookback_lsns,
            slots: vec![Slot::default(); len].into_boxed_slice(),
        })
    }

    /// The op index and key index of write command `m`, asked while generating command `n`.
    ///
    /// # Panics
    /// If `m` is not in `n - lookback_lsns .. n` (the derivation looked further back than
    /// [`Workload::lookback_lsns`] says, which would make the ring evict what the next
    /// `xack` needs), or `m` is 0.
    #[inline]
    pub(super) fn op_and_key(&mut self, w: &Workload, n: Lsn, m: Lsn) -> (usize, u64) {
        let lookback = self.lookback_lsns;
        assert!(
            m > 0 && m < n && n - m <= lookback,
            "xack at {n} looked back to {m}, beyond its look-back of {lookback} LSNs"
        );
        // The length is a power of two: the mask is `m % len`.
        let slot = &mut self.slots[(m & (self.slots.len() as u64 - 1)) as usize];
        if slot.lsn != m {
            let (op, key) = w.op_and_key(&mut self.seeds, m);
            *slot = Slot { lsn: m, op, key };
        }
        (slot.op, slot.key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{self, builtin, locate};

    fn event_stream() -> Workload {
        let path = locate::find_scenario("event-stream").expect("scenario exists");
        Workload::new(&scenario::load(&path).expect("scenario loads").workload)
    }

    #[test]
    fn answers_as_derived_up_to_its_limit() {
        let w = event_stream();
        let mut ring = OpKeyRing::for_workload(&w).expect("event-stream has xacks");
        let mut seeds = w.command_seeds();
        let n = 50_000;
        for m in [n - w.lookback_lsns(), n - 1, n - 17] {
            // Twice: derived, then from its slot.
            for _ in 0..2 {
                assert_eq!(ring.op_and_key(&w, n, m), w.op_and_key(&mut seeds, m));
            }
        }
        // An LSN that takes the same slot replaces it; the old one is derived again.
        let len = ring.slots.len() as u64;
        assert!(len.is_power_of_two() && len >= w.lookback_lsns());
        let (old, newer) = (n - 17, n - 17 + len);
        let slot = (old & (len - 1)) as usize;
        assert_eq!(ring.slots[slot].lsn, old);
        assert_eq!(
            ring.op_and_key(&w, newer + 1, newer),
            w.op_and_key(&mut seeds, newer)
        );
        assert_eq!(ring.slots[slot].lsn, newer);
        assert_eq!(
            ring.op_and_key(&w, old + 1, old),
            w.op_and_key(&mut seeds, old)
        );
        assert_eq!(ring.slots[slot].lsn, old);
    }

    #[test]
    #[should_panic(expected = "beyond its look-back")]
    fn looking_back_past_the_limit_panics() {
        let w = event_stream();
        let mut ring = OpKeyRing::for_workload(&w).expect("event-stream has xacks");
        let n = 50_000;
        ring.op_and_key(&w, n, n - w.lookback_lsns() - 1);
    }

    #[test]
    fn no_ring_without_xacks() {
        let w = Workload::new(&builtin::scenario().workload);
        assert_eq!(w.lookback_lsns(), 0);
        assert!(OpKeyRing::for_workload(&w).is_none());
    }
}
