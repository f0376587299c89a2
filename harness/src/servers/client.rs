//! The harness's own RESP2 client: pipelined sends, replies in order. It uses the same
//! encoder and parser as `durlab serve` ([`crate::resp`]).

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use durlab_engine::Command;

use crate::resp::commands::{AutoId, to_args};
use crate::resp::parse::parse_value;
use crate::resp::{Limits, ProtocolError, Value, encode};

/// Receive buffer size (grown for longer replies).
const READ_CHUNK_BYTES: usize = 64 << 10;

/// Why a call failed (error replies are values, not errors).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    #[error("connection to {addr}: {source}")]
    Io {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("reply from {addr}: {source}")]
    Protocol {
        addr: SocketAddr,
        #[source]
        source: ProtocolError,
    },
    #[error("{addr} closed the connection")]
    Closed { addr: SocketAddr },
    #[error("refusing to connect to {addr}: durlab only talks to 127.0.0.1")]
    NotLoopback { addr: SocketAddr },
}

/// One connection to a RESP server on loopback.
#[derive(Debug)]
pub struct Client {
    addr: SocketAddr,
    stream: TcpStream,
    out: Vec<u8>,
    /// Receive buffer: bytes `at..filled` are read but not yet parsed; the rest is room
    /// (initialised once, so a read never zeroes memory first).
    buf: Vec<u8>,
    at: usize,
    filled: usize,
    limits: Limits,
}

impl Client {
    /// Connects to `addr`, which must be a loopback address.
    ///
    /// # Errors
    /// [`ClientError::NotLoopback`], or the connect error.
    pub fn connect(addr: SocketAddr, timeout: Duration) -> Result<Client, ClientError> {
        if !addr.ip().is_loopback() {
            return Err(ClientError::NotLoopback { addr });
        }
        let io = |source| ClientError::Io { addr, source };
        let stream = TcpStream::connect_timeout(&addr, timeout).map_err(io)?;
        stream.set_nodelay(true).map_err(io)?;
        Ok(Client {
            addr,
            stream,
            out: Vec::with_capacity(16 << 10),
            buf: vec![0; READ_CHUNK_BYTES],
            at: 0,
            filled: 0,
            limits: Limits::default(),
        })
    }

    /// Sets a timeout for each read of a reply (none by default).
    ///
    /// # Errors
    /// The socket option error.
    pub fn set_read_timeout(&self, t: Option<Duration>) -> Result<(), ClientError> {
        self.stream
            .set_read_timeout(t)
            .map_err(|source| ClientError::Io {
                addr: self.addr,
                source,
            })
    }

    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Queues a command (sent by [`Client::flush`]).
    pub fn queue<A: AsRef<[u8]>>(&mut self, args: &[A]) {
        encode::command(&mut self.out, args);
    }

    /// Queues an engine command, spelling automatic XADD ids as `auto`.
    pub fn queue_command(&mut self, cmd: &Command, auto: AutoId) {
        self.queue(&to_args(cmd, auto));
    }

    /// Sends everything queued.
    ///
    /// # Errors
    /// The write error.
    pub fn flush(&mut self) -> Result<(), ClientError> {
        let r = self.stream.write_all(&self.out);
        self.out.clear();
        r.map_err(|source| ClientError::Io {
            addr: self.addr,
            source,
        })
    }

    /// Reads the next reply.
    ///
    /// # Errors
    /// A read error or timeout, the connection closing, or a stream that is not RESP2.
    pub fn read(&mut self) -> Result<Value, ClientError> {
        loop {
            match parse_value(&self.buf[self.at..self.filled], &self.limits) {
                Ok(Some((v, used))) => {
                    self.at += used;
                    if self.at == self.filled {
                        (self.at, self.filled) = (0, 0);
                    }
                    return Ok(v);
                }
                Ok(None) => {}
                Err(source) => {
                    return Err(ClientError::Protocol {
                        addr: self.addr,
                        source,
                    });
                }
            }
            if self.at > 0 {
                self.buf.copy_within(self.at..self.filled, 0);
                self.filled -= self.at;
                self.at = 0;
            }
            if self.filled == self.buf.len() {
                // A reply longer than the buffer: grow it (parse_value bounds the length).
                self.buf.resize(self.buf.len() * 2, 0);
            }
            match self.stream.read(&mut self.buf[self.filled..]) {
                Ok(0) => return Err(ClientError::Closed { addr: self.addr }),
                Ok(n) => self.filled += n,
                Err(source) => {
                    return Err(ClientError::Io {
                        addr: self.addr,
                        source,
                    });
                }
            }
        }
    }

    /// Sends one command and reads its reply.
    ///
    /// # Errors
    /// As [`Client::flush`] and [`Client::read`].
    pub fn call<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Result<Value, ClientError> {
        self.queue(args);
        self.flush()?;
        self.read()
    }
}
