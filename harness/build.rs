//! Records the versions of key dependencies (from the workspace's Cargo.lock) and of rustc, so
//! that every result file can say exactly what produced it.

use std::fmt::Write;

const KEY_PACKAGES: &[&str] = &[
    "durlab-engine",
    "clap",
    "crc32c",
    "hdrhistogram",
    "io-uring",
    "libc",
    "nix",
    "rand",
    "rand_chacha",
    "serde_json",
    "toml",
];

fn main() {
    let lock =
        std::path::Path::new(&std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("../Cargo.lock");
    println!("cargo:rerun-if-changed={}", lock.display());
    let text = std::fs::read_to_string(&lock).unwrap_or_default();
    let mut versions: Vec<(String, String)> = Vec::new();
    let mut name = None;
    for line in text.lines() {
        if let Some(n) = line.strip_prefix("name = ") {
            name = Some(n.trim_matches('"').to_string());
        } else if let (Some(v), Some(n)) = (line.strip_prefix("version = "), name.take()) {
            if KEY_PACKAGES.contains(&n.as_str()) {
                versions.push((n, v.trim_matches('"').to_string()));
            }
        }
    }
    versions.sort();
    let engine = versions
        .iter()
        .find(|(n, _)| n == "durlab-engine")
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=DURLAB_ENGINE_VERSION={engine}");
    versions.retain(|(n, _)| n != "durlab-engine");
    let mut out = String::new();
    for (n, v) in &versions {
        let _ = write!(out, "{n}={v};");
    }
    println!("cargo:rustc-env=DURLAB_DEP_VERSIONS={out}");

    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = std::process::Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=DURLAB_RUSTC_VERSION={version}");
    let profile = std::env::var("PROFILE").unwrap_or_default();
    println!("cargo:rustc-env=DURLAB_BUILD_PROFILE={profile}");
}
