//! Runs one engine configuration under a workload and measures it.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::Relaxed};
use std::time::{Duration, Instant};

use durlab_engine::{Engine, EngineConfig, Lsn, Stats};

use super::latency::Latency;
use super::pacing::{Pacer, Rate};
use super::resources;
use crate::progress::Progress;
use crate::workload::Workload;

/// When a run stops.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stop {
    /// After this long (the warm-up included).
    After(Duration),
    /// Once this many write commands were acknowledged (LSN reached; reads not counted).
    Commands(u64),
}

/// How one configuration is driven.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunLimits {
    pub writers: u32,
    pub stop: Stop,
    /// Excluded from every figure: latencies, ops, engine counters, CPU time.
    pub warmup: Duration,
}

/// What one run measured (over the window after the warm-up).
#[derive(Debug, Clone)]
pub struct Measurement {
    /// Commands acknowledged in the window (reads and writes).
    pub ops: u64,
    pub reads: u64,
    pub writes: u64,
    /// Length of the window.
    pub seconds: f64,
    /// All writers' acknowledgement latencies in the window, merged.
    pub latency: Latency,
    /// Engine counters over the window (`batch_records_max` over the whole run).
    pub stats: Stats,
    /// CPU time of the whole process (driver + engine threads) over the window.
    pub cpu_seconds: f64,
    /// Peak RSS of the process during this run, MiB.
    pub max_rss_mb: f64,
    /// Highest LSN at the end (every LSN 1..=last_lsn carries that write command of the sequence).
    pub last_lsn: u64,
    pub warmup_seconds: f64,
    pub data_dir: PathBuf,
    /// Write commands per second over each ~100 ms interval of the window, in time order.
    pub write_rates: Vec<f64>,
}

impl Measurement {
    /// Commands per second over the window.
    pub fn ops_per_sec(&self) -> f64 {
        if self.seconds > 0.0 {
            self.ops as f64 / self.seconds
        } else {
            0.0
        }
    }
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    #[error("opening the engine in {dir}: {source}")]
    Open {
        dir: PathBuf,
        #[source]
        source: durlab_engine::Error,
    },
    #[error("writer {writer} failed: {source}")]
    Writer {
        writer: u32,
        #[source]
        source: durlab_engine::Error,
    },
}

/// One writer's share of the results.
#[derive(Debug)]
pub struct WriterResult {
    pub latency: Latency,
    pub reads: u64,
    pub writes: u64,
    pub last_ack: Instant,
}

/// Observes a writer's write commands: the crash lab publishes them to its ack page.
pub trait AckHook: Sync {
    /// `lsn` was assigned to the next write command (called under the engine's lock: cheap).
    fn issued(&self, _lsn: Lsn) {}

    /// The write command with `lsn` was acknowledged. Returning false stops this writer.
    fn acked(&self, _lsn: Lsn) -> bool {
        true
    }
}

/// The hook that observes nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoHook;

impl AckHook for NoHook {}

/// When one writer stops.
#[derive(Debug, Clone, Copy)]
pub struct WriterLimits<'a> {
    /// Latencies and counts start at this instant.
    pub measure_from: Instant,
    pub deadline: Option<Instant>,
    /// Stop everyone once this LSN is acknowledged.
    pub target_lsn: Lsn,
    pub stop: &'a AtomicBool,
    /// Open loop: issue commands at this rate's arrival times ([`Pace`]); `None`: flat-out
    /// (each command as soon as the previous one is acknowledged: benchmarks).
    pub pace: Option<Pace>,
}

/// The open-loop schedule all writers of a run share ([`super::pacing`]): each writer paces
/// its own stream of `rate / streams`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pace {
    pub rate: Rate,
    /// Writers sharing the rate.
    pub streams: u32,
    /// Seed of the arrival times (the trial's, so that trials differ and repeat).
    pub seed: u64,
    /// When arrival time 0 is.
    pub start: Instant,
}

impl<'a> WriterLimits<'a> {
    /// The limits of a run under `limits` that starts at `start`.
    pub fn new(limits: RunLimits, start: Instant, stop: &'a AtomicBool) -> WriterLimits<'a> {
        WriterLimits {
            measure_from: start + limits.warmup,
            deadline: match limits.stop {
                Stop::After(d) => Some(start + d),
                Stop::Commands(_) => None,
            },
            target_lsn: match limits.stop {
                Stop::Commands(n) => n,
                Stop::After(_) => u64::MAX,
            },
            stop,
            pace: None,
        }
    }
}

impl WriterResult {
    /// Nothing measured yet.
    pub fn new() -> WriterResult {
        WriterResult {
            latency: Latency::new(),
            reads: 0,
            writes: 0,
            last_ack: Instant::now(),
        }
    }

    /// Counts one acknowledged command at `now` that took `ns`, if `now` is in the window.
    #[inline]
    pub fn record(&mut self, now: Instant, measure_from: Instant, is_read: bool, ns: u64) {
        if now >= measure_from {
            self.latency.record_ns(ns);
            if is_read {
                self.reads += 1;
            } else {
                self.writes += 1;
            }
        }
        self.last_ack = now;
    }
}

impl Default for WriterResult {
    fn default() -> Self {
        Self::new()
    }
}

/// Waits until `writers` have `finished`, showing progress (`lsn()`), and returns
/// `sample()` taken once the window opens at `measure_from` (or at the end if it never
/// opened), and the write rate (LSNs per second) of each ~100 ms interval of the window in
/// time order: the series the report's throughput intervals resample.
pub fn watch<T>(
    writers: u32,
    finished: &AtomicU32,
    start: Instant,
    measure_from: Instant,
    progress: &mut Progress,
    lsn: impl Fn() -> u64,
    sample: impl Fn() -> T,
) -> (T, Vec<f64>) {
    let mut before = None;
    let mut rates = Vec::new();
    let mut last: Option<(Instant, u64)> = None;
    while finished.load(Relaxed) < writers {
        let now = Instant::now();
        if before.is_none() && now >= measure_from {
            before = Some(sample());
        }
        let at = lsn();
        progress.tick(now - start, at);
        if before.is_some() {
            if let Some((t0, l0)) = last {
                let secs = (now - t0).as_secs_f64();
                if secs > 0.0 {
                    rates.push(at.saturating_sub(l0) as f64 / secs);
                }
            }
            last = Some((now, at));
        }
        let next = if before.is_none() {
            measure_from.min(now + Duration::from_millis(100))
        } else {
            now + Duration::from_millis(100)
        };
        std::thread::sleep(
            next.saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1)),
        );
    }
    (before.unwrap_or_else(sample), rates)
}

/// The writers' results merged, and the window's end (the last acknowledgement).
pub fn merge(results: Vec<WriterResult>, measure_from: Instant) -> (WriterResult, Instant) {
    let mut all = WriterResult::new();
    let mut end = measure_from;
    for r in results {
        all.latency.merge(&r.latency);
        all.reads += r.reads;
        all.writes += r.writes;
        end = end.max(r.last_ack);
    }
    (all, end)
}

/// Engine counters over the window from `before` to `after` (`batch_records_max` is
/// `after`'s: the largest since open).
pub fn window_stats(before: &Stats, after: &Stats) -> Stats {
    Stats {
        records: after.records.saturating_sub(before.records),
        bytes_written: after.bytes_written.saturating_sub(before.bytes_written),
        write_batches: after.write_batches.saturating_sub(before.write_batches),
        batch_records_max: after.batch_records_max,
        syncs: after.syncs.saturating_sub(before.syncs),
        prealloc_bytes: after.prealloc_bytes.saturating_sub(before.prealloc_bytes),
    }
}

/// Opens an engine with `config` (its directory should be empty), drives it with `workload`
/// under `limits`, and returns what was measured. The engine is closed on return; the data
/// directory is left in place.
///
/// # Errors
/// [`BenchError::Open`] when the engine does not open (e.g. io_uring refused), and
/// [`BenchError::Writer`] when a command fails (the engine is then poisoned).
pub fn run(
    config: EngineConfig,
    workload: &Workload,
    limits: RunLimits,
    progress: &mut Progress,
) -> Result<Measurement, BenchError> {
    let data_dir = config.dir.clone();
    let (engine, _report) = Engine::open(config).map_err(|source| BenchError::Open {
        dir: data_dir.clone(),
        source,
    })?;
    resources::reset_peak_rss();

    let start = Instant::now();
    let stop = AtomicBool::new(false);
    let lim = WriterLimits::new(limits, start, &stop);
    let measure_from = lim.measure_from;
    let finished = AtomicU32::new(0);

    let (results, before, cpu_before, write_rates) = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..limits.writers)
            .map(|id| {
                let (engine, finished) = (&engine, &finished);
                scope.spawn(move || {
                    let (r, error) = drive(engine, workload, id, lim, &NoHook);
                    let r = match error {
                        Some(e) => Err(e),
                        None => Ok(r),
                    };
                    finished.fetch_add(1, Relaxed);
                    r
                })
            })
            .collect();

        // Counters at the start of the window.
        let ((before, cpu_before), rates) = watch(
            limits.writers,
            &finished,
            start,
            measure_from,
            progress,
            || engine.last_lsn(),
            || (engine.stats(), resources::cpu_time()),
        );
        let results: Vec<_> = handles
            .into_iter()
            .map(|h| h.join().expect("writer thread panicked"))
            .collect();
        (results, before, cpu_before, rates)
    });
    let cpu_after = resources::cpu_time();
    let after = engine.stats();
    let last_lsn = engine.last_lsn();
    let max_rss_mb = resources::peak_rss_mb();
    drop(engine);

    let results = results
        .into_iter()
        .enumerate()
        .map(|(id, r)| {
            r.map_err(|source| BenchError::Writer {
                writer: id as u32,
                source,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let (all, end) = merge(results, measure_from);
    Ok(Measurement {
        ops: all.reads + all.writes,
        reads: all.reads,
        writes: all.writes,
        seconds: end.saturating_duration_since(measure_from).as_secs_f64(),
        latency: all.latency,
        stats: window_stats(&before, &after),
        cpu_seconds: cpu_after.saturating_sub(cpu_before).as_secs_f64(),
        max_rss_mb,
        last_lsn,
        warmup_seconds: limits.warmup.as_secs_f64(),
        data_dir,
        write_rates,
    })
}

/// One writer's loop, until `limits` say stop, `hook` declines an acknowledgement, or a
/// command fails (then it sets `limits.stop` for everyone and returns the error next to what
/// it measured). Flat-out, one clock read per command: each command's latency runs from the
/// end of the previous one (so it includes the few nanoseconds of driver work in between).
/// Paced ([`WriterLimits::pace`]), each command waits for its scheduled arrival and its
/// latency runs from that arrival, so time spent behind schedule counts (open loop).
pub fn drive(
    engine: &Engine,
    workload: &Workload,
    id: u32,
    limits: WriterLimits<'_>,
    hook: &dyn AckHook,
) -> (WriterResult, Option<durlab_engine::Error>) {
    let mut stream = workload.writer(id);
    let mut measured = WriterResult::new();
    let mut pacer = limits
        .pace
        .map(|p| Pacer::new(p.rate, p.streams, id, p.seed, p.start));
    let mut error = None;
    loop {
        let arrival = match &mut pacer {
            Some(p) => match p.wait_next(limits.deadline, || limits.stop.load(Relaxed)) {
                Some(at) => at,
                None => break,
            },
            None => measured.last_ack,
        };
        let is_read = stream.next_is_read();
        let result = if is_read {
            engine.execute(stream.read_command()).map(|_| 0)
        } else {
            engine
                .execute_next(|lsn| {
                    hook.issued(lsn);
                    stream.write_command(lsn)
                })
                .map(|ack| ack.lsn.unwrap_or(0))
        };
        let lsn = match result {
            Ok(lsn) => lsn,
            Err(e) => {
                limits.stop.store(true, Relaxed);
                error = Some(e);
                break;
            }
        };
        let keep_going = lsn == 0 || hook.acked(lsn);
        let now = Instant::now();
        let ns = now.saturating_duration_since(arrival).as_nanos() as u64;
        measured.record(now, limits.measure_from, is_read, ns);
        if lsn >= limits.target_lsn || !keep_going {
            limits.stop.store(true, Relaxed);
        }
        if limits.deadline.is_some_and(|d| now >= d) || limits.stop.load(Relaxed) {
            break;
        }
    }
    (measured, error)
}
