//! Counters the engine keeps for benchmarks and reports.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// A snapshot of the engine's counters since open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Log records appended (one per acknowledged-or-pending write command).
    pub records: u64,
    /// Bytes handed to the backend's write calls for log records (excluding preallocation).
    pub bytes_written: u64,
    /// Write calls that carried records: each carries one batch.
    pub write_batches: u64,
    /// Largest number of records in one batch.
    pub batch_records_max: u64,
    /// fdatasync calls issued for the log (inline or background).
    pub syncs: u64,
    /// Bytes written as preallocation (zeros) or reserved with fallocate.
    pub prealloc_bytes: u64,
}

impl Stats {
    /// Average records per write call (group commit / batching factor); 0 with no writes.
    pub fn batch_records_avg(&self) -> f64 {
        if self.write_batches == 0 {
            0.0
        } else {
            self.records as f64 / self.write_batches as f64
        }
    }
}

/// Live counters, updated by the writer without locks.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub records: AtomicU64,
    pub bytes_written: AtomicU64,
    pub write_batches: AtomicU64,
    pub batch_records_max: AtomicU64,
    pub syncs: AtomicU64,
    pub prealloc_bytes: AtomicU64,
}

impl Counters {
    /// Counts one written batch. Called only by the flush leader, of which there is one at a
    /// time (the writer's `flushing` flag, set under the engine's lock), so plain loads and
    /// stores suffice: no locked read-modify-write on the hot path.
    pub fn batch(&self, records: u64, bytes: u64) {
        let add = |c: &AtomicU64, n: u64| c.store(c.load(Relaxed) + n, Relaxed);
        add(&self.records, records);
        add(&self.bytes_written, bytes);
        add(&self.write_batches, 1);
        if records > self.batch_records_max.load(Relaxed) {
            self.batch_records_max.store(records, Relaxed);
        }
    }

    pub fn prealloc(&self, bytes: u64, synced: bool) {
        self.prealloc_bytes.fetch_add(bytes, Relaxed);
        if synced {
            self.sync();
        }
    }

    pub fn sync(&self) {
        self.syncs.fetch_add(1, Relaxed);
    }

    pub fn snapshot(&self) -> Stats {
        Stats {
            records: self.records.load(Relaxed),
            bytes_written: self.bytes_written.load(Relaxed),
            write_batches: self.write_batches.load(Relaxed),
            batch_records_max: self.batch_records_max.load(Relaxed),
            syncs: self.syncs.load(Relaxed),
            prealloc_bytes: self.prealloc_bytes.load(Relaxed),
        }
    }
}
