//! MULTI/EXEC in `durlab serve` (in process): a transaction is one engine command, so one
//! LSN and one log record (a crash keeps all of it or none of it), and EXEC's reply keeps its
//! per-command shape (multi-key DEL summed, run-time errors in place).

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use durlab_engine::{Engine, EngineConfig, FsyncPolicy};
use durlab_harness::resp::parse::parse_value;
use durlab_harness::resp::server::{ClientLimits, Server};
use durlab_harness::resp::{Limits, Value, encode};

struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    fn connect(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Conn {
            stream,
            buf: Vec::new(),
        }
    }

    /// Sends one request and reads its reply.
    fn call(&mut self, line: &str) -> Value {
        let args: Vec<&str> = line.split(' ').collect();
        let mut req = Vec::new();
        encode::command(&mut req, &args);
        self.stream.write_all(&req).unwrap();
        loop {
            if let Some((v, used)) = parse_value(&self.buf, &Limits::default()).unwrap() {
                self.buf.drain(..used);
                return v;
            }
            let mut chunk = [0; 4096];
            let n = self.stream.read(&mut chunk).unwrap();
            assert!(n > 0, "server closed the connection");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

fn queued(c: &mut Conn, line: &str) {
    assert_eq!(c.call(line), Value::Simple("QUEUED".into()), "{line}");
}

#[test]
fn exec_is_one_record_with_per_command_replies() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = EngineConfig::new(dir.path()).policy(FsyncPolicy::Always);
    let (engine, _) = Engine::open(cfg.clone()).unwrap();
    let server = Server::bind(
        engine.clone(),
        0,
        Limits::default(),
        ClientLimits::default(),
    )
    .unwrap();
    let addr = server.local_addr();
    let serving = std::thread::spawn(move || server.run(1, Duration::ZERO));
    let mut c = Conn::connect(addr);

    assert_eq!(c.call("SET b 1"), Value::ok());
    assert_eq!(c.call("SET s text"), Value::ok());
    assert_eq!(engine.last_lsn(), 2);

    assert_eq!(c.call("MULTI"), Value::ok());
    queued(&mut c, "SET a 1");
    queued(&mut c, "DEL a b missing");
    queued(&mut c, "GET a");
    queued(&mut c, "INCR s");
    queued(&mut c, "HSET h f v");
    queued(&mut c, "GET h");
    queued(&mut c, "SET __durlab:lsn 3");
    let reply = c.call("EXEC");
    assert_eq!(
        reply,
        Value::Array(vec![
            Value::ok(),
            Value::Int(2),
            Value::Nil,
            Value::Error("ERR value is not an integer or out of range".into()),
            Value::Int(1),
            Value::Error(
                "WRONGTYPE Operation against a key holding the wrong kind of value".into()
            ),
            Value::ok(),
        ])
    );
    assert_eq!(engine.last_lsn(), 3, "the whole transaction took one LSN");

    // A transaction of one command is that command; of reads only, no LSN.
    assert_eq!(c.call("MULTI"), Value::ok());
    queued(&mut c, "INCR n");
    assert_eq!(c.call("EXEC"), Value::Array(vec![Value::Int(1)]));
    assert_eq!(engine.last_lsn(), 4);
    assert_eq!(c.call("MULTI"), Value::ok());
    queued(&mut c, "GET n");
    queued(&mut c, "GET __durlab:lsn");
    assert_eq!(
        c.call("EXEC"),
        Value::Array(vec![Value::bulk("1"), Value::bulk("3")])
    );
    assert_eq!(engine.last_lsn(), 4);

    // SHUTDOWN closes without a reply.
    let mut req = Vec::new();
    encode::command(&mut req, &["SHUTDOWN"]);
    c.stream.write_all(&req).unwrap();
    serving.join().unwrap().unwrap();
    drop(engine);
    let (engine, report) = Engine::open(cfg).unwrap();
    assert_eq!(report.recovered_lsn, 4);
    assert_eq!(report.records_replayed, 4);
    engine.read(|ks| {
        assert!(ks.get_entry(b"a").is_none() && ks.get_entry(b"b").is_none());
        assert!(ks.get_entry(b"h").is_some() && ks.get_entry(b"__durlab:lsn").is_some());
    });
}
