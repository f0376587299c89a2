//! The oracle: what a recovered data directory must contain.
//!
//! [`model`] is a second, deliberately simple implementation of the command set; [`compare`]
//! checks a recovered engine state against the model (directly, and on a difference through
//! one canonical form: digests, then key by key). [`expected`] replays write commands 1..r of
//! the seeded workload in the model; [`cursor::Oracle`] gives the same model at any LSN
//! without replaying from 1 each time; [`verify`] compares an opened engine against it.
//! [`groups`] is the model's consumer groups (Redis 7.0's semantics, checked against
//! redis-server by harness/tests/oracle_groups.rs); [`deliveries`] turns a recovered state's
//! groups into the crash lab's delivery verdicts.

pub mod compare;
pub mod cursor;
pub mod deliveries;
pub mod delta;
pub mod groups;
#[cfg(test)]
mod groups_tests;
pub mod model;
#[cfg(test)]
mod quiet_tests;

use durlab_engine::{Engine, Lsn};

use crate::workload::Workload;
pub use compare::Comparison;
pub use cursor::Oracle;
pub use model::Model;

/// Keys listed when states differ.
pub const DIFFS_SHOWN: usize = 5;

/// The model after write commands 1..=`r` of `workload`.
pub fn expected(workload: &Workload, r: Lsn) -> Model {
    let mut model = Model::new();
    let mut stream = workload.writer(0);
    for n in 1..=r {
        model.apply(&stream.write_command(n));
    }
    model
}

/// Compares the keyspace of `engine` (typically just opened on a crashed data directory) with
/// the oracle at LSN `r`.
pub fn verify(engine: &Engine, oracle: &Oracle, r: Lsn) -> Comparison {
    oracle.with_model(r, |model| {
        engine.read(|ks| compare::compare_keyspace(ks, model, DIFFS_SHOWN))
    })
}
