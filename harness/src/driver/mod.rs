//! The benchmark driver: runs one engine configuration under a workload ([`bench`]) across a
//! matrix of configurations ([`matrix`]), measuring acknowledgement latency ([`latency`]) and
//! process resources ([`resources`]).

pub mod bench;
pub mod latency;
pub mod matrix;
pub mod resources;
