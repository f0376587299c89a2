//! Consumer groups over `durlab serve` survive a kill -9 (mode `aof`, `appendfsync always`)
//! and a restart from a `SAVE`d snapshot (mode `snapshot`): the groups, last-delivered ids,
//! pending entries (owner, delivery count) and consumers read back the same; idle times only
//! grow (delivery and seen times are logged, not re-read from the clock at replay).

mod resp_support;

use durlab_engine::{FsyncPolicy, Persistence};
use durlab_harness::servers::{ServerProcess, Target};
use resp_support::{cli, start};

/// The commands of a small consumer workload: deliveries, a history read, a claim with a
/// delivery time in the past, an ack, a trimmed pending entry and an XDEL.
const WORKLOAD: &[&str] = &[
    "XADD s 1-1 f v1",
    "XADD s 2-1 f v2",
    "XADD s 3-1 f v3",
    "XADD s 4-1 f v4",
    "XGROUP CREATE s g 0",
    "XGROUP CREATE s h $",
    "XREADGROUP GROUP g alice COUNT 2 STREAMS s >",
    "XREADGROUP GROUP g bob STREAMS s >",
    "XREADGROUP GROUP g alice STREAMS s 0",
    "XCLAIM s g carol 0 2-1 IDLE 100000",
    "XACK s g 3-1",
    "XDEL s 4-1",
    "XADD s MAXLEN 2 5-1 f v5",
    "XGROUP CREATECONSUMER s h dave",
];

/// What must read back the same, and the idle times (which may only grow).
fn observe(server: &ServerProcess) -> (Vec<String>, Vec<u64>) {
    let mut exact = Vec::new();
    let mut idle = Vec::new();
    for args in [
        &["XINFO", "GROUPS", "s"][..],
        &["XPENDING", "s", "g"],
        &["XRANGE", "s", "-", "+"],
    ] {
        exact.push(cli(server, args));
    }
    // Extended XPENDING: id, owner, idle, count per entry.
    let rows = cli(server, &["XPENDING", "s", "g", "-", "+", "10"]);
    for (i, line) in rows.lines().enumerate() {
        if i % 4 == 2 {
            idle.push(line.parse().expect("an idle time"));
        } else {
            exact.push(line.to_owned());
        }
    }
    for group in ["g", "h"] {
        let consumers = cli(server, &["XINFO", "CONSUMERS", "s", group]);
        let mut lines = consumers.lines().peekable();
        while let Some(line) = lines.next() {
            exact.push(line.to_owned());
            if line == "idle"
                && let Some(value) = lines.next()
            {
                idle.push(value.parse().expect("an idle time"));
            }
        }
    }
    (exact, idle)
}

fn survives(persistence: Persistence) {
    let tmp = tempfile::tempdir().unwrap();
    let mut server = start(
        Target::DurlabServer,
        FsyncPolicy::Always,
        persistence,
        tmp.path(),
    );
    for line in WORKLOAD {
        let args: Vec<&str> = line.split(' ').collect();
        let out = cli(&server, &args);
        assert!(!out.starts_with("ERR"), "{line}: {out}");
    }
    if persistence == Persistence::Snapshot {
        assert_eq!(cli(&server, &["SAVE"]).trim(), "OK");
    }
    let (exact, idle) = observe(&server);
    assert!(
        idle[1] >= 100_000,
        "XCLAIM IDLE 100000 set 2-1's delivery time in the past: {idle:?}"
    );
    let spec = server.spec().clone();
    server.kill9().unwrap();
    drop(server);
    let server = ServerProcess::start(&spec).unwrap();
    let (exact_after, idle_after) = observe(&server);
    assert_eq!(
        exact_after, exact,
        "{persistence:?}: groups differ after restart"
    );
    assert_eq!(idle_after.len(), idle.len());
    for (after, before) in idle_after.iter().zip(&idle) {
        assert!(
            after >= before,
            "{persistence:?}: an idle time went back ({before} -> {after}): a time was not kept"
        );
    }
}

#[test]
fn groups_survive_kill9_in_aof_mode() {
    survives(Persistence::Aof);
}

#[test]
fn groups_survive_a_saved_snapshot() {
    survives(Persistence::Snapshot);
}
