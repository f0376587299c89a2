//! Scenario files: their shape ([`model`]), parsing and checks ([`parse`]), lookup by name
//! ([`locate`]) and the built-in default ([`builtin`]).

pub mod builtin;
pub mod locate;
pub mod model;
pub mod parse;

pub use model::Scenario;
pub use parse::{ScenarioError, load, parse_str};
