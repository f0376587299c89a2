//! `durlab report`: plots and report.md for one result directory, or a comparison of two.

use super::CliError;
use crate::cli::ReportArgs;
use crate::report::{self, compare, load};

/// Runs `durlab report`.
///
/// # Errors
/// Result files missing or malformed (named, with the field), or outputs not writable.
pub fn run(args: &ReportArgs) -> Result<(), CliError> {
    match args.dirs.as_slice() {
        [dir] => {
            if args.out.is_some() {
                return Err(CliError(
                    "--out applies to a comparison (two result directories)".into(),
                ));
            }
            let written = report::write_report(dir)?;
            println!("{}", written.report.display());
            Ok(())
        }
        [a, b] => {
            let text = compare::render(&load::load(a)?, &load::load(b)?);
            if let Some(out) = &args.out {
                std::fs::write(out, &text)
                    .map_err(|e| CliError(format!("writing {}: {e}", out.display())))?;
            }
            print!("{text}");
            Ok(())
        }
        _ => Err(CliError("give one or two result directories".into())),
    }
}
