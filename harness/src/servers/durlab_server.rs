//! Starting `durlab serve` as a child process on an OS-assigned loopback port.

use std::fs::File;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt as _;
use std::process::{Command, Stdio};

use super::{
    START_TIMEOUT, ServerProcess, ServerSpec, StartError, first_line, log_tail, wait_ready,
};
use crate::resp::info::save_text;

/// First word of the line `durlab serve` prints on stdout once it accepts connections:
/// `listening 127.0.0.1:<port>`. Spawners ([`start`]) read it to learn the port; `durlab serve`
/// (`cmd/serve.rs`) prints it.
pub const READY_PREFIX: &str = "listening ";

/// The `durlab serve` arguments for `spec` (port 0: the OS picks one).
pub fn args(spec: &ServerSpec) -> Vec<String> {
    let mut a: Vec<String> = vec![
        "serve".into(),
        "--port".into(),
        "0".into(),
        "--dir".into(),
        spec.dir.display().to_string(),
        "--appendfsync".into(),
        spec.policy.name().into(),
        "--backend".into(),
        spec.backend.name().into(),
        "--prealloc".into(),
        spec.prealloc.name().into(),
        "--persistence".into(),
        spec.persistence.name().into(),
    ];
    if !spec.save_points.is_empty() {
        a.extend(["--save".into(), save_text(&spec.save_points)]);
    }
    a
}

/// Starts `durlab serve` for `spec` and waits for its `listening` line and a PONG.
///
/// # Errors
/// See [`ServerProcess::start`].
pub fn start(spec: &ServerSpec) -> Result<ServerProcess, StartError> {
    let what = format!("durlab serve ({})", spec.durlab_exe.display());
    let spawn_err = |source| StartError::Spawn {
        what: what.clone(),
        source,
    };
    let log = File::create(&spec.log).map_err(spawn_err)?;
    let mut child = Command::new(&spec.durlab_exe)
        .process_group(0)
        .args(args(spec))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .map_err(spawn_err)?;
    let not_ready = |why: String| StartError::NotReady {
        what: what.clone(),
        why,
        log: spec.log.clone(),
        tail: log_tail(&spec.log),
    };
    let stdout = child.stdout.take().expect("stdout is piped");
    let addr: Option<SocketAddr> = first_line(stdout, START_TIMEOUT).and_then(|l| {
        l.trim()
            .strip_prefix(READY_PREFIX)
            .and_then(|a| a.parse().ok())
    });
    let mut process = ServerProcess::new(child, "127.0.0.1:0".parse().expect("address"), spec);
    let Some(addr) = addr else {
        return Err(not_ready(format!(
            "no '{READY_PREFIX}127.0.0.1:<port>' line on stdout"
        )));
    };
    process.addr = addr;
    let child = process.child.as_mut().expect("just started");
    wait_ready(child, addr, START_TIMEOUT).map_err(not_ready)?;
    Ok(process)
}
