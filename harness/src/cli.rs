//! The command line of `durlab` (clap derive).
//!
//! Subcommands: `bench`, `probe`, `report`, `run`, `recover` (inspect a data directory, `--fix`
//! cuts a torn tail), `serve` (RESP2 server), `kill9` (kill -9 trials of RESP servers), `crash`
//! (the crash lab), and the hidden `worker` (the crash lab's child process).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use durlab_engine::{BackendKind, FsyncPolicy, Prealloc};

use crate::crashlab::FaultKind;
use crate::crashlab::images::DirModel;
use crate::crashlab::phase::Phase;
use crate::driver::pacing::{Arrivals, RateArg};
use crate::scenario::model::Persistence;
use crate::servers::Target;

/// durlab: measure what Redis-style persistence costs, and what it loses.
#[derive(Debug, Parser)]
#[command(name = "durlab", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a scenario's engine matrix (or one configuration) and measure throughput, latency,
    /// syncs and resources.
    ///
    /// Every configuration runs in a fresh data directory. Results go to
    /// results/<scenario>/<run-id>/ (one JSON per configuration plus run.json with machine
    /// facts, probe figures, versions, seed and latency histograms). Throughput is also given
    /// as a ratio to the memory-only (`off`) run, which is added when the matrix lacks one, and
    /// for `always` to the probe's matching pwrite+fdatasync rate.
    Bench(Box<BenchArgs>),
    /// Measure the raw device limits: pwrite+fdatasync ops/s and latency for a growing, a
    /// fallocated and a zero-filled file (64 B and 4 KiB records), O_DIRECT and buffered
    /// sequential write MB/s.
    Probe(ProbeArgs),
    /// Write plots and report.md for a result directory, or compare two result directories.
    ///
    /// With one RESULTS_DIR (as written by `bench` or `run`): writes loss-vs-throughput,
    /// latency-cdf, group-commit and recovery plots (SVG and PNG) and report.md into it, and
    /// prints the path of report.md. With two (A then B): prints a side-by-side table of
    /// ops/s, p99 latency and worst loss window per configuration with the ratios B/A.
    Report(ReportArgs),
    /// Run a scenario end to end: benchmark matrix, recovery timing (after each bench, and
    /// against data size per persistence mode: `[recovery]`), a group-commit sweep of the
    /// `always` configurations over writer counts (`[group_commit]`, into group-commit/),
    /// crash trials, and the report; prints the path of report.md.
    Run(RunArgs),
    /// Inspect a data directory of any persistence mode (like redis-check-aof and
    /// redis-check-rdb in one): files, record counts, LSN ranges, torn tails, damage with file
    /// and offset, manifest problems, leftover temp files, and what `durlab serve` would do
    /// there (recovery's own decisions: reach LSN n, start empty, or refuse). Read-only unless
    /// --fix. Exits non-zero when something is wrong, or when the directory holds no durlab
    /// file (a Redis data directory, say); the messages are listed in docs/serve.md.
    Recover(RecoverArgs),
    /// Serve the engine over RESP2 (the Redis protocol) on 127.0.0.1, like a redis-server
    /// with the engine's command set: SET (NX XX GET KEEPTTL EX PX EXAT PXAT) GET DEL SETNX
    /// INCR DECR INCRBY DECRBY EXPIRE PEXPIRE EXPIREAT PEXPIREAT PERSIST HSET HDEL HINCRBY ZADD
    /// ZREM ZPOPMIN XADD FLUSHALL; consumer groups: XGROUP (CREATE SETID DESTROY
    /// CREATECONSUMER DELCONSUMER) XREADGROUP (one stream, no BLOCK) XACK XDEL XCLAIM
    /// XAUTOCLAIM, reads XPENDING XINFO GROUPS XINFO CONSUMERS; reads: TYPE EXISTS TTL PTTL
    /// PEXPIRETIME HGET HMGET HEXISTS HLEN HGETALL ZSCORE ZCARD ZRANGE XLEN XRANGE XINFO STREAM
    /// SCAN DBSIZE; PING ECHO,
    /// MULTI/EXEC/DISCARD, INFO persistence, CONFIG GET, BGSAVE, SAVE, BGREWRITEAOF, SHUTDOWN. A reply is sent only once its command is
    /// acknowledged under --appendfsync. Prints `listening 127.0.0.1:<port>` on stdout when
    /// ready.
    Serve(ServeArgs),
    /// kill -9 trials against RESP targets: drive durlab serve or redis-server over one
    /// pipelined connection (each write command n wrapped in MULTI/EXEC with SET
    /// __durlab:lsn n), SIGKILL the server at a seeded time, restart it on the same
    /// directory, read the whole state back over RESP and compare it with commands 1..r.
    /// Writes crash-kill9-<label>.json summaries (verdicts, lost acknowledged commands,
    /// loss window) that `durlab report` shows next to the bench figures. Exits non-zero on
    /// any violation; for redis that is a measurement of Redis, reported as it is.
    Kill9(Kill9Args),
    /// Crash the engine on purpose, recover, verify against the oracle, and measure what was
    /// lost: verdicts (ok, lost-acked, divergent, phantom, refused), violations of the
    /// policy's promise, and the loss window, per configuration and fault.
    ///
    /// Results go to results/<scenario>/<run-id>/crash-<fault>-<label>.json plus run.json.
    /// Every violating trial prints one command line that reproduces it exactly and keeps its
    /// data directory and ack page. Exits with an error when any trial violates.
    Crash(Box<CrashArgs>),
    /// Mount the recording filesystem: a passthrough FUSE filesystem over BACKING at MOUNT
    /// that records every operation changing what survives a crash (creates, writes with
    /// offsets and bytes, fsync/fdatasync, directory fsyncs, renames, unlinks, mkdir, rmdir,
    /// truncates, fallocate, links) to TRACE, the crash lab's I/O trace. Run any server with
    /// its data directory on MOUNT, unmodified; `durlab crash --target redis` does this itself.
    ///
    /// With a COMMAND after `--`, runs it and unmounts when it exits (exit status passed on);
    /// without, stays mounted until Ctrl-C or SIGTERM. Needs /dev/fuse and root (or
    /// fusermount3 from Debian's fuse3 package); fails, never falls back, without them.
    Fs(FsArgs),
    /// Internal: the child process of `crash --fault kill9` (runs the engine and the workload,
    /// publishes acknowledgements to the ack page, and waits to be killed).
    #[command(hide = true)]
    Worker(Box<WorkerArgs>),
}

/// `durlab kill9`.
#[derive(Debug, Args)]
pub struct Kill9Args {
    /// Scenario name or .toml path (its workload and matrix); default: the built-in one.
    pub scenario: Option<String>,

    /// Policies, persistence modes, targets (default durlab-server; engine is the crash
    /// lab's), backends and preallocation; each list replaces the scenario's.
    #[command(flatten)]
    pub matrix: MatrixArgs,

    /// Trials per configuration.
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub trials: u64,

    /// Seconds of workload before the kill is drawn in [0.1, 1.0] of this.
    #[arg(long, default_value_t = 1.0, value_name = "SECS")]
    pub trial_secs: f64,

    /// Open-loop target rate, commands per second: the connection sends the mix's write
    /// commands at seeded arrival times whatever the server's speed (like memtier's --rate),
    /// at the rate's write share; `flat-out` keeps the pipeline full. Default: the scenario's
    /// `[workload] rate`, else flat-out. Results record the target and the achieved rate.
    #[arg(long, value_name = "OPS_PER_SEC")]
    pub rate: Option<RateArg>,

    /// How the arrivals of the target rate are spaced: poisson (exponential gaps) or uniform
    /// (fixed gaps). Default: the scenario's, else poisson.
    #[arg(long, value_name = "DIST")]
    pub arrivals: Option<Arrivals>,

    /// Seed of the command sequence and the trials (default: the scenario's).
    #[arg(long, value_name = "S")]
    pub seed: Option<u64>,

    /// Where data directories go (default: a fresh temporary directory, removed unless --keep).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,

    /// Keep the data directories.
    #[arg(long)]
    pub keep: bool,

    /// --out (e.g. a bench run's directory, so that its report shows both), --run-id,
    /// --json (the summaries as one JSON array), --quiet.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Redis's `save` directive: `"<secs> <changes> ..."` pairs, or `""` for none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SavePoints(pub Vec<(u64, u64)>);

impl std::str::FromStr for SavePoints {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let nums = s
            .split_whitespace()
            .map(|w| {
                w.parse::<u64>()
                    .map_err(|_| format!("save point '{w}' is not a non-negative integer"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if nums.len() % 2 != 0 {
            return Err("save points come in pairs: \"<seconds> <changes> ...\"".into());
        }
        Ok(SavePoints(
            nums.chunks_exact(2).map(|p| (p[0], p[1])).collect(),
        ))
    }
}

/// `durlab serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// TCP port on 127.0.0.1 (0: a free port chosen by the OS; the line printed on stdout
    /// names it). durlab serve never listens on any other address.
    #[arg(long, default_value_t = 6379, value_name = "PORT")]
    pub port: u16,

    /// Data directory (created if missing; recovered if it holds data).
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,

    /// When a write is acknowledged: always (after the fdatasync covering it, group commit
    /// across connections), everysec (written to the OS, synced every second), no (written
    /// to the OS), off (memory only).
    #[arg(long, default_value = "everysec", value_name = "POLICY")]
    pub appendfsync: FsyncPolicy,

    /// I/O backend: pwrite, uring or mmap (mmap needs --prealloc fallocate or zero).
    #[arg(long, default_value = "pwrite", value_name = "BACKEND")]
    pub backend: BackendKind,

    /// Log preallocation: none, fallocate or zero.
    #[arg(long, default_value = "none", value_name = "MODE")]
    pub prealloc: Prealloc,

    /// Persistence mode: aof, snapshot, aof+snapshot or hybrid (an RDB-like base plus AOF
    /// increments, like aof-use-rdb-preamble yes).
    #[arg(long, default_value = "aof", value_name = "MODE")]
    pub persistence: Persistence,

    /// Save points as in Redis's `save` directive, e.g. "3600 1 300 100" (modes snapshot
    /// and aof+snapshot); default none.
    #[arg(long, value_name = "POINTS")]
    pub save: Option<SavePoints>,

    /// Period of the everysec background fdatasync, ms (default 1000).
    #[arg(long, value_name = "MS")]
    pub everysec_interval_ms: Option<u64>,

    /// Event-loop threads; each accepts connections and runs its own rounds of commands (under
    /// `always` their fdatasyncs overlap through the engine's group commit). The default 1 is
    /// Redis's shape: one loop batches every ready connection into one round (one write, one
    /// fdatasync). On 2 cores shared with the client it was the faster choice (redis-benchmark,
    /// 50 connections: about 10% more SETs/s than 2 loops under `no`, 10-35% under `always`).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64), value_name = "N")]
    pub threads: u16,

    /// Microseconds an event loop keeps polling (epoll_wait without blocking) after it finds
    /// no ready connection, before it sleeps. Spinning spares the clients the wakeup of a
    /// sleeping server: with redis-benchmark on 2 cores under `no`, 20 us gave about 10% more
    /// SETs/s at 50 connections and about 1.8x at 1 connection. Under `always` a round waits
    /// for an fdatasync anyway, and spinning cost about 12% at 1 connection. It costs CPU
    /// while load is light; Redis does not spin (0 is its shape). Default: 0 under `always`,
    /// 20 otherwise.
    #[arg(long, value_parser = clap::value_parser!(u32).range(0..=10_000), value_name = "US")]
    pub spin_us: Option<u32>,

    /// Longest bulk string a client may send, bytes (Redis's proto-max-bulk-len, whose
    /// default is 512 MiB). Defaults to, and may not exceed, the log's one limit on a command's
    /// size (64 MiB, docs/serve.md): a longer value could never be logged.
    #[arg(long, default_value_t = durlab_engine::config::MAX_RECORD_BYTES as usize, value_name = "BYTES")]
    pub max_bulk_bytes: usize,

    /// Most clients connected at once (Redis's maxclients); one more is answered "-ERR max
    /// number of clients reached" and closed. Like Redis, durlab serve raises its open-file
    /// limit (ulimit -n) to N plus the descriptors it reserves for itself if it can, and
    /// otherwise lowers N to fit, with a warning.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..), value_name = "N")]
    pub maxclients: u32,

    /// Most bytes of replies a client may leave unread before it is disconnected (logged on
    /// stderr), like Redis's client-output-buffer-limit hard limit, which Redis leaves unset
    /// for normal clients. Reading a client pauses while it has 64 MiB unread (or this
    /// limit, if lower) and resumes once half of that has drained.
    #[arg(long, default_value_t = 256 << 20, value_parser = clap::value_parser!(u64).range(1..), value_name = "BYTES")]
    pub client_output_limit: u64,
}

/// `durlab recover`.
#[derive(Debug, Args)]
pub struct RecoverArgs {
    /// The data directory (as given to the engine: it holds durlab.aof, durlab.snap or
    /// durlab.manifest and its files).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,

    /// Only inspect and report (the default).
    #[arg(long, conflicts_with = "fix")]
    pub check: bool,

    /// Cut a torn tail of the log that receives appends, after copying the cut bytes to a
    /// quarantine file next to it. Nothing else is ever changed: damage in the middle of a log,
    /// a bad snapshot or a bad manifest are reported, not repaired.
    #[arg(long)]
    pub fix: bool,

    /// Also say exactly what `durlab serve --persistence MODE` would do on this directory:
    /// the engine's own recovery runs on a scratch copy of its durlab files (the directory
    /// is not touched) and its outcome is printed: the LSN it would start at and every change
    /// it would make, or its refusal. Without it, the mode is inferred from the files.
    #[arg(long, value_name = "MODE")]
    pub persistence: Option<Persistence>,
}

/// `durlab fs`.
#[derive(Debug, Args)]
pub struct FsArgs {
    /// The directory whose files the mount shows (and where they really live).
    #[arg(long, value_name = "BACKING")]
    pub backing: PathBuf,

    /// Where to mount (created if missing; must be empty). A stale mount left there by a
    /// killed run is removed first, with a message.
    #[arg(long = "mount", value_name = "MOUNT")]
    pub mountpoint: PathBuf,

    /// The trace file to write (must not exist; outside the mount).
    #[arg(long, value_name = "TRACE")]
    pub trace: PathBuf,

    /// Hold the first file fsync/fdatasync after this many milliseconds for --stall-ms
    /// (a disk that stops answering).
    #[arg(long, value_name = "MS", requires = "stall_ms")]
    pub stall_after_ms: Option<u64>,

    /// Length of the stall.
    #[arg(long, value_name = "MS")]
    pub stall_ms: Option<u64>,

    /// The command to run on the mount (after `--`).
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// `durlab report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// One result directory (results/<scenario>/<run-id>) to report on, or two (A B) to
    /// compare.
    #[arg(required = true, num_args = 1..=2, value_name = "RESULTS_DIR")]
    pub dirs: Vec<PathBuf>,

    /// With two directories: also write the comparison (Markdown) to FILE.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// `durlab run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Scenario name (`quickstart` = scenarios/quickstart.toml, looked up in the current
    /// directory, then in the repository durlab was built from) or path to a .toml file.
    pub scenario: String,

    /// Short run: at most 3 s per configuration (the scenario's length if shorter), 1 s per
    /// group-commit point, recovery sweep steps divided by 4, and at most 2 crash trials and
    /// half the image states per trace. Crash trials keep their length (the loss window
    /// depends on it).
    #[arg(long)]
    pub quick: bool,

    /// Crash trials per configuration and fault (default: the scenario's `[crash] trials`;
    /// with --quick at most 2 of them).
    #[arg(long, value_name = "N")]
    pub trials: Option<u64>,

    /// Seconds each crash trial runs before its crash (default: the scenario's `[crash]
    /// trial_secs`, else derived from each configuration's promise as in `durlab crash`).
    #[arg(long, value_name = "SECS")]
    pub trial_secs: Option<f64>,

    /// Crash trials' open-loop target rate, commands per second (`flat-out` for none);
    /// default the scenario's `[workload] rate`. The benchmark matrix always runs flat-out.
    #[arg(long, value_name = "OPS_PER_SEC")]
    pub rate: Option<RateArg>,

    /// How the crash trials' arrivals are spaced: poisson or uniform (default: the
    /// scenario's, else poisson).
    #[arg(long, value_name = "DIST")]
    pub arrivals: Option<Arrivals>,

    /// Where data directories go (each run in <DIR>/<run-id>/<configuration>). Default: a
    /// fresh temporary directory. Removed afterwards.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,

    /// Skip the device probe (then ratios to the device limit are missing from the report).
    #[arg(long)]
    pub no_probe: bool,

    /// --out (results, plots and report.md), --run-id, --json (`{"report": ..., "dir": ...}`
    /// instead of the bare path of report.md), --quiet.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Where results go and what is printed: the output flags of `bench`, `run`, `crash` and
/// `kill9`.
#[derive(Debug, Clone, Default, Args)]
pub struct OutputArgs {
    /// Write result files into DIR instead of results/<scenario>/<run-id>/.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// Run id (default: UTC timestamp plus a random suffix).
    #[arg(long, value_name = "ID")]
    pub run_id: Option<String>,

    /// Print the results as JSON on stdout instead of the table (bench: one object per
    /// configuration; crash and kill9: one per configuration and fault; run: the paths of
    /// report.md and of the result directory).
    #[arg(long)]
    pub json: bool,

    /// No progress output on stderr (what goes to stdout, and the reproduction lines of
    /// violating crash trials, are still printed).
    #[arg(long, short)]
    pub quiet: bool,
}

impl OutputArgs {
    /// `--run-id`, else a new one (UTC timestamp plus a random suffix).
    pub fn run_id(&self) -> String {
        self.run_id
            .clone()
            .unwrap_or_else(crate::results::run_dir::new_run_id)
    }

    /// `--out`, else `results/<scenario>/<run_id>/` in the repository durlab was built from.
    pub fn dir(&self, scenario: &str, run_id: &str) -> PathBuf {
        self.out.clone().unwrap_or_else(|| {
            crate::scenario::locate::repo_root()
                .join("results")
                .join(scenario)
                .join(run_id)
        })
    }
}

/// The engine matrix flags of `bench` and `crash`: each list given replaces the scenario's.
#[derive(Debug, Clone, Default, Args)]
pub struct MatrixArgs {
    /// Fsync policies to run (comma-separated: always, everysec, no, off); replaces the
    /// scenario's list.
    #[arg(long, value_delimiter = ',', value_name = "POLICY")]
    pub policy: Vec<FsyncPolicy>,

    /// I/O backends to run (comma-separated: pwrite, uring, mmap; mmap needs a preallocation);
    /// replaces the scenario's list.
    #[arg(long, value_delimiter = ',', value_name = "BACKEND")]
    pub backend: Vec<BackendKind>,

    /// Log preallocation modes (comma-separated: none, fallocate, zero); replaces the
    /// scenario's list.
    #[arg(long, value_delimiter = ',', value_name = "MODE")]
    pub prealloc: Vec<Prealloc>,

    /// Persistence modes (comma-separated: aof, snapshot, aof+snapshot, hybrid); replaces the
    /// scenario's list. `snapshot` uses the scenario's save points (`[snapshot] save`).
    #[arg(long, value_delimiter = ',', value_name = "MODE")]
    pub persistence: Vec<Persistence>,

    /// What to run (comma-separated: engine, durlab-server, redis); replaces the scenario's
    /// list. engine runs in process; durlab-server starts `durlab serve` on a free loopback
    /// port; redis starts redis-server from PATH in a temporary directory on 127.0.0.1 with
    /// the configuration's persistence mapped to Redis's (appendonly, appendfsync, save,
    /// aof-use-rdb-preamble). Several targets run alternately, configuration by
    /// configuration, with the same client, and each record gets `ratio_to_redis`.
    #[arg(long, value_delimiter = ',', value_name = "TARGET")]
    pub target: Vec<Target>,

    /// Redis target: a further redis-server setting, KEY=VALUE (repeatable; added to the
    /// scenario's `[matrix] redis_config`): aof-use-rdb-preamble, no-appendfsync-on-rewrite,
    /// auto-aof-rewrite-percentage, auto-aof-rewrite-min-size, aof-load-truncated, ... Results
    /// record them.
    #[arg(long = "redis-config", value_name = "KEY=VALUE", value_parser = parse_redis_setting)]
    pub redis_config: Vec<(String, String)>,
}

fn parse_redis_setting(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("expected KEY=VALUE, got '{s}'"))?;
    crate::servers::redis_server::check_setting(k)?;
    Ok((k.to_string(), v.to_string()))
}

/// `durlab bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Scenario name (`quickstart` = scenarios/quickstart.toml, looked up in the current
    /// directory, then in the repository durlab was built from) or path to a .toml file.
    /// Without one: a built-in small SET-heavy workload (80% SET, 20% GET, 64 B values,
    /// 100k uniform keys, 2 writers, 5 s), policy `always`, results in results/adhoc/.
    pub scenario: Option<String>,

    #[command(flatten)]
    pub matrix: MatrixArgs,

    /// Concurrent client threads (default: the scenario's); for RESP targets, the number of
    /// client connections. Several counts (comma-separated, e.g. `1,4,16,32`) run every
    /// configuration once per count, labelled `<label>-w<N>`: a group-commit sweep.
    #[arg(long, value_delimiter = ',', value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub writers: Vec<u32>,

    /// RESP targets: commands each connection sends before reading their replies
    /// (pipelining; default: the scenario's, else 1).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=10000))]
    pub pipeline: Option<u32>,

    /// Run each configuration this many seconds, warm-up included (replaces the scenario's
    /// duration or command count).
    #[arg(long, value_name = "SECS")]
    pub duration: Option<f64>,

    /// Run each configuration until this many write commands are acknowledged instead.
    #[arg(long, value_name = "N", conflicts_with = "duration")]
    pub commands: Option<u64>,

    /// Seconds excluded from every figure at the start of each configuration (default: the
    /// scenario's, else 10% of the duration; 0 with --commands).
    #[arg(long, value_name = "SECS")]
    pub warmup: Option<f64>,

    /// Fixed value size in bytes for every command (default: the scenario's distribution).
    #[arg(long, value_name = "BYTES")]
    pub value_size: Option<u32>,

    /// Seed of the command sequence (default: the scenario's).
    #[arg(long)]
    pub seed: Option<u64>,

    /// Command mix as command=weight pairs, e.g. `set=1` (SET only) or `set=80,get=20`;
    /// replaces the scenario's mix, keeping its per-command options.
    #[arg(long, value_name = "MIX")]
    pub mix: Option<String>,

    /// Where data directories go (each run in <DIR>/<run-id>/<configuration>). Default: a
    /// fresh temporary directory. Data is removed afterwards unless --keep.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,

    /// Keep the data directories after the run.
    #[arg(long)]
    pub keep: bool,

    /// Skip the quick probe at the start (then `ratio_to_probe` is null).
    #[arg(long)]
    pub no_probe: bool,

    /// Do not add the memory-only `off` run when the matrix lacks one (then `ratio_to_off`
    /// is null).
    #[arg(long)]
    pub no_baseline: bool,

    #[command(flatten)]
    pub output: OutputArgs,
}

/// `durlab probe`.
#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// Directory on the file system to measure (default: a fresh temporary directory).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,

    /// Print JSON on stdout instead of the table.
    #[arg(long)]
    pub json: bool,

    /// Short variant (0.5 s per case, 32 MiB streams) as used at the start of `bench`;
    /// default 2 s per case and 256 MiB streams.
    #[arg(long)]
    pub quick: bool,
}

/// `durlab crash`.
#[derive(Debug, Clone, Default, Args)]
pub struct CrashArgs {
    /// Scenario name or .toml path, as for `bench` (its workload, writers and matrix).
    /// Without one: the built-in small SET-heavy workload.
    pub scenario: Option<String>,

    /// Faults to inject (comma-separated): kill9, fsync-eio, enospc, short-write,
    /// fsync-stall, bitflip, zero-sector, and the crash images of an I/O trace: power-loss,
    /// prefix, torn, reorder. RESP targets (--target durlab-server,redis) take kill9 and the
    /// image faults: for those, the server runs unmodified on the recording filesystem
    /// (`durlab fs`) and a fresh server is started on every crash image.
    #[arg(long, required = true, value_delimiter = ',', value_name = "FAULT")]
    pub fault: Vec<FaultKind>,

    /// Judge every configuration against this policy's promise instead of its own (for
    /// example `--policy no --contract always`: what would a team that assumed `always`
    /// lose?). Violations then measure the gap between the two.
    #[arg(long, value_name = "POLICY")]
    pub contract: Option<FsyncPolicy>,

    #[command(flatten)]
    pub matrix: MatrixArgs,

    /// Trials per configuration and fault.
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub trials: u64,

    /// Run only trial K (0-based) with the same derived seed: what the reproduction line of a
    /// violating trial uses.
    #[arg(long, value_name = "K")]
    pub trial: Option<u64>,

    /// Image faults: crash states per trace spread over the run from its earliest crash time
    /// (past the policy's bound, see --trial-secs), plus up to 4x as many just before and
    /// after syncs and renames (a seeded sample when there are more).
    #[arg(long, default_value_t = 16, value_name = "N")]
    pub states: usize,

    /// Seed of the command sequence and of every trial (default: the scenario's).
    #[arg(long, value_name = "S")]
    pub seed: Option<u64>,

    /// Seconds each trial runs the workload before its crash. Default: derived from each
    /// configuration's promise under the fault: 6 s for everysec and no under the image
    /// faults (crashes in [2 s, 6 s], past everysec's 2 s bound), 45 s for no with
    /// --writeback (crashes past the 35 s dirty expiry), else 1 s (crashes in [0.1, 1.0] of
    /// it). A shorter value is honoured and marks the results (short_trial).
    #[arg(long, value_name = "SECS")]
    pub trial_secs: Option<f64>,

    /// Length of the injected fdatasync stall for fsync-stall (and --stall), ms.
    #[arg(long, default_value_t = 1000, value_name = "MS")]
    pub stall_ms: u64,

    /// kill9 and the image faults: stall one fdatasync for --stall-ms and crash inside the
    /// stall, so the loss window includes it (policies that sync while writing).
    #[arg(long)]
    pub stall: bool,

    /// Concurrent writer threads (default: the scenario's).
    #[arg(long, value_name = "N")]
    pub writers: Option<u32>,

    /// Image faults: unsynced data older than the kernel's dirty expiry at the cut counts as
    /// written back (judges policy `no` at its realistic bound instead of its worst case).
    #[arg(long)]
    pub writeback: bool,

    /// Open-loop target rate, commands per second over all writers: commands are issued at
    /// seeded arrival times whatever the target's speed (like memtier's --rate), for kill9,
    /// fsync-stall and the image faults; `flat-out` issues each command when the previous one
    /// is answered. Default: the scenario's `[workload] rate`, else flat-out. Results record
    /// the target and the achieved rate. The in-process backend faults and media damage run
    /// flat-out.
    #[arg(long, value_name = "OPS_PER_SEC")]
    pub rate: Option<RateArg>,

    /// How the arrivals of the target rate are spaced: poisson (exponential gaps) or uniform
    /// (fixed gaps). Default: the scenario's, else poisson.
    #[arg(long, value_name = "DIST")]
    pub arrivals: Option<Arrivals>,

    /// Where to aim crashes (comma-separated): steady (the scenario's own save points and
    /// rewrites), snapshot (the worker saves back to back: modes snapshot, aof+snapshot,
    /// hybrid), rewrite (the worker rewrites back to back: mode hybrid). Default: the
    /// scenario's `[crash] states`, else steady.
    #[arg(long, value_delimiter = ',', value_name = "PHASE")]
    pub phase: Vec<Phase>,

    /// Image faults: when a create, rename or remove survives a power loss: pessimistic (only
    /// after an fsync of its directory, POSIX) or ext4-ordered (after any later sync: ext4's
    /// data=ordered journal). Default: the scenario's `[crash] dir_model`, else pessimistic.
    #[arg(long, value_name = "MODEL")]
    pub dir_model: Option<DirModel>,

    /// live-copy: what the backup copies, `tree` (cp -r or tar of the data directory) or a
    /// comma-separated list of paths inside it, copied in order (a path missing at its turn
    /// is skipped, as a script's `cp` line fails; e.g. `appendonly.aof,dump.rdb`).
    /// Default: the scenario's `[crash] copy`, else `tree`.
    #[arg(long, value_name = "SOURCE")]
    pub copy: Option<crate::crashlab::images::copy::CopySource>,

    /// live-copy: the copy's read rate, MiB/s. Default: the scenario's `[crash]
    /// copy_rate_mib`, else 100 (a backup disk or a gigabit link).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=100_000), value_name = "MIB")]
    pub copy_rate_mib: Option<u64>,

    /// live-copy: when copies are taken. `live`: at any moment while the server writes;
    /// `safe`: after the server's own save or rewrite, asked for and waited for, `--states` of
    /// them per trial (RESP targets: BGREWRITEAOF or BGSAVE, then INFO persistence; target
    /// engine: the worker's Engine::save, a rewrite in mode hybrid, asked for through its ack
    /// page and published once durable; not in mode aof, which has no save);
    /// `stop-copy-start`: after a clean stop (one per trial). Default: the scenario's `[crash]
    /// procedure`, else live.
    #[arg(long, value_name = "PROCEDURE")]
    pub procedure: Option<crate::crashlab::images::copy::Procedure>,

    /// live-copy: also run this many real copies per trial at the procedure's moments, each
    /// restored and judged beside the simulated copy of the same moment: with `--copy tree`,
    /// alternately `cp -r` and `tar` of the data directory (a RESP target's mount, the engine
    /// worker's directory); with `--copy a,b`, the runbook's script, one `cp -r --parents` line per
    /// path in order (a missing path fails its line, recorded, and the script goes on).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub real_copies: u32,

    /// Where data directories, ack pages and kept crash states go (<DIR>/<run-id>/...).
    /// Default: a fresh temporary directory. Violating trials are always kept.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,

    /// Image faults: where crash images are built and recovered (scratch; removed after the
    /// run). Default: /dev/shm when it is a tmpfs, else each trial's directory. Images need
    /// no durable storage; a violating image is copied into its trial directory.
    #[arg(long, value_name = "DIR")]
    pub image_dir: Option<PathBuf>,

    /// Keep every trial's data directory, not only violating ones.
    #[arg(long)]
    pub keep: bool,

    #[command(flatten)]
    pub output: OutputArgs,

    /// TEST ONLY: run the engine over a lying backend whose log write+fdatasync does not sync
    /// (`crashlab::lying`), to show that the checker can fail.
    #[arg(long, hide = true)]
    pub broken_ack_before_sync: bool,

    /// TEST ONLY: verify against the command sequence of this seed instead of the one that
    /// ran (a planted divergence, to show that the checker can fail).
    #[arg(long, hide = true, value_name = "S")]
    pub oracle_seed: Option<u64>,

    /// TEST ONLY: run the engine over a lying backend that skips the directory fsync after a
    /// rename (`crashlab::lying`), to show that the directory-entry model can fail.
    #[arg(long, hide = true)]
    pub broken_skip_dir_sync: bool,
    /// TEST ONLY: run the engine over a lying backend that reports failed fdatasyncs as done
    /// (`crashlab::lying`), to show that the `fsync-eio` check can fail.
    #[arg(long, hide = true)]
    pub broken_swallow_sync_errors: bool,
    /// TEST ONLY: run the engine over a lying backend whose fdatasync returns before the real
    /// one completes (`crashlab::lying`), to show that the everysec lag check can fail.
    #[arg(long, hide = true)]
    pub broken_early_sync: bool,
    /// TEST ONLY: live-copy --procedure safe copies as soon as it has asked for the save or
    /// rewrite, without waiting for it to finish (`crashlab::backup`), to show that a copy
    /// across it can fail.
    #[arg(long, hide = true)]
    pub broken_copy_before_save_done: bool,
}

/// `durlab worker` (internal, started by `durlab crash`).
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Scenario name or path, as given to `crash`.
    pub scenario: Option<String>,
    /// Seed of the command sequence.
    #[arg(long)]
    pub seed: u64,
    /// Fsync policy.
    #[arg(long)]
    pub policy: FsyncPolicy,
    /// I/O backend.
    #[arg(long)]
    pub backend: BackendKind,
    /// Log preallocation.
    #[arg(long)]
    pub prealloc: Prealloc,
    /// Persistence mode.
    #[arg(long)]
    pub persistence: Persistence,
    /// Writer threads.
    #[arg(long)]
    pub writers: u32,
    /// Data directory.
    #[arg(long)]
    pub dir: PathBuf,
    /// The ack page file to create.
    #[arg(long)]
    pub ack_page: PathBuf,
    /// LSNs the ack page holds.
    #[arg(long)]
    pub capacity: u64,
    /// Exit by itself after this many seconds.
    #[arg(long)]
    pub max_secs: f64,
    /// Stall the n-th fdatasync after open.
    #[arg(long, requires = "stall_ms")]
    pub stall_sync: Option<u64>,
    /// Length of that stall, ms.
    #[arg(long)]
    pub stall_ms: Option<u64>,
    /// Record every file operation of the engine to this trace file.
    #[arg(long)]
    pub trace: Option<PathBuf>,
    /// TEST ONLY: a lying backend whose log write+fdatasync does not sync.
    #[arg(long)]
    pub broken_ack_before_sync: bool,
    /// TEST ONLY: a lying backend that skips the directory fsync after a rename.
    #[arg(long)]
    pub broken_skip_dir_sync: bool,
    /// TEST ONLY: a lying backend that reports failed fdatasyncs as done.
    #[arg(long)]
    pub broken_swallow_sync_errors: bool,
    /// TEST ONLY: a lying backend whose fdatasync returns before the real one completes.
    #[arg(long)]
    pub broken_early_sync: bool,
    /// Save (or rewrite) back to back: `snapshot` or `rewrite`; `steady` does nothing extra.
    #[arg(long, default_value = "steady")]
    pub phase: Phase,
    /// Open loop at this many commands per second over all writers (default: flat-out).
    #[arg(long, requires = "arrival_seed")]
    pub rate: Option<f64>,
    /// How the arrivals of --rate are spaced.
    #[arg(long, default_value = "poisson")]
    pub arrivals: Arrivals,
    /// Seed of the arrival times of --rate.
    #[arg(long)]
    pub arrival_seed: Option<u64>,
}
