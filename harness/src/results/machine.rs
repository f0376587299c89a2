//! Facts about the machine and build that every result records.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// The machine a run happened on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Machine {
    /// `uname -sr`-like, from /proc/sys/kernel (`Linux 6.8.0-...`).
    pub kernel: String,
    pub cpu_model: String,
    /// CPUs this process may use.
    pub cpu_count: usize,
    pub memory_total_mb: f64,
    /// File system of the data directory, from statfs(2)'s magic number (`ext4`, `xfs`, ...).
    pub data_fs: String,
    /// The mount holding the data directory, from /proc/self/mounts.
    pub data_mount: Option<Mount>,
}

/// One line of /proc/self/mounts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Mount {
    pub source: String,
    pub target: String,
    pub fs_type: String,
    pub options: String,
}

/// Collects the facts; `data_dir` is where the engine writes. Missing facts are "unknown".
pub fn collect(data_dir: &Path) -> Machine {
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .map(|s| s.trim().to_string())
            .ok()
    };
    let kernel = match (
        read("/proc/sys/kernel/ostype"),
        read("/proc/sys/kernel/osrelease"),
    ) {
        (Some(t), Some(r)) => format!("{t} {r}"),
        _ => "unknown".into(),
    };
    let cpuinfo = read("/proc/cpuinfo").unwrap_or_default();
    let cpu_model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .and_then(|r| r.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let memory_total_mb = read("/proc/meminfo")
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0);
    Machine {
        kernel,
        cpu_model,
        cpu_count: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        memory_total_mb,
        data_fs: fs_type(data_dir),
        data_mount: mount_of(data_dir),
    }
}

/// The file system type of `path` by statfs magic number.
pub fn fs_type(path: &Path) -> String {
    let Ok(st) = nix::sys::statfs::statfs(path) else {
        return "unknown".into();
    };
    let magic = st.filesystem_type().0 as u64;
    let name = match magic {
        0xEF53 => "ext4",
        0x5846_5342 => "xfs",
        0x9123_683E => "btrfs",
        0x0102_1994 => "tmpfs",
        0x794C_7630 => "overlayfs",
        0x2FC1_2FC1 => "zfs",
        0xF2F5_2010 => "f2fs",
        0x6969 => "nfs",
        0x6573_5546 => "fuse",
        0x0102_1997 => "9p",
        0x5346_544E => "ntfs",
        0x4d44 => "vfat",
        0x858_458F6 => "ramfs",
        _ => return format!("unknown (0x{magic:x})"),
    };
    name.into()
}

fn mount_of(path: &Path) -> Option<Mount> {
    let path = path.canonicalize().ok()?;
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    mounts
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 4).then(|| Mount {
                source: f[0].into(),
                target: f[1].replace("\\040", " "),
                fs_type: f[2].into(),
                options: f[3].into(),
            })
        })
        .filter(|m| path.starts_with(&m.target))
        .max_by_key(|m| m.target.len())
}

/// Versions of what produced a result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Versions {
    pub durlab_harness: String,
    pub durlab_engine: String,
    pub rustc: String,
    pub build_profile: String,
    /// Key dependencies, from Cargo.lock at build time (`name -> version[, version]`).
    pub dependencies: BTreeMap<String, String>,
}

/// The versions this binary was built with.
pub fn versions() -> Versions {
    let mut dependencies: BTreeMap<String, String> = BTreeMap::new();
    for pair in env!("DURLAB_DEP_VERSIONS")
        .split(';')
        .filter(|p| !p.is_empty())
    {
        if let Some((n, v)) = pair.split_once('=') {
            dependencies
                .entry(n.to_string())
                .and_modify(|e| *e = format!("{e}, {v}"))
                .or_insert_with(|| v.to_string());
        }
    }
    Versions {
        durlab_harness: env!("CARGO_PKG_VERSION").into(),
        durlab_engine: env!("DURLAB_ENGINE_VERSION").into(),
        rustc: env!("DURLAB_RUSTC_VERSION").into(),
        build_profile: env!("DURLAB_BUILD_PROFILE").into(),
        dependencies,
    }
}

/// The git revision (`git rev-parse HEAD`) of `repo` and whether the tree has changes;
/// ("unknown", None) when git or the repository is unavailable.
pub fn git_revision(repo: &Path) -> (String, Option<bool>) {
    let run = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("-C")
            .arg(repo)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match run(&["rev-parse", "HEAD"]) {
        Some(rev) => (
            rev,
            // Regenerated reference results are not a change to what ran.
            run(&[
                "status",
                "--porcelain",
                "--untracked-files=no",
                "--",
                ".",
                ":(exclude)results",
            ])
            .map(|s| !s.is_empty()),
        ),
        None => ("unknown".into(), None),
    }
}
