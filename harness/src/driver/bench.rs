//! Runs one engine configuration under a workload and measures it.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::Relaxed};
use std::time::{Duration, Instant};

use durlab_engine::{Engine, EngineConfig, Stats};

use super::latency::Latency;
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
struct WriterResult {
    latency: Latency,
    reads: u64,
    writes: u64,
    last_ack: Instant,
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
    let measure_from = start + limits.warmup;
    let deadline = match limits.stop {
        Stop::After(d) => Some(start + d),
        Stop::Commands(_) => None,
    };
    let target_lsn = match limits.stop {
        Stop::Commands(n) => n,
        Stop::After(_) => u64::MAX,
    };
    let stop = AtomicBool::new(false);
    let finished = AtomicU32::new(0);

    let (results, before, cpu_before) = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..limits.writers)
            .map(|id| {
                let (engine, stop, finished) = (&engine, &stop, &finished);
                scope.spawn(move || {
                    let r = drive(
                        engine,
                        workload,
                        id,
                        measure_from,
                        deadline,
                        target_lsn,
                        stop,
                    );
                    if r.is_err() {
                        stop.store(true, Relaxed);
                    }
                    finished.fetch_add(1, Relaxed);
                    r
                })
            })
            .collect();

        // Counters at the start of the window.
        let mut before = None;
        while finished.load(Relaxed) < limits.writers {
            let now = Instant::now();
            if before.is_none() && now >= measure_from {
                before = Some((engine.stats(), resources::cpu_time()));
            }
            progress.tick(now - start, engine.last_lsn());
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
        let (before, cpu_before) =
            before.unwrap_or_else(|| (engine.stats(), resources::cpu_time()));
        let results: Vec<_> = handles
            .into_iter()
            .map(|h| h.join().expect("writer thread panicked"))
            .collect();
        (results, before, cpu_before)
    });
    let cpu_after = resources::cpu_time();
    let after = engine.stats();
    let last_lsn = engine.last_lsn();
    let max_rss_mb = resources::peak_rss_mb();
    drop(engine);

    let mut latency = Latency::new();
    let (mut reads, mut writes) = (0, 0);
    let mut end = measure_from;
    for (id, r) in results.into_iter().enumerate() {
        let r = r.map_err(|source| BenchError::Writer {
            writer: id as u32,
            source,
        })?;
        latency.merge(&r.latency);
        reads += r.reads;
        writes += r.writes;
        end = end.max(r.last_ack);
    }
    Ok(Measurement {
        ops: reads + writes,
        reads,
        writes,
        seconds: end.saturating_duration_since(measure_from).as_secs_f64(),
        latency,
        stats: Stats {
            records: after.records - before.records,
            bytes_written: after.bytes_written - before.bytes_written,
            write_batches: after.write_batches - before.write_batches,
            batch_records_max: after.batch_records_max,
            syncs: after.syncs - before.syncs,
            prealloc_bytes: after.prealloc_bytes - before.prealloc_bytes,
        },
        cpu_seconds: cpu_after.saturating_sub(cpu_before).as_secs_f64(),
        max_rss_mb,
        last_lsn,
        warmup_seconds: limits.warmup.as_secs_f64(),
        data_dir,
    })
}

/// One writer's loop. One clock read per command: each command's latency runs from the end
/// of the previous one (so it includes the few nanoseconds of driver work in between).
fn drive(
    engine: &Engine,
    workload: &Workload,
    id: u32,
    measure_from: Instant,
    deadline: Option<Instant>,
    target_lsn: u64,
    stop: &AtomicBool,
) -> Result<WriterResult, durlab_engine::Error> {
    let mut stream = workload.writer(id);
    let mut latency = Latency::new();
    let (mut reads, mut writes) = (0u64, 0u64);
    let mut last = Instant::now();
    loop {
        let is_read = stream.next_is_read();
        let lsn = if is_read {
            engine.execute(stream.read_command())?;
            0
        } else {
            engine
                .execute_next(|lsn| stream.write_command(lsn))?
                .lsn
                .unwrap_or(0)
        };
        let now = Instant::now();
        if now >= measure_from {
            latency.record_ns((now - last).as_nanos() as u64);
            if is_read {
                reads += 1;
            } else {
                writes += 1;
            }
        }
        last = now;
        if lsn >= target_lsn {
            stop.store(true, Relaxed);
        }
        if deadline.is_some_and(|d| now >= d) || stop.load(Relaxed) {
            break;
        }
    }
    Ok(WriterResult {
        latency,
        reads,
        writes,
        last_ack: last,
    })
}
