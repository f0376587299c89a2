//! durlab-harness: scenarios, workloads, benchmark driver and probe for durlab-engine.
//!
//! - [`scenario`]: `scenarios/*.toml` files, checked with errors naming file, line and field.
//! - [`workload`]: the seeded command sequence (write command n is a pure function of
//!   (seed, n)) and per-writer reads.
//! - [`driver`]: runs one engine configuration (or a matrix) and measures it.
//! - [`probe`]: raw device limits (`durlab probe`).
//! - [`crashlab`]: crashes on purpose (kill -9, injected I/O faults, media damage, crash images
//!   built from I/O traces), verdicts and loss windows.
//! - [`oracle`]: the independent model that recovered states are checked against.
//! - [`results`]: result JSON, machine facts, ratios, tables.
//! - [`progress`]: progress on stderr.
//! - [`report`]: plots, report.md and comparisons from result directories.
//! - [`resp`]: the RESP2 protocol and `durlab serve`'s server.
//! - [`servers`]: the targets (engine in process, `durlab serve` or redis-server) and the RESP client.
//! - [`cli`] and [`cmd`]: the `durlab` binary's flags and flows.

pub mod cli;
pub mod cmd;
pub mod crashlab;
pub mod driver;
pub mod oracle;
pub mod probe;
pub mod progress;
pub mod recfs;
pub mod report;
pub mod resp;
pub mod results;
pub mod scenario;
pub mod servers;
pub mod workload;
