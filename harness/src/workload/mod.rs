//! The command sequence: one global, seeded sequence of write commands (command n is a pure
//! function of (seed, n)), plus per-writer reads.

pub mod consumers;
pub mod distribution;
pub mod generator;
mod lookback;
pub mod rng;

pub use generator::{Workload, WriterStream};
