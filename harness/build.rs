//! Records the versions of key dependencies (from the workspace's Cargo.lock) and of rustc, so
//! that every result file can say exactly what produced it. Fails the build when it cannot.

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

/// Fails the build with `msg`: a result that cannot say what produced it is worthless, so a
/// missing or unreadable Cargo.lock, or a key package missing from it, is an error.
fn fail(msg: String) -> ! {
    panic!("durlab-harness build script: {msg}")
}

fn main() {
    let lock =
        std::path::Path::new(&std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("../Cargo.lock");
    println!("cargo:rerun-if-changed={}", lock.display());
    let text = std::fs::read_to_string(&lock).unwrap_or_else(|e| {
        fail(format!(
            "reading {} (every result records the dependency versions from it): {e}",
            lock.display()
        ))
    });
    let parsed: toml::Table = text
        .parse()
        .unwrap_or_else(|e| fail(format!("parsing {}: {e}", lock.display())));
    let packages = parsed
        .get("package")
        .and_then(toml::Value::as_array)
        .unwrap_or_else(|| fail(format!("{} lists no [[package]]", lock.display())));
    let mut versions: Vec<(String, String)> = Vec::new();
    for package in packages {
        let field = |key: &str| package.get(key).and_then(toml::Value::as_str);
        let (Some(name), Some(version)) = (field("name"), field("version")) else {
            fail(format!(
                "{}: a [[package]] without a name or version",
                lock.display()
            ));
        };
        if KEY_PACKAGES.contains(&name) {
            versions.push((name.to_string(), version.to_string()));
        }
    }
    for key in KEY_PACKAGES {
        if !versions.iter().any(|(n, _)| n == key) {
            fail(format!("{key} is missing from {}", lock.display()));
        }
    }
    versions.sort();
    let engine = versions
        .iter()
        .find(|(n, _)| n == "durlab-engine")
        .map(|(_, v)| v.clone())
        .expect("checked above");
    println!("cargo:rustc-env=DURLAB_ENGINE_VERSION={engine}");
    versions.retain(|(n, _)| n != "durlab-engine");
    let mut out = String::new();
    for (n, v) in &versions {
        let _ = write!(out, "{n}={v};");
    }
    println!("cargo:rustc-env=DURLAB_DEP_VERSIONS={out}");

    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = match std::process::Command::new(&rustc).arg("--version").output() {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_string(),
        Ok(o) => fail(format!("{rustc} --version: {}", o.status)),
        Err(e) => fail(format!("running {rustc} --version: {e}")),
    };
    println!("cargo:rustc-env=DURLAB_RUSTC_VERSION={version}");
    let profile = std::env::var("PROFILE").unwrap_or_default();
    println!("cargo:rustc-env=DURLAB_BUILD_PROFILE={profile}");
}
