//! Result files: per-configuration records ([`json`]), machine facts ([`machine`]), the run
//! directory and `run.json` ([`run_dir`]), ratios ([`ratios`]) and the readable table ([`table`]).

pub mod encode;
pub mod json;
pub mod machine;
pub mod ratios;
pub mod run_dir;
pub mod table;
pub mod time;
