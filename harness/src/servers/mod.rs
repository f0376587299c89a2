//! What a benchmark or crash trial drives: the engine in process, or a RESP server in a
//! child process on 127.0.0.1 (`durlab serve`, or a real `redis-server` from PATH), driven
//! by the harness's own [`client`].

pub mod client;
pub mod drive;
pub mod durlab_server;
pub mod readback;
pub mod redis_server;

use std::fmt;
use std::io::BufRead as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout};
use std::str::FromStr;
use std::time::{Duration, Instant};

use durlab_engine::{BackendKind, FsyncPolicy, Persistence, Prealloc};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::resp::commands::AutoId;
use crate::resp::{Value, info};
use client::Client;

/// `cmd` as sent to a RESP target: `PEXPIREAT` and `SET ... PXAT` times moved [`readback::EXPIRY_SHIFT_MS`]
/// ahead (Redis deletes keys whose expiry is past; the workload clock starts in 2026).
pub fn for_resp(mut cmd: durlab_engine::Command) -> durlab_engine::Command {
    use durlab_engine::keyspace::SetTtl;
    match &mut cmd {
        durlab_engine::Command::PExpireAt { at_ms, .. }
        | durlab_engine::Command::SetOpts {
            opts:
                durlab_engine::keyspace::SetOptions {
                    ttl: SetTtl::At(at_ms),
                    ..
                },
            ..
        } => *at_ms = at_ms.saturating_add(readback::EXPIRY_SHIFT_MS),
        _ => {}
    }
    cmd
}

/// How long a server may take to start (recovery included) before it is killed.
pub const START_TIMEOUT: Duration = Duration::from_secs(120);

/// Which system a run measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    /// The engine in this process (no network).
    Engine,
    /// `durlab serve` in a child process, over RESP on loopback.
    DurlabServer,
    /// A real `redis-server` from PATH in a child process, over RESP on loopback.
    Redis,
}

impl Target {
    pub const ALL: [Target; 3] = [Target::Engine, Target::DurlabServer, Target::Redis];

    /// `engine`, `durlab-server` or `redis`.
    pub fn name(self) -> &'static str {
        match self {
            Target::Engine => "engine",
            Target::DurlabServer => "durlab-server",
            Target::Redis => "redis",
        }
    }

    /// True for the targets driven over RESP.
    pub fn is_resp(self) -> bool {
        self != Target::Engine
    }

    /// The label of `setup` run on this target (result files, tables): the engine's own
    /// label; `durlab-server-<label>`; `redis-<policy>-<persistence>` (Redis has no backend
    /// or preallocation).
    pub fn label(self, setup: &crate::driver::matrix::EngineSetup) -> String {
        match self {
            Target::Engine => setup.label(),
            Target::DurlabServer => format!("durlab-server-{}", setup.label()),
            Target::Redis => format!(
                "redis-{}-{}",
                setup.policy,
                setup.persistence.name().replace('+', "-")
            ),
        }
    }

    /// How the client spells automatic XADD ids for this target (see [`AutoId`]).
    pub fn auto_id(self) -> AutoId {
        match self {
            // `*` is time-based for both servers; `0-*` gives the workload's deterministic ids.
            Target::Redis | Target::DurlabServer => AutoId::ZeroMsStar,
            Target::Engine => AutoId::Star,
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Target {
    type Err = String;
    fn from_str(s: &str) -> Result<Target, String> {
        Target::ALL
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| {
                format!("unknown target '{s}': expected one of engine, durlab-server, redis")
            })
    }
}

/// Everything needed to start a server on a data directory.
#[derive(Debug, Clone)]
pub struct ServerSpec {
    pub target: Target,
    pub policy: FsyncPolicy,
    pub backend: BackendKind,
    pub prealloc: Prealloc,
    pub persistence: Persistence,
    /// Save points `(seconds, changes)` for modes `snapshot` and `aof+snapshot`.
    pub save_points: Vec<(u64, u64)>,
    /// Data directory (created if missing).
    pub dir: PathBuf,
    /// The server's stdout and stderr go here.
    pub log: PathBuf,
    /// The `durlab` binary for [`Target::DurlabServer`].
    pub durlab_exe: PathBuf,
    /// Extra redis-server directives (`key`, `value`), after the mapped ones
    /// ([`redis_server::args`]); ignored by `durlab serve`.
    pub redis_config: Vec<(String, String)>,
}

impl ServerSpec {
    /// The spec that runs `config` on `target` (its log next to the data directory), with
    /// this process's binary as `durlab serve`.
    ///
    /// # Errors
    /// When the running binary cannot be found.
    pub fn for_config(
        target: Target,
        config: &durlab_engine::EngineConfig,
    ) -> std::io::Result<ServerSpec> {
        let durlab_exe = std::env::current_exe().map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("finding the durlab binary to start durlab serve: {e}"),
            )
        })?;
        Ok(ServerSpec {
            target,
            policy: config.policy,
            backend: config.backend,
            prealloc: config.prealloc,
            persistence: config.persistence,
            save_points: config.save_points.clone(),
            dir: config.dir.clone(),
            log: config.dir.with_extension("log"),
            durlab_exe,
            redis_config: Vec::new(),
        })
    }
}

/// Why a server did not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    #[error(
        "redis-server was not found in PATH: install it with scripts/install-deps.sh (Debian: apt-get install -y redis-server redis-tools)"
    )]
    RedisMissing,
    #[error("target engine runs in process: there is no server to start")]
    NotAServer,
    #[error("starting {what}: {source}")]
    Spawn {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} did not become ready: {why}; its log {log}: {tail}")]
    NotReady {
        what: String,
        why: String,
        log: PathBuf,
        tail: String,
    },
}

/// A server child process, killed (SIGKILL) and reaped when dropped.
#[derive(Debug)]
pub struct ServerProcess {
    child: Option<Child>,
    addr: SocketAddr,
    spec: ServerSpec,
}

impl ServerProcess {
    /// Starts the server `spec` describes and waits until it answers PING.
    ///
    /// # Errors
    /// [`StartError`]: redis-server missing (with how to install it), spawn failure, or a
    /// server that exits or does not answer within [`START_TIMEOUT`] (naming its log).
    pub fn start(spec: &ServerSpec) -> Result<ServerProcess, StartError> {
        std::fs::create_dir_all(&spec.dir).map_err(|source| StartError::Spawn {
            what: format!("creating {}", spec.dir.display()),
            source,
        })?;
        match spec.target {
            Target::Engine => Err(StartError::NotAServer),
            Target::DurlabServer => durlab_server::start(spec),
            Target::Redis => redis_server::start(spec),
        }
    }

    /// Wraps a started child; kills it on drop.
    fn new(child: Child, addr: SocketAddr, spec: &ServerSpec) -> ServerProcess {
        ServerProcess {
            child: Some(child),
            addr,
            spec: spec.clone(),
        }
    }

    /// Where clients connect (127.0.0.1).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The spec it was started from.
    pub fn spec(&self) -> &ServerSpec {
        &self.spec
    }

    /// The child's process id (0 once killed).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Opens a client connection.
    ///
    /// # Errors
    /// The connect error.
    pub fn connect(&self) -> Result<Client, client::ClientError> {
        Client::connect(self.addr, Duration::from_secs(10))
    }

    /// Sends SIGKILL to the server's process group (the server and the children it forked
    /// for BGSAVE or BGREWRITEAOF: a crash stops them all) and reaps the server. Idempotent.
    ///
    /// # Errors
    /// The kill or wait error.
    pub fn kill9(&mut self) -> std::io::Result<()> {
        if let Some(mut child) = self.child.take() {
            let pid = Pid::from_raw(child.id() as i32);
            // Servers start as leaders of their own group (`process_group(0)`).
            nix::sys::signal::killpg(pid, Signal::SIGKILL)
                .or_else(|_| kill(pid, Signal::SIGKILL))
                .map_err(std::io::Error::from)?;
            child.wait()?;
        }
        Ok(())
    }

    /// Asks the server to stop cleanly (`SHUTDOWN`) and waits up to `timeout` for it to exit;
    /// SIGKILL after that.
    ///
    /// # Errors
    /// The kill or wait error.
    pub fn shutdown(&mut self, timeout: Duration) -> std::io::Result<()> {
        if let Ok(mut c) = self.connect() {
            let _ = c.call(&["SHUTDOWN"]);
        }
        let deadline = Instant::now() + timeout;
        while let Some(child) = &mut self.child {
            if child.try_wait()?.is_some() {
                self.child = None;
                return Ok(());
            }
            if Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.kill9()
    }

    /// Asks the server to stop cleanly (`SHUTDOWN`) and waits up to `timeout` for it to
    /// exit by itself.
    ///
    /// # Errors
    /// A server that did not exit within `timeout` (it is then killed: a stop that needed a
    /// kill is not a clean stop), naming its log.
    pub fn stop(&mut self, timeout: Duration) -> Result<(), String> {
        if let Ok(mut c) = self.connect() {
            let _ = c.call(&["SHUTDOWN"]);
        }
        let deadline = Instant::now() + timeout;
        while let Some(child) = &mut self.child {
            if child.try_wait().map_err(|e| e.to_string())?.is_some() {
                self.child = None;
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = self.kill9();
                return Err(format!(
                    "the server did not stop within {timeout:?} of SHUTDOWN (killed): {}",
                    log_tail(&self.spec.log)
                ));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        Ok(())
    }

    /// `INFO persistence` as `field -> value` pairs.
    ///
    /// # Errors
    /// A connection error or an error reply (as text).
    pub fn info_persistence(&self) -> Result<Vec<(String, String)>, String> {
        let mut c = self.connect().map_err(|e| e.to_string())?;
        match c
            .call(&["INFO", "persistence"])
            .map_err(|e| e.to_string())?
        {
            Value::Bulk(b) => Ok(info::fields(&String::from_utf8_lossy(&b))
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()),
            other => Err(format!("INFO persistence replied {other:?}")),
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.kill9();
    }
}

/// Advice about the host that redis-server logs at every start (memory overcommit,
/// transparent huge pages). It says nothing about why a start failed, and at 300-400
/// characters it would bury the line that does, so [`log_tail`] leaves it out.
const HOST_ADVICE: [&str; 2] = ["vm.overcommit_memory", "Transparent Huge Pages"];

/// The last lines of a log, for error messages, without [`HOST_ADVICE`].
pub fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text
        .lines()
        .rev()
        .filter(|l| !HOST_ADVICE.iter().any(|a| l.contains(a)))
        .take(5)
        .collect();
    lines.into_iter().rev().collect::<Vec<_>>().join(" | ")
}

/// Waits until `addr` answers PING with PONG (a loading Redis answers `-LOADING`).
///
/// One connection is kept and PING re-sent on it as soon as it is answered: a loading Redis
/// reads its clients only between batches of the commands it replays, so the next PING waits
/// in its socket (no polling) and the PONG comes as soon as loading ends; a fresh connection
/// per poll would add a sleep after the end of loading to every start, and the crash lab
/// starts one server per crash image. Sleeps ([`READY_POLL`]) only while the server does not
/// yet accept connections, or after an answer other than PONG (so that a server that answers
/// at once is not asked in a busy loop).
///
/// # Errors
/// Why not, when `child` exits or `timeout` passes.
fn wait_ready(child: &mut Child, addr: SocketAddr, timeout: Duration) -> Result<(), String> {
    let start = Instant::now();
    let mut last = String::new();
    let mut conn: Option<Client> = None;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("it exited ({status})"));
        }
        if start.elapsed() > timeout {
            return Err(format!("no PONG within {timeout:?} ({last})"));
        }
        let c = match conn.as_mut() {
            Some(c) => c,
            None => match Client::connect(addr, Duration::from_secs(1)).and_then(|c| {
                c.set_read_timeout(Some(READY_READ_TIMEOUT))?;
                Ok(c)
            }) {
                Ok(c) => conn.insert(c),
                Err(e) => {
                    last = e.to_string();
                    std::thread::sleep(READY_POLL);
                    continue;
                }
            },
        };
        match c.call(&["PING"]) {
            Ok(Value::Simple(s)) if s == "PONG" => return Ok(()),
            Ok(other) => {
                last = format!("PING replied {other:?}");
                std::thread::sleep(READY_POLL);
            }
            Err(e) => {
                // Closed (the server exiting: `try_wait` says so next) or timed out: connect
                // again.
                last = e.to_string();
                conn = None;
            }
        }
    }
}

/// How long [`wait_ready`] sleeps before it asks again: a server on a small crash image is
/// ready within milliseconds of its start.
const READY_POLL: Duration = Duration::from_millis(1);

/// How long [`wait_ready`] waits for one answer to PING before it connects again.
const READY_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Reads the first line of `stdout` in a helper thread, waiting at most `timeout`.
fn first_line(stdout: ChildStdout, timeout: Duration) -> Option<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let mut r = std::io::BufReader::new(stdout);
        let ok = r.read_line(&mut line).is_ok_and(|n| n > 0);
        let _ = tx.send(ok.then_some(line));
        // Keep draining so that the child never blocks on a full pipe.
        let _ = std::io::copy(&mut r, &mut std::io::sink());
    });
    rx.recv_timeout(timeout).ok().flatten()
}

/// A port that was free on 127.0.0.1 a moment ago (for servers that cannot pick their own).
///
/// # Errors
/// The bind error.
fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_tail_keeps_the_failure_and_drops_host_advice() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("redis.log");
        std::fs::write(
            &log,
            "1:M * Server initialized\n\
             1:M # WARNING Memory overcommit must be enabled! ... 'sysctl vm.overcommit_memory=1' ...\n\
             1:M # Bad file format reading the append only file appendonly.aof.1.incr.aof\n",
        )
        .unwrap();
        assert_eq!(
            log_tail(&log),
            "1:M * Server initialized | 1:M # Bad file format reading the append only file appendonly.aof.1.incr.aof"
        );
    }
}
