//! The subcommands' top-level flows.

pub mod bench;
pub mod crash;
pub mod fs;
pub mod kill9;
pub mod overrides;
pub mod probe;
pub mod recover;
pub mod report;
pub mod run;
pub mod run_group_commit;
pub mod run_recovery;
pub mod serve;
pub mod workdir;
pub mod worker;

/// A failure to report to the user (exit code 1). The message names what failed and where.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CliError(pub String);

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        CliError(e.to_string())
    }
}

impl From<crate::report::ReportError> for CliError {
    fn from(e: crate::report::ReportError) -> Self {
        CliError(e.to_string())
    }
}
