//! Starting redis-server on a data directory, as the crash lab does for every crash image
//! (harness/src/servers/mod.rs, `wait_ready`): the server counts as started only once it has
//! loaded its whole AOF (a loading Redis accepts connections and answers `-LOADING`), and a
//! server that refuses its AOF is reported with its own log line. The companion shows that
//! the first check can fail: a client that connects while the server loads is answered
//! `-LOADING`, and finds only part of the keys if it reads them.

mod resp_support;

use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use durlab_engine::{BackendKind, FsyncPolicy, Persistence, Prealloc};
use durlab_harness::resp::Value;
use durlab_harness::servers::client::Client;
use durlab_harness::servers::{ServerProcess, ServerSpec, Target, redis_server};
use resp_support::require;

/// Keys in the generated AOF: enough that loading it takes Redis far longer than starting
/// (tens of MB of commands).
const KEYS: u64 = 400_000;

/// A Redis data directory under `tmp` whose AOF (a manifest and one incremental file) sets
/// `KEYS` keys `k<i>` and then `last`; `garbage` is inserted half-way (a line Redis cannot
/// parse) when given.
fn data_dir(tmp: &Path, garbage: Option<&[u8]>) -> PathBuf {
    let dir = tmp.join("data");
    let aof_dir = dir.join("appendonlydir");
    std::fs::create_dir_all(&aof_dir).unwrap();
    std::fs::write(
        aof_dir.join("appendonly.aof.manifest"),
        "file appendonly.aof.1.incr.aof seq 1 type i\n",
    )
    .unwrap();
    let mut aof = std::io::BufWriter::new(
        std::fs::File::create(aof_dir.join("appendonly.aof.1.incr.aof")).unwrap(),
    );
    let set = |out: &mut dyn std::io::Write, key: &str, value: &str| {
        write!(
            out,
            "*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n${}\r\n{value}\r\n",
            key.len(),
            value.len()
        )
        .unwrap();
    };
    for i in 0..KEYS {
        if i == KEYS / 2
            && let Some(g) = garbage
        {
            aof.write_all(g).unwrap();
        }
        set(&mut aof, &format!("k{i}"), &format!("value-{i:032}"));
    }
    set(&mut aof, "last", "loaded");
    aof.flush().unwrap();
    dir
}

fn spec(dir: &Path) -> ServerSpec {
    ServerSpec {
        target: Target::Redis,
        policy: FsyncPolicy::EverySec,
        backend: BackendKind::Pwrite,
        prealloc: Prealloc::None,
        persistence: Persistence::Aof,
        save_points: Vec::new(),
        log: dir.with_extension("log"),
        dir: dir.to_path_buf(),
        durlab_exe: PathBuf::from(env!("CARGO_BIN_EXE_durlab")),
        redis_config: Vec::new(),
    }
}

fn call(c: &mut Client, args: &[&str]) -> Value {
    c.call(args).expect("a reply")
}

#[test]
fn a_started_redis_has_loaded_its_whole_aof() {
    require(&["redis-server"]);
    let tmp = tempfile::tempdir().unwrap();
    let dir = data_dir(tmp.path(), None);
    // Twice: the second start finds the AOF as the first left it (killed, nothing added).
    for _ in 0..2 {
        let server = ServerProcess::start(&spec(&dir)).unwrap_or_else(|e| panic!("{e}"));
        let mut c = server.connect().unwrap();
        assert_eq!(
            call(&mut c, &["DBSIZE"]),
            Value::Int(i64::try_from(KEYS).unwrap() + 1)
        );
        assert_eq!(
            call(&mut c, &["GET", "last"]),
            Value::Bulk(b"loaded".to_vec())
        );
    }
}

#[test]
fn a_redis_that_refuses_its_aof_is_reported_with_its_own_log_line() {
    require(&["redis-server"]);
    let tmp = tempfile::tempdir().unwrap();
    let dir = data_dir(tmp.path(), Some(b"this is not RESP\r\n"));
    let e = ServerProcess::start(&spec(&dir))
        .expect_err("redis-server must refuse an AOF with garbage in it")
        .to_string();
    assert!(e.contains("it exited"), "{e}");
    assert!(
        e.contains("Bad file format reading the append only file"),
        "{e}"
    );
}

/// The companion: the state the first test reads is only there once loading is over. A
/// client connected as soon as the server listens is answered `-LOADING` (so a start that
/// took any answer for readiness would read a partial state), and the same server later holds
/// every key.
#[test]
fn a_client_connected_while_redis_loads_is_answered_loading() {
    require(&["redis-server"]);
    let exe = redis_server::find().expect("redis-server in PATH");
    let tmp = tempfile::tempdir().unwrap();
    let dir = data_dir(tmp.path(), None);
    let port = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log = std::fs::File::create(tmp.path().join("redis.log")).unwrap();
    let mut child = Command::new(exe)
        .args(redis_server::args(&spec(&dir), port))
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut c = loop {
        match Client::connect(addr, Duration::from_secs(1)) {
            Ok(c) => break c,
            Err(e) => assert!(Instant::now() < deadline, "no connection: {e}"),
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    let first = call(&mut c, &["PING"]);
    let mut replies = vec![first.clone()];
    while replies.last() != Some(&Value::Simple("PONG".into())) {
        assert!(Instant::now() < deadline, "no PONG: {replies:?}");
        replies.push(call(&mut c, &["PING"]));
    }
    let dbsize = call(&mut c, &["DBSIZE"]);
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        matches!(&first, Value::Error(e) if e.starts_with("LOADING")),
        "the first PING, sent as soon as the server listened, was answered {first:?}"
    );
    assert_eq!(dbsize, Value::Int(i64::try_from(KEYS).unwrap() + 1));
}
