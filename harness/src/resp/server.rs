//! The RESP2 server behind `durlab serve`: a thread per connection on 127.0.0.1.
//!
//! Each connection reads what the client sent, parses every complete request in the buffer
//! (pipelining), runs consecutive data commands as one [`Engine::execute_batch`] (one lock
//! acquisition, consecutive LSNs, one acknowledgement: under `always` one fdatasync, shared
//! with other connections by the engine's group commit), and writes the replies in order.
//! So no reply is sent before the command it answers is acknowledged under the policy.
//! `MULTI`/`EXEC` queue data commands and run them as one batch: atomic with respect to
//! other clients and to the log order.

use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use durlab_engine::{Command, Engine, Persistence};
use parking_lot::Mutex;

use super::commands::{self, Request};
use super::info::{self, BgStatus};
use super::parse::{Limits, parse_request};
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
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
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

    /// Serves connections until a client sends `SHUTDOWN`; then makes every acknowledged
    /// command durable (an fdatasync of the log; in mode `snapshot` with save points, a
    /// final save, as Redis saves on shutdown) and returns. Connections still open are left
    /// to the caller's process exit.
    ///
    /// # Errors
    /// An accept error other than a transient one, or the final sync or save failing.
    pub fn run(self) -> Result<(), String> {
        for conn in self.listener.incoming() {
            if self.state.stop.load(Ordering::Acquire) {
                break;
            }
            let stream = match conn {
                Ok(s) => s,
                Err(e) if matches!(e.kind(), std::io::ErrorKind::ConnectionAborted | std::io::ErrorKind::Interrupted) => continue,
                Err(e) => return Err(format!("accept on {}: {e}", self.state.addr)),
            };
            let state = self.state.clone();
            let spawned = std::thread::Builder::new()
                .name("durlab-conn".into())
                .spawn(move || Connection::new(state, stream).serve());
            if let Err(e) = spawned {
                eprintln!("durlab serve: cannot start a connection thread: {e}");
            }
        }
        let engine = &self.state.engine;
        engine.sync().map_err(|e| format!("final sync at shutdown: {e}"))?;
        let c = engine.config();
        if c.persistence == Persistence::Snapshot && !c.save_points.is_empty() {
            engine.save().map_err(|e| format!("final save at shutdown: {e}"))?;
        }
        Ok(())
    }
}

/// Redis's MULTI state: `None` outside MULTI.
type Queue = Option<(Vec<(Vec<Command>, bool)>, bool)>;

struct Connection {
    state: Arc<State>,
    stream: TcpStream,
    multi: Queue,
    out: Vec<u8>,
    /// Data commands parsed but not yet run (pipelined), with their `sum` flags.
    pending: Vec<(Vec<Command>, bool)>,
    close: bool,
}

impl Connection {
    fn new(state: Arc<State>, stream: TcpStream) -> Connection {
        let _ = stream.set_nodelay(true);
        Connection {
            state,
            stream,
            multi: None,
            out: Vec::new(),
            pending: Vec::new(),
            close: false,
        }
    }

    fn serve(mut self) {
        let mut buf = Vec::with_capacity(READ_CHUNK_BYTES);
        let mut filled = 0usize;
        loop {
            if buf.len() < filled + READ_CHUNK_BYTES {
                buf.resize(filled + READ_CHUNK_BYTES, 0);
            }
            let n = match self.stream.read(&mut buf[filled..]) {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            filled += n;
            let mut at = 0;
            loop {
                match parse_request(&buf[at..filled], &self.state.limits) {
                    Ok(Some((args, used))) => {
                        at += used;
                        if !args.is_empty() {
                            self.request(args);
                        }
                        if self.close {
                            break;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        self.flush_pending();
                        encode::value(&mut self.out, &Value::err(e));
                        self.close = true;
                        break;
                    }
                }
            }
            self.flush_pending();
            buf.copy_within(at..filled, 0);
            filled -= at;
            if buf.len() > 4 * READ_CHUNK_BYTES && filled < READ_CHUNK_BYTES {
                buf.truncate(READ_CHUNK_BYTES);
                buf.shrink_to(READ_CHUNK_BYTES);
            }
            if self.stream.write_all(&self.out).is_err() || self.close {
                let _ = self.stream.flush();
                return;
            }
            self.out.clear();
            if self.state.stop.load(Ordering::Acquire) {
                return;
            }
        }
    }

    /// Runs the pipelined data commands parsed so far as one batch and encodes the replies.
    fn flush_pending(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let items = std::mem::take(&mut self.pending);
        let n = items.len();
        match run_batch(&self.state.engine, items) {
            Ok(replies) => replies.iter().for_each(|v| encode::value(&mut self.out, v)),
            Err(e) => (0..n).for_each(|_| encode::value(&mut self.out, &e)),
        }
    }

    /// Handles one request, replying into `self.out` in order.
    fn request(&mut self, args: Vec<Vec<u8>>) {
        let parsed = commands::parse(args);
        if let Some((queue, dirty)) = &mut self.multi {
            match parsed {
                Ok(Request::Engine { cmds, sum }) => {
                    queue.push((cmds, sum));
                    encode::value(&mut self.out, &Value::Simple("QUEUED".into()));
                    return;
                }
                Ok(Request::Exec | Request::Discard | Request::Multi | Request::Quit) => {}
                Ok(_) => {
                    *dirty = true;
                    self.reply(Value::err("durlab serve queues only data commands in MULTI (SET, GET, DEL, HSET, ZADD, XADD, ...)"));
                    return;
                }
                Err(e) => {
                    *dirty = true;
                    self.reply(e);
                    return;
                }
            }
        }
        let req = match parsed {
            Ok(r) => r,
            Err(e) => return self.reply(e),
        };
        if let Request::Engine { cmds, sum } = req {
            self.pending.push((cmds, sum));
            return;
        }
        self.flush_pending();
        let st = self.state.clone();
        let engine = &st.engine;
        let reply = match req {
            Request::Engine { .. } => unreachable!("handled above"),
            Request::Read(r) => engine.read(|ks| commands::read(ks, &r, unix_ms())),
            Request::Ping(None) => Value::Simple("PONG".into()),
            Request::Ping(Some(m)) | Request::Echo(m) => Value::Bulk(m),
            Request::Multi => match self.multi {
                Some(_) => Value::err("MULTI calls can not be nested"),
                None => {
                    self.multi = Some((Vec::new(), false));
                    Value::ok()
                }
            },
            Request::Discard => match self.multi.take() {
                Some(_) => Value::ok(),
                None => Value::err("DISCARD without MULTI"),
            },
            Request::Exec => match self.multi.take() {
                None => Value::err("EXEC without MULTI"),
                Some((_, true)) => Value::Error("EXECABORT Transaction discarded because of previous errors.".into()),
                Some((queue, false)) => match run_batch(engine, queue) {
                    Ok(replies) => Value::Array(replies),
                    Err(e) => e,
                },
            },
            Request::Info(section) => {
                let bg = st.bg.lock().clone();
                let persistence = info::persistence(engine, &bg);
                let server = format!(
                    "# Server\r\ndurlab_version:{}\r\nprocess_id:{}\r\ntcp_port:{}\r\n\r\n",
                    env!("CARGO_PKG_VERSION"),
                    std::process::id(),
                    st.addr.port()
                );
                Value::Bulk(match section.as_deref() {
                    Some("persistence") => persistence,
                    Some("server") => server,
                    None | Some("all" | "everything" | "default") => server + &persistence,
                    Some(_) => String::new(),
                }.into_bytes())
            }
            Request::ConfigGet(pattern) => Value::Array(
                info::config_get(engine, st.addr.port(), &pattern)
                    .into_iter()
                    .flat_map(|(k, v)| [Value::bulk(k), Value::bulk(v)])
                    .collect(),
            ),
            Request::BgSave => background(&st, false),
            Request::BgRewriteAof => background(&st, true),
            Request::Save => match engine.save() {
                Ok(_) => {
                    st.bg.lock().last_save_unix_secs = unix_secs();
                    Value::ok()
                }
                Err(e) => Value::err(e),
            },
            Request::Shutdown => {
                st.stop.store(true, Ordering::Release);
                // Wake the accept loop so that it sees the flag.
                let _ = TcpStream::connect(st.addr);
                self.close = true;
                return;
            }
            Request::Select(0) => Value::ok(),
            Request::Select(_) => Value::err("DB index is out of range"),
            Request::Client => Value::ok(),
            Request::CommandDocs => Value::Array(Vec::new()),
            Request::Quit => {
                self.close = true;
                Value::ok()
            }
        };
        self.reply(reply);
    }

    fn reply(&mut self, v: Value) {
        self.flush_pending();
        encode::value(&mut self.out, &v);
    }
}

/// Runs `items` (each a request's engine commands) as one engine batch and folds the acks
/// back into one reply per request.
///
/// # Errors
/// A `MISCONF` error reply when the engine failed (it is then poisoned).
fn run_batch(engine: &Engine, items: Vec<(Vec<Command>, bool)>) -> Result<Vec<Value>, Value> {
    let shape: Vec<(usize, bool)> = items.iter().map(|(c, s)| (c.len(), *s)).collect();
    let cmds: Vec<Command> = items.into_iter().flat_map(|(c, _)| c).collect();
    let acks = engine
        .execute_batch(cmds)
        .map_err(|e| Value::Error(format!("MISCONF durlab engine failed, nothing more is acknowledged: {e}")))?;
    let mut acks = acks.into_iter();
    Ok(shape
        .into_iter()
        .map(|(n, sum)| {
            let part: Vec<_> = acks.by_ref().take(n).collect();
            if sum {
                Value::Int(part.iter().map(|a| match a.reply { durlab_engine::Reply::Int(i) => i, _ => 0 }).sum())
            } else {
                part.into_iter().next().map_or(Value::Nil, |a| Value::from(a.reply))
            }
        })
        .collect())
}

/// Starts BGSAVE (`rewrite` false) or BGREWRITEAOF in a thread.
fn background(st: &Arc<State>, rewrite: bool) -> Value {
    let mode = st.engine.config().persistence;
    let allowed = if rewrite { mode == Persistence::Hybrid } else { mode != Persistence::Aof };
    if !allowed {
        let what = if rewrite { "BGREWRITEAOF needs persistence hybrid" } else { "BGSAVE needs persistence snapshot, aof+snapshot or hybrid" };
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
    let spawned = std::thread::Builder::new().name("durlab-bgsave".into()).spawn(move || {
        let failed = if rewrite { st2.engine.rewrite().is_err() } else { st2.engine.save().is_err() };
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
