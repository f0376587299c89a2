//! Drives a RESP server (durlab serve or redis-server) with the workload over N connections,
//! each sending `pipeline` commands at a time, and measures it like [`super::bench::run`].

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::time::Instant;

use durlab_engine::Stats;

use super::bench::{
    Measurement, RunLimits, WriterLimits, WriterResult, merge, watch, window_stats,
};
use super::resources;
use crate::progress::Progress;
use crate::resp::Value;
use crate::servers::client::ClientError;
use crate::servers::{ServerProcess, for_resp};
use crate::workload::Workload;

/// Why a RESP run failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RespBenchError {
    #[error("connection {conn}: {source}")]
    Client {
        conn: u32,
        #[source]
        source: ClientError,
    },
    #[error("connection {conn}: the server refused a command: {reply}")]
    Refused { conn: u32, reply: String },
}

/// Error replies that mean the server failed (not a command's own error such as WRONGTYPE).
fn is_failure(reply: &Value) -> bool {
    matches!(reply, Value::Error(e) if e.starts_with("MISCONF") || e.starts_with("ERR Protocol") || e.starts_with("LOADING"))
}

/// Counters of `INFO persistence` that map onto [`Stats`]: durlab serve's `durlab_*`
/// figures; for Redis only the AOF size (`aof_current_size`) as bytes written.
fn server_stats(server: &ServerProcess) -> Stats {
    let fields = server.info_persistence().unwrap_or_default();
    let get = |k: &str| {
        fields
            .iter()
            .find(|(f, _)| f == k)
            .and_then(|(_, v)| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let durlab = fields.iter().any(|(f, _)| f == "durlab_syncs");
    Stats {
        records: get("durlab_records"),
        bytes_written: if durlab {
            get("durlab_bytes_written")
        } else {
            get("aof_current_size")
        },
        write_batches: get("durlab_write_batches"),
        batch_records_max: get("durlab_batch_records_max"),
        syncs: get("durlab_syncs"),
        prealloc_bytes: 0,
    }
}

/// Drives `server` with `workload`: `limits.writers` connections, each sending `pipeline`
/// commands (reads and writes in the workload's mix) and then reading their replies. Write
/// command n of the sequence is drawn from one shared counter, so with several connections
/// the server may apply neighbours in another order (fine for speed; crash trials use one
/// connection). A command's latency is from the send of its pipeline to its reply.
///
/// `cpu_seconds` and `max_rss_mb` are the server process's; `syncs`, `avg_batch` and
/// `max_batch` come from durlab serve's INFO (0 for Redis, which does not count them);
/// `bytes_written` from INFO (Redis: growth of `aof_current_size`); `last_lsn` is the
/// number of write commands issued.
///
/// # Errors
/// A connection failing, or the server refusing commands (MISCONF, protocol error).
pub fn run(
    server: &ServerProcess,
    workload: &Workload,
    limits: RunLimits,
    pipeline: u32,
    progress: &mut Progress,
) -> Result<Measurement, RespBenchError> {
    let pipeline = pipeline.max(1);
    let auto = server.spec().target.auto_id();
    let pid = server.pid();
    resources::reset_peak_rss_of(&pid.to_string());
    let start = Instant::now();
    let stop = AtomicBool::new(false);
    let lim = WriterLimits::new(limits, start, &stop);
    let measure_from = lim.measure_from;
    let next = AtomicU64::new(1);
    let finished = AtomicU32::new(0);
    let (results, (before, write_rates)) = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..limits.writers)
            .map(|conn| {
                let (next, finished) = (&next, &finished);
                scope.spawn(move || {
                    let r = (|| {
                        let err = |source| RespBenchError::Client { conn, source };
                        let mut client = server.connect().map_err(err)?;
                        let mut stream = workload.writer(conn);
                        let mut measured = WriterResult::new();
                        let mut kinds = Vec::with_capacity(pipeline as usize);
                        loop {
                            kinds.clear();
                            let mut top = 0;
                            for _ in 0..pipeline {
                                if stream.next_is_read() {
                                    client.queue_command(&stream.read_command(), auto);
                                    kinds.push(true);
                                } else {
                                    let n = next.fetch_add(1, Relaxed);
                                    client.queue_command(&for_resp(stream.write_command(n)), auto);
                                    kinds.push(false);
                                    top = top.max(n);
                                }
                            }
                            let sent = Instant::now();
                            client.flush().map_err(err)?;
                            for &is_read in &kinds {
                                let reply = client.read().map_err(err)?;
                                if is_failure(&reply) {
                                    return Err(RespBenchError::Refused {
                                        conn,
                                        reply: format!("{reply:?}"),
                                    });
                                }
                                let now = Instant::now();
                                let ns = (now - sent).as_nanos() as u64;
                                measured.record(now, measure_from, is_read, ns);
                            }
                            if top >= lim.target_lsn {
                                lim.stop.store(true, Relaxed);
                            }
                            let last = measured.last_ack;
                            if lim.deadline.is_some_and(|d| last >= d) || lim.stop.load(Relaxed) {
                                break;
                            }
                        }
                        Ok(measured)
                    })();
                    if r.is_err() {
                        lim.stop.store(true, Relaxed);
                    }
                    finished.fetch_add(1, Relaxed);
                    r
                })
            })
            .collect();
        let before = watch(
            limits.writers,
            &finished,
            start,
            measure_from,
            progress,
            || next.load(Relaxed) - 1,
            || (server_stats(server), resources::cpu_time_of(pid)),
        );
        let results: Vec<_> = handles
            .into_iter()
            .map(|h| h.join().expect("connection thread panicked"))
            .collect();
        (results, before)
    });
    let after = (server_stats(server), resources::cpu_time_of(pid));
    let max_rss_mb = resources::peak_rss_mb_of(&pid.to_string()).unwrap_or(0.0);
    let (all, end) = merge(
        results.into_iter().collect::<Result<Vec<_>, _>>()?,
        measure_from,
    );
    Ok(Measurement {
        ops: all.reads + all.writes,
        reads: all.reads,
        writes: all.writes,
        seconds: end.saturating_duration_since(measure_from).as_secs_f64(),
        latency: all.latency,
        stats: window_stats(&before.0, &after.0),
        cpu_seconds: after.1.saturating_sub(before.1).as_secs_f64(),
        max_rss_mb,
        last_lsn: next.load(Relaxed) - 1,
        warmup_seconds: limits.warmup.as_secs_f64(),
        data_dir: server.spec().dir.clone(),
        write_rates,
    })
}
