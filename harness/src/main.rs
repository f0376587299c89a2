//! `durlab`: scenarios, workloads, benchmark driver, probe and reports for durlab-engine.
//!
//! Layout: [`cli`] (flags), [`cmd`] (each subcommand's flow), [`scenario`] (TOML files),
//! [`workload`] (the seeded command sequence), [`driver`] (running and measuring one
//! configuration), [`probe`] (raw device limits), [`results`] (JSON, machine facts, tables),
//! [`progress`] (stderr display), [`report`] (plots, report.md, comparisons).

use clap::Parser;

use durlab_harness::cli::{Cli, Command};
use durlab_harness::cmd;

fn main() {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Bench(args) => cmd::bench::run(args),
        Command::Probe(args) => cmd::probe::run(args),
        Command::Report(args) => cmd::report::run(args),
        Command::Run(args) => cmd::run::run(args),
        Command::Recover(args) => cmd::recover::run(args),
        Command::Serve(args) => cmd::serve::run(args),
        Command::Kill9(args) => cmd::kill9::run(args),
        Command::Crash(args) => cmd::crash::run(args),
        Command::Fs(args) => cmd::fs::run(args),
        Command::Worker(args) => cmd::worker::run(args),
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
