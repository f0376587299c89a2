//! `durlab serve`: the engine behind a RESP2 server on 127.0.0.1.

use std::io::Write as _;

use durlab_engine::{Engine, EngineConfig, FsyncPolicy};

use super::CliError;
use crate::cli::ServeArgs;
use crate::resp::server::{ClientLimits, Server};
use crate::resp::{Limits, info};
use crate::servers::durlab_server::READY_PREFIX;

/// `--spin-us` unless the policy is `always` (whose rounds wait for an fdatasync anyway).
const DEFAULT_SPIN_US: u32 = 20;

/// The engine configuration `args` describe.
pub fn engine_config(args: &ServeArgs) -> EngineConfig {
    let mut c = EngineConfig::new(&args.dir)
        .policy(args.appendfsync)
        .backend(args.backend)
        .prealloc(args.prealloc)
        .persistence(args.persistence)
        .save_points(args.save.clone().unwrap_or_default().0);
    if let Some(ms) = args.everysec_interval_ms {
        c.everysec_interval_ms = ms;
    }
    c
}

/// Opens the engine (running recovery), binds, prints `listening 127.0.0.1:<port>` on stdout
/// and serves until `SHUTDOWN`.
///
/// # Errors
/// The engine refusing to open (recovery, configuration), the port not binding, or the final
/// sync at shutdown failing.
pub fn run(args: &ServeArgs) -> Result<(), CliError> {
    let config = engine_config(args);
    if args.max_bulk_bytes > config.max_record_bytes as usize {
        return Err(CliError(format!(
            "--max-bulk-bytes {} exceeds the log's record limit of {} bytes (64 MiB): a value \
             that long could never be logged; use at most that (docs/serve.md)",
            args.max_bulk_bytes, config.max_record_bytes
        )));
    }
    let (engine, report) = Engine::open(config)
        .map_err(|e| CliError(format!("opening the engine in {}: {e}", args.dir.display())))?;
    for change in &report.changes {
        eprintln!("durlab serve: recovery: {change}");
    }
    for leftover in &report.leftover_files {
        eprintln!(
            "durlab serve: recovery: {}: ignored (a leftover of an interrupted operation, never loaded)",
            leftover.display()
        );
    }
    let limits = Limits {
        max_bulk_bytes: args.max_bulk_bytes,
        ..Limits::default()
    };
    let clients = ClientLimits {
        max_clients: fit_fd_limit(args.maxclients as usize, args.threads)?,
        max_output_bytes: usize::try_from(args.client_output_limit).unwrap_or(usize::MAX),
    };
    let server = Server::bind(engine.clone(), args.port, limits, clients)
        .map_err(|e| CliError(format!("binding 127.0.0.1:{}: {e}", args.port)))?;
    let c = engine.config();
    let spin_us = args.spin_us.unwrap_or(match c.policy {
        FsyncPolicy::Always => 0,
        _ => DEFAULT_SPIN_US,
    });
    eprintln!(
        "durlab serve: {} {} {} {} save \"{}\", {} loop(s) spinning {spin_us} us, maxclients {}, recovered LSN {} in {:.1} ms",
        c.persistence,
        c.policy,
        c.backend,
        c.prealloc,
        info::save_text(&c.save_points),
        args.threads,
        clients.max_clients,
        report.recovered_lsn,
        report.duration.as_secs_f64() * 1e3
    );
    let mut out = std::io::stdout().lock();
    writeln!(out, "{READY_PREFIX}{}", server.local_addr())?;
    out.flush()?;
    drop(out);
    let spin = std::time::Duration::from_micros(u64::from(spin_us));
    server
        .run(usize::from(args.threads), spin)
        .map_err(CliError)
}

/// Descriptors `durlab serve` keeps for itself besides its clients': Redis reserves 32 (log
/// and snapshot files, directories, stdio); each event loop adds its epoll set, its clone of
/// the listener and its spare descriptor.
fn reserved_fds(loops: u16) -> u64 {
    32 + 3 * u64::from(loops)
}

/// Raises the open-file limit to fit `max_clients` clients plus the reserved descriptors if
/// the hard limit allows, as Redis does at startup; otherwise lowers `max_clients` to what
/// the limit fits, with a warning on stderr. Returns the `max_clients` to use.
///
/// # Errors
/// The limit leaves no descriptor for any client.
fn fit_fd_limit(max_clients: usize, loops: u16) -> Result<usize, CliError> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let reserved = reserved_fds(loops);
    let want = (max_clients as u64).saturating_add(reserved);
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)
        .map_err(|e| CliError(format!("reading the open-file limit: {e}")))?;
    let mut limit = soft;
    if soft < want {
        let target = want.min(hard);
        if target > soft && setrlimit(Resource::RLIMIT_NOFILE, target, hard).is_ok() {
            limit = target;
        }
    }
    if limit >= want {
        return Ok(max_clients);
    }
    let fit = limit.saturating_sub(reserved);
    if fit == 0 {
        return Err(CliError(format!(
            "the open-file limit (ulimit -n) is {limit} and durlab serve reserves {reserved} descriptors for itself: no client could connect; raise ulimit -n"
        )));
    }
    eprintln!(
        "durlab serve: maxclients {max_clients} needs {want} open files but the limit (ulimit -n) is {limit} (hard limit {hard}); maxclients reduced to {fit} ({reserved} descriptors reserved); raise ulimit -n for more"
    );
    Ok(usize::try_from(fit).unwrap_or(max_clients))
}
