//! `durlab recover DIR [--check | --fix]`: inspect a data directory, optionally cut a torn tail.

use durlab_engine::inspect;

use super::CliError;
use crate::cli::RecoverArgs;

/// Prints the directory's report; with `--fix`, first cuts a torn tail (keeping a copy).
///
/// # Errors
/// The directory cannot be read, the fix fails, or the directory is not healthy (after the
/// fix, if any): then the report has already been printed and the exit code is 1.
pub fn run(args: &RecoverArgs) -> Result<(), CliError> {
    let dir = &args.dir;
    if !dir.is_dir() {
        return Err(CliError(format!("{}: not a directory", dir.display())));
    }
    if args.fix {
        match inspect::fix_torn_tail(dir).map_err(|e| CliError(e.to_string()))? {
            Some(fix) => println!(
                "fixed: cut {} bytes from {} at byte {}; the cut bytes are kept in {}\n",
                fix.bytes_cut,
                fix.path.display(),
                fix.cut_offset,
                fix.quarantine_path.display()
            ),
            None => println!("nothing to fix: no torn tail\n"),
        }
    }
    let report = inspect::inspect_dir(dir).map_err(|e| CliError(e.to_string()))?;
    println!("{report}");
    if report.is_healthy() {
        Ok(())
    } else {
        Err(CliError(format!(
            "{}: problems found{}",
            dir.display(),
            if args.fix {
                ""
            } else {
                " (a torn tail can be cut with --fix)"
            }
        )))
    }
}
