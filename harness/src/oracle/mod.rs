//! The oracle: what a recovered data directory must contain.
//!
//! [`model`] is a second, deliberately simple implementation of the command set; [`compare`]
//! puts a recovered engine state and the model into one canonical form and compares them
//! (digest first, then key by key). [`expected`] replays write commands 1..r of the seeded
//! workload in the model; [`verify`] compares an opened engine against it.

pub mod compare;
pub mod model;

use durlab_engine::{Engine, Lsn};

use crate::workload::Workload;
pub use compare::Comparison;
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
pub fn verify(engine: &Engine, workload: &Workload, r: Lsn) -> Comparison {
    let oracle = compare::from_model(&expected(workload, r));
    let recovered = engine.read(compare::from_engine);
    compare::compare(&recovered, &oracle, DIFFS_SHOWN)
}
