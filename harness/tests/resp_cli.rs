//! `durlab serve` driven by the real `redis-cli` and `redis-benchmark` (Debian's
//! redis-tools), on an OS-assigned loopback port, killed at the end of each test.

mod resp_support;

use durlab_engine::{FsyncPolicy, Persistence};
use durlab_harness::servers::Target;
use resp_support::{cli, redis_cli, require, start};

#[test]
fn commands_through_redis_cli() {
    require(&["redis-cli"]);
    let tmp = tempfile::tempdir().unwrap();
    let s = start(
        Target::DurlabServer,
        FsyncPolicy::Always,
        Persistence::Aof,
        tmp.path(),
    );
    assert_eq!(cli(&s, &["PING"]), "PONG\n");
    assert_eq!(cli(&s, &["SET", "k", "v"]), "OK\n");
    assert_eq!(cli(&s, &["GET", "k"]), "v\n");
    assert_eq!(cli(&s, &["HSET", "h", "f1", "a", "f2", "b"]), "2\n");
    let mut fields: Vec<String> = cli(&s, &["HGETALL", "h"])
        .lines()
        .map(String::from)
        .collect();
    fields.sort();
    assert_eq!(fields, ["a", "b", "f1", "f2"]);
    assert_eq!(cli(&s, &["ZADD", "z", "2", "b", "1", "a"]), "2\n");
    assert_eq!(cli(&s, &["ZPOPMIN", "z"]), "a\n1\n");
    assert_eq!(cli(&s, &["ZRANGE", "z", "0", "-1", "WITHSCORES"]), "b\n2\n");
    assert_eq!(
        cli(&s, &["XADD", "s", "MAXLEN", "1", "0-*", "f", "v"]),
        "0-1\n"
    );
    assert_eq!(cli(&s, &["XADD", "s", "5-1", "f", "w"]), "5-1\n");
    assert_eq!(
        cli(&s, &["XRANGE", "s", "-", "+"]),
        "0-1\nf\nv\n5-1\nf\nw\n"
    );
    assert!(cli(&s, &["XADD", "s", "1-1", "f", "v"]).contains("equal or smaller"));
    // `*` is Redis's time-based id: now (a 2020s time in ms) and seq 0, above 5-1.
    let id = cli(&s, &["XADD", "s", "*", "f", "v"]);
    let (ms, seq) = id.trim_end().split_once('-').unwrap();
    assert!(ms.parse::<u64>().unwrap() > 1_600_000_000_000, "{id}");
    assert_eq!(seq, "0");
    assert_eq!(cli(&s, &["INCRBY", "n", "5"]), "5\n");
    assert!(cli(&s, &["INCRBY", "k", "1"]).contains("not an integer"));
    assert!(cli(&s, &["HSET", "k", "f", "v"]).contains("WRONGTYPE"));
    assert_eq!(cli(&s, &["PEXPIREAT", "k", "4000000000000"]), "1\n");
    assert_eq!(cli(&s, &["PEXPIRETIME", "k"]), "4000000000000\n");
    assert_eq!(cli(&s, &["TYPE", "s"]), "stream\n");
    assert_eq!(cli(&s, &["DEL", "k", "n", "nothing"]), "2\n");
    assert!(cli(&s, &["NOSUCH", "x"]).contains("unknown command 'NOSUCH'"));
    assert_eq!(
        cli(&s, &["CONFIG", "GET", "appendfsync"]),
        "appendfsync\nalways\n"
    );
    let info = cli(&s, &["INFO", "persistence"]);
    for field in [
        "aof_enabled:1",
        "aof_last_write_status:ok",
        "aof_rewrite_in_progress:0",
        "rdb_last_save_time:",
        "durlab_durable_lsn:",
    ] {
        assert!(
            info.contains(field),
            "INFO persistence lacks {field}: {info}"
        );
    }
    // MULTI/EXEC on one connection (redis-cli reads commands from stdin).
    let out = redis_cli(&s, &[], Some(b"MULTI\nSET m 1\nINCRBY m 2\nGET m\nEXEC\n"));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "OK\nQUEUED\nQUEUED\nQUEUED\nOK\n3\n3\n"
    );
    let out = redis_cli(&s, &[], Some(b"MULTI\nSET m\nEXEC\n"));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("EXECABORT"),
        "{out:?}"
    );
    let lsn = |s: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix("durlab_last_lsn:"))
            .unwrap()
            .trim()
            .parse::<u64>()
            .unwrap()
    };
    let before = lsn(&cli(&s, &["INFO", "persistence"]));
    assert_eq!(
        cli(&s, &["SCAN", "0", "COUNT", "100"]).lines().count(),
        1 + 4,
        "cursor and 4 keys (h, z, s, m)"
    );
    assert_eq!(cli(&s, &["DBSIZE"]), "4\n");
    assert!(cli(&s, &["BGSAVE"]).contains("persistence aof"));
    assert_eq!(
        lsn(&cli(&s, &["INFO", "persistence"])),
        before,
        "reads log nothing"
    );
}

#[test]
fn pipelining_with_redis_cli_pipe() {
    require(&["redis-cli"]);
    let tmp = tempfile::tempdir().unwrap();
    let s = start(
        Target::DurlabServer,
        FsyncPolicy::EverySec,
        Persistence::Aof,
        tmp.path(),
    );
    let mut input = Vec::new();
    for i in 0..2000 {
        durlab_harness::resp::encode::command(
            &mut input,
            &["SET".to_string(), format!("k{i}"), format!("{i}")],
        );
    }
    durlab_harness::resp::encode::command(&mut input, &["INCRBY", "k7", "10"]);
    let out = redis_cli(&s, &["--pipe"], Some(&input));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("errors: 0, replies: 2001"),
        "{out:?}"
    );
    assert_eq!(cli(&s, &["GET", "k7"]), "17\n");
    assert_eq!(cli(&s, &["DBSIZE"]), "2000\n");
    // Raw pipelined inline commands in one write: replies in order.
    let out = redis_cli(&s, &[], Some(b"SET a 1\nGET a\nINCRBY a 4\nGET a\n"));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "OK\n1\n5\n5\n");
}

#[test]
fn protocol_errors_close_like_redis() {
    use std::io::{Read as _, Write as _};
    let tmp = tempfile::tempdir().unwrap();
    let s = start(
        Target::DurlabServer,
        FsyncPolicy::No,
        Persistence::Aof,
        tmp.path(),
    );
    for (bad, reply) in [
        (
            &b"*1\r\n$-5\r\n"[..],
            "-ERR Protocol error: invalid bulk length\r\n",
        ),
        (
            b"*2\r\n$3\r\nGET\r\n:1\r\n",
            "-ERR Protocol error: expected '$', got ':'\r\n",
        ),
        (
            b"*abc\r\n",
            "-ERR Protocol error: invalid multibulk length\r\n",
        ),
        (
            b"GET \"k\r\n",
            "-ERR Protocol error: unbalanced quotes in request\r\n",
        ),
    ] {
        let mut c = std::net::TcpStream::connect(s.addr()).unwrap();
        c.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        c.write_all(b"PING\r\n").unwrap();
        c.write_all(bad).unwrap();
        let mut got = String::new();
        c.read_to_string(&mut got).unwrap();
        assert_eq!(got, format!("+PONG\r\n{reply}"), "for {bad:?}");
    }
}

#[test]
fn redis_benchmark_against_durlab_serve() {
    require(&["redis-benchmark"]);
    let tmp = tempfile::tempdir().unwrap();
    let s = start(
        Target::DurlabServer,
        FsyncPolicy::Always,
        Persistence::Aof,
        tmp.path(),
    );
    let port = s.addr().port().to_string();
    let out = std::process::Command::new("timeout")
        .args(["60", "redis-benchmark", "-h", "127.0.0.1", "-p", &port])
        .args(["-t", "set,get", "-n", "2000", "-c", "4", "-P", "4", "-q"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(text.contains("SET:") && text.contains("GET:"), "{text}");
    assert_eq!(
        cli(&s, &["DBSIZE"]),
        "1\n",
        "redis-benchmark writes key:__rand_int__ only"
    );
}

/// The event loop's other shapes: two loops, and sleeping at once when idle (`--spin-us 0`).
#[test]
fn two_loops_without_spinning_serve_redis_benchmark() {
    use std::io::BufRead as _;
    require(&["redis-benchmark", "redis-cli"]);
    let tmp = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_durlab"))
        .args(["serve", "--port", "0", "--appendfsync", "always"])
        .args(["--threads", "2", "--spin-us", "0", "--dir"])
        .arg(tmp.path().join("data"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line
        .trim()
        .rsplit(':')
        .next()
        .unwrap_or_else(|| panic!("no port in {line:?}"))
        .to_string();
    let out = std::process::Command::new("timeout")
        .args(["60", "redis-benchmark", "-h", "127.0.0.1", "-p", &port])
        .args(["-t", "set", "-n", "4000", "-c", "8", "-P", "2", "-q"])
        .output()
        .unwrap();
    let keys = std::process::Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port, "INFO", "persistence"])
        .output()
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(out.status.success(), "{out:?}");
    let info = String::from_utf8_lossy(&keys.stdout);
    let records = info
        .lines()
        .find_map(|l| l.strip_prefix("durlab_records:"))
        .unwrap_or_else(|| panic!("no durlab_records in {info}"));
    assert_eq!(records.trim(), "4000", "every SET logged once: {info}");
}
