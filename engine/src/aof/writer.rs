//! The log writer: leader/follower group commit.
//!
//! Records are encoded into a shared pending buffer under the engine's lock, in LSN order. A
//! writer waiting for its acknowledgement either finds a flush already covering it, or becomes
//! the leader: it takes the whole pending buffer, releases the lock, and issues one write (and
//! under `always` the linked fdatasync). While that I/O runs the next batch forms in the other
//! buffer. Under `everysec` and `no` the same batching turns many writers' records into one
//! write call; the acknowledgement still waits for that write to return. With backend `mmap`
//! (outside `always`) that write is a memory copy, done without releasing the lock: no writer
//! ever waits for another's flush.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, MutexGuard};

use super::signal::AckSignal;
use super::{prealloc, record};
use crate::Lsn;
use crate::backend::{BackendFile, BackendKind};
use crate::config::{EngineConfig, FsyncPolicy, Prealloc};
use crate::error::{Error, Result};
use crate::keyspace::Command;
use crate::recovery::LogPosition;
use crate::stats::Counters;

/// The file appends currently go to. A flush leader takes an `Arc` of it together with its
/// batch, so a switch to a new file (hybrid rewrite) never redirects a batch in flight.
#[derive(Debug)]
pub(crate) struct Segment {
    pub(crate) file: Arc<dyn BackendFile>,
    pub(crate) path: PathBuf,
}

/// The writer's mutable state; lives inside the engine's mutex next to the keyspace, so that
/// apply order, LSN order and log order are one order.
#[derive(Debug)]
pub(crate) struct LogState {
    /// `None` for an engine without a log (only the poison flag is used then).
    segment: Option<Arc<Segment>>,
    pending: Vec<u8>,
    /// The buffer of the previous batch, kept for reuse.
    spare: Vec<u8>,
    pending_records: u64,
    pending_last_lsn: Lsn,
    /// A leader is writing a batch with the lock released.
    flushing: bool,
    /// Offset where the next batch goes.
    next_offset: u64,
    prealloc_end: u64,
    written_lsn: Lsn,
    durable_lsn: Lsn,
    /// Set by the first failed write or sync; nothing is acknowledged after it.
    poisoned: Option<String>,
}

impl LogState {
    pub(crate) fn new(segment: Arc<Segment>, pos: LogPosition) -> Self {
        Self::with_segment(Some(segment), pos)
    }

    /// The state of an engine without a log, at `last_lsn`.
    pub(crate) fn detached(last_lsn: Lsn) -> Self {
        let pos = LogPosition {
            next_offset: 0,
            file_len: 0,
            last_lsn,
        };
        Self::with_segment(None, pos)
    }

    fn with_segment(segment: Option<Arc<Segment>>, pos: LogPosition) -> Self {
        LogState {
            segment,
            pending: Vec::with_capacity(64 << 10),
            spare: Vec::with_capacity(64 << 10),
            pending_records: 0,
            pending_last_lsn: pos.last_lsn,
            flushing: false,
            next_offset: pos.next_offset,
            prealloc_end: pos.file_len,
            written_lsn: pos.last_lsn,
            durable_lsn: pos.last_lsn,
            poisoned: None,
        }
    }

    /// The current log file.
    ///
    /// # Panics
    /// On an engine without a log (the writer is never called there).
    fn segment(&self) -> &Arc<Segment> {
        self.segment
            .as_ref()
            .expect("an engine with a log has a segment")
    }

    /// `Err(Poisoned)` once a write or sync has failed.
    pub(crate) fn check_poisoned(&self) -> Result<()> {
        match &self.poisoned {
            Some(cause) => Err(Error::Poisoned {
                cause: cause.clone(),
            }),
            None => Ok(()),
        }
    }
}

/// The log file and the parts of the writer that need no lock.
#[derive(Debug)]
pub(crate) struct Log {
    policy: FsyncPolicy,
    prealloc: Prealloc,
    prealloc_chunk_bytes: u64,
    max_record_bytes: u32,
    max_lag_ms: u64,
    /// The leader writes its batch without releasing the engine's lock: the write is a
    /// memory copy (backend `mmap` outside `always`), cheaper than waking a waiting writer.
    write_under_lock: bool,
    /// Records say what the writer knows durable (under `no`: what explicit syncs and the
    /// sync at open covered), so recovery can tell a power-loss hole from damage.
    tracks_syncs: bool,
    /// Wakes writers waiting for a flush or a background sync.
    cond: Condvar,
    /// Wakes followers of a flush without the mutex (see [`AckSignal`]).
    acked: AckSignal,
    /// Mirrors `LogState::poisoned.is_some()` for waiters that do not hold the lock.
    poisoned: AtomicBool,
    written_lsn: AtomicU64,
    durable_lsn: AtomicU64,
    epoch: Instant,
    /// Start time (ms after `epoch`) of the latest sync that completed, or of the latest
    /// check that found nothing to sync: everything acknowledged before it is durable.
    last_sync_ms: AtomicU64,
    pub(crate) counters: Counters,
}

impl Log {
    pub(crate) fn new(config: &EngineConfig, pos: LogPosition) -> Self {
        Log {
            policy: config.policy,
            prealloc: config.prealloc,
            prealloc_chunk_bytes: config.prealloc_chunk_bytes,
            max_record_bytes: config.max_record_bytes,
            max_lag_ms: config.everysec_max_lag_ms,
            write_under_lock: config.backend == BackendKind::Mmap
                && config.policy != FsyncPolicy::Always,
            tracks_syncs: config.policy != FsyncPolicy::Off,
            cond: Condvar::new(),
            acked: AckSignal::default(),
            poisoned: AtomicBool::new(false),
            written_lsn: AtomicU64::new(pos.last_lsn),
            durable_lsn: AtomicU64::new(pos.last_lsn),
            epoch: Instant::now(),
            last_sync_ms: AtomicU64::new(0),
            counters: Counters::default(),
        }
    }

    /// Highest LSN handed to the OS.
    pub(crate) fn written_lsn(&self) -> Lsn {
        self.written_lsn.load(Ordering::Acquire)
    }

    /// Highest LSN covered by a completed fdatasync.
    pub(crate) fn durable_lsn(&self) -> Lsn {
        self.durable_lsn.load(Ordering::Acquire)
    }

    /// Extends a new file's first preallocation chunk. With backend `mmap` outside `always`
    /// (where it stores), also reserves (`fallocate`) the space past the write position that an
    /// earlier run preallocated: the backend stores only into space its own handle reserved,
    /// so without this a reopened log would be written with `pwrite` until its next chunk.
    pub(crate) fn preallocate_initial(&self, st: &mut LogState) -> Result<()> {
        let end = self.extend(st.segment(), st.prealloc_end, st.next_offset + 1)?;
        st.prealloc_end = end;
        // Equivalent mutant (`>` to `>=`, .cargo/mutants.toml): with `write_under_lock` (mmap,
        // which a log opens only with preallocation) `end` is at least `next_offset + 1`.
        if self.write_under_lock && end > st.next_offset {
            let seg = st.segment();
            seg.file
                .allocate(st.next_offset, end - st.next_offset)
                .map_err(|e| Error::io("fallocate", &seg.path, Some(st.next_offset), e))?;
        }
        Ok(())
    }

    /// Encodes the record for `cmd` at the end of the pending batch.
    ///
    /// # Errors
    /// [`Error::InvalidCommand`] if the payload exceeds `max_record_bytes`; nothing is appended.
    pub(crate) fn append(&self, st: &mut LogState, lsn: Lsn, cmd: &Command) -> Result<()> {
        debug_assert_eq!(
            lsn,
            st.pending_last_lsn + 1,
            "LSNs must be appended densely"
        );
        record::encode(
            &mut st.pending,
            lsn,
            self.tracks_syncs.then_some(st.durable_lsn),
            cmd,
            self.max_record_bytes,
        )
        .map_err(|len| {
            Error::InvalidCommand(format!(
                "command payload of {len} bytes exceeds the record limit of {} bytes",
                self.max_record_bytes
            ))
        })?;
        st.pending_records += 1;
        st.pending_last_lsn = lsn;
        Ok(())
    }

    /// Returns once `lsn` is acknowledged under the policy: written (`everysec`, `no`) or
    /// covered by an fdatasync (`always`). May flush other writers' records as leader. Takes
    /// the engine's lock guard and releases it: a follower whose record the leader's flush
    /// covered returns without re-taking the lock.
    ///
    /// # Errors
    /// The I/O error if this thread's flush failed, else [`Error::Poisoned`] once any write or
    /// sync has failed: then `lsn` is not acknowledged.
    pub(crate) fn acknowledge<'a, C: AsMut<LogState>>(
        &self,
        core: &'a Mutex<C>,
        mut guard: MutexGuard<'a, C>,
        lsn: Lsn,
    ) -> Result<()> {
        loop {
            let st = guard.as_mut();
            st.check_poisoned()?;
            let covered = if self.policy == FsyncPolicy::Always {
                st.durable_lsn
            } else {
                st.written_lsn
            };
            if covered >= lsn {
                if self.policy != FsyncPolicy::EverySec {
                    return Ok(());
                }
                // The lag check reads only atomics and the clock: not under the lock.
                drop(guard);
                if !self.sync_lags(lsn) {
                    return Ok(());
                }
                return self.wait_if_sync_lags(&mut core.lock(), lsn);
            }
            if !st.flushing {
                self.flush(&mut guard)?;
                continue;
            }
            // Follower: sleep until the flush in flight ends, without the lock.
            let seen = self.acked.epoch();
            drop(guard);
            while self.acked.epoch() == seen {
                self.acked.wait(seen);
            }
            // A fast path: the loop re-checks under the lock and decides the same, so mutants
            // that make it return less often are equivalent (.cargo/mutants.toml): `covered_lsn`
            // giving 0 or the other policy's LSN (under `always` a written record is durable
            // too: one write+fdatasync call covers both), and a `sync_lags` saying true more
            // often. Deleting the `!` before `self.poisoned` is not taken for the same reason; it
            // differs only if the log is poisoned between the flush that covers this follower
            // and its wake-up, a race no test can schedule (excluded, said so there).
            if !self.poisoned.load(Ordering::Acquire)
                && self.covered_lsn() >= lsn
                && !self.sync_lags(lsn)
            {
                return Ok(());
            }
            guard = core.lock();
        }
    }

    /// The LSN up to which records are acknowledged-ready, read without the lock.
    fn covered_lsn(&self) -> Lsn {
        if self.policy == FsyncPolicy::Always {
            self.durable_lsn()
        } else {
            self.written_lsn()
        }
    }

    /// Under `everysec`: true when `lsn` is unsynced and the last completed sync started
    /// longer than `max_lag_ms` ago.
    fn sync_lags(&self, lsn: Lsn) -> bool {
        // Equivalent mutants (`-> true`, either `&&` to `||`, `<` to `<=`, `>` to `>=`;
        // .cargo/mutants.toml): saying true more often only sends the caller to the lock, where
        // the loop or `wait_if_sync_lags` checks the durable LSN and the lag again.
        self.policy == FsyncPolicy::EverySec
            && self.durable_lsn() < lsn
            && self
                .now_ms()
                .saturating_sub(self.last_sync_ms.load(Ordering::Acquire))
                > self.max_lag_ms
    }

    /// Records the first failure: nothing is acknowledged after it. Wakes every waiter.
    pub(crate) fn poison(&self, st: &mut LogState, cause: impl ToString) {
        if st.poisoned.is_none() {
            st.poisoned = Some(cause.to_string());
        }
        self.poisoned.store(true, Ordering::Release);
        self.wake_all();
    }

    /// Wakes waiters of both kinds: followers of a flush and lock holders on the condvar.
    fn wake_all(&self) {
        self.cond.notify_all();
        self.acked.wake_all();
    }

    /// As leader: writes the whole pending batch with the lock released (held throughout when
    /// the write is a memory copy, see `write_under_lock`).
    fn flush<C: AsMut<LogState>>(&self, guard: &mut MutexGuard<'_, C>) -> Result<()> {
        let st = guard.as_mut();
        // Equivalent mutant (`+` to `*`, .cargo/mutants.toml): `next_offset * len` is at least
        // `next_offset + len` (both are 2 or more), so it only sends batches that fit down the
        // path that releases the lock, which writes the same bytes.
        if self.write_under_lock && st.next_offset + st.pending.len() as u64 <= st.prealloc_end {
            return self.flush_in_place(st);
        }
        let st = guard.as_mut();
        debug_assert!(!st.flushing && st.pending_records > 0);
        st.flushing = true;
        let mut batch = std::mem::take(&mut st.spare);
        std::mem::swap(&mut batch, &mut st.pending);
        let records = std::mem::take(&mut st.pending_records);
        let last_lsn = st.pending_last_lsn;
        let offset = st.next_offset;
        st.next_offset += batch.len() as u64;
        let prealloc_end = st.prealloc_end;
        let segment = st.segment().clone();

        let result = MutexGuard::unlocked(guard, || {
            self.write_batch(&segment, &batch, offset, prealloc_end)
        });

        let st = guard.as_mut();
        st.flushing = false;
        let bytes = batch.len() as u64;
        batch.clear();
        st.spare = batch;
        let outcome = match result {
            Ok(new_prealloc_end) => {
                st.prealloc_end = new_prealloc_end;
                st.written_lsn = last_lsn;
                self.written_lsn.store(last_lsn, Ordering::Release);
                if self.policy == FsyncPolicy::Always {
                    st.durable_lsn = last_lsn;
                    self.durable_lsn.store(last_lsn, Ordering::Release);
                }
                self.counters.batch(records, bytes);
                Ok(())
            }
            Err(e) => {
                self.poison(st, &e);
                Err(e)
            }
        };
        self.wake_all();
        outcome
    }

    /// [`Log::flush`] when the write is a memory copy into preallocated space: writes the
    /// pending batch straight from its buffer with the lock held. Writers wait only for a flush
    /// in flight, and there is none, so nobody is woken. (A flush that must first extend the
    /// file takes the usual path, with the lock released.)
    fn flush_in_place(&self, st: &mut LogState) -> Result<()> {
        debug_assert!(!st.flushing && st.pending_records > 0);
        let offset = st.next_offset;
        let seg = st.segment();
        let result = seg
            .file
            .write_all_at(&st.pending, offset)
            .map_err(|e| Error::io("write", &seg.path, Some(offset), e));
        let records = std::mem::take(&mut st.pending_records);
        let bytes = st.pending.len() as u64;
        st.pending.clear();
        st.next_offset += bytes;
        match result {
            Ok(()) => {
                st.written_lsn = st.pending_last_lsn;
                self.written_lsn.store(st.written_lsn, Ordering::Release);
                self.counters.batch(records, bytes);
                Ok(())
            }
            Err(e) => {
                self.poison(st, &e);
                Err(e)
            }
        }
    }

    fn write_batch(
        &self,
        seg: &Segment,
        batch: &[u8],
        offset: u64,
        prealloc_end: u64,
    ) -> Result<u64> {
        let end = offset + batch.len() as u64;
        let prealloc_end = self.extend(seg, prealloc_end, end)?;
        if self.policy == FsyncPolicy::Always {
            self.counters.sync();
            seg.file
                .write_all_at_sync(batch, offset)
                .map_err(|e| Error::io("write+fdatasync", &seg.path, Some(offset), e))?;
        } else {
            seg.file
                .write_all_at(batch, offset)
                .map_err(|e| Error::io("write", &seg.path, Some(offset), e))?;
        }
        Ok(prealloc_end)
    }

    fn extend(&self, seg: &Segment, prealloc_end: u64, need_end: u64) -> Result<u64> {
        let (end, added) = prealloc::extend(
            seg.file.as_ref(),
            &seg.path,
            self.prealloc,
            self.prealloc_chunk_bytes,
            prealloc_end,
            need_end,
        )?;
        if added > 0 {
            self.counters
                .prealloc(added, self.prealloc == Prealloc::Zero);
        }
        Ok(end)
    }

    /// Under `everysec`: the record is written, but if the background sync has not caught up
    /// for longer than `max_lag_ms` (a stalled disk), wait for it, so the power-loss window
    /// stays bounded.
    fn wait_if_sync_lags<C: AsMut<LogState>>(
        &self,
        guard: &mut MutexGuard<'_, C>,
        lsn: Lsn,
    ) -> Result<()> {
        loop {
            let st = guard.as_mut();
            st.check_poisoned()?;
            if st.durable_lsn >= lsn {
                return Ok(());
            }
            let lag_ms = self
                .now_ms()
                .saturating_sub(self.last_sync_ms.load(Ordering::Acquire));
            if lag_ms <= self.max_lag_ms {
                return Ok(());
            }
            self.cond.wait_for(guard, Duration::from_millis(10));
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Makes everything written so far durable with one fdatasync (the `everysec` tick, an
    /// explicit [`crate::Engine::sync`], or close). Returns the LSN now durable.
    ///
    /// # Errors
    /// [`Error::Poisoned`] if already poisoned; the sync's error, which poisons the log (a
    /// failed fsync is never retried: the kernel may have dropped the dirty pages).
    pub(crate) fn sync_written<C: AsMut<LogState>>(&self, core: &Mutex<C>) -> Result<Lsn> {
        // The file and the LSN it holds up to are read together: after a switch to a new file
        // the old one holds exactly the records up to the switch.
        let (segment, written) = {
            let mut guard = core.lock();
            let st = guard.as_mut();
            st.check_poisoned()?;
            (st.segment().clone(), st.written_lsn)
        };
        // Everything acknowledged before `started_ms` is written, so covered by this sync.
        let started_ms = self.now_ms();
        if written > self.durable_lsn() {
            self.counters.sync();
            let result = segment
                .file
                .sync_data()
                .and_then(|()| publish_sync_hint(&segment, written));
            let mut guard = core.lock();
            let st = guard.as_mut();
            if let Err(e) = result {
                let err = Error::io("fdatasync", &segment.path, None, e);
                self.poison(st, &err);
                return Err(err);
            }
            st.durable_lsn = st.durable_lsn.max(written);
            self.durable_lsn.fetch_max(written, Ordering::AcqRel);
            self.last_sync_ms.fetch_max(started_ms, Ordering::AcqRel);
            self.wake_all();
        } else {
            self.last_sync_ms.fetch_max(started_ms, Ordering::AcqRel);
        }
        Ok(self.durable_lsn())
    }

    /// Under the engine's lock: waits until no batch is in flight and none is pending (leading
    /// flushes itself if needed), then fdatasyncs the current file if it holds unsynced
    /// records. On return every record so far is written and durable in the current file, and
    /// since the caller holds the lock, no other can be added.
    ///
    /// # Errors
    /// [`Error::Poisoned`], or a write or sync error (which poisons the log).
    pub(crate) fn drain_and_sync<C: AsMut<LogState>>(
        &self,
        guard: &mut MutexGuard<'_, C>,
    ) -> Result<()> {
        loop {
            let st = guard.as_mut();
            st.check_poisoned()?;
            if st.flushing {
                self.cond.wait(guard);
            } else if st.pending_records > 0 {
                self.flush(guard)?;
            } else {
                break;
            }
        }
        let st = guard.as_mut();
        if st.written_lsn > st.durable_lsn {
            self.counters.sync();
            let segment = st.segment().clone();
            let written = st.written_lsn;
            if let Err(e) = segment
                .file
                .sync_data()
                .and_then(|()| publish_sync_hint(&segment, written))
            {
                let err = Error::io("fdatasync", &segment.path, None, e);
                self.poison(st, &err);
                return Err(err);
            }
            st.durable_lsn = st.written_lsn;
            self.durable_lsn.fetch_max(st.written_lsn, Ordering::AcqRel);
            self.wake_all();
        }
        Ok(())
    }

    /// Under the engine's lock, after [`Log::drain_and_sync`]: directs appends to `segment`, a
    /// new log file whose header is written (first record at `next_offset`).
    ///
    /// # Errors
    /// A preallocation failure (which poisons the log).
    pub(crate) fn switch_segment(
        &self,
        st: &mut LogState,
        segment: Arc<Segment>,
        next_offset: u64,
    ) -> Result<()> {
        debug_assert!(!st.flushing && st.pending_records == 0);
        st.segment = Some(segment);
        st.next_offset = next_offset;
        st.prealloc_end = next_offset;
        if let Err(e) = self.preallocate_initial(st) {
            self.poison(st, &e);
            return Err(e);
        }
        Ok(())
    }
}

/// Records in the file's header area that every record up to `synced` is durable (see
/// [`super::file_header`]), so strict recovery can tell later damage to them from an unsynced
/// tail. Not synced by itself: it becomes durable with the next sync, and until then a lost or
/// torn hint only means less information.
fn publish_sync_hint(segment: &Segment, synced: Lsn) -> std::io::Result<()> {
    let hint = super::file_header::encode_sync_hint(synced);
    segment
        .file
        .write_all_at(&hint, super::file_header::SYNC_HINT_OFFSET)
}

#[cfg(test)]
#[path = "writer_tests.rs"]
mod tests;
