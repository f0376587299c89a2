//! `durlab probe`.

use super::CliError;
use super::workdir::WorkDir;
use crate::cli::ProbeArgs;
use crate::probe;

/// Runs the probe and prints it (table or JSON) on stdout.
///
/// # Errors
/// When the directory cannot be prepared or an I/O loop fails.
pub fn run(args: &ProbeArgs) -> Result<(), CliError> {
    let work = WorkDir::new(args.dir.as_deref(), "durlab-probe", false)?;
    if let Some(w) = work.fs_warning() {
        eprintln!("{w}");
    }
    let result = probe::run(work.path(), args.quick)?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&result).expect("probe serializes")
        );
    } else {
        print!("{}", probe::render(&result));
    }
    Ok(())
}
