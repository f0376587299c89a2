//! Finding scenario files and the repository top (where `scenarios/` and `results/` live).

use std::path::{Path, PathBuf};

/// The repository top: the nearest ancestor of the current directory holding `scenarios/`,
/// else the workspace this binary was built from (if it still exists), else the current
/// directory.
pub fn repo_root() -> PathBuf {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    if let Some(dir) = cwd.ancestors().find(|d| d.join("scenarios").is_dir()) {
        return dir.to_owned();
    }
    let built = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_owned);
    match built {
        Some(dir) if dir.join("scenarios").is_dir() => dir,
        _ => cwd,
    }
}

/// Resolves `arg` to a scenario file: an existing path as is; otherwise a name looked up as
/// `scenarios/<name>.toml` under the current directory, then under [`repo_root`].
///
/// # Errors
/// A message listing the places that were tried.
pub fn find_scenario(arg: &str) -> Result<PathBuf, String> {
    let direct = PathBuf::from(arg);
    if direct.is_file() {
        return Ok(direct);
    }
    let file = if arg.ends_with(".toml") {
        arg.to_string()
    } else {
        format!("{arg}.toml")
    };
    let mut tried = vec![direct.clone()];
    let candidates = [
        PathBuf::from("scenarios").join(&file),
        repo_root().join("scenarios").join(&file),
    ];
    for c in candidates {
        if c.is_file() {
            return Ok(c);
        }
        tried.push(c);
    }
    let tried: Vec<String> = tried.iter().map(|p| p.display().to_string()).collect();
    Err(format!(
        "scenario '{arg}' not found (tried {})",
        tried.join(", ")
    ))
}
