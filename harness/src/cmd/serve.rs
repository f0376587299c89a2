//! `durlab serve`: the engine behind a RESP2 server on 127.0.0.1.

use std::io::Write as _;

use durlab_engine::{Engine, EngineConfig, FsyncPolicy};

use super::CliError;
use crate::cli::ServeArgs;
use crate::resp::server::Server;
use crate::resp::{Limits, info};

/// First word of the line `durlab serve` prints on stdout once it accepts connections:
/// `listening 127.0.0.1:<port>`. Spawners read it to learn the port.
pub const READY_PREFIX: &str = "listening ";

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
    let (engine, report) = Engine::open(config)
        .map_err(|e| CliError(format!("opening the engine in {}: {e}", args.dir.display())))?;
    let limits = Limits {
        max_bulk_bytes: args.max_bulk_bytes,
        ..Limits::default()
    };
    let server = Server::bind(engine.clone(), args.port, limits)
        .map_err(|e| CliError(format!("binding 127.0.0.1:{}: {e}", args.port)))?;
    let c = engine.config();
    let spin_us = args.spin_us.unwrap_or(match c.policy {
        FsyncPolicy::Always => 0,
        _ => DEFAULT_SPIN_US,
    });
    eprintln!(
        "durlab serve: {} {} {} {} save \"{}\", {} loop(s) spinning {spin_us} us, recovered LSN {} in {:.1} ms",
        c.persistence,
        c.policy,
        c.backend,
        c.prealloc,
        info::save_text(&c.save_points),
        args.threads,
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
