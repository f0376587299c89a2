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

use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use durlab_engine::{Command, Engine, Persistence, Reply};
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use parking_lot::Mutex;

use super::commands::{self, Request};
use super::info::{self, BgStatus};
use super::parse::{Limits, Scanned, Scanner};
use super::{Value, encode};

/// Read buffer grows by this much at a time.
const READ_CHUNK_BYTES: usize = 64 << 10;

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
/// Reading a connection stops while its unsent replies exceed this (or the output limit, if
/// lower), and resumes once they are down to half of it: a client that does not read its
/// replies cannot make the server buffer more.
const PAUSE_OUTPUT_BYTES: usize = 64 << 20;
/// Replies sent to a refused connection.
const MAX_CLIENTS_REPLY: &[u8] = b"-ERR max number of clients reached\r\n";

/// What a reply says once the engine has failed.
const FAILED: &str =
    "MISCONF durlab engine failed, nothing more is acknowledged (see INFO persistence)";

/// A bound listener with its engine; [`Server::run`] serves until `SHUTDOWN`.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    state: Arc<State>,
}

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
        let bg = BgStatus {
            last_save_unix_secs: unix_secs(),
            ..BgStatus::default()
        };
        Ok(Server {
            listener,
            state: Arc::new(State {
                engine,
                addr,
                limits,
                clients,
                connected: AtomicUsize::new(0),
                rejected: AtomicU64::new(0),
                output_disconnects: AtomicU64::new(0),
                stop: AtomicBool::new(false),
                bg: Mutex::new(bg),
            }),
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

/// Redis's MULTI state: `None` outside MULTI; else the queued requests and whether one of
/// them was refused (EXEC then aborts).
type Queue = Option<(Vec<Item>, bool)>;

/// One request's engine commands, with `sum` for multi-key DEL.
type Item = (Vec<Command>, bool);

/// Whose replies a part of the round's batch is.
#[derive(Debug)]
enum Owner {
    /// One request (`Item`'s shape).
    Request { conn: usize, n: usize, sum: bool },
    /// An EXEC: one array reply over these requests. `multi`: their commands went to the
    /// batch as one [`Command::Multi`] (one ack, whose array reply holds theirs), else as
    /// themselves (a transaction of one command).
    Exec {
        conn: usize,
        shape: Vec<(usize, bool)>,
        multi: bool,
    },
}

/// The data commands of every connection read in this event-loop round, run as one engine
/// batch: one lock acquisition, one log write, one acknowledgement (under `always` one
/// fdatasync, overlapping with other loops' rounds through the engine's group commit).
#[derive(Debug, Default)]
struct Round {
    cmds: Vec<Command>,
    owners: Vec<Owner>,
}

/// A connection's buffers and protocol state.
struct Connection {
    stream: TcpStream,
    peer: SocketAddr,
    input: Vec<u8>,
    filled: usize,
    /// Resumes the scan of a request that arrives in several reads.
    scanner: Scanner,
    out: Vec<u8>,
    /// Bytes of `out` already sent.
    sent: usize,
    multi: Queue,
    /// Data commands of this connection are in the current round (so a reply computed now
    /// must wait until the round has run).
    in_round: bool,
    /// Commands of this connection in the current round whose replies can be large (GET,
    /// ZPOPMIN): their size is known only once the round runs.
    unsized_in_round: usize,
    /// The peer shut down its sending side: nothing more to read; the complete requests
    /// already read are still run and answered.
    eof: bool,
    /// Reading and parsing wait until the unsent replies drain (a client not reading).
    paused: bool,
    /// Close once `out` is sent.
    close: bool,
    /// The connection failed or overflowed: its replies are dropped, and it closes.
    discard: bool,
    /// The epoll events registered for it.
    interest: EpollFlags,
}

impl Connection {
    fn pending(&self) -> usize {
        self.out.len() - self.sent
    }

    fn drop_output(&mut self) {
        self.close = true;
        self.discard = true;
        self.out = Vec::new();
        self.sent = 0;
    }
}

/// Reads at most this much from one connection per round (fairness).
const READ_PER_ROUND_BYTES: usize = 1 << 20;
/// A connection's requests whose reply size is unknown (GET, ZPOPMIN) wait in a round at
/// most this many at a time; then the round runs early, so their replies count against the
/// output limits before more are parsed. Without it a burst of 1,000 GETs of a 1 MB value
/// built 2 GB of replies in one round.
const MAX_UNSIZED_PER_ROUND: usize = 32;
/// A span list grown past this (a request with many arguments) is not kept.
const MAX_KEPT_SPANS: usize = 1 << 10;
/// An output buffer emptied with more capacity than this gives its memory back.
const MAX_KEPT_OUTPUT_BYTES: usize = 1 << 20;
/// Token of the listener in each loop's epoll set.
const LISTENER_TOKEN: u64 = u64::MAX;
/// How long a loop stops accepting when no file descriptor is left even to refuse a
/// connection, and how often it logs that it is refusing connections.
const FD_BACKOFF: Duration = Duration::from_millis(100);
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(1);

/// One event loop: its own epoll set, a clone of the listener, its connections.
struct EventLoop {
    state: Arc<State>,
    listener: TcpListener,
    epoll: Epoll,
    conns: Vec<Option<Connection>>,
    round: Round,
    /// How long to keep polling without blocking once nothing is ready.
    spin: Duration,
    /// Reading a connection pauses while its unsent replies exceed this.
    pause_bytes: usize,
    /// Paused connections whose replies drained: their buffered requests are parsed in the
    /// next iteration, which does not sleep (no socket event would announce them).
    resumed: Vec<usize>,
    /// Connections disconnected while a round ran: the write phase closes them.
    disconnected: Vec<usize>,
    /// A descriptor held in reserve: when accept fails for want of descriptors, closing it
    /// lets the loop accept the waiting connection, refuse it and close it, instead of
    /// epoll reporting the same waiting connection forever (a loop at 100% CPU).
    spare: Option<std::fs::File>,
    /// Accepting stopped (no descriptor left even to refuse a connection) until then.
    accept_paused_until: Option<Instant>,
    /// Connections refused for want of descriptors since the last log line, and when it was.
    fd_refusals: u64,
    last_refusal_log: Option<Instant>,
}

fn spare_fd() -> Option<std::fs::File> {
    std::fs::File::open("/dev/null").ok()
}

impl EventLoop {
    fn new(state: Arc<State>, listener: TcpListener, spin: Duration) -> std::io::Result<EventLoop> {
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
        listener.set_nonblocking(true)?;
        epoll.add(
            &listener,
            EpollEvent::new(
                EpollFlags::EPOLLIN | EpollFlags::EPOLLEXCLUSIVE,
                LISTENER_TOKEN,
            ),
        )?;
        let pause_bytes = PAUSE_OUTPUT_BYTES.min(state.clients.max_output_bytes);
        Ok(EventLoop {
            state,
            listener,
            epoll,
            conns: Vec::new(),
            round: Round::default(),
            spin,
            pause_bytes,
            resumed: Vec::new(),
            disconnected: Vec::new(),
            spare: spare_fd(),
            accept_paused_until: None,
            fd_refusals: 0,
            last_refusal_log: None,
        })
    }

    fn run(mut self) {
        let mut events = vec![EpollEvent::empty(); 256];
        let mut touched = Vec::new();
        // When the loop last found nothing ready (it polls until `spin` has passed, then
        // sleeps in epoll_wait).
        let mut idle_since: Option<Instant> = None;
        while !self.state.stop.load(Ordering::Acquire) {
            self.resume_accepting();
            let busy = !self.resumed.is_empty();
            let poll = busy
                || (!self.spin.is_zero() && idle_since.is_none_or(|t| t.elapsed() < self.spin));
            let timeout = if poll {
                EpollTimeout::ZERO
            } else {
                EpollTimeout::from(100u16)
            };
            let n = match self.epoll.wait(&mut events, timeout) {
                Ok(0) if poll && !busy => {
                    idle_since.get_or_insert_with(Instant::now);
                    continue;
                }
                Ok(n) => {
                    idle_since = None;
                    n
                }
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => {
                    eprintln!("durlab serve: epoll_wait: {e}");
                    return;
                }
            };
            touched.clear();
            for ev in &events[..n] {
                let token = ev.data();
                if token == LISTENER_TOKEN {
                    self.accept();
                    continue;
                }
                let i = token as usize;
                touched.push(i);
                if ev
                    .events()
                    .intersects(EpollFlags::EPOLLIN | EpollFlags::EPOLLHUP | EpollFlags::EPOLLERR)
                {
                    self.fill(i);
                    self.process(i);
                }
            }
            for i in std::mem::take(&mut self.resumed) {
                touched.push(i);
                self.process(i);
            }
            self.run_round();
            touched.append(&mut self.disconnected);
            // Only connections touched in this iteration can have new or pending output.
            // Replies go out last-ready first, as Redis's LIFO pending-write list sends them:
            // in index or ready order, waking client threads cost 4-7x more cross-CPU
            // reschedule IPIs and 4-8% throughput at 50 connections (docs/serve.md).
            for &i in touched.iter().rev() {
                self.write(i);
            }
        }
    }

    fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((stream, peer)) => self.admit(stream, peer),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                // The connection was reset while queued: it is gone from the queue.
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionAborted => {}
                Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) => {
                    return self.out_of_descriptors(&e);
                }
                Err(e) => {
                    eprintln!("durlab serve: accept: {e}");
                    return;
                }
            }
        }
    }

    /// Registers an accepted connection, or refuses it past `max_clients`.
    fn admit(&mut self, stream: TcpStream, peer: SocketAddr) {
        let st = &self.state;
        if st.connected.fetch_add(1, Ordering::AcqRel) >= st.clients.max_clients {
            st.connected.fetch_sub(1, Ordering::AcqRel);
            return refuse(&st.rejected, stream);
        }
        let _ = stream.set_nodelay(true);
        let i = self
            .conns
            .iter()
            .position(Option::is_none)
            .unwrap_or_else(|| {
                self.conns.push(None);
                self.conns.len() - 1
            });
        let registered = stream.set_nonblocking(true).is_ok()
            && self
                .epoll
                .add(&stream, EpollEvent::new(EpollFlags::EPOLLIN, i as u64))
                .is_ok();
        if !registered {
            st.connected.fetch_sub(1, Ordering::AcqRel);
            return;
        }
        self.conns[i] = Some(Connection {
            stream,
            peer,
            input: Vec::new(),
            filled: 0,
            scanner: Scanner::new(),
            out: Vec::new(),
            sent: 0,
            multi: None,
            in_round: false,
            unsized_in_round: 0,
            eof: false,
            paused: false,
            close: false,
            discard: false,
            interest: EpollFlags::EPOLLIN,
        });
    }

    /// accept failed with EMFILE or ENFILE. The waiting connection stays queued and the
    /// listener stays readable, so the next epoll_wait would report it again at once: release
    /// the spare descriptor, accept the connection into it, refuse it, and take the spare
    /// back. Without a spare, stop accepting for [`FD_BACKOFF`].
    fn out_of_descriptors(&mut self, e: &std::io::Error) {
        let mut refused = 0;
        if self.spare.take().is_some() {
            // Only one descriptor was freed: one connection at a time.
            if let Ok((stream, _)) = self.listener.accept() {
                refuse(&self.state.rejected, stream);
                refused += 1;
            }
            self.spare = spare_fd();
        }
        if refused == 0 || self.spare.is_none() {
            let _ = self.epoll.delete(&self.listener);
            self.accept_paused_until = Some(Instant::now() + FD_BACKOFF);
        }
        self.fd_refusals += refused;
        if self
            .last_refusal_log
            .is_none_or(|t| t.elapsed() >= REFUSAL_LOG_EVERY)
        {
            self.last_refusal_log = Some(Instant::now());
            eprintln!(
                "durlab serve: accept: {e}; refused {} connection(s) with \"max number of clients reached\" since the last such message (raise ulimit -n or lower --maxclients)",
                std::mem::take(&mut self.fd_refusals)
            );
        }
    }

    fn resume_accepting(&mut self) {
        if self
            .accept_paused_until
            .is_some_and(|t| Instant::now() >= t)
        {
            self.accept_paused_until = None;
            if self.spare.is_none() {
                self.spare = spare_fd();
            }
            let ev = EpollEvent::new(
                EpollFlags::EPOLLIN | EpollFlags::EPOLLEXCLUSIVE,
                LISTENER_TOKEN,
            );
            // An EPOLLEXCLUSIVE registration cannot be modified: delete and add it again.
            let _ = self.epoll.delete(&self.listener);
            let _ = self.epoll.add(&self.listener, ev);
        }
    }

    fn drop_conn(&mut self, i: usize) {
        if let Some(c) = self.conns[i].take() {
            let _ = self.epoll.delete(&c.stream);
            self.state.connected.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// Reads what the connection sent, unless it is paused, closing or at end of stream.
    fn fill(&mut self, i: usize) {
        let mut got = 0;
        loop {
            let Some(c) = self.conns[i].as_mut() else {
                return;
            };
            if c.close || c.eof || c.paused || got >= READ_PER_ROUND_BYTES {
                return;
            }
            if c.input.len() < c.filled + READ_CHUNK_BYTES {
                c.input.resize(c.filled + READ_CHUNK_BYTES, 0);
            }
            match c.stream.read(&mut c.input[c.filled..]) {
                Ok(0) => {
                    // The peer may only have shut down its sending side (it still reads):
                    // the requests already buffered run and are answered before closing.
                    c.eof = true;
                    return;
                }
                Ok(n) => {
                    let asked = c.input.len() - c.filled;
                    c.filled += n;
                    got += n;
                    // A short read drained the socket for now; epoll is level-triggered, so
                    // more data wakes this connection again (saves a read that would block).
                    if n < asked {
                        return;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => {
                    c.drop_output();
                    return;
                }
            }
        }
    }

    /// Handles every complete request buffered for connection `i`, until it closes or its
    /// unsent replies exceed the pause threshold.
    fn process(&mut self, i: usize) {
        let limits = self.state.limits;
        let mut at = 0;
        loop {
            let Some(c) = self.conns[i].as_mut() else {
                return;
            };
            if c.close {
                break;
            }
            if c.pending() > self.pause_bytes {
                c.paused = true;
                break;
            }
            if c.unsized_in_round >= MAX_UNSIZED_PER_ROUND {
                // Their replies join `out` now; the checks above then see them.
                self.run_round();
                continue;
            }
            let buf = &c.input[at..c.filled];
            let parsed = match c.scanner.scan(buf, &limits) {
                Ok(Some(Scanned::Spans { used })) => {
                    at += used;
                    commands::parse_spans(buf, c.scanner.spans(), unix_ms())
                }
                Ok(Some(Scanned::Inline { args, used })) => {
                    at += used;
                    let args: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
                    (!args.is_empty()).then(|| commands::parse(&args, unix_ms()))
                }
                Ok(None) => {
                    // An incomplete request at end of stream can never complete.
                    if c.eof {
                        c.close = true;
                    }
                    break;
                }
                Err(e) => {
                    self.reply(i, Value::err(e));
                    if let Some(c) = self.conns[i].as_mut() {
                        c.close = true;
                    }
                    break;
                }
            };
            if let Some(parsed) = parsed {
                self.request(i, parsed);
            }
        }
        if let Some(c) = self.conns[i].as_mut() {
            c.scanner.shrink(MAX_KEPT_SPANS);
            // Only consumed bytes are moved out: a request arriving in many reads is not
            // copied again on every read.
            if at > 0 {
                c.input.copy_within(at..c.filled, 0);
                c.filled -= at;
            }
            if c.input.len() > 4 * READ_CHUNK_BYTES && c.filled < READ_CHUNK_BYTES {
                c.input.truncate(READ_CHUNK_BYTES);
                c.input.shrink_to(READ_CHUNK_BYTES);
            }
        }
    }

    /// Sends what can be sent; closes a connection that asked for it once its replies are
    /// out; resumes a paused connection whose replies drained; sets the epoll interest to
    /// what the connection waits for (never readability while paused or at end of stream,
    /// which would wake the loop at once, forever).
    fn write(&mut self, i: usize) {
        let Some(c) = self.conns[i].as_mut() else {
            return;
        };
        while c.sent < c.out.len() {
            match c.stream.write(&c.out[c.sent..]) {
                Ok(0) => c.drop_output(),
                Ok(n) => c.sent += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => c.drop_output(),
            }
        }
        if c.sent == c.out.len() {
            c.out.clear();
            c.sent = 0;
            if c.out.capacity() > MAX_KEPT_OUTPUT_BYTES {
                c.out = Vec::new();
            }
        }
        let resume = c.paused && c.pending() <= self.pause_bytes / 2 && !c.close;
        if resume {
            c.paused = false;
            self.resumed.push(i);
        }
        let pending = c.pending() > 0;
        let mut want = EpollFlags::empty();
        if !(c.close || c.eof || c.paused) {
            want |= EpollFlags::EPOLLIN;
        }
        if pending {
            want |= EpollFlags::EPOLLOUT;
        }
        // Closing with nothing left to send, or at end of stream with nothing left to do.
        if !pending && !resume && (c.close || want.is_empty()) {
            self.drop_conn(i);
            return;
        }
        if want != c.interest {
            c.interest = want;
            let mut ev = EpollEvent::new(want, i as u64);
            let _ = self.epoll.modify(&c.stream, &mut ev);
        }
    }

    /// Runs the round's batch and appends each request's reply to its connection's output.
    fn run_round(&mut self) {
        if self.round.owners.is_empty() {
            return;
        }
        let round = std::mem::take(&mut self.round);
        let mut acks = self
            .state
            .engine
            .execute_batch_at(round.cmds, unix_ms())
            .ok()
            .map(Vec::into_iter);
        // A connection gone or disconnected since its requests were read still consumes its
        // acks (so the next owner gets its own); its replies go to this scratch buffer.
        let mut gone = Vec::new();
        for owner in round.owners {
            let conn = match &owner {
                Owner::Request { conn, .. } | Owner::Exec { conn, .. } => *conn,
            };
            let out = match self.conns[conn].as_mut() {
                Some(c) => {
                    c.in_round = false;
                    c.unsized_in_round = 0;
                    if c.discard {
                        gone.clear();
                        &mut gone
                    } else {
                        &mut c.out
                    }
                }
                None => {
                    gone.clear();
                    &mut gone
                }
            };
            match owner {
                Owner::Request { n, sum, .. } => put_reply(out, acks.as_mut(), n, sum),
                Owner::Exec {
                    shape,
                    multi: false,
                    ..
                } => {
                    encode::array_header(out, shape.len());
                    for (n, sum) in shape {
                        put_reply(out, acks.as_mut(), n, sum);
                    }
                }
                Owner::Exec {
                    shape, multi: true, ..
                } => put_transaction(out, acks.as_mut(), &shape),
            }
            self.check_output(conn);
        }
    }

    /// Disconnects connection `i` if its unsent replies exceed the output limit.
    fn check_output(&mut self, i: usize) {
        let limit = self.state.clients.max_output_bytes;
        let Some(c) = self.conns[i].as_mut() else {
            return;
        };
        if c.discard || c.pending() <= limit {
            return;
        }
        eprintln!(
            "durlab serve: disconnecting client {}: {} bytes of replies unread exceed --client-output-limit {limit} (a client that sends requests without reading the replies)",
            c.peer,
            c.pending()
        );
        c.drop_output();
        self.state
            .output_disconnects
            .fetch_add(1, Ordering::Relaxed);
        self.disconnected.push(i);
    }

    /// Appends a reply computed now, after running the round if this connection has
    /// commands in it (replies stay in request order).
    fn reply(&mut self, i: usize, v: Value) {
        if self.conns[i].as_ref().is_some_and(|c| c.in_round) {
            self.run_round();
        }
        if let Some(c) = self.conns[i].as_mut()
            && !c.discard
        {
            encode::value(&mut c.out, &v);
        }
        self.check_output(i);
    }

    fn add_to_round(&mut self, i: usize, owner: Owner, cmds: Vec<Command>) {
        fn unsized_replies(c: &Command) -> usize {
            match c {
                Command::Get { .. } | Command::ZPopMin { .. } => 1,
                // `SET ... GET` replies with the old value, of any size.
                Command::SetOpts { opts, .. } if opts.get => 1,
                Command::Multi { cmds } => cmds.iter().map(unsized_replies).sum(),
                _ => 0,
            }
        }
        let big: usize = cmds.iter().map(unsized_replies).sum();
        self.round.cmds.extend(cmds);
        self.round.owners.push(owner);
        if let Some(c) = self.conns[i].as_mut() {
            c.in_round = true;
            c.unsized_in_round += big;
        }
    }

    /// Handles one parsed request of connection `i`.
    fn request(&mut self, i: usize, parsed: Result<Request, Value>) {
        let Some(c) = self.conns[i].as_mut() else {
            return;
        };
        if let Some((queue, dirty)) = &mut c.multi {
            match parsed {
                Ok(Request::Engine { cmds, sum }) => {
                    queue.push((cmds, sum));
                    return self.reply(i, Value::Simple("QUEUED".into()));
                }
                Ok(Request::Exec | Request::Discard | Request::Multi | Request::Quit) => {}
                Ok(_) => {
                    *dirty = true;
                    return self.reply(i, Value::err("durlab serve queues only data commands in MULTI (SET, GET, DEL, HSET, ZADD, XADD, ...)"));
                }
                Err(e) => {
                    *dirty = true;
                    return self.reply(i, e);
                }
            }
        }
        let req = match parsed {
            Ok(r) => r,
            Err(e) => return self.reply(i, e),
        };
        let st = self.state.clone();
        let engine = &st.engine;
        let reply = match req {
            Request::Engine { cmds, sum } => {
                let n = cmds.len();
                return self.add_to_round(i, Owner::Request { conn: i, n, sum }, cmds);
            }
            Request::Exec => match c.multi.take() {
                None => Value::err("EXEC without MULTI"),
                Some((_, true)) => Value::Error(
                    "EXECABORT Transaction discarded because of previous errors.".into(),
                ),
                Some((queue, false)) => {
                    let shape = queue.iter().map(|(c, s)| (c.len(), *s)).collect();
                    let mut cmds: Vec<Command> = queue.into_iter().flat_map(|(c, _)| c).collect();
                    // One command for the whole transaction, so one record: separate records
                    // could be split by a crash (the first kept, the second torn off). A single
                    // command is already all-or-nothing.
                    let multi = cmds.len() > 1;
                    if multi {
                        cmds = vec![Command::Multi { cmds }];
                    }
                    let owner = Owner::Exec {
                        conn: i,
                        shape,
                        multi,
                    };
                    return self.add_to_round(i, owner, cmds);
                }
            },
            Request::Multi => match c.multi {
                Some(_) => Value::err("MULTI calls can not be nested"),
                None => {
                    c.multi = Some((Vec::new(), false));
                    Value::ok()
                }
            },
            Request::Discard => match c.multi.take() {
                Some(_) => Value::ok(),
                None => Value::err("DISCARD without MULTI"),
            },
            Request::Quit => {
                c.close = true;
                Value::ok()
            }
            Request::Shutdown => {
                st.stop.store(true, Ordering::Release);
                c.close = true;
                return;
            }
            Request::Read(r) => {
                // Reads see this connection's earlier writes: run the round first. They see
                // only acknowledged writes: after an engine failure, none (the keyspace may
                // hold writes that were refused).
                self.run_round();
                engine
                    .read_acknowledged(|ks| commands::read(ks, &r, unix_ms()))
                    .unwrap_or_else(|_| Value::Error(FAILED_READ.into()))
            }
            other => {
                self.run_round();
                server_request(&st, other)
            }
        };
        self.reply(i, reply);
    }
}

/// What a read says once the engine has failed.
const FAILED_READ: &str = "MISCONF durlab engine failed: reads are refused, since memory may hold writes that were never acknowledged (see INFO persistence)";

/// Writes Redis's refusal to a connection over the limit and closes it. The socket is new
/// (its send buffer empty), so the short write does not block.
fn refuse(rejected: &AtomicU64, stream: TcpStream) {
    rejected.fetch_add(1, Ordering::Relaxed);
    let _ = stream.set_nonblocking(true);
    let _ = (&stream).write(MAX_CLIENTS_REPLY);
}

/// Appends the reply of one request made of the next `n` acks (`sum`: one integer adding
/// their integer replies, as multi-key `DEL`); `None` acks: the batch failed.
fn put_reply(
    out: &mut Vec<u8>,
    acks: Option<&mut std::vec::IntoIter<durlab_engine::Ack>>,
    n: usize,
    sum: bool,
) {
    let Some(acks) = acks else {
        return encode::value(out, &Value::Error(FAILED.into()));
    };
    let mut part = acks.by_ref().take(n);
    if sum {
        let total = part
            .map(|a| match a.reply {
                Reply::Int(i) => i,
                _ => 0,
            })
            .sum();
        encode::reply(out, &Reply::Int(total));
    } else {
        match part.next() {
            Some(a) => encode::reply(out, &a.reply),
            None => encode::reply(out, &Reply::Nil),
        }
        part.for_each(drop);
    }
}

/// Appends EXEC's array reply for the requests of `shape` (as [`put_reply`]), from the next
/// ack: that of the one [`Command::Multi`] they were run as, whose array reply holds one
/// reply per command. If the engine refused the transaction as a whole (its record over the
/// size limit: nothing ran), each request's reply is that error.
fn put_transaction(
    out: &mut Vec<u8>,
    acks: Option<&mut std::vec::IntoIter<durlab_engine::Ack>>,
    shape: &[(usize, bool)],
) {
    encode::array_header(out, shape.len());
    let Some(acks) = acks else {
        for &(n, sum) in shape {
            put_reply(out, None, n, sum);
        }
        return;
    };
    let total: usize = shape.iter().map(|(n, _)| n).sum();
    match acks.next() {
        Some(durlab_engine::Ack {
            reply: Reply::Array(replies),
            lsn,
        }) if replies.len() == total => {
            let mut expanded = replies
                .into_iter()
                .map(|reply| durlab_engine::Ack { reply, lsn })
                .collect::<Vec<_>>()
                .into_iter();
            for &(n, sum) in shape {
                put_reply(out, Some(&mut expanded), n, sum);
            }
        }
        refused => {
            let reply = refused.map_or(Reply::Nil, |a| a.reply);
            for _ in shape {
                encode::reply(out, &reply);
            }
        }
    }
}

/// Requests that touch no connection state.
fn server_request(st: &Arc<State>, req: Request) -> Value {
    let engine = &st.engine;
    match req {
        Request::Ping(None) => Value::Simple("PONG".into()),
        Request::Ping(Some(m)) | Request::Echo(m) => Value::Bulk(m),
        Request::Info(section) => {
            let bg = st.bg.lock().clone();
            let persistence = info::persistence(engine, &bg);
            let server = format!(
                "# Server\r\ndurlab_version:{}\r\nprocess_id:{}\r\ntcp_port:{}\r\n\r\n",
                env!("CARGO_PKG_VERSION"),
                std::process::id(),
                st.addr.port()
            );
            let clients = format!(
                "# Clients\r\nconnected_clients:{}\r\nmaxclients:{}\r\ndurlab_client_output_limit:{}\r\n\r\n",
                st.connected.load(Ordering::Acquire),
                st.clients.max_clients,
                st.clients.max_output_bytes
            );
            let stats = format!(
                "# Stats\r\nrejected_connections:{}\r\ndurlab_output_limit_disconnections:{}\r\n\r\n",
                st.rejected.load(Ordering::Relaxed),
                st.output_disconnects.load(Ordering::Relaxed)
            );
            Value::Bulk(
                match section.as_deref() {
                    Some("persistence") => persistence,
                    Some("server") => server,
                    Some("clients") => clients,
                    Some("stats") => stats,
                    None | Some("all" | "everything" | "default") => {
                        server + &clients + &persistence + &stats
                    }
                    Some(_) => String::new(),
                }
                .into_bytes(),
            )
        }
        Request::ConfigGet(pattern) => Value::Array(
            info::config_get(engine, st.addr.port(), &pattern)
                .into_iter()
                .chain(
                    ["*", "maxclients"]
                        .contains(&pattern.as_str())
                        .then(|| ("maxclients", st.clients.max_clients.to_string())),
                )
                .flat_map(|(k, v)| [Value::bulk(k), Value::bulk(v)])
                .collect(),
        ),
        Request::BgSave => background(st, false),
        Request::BgRewriteAof => background(st, true),
        Request::Save => match engine.save() {
            Ok(_) => {
                st.bg.lock().last_save_unix_secs = unix_secs();
                Value::ok()
            }
            Err(e) => Value::err(e),
        },
        Request::Select(0) | Request::Client => Value::ok(),
        Request::Select(_) => Value::err("DB index is out of range"),
        Request::CommandDocs => Value::Array(Vec::new()),
        Request::Engine { .. }
        | Request::Read(_)
        | Request::Multi
        | Request::Exec
        | Request::Discard
        | Request::Quit
        | Request::Shutdown => {
            Value::err("internal: connection request handled as a server request")
        }
    }
}

/// Starts BGSAVE (`rewrite` false) or BGREWRITEAOF in a thread.
fn background(st: &Arc<State>, rewrite: bool) -> Value {
    let mode = st.engine.config().persistence;
    let allowed = if rewrite {
        mode == Persistence::Hybrid
    } else {
        mode != Persistence::Aof
    };
    if !allowed {
        let what = if rewrite {
            "BGREWRITEAOF needs persistence hybrid"
        } else {
            "BGSAVE needs persistence snapshot, aof+snapshot or hybrid"
        };
        return Value::err(format!("durlab serve runs persistence {mode}: {what}"));
    }
    {
        let mut bg = st.bg.lock();
        if bg.save_in_progress || bg.rewrite_in_progress {
            return Value::err(if rewrite {
                "Background append only file rewriting already in progress"
            } else {
                "Background save already in progress"
            });
        }
        if rewrite {
            bg.rewrite_in_progress = true;
        } else {
            bg.save_in_progress = true;
        }
    }
    let st2 = st.clone();
    let spawned = std::thread::Builder::new()
        .name("durlab-bgsave".into())
        .spawn(move || {
            let failed = if rewrite {
                st2.engine.rewrite().is_err()
            } else {
                st2.engine.save().is_err()
            };
            let mut bg = st2.bg.lock();
            if rewrite {
                bg.rewrite_in_progress = false;
                bg.last_rewrite_failed = failed;
            } else {
                bg.save_in_progress = false;
                bg.last_save_failed = failed;
            }
            if !failed {
                bg.last_save_unix_secs = unix_secs();
            }
        });
    match spawned {
        Ok(_) if rewrite => Value::Simple("Background append only file rewriting started".into()),
        Ok(_) => Value::Simple("Background saving started".into()),
        Err(e) => {
            let mut bg = st.bg.lock();
            bg.save_in_progress = false;
            bg.rewrite_in_progress = false;
            Value::err(format!("cannot start a background thread: {e}"))
        }
    }
}
