//! The stream value type: entries in id order plus the last id ever added.

use std::collections::{BTreeMap, VecDeque};

use super::group::Group;
use super::{FieldValue, StreamId, XAddId, msg};

/// The field-value pairs of one stream entry, in the order they were given.
pub type StreamFields = Vec<FieldValue>;

/// Why an entry could not be added or a stream could not be rebuilt. `Display` is the Redis
/// error reply text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StreamError {
    /// The explicit id `0-0`.
    #[error("{}", msg::XADD_ID_ZERO)]
    IdZero,
    /// An id not above the last id (or, when rebuilding, ids out of order).
    #[error("{}", msg::XADD_ID_TOO_SMALL)]
    IdTooSmall,
    /// An automatic id after `u64::MAX-u64::MAX`.
    #[error("{}", msg::XADD_ID_EXHAUSTED)]
    IdExhausted,
    /// An entry without fields.
    #[error("{}", msg::ARITY_XADD)]
    NoFields,
}

/// A stream: entries with strictly increasing ids, and the last id ever added, which trimming
/// does not lower (so a trimmed stream never reuses an id). May be empty yet exist, as in
/// Redis after `MAXLEN 0` or `XGROUP CREATE ... MKSTREAM`.
///
/// Also what Redis 7.0 keeps for consumer groups' `entries-read` and `lag`: the count of
/// entries ever added and the largest id ever deleted by `XDEL`; and the consumer groups
/// themselves, by name in byte order ([`super::group`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stream {
    entries: VecDeque<(StreamId, StreamFields)>,
    last_id: StreamId,
    entries_added: u64,
    max_deleted_id: StreamId,
    pub(super) groups: BTreeMap<Vec<u8>, Group>,
}

impl Stream {
    /// An empty stream whose last id is `0-0`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds a stream (e.g. from a snapshot).
    ///
    /// # Errors
    /// [`StreamError::IdTooSmall`] if the ids are not strictly increasing or any exceeds
    /// `last_id`; [`StreamError::IdZero`] for an entry with id `0-0`;
    /// [`StreamError::NoFields`] for an entry without fields.
    pub fn from_parts(
        last_id: StreamId,
        entries: impl IntoIterator<Item = (StreamId, StreamFields)>,
    ) -> Result<Stream, StreamError> {
        let mut stream = Stream::new();
        for (id, fields) in entries {
            stream.push(id, fields)?;
        }
        if last_id < stream.last_id {
            return Err(StreamError::IdTooSmall);
        }
        stream.last_id = last_id;
        Ok(stream)
    }

    /// Sets the entries-added count and the largest deleted id (when loading a snapshot;
    /// [`Stream::from_parts`] sets them to the entry count and `0-0`, as Redis does when it
    /// loads a stream saved without them).
    ///
    /// # Errors
    /// A description if `entries_added` is below the entry count or `max_deleted_id` above
    /// the last id.
    pub fn set_counters(
        &mut self,
        entries_added: u64,
        max_deleted_id: StreamId,
    ) -> Result<(), &'static str> {
        if entries_added < self.entries.len() as u64 {
            return Err("entries-added count below the number of entries");
        }
        if max_deleted_id > self.last_id {
            return Err("largest deleted id above the last id");
        }
        self.entries_added = entries_added;
        self.max_deleted_id = max_deleted_id;
        Ok(())
    }

    /// Adds a consumer group (when loading a snapshot).
    ///
    /// # Errors
    /// A description if a group of that name exists.
    pub fn insert_group(&mut self, name: Vec<u8>, group: Group) -> Result<(), &'static str> {
        if self.groups.contains_key(&name) {
            return Err("duplicate consumer group name");
        }
        self.groups.insert(name, group);
        Ok(())
    }

    /// The consumer groups by name, in byte order (Redis's order).
    pub fn groups(&self) -> impl ExactSizeIterator<Item = (&[u8], &Group)> + '_ {
        self.groups.iter().map(|(n, g)| (n.as_slice(), g))
    }

    /// Entries ever added (`XADD`s that succeeded), trimmed and deleted ones included.
    pub fn entries_added(&self) -> u64 {
        self.entries_added
    }

    /// The largest id `XDEL` ever removed (`0-0` if none).
    pub fn max_deleted_id(&self) -> StreamId {
        self.max_deleted_id
    }

    /// The id of the first entry (`0-0` if empty).
    pub fn first_id(&self) -> StreamId {
        self.entries
            .front()
            .map_or(StreamId::default(), |(id, _)| *id)
    }

    /// The id of the last entry, if any (the last id may be larger: trimmed or deleted).
    pub fn last_entry_id(&self) -> Option<StreamId> {
        self.entries.back().map(|(id, _)| *id)
    }

    /// The fields of the entry `id`, if it is in the stream.
    pub fn get(&self, id: StreamId) -> Option<&[FieldValue]> {
        let i = self.entries.binary_search_by(|(e, _)| e.cmp(&id)).ok()?;
        Some(&self.entries[i].1)
    }

    /// Entries with ids at least `start`, in id order.
    pub fn iter_from(
        &self,
        start: StreamId,
    ) -> impl Iterator<Item = (StreamId, &[FieldValue])> + '_ {
        let i = self.entries.partition_point(|(e, _)| *e < start);
        self.entries.range(i..).map(|(id, f)| (*id, f.as_slice()))
    }

    /// Removes the entry `id` (`XDEL`); true if it was there. Raises the largest deleted id.
    pub fn delete(&mut self, id: StreamId) -> bool {
        let Ok(i) = self.entries.binary_search_by(|(e, _)| e.cmp(&id)) else {
            return false;
        };
        self.entries.remove(i);
        self.max_deleted_id = self.max_deleted_id.max(id);
        true
    }

    /// Number of entries currently held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The last id ever added (`0-0` if none), even if that entry was trimmed.
    pub fn last_id(&self) -> StreamId {
        self.last_id
    }

    /// Entries in id order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (StreamId, &[FieldValue])> + '_ {
        self.entries.iter().map(|(id, f)| (*id, f.as_slice()))
    }

    /// The id the next entry would get for `id`, without adding it.
    ///
    /// # Errors
    /// As [`Stream::add`], except that fields are not checked.
    pub fn next_id(&self, id: XAddId) -> Result<StreamId, StreamError> {
        // Once the last possible id is taken, Redis refuses every XADD as exhausted, before
        // looking at the id given.
        if self.last_id
            == (StreamId {
                ms: u64::MAX,
                seq: u64::MAX,
            })
        {
            return Err(StreamError::IdExhausted);
        }
        match id {
            XAddId::Auto => {
                let last = self.last_id;
                if let Some(seq) = last.seq.checked_add(1) {
                    Ok(StreamId { ms: last.ms, seq })
                } else if let Some(ms) = last.ms.checked_add(1) {
                    Ok(StreamId { ms, seq: 0 })
                } else {
                    Err(StreamError::IdExhausted)
                }
            }
            XAddId::Time { now_ms } if now_ms > self.last_id.ms => {
                Ok(StreamId { ms: now_ms, seq: 0 })
            }
            // The clock is not ahead of the last id: continue from it, as `Auto`.
            XAddId::Time { .. } => self.next_id(XAddId::Auto),
            XAddId::AutoSeq { ms } if ms == self.last_id.ms => {
                match self.last_id.seq.checked_add(1) {
                    Some(seq) => Ok(StreamId { ms, seq }),
                    None => Err(StreamError::IdTooSmall),
                }
            }
            XAddId::AutoSeq { ms } if ms < self.last_id.ms => Err(StreamError::IdTooSmall),
            XAddId::AutoSeq { ms } => Ok(StreamId { ms, seq: 0 }),
            XAddId::Explicit(id) if id == StreamId::default() => Err(StreamError::IdZero),
            XAddId::Explicit(id) if id <= self.last_id => Err(StreamError::IdTooSmall),
            XAddId::Explicit(id) => Ok(id),
        }
    }

    /// Appends an entry and returns its id. No change on error.
    ///
    /// # Errors
    /// [`StreamError::NoFields`] for empty `fields`; [`StreamError::IdZero`],
    /// [`StreamError::IdTooSmall`] or [`StreamError::IdExhausted`] for an unusable id.
    pub fn add(&mut self, id: XAddId, fields: StreamFields) -> Result<StreamId, StreamError> {
        if fields.is_empty() {
            return Err(StreamError::NoFields);
        }
        let id = self.next_id(id)?;
        self.push(id, fields)?;
        Ok(id)
    }

    fn push(&mut self, id: StreamId, fields: StreamFields) -> Result<(), StreamError> {
        if fields.is_empty() {
            return Err(StreamError::NoFields);
        }
        if id == StreamId::default() {
            return Err(StreamError::IdZero);
        }
        if id <= self.last_id {
            return Err(StreamError::IdTooSmall);
        }
        self.entries.push_back((id, fields));
        self.last_id = id;
        self.entries_added = self.entries_added.saturating_add(1);
        Ok(())
    }

    /// Removes the oldest entries until at most `maxlen` remain; returns how many it removed.
    /// The last id is kept.
    pub fn trim(&mut self, maxlen: u64) -> usize {
        let keep = usize::try_from(maxlen).unwrap_or(usize::MAX);
        let excess = self.entries.len().saturating_sub(keep);
        self.entries.drain(..excess);
        excess
    }

    /// Panics unless ids are strictly increasing, non-zero, at most the last id, and every
    /// entry has fields. O(n); for tests.
    pub fn assert_invariants(&self) {
        let mut prev = StreamId::default();
        for (id, fields) in &self.entries {
            assert!(*id > prev, "stream ids out of order");
            assert!(!fields.is_empty(), "stream entry without fields");
            prev = *id;
        }
        assert!(prev <= self.last_id, "stream entry above last id");
        assert!(
            self.entries_added >= self.entries.len() as u64,
            "entries-added below the entry count"
        );
        assert!(
            self.max_deleted_id <= self.last_id,
            "deleted id above last id"
        );
        for group in self.groups.values() {
            group.assert_invariants();
        }
    }
}

impl StreamId {
    /// The largest id, `u64::MAX-u64::MAX`.
    pub const MAX: StreamId = StreamId {
        ms: u64::MAX,
        seq: u64::MAX,
    };

    /// The next id in order, or `None` after [`StreamId::MAX`].
    pub fn next(self) -> Option<StreamId> {
        match self.seq.checked_add(1) {
            Some(seq) => Some(StreamId { ms: self.ms, seq }),
            None => Some(StreamId {
                ms: self.ms.checked_add(1)?,
                seq: 0,
            }),
        }
    }

    /// The previous id in order, or `None` before `0-0`.
    pub fn prev(self) -> Option<StreamId> {
        match self.seq.checked_sub(1) {
            Some(seq) => Some(StreamId { ms: self.ms, seq }),
            None => Some(StreamId {
                ms: self.ms.checked_sub(1)?,
                seq: u64::MAX,
            }),
        }
    }
}

impl std::fmt::Display for StreamId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(ms: u64, seq: u64) -> StreamId {
        StreamId { ms, seq }
    }

    fn fv() -> StreamFields {
        vec![(b"f".to_vec(), b"v".to_vec())]
    }

    #[test]
    fn auto_ids_and_rollover() {
        let mut s = Stream::new();
        assert_eq!(s.add(XAddId::Auto, fv()), Ok(id(0, 1)));
        assert_eq!(
            s.add(XAddId::Explicit(id(5, u64::MAX)), fv()),
            Ok(id(5, u64::MAX))
        );
        assert_eq!(s.add(XAddId::Auto, fv()), Ok(id(6, 0)));
        assert_eq!(
            s.add(XAddId::Explicit(id(u64::MAX, u64::MAX)), fv()),
            Ok(id(u64::MAX, u64::MAX))
        );
        assert_eq!(s.add(XAddId::Auto, fv()), Err(StreamError::IdExhausted));
        assert_eq!(s.len(), 4);
        s.assert_invariants();
    }

    #[test]
    fn trim_keeps_last_id() {
        let mut s = Stream::new();
        for _ in 0..3 {
            s.add(XAddId::Auto, fv()).unwrap();
        }
        assert_eq!(s.trim(1), 2);
        assert_eq!(s.iter().map(|(i, _)| i).collect::<Vec<_>>(), vec![id(0, 3)]);
        assert_eq!(s.trim(0), 1);
        assert!(s.is_empty());
        assert_eq!(s.last_id(), id(0, 3));
        assert_eq!(
            s.add(XAddId::Explicit(id(0, 3)), fv()),
            Err(StreamError::IdTooSmall)
        );
    }

    #[test]
    fn from_parts_checks_order() {
        let ok = Stream::from_parts(id(9, 9), [(id(1, 0), fv()), (id(2, 0), fv())]).unwrap();
        assert_eq!(ok.last_id(), id(9, 9));
        assert_eq!(
            Stream::from_parts(id(9, 9), [(id(2, 0), fv()), (id(1, 0), fv())]),
            Err(StreamError::IdTooSmall)
        );
        assert_eq!(
            Stream::from_parts(id(1, 0), [(id(2, 0), fv())]),
            Err(StreamError::IdTooSmall)
        );
        assert_eq!(
            Stream::from_parts(id(1, 0), [(id(0, 0), fv())]),
            Err(StreamError::IdZero)
        );
        assert_eq!(
            Stream::from_parts(id(1, 0), [(id(1, 0), vec![])]),
            Err(StreamError::NoFields)
        );
    }
}
