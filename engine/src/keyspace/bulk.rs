//! Building a keyspace from entries decoded on another thread (loading a snapshot). The
//! producer does the per-entry work that needs no map, the `Arc` allocation and hashing the
//! key with the target map's own hasher ([`Preparer`]); the thread that owns the keyspace then
//! only probes and inserts ([`Keyspace::insert_prepared`]).
//!
//! Inserting into a large map is dominated by cache misses: each new key lands at a random
//! place in the map's index. [`Keyspace::insert_prepared_group`] first probes a whole group of
//! keys read-only, whose misses the CPU overlaps (they are independent), and then inserts them
//! into memory that is in the cache: about half the time of inserting one by one, 1M keys.

use std::sync::Arc;

use super::entry::{Entry, Value};
use super::space::Keyspace;
use super::store::KeyHasher;

/// One entry ready for [`Keyspace::insert_prepared`] into the keyspace whose [`Preparer`]
/// made it.
#[derive(Debug)]
pub(crate) struct Prepared {
    hash: u64,
    key: Vec<u8>,
    entry: Arc<Entry>,
}

impl Prepared {
    #[cfg(test)]
    pub(crate) fn key(&self) -> &[u8] {
        &self.key
    }
}

/// Prepares entries for one keyspace; `Send`, so a producer thread can own it.
#[derive(Debug, Clone)]
pub(crate) struct Preparer {
    hasher: KeyHasher,
}

impl Preparer {
    /// Hashes `key` as the keyspace does and moves `entry` into its shared allocation. The
    /// entry must not be an empty hash or sorted set (the keyspace never holds one).
    pub(crate) fn prepare(&self, key: Vec<u8>, entry: Entry) -> Prepared {
        debug_assert!(match &entry.value {
            Value::Hash(h) => !h.is_empty(),
            Value::ZSet(z) => !z.is_empty(),
            Value::Str(_) | Value::Stream(_) => true,
        });
        Prepared {
            hash: self.hasher.hash(&key),
            key,
            entry: Arc::new(entry),
        }
    }
}

impl Keyspace {
    /// A [`Preparer`] for entries to be inserted into this keyspace.
    pub(crate) fn preparer(&self) -> Preparer {
        Preparer {
            hasher: self.map.key_hasher(),
        }
    }

    /// Inserts an entry made by this keyspace's [`Preparer`] under a key not present yet (one
    /// probe, no hashing). Gives the entry back if the key is already present. Not while a
    /// snapshot of this keyspace is active.
    pub(crate) fn insert_prepared(&mut self, p: Prepared) -> Result<(), Prepared> {
        let Prepared { hash, key, entry } = p;
        self.map
            .insert_new_hashed(hash, key, entry)
            .map_err(|(key, entry)| Prepared { hash, key, entry })
    }

    /// Inserts `group` in order as [`Keyspace::insert_prepared`] does, after probing all of it
    /// once read-only (see the module docs); `group` is left empty. Stops at the first key
    /// already present and gives back its tag and entry (the rest of `group` is dropped).
    pub(crate) fn insert_prepared_group<T>(
        &mut self,
        group: &mut Vec<(T, Prepared)>,
    ) -> Result<(), (T, Prepared)> {
        let present = group
            .iter()
            .filter(|(_, p)| self.map.contains_hashed(p.hash, &p.key))
            .count();
        // Keeps the probes, whose only purpose is their memory accesses.
        std::hint::black_box(present);
        for (tag, p) in group.drain(..) {
            self.insert_prepared(p).map_err(|p| (tag, p))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepared_entries_read_back_and_duplicates_come_back() {
        let mut ks = Keyspace::with_capacity(3);
        let preparer = ks.preparer();
        let value = |v: &[u8]| Entry::new(Value::Str(v.to_vec()));
        let prepared: Vec<Prepared> = [(&b"a"[..], &b"1"[..]), (b"b", b"2"), (b"a", b"3")]
            .into_iter()
            .map(|(k, v)| preparer.prepare(k.to_vec(), value(v)))
            .collect();
        let outcomes: Vec<_> = prepared
            .into_iter()
            .map(|p| ks.insert_prepared(p).map_err(|p| p.key().to_vec()))
            .collect();
        assert_eq!(outcomes, [Ok(()), Ok(()), Err(b"a".to_vec())]);
        assert_eq!(ks.get_entry(b"a"), Some(&value(b"1")));
        assert_eq!(ks.get_entry(b"b"), Some(&value(b"2")));
        assert_eq!(ks.len(), 2);

        let mut group: Vec<(u8, Prepared)> = [(1, &b"c"[..]), (2, b"d"), (3, b"b"), (4, b"e")]
            .into_iter()
            .map(|(tag, k)| (tag, preparer.prepare(k.to_vec(), value(k))))
            .collect();
        let (tag, dup) = ks.insert_prepared_group(&mut group).unwrap_err();
        assert_eq!(
            (tag, dup.key()),
            (3, &b"b"[..]),
            "stops at the repeated key"
        );
        assert_eq!(ks.get_entry(b"d"), Some(&value(b"d")));
        assert_eq!(ks.get_entry(b"b"), Some(&value(b"2")));
        assert_eq!(ks.get_entry(b"e"), None, "nothing after it");
    }
}
