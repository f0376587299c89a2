//! `durlab recover DIR [--check | --fix]`: inspect a data directory, optionally cut a torn tail.

use std::path::Path;

use durlab_engine::{Engine, EngineConfig, inspect};

use super::CliError;
use crate::cli::RecoverArgs;
use crate::scenario::model::Persistence;

/// Most names of non-durlab files listed when a directory holds no durlab file.
const LISTED_OTHER_FILES: usize = 20;

/// Prints the directory's report; with `--fix`, first cuts a torn tail (keeping a copy).
///
/// # Errors
/// The path is missing or not a directory, the directory cannot be read, it holds no durlab
/// file, the fix fails, or the directory is not healthy (after the fix, if any): then the
/// report has already been printed and the exit code is 1.
pub fn run(args: &RecoverArgs) -> Result<(), CliError> {
    let dir = &args.dir;
    match std::fs::metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(CliError(format!(
                "{}: no such directory (durlab serve would create it and start empty)",
                dir.display()
            )));
        }
        Err(e) => return Err(CliError(format!("{}: {e}", dir.display()))),
        Ok(m) if !m.is_dir() => {
            return Err(CliError(format!("{}: not a directory", dir.display())));
        }
        Ok(_) => {}
    }
    if args.fix {
        match inspect::fix_torn_tail(dir).map_err(|e| CliError(e.to_string()))? {
            Some(fix) => println!("fixed: {}\n", fix.describe()),
            None => println!("nothing to fix: no torn tail\n"),
        }
    }
    let report = inspect::inspect_dir(dir).map_err(|e| CliError(e.to_string()))?;
    println!("{report}");
    if report.has_no_durlab_files() {
        return Err(CliError(no_durlab_files(dir, &report.other_files)));
    }
    if let Some(mode) = args.persistence {
        return trial_open(dir, mode);
    }
    if report.is_healthy() {
        return Ok(());
    }
    let torn = report.problems.iter().any(|p| p.repairable);
    Err(CliError(format!(
        "{}: problems found{}",
        dir.display(),
        if torn && !args.fix {
            " (the torn tail can be cut with --fix)"
        } else {
            ""
        }
    )))
}

/// What `durlab serve --persistence mode` would do on `dir`: the engine opens a scratch copy of
/// its durlab files (the same recovery code, so the same decision), and the outcome is
/// printed with the scratch path replaced by `dir`. The copy is removed afterwards.
///
/// # Errors
/// The copy failing (space, permissions), or the engine refusing to open: then the refusal
/// is the error, and the exit code is 1.
fn trial_open(dir: &Path, mode: Persistence) -> Result<(), CliError> {
    let scratch = tempfile::Builder::new()
        .prefix("durlab-recover-")
        .tempdir()
        .map_err(|e| CliError(format!("scratch directory for the trial open: {e}")))?;
    for entry in std::fs::read_dir(dir).map_err(|e| CliError(format!("{}: {e}", dir.display())))? {
        let entry = entry.map_err(|e| CliError(format!("{}: {e}", dir.display())))?;
        let name = entry.file_name();
        let is_file = entry.file_type().is_ok_and(|t| t.is_file());
        if is_file && name.to_string_lossy().starts_with("durlab") {
            std::fs::copy(entry.path(), scratch.path().join(&name)).map_err(|e| {
                CliError(format!(
                    "copying {} for the trial open: {e}",
                    entry.path().display()
                ))
            })?;
        }
    }
    let here = |s: String| {
        s.replace(
            &scratch.path().display().to_string(),
            &dir.display().to_string(),
        )
    };
    let config = EngineConfig::new(scratch.path()).persistence(mode);
    let serve = format!("durlab serve --persistence {}", mode.name());
    match Engine::open(config) {
        Ok((engine, report)) => {
            drop(engine);
            println!(
                "{serve} would start at LSN {}{}",
                report.recovered_lsn,
                if report.changes.is_empty() {
                    ", changing nothing".to_string()
                } else {
                    format!(", after changing {} thing(s):", report.changes.len())
                }
            );
            for change in &report.changes {
                println!("  {}", here(change.to_string()));
            }
            Ok(())
        }
        Err(e) => Err(CliError(format!(
            "{serve} would refuse to start: {}",
            here(e.to_string())
        ))),
    }
}

/// The refusal for a directory without any durlab file, naming what is there.
fn no_durlab_files(dir: &std::path::Path, others: &[String]) -> String {
    if others.is_empty() {
        return format!(
            "{}: no durlab files (the directory is empty): nothing to recover",
            dir.display()
        );
    }
    let mut list = others[..others.len().min(LISTED_OTHER_FILES)].join(", ");
    if others.len() > LISTED_OTHER_FILES {
        list.push_str(&format!(", and {} more", others.len() - LISTED_OTHER_FILES));
    }
    format!(
        "{}: no durlab files (durlab.aof, durlab.snap, durlab.manifest, ...); it holds {} other \
         file(s): {list}. Not a durlab data directory: nothing to recover",
        dir.display(),
        others.len()
    )
}
