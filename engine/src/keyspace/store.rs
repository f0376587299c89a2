//! The keyspace's storage: an iteration-stable map from key to a shared entry, with
//! copy-on-write point-in-time snapshots (no fork).
//!
//! Keys live in an [`IndexMap`], so that a position is a stable cursor: inserts append, updates
//! stay in place, and a removal moves only the last element into the hole (`swap_remove`).
//! Entries are `Arc`-shared: a snapshot copies a chunk of keys and `Arc<Entry>` handles under
//! the engine's lock (into a [`SnapshotChunk`]: key bytes and reference-count increments) and
//! serializes them with the lock released; a writer that then modifies one of those entries
//! gets its own copy (`Arc::make_mut`).
//!
//! A store can also be built from entries hashed on another thread ([`KeyHasher`],
//! [`Store::insert_new_hashed`]): how a snapshot is loaded.
//!
//! While a snapshot is active, each slot's `epoch` tells whether the slot still holds the state
//! at the snapshot's start (epoch below the snapshot's) or was written since. At the first write
//! to a slot that the cursor has not reached yet, its pre-image is saved; the same happens to an
//! unvisited slot that a removal moves below the cursor. The cursor then emits every unvisited
//! slot that is unchanged, plus the saved pre-images: exactly the state at the start.
//! `docs/engine.md`, "Snapshots without fork", has the argument in full.

use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use foldhash::fast::RandomState;
use indexmap::IndexMap;
use indexmap::map::Entry as MapEntry;
use indexmap::map::raw_entry_v1::{RawEntryApiV1, RawEntryMut};

use super::chunk::SnapshotChunk;
use super::entry::Entry;
use super::journal::Journal;

/// One key's value and the epoch of its last write.
#[derive(Debug, Clone)]
pub(super) struct Slot {
    pub(super) entry: Arc<Entry>,
    pub(super) epoch: u64,
}

/// The map under a store.
pub(super) type Map = IndexMap<Vec<u8>, Slot, KeyState>;

/// The next lineage to hand out ([`Store::mark_base`]); 0 means none.
static NEXT_LINEAGE: AtomicU64 = AtomicU64::new(1);

/// An active point-in-time snapshot: where its cursor is, and the pre-images it must emit.
#[derive(Debug)]
struct Cursor {
    /// Slots written at this epoch or later are not part of the snapshot as they stand.
    epoch: u64,
    /// Positions below this have been emitted.
    next: usize,
    /// Number of keys at the start: positions at or above it never hold an unvisited
    /// snapshot member (members only ever move down, to fill holes).
    end: usize,
    /// Pre-images of members modified, removed or moved below the cursor before it got there.
    saved: SnapshotChunk,
    /// Allocations the snapshot no longer needs, for writers' copies on write (see
    /// [`SnapshotChunk::clear`]).
    spares: Vec<Arc<Entry>>,
}

/// The keys' hasher: foldhash, seeded per map. SipHash (std's) took about 7% of the CPU of
/// a crash-lab run, which is mostly recovery; `durlab serve` listens on 127.0.0.1 only, so
/// there are no untrusted keys to flood one bucket.
type KeyState = RandomState;

/// Hashes keys exactly as one [`Store`]'s map does (a copy of its hasher), so that another
/// thread can hash keys for it ahead of [`Store::insert_new_hashed`].
#[derive(Debug, Clone)]
pub(crate) struct KeyHasher(KeyState);

impl KeyHasher {
    /// The hash the store's map gives `key` (`Vec<u8>` hashes as its slice).
    pub(crate) fn hash(&self, key: &[u8]) -> u64 {
        self.0.hash_one(key)
    }
}

/// Map from key to entry with copy-on-write snapshots; see the module docs.
#[derive(Debug, Default)]
pub(crate) struct Store {
    map: Map,
    /// Stamped on every slot written; raised when a snapshot or a journal begins.
    epoch: u64,
    cursor: Option<Cursor>,
    /// While lent from a replay base: the records that put the store back ([`Journal`]).
    journal: Option<Journal>,
    /// Nonzero on a store that is never written again (a replay base's keyspace,
    /// [`Store::mark_base`]): names its state, so that a copy's journal can say it started
    /// from exactly this state.
    lineage: u64,
}

impl Clone for Store {
    /// A shallow copy (entries shared until written) without the active snapshot or journal,
    /// if any, and without a lineage (the copy may be written).
    fn clone(&self) -> Self {
        Store {
            map: self.map.clone(),
            epoch: self.epoch,
            cursor: None,
            journal: None,
            lineage: 0,
        }
    }
}

impl Cursor {
    /// Saves the pre-image of the slot at `index` if the cursor still needs it.
    fn before_write(&mut self, index: usize, key: &[u8], slot: &Slot) {
        if slot.epoch < self.epoch && index >= self.next {
            self.saved.push(key, slot.entry.clone());
        }
    }

    /// `entry` in a shared allocation: a spare one if there is one.
    fn new_shared(&mut self, entry: Entry) -> Arc<Entry> {
        match self.spares.pop() {
            Some(mut spare) => match Arc::get_mut(&mut spare) {
                // Drops the spare's old entry here, on the writer's thread.
                Some(old) => {
                    *old = entry;
                    spare
                }
                None => Arc::new(entry),
            },
            None => Arc::new(entry),
        }
    }
}

/// `entry` in a shared allocation, a spare one of `cursor` if it has one.
fn new_shared(cursor: Option<&mut Cursor>, entry: Entry) -> Arc<Entry> {
    match cursor {
        Some(c) => c.new_shared(entry),
        None => Arc::new(entry),
    }
}

/// Passes a change to the journal, if any; drops a journal that is full.
fn journal(journal: &mut Option<Journal>, record: impl FnOnce(&mut Journal) -> bool) {
    if let Some(j) = journal
        && !record(j)
    {
        *journal = None;
    }
}

impl Store {
    pub(crate) fn with_capacity(keys: usize) -> Self {
        Store {
            map: IndexMap::with_capacity_and_hasher(keys, KeyState::default()),
            ..Store::default()
        }
    }

    pub(crate) fn reserve(&mut self, additional: usize) {
        self.map.reserve(additional);
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// A copy of the map's hasher (see [`KeyHasher`]).
    pub(crate) fn key_hasher(&self) -> KeyHasher {
        KeyHasher(self.map.hasher().clone())
    }

    /// True if `key`, whose hash under [`Store::key_hasher`] is `hash`, is present: a read-only
    /// probe, also useful to bring the map's memory for `key` into the cache before inserting
    /// it (see [`super::bulk`]).
    pub(crate) fn contains_hashed(&self, hash: u64, key: &[u8]) -> bool {
        self.map
            .raw_entry_v1()
            .index_from_hash(hash, |k| k.as_slice() == key)
            .is_some()
    }

    /// Stores `entry` under `key`, which must be absent, given `hash` = `key_hasher().hash(key)`:
    /// one probe of the map, no hashing. Gives `key` and `entry` back if `key` is present.
    /// Only for building a store that no snapshot is reading.
    pub(crate) fn insert_new_hashed(
        &mut self,
        hash: u64,
        key: Vec<u8>,
        entry: Arc<Entry>,
    ) -> Result<(), (Vec<u8>, Arc<Entry>)> {
        debug_assert!(
            self.cursor.is_none() && self.journal.is_none(),
            "no snapshot reads and no journal records a store being built"
        );
        debug_assert_eq!(hash, self.map.hasher().hash_one(key.as_slice()));
        match self.map.raw_entry_mut_v1().from_hash(hash, |k| *k == key) {
            RawEntryMut::Vacant(v) => {
                let epoch = self.epoch;
                v.insert_hashed_nocheck(hash, key, Slot { entry, epoch });
                Ok(())
            }
            RawEntryMut::Occupied(_) => Err((key, entry)),
        }
    }

    pub(crate) fn get(&self, key: &[u8]) -> Option<&Entry> {
        self.map.get(key).map(|s| &*s.entry)
    }

    pub(crate) fn contains_key(&self, key: &[u8]) -> bool {
        self.map.contains_key(key)
    }

    pub(crate) fn iter(&self) -> impl ExactSizeIterator<Item = (&[u8], &Entry)> + '_ {
        self.map.iter().map(|(k, s)| (k.as_slice(), &*s.entry))
    }

    /// The entry under `key` for modification (copied first if a snapshot still shares it).
    pub(crate) fn get_mut(&mut self, key: &[u8]) -> Option<&mut Entry> {
        let (index, k, slot) = self.map.get_full_mut(key)?;
        if let Some(c) = &mut self.cursor {
            c.before_write(index, k, slot);
        }
        // Keeps a reference to the prior entry: the copy on write below then copies it.
        journal(&mut self.journal, |j| j.before_write(index, k, slot));
        slot.epoch = self.epoch;
        // Copy on write, as `Arc::make_mut`, into a spare allocation when there is one.
        if Arc::get_mut(&mut slot.entry).is_none() {
            let copy = Entry::clone(&slot.entry);
            slot.entry = new_shared(self.cursor.as_mut(), copy);
        }
        Some(Arc::get_mut(&mut slot.entry).expect("unique after the copy"))
    }

    /// Stores `entry` under `key`, reusing the old entry's allocation when nothing shares it.
    pub(crate) fn put(&mut self, key: Vec<u8>, entry: Entry) {
        match self.map.entry(key) {
            MapEntry::Occupied(mut o) => {
                let index = o.index();
                if let Some(c) = &mut self.cursor {
                    c.before_write(index, o.key(), o.get());
                }
                journal(&mut self.journal, |j| {
                    j.before_write(index, o.key(), o.get())
                });
                let slot = o.get_mut();
                slot.epoch = self.epoch;
                match Arc::get_mut(&mut slot.entry) {
                    Some(e) => *e = entry,
                    None => slot.entry = new_shared(self.cursor.as_mut(), entry),
                }
            }
            MapEntry::Vacant(v) => {
                let index = v.index();
                v.insert(Slot {
                    entry: new_shared(self.cursor.as_mut(), entry),
                    epoch: self.epoch,
                });
                let map = &self.map;
                journal(&mut self.journal, |j| {
                    j.inserted(map.get_index(index).expect("just inserted").0)
                });
            }
        }
    }

    /// Stores `entry` under `key`, returning the entry it replaced.
    pub(crate) fn replace(&mut self, key: Vec<u8>, entry: Entry) -> Option<Arc<Entry>> {
        let old = self.map.get(key.as_slice()).map(|s| s.entry.clone());
        self.put(key, entry);
        old
    }

    /// Every key at which `self` and `base` may differ: keys whose entry is not the very
    /// allocation `base` holds under the same key, and keys of `base` that `self` lacks. Keys
    /// left out hold the same shared entry in both, which is therefore equal: an entry that
    /// two maps share is never written in place (copy on write, [`Store::get_mut`]). Cheap
    /// for a map cloned from `base` and then changed a little: one pass comparing positions,
    /// and a lookup only where a key moved or was removed. May list a key twice.
    ///
    /// A store lent from `base` ([`Store::begin_journal`] from `base`) lists the keys
    /// of its journal instead, without a pass over `base`.
    pub(crate) fn changed_keys<'a>(&'a self, base: &'a Store) -> Vec<&'a [u8]> {
        if let Some(j) = &self.journal
            && base.lineage != 0
            && j.lineage == base.lineage
        {
            return j.keys();
        }
        let mut out = Vec::new();
        let n = self.map.len().min(base.map.len());
        let (ours, theirs) = (&self.map.as_slice()[..n], &base.map.as_slice()[..n]);
        for ((k, s), (bk, bs)) in ours.iter().zip(theirs) {
            if k == bk && Arc::ptr_eq(&s.entry, &bs.entry) {
                continue;
            }
            out.push(k.as_slice());
            if k != bk && !self.map.contains_key(bk.as_slice()) {
                out.push(bk.as_slice());
            }
        }
        out.extend(self.map.as_slice()[n..].keys().map(Vec::as_slice));
        out.extend(
            base.map.as_slice()[n..]
                .keys()
                .filter(|bk| !self.map.contains_key(bk.as_slice()))
                .map(Vec::as_slice),
        );
        out
    }

    /// Marks this store as a replay base's state, never written again, with a lineage of its
    /// own: copies of it lent with [`Store::begin_journal`] from it list their changed
    /// keys from their journal ([`Store::changed_keys`]). A journal of its own (the store was
    /// lent to the recovery whose state becomes the base) ends, keeping every change.
    /// Returns the lineage.
    pub(crate) fn mark_base(&mut self) -> u64 {
        self.journal = None;
        self.lineage = NEXT_LINEAGE.fetch_add(1, Ordering::Relaxed);
        self.lineage
    }

    /// Starts recording how to undo every change from now on ([`super::journal`]), on a store
    /// equal to `base` (a copy of it, or one put back by [`Store::undo_journal`]), naming
    /// `base`'s lineage. Any journal already active is dropped.
    pub(crate) fn begin_journal(&mut self, base: &Store) {
        debug_assert!(self.cursor.is_none(), "a store is lent without a snapshot");
        self.epoch += 1;
        self.journal = Some(Journal::new(self.epoch, base.lineage));
    }

    /// Undoes every change since [`Store::begin_journal`] and ends the journal: the store is
    /// again exactly as it was then (the same keys in the same positions, holding the same
    /// entry allocations with the same epochs). An active snapshot is abandoned. False, and
    /// the store left as it is, without a journal (none begun, or dropped when full).
    pub(crate) fn undo_journal(&mut self) -> bool {
        let Some(j) = self.journal.take() else {
            return false;
        };
        self.cursor = None;
        self.epoch = j.epoch - 1;
        j.undo(&mut self.map);
        true
    }

    /// Removes `key`, returning its entry.
    pub(crate) fn remove(&mut self, key: &[u8]) -> Option<Arc<Entry>> {
        let (index, k, slot) = self.map.swap_remove_full(key)?;
        if let Some(c) = &mut self.cursor {
            c.before_write(index, &k, &slot);
            // The last slot moved into `index`: if that takes an unvisited member below the
            // cursor, the cursor would never see it, so save it now.
            let moved_from = self.map.len();
            if index < moved_from && index < c.next && moved_from >= c.next {
                let (mk, ms) = self.map.get_index(index).expect("moved slot");
                if ms.epoch < c.epoch {
                    c.saved.push(mk, ms.entry.clone());
                }
            }
        }
        if self.journal.is_none() {
            return Some(slot.entry);
        }
        let entry = slot.entry.clone();
        journal(&mut self.journal, |j| j.removed(index, k, slot));
        Some(entry)
    }

    /// Removes every key (saving what an active snapshot still needs).
    pub(crate) fn clear(&mut self) {
        if let Some(c) = &mut self.cursor {
            for (index, (k, slot)) in self.map.iter().enumerate().skip(c.next) {
                c.before_write(index, k, slot);
            }
        }
        if self.journal.is_some() {
            let empty = Map::with_hasher(self.map.hasher().clone());
            let old = std::mem::replace(&mut self.map, empty);
            journal(&mut self.journal, |j| j.cleared(old));
        } else {
            self.map.clear();
        }
    }

    /// Starts a point-in-time snapshot of the current state. Any snapshot already active is
    /// abandoned.
    pub(crate) fn begin_snapshot(&mut self) {
        self.epoch += 1;
        self.cursor = Some(Cursor {
            epoch: self.epoch,
            next: 0,
            end: self.map.len(),
            saved: SnapshotChunk::new(),
            spares: Vec::new(),
        });
    }

    /// Appends the next part of the active snapshot to `out`: pending pre-images and up to
    /// `max_slots` more positions. Returns true (and ends the snapshot) once everything has
    /// been emitted; also true if no snapshot is active.
    pub(crate) fn snapshot_chunk(&mut self, max_slots: usize, out: &mut SnapshotChunk) -> bool {
        let Some(c) = &mut self.cursor else {
            return true;
        };
        out.append(&mut c.saved);
        out.give_spares(&mut c.spares);
        c.end = c.end.min(self.map.len());
        let stop = c.end.min(c.next.saturating_add(max_slots));
        if let Some(slots) = self.map.get_range(c.next..stop) {
            // First read every key and reference count of the range with plain loads, whose
            // cache misses the CPU overlaps; the copies below then hit the cache. Otherwise
            // each reference-count increment (a locked instruction, which overlaps nothing)
            // waits for its own miss, and writers wait for the lock that much longer.
            let touched: usize = slots
                .iter()
                .map(|(k, slot)| {
                    Arc::strong_count(&slot.entry) + usize::from(k.first().copied().unwrap_or(0))
                })
                .sum();
            std::hint::black_box(touched);
            for (k, slot) in slots {
                if slot.epoch < c.epoch {
                    out.push(k, slot.entry.clone());
                }
            }
        }
        c.next = stop.max(c.next);
        let done = c.next >= c.end;
        if done {
            // Dropped with `out`, outside the lock.
            out.take_spares(&mut c.spares);
            self.cursor = None;
        }
        done
    }

    /// Abandons the active snapshot, if any.
    pub(crate) fn abort_snapshot(&mut self) {
        self.cursor = None;
    }

    /// True while a snapshot is active.
    pub(crate) fn snapshot_active(&self) -> bool {
        self.cursor.is_some()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;
    use crate::keyspace::Value;

    fn entry(v: u8) -> Entry {
        Entry::new(Value::Str(vec![v]))
    }

    fn state(store: &Store) -> BTreeMap<Vec<u8>, Entry> {
        store.iter().map(|(k, e)| (k.to_vec(), e.clone())).collect()
    }

    #[derive(Debug, Clone)]
    enum Op {
        Write(Write),
        Chunk(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => write().prop_map(Op::Write),
            1 => (1u8..8).prop_map(Op::Chunk),
        ]
    }

    proptest! {
        /// Whatever writes interleave with the chunks, the snapshot emits each key that existed
        /// at its start exactly once, with its value at the start.
        #[test]
        fn snapshot_is_point_in_time(
            initial in proptest::collection::vec((0u8..40, any::<u8>()), 0..40),
            ops in proptest::collection::vec(op(), 0..120),
        ) {
            let mut store = Store::default();
            for (k, v) in initial {
                store.put(vec![k], entry(v));
            }
            let at_start = state(&store);
            store.begin_snapshot();
            let mut out = SnapshotChunk::new();
            let mut done = false;
            for op in ops {
                match op {
                    Op::Write(w) => apply_write(&mut store, &w),
                    Op::Chunk(n) if !done => done = store.snapshot_chunk(n as usize, &mut out),
                    Op::Chunk(_) => {}
                }
            }
            while !done {
                done = store.snapshot_chunk(3, &mut out);
            }
            prop_assert!(!store.snapshot_active());
            let emitted: BTreeMap<Vec<u8>, Entry> =
                out.iter().map(|(k, e)| (k.to_vec(), e.clone())).collect();
            prop_assert_eq!(emitted.len(), out.len(), "a key was emitted twice");
            prop_assert_eq!(emitted, at_start);
        }
    }

    #[test]
    fn hashed_inserts_are_found_and_refuse_duplicates() {
        let mut store = Store::with_capacity(100);
        let hasher = store.key_hasher();
        for k in 0..100u8 {
            let key = vec![k; usize::from(k % 7)];
            let hash = hasher.hash(&key);
            let outcome = store.insert_new_hashed(hash, key, Arc::new(entry(k)));
            // Keys repeat (same byte, same length) once k % 7 == 0 has been seen.
            assert_eq!(outcome.is_err(), k >= 7 && k % 7 == 0, "key {k}");
        }
        for k in 0..100u8 {
            let key = vec![k; usize::from(k % 7)];
            assert!(store.contains_key(&key), "key {k}");
            assert!(store.contains_hashed(hasher.hash(&key), &key), "key {k}");
        }
        assert!(!store.contains_hashed(hasher.hash(b"absent"), b"absent"));
        store.put(b"new".to_vec(), entry(1));
        assert_eq!(store.get(b"new"), Some(&entry(1)));
    }

    /// An entry that a writer replaced while a chunk held it comes back, once the chunk is
    /// cleared, as the allocation of a later copy on write.
    #[test]
    fn replaced_entries_are_reused_for_copies_on_write() {
        let mut store = Store::default();
        for k in 0..4u8 {
            store.put(vec![k], entry(k));
        }
        store.begin_snapshot();
        let mut out = SnapshotChunk::new();
        assert!(!store.snapshot_chunk(1, &mut out));
        let old = Arc::as_ptr(&store.map[0].entry);
        store.put(vec![0], entry(10)); // shared with `out`: a new allocation
        out.clear(); // `out` held the last reference to the old entry: a spare
        assert!(!store.snapshot_chunk(1, &mut out));
        store.put(vec![3], entry(13)); // unvisited, so saved: copy on write into the spare
        assert_eq!(Arc::as_ptr(&store.map[3].entry), old);
        store.get_mut(&[2]).unwrap().value = Value::Str(vec![12]);
        while !store.snapshot_chunk(1, &mut out) {}
        let emitted: BTreeMap<Vec<u8>, Entry> =
            out.iter().map(|(k, e)| (k.to_vec(), e.clone())).collect();
        assert_eq!(emitted.len(), 3, "keys 1, 2 (pre-image) and 3 (pre-image)");
        assert_eq!(emitted[&vec![3]], entry(3));
        assert_eq!(emitted[&vec![2]], entry(2));
        assert_eq!(store.get(&[3]), Some(&entry(13)));
        assert_eq!(store.get(&[0]), Some(&entry(10)));
    }

    #[derive(Debug, Clone)]
    enum Write {
        Put(u8, u8),
        Modify(u8, u8),
        Remove(u8),
        Clear,
    }

    fn write() -> impl Strategy<Value = Write> {
        prop_oneof![
            8 => (0u8..30, any::<u8>()).prop_map(|(k, v)| Write::Put(k, v)),
            8 => (0u8..30, any::<u8>()).prop_map(|(k, v)| Write::Modify(k, v)),
            8 => (0u8..30).prop_map(Write::Remove),
            1 => Just(Write::Clear),
        ]
    }

    fn apply_write(store: &mut Store, w: &Write) {
        match *w {
            Write::Put(k, v) => store.put(vec![k], entry(v)),
            Write::Modify(k, v) => {
                if let Some(e) = store.get_mut(&[k]) {
                    e.value = Value::Str(vec![v, v]);
                }
            }
            Write::Remove(k) => {
                store.remove(&[k]);
            }
            Write::Clear => store.clear(),
        }
    }

    /// Whether `a` is `b` exactly: the same keys in the same positions, holding the very same
    /// entry allocations with the same epochs, and the same store epoch.
    fn identical(a: &Store, b: &Store) -> bool {
        a.epoch == b.epoch
            && a.map.len() == b.map.len()
            && a.map.iter().zip(&b.map).all(|((ka, sa), (kb, sb))| {
                ka == kb && Arc::ptr_eq(&sa.entry, &sb.entry) && sa.epoch == sb.epoch
            })
    }

    /// A base store of `initial`, marked as a base, and a copy of it lent (journaled).
    fn lent(initial: &[(u8, u8)]) -> (Store, Store) {
        let mut base = Store::default();
        for &(k, v) in initial {
            base.put(vec![k], entry(v));
        }
        base.begin_snapshot(); // an older epoch on the base's slots than on its store
        while !base.snapshot_chunk(64, &mut SnapshotChunk::new()) {}
        base.mark_base();
        let mut copy = base.clone();
        copy.begin_journal(&base);
        (base, copy)
    }

    proptest! {
        /// Whatever writes a lent copy takes, its journal lists every key where it differs from
        /// the base, and undoing the journal gives back the base exactly.
        #[test]
        fn a_journal_lists_every_change_and_undoes_to_the_exact_start(
            initial in proptest::collection::vec((0u8..30, any::<u8>()), 0..30),
            writes in proptest::collection::vec(write(), 0..80),
        ) {
            let (base, mut copy) = lent(&initial);
            let mut model: BTreeMap<Vec<u8>, Entry> = state(&base);
            for w in &writes {
                apply_write(&mut copy, w);
                match *w {
                    Write::Put(k, v) => {
                        model.insert(vec![k], entry(v));
                    }
                    Write::Modify(k, v) => {
                        if let Some(e) = model.get_mut(&vec![k]) {
                            e.value = Value::Str(vec![v, v]);
                        }
                    }
                    Write::Remove(k) => {
                        model.remove(&vec![k]);
                    }
                    Write::Clear => model.clear(),
                }
            }
            prop_assert_eq!(&state(&copy), &model, "the writes took effect");
            let listed: std::collections::BTreeSet<&[u8]> =
                copy.changed_keys(&base).into_iter().collect();
            let (was, now) = (state(&base), state(&copy));
            for k in was.keys().chain(now.keys()) {
                if was.get(k) != now.get(k) {
                    prop_assert!(listed.contains(k.as_slice()), "key {:?} changed, unlisted", k);
                }
            }
            prop_assert!(copy.undo_journal());
            prop_assert!(identical(&copy, &base));
            prop_assert!(copy.journal.is_none());
            prop_assert!(copy.changed_keys(&base).is_empty(), "no journal: the scan finds nothing");
            // The same copy lent again takes writes and comes back again.
            copy.begin_journal(&base);
            for w in writes.iter().rev() {
                apply_write(&mut copy, w);
            }
            prop_assert!(copy.undo_journal());
            prop_assert!(identical(&copy, &base));
        }

        /// The companion: a journal missing the record of one write gives back a store that
        /// `identical` tells from the base (or the undo stops on its invariant).
        #[test]
        fn a_journal_missing_a_record_is_caught(
            initial in proptest::collection::vec((0u8..30, any::<u8>()), 1..30),
            writes in proptest::collection::vec(write(), 1..80),
        ) {
            let (base, mut copy) = lent(&initial);
            let mut dropped = false;
            for w in &writes {
                let before = copy.journal.as_ref().map(|j| j.len());
                apply_write(&mut copy, w);
                // Drop the record of the first write that left one.
                if !dropped && copy.journal.as_ref().map(|j| j.len()) != before {
                    copy.journal.as_mut().unwrap().forget_newest();
                    dropped = true;
                }
            }
            prop_assume!(dropped);
            // An undo that finds a key out of place panics on its invariant: caught too.
            let undone = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                copy.undo_journal();
                identical(&copy, &base)
            }));
            prop_assert!(
                !matches!(undone, Ok(true)),
                "an undo without a record came back identical"
            );
        }
    }

    /// A journal that outgrows its limit is dropped: the store is no longer lent, cannot be
    /// put back, and is compared with its base by the scan.
    #[test]
    fn a_full_journal_is_dropped() {
        let (base, mut copy) = lent(&[(1, 1), (2, 2)]);
        for i in 0..crate::keyspace::journal::MAX_UNDO_RECORDS as u32 {
            copy.put(i.to_le_bytes().to_vec(), entry(3));
        }
        assert!(copy.journal.is_some(), "exactly full");
        copy.put(b"one more".to_vec(), entry(4));
        assert!(copy.journal.is_none(), "over the limit");
        assert!(!copy.undo_journal());
        assert_eq!(
            copy.len(),
            2 + crate::keyspace::journal::MAX_UNDO_RECORDS + 1
        );
        assert_eq!(copy.changed_keys(&base).len(), copy.len() - 2);
    }

    /// A journal lists its keys only against the base it was lent from: against another
    /// store with the same content it is ignored, and the scan lists what differs.
    #[test]
    fn a_journal_speaks_only_for_its_own_base() {
        let (base, mut copy) = lent(&[(1, 1), (2, 2)]);
        copy.get_mut(&[1]).unwrap().value = Value::Str(vec![9]);
        assert_eq!(copy.changed_keys(&base), [&[1u8][..]]);
        let mut other = base.clone();
        assert_eq!(copy.changed_keys(&other).len(), 1, "unmarked: the scan");
        other.mark_base();
        let mut listed = copy.changed_keys(&other);
        listed.sort();
        assert_eq!(listed, [&[1u8][..]], "another lineage: the scan");
        // The scan of an unrelated store with equal content lists every key: its entries are
        // other allocations. The journal would have listed only key 1.
        let mut unrelated = Store::default();
        unrelated.put(vec![1], entry(1));
        unrelated.put(vec![2], entry(2));
        unrelated.mark_base();
        assert_eq!(copy.changed_keys(&unrelated).len(), 2);
    }

    #[test]
    fn changed_keys_lists_every_key_where_a_clone_differs() {
        let mut base = Store::default();
        for i in 0..6u8 {
            base.put(vec![i], entry(i));
        }
        let mut s = base.clone();
        assert!(s.changed_keys(&base).is_empty(), "an untouched clone");
        s.get_mut(&[1]).unwrap().value = Value::Str(vec![11]); // written in place
        s.put(vec![2], entry(2)); // rewritten, same content: listed (a new allocation)
        s.remove(&[0]); // key 5 moves into position 0
        s.put(vec![9], entry(9)); // new
        let mut got: Vec<Vec<u8>> = s.changed_keys(&base).iter().map(|k| k.to_vec()).collect();
        got.sort();
        got.dedup();
        assert_eq!(got, [vec![0], vec![1], vec![2], vec![5], vec![9]]);
        // A removal from the end: the base's key past the clone's length.
        let mut t = base.clone();
        t.remove(&[5]);
        let got: Vec<&[u8]> = t.changed_keys(&base);
        assert_eq!(got, [&[5u8][..]]);
        // Keys unlisted are equal in both.
        for (k, e) in s.iter() {
            if !got.contains(&k) && !s.changed_keys(&base).contains(&k) {
                assert_eq!(base.get(k), Some(e));
            }
        }
    }

    #[test]
    fn clone_is_shallow_and_independent() {
        let mut a = Store::default();
        a.put(b"k".to_vec(), entry(1));
        let b = a.clone();
        a.get_mut(b"k").unwrap().value = Value::Str(vec![2]);
        assert_eq!(b.get(b"k"), Some(&entry(1)));
        assert_eq!(a.get(b"k").unwrap().value, Value::Str(vec![2]));
    }
}
