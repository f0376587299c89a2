//! [`Variant::PowerLoss`](super::Variant::PowerLoss): only what completed syncs covered, and
//! [`Variant::Prefix`](super::Variant::Prefix): plus a seeded prefix of the unsynced
//! operations, in trace order (the disk wrote back the page cache in the order it was dirtied).

use rand::RngExt;

use super::state::CrashState;
use crate::workload::rng::SplitMix64;

/// Nothing unsynced survives.
pub(crate) fn power_loss(state: &CrashState<'_>) -> String {
    format!("power loss: all {} unsynced ops lost", state.pending.len())
}

/// The first n unsynced operations survive, n uniform in `0..=pending`.
pub(crate) fn prefix(state: &mut CrashState<'_>, rng: &mut SplitMix64) -> String {
    let total = state.pending.len();
    let n = rng.random_range(0..=total);
    apply_first(state, n);
    format!("prefix: the first {n} of {total} unsynced ops survive")
}

/// Applies the first `n` pending operations ([`CrashState::apply_first`]).
pub(crate) fn apply_first(state: &mut CrashState<'_>, n: usize) {
    state.apply_first(n);
}
