//! One event loop: its own epoll set, a clone of the listener, its connections. Each
//! iteration accepts, reads what every ready connection sent, handles each complete request
//! (child module `dispatch`), runs the round's batch, and writes the replies.

mod dispatch;

use std::io::Write as _;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};

use super::connection::Connection;
use super::round::Round;
use super::{State, unix_ms};
use crate::resp::Value;
use crate::resp::commands;
use crate::resp::parse::Scanned;

/// Reading a connection stops while its unsent replies exceed this (or the output limit, if
/// lower), and resumes once they are down to half of it: a client that does not read its
/// replies cannot make the server buffer more.
const PAUSE_OUTPUT_BYTES: usize = 64 << 20;
/// Replies sent to a refused connection.
const MAX_CLIENTS_REPLY: &[u8] = b"-ERR max number of clients reached\r\n";
/// Reads at most this much from one connection per round (fairness).
const READ_PER_ROUND_BYTES: usize = 1 << 20;
/// A connection's requests whose reply size is unknown (GET, ZPOPMIN) wait in a round at
/// most this many at a time; then the round runs early, so their replies count against the
/// output limits before more are parsed. Without it a burst of 1,000 GETs of a 1 MB value
/// built 2 GB of replies in one round.
const MAX_UNSIZED_PER_ROUND: usize = 32;
/// Token of the listener in each loop's epoll set.
const LISTENER_TOKEN: u64 = u64::MAX;
/// How long a loop stops accepting when no file descriptor is left even to refuse a
/// connection, and how often it logs that it is refusing connections.
const FD_BACKOFF: Duration = Duration::from_millis(100);
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(1);

/// One event loop: its own epoll set, a clone of the listener, its connections.
pub(super) struct EventLoop {
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
    /// A loop serving `listener` (registered exclusively: one loop wakes per connection).
    ///
    /// # Errors
    /// Creating the epoll set or registering the listener failing.
    pub(super) fn new(
        state: Arc<State>,
        listener: TcpListener,
        spin: Duration,
    ) -> std::io::Result<EventLoop> {
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

    /// Serves until a client sends `SHUTDOWN` (or epoll fails, said on stderr).
    pub(super) fn run(mut self) {
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
        self.conns[i] = Some(Connection::new(stream, peer));
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
            match c.read_some() {
                Ok((0, _)) => {
                    // The peer may only have shut down its sending side (it still reads):
                    // the requests already buffered run and are answered before closing.
                    c.eof = true;
                    return;
                }
                Ok((n, asked)) => {
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
            if c.must_pause(self.pause_bytes) {
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
            c.consume(at);
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
        c.send();
        let resume = c.may_resume(self.pause_bytes);
        if resume {
            c.paused = false;
            self.resumed.push(i);
        }
        let pending = c.pending() > 0;
        let want = c.wanted();
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

    /// Disconnects connection `i` if its unsent replies exceed the output limit.
    fn check_output(&mut self, i: usize) {
        let limit = self.state.clients.max_output_bytes;
        let Some(c) = self.conns[i].as_mut() else {
            return;
        };
        if !c.over_output_limit(limit) {
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
}

/// Writes Redis's refusal to a connection over the limit and closes it. The socket is new
/// (its send buffer empty), so the short write does not block.
fn refuse(rejected: &AtomicU64, stream: TcpStream) {
    rejected.fetch_add(1, Ordering::Relaxed);
    let _ = stream.set_nonblocking(true);
    let _ = (&stream).write(MAX_CLIENTS_REPLY);
}
