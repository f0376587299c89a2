//! The writer's decisions, driven directly on a real log file (through the recording backend,
//! whose trace shows every write and sync in order): what is written in one call, what is
//! acknowledged when, the `everysec` lag bound, preallocation boundaries, and what a failed
//! write or sync leaves behind.
//!
//! Concurrency is made deterministic with [`Gate`], which holds a leader inside its write
//! (real I/O, only delayed) until the test has placed the other writers; nothing here waits
//! for a duration to pass.

use std::io;
use std::sync::mpsc;

use super::*;
use crate::aof::file_header::{FILE_HEADER_BYTES, decode_sync_hint};
use crate::aof::{FIRST_RECORD_OFFSET, create_log};
use crate::backend::faulty::{Faults, FaultyBackend};
use crate::backend::recording::{Op, RecordingBackend, read_trace};
use crate::backend::{Backend, open_backend};

/// The engine's locked state, as far as the writer sees it.
#[derive(Debug)]
struct Core(LogState);

impl AsMut<LogState> for Core {
    fn as_mut(&mut self) -> &mut LogState {
        &mut self.0
    }
}

/// Holds writes inside the file (before the real write) while closed.
#[derive(Debug, Default)]
struct Gate {
    closed: Mutex<bool>,
    cond: Condvar,
    entered: Mutex<Option<mpsc::Sender<()>>>,
}

impl Gate {
    /// Closes the gate; returns a receiver told each time a write is held.
    fn close(&self) -> mpsc::Receiver<()> {
        let (tx, rx) = mpsc::channel();
        *self.entered.lock() = Some(tx);
        *self.closed.lock() = true;
        rx
    }

    fn open(&self) {
        *self.closed.lock() = false;
        self.cond.notify_all();
    }

    fn pass(&self) {
        let mut closed = self.closed.lock();
        if *closed {
            if let Some(tx) = &*self.entered.lock() {
                let _ = tx.send(());
            }
            while *closed {
                self.cond.wait(&mut closed);
            }
        }
    }
}

/// A real file whose writes pass the gate first.
#[derive(Debug)]
struct GatedFile {
    inner: Arc<dyn BackendFile>,
    gate: Arc<Gate>,
}

impl BackendFile for GatedFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.inner.read_at(buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.gate.pass();
        self.inner.write_all_at(buf, offset)
    }
    fn write_all_at_sync(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.gate.pass();
        self.inner.write_all_at_sync(buf, offset)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.inner.sync_data()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }
    fn allocate(&self, offset: u64, len: u64) -> io::Result<()> {
        self.inner.allocate(offset, len)
    }
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
}

/// Spins until `cond` holds. Fails instead of spinning forever if the threads it waits for
/// all ended first (a broken writer that returns where it should wait).
fn spin_until(what: &str, cond: impl Fn() -> bool, ended: impl Fn() -> bool) {
    while !cond() {
        if ended() {
            assert!(cond(), "{what}: the threads ended first");
        }
        std::thread::yield_now();
    }
}

/// Runs its closure when dropped, also while a failed assertion unwinds: it releases the
/// threads a test holds, so that a failure ends the test instead of hanging it.
struct OnDrop<F: FnMut()>(F);

impl<F: FnMut()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        (self.0)();
    }
}

/// Waits until a writer is held inside its write by the closed gate.
fn held_in_write(
    held: &mpsc::Receiver<()>,
    writer: &std::thread::ScopedJoinHandle<'_, impl Sized>,
) {
    spin_until(
        "a write held at the gate",
        || held.try_recv().is_ok(),
        || writer.is_finished(),
    );
}

/// A log file with its writer, recorded to a trace.
struct Fixture {
    dir: tempfile::TempDir,
    log: Log,
    core: Mutex<Core>,
    faults: Arc<Faults>,
    gate: Arc<Gate>,
    backend: Arc<dyn Backend>,
}

const CHUNK: u64 = 4096;

fn cmd(lsn: Lsn) -> Command {
    Command::Set {
        key: format!("k{lsn:08}").into_bytes(),
        value: vec![b'v'; 100],
    }
}

/// Bytes of the record of `cmd(lsn)`.
fn record_len(lsn: Lsn) -> u64 {
    let mut buf = Vec::new();
    record::encode(&mut buf, lsn, Some(0), &cmd(lsn), u32::MAX).unwrap();
    buf.len() as u64
}

impl Fixture {
    fn new(policy: FsyncPolicy, kind: BackendKind, prealloc: Prealloc) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let faulty = FaultyBackend::new(open_backend(kind).unwrap());
        let faults = faulty.faults();
        let backend: Arc<dyn Backend> = Arc::new(
            RecordingBackend::new(Arc::new(faulty), &dir.path().join("io.trace")).unwrap(),
        );
        let path = dir.path().join("log");
        let file = create_log(backend.as_ref(), &path, 0).unwrap();
        let pos = LogPosition {
            next_offset: FIRST_RECORD_OFFSET,
            file_len: FIRST_RECORD_OFFSET,
            last_lsn: 0,
        };
        Self::with(
            dir, backend, faults, file, path, pos, policy, kind, prealloc,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn with(
        dir: tempfile::TempDir,
        backend: Arc<dyn Backend>,
        faults: Arc<Faults>,
        file: Arc<dyn BackendFile>,
        path: PathBuf,
        pos: LogPosition,
        policy: FsyncPolicy,
        kind: BackendKind,
        prealloc: Prealloc,
    ) -> Fixture {
        let mut config = EngineConfig::new(dir.path())
            .policy(policy)
            .backend(kind)
            .prealloc(prealloc);
        config.prealloc_chunk_bytes = CHUNK;
        let gate = Arc::new(Gate::default());
        let file: Arc<dyn BackendFile> = Arc::new(GatedFile {
            inner: file,
            gate: gate.clone(),
        });
        let log = Log::new(&config, pos);
        let mut st = LogState::new(Arc::new(Segment { file, path }), pos);
        log.preallocate_initial(&mut st).unwrap();
        Fixture {
            dir,
            log,
            core: Mutex::new(Core(st)),
            faults,
            gate,
            backend,
        }
    }

    fn append(&self, lsn: Lsn) {
        self.log
            .append(&mut self.core.lock().0, lsn, &cmd(lsn))
            .unwrap();
    }

    fn ack(&self, lsn: Lsn) -> Result<()> {
        self.log.acknowledge(&self.core, self.core.lock(), lsn)
    }

    /// Appends `lsn` and waits for its acknowledgement, as `Engine::execute` does.
    fn write(&self, lsn: Lsn) -> Result<()> {
        let mut guard = self.core.lock();
        self.log.append(&mut guard.0, lsn, &cmd(lsn)).unwrap();
        self.log.acknowledge(&self.core, guard, lsn)
    }

    fn drain(&self) -> Result<()> {
        self.log.drain_and_sync(&mut self.core.lock())
    }

    fn stats(&self) -> crate::Stats {
        self.log.counters.snapshot()
    }

    /// The log file's operations since it was created (its header write and sync excluded).
    fn ops(&self) -> Vec<Op> {
        let t = read_trace(&self.dir.path().join("io.trace")).unwrap();
        t.entries
            .into_iter()
            .map(|e| e.op)
            .skip_while(|op| !matches!(op, Op::SyncDir { .. }))
            .skip(1)
            .collect()
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("log")
    }

    fn file_len(&self) -> u64 {
        std::fs::metadata(self.path()).unwrap().len()
    }

    /// Backdates the clock so that the last completed sync started a minute ago.
    fn lag_a_minute(&mut self) {
        self.log.epoch = Instant::now().checked_sub(Duration::from_secs(60)).unwrap();
    }
}

/// A compact view of a trace: `W(offset, len)`, `S` (data sync), `A(offset, len)`, `L(len)`.
fn shape(ops: &[Op]) -> Vec<String> {
    ops.iter()
        .map(|op| match op {
            Op::Write { offset, data, .. } => {
                let len: u64 = data.iter().map(|s| s.len()).sum();
                format!("W({offset},{len})")
            }
            Op::SyncData { .. } => "S".into(),
            Op::Allocate { offset, len, .. } => format!("A({offset},{len})"),
            Op::SetLen { len, .. } => format!("L({len})"),
            other => format!("{other:?}"),
        })
        .collect()
}

/// The sync hint in the log's header, read past the backend (not traced).
fn hint(f: &Fixture) -> Option<Lsn> {
    let data = std::fs::read(f.path()).unwrap();
    decode_sync_hint(&data[..FILE_HEADER_BYTES])
}

const H: u64 = FIRST_RECORD_OFFSET;

#[test]
fn always_acknowledges_each_record_after_its_own_write_and_sync() {
    let f = Fixture::new(FsyncPolicy::Always, BackendKind::Pwrite, Prealloc::None);
    let (r1, r2) = (record_len(1), record_len(2));
    f.write(1).unwrap();
    assert_eq!((f.log.written_lsn(), f.log.durable_lsn()), (1, 1));
    f.write(2).unwrap();
    assert_eq!((f.log.written_lsn(), f.log.durable_lsn()), (2, 2));
    assert_eq!(
        shape(&f.ops()),
        [
            format!("W({H},{r1})"),
            "S".into(),
            format!("W({},{r2})", H + r1),
            "S".into()
        ]
    );
    let s = f.stats();
    assert_eq!((s.records, s.write_batches, s.syncs), (2, 2, 2));
    assert_eq!(s.bytes_written, r1 + r2);
}

#[test]
fn records_appended_before_a_flush_go_out_in_its_one_write() {
    let f = Fixture::new(FsyncPolicy::Always, BackendKind::Pwrite, Prealloc::None);
    for lsn in 1..=3 {
        f.append(lsn);
    }
    f.ack(3).unwrap();
    // Covered already: no further write.
    f.ack(1).unwrap();
    f.ack(2).unwrap();
    let len: u64 = (1..=3).map(record_len).sum();
    assert_eq!(shape(&f.ops()), [format!("W({H},{len})"), "S".into()]);
    let s = f.stats();
    assert_eq!((s.records, s.write_batches, s.batch_records_max), (3, 1, 3));
    assert_eq!(f.log.durable_lsn(), 3);
}

/// While a leader's write is in flight, later records form the next batch; their writers
/// wait as followers and one of them writes the whole batch once the first flush ended.
#[test]
fn a_batch_forms_while_the_leader_writes() {
    for policy in [FsyncPolicy::Always, FsyncPolicy::No] {
        let f = Fixture::new(policy, BackendKind::Pwrite, Prealloc::None);
        let held = f.gate.close();
        std::thread::scope(|s| {
            let _release = OnDrop(|| f.gate.open());
            let leader = s.spawn(|| f.write(1));
            held_in_write(&held, &leader);
            f.append(2);
            f.append(3);
            let followers = [s.spawn(|| f.ack(3)), s.spawn(|| f.ack(2))];
            spin_until(
                "two followers waiting",
                || f.log.acked.waiting() == 2,
                || followers.iter().any(|t| t.is_finished()),
            );
            assert!(
                !leader.is_finished(),
                "{policy}: acknowledged inside its write"
            );
            f.gate.open();
            leader.join().unwrap().unwrap();
            for t in followers {
                t.join().unwrap().unwrap();
            }
        });
        let (r1, r23) = (record_len(1), record_len(2) + record_len(3));
        let writes: Vec<_> = shape(&f.ops()).into_iter().filter(|o| o != "S").collect();
        assert_eq!(
            writes,
            [format!("W({H},{r1})"), format!("W({},{r23})", H + r1)]
        );
        let s = f.stats();
        assert_eq!((s.records, s.write_batches, s.batch_records_max), (3, 2, 2));
        assert_eq!(f.log.written_lsn(), 3);
        let durable = if policy == FsyncPolicy::Always { 3 } else { 0 };
        assert_eq!(f.log.durable_lsn(), durable, "{policy}");
    }
}

/// `everysec` and `no` acknowledge once the write returned, without a sync of their own.
#[test]
fn everysec_and_no_acknowledge_after_the_write_alone() {
    for policy in [FsyncPolicy::EverySec, FsyncPolicy::No] {
        let f = Fixture::new(policy, BackendKind::Pwrite, Prealloc::None);
        f.write(1).unwrap();
        f.write(2).unwrap();
        assert_eq!(
            (f.log.written_lsn(), f.log.durable_lsn()),
            (2, 0),
            "{policy}"
        );
        let r1 = record_len(1);
        assert_eq!(
            shape(&f.ops()),
            [
                format!("W({H},{r1})"),
                format!("W({},{})", H + r1, record_len(2))
            ]
        );
        assert_eq!(f.stats().syncs, 0);
        assert_eq!(hint(&f), None, "{policy}: no sync, no hint");
    }
}

/// One sync covers everything written; a check that finds nothing new syncs nothing; the
/// hint in the header says what the sync covered.
#[test]
fn sync_written_syncs_only_what_is_new_and_publishes_the_hint() {
    let f = Fixture::new(FsyncPolicy::No, BackendKind::Pwrite, Prealloc::None);
    assert_eq!(f.log.sync_written(&f.core).unwrap(), 0);
    assert_eq!(f.stats().syncs, 0, "nothing written, nothing synced");
    f.write(1).unwrap();
    f.write(2).unwrap();
    assert_eq!(f.log.sync_written(&f.core).unwrap(), 2);
    assert_eq!((f.log.durable_lsn(), f.core.lock().0.durable_lsn), (2, 2));
    assert_eq!(hint(&f), Some(2));
    assert_eq!(f.log.sync_written(&f.core).unwrap(), 2);
    assert_eq!(f.stats().syncs, 1, "the second call found nothing new");
    f.write(3).unwrap();
    // The record carries what was durable when it was appended.
    let ops = f.ops();
    assert_eq!(
        shape(&ops)[2..],
        [
            "S".to_string(),
            "W(32,32)".to_string(),
            format!("W({},{})", H + record_len(1) + record_len(2), record_len(3))
        ]
    );
}

/// Under `everysec`, a writer whose record is written but whose last completed sync started
/// longer than `everysec_max_lag_ms` ago does not return until a sync covers its record.
#[test]
fn everysec_waits_for_a_sync_once_the_last_one_lags() {
    let mut f = Fixture::new(FsyncPolicy::EverySec, BackendKind::Pwrite, Prealloc::None);
    f.lag_a_minute();
    // Two records in one batch: the leader waits in the first branch, the follower after its
    // wake-up.
    f.append(1);
    f.append(2);
    let held = f.gate.close();
    std::thread::scope(|s| {
        let _release = OnDrop(|| {
            f.gate.open();
            let _ = f.log.sync_written(&f.core);
        });
        let leader = s.spawn(|| {
            f.ack(2).unwrap();
            f.log.durable_lsn()
        });
        held_in_write(&held, &leader);
        let follower = s.spawn(|| {
            f.ack(1).unwrap();
            f.log.durable_lsn()
        });
        let waiters = [leader, follower];
        spin_until(
            "a follower waiting",
            || f.log.acked.waiting() == 1,
            || waiters[1].is_finished(),
        );
        f.gate.open();
        spin_until(
            "the batch written",
            || f.core.lock().0.written_lsn == 2,
            || waiters.iter().all(|t| t.is_finished()),
        );
        for _ in 0..1000 {
            std::thread::yield_now();
        }
        let early = waiters.iter().any(|t| t.is_finished());
        assert_eq!(f.log.sync_written(&f.core).unwrap(), 2);
        assert!(!early, "acknowledged before a sync");
        for t in waiters {
            assert_eq!(t.join().unwrap(), 2, "returned before the sync covered it");
        }
    });
    // Synced just now: the next one is acknowledged after its write alone.
    f.write(3).unwrap();
    assert_eq!((f.log.written_lsn(), f.log.durable_lsn()), (3, 2));
}

/// Within the lag bound nothing waits for a sync (there is no syncer here).
#[test]
fn everysec_within_the_bound_does_not_wait() {
    let f = Fixture::new(FsyncPolicy::EverySec, BackendKind::Pwrite, Prealloc::None);
    f.log.last_sync_ms.store(u64::MAX / 2, Ordering::Release);
    f.write(1).unwrap();
    assert_eq!(f.log.durable_lsn(), 0);
}

/// A nothing-to-do check counts as a sync start for the lag bound: an idle log never lags.
#[test]
fn an_idle_check_restarts_the_lag_clock() {
    let mut f = Fixture::new(FsyncPolicy::EverySec, BackendKind::Pwrite, Prealloc::None);
    f.lag_a_minute();
    f.log.sync_written(&f.core).unwrap();
    f.write(1).unwrap();
    assert_eq!(f.log.durable_lsn(), 0, "acknowledged without waiting");
}

#[test]
fn drain_and_sync_writes_the_pending_batch_and_syncs_once() {
    let f = Fixture::new(FsyncPolicy::No, BackendKind::Pwrite, Prealloc::None);
    f.drain().unwrap();
    assert!(
        f.ops().is_empty(),
        "nothing pending, nothing unsynced: no I/O"
    );
    f.append(1);
    f.append(2);
    f.drain().unwrap();
    let len = record_len(1) + record_len(2);
    assert_eq!(
        shape(&f.ops()),
        [format!("W({H},{len})"), "S".into(), "W(32,32)".into()]
    );
    assert_eq!((f.log.written_lsn(), f.log.durable_lsn()), (2, 2));
    assert_eq!(hint(&f), Some(2));
    f.drain().unwrap();
    assert_eq!(f.stats().syncs, 1, "already durable: no second sync");
}

#[test]
fn switch_segment_sends_later_records_to_the_new_file() {
    let f = Fixture::new(FsyncPolicy::Always, BackendKind::Pwrite, Prealloc::Zero);
    f.write(1).unwrap();
    f.drain().unwrap();
    let new_path = f.dir.path().join("log2");
    let file = create_log(f.backend.as_ref(), &new_path, 1).unwrap();
    {
        let mut guard = f.core.lock();
        let seg = Arc::new(Segment {
            file,
            path: new_path.clone(),
        });
        f.log.switch_segment(&mut guard.0, seg, H).unwrap();
    }
    assert_eq!(
        std::fs::metadata(&new_path).unwrap().len(),
        CHUNK,
        "preallocated"
    );
    let old = std::fs::read(f.path()).unwrap();
    f.write(2).unwrap();
    assert_eq!(
        std::fs::read(f.path()).unwrap(),
        old,
        "the old file is left alone"
    );
    let new = std::fs::read(&new_path).unwrap();
    let mut rec = Vec::new();
    record::encode(&mut rec, 2, Some(1), &cmd(2), u32::MAX).unwrap();
    assert_eq!(&new[H as usize..][..rec.len()], rec.as_slice());
}

/// Preallocation: `zero` writes and syncs whole chunks ahead, `fallocate` reserves them; a
/// batch that ends exactly at the preallocated end does not extend, one byte more does.
#[test]
fn preallocation_extends_by_whole_chunks_at_the_boundary() {
    for prealloc in [Prealloc::Zero, Prealloc::Fallocate] {
        let f = Fixture::new(FsyncPolicy::No, BackendKind::Pwrite, prealloc);
        assert_eq!(f.file_len(), CHUNK, "{prealloc}: the first chunk at open");
        let first = shape(&f.ops());
        let s = f.stats();
        assert_eq!(s.prealloc_bytes, CHUNK - H);
        if prealloc == Prealloc::Zero {
            assert_eq!(first, [format!("W({H},{})", CHUNK - H), "S".into()]);
            assert_eq!(s.syncs, 1, "zeros are synced once");
        } else {
            assert_eq!(first, [format!("A({H},{})", CHUNK - H)]);
            assert_eq!(s.syncs, 0);
        }
        let r = record_len(1);
        // Fill up to exactly the chunk's end with one batch of records of length r, then one
        // more record that crosses it.
        let fit = (CHUNK - H) / r;
        let mut lsn = 0;
        for _ in 0..fit {
            lsn += 1;
            f.append(lsn);
        }
        f.ack(lsn).unwrap();
        let used = H + fit * record_len(1);
        assert!(used <= CHUNK && used + r > CHUNK);
        assert_eq!(
            f.file_len(),
            CHUNK,
            "{prealloc}: no extension while it fits"
        );
        // Under `no` the only syncs are those of zero-filled chunks.
        let zero_syncs = u64::from(prealloc == Prealloc::Zero);
        assert_eq!(f.stats().prealloc_bytes, CHUNK - H);
        assert_eq!(
            f.stats().syncs,
            zero_syncs,
            "{prealloc}: nothing added, nothing counted"
        );
        lsn += 1;
        f.write(lsn).unwrap();
        assert_eq!(f.file_len(), 2 * CHUNK, "{prealloc}: one more chunk");
        assert_eq!(f.stats().prealloc_bytes, 2 * CHUNK - H);
        assert_eq!(f.stats().syncs, 2 * zero_syncs);
        let ops = shape(&f.ops());
        let tail: Vec<_> =
            ops[ops.len() - if prealloc == Prealloc::Zero { 3 } else { 2 }..].to_vec();
        let extension = if prealloc == Prealloc::Zero {
            vec![format!("W({CHUNK},{CHUNK})"), "S".into()]
        } else {
            vec![format!("A({CHUNK},{CHUNK})")]
        };
        let mut want = extension;
        want.push(format!("W({used},{r})"));
        assert_eq!(tail, want, "{prealloc}: extended before the write");
    }
}

/// A batch that ends exactly at the preallocated end is not extended.
#[test]
fn a_batch_ending_at_the_preallocated_end_does_not_extend() {
    let f = Fixture::new(FsyncPolicy::No, BackendKind::Pwrite, Prealloc::Fallocate);
    {
        // Pad the pending batch so that it ends exactly at the chunk's end.
        let mut guard = f.core.lock();
        let st = &mut guard.0;
        st.pending.resize((CHUNK - H) as usize, 0);
        st.pending_records = 1;
        st.pending_last_lsn = 1;
    }
    f.ack(1).unwrap();
    assert_eq!(f.file_len(), CHUNK);
    assert_eq!(f.stats().prealloc_bytes, CHUNK - H);
}

/// Reopening an `mmap` log reserves, through its own handle, the space an earlier run
/// preallocated past the write position (stores go only into space the handle reserved);
/// other backends reserve nothing more.
#[test]
fn reopening_reserves_the_preallocated_space_for_mmap_only() {
    for kind in [BackendKind::Mmap, BackendKind::Pwrite] {
        let f = Fixture::new(FsyncPolicy::No, kind, Prealloc::Fallocate);
        f.write(1).unwrap();
        let next = H + record_len(1);
        let Fixture {
            dir,
            backend,
            faults,
            ..
        } = f;
        let path = dir.path().join("log");
        let file = backend
            .open(&path, crate::backend::OpenMode::Existing)
            .unwrap();
        let before = read_trace(&dir.path().join("io.trace"))
            .unwrap()
            .entries
            .len();
        let pos = LogPosition {
            next_offset: next,
            file_len: CHUNK,
            last_lsn: 1,
        };
        let f = Fixture::with(
            dir,
            backend,
            faults,
            file,
            path,
            pos,
            FsyncPolicy::No,
            kind,
            Prealloc::Fallocate,
        );
        let t = read_trace(&f.dir.path().join("io.trace")).unwrap();
        let reserved = shape(
            &t.entries[before..]
                .iter()
                .map(|e| e.op.clone())
                .collect::<Vec<_>>(),
        )
        .into_iter()
        .filter(|o| o.starts_with('A'))
        .collect::<Vec<_>>();
        let want = if kind == BackendKind::Mmap {
            vec![format!("A({next},{})", CHUNK - next)]
        } else {
            vec![]
        };
        assert_eq!(reserved, want, "{kind}");
        assert_eq!(f.file_len(), CHUNK, "{kind}");
    }
}

/// With `mmap` outside `always` a batch inside preallocated space is stored with the lock
/// held; one crossing the preallocated end first extends it.
#[test]
fn mmap_extends_before_a_batch_crosses_the_preallocated_end() {
    let f = Fixture::new(
        FsyncPolicy::EverySec,
        BackendKind::Mmap,
        Prealloc::Fallocate,
    );
    let r = record_len(1);
    let fit = (CHUNK - H) / r;
    for lsn in 1..=fit + 1 {
        f.write(lsn).unwrap();
    }
    let ops = shape(&f.ops());
    let crossing = H + fit * r;
    assert_eq!(
        ops[ops.len() - 2..],
        [format!("A({CHUNK},{CHUNK})"), format!("W({crossing},{r})")]
    );
    assert_eq!(f.file_len(), 2 * CHUNK);
    let s = f.stats();
    assert_eq!((s.records, s.write_batches), (fit + 1, fit + 1));
    assert_eq!(s.bytes_written, (fit + 1) * r);
    let data = std::fs::read(f.path()).unwrap();
    let mut all = Vec::new();
    for lsn in 1..=fit + 1 {
        record::encode(&mut all, lsn, Some(0), &cmd(lsn), u32::MAX).unwrap();
    }
    assert_eq!(&data[H as usize..][..all.len()], all.as_slice());
}

/// A write that fails poisons the log: its caller gets the I/O error naming the file and
/// offset, waiters and later calls get `Poisoned`, and nothing more is written or synced.
#[test]
fn a_failed_write_poisons_the_log() {
    for kind in [BackendKind::Pwrite, BackendKind::Mmap] {
        let f = Fixture::new(FsyncPolicy::EverySec, kind, Prealloc::Fallocate);
        f.write(1).unwrap();
        f.faults.short_write_after(0);
        let err = f.write(2).unwrap_err();
        let offset = H + record_len(1);
        match &err {
            Error::Io { op, offset: o, .. } => {
                assert_eq!((*op, *o), ("write", Some(offset)), "{kind}")
            }
            other => panic!("{kind}: {other}"),
        }
        assert_eq!(f.log.written_lsn(), 1);
        assert!(f.core.lock().0.check_poisoned().unwrap_err().is_poisoned());
        f.append(3);
        assert!(f.ack(3).unwrap_err().is_poisoned(), "{kind}");
        assert!(f.log.sync_written(&f.core).unwrap_err().is_poisoned());
        assert!(f.drain().unwrap_err().is_poisoned());
        assert_eq!(
            f.stats().syncs,
            0,
            "{kind}: nothing synced after the failure"
        );
    }
}

/// A failed `everysec` sync poisons the log and is never retried; the hint is not published.
#[test]
fn a_failed_sync_poisons_and_is_not_retried() {
    let f = Fixture::new(FsyncPolicy::EverySec, BackendKind::Pwrite, Prealloc::None);
    f.write(1).unwrap();
    f.faults.fail_sync(1);
    let syncs = f.faults.syncs();
    let err = f.log.sync_written(&f.core).unwrap_err();
    assert!(err.to_string().contains("fdatasync"), "{err}");
    assert_eq!(f.log.durable_lsn(), 0, "the failed sync covers nothing");
    assert_eq!(hint(&f), None);
    assert!(f.log.sync_written(&f.core).unwrap_err().is_poisoned());
    assert!(f.write(2).unwrap_err().is_poisoned());
    assert_eq!(f.faults.syncs(), syncs + 1, "never retried");
}

/// Under `always` a failed write+sync poisons; followers waiting on it get `Poisoned`.
#[test]
fn a_failed_inline_sync_fails_its_followers() {
    let f = Fixture::new(FsyncPolicy::Always, BackendKind::Pwrite, Prealloc::None);
    f.faults.fail_sync(1);
    let held = f.gate.close();
    std::thread::scope(|s| {
        let _release = OnDrop(|| f.gate.open());
        let leader = s.spawn(|| f.write(1));
        held_in_write(&held, &leader);
        f.append(2);
        let follower = s.spawn(|| f.ack(2));
        spin_until(
            "a follower waiting",
            || f.log.acked.waiting() == 1,
            || follower.is_finished(),
        );
        f.gate.open();
        let err = leader.join().unwrap().unwrap_err();
        assert!(err.to_string().contains("write+fdatasync"), "{err}");
        assert!(follower.join().unwrap().unwrap_err().is_poisoned());
    });
    assert_eq!((f.log.written_lsn(), f.log.durable_lsn()), (0, 0));
}

/// A failed drain sync poisons too.
#[test]
fn a_failed_drain_sync_poisons() {
    let f = Fixture::new(FsyncPolicy::No, BackendKind::Pwrite, Prealloc::None);
    f.write(1).unwrap();
    f.faults.fail_sync(1);
    assert!(f.drain().unwrap_err().to_string().contains("fdatasync"));
    assert_eq!(f.log.durable_lsn(), 0);
    assert!(f.write(2).unwrap_err().is_poisoned());
}

/// Preallocation of a new segment that fails poisons the log.
#[test]
fn a_failed_switch_poisons() {
    let f = Fixture::new(FsyncPolicy::No, BackendKind::Pwrite, Prealloc::Zero);
    let new_path = f.dir.path().join("log2");
    let file = create_log(f.backend.as_ref(), &new_path, 0).unwrap();
    f.faults.fill_disk_after(0);
    let err = {
        let mut guard = f.core.lock();
        let seg = Arc::new(Segment {
            file,
            path: new_path,
        });
        f.log.switch_segment(&mut guard.0, seg, H).unwrap_err()
    };
    assert!(matches!(err, Error::DiskFull { .. }), "{err}");
    assert!(f.write(1).unwrap_err().is_poisoned());
}
