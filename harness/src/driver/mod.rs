//! The benchmark driver: runs one engine configuration under a workload ([`bench`]) across a
//! matrix of configurations ([`matrix`]), measuring acknowledgement latency ([`latency`]),
//! process resources ([`resources`]) and recovery time ([`recovery`]).

pub mod bench;
pub mod latency;
pub mod matrix;
pub mod recovery;
pub mod resources;
pub mod resp;
