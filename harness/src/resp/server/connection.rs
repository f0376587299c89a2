//! A connection's buffers and protocol state, and the limits on them: how input is read and
//! compacted, how replies are sent and their buffer released, when reading pauses for a
//! client that does not read its replies and when it resumes, and which epoll events the
//! connection waits for.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};

use durlab_engine::Command;
use nix::sys::epoll::EpollFlags;

use crate::resp::parse::Scanner;

/// Read buffer grows by this much at a time.
pub(super) const READ_CHUNK_BYTES: usize = 64 << 10;
/// A span list grown past this (a request with many arguments) is not kept.
const MAX_KEPT_SPANS: usize = 1 << 10;
/// An output buffer emptied with more capacity than this gives its memory back.
const MAX_KEPT_OUTPUT_BYTES: usize = 1 << 20;

/// Redis's MULTI state: `None` outside MULTI; else the queued requests and whether one of
/// them was refused (EXEC then aborts).
pub(super) type Queue = Option<(Vec<Item>, bool)>;

/// One request's engine commands, with `sum` for multi-key DEL.
pub(super) type Item = (Vec<Command>, bool);

/// A connection's buffers and protocol state.
pub(super) struct Connection {
    pub(super) stream: TcpStream,
    pub(super) peer: SocketAddr,
    pub(super) input: Vec<u8>,
    pub(super) filled: usize,
    /// Resumes the scan of a request that arrives in several reads.
    pub(super) scanner: Scanner,
    pub(super) out: Vec<u8>,
    /// Bytes of `out` already sent.
    pub(super) sent: usize,
    pub(super) multi: Queue,
    /// Data commands of this connection are in the current round (so a reply computed now
    /// must wait until the round has run).
    pub(super) in_round: bool,
    /// Commands of this connection in the current round whose replies can be large (GET,
    /// ZPOPMIN): their size is known only once the round runs.
    pub(super) unsized_in_round: usize,
    /// The peer shut down its sending side: nothing more to read; the complete requests
    /// already read are still run and answered.
    pub(super) eof: bool,
    /// Reading and parsing wait until the unsent replies drain (a client not reading).
    pub(super) paused: bool,
    /// Close once `out` is sent.
    pub(super) close: bool,
    /// The connection failed or overflowed: its replies are dropped, and it closes.
    pub(super) discard: bool,
    /// The epoll events registered for it.
    pub(super) interest: EpollFlags,
}

impl Connection {
    /// A connection just accepted, registered for readability.
    pub(super) fn new(stream: TcpStream, peer: SocketAddr) -> Connection {
        Connection {
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
        }
    }

    /// Bytes of replies not sent yet.
    pub(super) fn pending(&self) -> usize {
        self.out.len() - self.sent
    }

    /// Drops the unsent replies and marks the connection to close without sending more.
    pub(super) fn drop_output(&mut self) {
        self.close = true;
        self.discard = true;
        self.out = Vec::new();
        self.sent = 0;
    }

    /// One read into the input buffer, grown first to hold at least [`READ_CHUNK_BYTES`]
    /// more. Returns the bytes read and the room there was (a read shorter than the room
    /// drained the socket for now).
    ///
    /// # Errors
    /// The read's error (`WouldBlock` when nothing is waiting).
    pub(super) fn read_some(&mut self) -> std::io::Result<(usize, usize)> {
        if self.input.len() < self.filled + READ_CHUNK_BYTES {
            self.input.resize(self.filled + READ_CHUNK_BYTES, 0);
        }
        let room = self.input.len() - self.filled;
        let n = self.stream.read(&mut self.input[self.filled..])?;
        self.filled += n;
        Ok((n, room))
    }

    /// Forgets the first `consumed` bytes of input (the requests handled): only what
    /// follows them is moved, so a request arriving in many reads is not copied again on
    /// every read. An input buffer grown past four chunks by a large request, and mostly
    /// empty now, shrinks back to one chunk, as an oversized span list does.
    pub(super) fn consume(&mut self, consumed: usize) {
        self.scanner.shrink(MAX_KEPT_SPANS);
        if consumed > 0 {
            self.input.copy_within(consumed..self.filled, 0);
            self.filled -= consumed;
        }
        if self.input.len() > 4 * READ_CHUNK_BYTES && self.filled < READ_CHUNK_BYTES {
            self.input.truncate(READ_CHUNK_BYTES);
            self.input.shrink_to(READ_CHUNK_BYTES);
        }
    }

    /// Sends what the socket takes now. A failed or zero-length write drops the output (the
    /// connection closes). Once everything is sent the buffer is reset, and gives its memory
    /// back if a large reply grew it past [`MAX_KEPT_OUTPUT_BYTES`].
    pub(super) fn send(&mut self) {
        while self.sent < self.out.len() {
            match self.stream.write(&self.out[self.sent..]) {
                Ok(0) => self.drop_output(),
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => self.drop_output(),
            }
        }
        if self.sent == self.out.len() {
            self.out.clear();
            self.sent = 0;
            if self.out.capacity() > MAX_KEPT_OUTPUT_BYTES {
                self.out = Vec::new();
            }
        }
    }

    /// True when reading must pause: the unsent replies exceed `pause_bytes`.
    pub(super) fn must_pause(&self, pause_bytes: usize) -> bool {
        self.pending() > pause_bytes
    }

    /// True when a paused connection may read again: its unsent replies are down to half of
    /// `pause_bytes` (hysteresis: it does not flip on every reply) and it is not closing.
    pub(super) fn may_resume(&self, pause_bytes: usize) -> bool {
        self.paused && self.pending() <= pause_bytes / 2 && !self.close
    }

    /// True when the unsent replies exceed `limit` (and the connection is not already
    /// being dropped).
    pub(super) fn over_output_limit(&self, limit: usize) -> bool {
        !self.discard && self.pending() > limit
    }

    /// The epoll events the connection waits for: readability unless paused, closing or at
    /// end of stream (which would wake the loop at once, forever), writability while replies
    /// are unsent. Empty: nothing left to wait for.
    pub(super) fn wanted(&self) -> EpollFlags {
        let mut want = EpollFlags::empty();
        if !(self.close || self.eof || self.paused) {
            want |= EpollFlags::EPOLLIN;
        }
        if self.pending() > 0 {
            want |= EpollFlags::EPOLLOUT;
        }
        want
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read as _, Write as _};
    use std::net::{Ipv4Addr, TcpListener, TcpStream};

    use super::*;

    /// A connection over a real loopback socket, and the client's end of it.
    fn pair() -> (Connection, TcpStream) {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, peer) = listener.accept().unwrap();
        (Connection::new(server, peer), client)
    }

    #[test]
    fn reads_grow_by_chunks_and_consume_keeps_the_unhandled_tail() {
        let (mut c, mut client) = pair();
        let sent = b"*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nPI";
        client.write_all(sent).unwrap();
        while c.filled < sent.len() {
            let (n, room) = c.read_some().unwrap();
            assert!(n > 0 && n <= room);
        }
        assert_eq!(c.input.len(), READ_CHUNK_BYTES);
        assert_eq!(&c.input[..c.filled], sent);
        // The first request (14 bytes) was handled; the partial second one moves to the front.
        c.consume(14);
        assert_eq!(c.filled, 10);
        assert_eq!(&c.input[..c.filled], b"*1\r\n$4\r\nPI");
        c.consume(0);
        assert_eq!(&c.input[..c.filled], b"*1\r\n$4\r\nPI");
    }

    #[test]
    fn an_input_buffer_grown_by_a_large_request_shrinks_once_mostly_empty() {
        let (mut c, _client) = pair();
        c.input = vec![0; 5 * READ_CHUNK_BYTES];
        c.filled = 5 * READ_CHUNK_BYTES;
        // Most of it still unhandled: kept.
        c.consume(READ_CHUNK_BYTES);
        assert_eq!(c.input.len(), 5 * READ_CHUNK_BYTES);
        assert_eq!(c.filled, 4 * READ_CHUNK_BYTES);
        // Handled down to less than a chunk: back to one chunk.
        c.consume(4 * READ_CHUNK_BYTES - 10);
        assert_eq!(c.filled, 10);
        assert_eq!(c.input.len(), READ_CHUNK_BYTES);
        assert!(c.input.capacity() <= 2 * READ_CHUNK_BYTES);
        // Four chunks exactly is not past the bound.
        c.input = vec![0; 4 * READ_CHUNK_BYTES];
        c.filled = 0;
        c.consume(0);
        assert_eq!(c.input.len(), 4 * READ_CHUNK_BYTES);
    }

    #[test]
    fn a_sent_output_buffer_is_reset_and_a_large_one_gives_its_memory_back() {
        let (mut c, mut client) = pair();
        c.out.extend_from_slice(b"+PONG\r\n");
        c.send();
        assert_eq!((c.pending(), c.sent), (0, 0));
        assert!(
            c.out.capacity() > 0,
            "a small buffer is kept for the next replies"
        );
        let mut buf = [0u8; 7];
        client.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"+PONG\r\n");

        c.out = Vec::with_capacity(MAX_KEPT_OUTPUT_BYTES + 1);
        c.out.extend_from_slice(b":1\r\n");
        c.send();
        assert_eq!(c.pending(), 0);
        assert_eq!(c.out.capacity(), 0, "a buffer past the bound is released");
    }

    #[test]
    fn a_client_that_does_not_read_keeps_its_replies_pending() {
        let (mut c, _client) = pair();
        c.stream.set_nonblocking(true).unwrap();
        c.out = vec![b'x'; 64 << 20];
        c.send();
        // The socket buffers take a few MB at most; the rest stays, sent counted.
        assert!(c.sent > 0 && c.pending() > 0);
        assert_eq!(c.sent + c.pending(), 64 << 20);
        assert!(!c.close && !c.discard);
    }

    #[test]
    fn a_failed_send_drops_the_output_and_closes() {
        let (mut c, client) = pair();
        c.stream.set_nonblocking(true).unwrap();
        drop(client);
        c.out = vec![b'x'; 1 << 20];
        // The first write may still land in the socket buffer; writing on after the peer's
        // reset fails.
        for _ in 0..100 {
            if c.discard {
                break;
            }
            c.out.extend_from_slice(&[b'x'; 1 << 16]);
            c.send();
        }
        assert!(c.close && c.discard);
        assert_eq!((c.pending(), c.out.capacity()), (0, 0));
    }

    #[test]
    fn reading_pauses_past_the_threshold_and_resumes_at_half_of_it() {
        let (mut c, _client) = pair();
        let pause = 1000;
        c.out = vec![0; 1000];
        assert!(!c.must_pause(pause));
        c.out.push(0);
        assert!(c.must_pause(pause));
        c.paused = true;
        assert!(!c.may_resume(pause));
        c.sent = 500;
        assert!(!c.may_resume(pause), "501 pending: above half");
        c.sent = 501;
        assert!(c.may_resume(pause));
        c.close = true;
        assert!(!c.may_resume(pause), "a closing connection does not resume");
        c.close = false;
        c.paused = false;
        assert!(!c.may_resume(pause), "only a paused connection resumes");
    }

    #[test]
    fn the_output_limit_counts_unsent_bytes_of_a_connection_not_dropped_yet() {
        let (mut c, _client) = pair();
        c.out = vec![0; 11];
        assert!(c.over_output_limit(10));
        assert!(!c.over_output_limit(11));
        c.sent = 1;
        assert!(!c.over_output_limit(10));
        c.sent = 0;
        c.discard = true;
        assert!(!c.over_output_limit(10));
        c.drop_output();
        assert_eq!(c.pending(), 0);
        assert!(c.close);
    }

    #[test]
    fn interest_is_readability_unless_paused_closing_or_at_eof_and_writability_while_pending() {
        let (mut c, _client) = pair();
        assert_eq!(c.wanted(), EpollFlags::EPOLLIN);
        c.out.push(b'x');
        assert_eq!(c.wanted(), EpollFlags::EPOLLIN | EpollFlags::EPOLLOUT);
        for flag in [
            |c: &mut Connection| c.paused = true,
            |c: &mut Connection| c.close = true,
            |c: &mut Connection| c.eof = true,
        ] {
            let (mut c, _client) = pair();
            flag(&mut c);
            assert_eq!(c.wanted(), EpollFlags::empty());
            c.out.push(b'x');
            assert_eq!(c.wanted(), EpollFlags::EPOLLOUT);
        }
    }
}
