//! A chunk of a point-in-time snapshot: keys with their shared entries, the keys' bytes packed
//! in one buffer. Filling one costs a copy of each key and a reference-count increment, but no
//! allocation per key once the buffers have grown: the snapshot fills chunks under the engine's
//! lock, and writers must not wait for the allocator there, nor find its arenas contended by
//! frees of thousands of key copies later.
//!
//! A chunk also recycles allocations. A writer that replaces an entry a snapshot still holds
//! needs a new `Arc` (copy on write); the old one is then freed by the snapshot thread once it
//! has written it. Instead, [`SnapshotChunk::clear`] keeps the entries it was the last to hold
//! as spares (at most [`SPARES_MAX`]), which the store hands to writers for their next copy on
//! write: no allocation on the writers' path, so no fresh memory to fault in (about one write
//! in sixty would page-fault otherwise, a few microseconds each), and the replaced value is
//! freed by the writer, as without a snapshot.

use std::sync::Arc;

use super::entry::Entry;

/// Most spare allocations a chunk, or the store, keeps.
pub(crate) const SPARES_MAX: usize = 256;

/// Keys and shared entries in the order they were pushed, and spare allocations; see the
/// module docs.
#[derive(Debug, Default)]
pub struct SnapshotChunk {
    key_bytes: Vec<u8>,
    /// Where each key ends in `key_bytes`, with its entry.
    entries: Vec<(usize, Arc<Entry>)>,
    /// Entries no one else holds any more, kept for their allocation.
    spares: Vec<Arc<Entry>>,
}

impl SnapshotChunk {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Appends `key` (copied) with `entry` (shared).
    pub(crate) fn push(&mut self, key: &[u8], entry: Arc<Entry>) {
        self.key_bytes.extend_from_slice(key);
        self.entries.push((self.key_bytes.len(), entry));
    }

    /// Moves every entry of `other` to the end of `self`, leaving `other` empty (spares stay
    /// where they are). O(1) when `self` is empty (the two swap buffers, as when a snapshot
    /// takes the pre-images saved since its last chunk): however many piled up, the lock is not
    /// held to copy them.
    pub(crate) fn append(&mut self, other: &mut SnapshotChunk) {
        if self.is_empty() {
            std::mem::swap(&mut self.key_bytes, &mut other.key_bytes);
            std::mem::swap(&mut self.entries, &mut other.entries);
            return;
        }
        let base = self.key_bytes.len();
        self.key_bytes.extend_from_slice(&other.key_bytes);
        self.entries
            .extend(other.entries.drain(..).map(|(end, e)| (base + end, e)));
        other.key_bytes.clear();
    }

    /// Every key with its entry, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &Entry)> + '_ {
        let mut start = 0;
        self.entries.iter().map(move |(end, entry)| {
            let key = &self.key_bytes[start..*end];
            start = *end;
            (key, &**entry)
        })
    }

    /// Removes every entry and keeps the buffers for the next fill. Releases this chunk's
    /// references, except that an entry it was the last to hold (a writer replaced it since)
    /// is kept as a spare while there are fewer than [`SPARES_MAX`].
    pub fn clear(&mut self) {
        self.key_bytes.clear();
        for (_, entry) in self.entries.drain(..) {
            // Count 1: no one else holds it, and no one can take a new reference to it.
            if self.spares.len() < SPARES_MAX && Arc::strong_count(&entry) == 1 {
                self.spares.push(entry);
            }
        }
    }

    /// Moves spares from this chunk to `to` until it holds [`SPARES_MAX`].
    pub(crate) fn give_spares(&mut self, to: &mut Vec<Arc<Entry>>) {
        let n = self.spares.len().min(SPARES_MAX.saturating_sub(to.len()));
        to.extend(self.spares.drain(..n));
    }

    /// Takes every spare of `from` back (they are dropped with this chunk, or reused).
    pub(crate) fn take_spares(&mut self, from: &mut Vec<Arc<Entry>>) {
        self.spares.append(from);
    }

    /// Number of spares.
    #[cfg(test)]
    pub(crate) fn spares(&self) -> usize {
        self.spares.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyspace::Value;

    fn entry(v: u8) -> Arc<Entry> {
        Arc::new(Entry::new(Value::Str(vec![v])))
    }

    fn pairs(chunk: &SnapshotChunk) -> Vec<(Vec<u8>, Entry)> {
        chunk.iter().map(|(k, e)| (k.to_vec(), e.clone())).collect()
    }

    #[test]
    fn keys_come_back_in_order_including_empty_ones() {
        let mut a = SnapshotChunk::new();
        a.push(b"one", entry(1));
        a.push(b"", entry(2));
        let mut b = SnapshotChunk::new();
        b.push(b"three", entry(3));
        a.append(&mut b);
        assert!(b.is_empty() && b.iter().next().is_none());
        let mut c = SnapshotChunk::new();
        c.append(&mut a);
        std::mem::swap(&mut a, &mut c);
        assert!(c.is_empty());
        let want: Vec<(Vec<u8>, Entry)> = [(&b"one"[..], 1), (b"", 2), (b"three", 3)]
            .into_iter()
            .map(|(k, v)| (k.to_vec(), (*entry(v)).clone()))
            .collect();
        assert_eq!(pairs(&a), want);
        assert_eq!(a.len(), 3);
        a.clear();
        assert!(a.is_empty());
        a.push(b"again", entry(4));
        assert_eq!(pairs(&a), [(b"again".to_vec(), (*entry(4)).clone())]);
    }

    #[test]
    fn clear_releases_the_references_and_keeps_the_last_ones_as_spares() {
        let shared = entry(1);
        let mut chunk = SnapshotChunk::new();
        chunk.push(b"k", shared.clone());
        chunk.push(b"replaced", entry(2));
        assert_eq!(Arc::strong_count(&shared), 2);
        chunk.clear();
        assert_eq!(Arc::strong_count(&shared), 1);
        assert_eq!(chunk.spares(), 1, "the entry only the chunk held");
        let mut to = Vec::new();
        chunk.give_spares(&mut to);
        assert_eq!((to.len(), chunk.spares()), (1, 0));
        chunk.take_spares(&mut to);
        assert_eq!((to.len(), chunk.spares()), (0, 1));
    }

    #[test]
    fn spares_are_bounded() {
        let mut chunk = SnapshotChunk::new();
        for i in 0..SPARES_MAX + 10 {
            chunk.push(b"k", entry(i as u8));
        }
        chunk.clear();
        assert_eq!(chunk.spares(), SPARES_MAX);
        let mut to: Vec<Arc<Entry>> = (0..SPARES_MAX - 3).map(|_| entry(0)).collect();
        chunk.give_spares(&mut to);
        assert_eq!((to.len(), chunk.spares()), (SPARES_MAX, SPARES_MAX - 3));
    }
}
