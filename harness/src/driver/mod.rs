//! The benchmark driver: runs one engine configuration under a workload ([`bench`]) across a
//! matrix of configurations ([`matrix`]), measuring acknowledgement latency ([`latency`]),
//! process resources ([`resources`]) and recovery time ([`recovery`], on directories of the
//! size the recovery sweep asks for: [`recovery_sweep`]). Benchmarks run flat-out; crash trials
//! can run open loop at a target rate ([`pacing`]).

pub mod bench;
pub mod latency;
pub mod matrix;
pub mod pacing;
pub mod recovery;
pub mod recovery_sweep;
pub mod resources;
pub mod resp;
