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

use std::collections::BTreeMap;

use rand::RngExt;

use durlab_engine::backend::recording::Segment;

use super::content::Content;
use super::state::{CrashState, PendingOp};
use crate::workload::rng::SplitMix64;

const SECTOR_BYTES: u64 = 512;

/// Per dirty sector: writes touching it, the version chosen, and bookkeeping while applying.
#[derive(Debug, Clone, Copy)]
struct Sector {
    writes: u32,
    keep: u32,
    seen: u32,
    /// Index in the pending list of the last write counted ([`NONE`]: none yet).
    last: usize,
}

/// No write counted yet ([`Sector::last`]).
const NONE: usize = usize::MAX;

impl Default for Sector {
    fn default() -> Self {
        Sector {
            writes: 0,
            keep: 0,
            seen: 0,
            last: NONE,
        }
    }
}

/// Counts write `i` on sector `s`: true the first time `i` touches it (a write whose literal
/// segments touch a sector twice counts once; its pieces of a sector come one after another).
#[inline]
fn first_touch(s: &mut Sector, i: usize) -> bool {
    let first = s.last != i;
    s.last = i;
    first
}

/// The dirty sectors of one inode. A log's unsynced tail is tens of thousands of contiguous
/// sectors: a vector indexed by sector from the first dirty one. Sectors far apart (a few
/// writes spread over a large file) would make that vector mostly empty: an ordered map.
enum InodeSectors {
    Dense { first: u64, list: Vec<Sector> },
    Sparse(BTreeMap<u64, Sector>),
}

impl InodeSectors {
    /// For sectors `first..=last`, of which `pieces` (with repeats) are dirty: dense unless
    /// that would be mostly empty.
    fn new(first: u64, last: u64, pieces: u64) -> Self {
        let span = last - first + 1;
        if span <= 2 * pieces + DENSE_SLACK {
            InodeSectors::Dense {
                first,
                list: vec![Sector::default(); span as usize],
            }
        } else {
            InodeSectors::Sparse(BTreeMap::new())
        }
    }

    /// Calls `f(sector, from, to)` for each sector piece `[from, to)` of `[at, end)`, in
    /// order.
    #[inline]
    fn each_piece(&mut self, at: u64, end: u64, mut f: impl FnMut(&mut Sector, u64, u64)) {
        let mut from = at;
        match self {
            InodeSectors::Dense { first, list } => {
                let mut i = (at / SECTOR_BYTES - *first) as usize;
                while from < end {
                    let to = ((from / SECTOR_BYTES + 1) * SECTOR_BYTES).min(end);
                    f(&mut list[i], from, to);
                    (from, i) = (to, i + 1);
                }
            }
            InodeSectors::Sparse(map) => {
                while from < end {
                    let sector = from / SECTOR_BYTES;
                    let to = ((sector + 1) * SECTOR_BYTES).min(end);
                    f(map.entry(sector).or_default(), from, to);
                    from = to;
                }
            }
        }
    }

    /// Every dirty sector, in sector order.
    fn dirty(&mut self) -> Box<dyn Iterator<Item = &mut Sector> + '_> {
        match self {
            InodeSectors::Dense { list, .. } => Box::new(list.iter_mut().filter(|s| s.writes > 0)),
            InodeSectors::Sparse(map) => Box::new(map.values_mut()),
        }
    }
}

/// Sectors a dense vector may hold beyond twice the dirty pieces.
const DENSE_SLACK: u64 = 1024;

/// Calls `f(offset, bytes)` for each literal segment of a write, in order.
#[inline]
fn literals(offset: u64, data: &[Segment], mut f: impl FnMut(u64, &[u8])) {
    let mut at = offset;
    for s in data {
        match s {
            Segment::Bytes(b) => {
                if !b.is_empty() {
                    f(at, b);
                }
                at += b.len() as u64;
            }
            Segment::Zeros(n) => at += n,
        }
    }
}

/// The dirty sectors of the pending writes, per inode, each with the number of writes that
/// touch it.
fn count_writes(state: &CrashState<'_>) -> Vec<Option<InodeSectors>> {
    // Per inode: first and last dirty sector, and dirty pieces.
    let mut extent: Vec<Option<(u64, u64, u64)>> = vec![None; state.files.len()];
    for p in &state.pending {
        if let PendingOp::Write { offset, data } = p.op {
            literals(offset, data, |at, b| {
                let (first, last) = (at / SECTOR_BYTES, (at + b.len() as u64 - 1) / SECTOR_BYTES);
                let e = extent[p.ino].get_or_insert((first, last, 0));
                *e = (e.0.min(first), e.1.max(last), e.2 + last - first + 1);
            });
        }
    }
    let mut sectors: Vec<Option<InodeSectors>> = extent
        .iter()
        .map(|e| e.map(|(first, last, n)| InodeSectors::new(first, last, n)))
        .collect();
    for (i, p) in state.pending.iter().enumerate() {
        if let PendingOp::Write { offset, data } = p.op {
            // No table: the inode's pending writes are all zero runs.
            let Some(table) = sectors[p.ino].as_mut() else {
                continue;
            };
            literals(offset, data, |at, b| {
                table.each_piece(at, at + b.len() as u64, |s, _, _| {
                    s.writes += u32::from(first_touch(s, i));
                });
            });
        }
    }
    sectors
}

/// Surviving literal bytes that follow one another in one file, gathered to be written at
/// once: a log's surviving tail is thousands of small appends, and each write of a
/// [`Content`] looks its pages up. The same bytes and pages as writing them one by one: the
/// pieces do not overlap, and a piece of zeros over a hole leaves the hole either way
/// (gathered, a page's chunk is all zeros exactly when each of its pieces is). Anything else
/// done to the files (zero runs, size changes) writes the gathered bytes out first.
#[derive(Default)]
struct Run {
    ino: usize,
    start: u64,
    bytes: Vec<u8>,
}

impl Run {
    /// Bytes gathered at most, before they are written out.
    const MAX_BYTES: usize = 1 << 20;

    /// Writes `piece` at `at` of inode `ino`, now or with the gathered bytes.
    fn push(&mut self, files: &mut [Content], ino: usize, at: u64, piece: &[u8]) {
        if files[ino].is_sizes_only() {
            // Only the size is kept: nothing to gather.
            files[ino].write(at, piece);
            return;
        }
        let follows = self.ino == ino && self.start + self.bytes.len() as u64 == at;
        if !follows || self.bytes.len() >= Self::MAX_BYTES {
            self.flush(files);
            (self.ino, self.start) = (ino, at);
        }
        self.bytes.extend_from_slice(piece);
    }

    /// Writes the gathered bytes out.
    fn flush(&mut self, files: &mut [Content]) {
        if !self.bytes.is_empty() {
            files[self.ino].write(self.start, &self.bytes);
            self.bytes.clear();
        }
    }
}

pub(crate) fn reorder(state: &mut CrashState<'_>, rng: &mut SplitMix64) -> String {
    let q: f64 = rng.random();
    let mut sectors = count_writes(state);
    // Each sector's version, drawn in (inode, sector) order.
    let (mut dirty, mut latest, mut older) = (0usize, 0usize, 0usize);
    for table in sectors.iter_mut().flatten() {
        for s in table.dirty() {
            s.keep = if rng.random_bool(q) {
                s.writes
            } else if s.writes > 1 && rng.random_bool(0.5) {
                rng.random_range(1..s.writes)
            } else {
                0
            };
            dirty += 1;
            latest += usize::from(s.keep == s.writes);
            older += usize::from(s.keep > 0 && s.keep < s.writes);
            s.last = NONE;
        }
    }
    let (mut other_total, mut other_kept) = (0usize, 0usize);
    let mut run = Run::default();
    for (i, p) in state.pending.iter().enumerate() {
        match p.op {
            PendingOp::Write { offset, data } => {
                let mut table = sectors[p.ino].as_mut();
                literals(offset, data, |at, b| {
                    let table = table
                        .as_deref_mut()
                        .expect("counted: the write has literals");
                    table.each_piece(at, at + b.len() as u64, |s, from, to| {
                        s.seen += u32::from(first_touch(s, i));
                        // This write is the `seen`-th to touch the sector (1-based).
                        if s.seen <= s.keep {
                            let piece = &b[(from - at) as usize..(to - at) as usize];
                            run.push(&mut state.files, p.ino, from, piece);
                        }
                    });
                });
                let mut at = offset;
                for seg in data {
                    if let Segment::Zeros(n) = seg {
                        other_total += 1;
                        if rng.random_bool(q) {
                            run.flush(&mut state.files);
                            state.files[p.ino].zero(at, *n);
                            other_kept += 1;
                        }
                    }
                    at += seg.len();
                }
            }
            PendingOp::SetLen(_) | PendingOp::Allocate(..) => {
                other_total += 1;
                if rng.random_bool(q) {
                    run.flush(&mut state.files);
                    p.apply(&mut state.files);
                    other_kept += 1;
                }
            }
        }
    }
    run.flush(&mut state.files);
    format!(
        "reorder (q = {q:.2}): of {dirty} dirty sectors {latest} at their latest version, {older} at \
         an older one, {} lost; {other_kept} of {other_total} zero runs and size changes survive",
        dirty - latest - older
    )
}

#[cfg(test)]
pub(super) mod tests {
    use std::collections::BTreeMap;

    use rand::RngExt;

    use durlab_engine::backend::recording::Segment;

    use super::super::content::Content;
    use super::super::ops::Ino;
    use super::super::state::{CrashState, Pending, PendingOp};
    use super::{SECTOR_BYTES, reorder};
    use crate::workload::rng::SplitMix64;

    /// The reorder as first written (a hash map of `(inode, sector)`, two walks of every
    /// pending write piece by piece, the dirty sectors sorted): the reference the dense
    /// tables must give the same images and descriptions as, draw for draw.
    fn reference(state: &mut CrashState<'_>, rng: &mut SplitMix64) -> String {
        #[derive(Default, Clone, Copy)]
        struct Sector {
            writes: u32,
            keep: u32,
            seen: u32,
            last_seq: Option<usize>,
        }
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
        let q: f64 = rng.random();
        let mut sectors: std::collections::HashMap<(Ino, u64), Sector> = Default::default();
        for p in &state.pending {
            if let PendingOp::Write { offset, data } = p.op {
                literal_pieces(offset, data, |sector, _, _| {
                    let s = sectors.entry((p.ino, sector)).or_default();
                    if s.last_seq != Some(p.seq) {
                        s.writes += 1;
                        s.last_seq = Some(p.seq);
                    }
                });
            }
        }
        let mut keys: Vec<(Ino, u64)> = sectors.keys().copied().collect();
        keys.sort_unstable();
        let (mut latest, mut older) = (0usize, 0usize);
        for k in &keys {
            let s = sectors.get_mut(k).unwrap();
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
                        let s = sectors.get_mut(&(p.ino, sector)).unwrap();
                        if s.last_seq != Some(p.seq) {
                            s.seen += 1;
                            s.last_seq = Some(p.seq);
                        }
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
            "reorder (q = {q:.2}): of {} dirty sectors {latest} at their latest version, {older} \
             at an older one, {} lost; {other_kept} of {other_total} zero runs and size changes \
             survive",
            keys.len(),
            keys.len() - latest - older
        )
    }

    /// A random trace tail of `inodes` files: durable contents, and pending operations that
    /// are mostly small appends to a log (sectors shared by consecutive writes), with
    /// overwrites, writes far apart (sparse tables), zero runs inside writes, and size
    /// changes.
    pub(in crate::crashlab::images) struct Case {
        pub(in crate::crashlab::images) files: Vec<Content>,
        pub(in crate::crashlab::images) ops: Vec<(Ino, PendingKind)>,
    }

    pub(in crate::crashlab::images) enum PendingKind {
        Write(u64, Vec<Segment>),
        SetLen(u64),
        Allocate(u64, u64),
    }

    pub(in crate::crashlab::images) fn case(seed: u64) -> Case {
        let mut r = SplitMix64::new(seed);
        let inodes = r.random_range(1..4usize);
        let mut files = vec![Content::default(); inodes];
        for f in &mut files {
            for _ in 0..r.random_range(0..4) {
                let len = r.random_range(1..6000usize);
                let byte: u8 = r.random_range(1..=255);
                f.write(r.random_range(0..20_000), &vec![byte; len]);
            }
        }
        let mut end = vec![0u64; inodes];
        let mut ops = Vec::new();
        // Sometimes the last inode gets only zero runs and size changes.
        let zeros_only = inodes > 1 && r.random_bool(0.3);
        for _ in 0..r.random_range(0..300) {
            let ino = r.random_range(0..inodes);
            let kinds = if zeros_only && ino == inodes - 1 {
                8
            } else {
                100
            };
            let kind = match r.random_range(0..kinds) {
                0..3 => PendingKind::SetLen(r.random_range(0..end[ino] + 5000)),
                3..5 => PendingKind::Allocate(r.random_range(0..30_000), r.random_range(1..9000)),
                // Zero runs only (preallocation): an inode may have no literal bytes pending.
                5..8 => PendingKind::Write(
                    r.random_range(0..end[ino] + 9000),
                    vec![Segment::Zeros(r.random_range(1..9000))],
                ),
                k => {
                    let offset = match k {
                        8..13 => r.random_range(0..end[ino] + 1),
                        13..16 => r.random_range(0..1u64 << 30),
                        _ => end[ino],
                    };
                    let mut segs = Vec::new();
                    for _ in 0..r.random_range(1..4) {
                        segs.push(if r.random_bool(0.2) {
                            Segment::Zeros(r.random_range(1..3000))
                        } else {
                            let len = if r.random_bool(0.8) {
                                r.random_range(1..200usize)
                            } else {
                                r.random_range(200..5000usize)
                            };
                            // Zero bytes too: literal zeros over a hole leave the hole.
                            let byte = if r.random_bool(0.1) {
                                0
                            } else {
                                r.random_range(1..=255u8)
                            };
                            Segment::Bytes(vec![byte; len])
                        });
                    }
                    let len: u64 = segs.iter().map(Segment::len).sum();
                    if offset >= end[ino] && offset < 1 << 29 {
                        end[ino] = offset + len;
                    }
                    PendingKind::Write(offset, segs)
                }
            };
            ops.push((ino, kind));
        }
        Case { files, ops }
    }

    pub(in crate::crashlab::images) fn state(c: &Case) -> CrashState<'_> {
        let pending = c
            .ops
            .iter()
            .enumerate()
            .map(|(seq, (ino, kind))| Pending {
                seq: 100 + 3 * seq,
                ino: *ino,
                op: match kind {
                    PendingKind::Write(offset, data) => PendingOp::Write {
                        offset: *offset,
                        data,
                    },
                    PendingKind::SetLen(len) => PendingOp::SetLen(*len),
                    PendingKind::Allocate(offset, len) => PendingOp::Allocate(*offset, *len),
                },
            })
            .collect();
        CrashState {
            files: c.files.clone(),
            names: BTreeMap::new(),
            dirs: Vec::new(),
            pending,
            durable_ops: 0,
            prefix: vec![None; c.files.len()],
            source: None,
        }
    }

    /// The cases (of `seeds`) whose image (files, pages and bytes), description or next draw
    /// differs between [`reorder`] and [`reference`], after `spoil` changed reorder's image
    /// (the known-bad case of the companion tests); then those whose sizes differ between
    /// [`reorder`] on files that keep only their sizes (what ordering images by size builds)
    /// and [`reference`], after `spoil` changed the former; and how many cases were compared.
    fn mismatches(
        seeds: u64,
        spoil: &dyn Fn(&mut CrashState<'_>),
    ) -> (Vec<String>, Vec<String>, usize) {
        let (mut bad, mut bad_sizes, mut compared) = (Vec::new(), Vec::new(), 0);
        for seed in 0..seeds {
            let c = case(seed);
            for draw in 0..4u64 {
                let rng = SplitMix64::from_words(seed, draw);
                let (mut fast, mut slow, mut sized) = (state(&c), state(&c), state(&c));
                for f in &mut sized.files {
                    *f = Content::sizes_only(f.size());
                }
                let (mut r1, mut r2, mut r3) = (rng.clone(), rng.clone(), rng);
                let said = reorder(&mut fast, &mut r1);
                let want = reference(&mut slow, &mut r2);
                let said_sized = reorder(&mut sized, &mut r3);
                spoil(&mut fast);
                spoil(&mut sized);
                compared += 1;
                let next = [r1.random::<u64>(), r2.random::<u64>(), r3.random::<u64>()];
                if fast.files != slow.files || said != want || next[0] != next[1] {
                    bad.push(format!("seed {seed} draw {draw}: {said} / {want}"));
                }
                let sizes =
                    |s: &CrashState<'_>| s.files.iter().map(Content::size).collect::<Vec<_>>();
                if sizes(&sized) != sizes(&slow) || said_sized != want || next[2] != next[1] {
                    bad_sizes.push(format!("seed {seed} draw {draw}: {said_sized} / {want}"));
                }
            }
        }
        (bad, bad_sizes, compared)
    }

    #[test]
    fn dense_tables_give_the_images_of_the_reference() {
        let (bad, bad_sizes, compared) = mismatches(300, &|_| {});
        assert!(bad.is_empty(), "{} of {compared}: {bad:?}", bad.len());
        assert!(
            bad_sizes.is_empty(),
            "{} of {compared}: {bad_sizes:?}",
            bad_sizes.len()
        );
    }

    /// A companion: a file one byte longer in each image is caught, in both comparisons.
    #[test]
    fn a_changed_size_is_caught() {
        let longer = |s: &mut CrashState<'_>| {
            let f = &mut s.files[0];
            f.set_len(f.size() + 1);
        };
        let (bad, bad_sizes, compared) = mismatches(100, &longer);
        assert_eq!((bad.len(), bad_sizes.len()), (compared, compared));
    }

    /// The companion: one byte of one dirty sector changed in each image is caught.
    #[test]
    fn a_changed_sector_byte_is_caught() {
        let spoil = |s: &mut CrashState<'_>| {
            let Some(p) = s.pending.iter().find_map(|p| match p.op {
                PendingOp::Write { offset, data } => data
                    .iter()
                    .scan(offset, |at, seg| {
                        let here = *at;
                        *at += seg.len();
                        Some((here, seg))
                    })
                    .find(|(_, seg)| matches!(seg, Segment::Bytes(_)))
                    .map(|(at, _)| (p.ino, at)),
                _ => None,
            }) else {
                return;
            };
            let (ino, at) = p;
            let old = s.files[ino].byte(at);
            s.files[ino].write(at, &[old ^ 0x5A]);
        };
        let (bad, _, compared) = mismatches(300, &spoil);
        let with_writes = (0..300u64)
            .filter(|&seed| {
                case(seed)
                    .ops
                    .iter()
                    .any(|(_, k)| matches!(k, PendingKind::Write(_, segs) if segs.iter().any(|s| matches!(s, Segment::Bytes(_)))))
            })
            .count();
        assert_eq!(bad.len(), 4 * with_writes, "of {compared}");
        assert!(with_writes > 250, "{with_writes}");
    }

    /// The cases exercise both tables, every kind of version, zero runs and size changes.
    #[test]
    fn the_cases_cover_dense_and_sparse_tables() {
        let (mut dense, mut sparse, mut older, mut no_table) = (0, 0, 0, 0);
        for seed in 0..300 {
            let c = case(seed);
            let s = state(&c);
            let tables = super::count_writes(&s);
            for t in tables.iter().flatten() {
                match t {
                    super::InodeSectors::Dense { .. } => dense += 1,
                    super::InodeSectors::Sparse(_) => sparse += 1,
                }
            }
            // An inode with pending writes, all zero runs.
            no_table += usize::from(
                s.pending
                    .iter()
                    .any(|p| matches!(p.op, PendingOp::Write { .. }) && tables[p.ino].is_none()),
            );
            let mut s = state(&c);
            let said = reorder(&mut s, &mut SplitMix64::new(seed));
            older += usize::from(!said.contains(" 0 at an older one"));
        }
        assert!(
            dense > 100 && sparse > 50 && older > 100 && no_table > 20,
            "{dense} {sparse} {older} {no_table}"
        );
    }
}
