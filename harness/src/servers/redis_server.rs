//! Starting a real `redis-server` (from PATH) on 127.0.0.1 with a configuration's
//! persistence mapped to Redis's directives.

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use durlab_engine::{FsyncPolicy, Persistence};

use super::{
    START_TIMEOUT, ServerProcess, ServerSpec, StartError, free_port, log_tail, wait_ready,
};
use crate::resp::info::save_text;

/// Tries with a fresh port this many times (another process may take a free port first).
const PORT_ATTEMPTS: u32 = 5;

/// `redis-server` in PATH, if any.
pub fn find() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("redis-server"))
        .find(|p| p.is_file())
}

/// The redis-server directives for `spec` on `port`:
///
/// | durlab | Redis |
/// |---|---|
/// | policy `always`/`everysec`/`no` with a log | `appendonly yes`, `appendfsync <policy>` |
/// | policy `off`, or mode `snapshot` | `appendonly no` |
/// | mode `snapshot`, `aof+snapshot` | `save "<save points>"` |
/// | mode `aof`, `hybrid` | `save ""` |
/// | mode `hybrid` | `aof-use-rdb-preamble yes`, automatic rewrite at 100% over 64 MiB (the engine's defaults) |
/// | mode `aof`, `aof+snapshot` | `aof-use-rdb-preamble no`, `auto-aof-rewrite-percentage 0` (the engine never rewrites there) |
///
/// Always `bind 127.0.0.1`, `daemonize no`, `dir`, `port`. Then `spec.redis_config`, the
/// scenario's `[matrix] redis_config` and `--redis-config` settings, which override the
/// defaults above (Redis takes the last occurrence of a directive).
pub fn args(spec: &ServerSpec, port: u16) -> Vec<String> {
    let kv = |k: &str, v: String| [format!("--{k}"), v];
    [
        kv("port", port.to_string()),
        kv("bind", Ipv4Addr::LOCALHOST.to_string()),
        kv("daemonize", "no".into()),
        kv("dir", spec.dir.display().to_string()),
        kv("logfile", String::new()),
    ]
    .into_iter()
    .flatten()
    .chain(
        settings(
            spec.policy,
            spec.persistence,
            &spec.save_points,
            &spec.redis_config,
        )
        .into_iter()
        .flat_map(|(k, v)| [format!("--{k}"), v]),
    )
    .collect()
}

/// The persistence directives of [`args`] for a configuration: the mapped ones, each replaced
/// by `extra`'s value for the same directive, then `extra`'s others; every directive once, as
/// `(directive, value)`. What results record as the Redis configuration of a run.
pub fn settings(
    policy: FsyncPolicy,
    persistence: Persistence,
    save_points: &[(u64, u64)],
    extra: &[(String, String)],
) -> Vec<(String, String)> {
    let aof = persistence.has_log() && policy != FsyncPolicy::Off;
    let yes = |b: bool| if b { "yes" } else { "no" }.to_string();
    let save = match persistence {
        Persistence::Snapshot | Persistence::AofSnapshot => save_text(save_points),
        Persistence::Aof | Persistence::Hybrid => String::new(),
    };
    let hybrid = persistence == Persistence::Hybrid;
    let policy = if policy == FsyncPolicy::Off {
        "no"
    } else {
        policy.name()
    };
    let kv = |k: &str, v: String| (k.to_string(), v);
    let mut out = vec![
        kv("appendonly", yes(aof)),
        kv("appendfsync", policy.into()),
        kv("save", save),
        kv("aof-use-rdb-preamble", yes(hybrid)),
        kv(
            "auto-aof-rewrite-percentage",
            if hybrid { "100" } else { "0" }.into(),
        ),
        kv("auto-aof-rewrite-min-size", "64mb".into()),
    ];
    for (k, v) in extra {
        match out.iter_mut().find(|(key, _)| key == k) {
            Some(slot) => slot.1 = v.clone(),
            None => out.push((k.clone(), v.clone())),
        }
    }
    out
}

/// `redis-server --version`'s first line (`Redis server v=7.0.15 sha=... bits=64 ...`), or
/// why it could not be read. Asked once per process.
pub fn version() -> String {
    static VERSION: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    VERSION
        .get_or_init(|| {
            let Some(exe) = find() else {
                return "redis-server not found in PATH".into();
            };
            match Command::new(&exe).arg("--version").output() {
                Ok(o) => String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_string(),
                Err(e) => format!("{}: {e}", exe.display()),
            }
        })
        .clone()
}

/// The Redis directives a team chooses that `[matrix] redis_config` and `--redis-config` may
/// set. `appendonly`, `appendfsync` and `save` are not among them: the matrix's policies,
/// persistence modes and save points set those, so that results name them.
pub const SETTABLE: [&str; 11] = [
    "aof-use-rdb-preamble",
    "no-appendfsync-on-rewrite",
    "auto-aof-rewrite-percentage",
    "auto-aof-rewrite-min-size",
    "aof-load-truncated",
    "aof-timestamp-enabled",
    "aof-rewrite-incremental-fsync",
    "rdb-save-incremental-fsync",
    "rdbcompression",
    "rdbchecksum",
    "stop-writes-on-bgsave-error",
];

/// Checks a `redis_config` key.
///
/// # Errors
/// A key the matrix owns, or one not in [`SETTABLE`], naming the ones that are.
pub fn check_setting(key: &str) -> Result<(), String> {
    match key {
        "appendonly" | "appendfsync" => Err(format!(
            "`{key}` is set by the matrix's policies (always, everysec, no; off = appendonly no)"
        )),
        "save" => Err(
            "`save` is set by the persistence modes snapshot and aof+snapshot and `[snapshot] save`"
                .into(),
        ),
        k if SETTABLE.contains(&k) => Ok(()),
        k => Err(format!(
            "unknown Redis setting `{k}`: expected one of {}",
            SETTABLE.join(", ")
        )),
    }
}

/// Starts redis-server for `spec` on a free port and waits for a PONG.
///
/// # Errors
/// See [`ServerProcess::start`]; [`StartError::RedisMissing`] says how to install it.
pub fn start(spec: &ServerSpec) -> Result<ServerProcess, StartError> {
    let exe = find().ok_or(StartError::RedisMissing)?;
    let what = format!("redis-server ({})", exe.display());
    let mut last = String::new();
    for _ in 0..PORT_ATTEMPTS {
        let spawn_err = |source| StartError::Spawn {
            what: what.clone(),
            source,
        };
        let port = free_port().map_err(spawn_err)?;
        let log = File::create(&spec.log).map_err(spawn_err)?;
        let err = log.try_clone().map_err(spawn_err)?;
        let child = Command::new(&exe)
            // Its own process group: a crash kills its BGSAVE/BGREWRITEAOF children too.
            .process_group(0)
            .args(args(spec, port))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .map_err(spawn_err)?;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let mut process = ServerProcess::new(child, addr, spec);
        let child = process.child.as_mut().expect("just started");
        match wait_ready(child, addr, START_TIMEOUT) {
            Ok(()) => return Ok(process),
            Err(why) => last = why,
        }
        // Only a port taken by another process is worth another try; a server that refuses
        // its data directory refuses it on every port.
        let log = std::fs::read_to_string(&spec.log).unwrap_or_default();
        if !log.contains("Address already in use") {
            return Err(StartError::NotReady {
                what,
                why: last,
                log: spec.log.clone(),
                tail: log_tail(&spec.log),
            });
        }
    }
    Err(StartError::NotReady {
        what,
        why: format!("{last} (tried {PORT_ATTEMPTS} ports)"),
        log: spec.log.clone(),
        tail: log_tail(&spec.log),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn added_settings_replace_mapped_ones_and_each_directive_appears_once() {
        let extra = vec![
            ("auto-aof-rewrite-percentage".to_string(), "100".to_string()),
            ("no-appendfsync-on-rewrite".to_string(), "yes".to_string()),
        ];
        let s = settings(FsyncPolicy::EverySec, Persistence::Aof, &[], &extra);
        let get = |k: &str| {
            let found: Vec<&str> = s
                .iter()
                .filter(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
                .collect();
            found
        };
        assert_eq!(get("auto-aof-rewrite-percentage"), ["100"]);
        assert_eq!(get("no-appendfsync-on-rewrite"), ["yes"]);
        assert_eq!(get("appendfsync"), ["everysec"]);
        assert_eq!(get("appendonly"), ["yes"]);
        // Policy off keeps no AOF, whatever else is set.
        let off = settings(FsyncPolicy::Off, Persistence::Aof, &[], &extra);
        assert!(off.contains(&("appendonly".into(), "no".into())));
    }
}
