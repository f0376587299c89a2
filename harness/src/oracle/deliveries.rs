//! Delivery verdicts for consumer-group workloads (issue 15 item 4): beyond "does the recovered
//! state equal the oracle at r", what a crash did to the deliveries the clients saw.
//!
//! Three states are compared, each reduced to its groups ([`GroupViews`]: per stream and group
//! the last-delivered id, the pending ids with their owners, and the stream's live entry ids):
//! - the oracle at A, the highest LSN acknowledged to the client before the crash: every
//!   delivery and acknowledgement a consumer was told of;
//! - the oracle at r, the LSN recovery reached: what the recovered state must be;
//! - the recovered state itself (the engine's, or a RESP server's read back).
//!
//! [`count`] then counts, per crash state ([`DeliveryCounts`], docs/results.md):
//! - **acked_redelivered**: entries acknowledged at A (delivered: at or below A's
//!   last-delivered id, live at A, pending nowhere) that the recovered state will hand out
//!   again: pending there, or live above its last-delivered id.
//! - **delivered_lost**: entries pending at A that the oracle at r still has pending but the
//!   recovered state has pending nowhere, while at or below its last-delivered id: delivered,
//!   never acknowledged, and never to be delivered again.
//! - **double_handed**: entries pending at A (held by a consumer that was told of them) that
//!   the recovered state will deliver again to the next reader (live above its
//!   last-delivered id): two consumers hold the same entry.
//! - **last_delivered_regressions**: groups whose last-delivered id is below A's (or that are
//!   missing).
//!
//! With r ≥ A and a recovered state equal to the oracle at r, all four are 0 for the
//! workload's commands (acknowledged entries never become pending again, last-delivered ids
//! only grow); with r < A they measure what the loss window cost the consumers.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::model::{Id, Model, ModelValue};

/// One group of one stream, reduced to what the delivery verdicts need.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupView {
    pub last_delivered: Id,
    /// Pending ids and their owners.
    pub pending: BTreeMap<Id, Vec<u8>>,
    /// The stream's entry ids.
    pub live: BTreeSet<Id>,
}

/// Every group of a state, by (stream key, group name).
pub type GroupViews = BTreeMap<(Vec<u8>, Vec<u8>), GroupView>;

/// The delivery anomalies of one recovered state (see the module's comment).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DeliveryCounts {
    pub acked_redelivered: u64,
    pub delivered_lost: u64,
    pub double_handed: u64,
    pub last_delivered_regressions: u64,
}

impl DeliveryCounts {
    /// Whether any anomaly was counted.
    pub fn any(&self) -> bool {
        *self != DeliveryCounts::default()
    }

    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &DeliveryCounts) {
        self.acked_redelivered += other.acked_redelivered;
        self.delivered_lost += other.delivered_lost;
        self.double_handed += other.double_handed;
        self.last_delivered_regressions += other.last_delivered_regressions;
    }

    /// The counts as one line, for an outcome's detail.
    pub fn describe(&self) -> String {
        format!(
            "deliveries: {} acknowledged then redelivered, {} delivered then lost, {} handed to two consumers, {} last-delivered id regressions",
            self.acked_redelivered,
            self.delivered_lost,
            self.double_handed,
            self.last_delivered_regressions
        )
    }
}

/// A configuration × fault's delivery verdicts: the counts added up over its crash states,
/// and how many states had any.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DeliverySummary {
    #[serde(flatten)]
    pub total: DeliveryCounts,
    /// Crash states with at least one anomaly.
    pub states_with_anomalies: u64,
    /// Crash states judged for deliveries (loaded states of a consumer workload).
    pub states_judged: u64,
}

impl DeliverySummary {
    /// The summary of `counts` (one per judged state), `None` when there are none.
    pub fn of<'a>(counts: impl IntoIterator<Item = &'a DeliveryCounts>) -> Option<Self> {
        let mut s = DeliverySummary::default();
        for c in counts {
            s.total.add(c);
            s.states_judged += 1;
            s.states_with_anomalies += u64::from(c.any());
        }
        (s.states_judged > 0).then_some(s)
    }
}

/// The groups of the model's state.
pub fn from_model(m: &Model) -> GroupViews {
    let mut views = GroupViews::new();
    for (key, e) in &m.map {
        let ModelValue::Stream {
            entries, groups, ..
        } = &e.value
        else {
            continue;
        };
        if groups.is_empty() {
            continue;
        }
        let live: BTreeSet<Id> = entries.iter().map(|(id, _)| *id).collect();
        for (name, g) in groups {
            views.insert(
                (key.clone(), name.clone()),
                GroupView {
                    last_delivered: g.last_delivered,
                    pending: g
                        .pel
                        .iter()
                        .map(|(id, p)| (*id, p.consumer.clone()))
                        .collect(),
                    live: live.clone(),
                },
            );
        }
    }
    views
}

/// Counts the anomalies of `got` (a recovered state) against `acked` (the oracle at the
/// acknowledged LSN A) and `expected` (the oracle at the recovered LSN r).
pub fn count(acked: &GroupViews, expected: &GroupViews, got: &GroupViews) -> DeliveryCounts {
    let mut c = DeliveryCounts::default();
    let empty = GroupView::default();
    for (at, a) in acked {
        let s = got.get(at).unwrap_or(&empty);
        let r = expected.get(at).unwrap_or(&empty);
        if !got.contains_key(at) || s.last_delivered < a.last_delivered {
            c.last_delivered_regressions += 1;
        }
        let handed_again = |id: &Id| s.live.contains(id) && *id > s.last_delivered;
        for id in a.live.range(..=a.last_delivered) {
            if !a.pending.contains_key(id) && (s.pending.contains_key(id) || handed_again(id)) {
                c.acked_redelivered += 1;
            }
        }
        for id in a.pending.keys() {
            if handed_again(id) {
                c.double_handed += 1;
            } else if r.pending.contains_key(id) && !s.pending.contains_key(id) {
                c.delivered_lost += 1;
            }
        }
    }
    c
}
