//! The acknowledgement page: a file-backed shared memory page where a writer publishes, per
//! LSN, when it was assigned and when it was acknowledged, so that the acknowledgements
//! survive a SIGKILL of the writer's process (the page is `MAP_SHARED`: every store is in the
//! page cache the moment it is made; nothing needs flushing for another process to read it).
//!
//! Layout (little-endian `u64` words): a header of [`HEADER_WORDS`] words —
//! `magic, capacity, ready_ns, highest_acked, highest_issued, full_at_lsn, stall_started_ns,
//! pid, saves, saves_done, save_requests, save_requests_served` — then `ack_ns[capacity]`, then `issued_ns[capacity]` (slot `lsn - 1`; 0 =
//! never), then [`SAVE_SLOTS`] save records of 3 words `begin_ns, end_ns, lsn` (a snapshot or
//! rewrite: `end_ns` is published after it returned durable; `begin_ns` 0 when unknown).
//! Times are [`now_ns`] (`CLOCK_MONOTONIC`), the clock the crash lab and traces share.
//!
//! The page is also the crash lab's one way to ask the running worker for something: a save
//! (a backup's safe procedure, `crashlab::worker_save`). The lab maps the page too
//! ([`AckPage::open`]) and counts its requests up in `save_requests`; the worker saves and
//! then publishes, in `save_requests_served`, the highest request its durable save covers.
//!
//! Guarantee: an acknowledgement is published after `execute` returned (the time is read
//! after the return), so a published ack time below T proves the command was acknowledged
//! before T. An acknowledgement that returned just before a kill may be unpublished; that can
//! only make `acked(T)` smaller, never claim an acknowledgement that did not happen.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use durlab_engine::Lsn;
use durlab_engine::clock::now_ns;
use memmap2::{MmapOptions, MmapRaw};

use crate::driver::bench::AckHook;

/// `"DURLACK2"` (2: the header grew the save request words).
const MAGIC: u64 = u64::from_le_bytes(*b"DURLACK2");
/// Words before the per-LSN arrays.
pub const HEADER_WORDS: usize = 12;
/// Save records a page holds (later saves are not recorded: promises only get smaller).
pub const SAVE_SLOTS: usize = 4096;
/// Fewest LSNs a page holds (32 MiB file, sparse until written): the capacity of every page
/// before pages were sized from the trial length.
pub const MIN_CAPACITY_LSNS: u64 = 1 << 21;

/// The highest acknowledgement rate a page is sized for, per second: 18 times the 55,000/s
/// measured under policy `no` with one writer on a 2-core VM (the fastest path that logs),
/// so that a faster machine or more writers still fit.
pub const MAX_ACKS_PER_SEC: u64 = 1_000_000;

/// Seconds a writer may acknowledge beyond its trial before the kill: waiting for a sync
/// stall to begin (`everysec`'s first sync after 1 s) or the first save of a churning phase
/// (paced there), and the kill itself.
pub const ACK_SLACK_SECS: f64 = 5.0;

/// LSNs a page needs for a writer killed at most `run_secs` after it is ready (plus
/// [`ACK_SLACK_SECS`]) at up to [`MAX_ACKS_PER_SEC`]: 6 M for a 1 s trial, 50 M (an 800 MB
/// sparse file, of which only the written part takes space) for a 45 s one. Never below
/// [`MIN_CAPACITY_LSNS`]. A writer faster than the stated rate fills the page, and the trial
/// fails saying so rather than miss acknowledgements.
pub fn capacity_for(run_secs: f64) -> u64 {
    let secs = if run_secs.is_finite() {
        run_secs.max(0.0)
    } else {
        0.0
    };
    (((secs + ACK_SLACK_SECS) * MAX_ACKS_PER_SEC as f64).ceil() as u64).max(MIN_CAPACITY_LSNS)
}

const W_MAGIC: usize = 0;
const W_CAPACITY: usize = 1;
const W_READY: usize = 2;
const W_HIGHEST_ACKED: usize = 3;
const W_HIGHEST_ISSUED: usize = 4;
const W_FULL_AT: usize = 5;
const W_STALL_STARTED: usize = 6;
const W_PID: usize = 7;
const W_SAVES: usize = 8;
const W_SAVES_DONE: usize = 9;
const W_SAVE_REQUESTS: usize = 10;
const W_SAVE_REQUESTS_SERVED: usize = 11;

fn saves_word(capacity: u64) -> u64 {
    HEADER_WORDS as u64 + 2 * capacity
}

fn page_bytes(capacity: u64) -> u64 {
    (saves_word(capacity) + 3 * SAVE_SLOTS as u64) * 8
}

/// The writer's side: a mapped page. Cheap to share between writer threads (`&AckPage`):
/// `memmap2`'s [`MmapRaw`] is `Send` and `Sync` and hands out only raw pointers, which
/// [`AckPage::word`] turns into atomics.
#[derive(Debug)]
pub struct AckPage {
    map: MmapRaw,
    words: usize,
    capacity: u64,
    /// Kept open for the mapping's life; the file is never truncated while mapped.
    _file: File,
}

impl AckPage {
    /// Creates `path` (which must not exist) sized for `capacity` LSNs (a sparse file: only
    /// the pages written take space) and maps it shared (`MAP_SHARED`: every store is in the
    /// page cache at once, where a reader in another process, or after a SIGKILL, finds it).
    ///
    /// # Errors
    /// The file exists or cannot be created, sized or mapped (the error names the file).
    pub fn create(path: &Path, capacity: u64) -> io::Result<AckPage> {
        let named =
            |e: io::Error| io::Error::new(e.kind(), format!("ack page {}: {e}", path.display()));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(named)?;
        let bytes = page_bytes(capacity.max(1));
        file.set_len(bytes).map_err(named)?;
        let page = AckPage::map(file, bytes, capacity.max(1), named)?;
        page.word(W_MAGIC).store(MAGIC, Ordering::Release);
        page.word(W_CAPACITY)
            .store(page.capacity, Ordering::Release);
        page.word(W_PID)
            .store(u64::from(std::process::id()), Ordering::Release);
        Ok(page)
    }

    /// Maps the existing page `path` (made by [`AckPage::create`] in another process) shared,
    /// to ask its writer for saves ([`AckPage::request_save`]) while it runs.
    ///
    /// # Errors
    /// The file cannot be opened or mapped, has a bad magic number, or is shorter than its
    /// capacity says (the error names the file).
    pub fn open(path: &Path) -> io::Result<AckPage> {
        let named =
            |e: io::Error| io::Error::new(e.kind(), format!("ack page {}: {e}", path.display()));
        let capacity = AckLog::read_header(path)?.capacity.max(1);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(named)?;
        let bytes = page_bytes(capacity);
        let have = file.metadata().map_err(named)?.len();
        if have < bytes {
            return Err(named(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{have} bytes, but capacity {capacity} needs {bytes}"),
            )));
        }
        AckPage::map(file, bytes, capacity, named)
    }

    /// Maps the first `bytes` of `file` shared and writable, not populated (a sparse file
    /// stays sparse), as a page for `capacity` LSNs.
    ///
    /// # Errors
    /// `bytes` does not fit the address space, or the mapping fails (through `named`).
    fn map(
        file: File,
        bytes: u64,
        capacity: u64,
        named: impl Fn(io::Error) -> io::Error,
    ) -> io::Result<AckPage> {
        let len = usize::try_from(bytes).map_err(|_| {
            named(io::Error::new(
                io::ErrorKind::InvalidInput,
                "too large to map",
            ))
        })?;
        let map = MmapOptions::new().len(len).map_raw(&file).map_err(named)?;
        Ok(AckPage {
            map,
            words: len / 8,
            capacity,
            _file: file,
        })
    }

    fn word(&self, i: usize) -> &AtomicU64 {
        assert!(i < self.words, "ack page word {i} out of range");
        // SAFETY: `i` is in bounds of the mapping (checked above; `words` is its length / 8),
        // which is page-aligned (so 8-byte aligned) and stays mapped while `self` lives (the
        // file is created by `create` or checked by `open` to cover the mapping, is never
        // truncated, and `map` unmaps only on drop, which needs `&mut self`). `AtomicU64` has the layout of `u64`, and every access to the page in
        // this process goes through such atomics (no plain references alias it); other
        // processes reading the file see the stores through the shared page cache.
        unsafe { &*self.map.as_mut_ptr().cast::<AtomicU64>().add(i) }
    }

    /// LSNs this page can hold.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Marks the writer as running (the crash lab waits for this before it starts the clock).
    pub fn set_ready(&self) {
        self.word(W_READY).store(now_ns(), Ordering::Release);
    }

    /// Publishes when an injected sync stall began.
    pub fn set_stall_started(&self, ns: u64) {
        self.word(W_STALL_STARTED).store(ns, Ordering::Release);
    }

    /// Claims the next save record, begun at `begin_ns`; `None` once every slot is used.
    fn claim_save(&self, begin_ns: u64) -> Option<SaveSlot> {
        let i = self.word(W_SAVES).fetch_add(1, Ordering::AcqRel) as usize;
        if i >= SAVE_SLOTS {
            return None;
        }
        let slot = SaveSlot(saves_word(self.capacity) as usize + 3 * i);
        self.word(slot.0).store(begin_ns, Ordering::Release);
        Some(slot)
    }

    /// Saves published as durable so far.
    pub fn saves_done(&self) -> u64 {
        self.word(W_SAVES_DONE).load(Ordering::Acquire)
    }

    /// Claims the record of a save that begins now; `None` once every slot is used.
    pub fn save_began(&self) -> Option<SaveSlot> {
        self.claim_save(now_ns())
    }

    /// Publishes that the save of `slot` is durable up to `lsn` (call after it returned).
    pub fn save_done(&self, slot: SaveSlot, lsn: Lsn) {
        self.word(slot.0 + 2).store(lsn, Ordering::Release);
        self.word(slot.0 + 1).store(now_ns(), Ordering::Release);
        self.word(W_SAVES_DONE).fetch_add(1, Ordering::AcqRel);
    }

    /// The crash lab's side: asks the writer for one save; returns the request's number (1,
    /// 2, ...), which [`AckPage::save_requests_served`] reaches once a save begun after the
    /// request is durable.
    pub fn request_save(&self) -> u64 {
        self.word(W_SAVE_REQUESTS).fetch_add(1, Ordering::AcqRel) + 1
    }

    /// Save requests made so far (the writer's side polls this).
    pub fn save_requests(&self) -> u64 {
        self.word(W_SAVE_REQUESTS).load(Ordering::Acquire)
    }

    /// The writer's side: publishes that every request up to number `n` is served (call after
    /// a save begun after request `n` was made returned durable).
    pub fn serve_save_requests(&self, n: u64) {
        self.word(W_SAVE_REQUESTS_SERVED)
            .fetch_max(n, Ordering::AcqRel);
    }

    /// The highest request number served.
    pub fn save_requests_served(&self) -> u64 {
        self.word(W_SAVE_REQUESTS_SERVED).load(Ordering::Acquire)
    }

    /// Publishes a save noticed after it completed (its start unknown).
    pub fn save_noticed(&self, lsn: Lsn) {
        if let Some(slot) = self.claim_save(0) {
            self.save_done(slot, lsn);
        }
    }
}

/// A claimed save record of an [`AckPage`].
#[derive(Debug, Clone, Copy)]
pub struct SaveSlot(usize);

/// A completed (or interrupted) snapshot or rewrite, as published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Save {
    /// When it began (0: unknown, e.g. a save point noticed afterwards).
    pub begin_ns: u64,
    /// When it was known durable (0: it never finished).
    pub end_ns: u64,
    /// The LSN it covers.
    pub lsn: Lsn,
}

impl AckHook for AckPage {
    fn issued(&self, lsn: Lsn) {
        if (1..=self.capacity).contains(&lsn) {
            let slot = HEADER_WORDS + self.capacity as usize + (lsn - 1) as usize;
            self.word(slot).store(now_ns(), Ordering::Release);
        }
        self.word(W_HIGHEST_ISSUED).fetch_max(lsn, Ordering::AcqRel);
    }

    /// Stops the writer (returns false) once `lsn` no longer fits: then `full_at_lsn` is set
    /// and the crash lab refuses the trial rather than miss acknowledgements.
    fn acked(&self, lsn: Lsn) -> bool {
        if !(1..=self.capacity).contains(&lsn) {
            let _ =
                self.word(W_FULL_AT)
                    .compare_exchange(0, lsn, Ordering::AcqRel, Ordering::Acquire);
            return false;
        }
        let t = now_ns();
        self.word(HEADER_WORDS + (lsn - 1) as usize)
            .store(t, Ordering::Release);
        self.word(W_HIGHEST_ACKED).fetch_max(lsn, Ordering::AcqRel);
        true
    }
}

/// The reader's side: a copy of a page read after its writer stopped or died.
#[derive(Debug, Clone, Default)]
pub struct AckLog {
    pub capacity: u64,
    /// When the writer was ready (0: it never got there).
    pub ready_ns: u64,
    pub highest_acked: Lsn,
    /// The highest LSN ever assigned to a command.
    pub highest_issued: Lsn,
    /// The first LSN that did not fit (0: the page never filled).
    pub full_at_lsn: Lsn,
    pub stall_started_ns: u64,
    pub pid: u64,
    /// `ack_ns[lsn - 1]` for LSNs 1..=highest_issued (0: not acknowledged).
    pub ack_ns: Vec<u64>,
    /// `issued_ns[lsn - 1]` likewise.
    pub issued_ns: Vec<u64>,
    /// Saves in the order they began.
    pub saves: Vec<Save>,
    /// Saves begun (may exceed `saves.len()` when the slots ran out).
    pub saves_begun: u64,
    /// Saves published durable (counted even when the slots ran out).
    pub saves_done: u64,
}

impl AckLog {
    /// Reads the header of `path` only (cheap: for polling while the writer runs).
    ///
    /// # Errors
    /// I/O errors or a bad magic number, naming the file.
    pub fn read_header(path: &Path) -> io::Result<AckLog> {
        let file = File::open(path)
            .map_err(|e| io::Error::new(e.kind(), format!("ack page {}: {e}", path.display())))?;
        let mut head = [0u8; HEADER_WORDS * 8];
        file.read_exact_at(&mut head, 0).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("ack page {}: header: {e}", path.display()),
            )
        })?;
        let w = |i: usize| u64::from_le_bytes(head[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
        if w(W_MAGIC) != MAGIC {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("ack page {}: bad magic at byte 0", path.display()),
            ));
        }
        Ok(AckLog {
            capacity: w(W_CAPACITY),
            ready_ns: w(W_READY),
            highest_acked: w(W_HIGHEST_ACKED),
            highest_issued: w(W_HIGHEST_ISSUED),
            full_at_lsn: w(W_FULL_AT),
            stall_started_ns: w(W_STALL_STARTED),
            pid: w(W_PID),
            ack_ns: Vec::new(),
            issued_ns: Vec::new(),
            saves: Vec::new(),
            saves_begun: w(W_SAVES),
            saves_done: w(W_SAVES_DONE),
        })
    }

    /// Reads the header and the per-LSN times for LSNs 1..=highest issued.
    ///
    /// # Errors
    /// As [`AckLog::read_header`].
    pub fn read(path: &Path) -> io::Result<AckLog> {
        let mut log = AckLog::read_header(path)?;
        let file = File::open(path)?;
        let n = log.highest_issued.min(log.capacity) as usize;
        let read_words = |first: usize, n: usize| -> io::Result<Vec<u64>> {
            let mut buf = vec![0u8; n * 8];
            file.read_exact_at(&mut buf, (first * 8) as u64)
                .map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!("ack page {}: at byte {}: {e}", path.display(), first * 8),
                    )
                })?;
            Ok(buf
                .chunks_exact(8)
                .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
                .collect())
        };
        log.ack_ns = read_words(HEADER_WORDS, n)?;
        log.issued_ns = read_words(HEADER_WORDS + log.capacity as usize, n)?;
        let saves = (log.saves_begun as usize).min(SAVE_SLOTS);
        log.saves = read_words(saves_word(log.capacity) as usize, 3 * saves)?
            .chunks_exact(3)
            .map(|w| Save {
                begin_ns: w[0],
                end_ns: w[1],
                lsn: w[2],
            })
            .collect();
        Ok(log)
    }

    /// When `lsn` was acknowledged, if it was (and is on the page).
    pub fn ack_time_ns(&self, lsn: Lsn) -> Option<u64> {
        let t = *self
            .ack_ns
            .get(usize::try_from(lsn).ok()?.checked_sub(1)?)?;
        (t != 0).then_some(t)
    }

    /// acked(T): the highest LSN whose published acknowledgement time is before `t_ns`.
    pub fn acked_before(&self, t_ns: u64) -> Lsn {
        self.ack_ns
            .iter()
            .enumerate()
            .rev()
            .find(|&(_, &a)| a != 0 && a < t_ns)
            .map_or(0, |(i, _)| i as Lsn + 1)
    }

    /// The highest LSN covered by a save published durable before `t_ns` (0: none): what
    /// snapshot-only persistence promises after a crash at `t_ns`.
    pub fn saved_before(&self, t_ns: u64) -> Lsn {
        self.saves
            .iter()
            .filter(|s| s.end_ns != 0 && s.end_ns < t_ns)
            .map(|s| s.lsn)
            .max()
            .unwrap_or(0)
    }

    /// The save in progress at `t_ns` (begun before it, not published durable before it),
    /// with its number (0-based, in order of beginning).
    pub fn save_in_progress(&self, t_ns: u64) -> Option<(usize, Save)> {
        self.saves.iter().copied().enumerate().find(|(_, s)| {
            s.begin_ns != 0 && s.begin_ns <= t_ns && !(s.end_ns != 0 && s.end_ns < t_ns)
        })
    }

    /// Acknowledgement latencies (ack − assignment, ns) of the LSNs acknowledged before
    /// `t_ns` whose assignment time is in `[from_ns, to_ns)`.
    pub fn latencies_ns(&self, from_ns: u64, to_ns: u64, t_ns: u64) -> Vec<u64> {
        self.ack_ns
            .iter()
            .zip(&self.issued_ns)
            .filter(|&(&a, &i)| a != 0 && a < t_ns && i != 0 && i >= from_ns && i < to_ns)
            .map(|(&a, &i)| a.saturating_sub(i))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ack.page");
        let page = AckPage::create(&path, 4).unwrap();
        page.set_ready();
        for lsn in 1..=3 {
            page.issued(lsn);
            assert!(page.acked(lsn));
        }
        page.issued(5);
        assert!(!page.acked(5), "beyond capacity stops the writer");
        let t = now_ns() + 1;
        let log = AckLog::read(&path).unwrap();
        assert_eq!(
            (log.highest_acked, log.highest_issued, log.full_at_lsn),
            (3, 5, 5)
        );
        assert!(log.ready_ns > 0);
        assert_eq!(log.acked_before(t), 3);
        assert_eq!(log.acked_before(log.ack_time_ns(2).unwrap()), 1);
        assert_eq!(log.latencies_ns(0, u64::MAX, t).len(), 3);
        assert!(AckPage::create(&path, 4).is_err(), "never reuses a page");
    }

    /// A 45 s trial at 55,000 acknowledgements a second (what filled the old 2,097,152-slot
    /// page in 39 s) fits, with room for the stated maximum rate.
    #[test]
    fn capacity_covers_long_trials_at_full_speed() {
        let measured_rate = 55_000.0;
        assert!(capacity_for(45.0) as f64 >= 45.0 * measured_rate * 10.0);
        assert!(capacity_for(45.0) >= 45 * MAX_ACKS_PER_SEC);
        assert!(capacity_for(45.0) > capacity_for(6.0));
        assert_eq!(capacity_for(0.0), capacity_for(f64::NAN));
        assert!(capacity_for(0.0) >= MIN_CAPACITY_LSNS);
    }

    /// A page sized for a 45 s trial takes LSNs past the old capacity and reads them back; the
    /// companion: a page of the old size refuses the same LSN (the failure long trials hit).
    #[test]
    fn long_trial_page_takes_lsns_past_the_old_capacity() {
        let dir = tempfile::tempdir().unwrap();
        let high = MIN_CAPACITY_LSNS + 1000;
        let path = dir.path().join("long.page");
        let page = AckPage::create(&path, capacity_for(45.0)).unwrap();
        for lsn in [1, MIN_CAPACITY_LSNS, MIN_CAPACITY_LSNS + 1, high] {
            page.issued(lsn);
            assert!(page.acked(lsn), "LSN {lsn}");
        }
        let log = AckLog::read(&path).unwrap();
        assert_eq!((log.full_at_lsn, log.highest_acked), (0, high));
        assert_eq!(log.acked_before(now_ns() + 1), high);
        assert!(log.ack_time_ns(MIN_CAPACITY_LSNS + 1).is_some());
        assert_eq!(log.ack_time_ns(MIN_CAPACITY_LSNS + 2), None);
        // The last slot is in the file too (sparse until written).
        assert!(page.acked(page.capacity()));
        assert!(!page.acked(page.capacity() + 1));

        let old_path = dir.path().join("old.page");
        let old = AckPage::create(&old_path, MIN_CAPACITY_LSNS).unwrap();
        old.issued(MIN_CAPACITY_LSNS + 1);
        assert!(!old.acked(MIN_CAPACITY_LSNS + 1));
        let log = AckLog::read_header(&old_path).unwrap();
        assert_eq!(log.full_at_lsn, MIN_CAPACITY_LSNS + 1);
    }

    #[test]
    fn saves_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ack.page");
        let page = AckPage::create(&path, 4).unwrap();
        let first = page.save_began().unwrap();
        page.save_done(first, 3);
        let second = page.save_began().unwrap();
        let log = AckLog::read(&path).unwrap();
        assert_eq!(log.saves.len(), 2);
        let done = log.saves[0].end_ns;
        assert_eq!(log.saved_before(done), 0, "not before it was published");
        assert_eq!(log.saved_before(done + 1), 3);
        assert_eq!(log.save_in_progress(now_ns()).map(|(i, _)| i), Some(1));
        page.save_done(second, 7);
        page.save_noticed(9);
        let log = AckLog::read(&path).unwrap();
        assert_eq!(log.saved_before(u64::MAX), 9);
        assert_eq!(log.saves[2].begin_ns, 0, "noticed saves have no start");
        assert_eq!(log.save_in_progress(u64::MAX - 1), None);
    }

    /// Requests made through a second mapping (the crash lab's) reach the writer's, and its
    /// answer comes back; a file that is not a page is refused, naming it.
    #[test]
    fn save_requests_cross_mappings() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ack.page");
        let writer = AckPage::create(&path, 8).unwrap();
        let lab = AckPage::open(&path).unwrap();
        assert_eq!(lab.capacity(), 8);
        assert_eq!((writer.save_requests(), lab.save_requests_served()), (0, 0));
        assert_eq!(lab.request_save(), 1);
        assert_eq!(lab.request_save(), 2);
        assert_eq!(writer.save_requests(), 2);
        writer.serve_save_requests(2);
        writer.serve_save_requests(1);
        assert_eq!(lab.save_requests_served(), 2, "never goes back");

        let junk = dir.path().join("junk");
        std::fs::write(&junk, [0u8; HEADER_WORDS * 8]).unwrap();
        let err = AckPage::open(&junk).unwrap_err().to_string();
        assert!(err.contains("junk") && err.contains("bad magic"), "{err}");
        let short = dir.path().join("short");
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&short, &bytes[..HEADER_WORDS * 8]).unwrap();
        let err = AckPage::open(&short).unwrap_err().to_string();
        assert!(err.contains("short") && err.contains("needs"), "{err}");
    }
}
