//! Helpers of the RESP tests: servers on OS-assigned loopback ports that are killed when
//! dropped, and the Redis tools, which must be installed (never skipped silently).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use durlab_engine::{BackendKind, FsyncPolicy, Persistence, Prealloc};
use durlab_harness::servers::{ServerProcess, ServerSpec, Target};

/// Panics, saying how to install them, unless `tools` are all in PATH.
pub fn require(tools: &[&str]) {
    for t in tools {
        let found = std::env::var_os("PATH")
            .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(t).is_file()));
        assert!(
            found,
            "{t} is not installed: run scripts/install-deps.sh (Debian packages redis-server and redis-tools) before the tests"
        );
    }
}

/// A server for `target` on a fresh directory under `tmp` (killed with SIGKILL on drop).
pub fn start(
    target: Target,
    policy: FsyncPolicy,
    persistence: Persistence,
    tmp: &Path,
) -> ServerProcess {
    let dir = tmp.join(format!("{target}-{policy}-data"));
    let spec = ServerSpec {
        target,
        policy,
        backend: BackendKind::Pwrite,
        prealloc: Prealloc::None,
        persistence,
        save_points: Vec::new(),
        log: dir.with_extension("log"),
        dir,
        durlab_exe: PathBuf::from(env!("CARGO_BIN_EXE_durlab")),
        redis_config: Vec::new(),
    };
    ServerProcess::start(&spec).unwrap_or_else(|e| panic!("starting {target}: {e}"))
}

/// Runs `redis-cli -h 127.0.0.1 -p <port> args...` with `stdin`, bounded by `timeout`.
pub fn redis_cli(server: &ServerProcess, args: &[&str], stdin: Option<&[u8]>) -> Output {
    use std::io::Write as _;
    let port = server.addr().port().to_string();
    let mut child = Command::new("timeout")
        .args(["30", "redis-cli", "-h", "127.0.0.1", "-p", &port])
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("starting redis-cli");
    let mut input = child.stdin.take().unwrap();
    if let Some(bytes) = stdin {
        input.write_all(bytes).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

/// stdout of `redis-cli` as text, asserting it exited 0.
pub fn cli(server: &ServerProcess, args: &[&str]) -> String {
    let out = redis_cli(server, args, None);
    assert!(out.status.success(), "redis-cli {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}
