//! The RESP2 server behind `durlab serve`: event loops (epoll) on 127.0.0.1.
//!
//! Each loop round reads what every ready connection sent, parses every complete request
//! (pipelining), and runs the data commands of all of them as one [`Engine::execute_batch`]
//! (one lock acquisition, consecutive LSNs, one acknowledgement: under `always` one
//! fdatasync; several loops' rounds overlap through the engine's group commit), then writes
//! the replies in request order. So no reply is sent before the command it answers is
//! acknowledged under the policy. `MULTI`/`EXEC` queue data commands and run them as one
//! [`Command::Multi`] in the round's batch: atomic with respect to other clients, and one log
//! record with one LSN, so that a crash (a torn or reordered write) keeps all of a transaction
//! or none of it, as Redis reverts an incomplete MULTI/EXEC at the end of its AOF. A request
//! that is not
//! a data command (a read such as HGETALL, INFO, ...) first runs the round so far, so it
//! sees the connection's earlier writes.
//!
//! One file per idea: [`event_loop`] (epoll, accepting, reading, writing), its child
//! `dispatch` (a request's way: queued in MULTI, into the round, or answered now),
//! [`connection`] (a connection's buffers and their limits), [`round`] (the round's batch
//! and how its acknowledgements become replies), [`admin`] (INFO, CONFIG GET and the other
//! requests that touch no connection) and [`background`] (SAVE, BGSAVE, BGREWRITEAOF).

mod admin;
mod background;
mod connection;
mod event_loop;
mod round;

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use durlab_engine::{Engine, Persistence};
use parking_lot::Mutex;

use super::info::BgStatus;
use super::parse::Limits;
use event_loop::EventLoop;

/// Limits on clients, as Redis's `maxclients` and `client-output-buffer-limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientLimits {
    /// Most connections served at once (over all event loops). A connection beyond it is
    /// answered `-ERR max number of clients reached` and closed, as Redis does.
    pub max_clients: usize,
    /// Most bytes of replies one client may leave unread. A client past it is disconnected
    /// (its unsent replies are dropped) and the reason is logged on stderr.
    pub max_output_bytes: usize,
}

impl Default for ClientLimits {
    fn default() -> Self {
        ClientLimits {
            max_clients: DEFAULT_MAX_CLIENTS,
            max_output_bytes: DEFAULT_MAX_OUTPUT_BYTES,
        }
    }
}

/// Redis's default `maxclients`.
pub const DEFAULT_MAX_CLIENTS: usize = 10_000;
/// Default of [`ClientLimits::max_output_bytes`]. Redis's default for normal clients is no
/// limit; durlab bounds its memory instead.
pub const DEFAULT_MAX_OUTPUT_BYTES: usize = 256 << 20;

/// A bound listener with its engine; [`Server::run`] serves until `SHUTDOWN`.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    state: Arc<State>,
}

/// What every event loop shares: the engine, the limits, the counters INFO reports.
#[derive(Debug)]
struct State {
    engine: Engine,
    addr: SocketAddr,
    limits: Limits,
    clients: ClientLimits,
    /// Connections open now, over all loops.
    connected: AtomicUsize,
    /// Connections refused by `max_clients` or for want of a file descriptor.
    rejected: AtomicU64,
    /// Clients disconnected for exceeding `max_output_bytes`.
    output_disconnects: AtomicU64,
    stop: AtomicBool,
    bg: Mutex<BgStatus>,
}

impl State {
    fn new(engine: Engine, addr: SocketAddr, limits: Limits, clients: ClientLimits) -> State {
        State {
            engine,
            addr,
            limits,
            clients,
            connected: AtomicUsize::new(0),
            rejected: AtomicU64::new(0),
            output_disconnects: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            bg: Mutex::new(BgStatus {
                last_save_unix_secs: unix_secs(),
                ..BgStatus::default()
            }),
        }
    }
}

fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Server {
    /// Binds 127.0.0.1:`port` (0: a free port the OS picks) for `engine`.
    ///
    /// # Errors
    /// The bind error (port in use, ...).
    pub fn bind(
        engine: Engine,
        port: u16,
        limits: Limits,
        clients: ClientLimits,
    ) -> std::io::Result<Server> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port))?;
        let addr = listener.local_addr()?;
        Ok(Server {
            listener,
            state: Arc::new(State::new(engine, addr, limits, clients)),
        })
    }

    /// The address clients connect to.
    pub fn local_addr(&self) -> SocketAddr {
        self.state.addr
    }

    /// Serves connections with `loops` event-loop threads (each accepts connections and runs
    /// its own rounds; one that finds nothing ready keeps polling for `spin` before it
    /// sleeps) until a client sends `SHUTDOWN`; then makes every acknowledged
    /// command durable (an fdatasync of the log; in mode `snapshot` with save points, a
    /// final save, as Redis saves on shutdown) and returns. Connections still open are left
    /// to the caller's process exit.
    ///
    /// # Errors
    /// Setting up a loop failing, or the final sync or save failing.
    pub fn run(self, loops: usize, spin: Duration) -> Result<(), String> {
        let mut handles = Vec::new();
        for k in 0..loops.max(1) {
            let listener = self
                .listener
                .try_clone()
                .map_err(|e| format!("cloning the listener: {e}"))?;
            let ev = EventLoop::new(self.state.clone(), listener, spin)
                .map_err(|e| format!("setting up epoll: {e}"))?;
            let h = std::thread::Builder::new()
                .name(format!("durlab-loop-{k}"))
                .spawn(move || ev.run())
                .map_err(|e| format!("starting event loop {k}: {e}"))?;
            handles.push(h);
        }
        for h in handles {
            let _ = h.join();
        }
        let engine = &self.state.engine;
        engine
            .sync()
            .map_err(|e| format!("final sync at shutdown: {e}"))?;
        let c = engine.config();
        if c.persistence == Persistence::Snapshot && !c.save_points.is_empty() {
            engine
                .save()
                .map_err(|e| format!("final save at shutdown: {e}"))?;
        }
        Ok(())
    }
}

/// A server state over a real engine opened with `config`, for the unit tests of the parts
/// that need one (no listener: nothing is served).
#[cfg(test)]
fn test_state(config: durlab_engine::EngineConfig, max_clients: usize) -> Arc<State> {
    let (engine, _) = Engine::open(config).expect("open engine");
    let clients = ClientLimits {
        max_clients,
        ..ClientLimits::default()
    };
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, 6390));
    Arc::new(State::new(engine, addr, Limits::default(), clients))
}
