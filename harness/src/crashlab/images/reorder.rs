//! [`Variant::Reorder`](super::Variant::Reorder): the disk wrote back any subset of the dirty
//! 512-byte sectors, in any order, so holes are possible.
//!
//! Each sector touched by unsynced literal bytes ends up, independently, at one of the versions
//! it had in the page cache: the version after all its unsynced writes (probability q, drawn
//! per image from 0..1), the durable version (no unsynced write survived), or, if several
//! writes touched it, the version after some of them in order. A sector never holds a later
//! write without the earlier ones to the same sector, which no disk could produce. Runs of
//! zeros (preallocation) and size changes (`set_len`, `fallocate`) survive or vanish whole,
//! each with probability q. Sizes grow to cover every surviving piece.

use rand::RngExt;

use durlab_engine::backend::recording::Segment;

use super::ops::Ino;
use super::state::{CrashState, PendingOp};
use crate::workload::rng::SplitMix64;

const SECTOR_BYTES: u64 = 512;

/// Per dirty sector: writes touching it, the version chosen, and bookkeeping while applying.
#[derive(Debug, Default, Clone, Copy)]
struct Sector {
    writes: u32,
    keep: u32,
    seen: u32,
    last_seq: Option<usize>,
}

/// Calls `f(sector, from, to)` for each sector piece of the literal bytes of a write.
fn literal_pieces(offset: u64, data: &[Segment], mut f: impl FnMut(u64, u64, u64)) {
    let mut at = offset;
    for s in data {
        if let Segment::Bytes(b) = s {
            let end = at + b.len() as u64;
            let mut from = at;
            while from < end {
                let sector = from / SECTOR_BYTES;
                let to = ((sector + 1) * SECTOR_BYTES).min(end);
                f(sector, from, to);
                from = to;
            }
        }
        at += s.len();
    }
}

/// The dirty sectors of an image, by (inode, sector). A log's unsynced tail is tens of
/// thousands of sectors, each touched by several consecutive small writes: the last sector
/// looked up is remembered, and the others found through a hash (foldhash: no adversary
/// chooses these keys, and every seeded choice follows the sorted keys, never the hash order).
#[derive(Default)]
struct Sectors {
    index: foldhash::HashMap<(Ino, u64), usize>,
    list: Vec<Sector>,
    last: Option<((Ino, u64), usize)>,
}

impl Sectors {
    fn get(&mut self, key: (Ino, u64)) -> &mut Sector {
        let i = match self.last {
            Some((k, i)) if k == key => i,
            _ => {
                let n = self.list.len();
                let i = *self.index.entry(key).or_insert(n);
                if i == n {
                    self.list.push(Sector::default());
                }
                self.last = Some((key, i));
                i
            }
        };
        &mut self.list[i]
    }
}

pub(crate) fn reorder(state: &mut CrashState<'_>, rng: &mut SplitMix64) -> String {
    let q: f64 = rng.random();
    let mut sectors = Sectors::default();
    for p in &state.pending {
        if let PendingOp::Write { offset, data } = p.op {
            literal_pieces(offset, data, |sector, _, _| {
                let s = sectors.get((p.ino, sector));
                if s.last_seq != Some(p.seq) {
                    s.writes += 1;
                    s.last_seq = Some(p.seq);
                }
            });
        }
    }
    let mut keys: Vec<((Ino, u64), usize)> = sectors.index.iter().map(|(&k, &i)| (k, i)).collect();
    keys.sort_unstable(); // a seeded choice must not depend on hash order
    let (mut latest, mut older) = (0usize, 0usize);
    for &(_, i) in &keys {
        let s = &mut sectors.list[i];
        s.keep = if rng.random_bool(q) {
            s.writes
        } else if s.writes > 1 && rng.random_bool(0.5) {
            rng.random_range(1..s.writes)
        } else {
            0
        };
        latest += usize::from(s.keep == s.writes);
        older += usize::from(s.keep > 0 && s.keep < s.writes);
        s.last_seq = None;
    }
    let (mut other_total, mut other_kept) = (0usize, 0usize);
    for p in &state.pending {
        match p.op {
            PendingOp::Write { offset, data } => {
                let file = &mut state.files[p.ino];
                literal_pieces(offset, data, |sector, from, to| {
                    let s = sectors.get((p.ino, sector));
                    if s.last_seq != Some(p.seq) {
                        s.seen += 1;
                        s.last_seq = Some(p.seq);
                    }
                    // This write is the `seen`-th to touch the sector (1-based).
                    if s.seen <= s.keep {
                        file.write_segments_range(offset, data, from, to);
                    }
                });
                let mut at = offset;
                for seg in data {
                    if let Segment::Zeros(n) = seg {
                        other_total += 1;
                        if rng.random_bool(q) {
                            file.zero(at, *n);
                            other_kept += 1;
                        }
                    }
                    at += seg.len();
                }
            }
            PendingOp::SetLen(_) | PendingOp::Allocate(..) => {
                other_total += 1;
                if rng.random_bool(q) {
                    p.apply(&mut state.files);
                    other_kept += 1;
                }
            }
        }
    }
    format!(
        "reorder (q = {q:.2}): of {} dirty sectors {latest} at their latest version, {older} at \
         an older one, {} lost; {other_kept} of {other_total} zero runs and size changes survive",
        keys.len(),
        keys.len() - latest - older
    )
}
