//! `durlab report`: plots and a Markdown report from a run directory ([`write_report`]), and a
//! side-by-side comparison of two runs ([`compare`]).
//!
//! - [`load`]: reading result files, with errors naming file and field.
//! - [`model`]: crash and recovery records, the joined view of a run.
//! - [`plots`]: loss window vs throughput, latency CDF, group commit, recovery (SVG + PNG).
//! - [`markdown`]: writes `report.md`.
//! - [`recommend`]: the recommendation paragraph, from the numbers only.
//! - [`compare`]: ratios B/A between two runs of the same scenario.
//! - [`uncertainty`]: sample sizes and bootstrap confidence intervals.

pub mod compare;
pub mod load;
pub mod markdown;
pub mod model;
pub mod plots;
pub mod recommend;
pub mod uncertainty;

use std::path::{Path, PathBuf};

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// A file that is missing, unreadable or unwritable.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A result file that is not JSON, or lacks a required field, or has one of the wrong type.
    #[error("{}: field `{field}`: {message}", path.display())]
    Json {
        path: PathBuf,
        field: String,
        message: String,
    },
    /// A plot that could not be drawn or written.
    #[error("drawing {}: {message}", path.display())]
    Plot { path: PathBuf, message: String },
}

/// The files [`write_report`] wrote.
#[derive(Debug, Clone)]
pub struct Written {
    /// `report.md`.
    pub report: PathBuf,
    /// Every plot file (SVG and PNG).
    pub plots: Vec<PathBuf>,
}

/// Reads the run directory `dir` and writes into it the four plots (SVG and PNG each) and
/// `report.md`. Every figure in them comes from the files in `dir`.
///
/// # Errors
/// Any [`ReportError`]: result files missing or malformed (named with the field), plots or
/// the report not writable.
pub fn write_report(dir: &Path) -> Result<Written, ReportError> {
    let results = load::load(dir)?;
    let plots = plots::write_all(&results, dir)?;
    let text = markdown::render(&results);
    let report = dir.join("report.md");
    std::fs::write(&report, text).map_err(|source| ReportError::Io {
        path: report.clone(),
        source,
    })?;
    Ok(Written { report, plots })
}
