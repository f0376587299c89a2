//! The RESP2 server behind `durlab serve`: event loops (epoll) on 127.0.0.1.
//!
//! Each loop round reads what every ready connection sent, parses every complete request
//! (pipelining), and runs the data commands of all of them as one [`Engine::execute_batch`]
//! (one lock acquisition, consecutive LSNs, one acknowledgement: under `always` one
//! fdatasync; several loops' rounds overlap through the engine's group commit), then writes
//! the replies in request order. So no reply is sent before the command it answers is
//! acknowledged under the policy. `MULTI`/`EXEC` queue data commands and run them inside one
//! batch: atomic with respect to other clients and to the log order. A request that is not
//! a data command (a read such as HGETALL, INFO, ...) first runs the round so far, so it
//! sees the connection's earlier writes.

use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use durlab_engine::{Command, Engine, Persistence, Reply};
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use parking_lot::Mutex;

use super::commands::{self, Request};
use super::info::{self, BgStatus};
use super::parse::{Limits, Scanned, scan_request};
use super::{Value, encode};

/// Read buffer grows by this much at a time.
const READ_CHUNK_BYTES: usize = 64 << 10;

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
    pub fn bind(engine: Engine, port: u16, limits: Limits) -> std::io::Result<Server> {
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
    /// An accept error other than a transient one, or the final sync or save failing.
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
    /// An EXEC: one array reply over these requests.
    Exec {
        conn: usize,
        shape: Vec<(usize, bool)>,
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
    input: Vec<u8>,
    filled: usize,
    out: Vec<u8>,
    /// Bytes of `out` already sent.
    sent: usize,
    multi: Queue,
    /// Data commands of this connection are in the current round (so a reply computed now
    /// must wait until the round has run).
    in_round: bool,
    /// Close once `out` is sent.
    close: bool,
    /// Registered for writability.
    want_write: bool,
}

/// Reads at most this much from one connection per round (fairness).
const READ_PER_ROUND_BYTES: usize = 1 << 20;
/// Stops reading a connection whose unsent replies exceed this (a client not reading).
const MAX_UNSENT_BYTES: usize = 64 << 20;
/// A span list grown past this (a request with many arguments) is not kept.
const MAX_KEPT_SPANS: usize = 1 << 10;
/// Token of the listener in each loop's epoll set.
const LISTENER_TOKEN: u64 = u64::MAX;

/// One event loop: its own epoll set, a clone of the listener, its connections.
struct EventLoop {
    state: Arc<State>,
    listener: TcpListener,
    epoll: Epoll,
    conns: Vec<Option<Connection>>,
    round: Round,
    /// Argument spans of the request being parsed (kept between requests: no allocation).
    spans: Vec<(usize, usize)>,
    /// How long to keep polling without blocking once nothing is ready.
    spin: Duration,
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
        Ok(EventLoop {
            state,
            listener,
            epoll,
            conns: Vec::new(),
            round: Round::default(),
            spans: Vec::new(),
            spin,
        })
    }

    fn run(mut self) {
        let mut events = vec![EpollEvent::empty(); 256];
        // When the loop last found nothing ready (it polls until `spin` has passed, then
        // sleeps in epoll_wait).
        let mut idle_since: Option<Instant> = None;
        while !self.state.stop.load(Ordering::Acquire) {
            let poll = !self.spin.is_zero() && idle_since.is_none_or(|t| t.elapsed() < self.spin);
            let timeout = if poll {
                EpollTimeout::ZERO
            } else {
                EpollTimeout::from(100u16)
            };
            let n = match self.epoll.wait(&mut events, timeout) {
                Ok(0) if poll => {
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
            for ev in &events[..n] {
                let token = ev.data();
                if token == LISTENER_TOKEN {
                    self.accept();
                    continue;
                }
                let i = token as usize;
                if ev
                    .events()
                    .intersects(EpollFlags::EPOLLIN | EpollFlags::EPOLLHUP | EpollFlags::EPOLLERR)
                {
                    self.read(i);
                }
            }
            self.run_round();
            // Only connections with an event can have new or pending output. Replies go out
            // last-ready first, as Redis's LIFO pending-write list sends them: in index or
            // ready order, waking client threads cost 4-7x more cross-CPU reschedule IPIs
            // and 4-8% throughput at 50 connections (docs/serve.md).
            for ev in events[..n].iter().rev() {
                if ev.data() != LISTENER_TOKEN {
                    self.write(ev.data() as usize);
                }
            }
        }
    }

    fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    if stream.set_nonblocking(true).is_err() {
                        continue;
                    }
                    let i = self
                        .conns
                        .iter()
                        .position(Option::is_none)
                        .unwrap_or_else(|| {
                            self.conns.push(None);
                            self.conns.len() - 1
                        });
                    if self
                        .epoll
                        .add(&stream, EpollEvent::new(EpollFlags::EPOLLIN, i as u64))
                        .is_err()
                    {
                        continue;
                    }
                    self.conns[i] = Some(Connection {
                        stream,
                        input: Vec::new(),
                        filled: 0,
                        out: Vec::new(),
                        sent: 0,
                        multi: None,
                        in_round: false,
                        close: false,
                        want_write: false,
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    eprintln!("durlab serve: accept: {e}");
                    return;
                }
            }
        }
    }

    fn drop_conn(&mut self, i: usize) {
        if let Some(c) = self.conns[i].take() {
            let _ = self.epoll.delete(&c.stream);
        }
    }

    /// Reads what the connection sent and handles every complete request in it.
    fn read(&mut self, i: usize) {
        let limits = self.state.limits;
        let mut got = 0;
        loop {
            let Some(c) = self.conns[i].as_mut() else {
                return;
            };
            if c.close || c.out.len() - c.sent > MAX_UNSENT_BYTES || got >= READ_PER_ROUND_BYTES {
                break;
            }
            if c.input.len() < c.filled + READ_CHUNK_BYTES {
                c.input.resize(c.filled + READ_CHUNK_BYTES, 0);
            }
            match c.stream.read(&mut c.input[c.filled..]) {
                Ok(0) => {
                    c.close = true;
                    c.out.clear();
                    c.sent = 0;
                    break;
                }
                Ok(n) => {
                    let asked = c.input.len() - c.filled;
                    c.filled += n;
                    got += n;
                    // A short read drained the socket for now; epoll is level-triggered, so
                    // more data wakes this connection again (saves a read that would block).
                    if n < asked {
                        break;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => {
                    c.close = true;
                    break;
                }
            }
        }
        let mut spans = std::mem::take(&mut self.spans);
        let mut at = 0;
        while let Some(c) = self.conns[i].as_mut() {
            if c.close {
                break;
            }
            let buf = &c.input[at..c.filled];
            let parsed = match scan_request(buf, &limits, &mut spans) {
                Ok(Some(Scanned::Spans { used })) => {
                    at += used;
                    commands::parse_spans(buf, &spans)
                }
                Ok(Some(Scanned::Inline { args, used })) => {
                    at += used;
                    let args: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
                    (!args.is_empty()).then(|| commands::parse(&args))
                }
                Ok(None) => break,
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
        if spans.capacity() > MAX_KEPT_SPANS {
            spans = Vec::new();
        }
        self.spans = spans;
        if let Some(c) = self.conns[i].as_mut() {
            c.input.copy_within(at..c.filled, 0);
            c.filled -= at;
            if c.input.len() > 4 * READ_CHUNK_BYTES && c.filled < READ_CHUNK_BYTES {
                c.input.truncate(READ_CHUNK_BYTES);
                c.input.shrink_to(READ_CHUNK_BYTES);
            }
        }
    }

    /// Sends what can be sent; closes a connection that asked for it once its replies are out.
    fn write(&mut self, i: usize) {
        let Some(c) = self.conns[i].as_mut() else {
            return;
        };
        while c.sent < c.out.len() {
            match c.stream.write(&c.out[c.sent..]) {
                Ok(0) => {
                    c.close = true;
                    c.out.clear();
                    c.sent = 0;
                }
                Ok(n) => c.sent += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => {
                    c.close = true;
                    c.out.clear();
                    c.sent = 0;
                }
            }
        }
        if c.sent == c.out.len() {
            c.out.clear();
            c.sent = 0;
            if c.close {
                self.drop_conn(i);
                return;
            }
        }
        let pending = c.sent < c.out.len();
        if pending != c.want_write {
            c.want_write = pending;
            let flags = if pending {
                EpollFlags::EPOLLIN | EpollFlags::EPOLLOUT
            } else {
                EpollFlags::EPOLLIN
            };
            let mut ev = EpollEvent::new(flags, i as u64);
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
            .execute_batch(round.cmds)
            .ok()
            .map(Vec::into_iter);
        // A connection gone since its requests were read still consumes its acks (so the
        // next owner gets its own); its replies go to this scratch buffer.
        let mut gone = Vec::new();
        for owner in round.owners {
            let conn = match &owner {
                Owner::Request { conn, .. } | Owner::Exec { conn, .. } => *conn,
            };
            let out = match self.conns[conn].as_mut() {
                Some(c) => {
                    c.in_round = false;
                    &mut c.out
                }
                None => {
                    gone.clear();
                    &mut gone
                }
            };
            match owner {
                Owner::Request { n, sum, .. } => put_reply(out, acks.as_mut(), n, sum),
                Owner::Exec { shape, .. } => {
                    encode::array_header(out, shape.len());
                    for (n, sum) in shape {
                        put_reply(out, acks.as_mut(), n, sum);
                    }
                }
            }
        }
    }

    /// Appends a reply computed now, after running the round if this connection has
    /// commands in it (replies stay in request order).
    fn reply(&mut self, i: usize, v: Value) {
        if self.conns[i].as_ref().is_some_and(|c| c.in_round) {
            self.run_round();
        }
        if let Some(c) = self.conns[i].as_mut() {
            encode::value(&mut c.out, &v);
        }
    }

    fn add_to_round(&mut self, i: usize, owner: Owner, cmds: Vec<Command>) {
        self.round.cmds.extend(cmds);
        self.round.owners.push(owner);
        if let Some(c) = self.conns[i].as_mut() {
            c.in_round = true;
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
                    let cmds = queue.into_iter().flat_map(|(c, _)| c).collect();
                    return self.add_to_round(i, Owner::Exec { conn: i, shape }, cmds);
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
                // Reads see this connection's earlier writes: run the round first.
                self.run_round();
                engine.read(|ks| commands::read(ks, &r, unix_ms()))
            }
            other => {
                self.run_round();
                server_request(&st, other)
            }
        };
        self.reply(i, reply);
    }
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
        let failed =
            "MISCONF durlab engine failed, nothing more is acknowledged (see INFO persistence)";
        return encode::value(out, &Value::Error(failed.into()));
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
            Value::Bulk(
                match section.as_deref() {
                    Some("persistence") => persistence,
                    Some("server") => server,
                    None | Some("all" | "everything" | "default") => server + &persistence,
                    Some(_) => String::new(),
                }
                .into_bytes(),
            )
        }
        Request::ConfigGet(pattern) => Value::Array(
            info::config_get(engine, st.addr.port(), &pattern)
                .into_iter()
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
