//! The consumer-group state of a stream, as Redis 7.0 keeps it: per group the last-delivered
//! id, the entries-read counter, the pending entries list (PEL: every entry delivered and not
//! yet acknowledged, with its owner, last delivery time and delivery count) and the consumers
//! (each with its seen time and its own share of the PEL). The data model and its invariants
//! only; the commands live in [`super::group_cmd`].
//!
//! A pending entry may name an id no longer in the stream (trimmed by `MAXLEN` or removed by
//! `XDEL`): Redis keeps it pending until it is acknowledged or claimed (`XCLAIM` and
//! `XAUTOCLAIM` drop it then), and so does this model.

use std::collections::{BTreeMap, BTreeSet};

use super::StreamId;

/// One pending entry of a group: who holds it, since when, how often it was delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// The consumer that holds it (a consumer of the same group).
    pub consumer: Vec<u8>,
    /// When it was last delivered (or claimed), ms since the Unix epoch.
    pub delivery_time_ms: u64,
    /// How many times it was delivered.
    pub delivery_count: u64,
}

/// One consumer of a group.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Consumer {
    /// When a command last named it (`XREADGROUP`, `XCLAIM`, `XAUTOCLAIM`,
    /// `XGROUP CREATECONSUMER`), ms since the Unix epoch: `XINFO CONSUMERS`' idle time.
    pub seen_time_ms: u64,
    /// The ids of the group's pending entries it holds.
    pending: BTreeSet<StreamId>,
}

impl Consumer {
    /// A consumer seen at `seen_time_ms` holding nothing.
    pub fn new(seen_time_ms: u64) -> Self {
        Consumer {
            seen_time_ms,
            pending: BTreeSet::new(),
        }
    }

    /// The ids it holds, in order.
    pub fn pending(&self) -> &BTreeSet<StreamId> {
        &self.pending
    }
}

/// A consumer group. Invariant: the group's PEL and its consumers' PELs hold the same ids,
/// each pending entry held by exactly the consumer it names.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Group {
    /// The last id delivered to the group (`XREADGROUP ... >` delivers entries above it).
    pub last_id: StreamId,
    /// How many entries the group has read, if known (Redis's `entries_read`, -1 when
    /// unknown): the base of `XINFO GROUPS`' lag.
    pub entries_read: Option<u64>,
    pel: BTreeMap<StreamId, Pending>,
    consumers: BTreeMap<Vec<u8>, Consumer>,
}

/// Why a group could not be rebuilt from its parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GroupError {
    #[error("duplicate consumer name")]
    DuplicateConsumer,
    #[error("pending entries out of id order")]
    PendingOutOfOrder,
    #[error("pending entry held by a consumer the group does not have")]
    UnknownConsumer,
}

impl Group {
    /// A group with no consumers and nothing pending.
    pub fn new(last_id: StreamId, entries_read: Option<u64>) -> Self {
        Group {
            last_id,
            entries_read,
            ..Group::default()
        }
    }

    /// Rebuilds a group (from a snapshot): its consumers with their seen times, then its
    /// pending entries in strictly increasing id order.
    ///
    /// # Errors
    /// A consumer named twice, pending ids not strictly increasing, or a pending entry held
    /// by a consumer not listed.
    pub fn from_parts(
        last_id: StreamId,
        entries_read: Option<u64>,
        consumers: impl IntoIterator<Item = (Vec<u8>, u64)>,
        pel: impl IntoIterator<Item = (StreamId, Pending)>,
    ) -> Result<Group, GroupError> {
        let mut group = Group::new(last_id, entries_read);
        for (name, seen) in consumers {
            if group.consumers.insert(name, Consumer::new(seen)).is_some() {
                return Err(GroupError::DuplicateConsumer);
            }
        }
        for (id, pending) in pel {
            if group
                .pel
                .last_key_value()
                .is_some_and(|(last, _)| *last >= id)
            {
                return Err(GroupError::PendingOutOfOrder);
            }
            let Some(consumer) = group.consumers.get_mut(&pending.consumer) else {
                return Err(GroupError::UnknownConsumer);
            };
            consumer.pending.insert(id);
            group.pel.insert(id, pending);
        }
        Ok(group)
    }

    /// The pending entries list, in id order.
    pub fn pel(&self) -> &BTreeMap<StreamId, Pending> {
        &self.pel
    }

    /// The consumers by name, in byte order.
    pub fn consumers(&self) -> &BTreeMap<Vec<u8>, Consumer> {
        &self.consumers
    }

    /// The consumer `name`, if the group has it.
    pub fn consumer(&self, name: &[u8]) -> Option<&Consumer> {
        self.consumers.get(name)
    }

    /// The consumer `name`, created (seen at `now_ms`) if missing, else its seen time set to
    /// `now_ms`, as Redis's lookup with refresh does.
    pub(super) fn touch_consumer(&mut self, name: &[u8], now_ms: u64) {
        match self.consumers.get_mut(name) {
            Some(c) => c.seen_time_ms = now_ms,
            None => {
                self.consumers.insert(name.to_vec(), Consumer::new(now_ms));
            }
        }
    }

    /// Creates the consumer `name` seen at `now_ms`; false (and no change) if it exists.
    pub(super) fn create_consumer(&mut self, name: &[u8], now_ms: u64) -> bool {
        if self.consumers.contains_key(name) {
            return false;
        }
        self.consumers.insert(name.to_vec(), Consumer::new(now_ms));
        true
    }

    /// Removes the consumer `name` and the entries it had pending; how many those were, or
    /// `None` if it did not exist.
    pub(super) fn remove_consumer(&mut self, name: &[u8]) -> Option<usize> {
        let consumer = self.consumers.remove(name)?;
        for id in &consumer.pending {
            self.pel.remove(id);
        }
        Some(consumer.pending.len())
    }

    /// Makes `id` pending for `consumer` (which must exist) with this delivery time and
    /// count, taking it from its previous holder if another consumer held it.
    pub(super) fn assign(&mut self, id: StreamId, consumer: &[u8], time_ms: u64, count: u64) {
        if let Some(old) = self.pel.get(&id)
            && old.consumer != consumer
            && let Some(holder) = self.consumers.get_mut(&old.consumer)
        {
            holder.pending.remove(&id);
        }
        if let Some(c) = self.consumers.get_mut(consumer) {
            c.pending.insert(id);
        }
        self.pel.insert(
            id,
            Pending {
                consumer: consumer.to_vec(),
                delivery_time_ms: time_ms,
                delivery_count: count,
            },
        );
    }

    /// Sets a pending entry's delivery time and count (a history read's redelivery).
    pub(super) fn redeliver(&mut self, id: StreamId, time_ms: u64) {
        if let Some(p) = self.pel.get_mut(&id) {
            p.delivery_time_ms = time_ms;
            p.delivery_count = p.delivery_count.saturating_add(1);
        }
    }

    /// Removes `id` from the PEL and its holder's; true if it was pending.
    pub(super) fn remove_pending(&mut self, id: StreamId) -> bool {
        let Some(p) = self.pel.remove(&id) else {
            return false;
        };
        if let Some(c) = self.consumers.get_mut(&p.consumer) {
            c.pending.remove(&id);
        }
        true
    }

    /// Panics unless the group's PEL and its consumers' PELs agree. O(size); for tests.
    pub fn assert_invariants(&self) {
        let mut held = 0;
        for (name, c) in &self.consumers {
            for id in &c.pending {
                let p = self
                    .pel
                    .get(id)
                    .expect("consumer holds an id not in the PEL");
                assert_eq!(&p.consumer, name, "pending entry held by another consumer");
            }
            held += c.pending.len();
        }
        assert_eq!(held, self.pel.len(), "PEL entries without a holder");
    }
}
