//! A chunk of a point-in-time snapshot: keys with their shared entries, the keys' bytes packed
//! in one buffer. Filling one costs a copy of each key and a reference-count increment, but no
//! allocation per key once the buffers have grown: the snapshot fills chunks under the engine's
//! lock, and writers must not wait for the allocator there, nor find its arenas contended by
//! frees of thousands of key copies later.

use std::sync::Arc;

use super::space::Entry;

/// Keys and shared entries in the order they were pushed; see the module docs.
#[derive(Debug, Default)]
pub struct SnapshotChunk {
    key_bytes: Vec<u8>,
    /// Where each key ends in `key_bytes`, with its entry.
    entries: Vec<(usize, Arc<Entry>)>,
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

    /// Moves every entry of `other` to the end of `self`, leaving `other` empty (with its
    /// buffers kept).
    pub(crate) fn append(&mut self, other: &mut SnapshotChunk) {
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

    /// Removes every entry, releasing this chunk's references (which may free entries that
    /// writers have replaced since), and keeps the buffers for the next fill.
    pub fn clear(&mut self) {
        self.key_bytes.clear();
        self.entries.clear();
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
    fn clear_releases_the_references() {
        let shared = entry(1);
        let mut chunk = SnapshotChunk::new();
        chunk.push(b"k", shared.clone());
        assert_eq!(Arc::strong_count(&shared), 2);
        chunk.clear();
        assert_eq!(Arc::strong_count(&shared), 1);
    }
}
