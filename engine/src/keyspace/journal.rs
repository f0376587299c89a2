//! A store's undo journal: how a copy of a replay base's keyspace is lent to one recovery and
//! then put back exactly as it was, instead of copying the base's keyspace for every recovery
//! (`crate::engine::ReplayBase`; a copy of 100k keys, and its drop, cost about a fifth of
//! the crash lab's CPU per image).
//!
//! From [`super::store::Store::begin_journal`] on, every change to the map leaves the record
//! that undoes it: the prior slot of a key's first write since the journal began (later
//! writes of that key need none, as the first record's undo overwrites them), every append and
//! every removal (they move keys, so each must be undone in turn), and a clear (the whole old
//! map). Undone newest first, the records give back the map of the start: the same keys in the
//! same positions with the same entry allocations and epochs. A slot's epoch tells whether it
//! was written since the journal began, as it does for a snapshot (`docs/engine.md`).
//!
//! The records also list every key that may differ from the start ([`Journal::keys`]), which
//! lets a checker compare a recovered keyspace with its base in time proportional to what
//! changed, without a pass over the base.

use super::store::{Map, Slot};

/// Records a journal holds at most: past this the journal is dropped (its store is then no
/// longer lent, only owned, and a checker compares it with its base key by key). Recovery from
/// a base replays at most a trace's unsynced tail, far fewer records; an engine that goes on
/// writing after open would otherwise keep the prior entries of every key it writes.
pub(crate) const MAX_UNDO_RECORDS: usize = 1 << 16;

/// The inverse of one change to the map.
#[derive(Debug)]
enum Undo {
    /// The first write since the journal began to the key at `index`: its prior slot.
    Replaced {
        index: usize,
        key: Vec<u8>,
        slot: Slot,
    },
    /// `key` was appended (at the map's end).
    Inserted { key: Vec<u8> },
    /// `key` was swap-removed from `index` (the last key moved into its place).
    Removed {
        index: usize,
        key: Vec<u8>,
        slot: Slot,
    },
    /// Every key was removed: the map as it was.
    Cleared(Map),
}

/// The undo records of one store since its journal began.
#[derive(Debug)]
pub(crate) struct Journal {
    /// The store's epoch while journaling: a slot stamped below it has not been written since
    /// the journal began. The store's epoch at the start is one less.
    pub(crate) epoch: u64,
    /// The base state the journal started from ([`super::store::Store::lineage`]).
    pub(crate) lineage: u64,
    undo: Vec<Undo>,
}

impl Journal {
    pub(crate) fn new(epoch: u64, lineage: u64) -> Journal {
        debug_assert!(epoch > 0, "the epoch is raised when a journal begins");
        Journal {
            epoch,
            lineage,
            undo: Vec::new(),
        }
    }

    /// Before a write to the slot of `key` at `index`: keeps its prior state if this is its
    /// first write since the journal began. False once the journal is full (drop it).
    #[must_use]
    pub(crate) fn before_write(&mut self, index: usize, key: &[u8], slot: &Slot) -> bool {
        if slot.epoch >= self.epoch {
            return true;
        }
        self.push(Undo::Replaced {
            index,
            key: key.to_vec(),
            slot: slot.clone(),
        })
    }

    /// After `key` was appended. False once the journal is full.
    #[must_use]
    pub(crate) fn inserted(&mut self, key: &[u8]) -> bool {
        self.push(Undo::Inserted { key: key.to_vec() })
    }

    /// After `key` (holding `slot`) was swap-removed from `index`. False once the journal is
    /// full.
    #[must_use]
    pub(crate) fn removed(&mut self, index: usize, key: Vec<u8>, slot: Slot) -> bool {
        self.push(Undo::Removed { index, key, slot })
    }

    /// After the map was cleared: `old` is what it held. False once the journal is full.
    #[must_use]
    pub(crate) fn cleared(&mut self, old: Map) -> bool {
        self.push(Undo::Cleared(old))
    }

    /// Records held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.undo.len()
    }

    /// Loses the newest record (the companion of the undo tests: a journal missing one).
    #[cfg(test)]
    pub(crate) fn forget_newest(&mut self) {
        self.undo.pop();
    }

    fn push(&mut self, undo: Undo) -> bool {
        if self.undo.len() >= MAX_UNDO_RECORDS {
            return false;
        }
        self.undo.push(undo);
        true
    }

    /// Every key whose entry or presence may differ from the start (possibly some twice).
    /// A key left out was neither written, added nor removed since: it holds the very slot
    /// it held then.
    pub(crate) fn keys(&self) -> Vec<&[u8]> {
        let mut out = Vec::with_capacity(self.undo.len());
        for u in &self.undo {
            match u {
                Undo::Replaced { key, .. } | Undo::Inserted { key } | Undo::Removed { key, .. } => {
                    out.push(key.as_slice());
                }
                // Keys added after the clear have their own `Inserted`.
                Undo::Cleared(old) => out.extend(old.keys().map(Vec::as_slice)),
            }
        }
        out
    }

    /// Undoes every record into `map`, newest first: `map` is then exactly the map of the
    /// journal's start.
    ///
    /// # Panics
    /// If `map` was changed other than through its store while journaling (a record's key is
    /// not where the record says): the state it would give back is not the start's.
    pub(crate) fn undo(self, map: &mut Map) {
        for u in self.undo.into_iter().rev() {
            match u {
                Undo::Replaced { index, key, slot } => {
                    let (k, s) = map.get_index_mut(index).expect("a replaced key's position");
                    assert_eq!(*k, key, "the key replaced at position {index}");
                    *s = slot;
                }
                Undo::Inserted { key } => {
                    let (k, _) = map.pop().expect("an inserted key");
                    assert_eq!(k, key, "the key inserted last");
                }
                Undo::Removed { index, key, slot } => {
                    let (at, old) = map.insert_full(key, slot);
                    assert!(old.is_none(), "a removed key is absent until put back");
                    // The key that moved into `index` goes back to the end, where it was.
                    map.swap_indices(index, at);
                }
                Undo::Cleared(old) => {
                    assert!(map.is_empty(), "keys added after a clear are undone first");
                    *map = old;
                }
            }
        }
    }
}
