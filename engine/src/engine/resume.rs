//! Resuming a replay: the state that a log's first records make, kept from one recovery
//! ([`Engine::replay_base`]) and reused by the recovery of another log that starts with the
//! same bytes ([`Engine::open_from`]). The crash lab recovers hundreds of crash images of one
//! I/O trace, most of which share most of their log; replaying that shared part once instead
//! of once per image is what makes hundreds of states per second affordable.
//!
//! Replay is a pure function of the bytes read so far: record n is applied to the state of
//! records 1..n-1, and what follows record n (a torn tail, damage, zeros) decides only where
//! the log is cut, never what the records before it did. So a log whose first bytes are
//! exactly a base's bytes (compared byte for byte when it is opened, never trusted) recovers
//! to the same state from the base as from its start: its header is still verified, the records
//! after the base's bytes read and checked (length, checksum, LSN continuity from the base's
//! last LSN), and its tail classified and settled as in any recovery; only the base's records,
//! whose bytes were compared, are not checked and applied again.
//!
//! The base's keyspace is never written. A recovery gets a copy of it, lent
//! ([`ReplayBase::lend`]): the engine journals every change to the copy, and when the engine
//! is dropped the changes are undone and the copy waits for the next recovery
//! ([`Copies::put_back`]), so that a copy of every key is made once per base and concurrent
//! recovery instead of once per recovery.

use std::path::Path;
use std::sync::Arc;

use parking_lot::Mutex;

use super::Engine;
use crate::Lsn;
use crate::aof::file_header::{FILE_HEADER_BYTES, SYNC_HINT_OFFSET};
use crate::aof::writer::Segment;
use crate::backend::{BackendFile, read_exact_at};
use crate::error::{Error, Result};
use crate::keyspace::Keyspace;
use crate::recovery::Resume;

/// Bytes compared per read when a log is checked against a base.
const COMPARE_CHUNK_BYTES: usize = 1 << 20;

/// The base's last bytes, compared before the rest ([`ReplayBase::starts`]).
const TAIL_FIRST_BYTES: usize = 4096;

/// Copies of a base's keyspace kept idle for lending, at most: one per recovery running at
/// once from the same base (the crash lab judges images on every core); a copy put back when
/// this many wait is dropped.
const MAX_IDLE_COPIES: usize = 8;

/// The state a log's first records make (mode `aof`): the log's bytes from its start to the
/// end of those records, how many records they are, and the keyspace they replay to.
#[derive(Debug, Clone)]
pub struct ReplayBase {
    /// The log's bytes `0..end of the last record`. The sync hint (header area bytes 32..64)
    /// is not compared: it is rewritten after syncs, says nothing about what the records hold,
    /// and recovery reads it from the log being opened.
    prefix: Arc<[u8]>,
    records: u64,
    last_lsn: Lsn,
    /// Marked as a base ([`Keyspace::mark_base`]); never written.
    keyspace: Keyspace,
    /// Copies of `keyspace` not lent at present.
    copies: Arc<Copies>,
}

/// Copies of one base's keyspace waiting to be lent, each exactly equal to the base's
/// keyspace, and where a recovering engine puts its copy back.
#[derive(Debug)]
pub(crate) struct Copies {
    idle: Mutex<Vec<Keyspace>>,
}

impl Copies {
    /// Puts back `keyspace`, lent from this base: its changes are undone and it waits for the
    /// next recovery. A copy that cannot be put back (its journal was dropped for holding too
    /// many changes, or it became a base: [`Keyspace::mark_base`]) or that would exceed
    /// [`MAX_IDLE_COPIES`] is dropped.
    pub(crate) fn put_back(&self, mut keyspace: Keyspace) {
        // Undone outside the lock: the time it takes grows with the changes.
        if keyspace.put_back() {
            let mut idle = self.idle.lock();
            if idle.len() < MAX_IDLE_COPIES {
                idle.push(keyspace);
                return;
            }
        }
        drop(keyspace);
    }
}

impl ReplayBase {
    /// Records the base holds the state of.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// LSN of the last of them.
    pub fn last_lsn(&self) -> Lsn {
        self.last_lsn
    }

    /// Bytes of the log they span (the header area included).
    pub fn len_bytes(&self) -> u64 {
        self.prefix.len() as u64
    }

    /// Where a scan of a log starting with the base's bytes resumes.
    pub(crate) fn resume(&self) -> Resume {
        Resume {
            offset: self.len_bytes(),
            records: self.records,
            last_lsn: self.last_lsn,
        }
    }

    /// The keyspace those records replay to.
    pub fn keyspace(&self) -> &Keyspace {
        &self.keyspace
    }

    /// Copies of the base's keyspace waiting to be lent to a recovery (see the module docs).
    pub fn idle_copies(&self) -> usize {
        self.copies.idle.lock().len()
    }

    /// A keyspace equal to the base's, lent to one recovery: an idle copy, or a new one. Its
    /// changes are journaled; give it back to the returned [`Copies`] once done.
    pub(crate) fn lend(&self) -> (Keyspace, Arc<Copies>) {
        let idle = self.copies.idle.lock().pop();
        let mut keyspace = idle.unwrap_or_else(|| self.keyspace.clone());
        keyspace.lend_from(&self.keyspace);
        (keyspace, self.copies.clone())
    }

    /// The base's records, as [`ReplayBase::records`] and [`ReplayBase::len_bytes`] say,
    /// before opening a log: whether `file` (at `path`) starts with exactly the base's bytes
    /// (sync hint excepted).
    ///
    /// # Errors
    /// An I/O error reading `file`.
    pub(crate) fn starts(&self, file: &dyn BackendFile, path: &Path) -> Result<bool> {
        let io_err = |op, offset| move |e| Error::io(op, path, offset, e);
        let want = self.prefix.len() as u64;
        if file.len().map_err(io_err("stat", None))? < want {
            return Ok(false);
        }
        // The last bytes first: the logs of one trace's crash images share their start and
        // differ in their tails, so a base that does not match mostly differs there, and one
        // short read says so instead of a compare of the whole prefix. Every byte is then
        // compared from the start as before (the tail's bytes again).
        let tail = TAIL_FIRST_BYTES.min(self.prefix.len());
        let tail_at = self.prefix.len() - tail;
        let mut buf = vec![0u8; tail];
        read_exact_at(file, &mut buf, tail_at as u64)
            .map_err(io_err("read", Some(tail_at as u64)))?;
        if !same_outside_hint(&buf, &self.prefix[tail_at..], tail_at) {
            return Ok(false);
        }
        let mut buf = vec![0u8; COMPARE_CHUNK_BYTES.min(self.prefix.len())];
        let mut at = 0usize;
        while at < self.prefix.len() {
            let n = buf.len().min(self.prefix.len() - at);
            read_exact_at(file, &mut buf[..n], at as u64)
                .map_err(io_err("read", Some(at as u64)))?;
            if !same_outside_hint(&buf[..n], &self.prefix[at..at + n], at) {
                return Ok(false);
            }
            at += n;
        }
        Ok(true)
    }
}

/// Whether `a` and `b` (both at file offset `at`) are equal outside the sync hint.
fn same_outside_hint(a: &[u8], b: &[u8], at: usize) -> bool {
    let hint = SYNC_HINT_OFFSET as usize..FILE_HEADER_BYTES;
    let local = |x: usize| x.saturating_sub(at).min(a.len());
    let (from, to) = (local(hint.start), local(hint.end));
    a[..from] == b[..from] && a[to..] == b[to..]
}

/// What a mode-`aof` engine replayed at open: where its records end, how many there are, and
/// the LSN of the last ([`Engine::replay_base`]).
#[derive(Debug)]
pub(crate) struct Replayed {
    pub(crate) segment: Arc<Segment>,
    pub(crate) end_offset: u64,
    pub(crate) records: u64,
    pub(crate) last_lsn: Lsn,
}

impl Engine {
    /// The state this engine recovered at open, as a base for opening other logs that start
    /// with the same bytes ([`Engine::open_from`]): its log's bytes up to the end of the
    /// recovered records, read back from the file, and a copy of its keyspace (entries shared
    /// until written). `None` in modes other than `aof`, under policy `off`, or once a write
    /// has been executed since open.
    ///
    /// # Errors
    /// An I/O error reading the log back.
    pub fn replay_base(&self) -> Result<Option<ReplayBase>> {
        self.base_with(|keyspace| keyspace.clone())
    }

    /// [`Engine::replay_base`], closing the engine: when this is the engine's last handle, its
    /// keyspace becomes the base's without a copy (a copy of every key costs as much as
    /// replaying thousands of records, and the engine would drop its keyspace anyway); else
    /// (another clone of the engine is alive and still reads it) the keyspace is copied.
    ///
    /// # Errors
    /// As [`Engine::replay_base`]; the engine is closed either way.
    pub fn into_replay_base(self) -> Result<Option<ReplayBase>> {
        if Arc::strong_count(&self.inner) > 1 {
            return self.replay_base();
        }
        // The last handle: nothing reads this keyspace after `self` is dropped below.
        self.base_with(std::mem::take)
    }

    /// The base of what open replayed, with the keyspace that `take` makes of the engine's.
    fn base_with(
        &self,
        take: impl FnOnce(&mut Keyspace) -> Keyspace,
    ) -> Result<Option<ReplayBase>> {
        let shared = &*self.inner.shared;
        let Some(r) = &shared.replayed else {
            return Ok(None);
        };
        let mut core = shared.core.lock();
        if core.last_lsn != r.last_lsn {
            return Ok(None);
        }
        let mut keyspace = take(&mut core.keyspace);
        drop(core);
        // A keyspace lent to this engine becomes a base of its own: its changes stay.
        keyspace.mark_base();
        let mut prefix = vec![0u8; r.end_offset as usize];
        read_exact_at(r.segment.file.as_ref(), &mut prefix, 0)
            .map_err(|e| Error::io("read", &r.segment.path, Some(0), e))?;
        Ok(Some(ReplayBase {
            prefix: prefix.into(),
            records: r.records,
            last_lsn: r.last_lsn,
            keyspace,
            copies: Arc::new(Copies {
                idle: Mutex::new(Vec::new()),
            }),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::{Copies, MAX_IDLE_COPIES, same_outside_hint};
    use crate::keyspace::Keyspace;
    use parking_lot::Mutex;

    /// The keys a lent copy lists against its base are its journal's: a key added and removed
    /// again is among them (a scan of both keyspaces would not list it), and only against
    /// that base.
    #[test]
    fn a_lent_copy_lists_its_journal_against_its_base() {
        use crate::keyspace::Command;
        let set = |k: &[u8]| Command::Set {
            key: k.to_vec(),
            value: b"v".to_vec(),
        };
        let mut base = Keyspace::new();
        base.apply(&set(b"a"));
        let mut other = base.clone();
        let lineage = base.mark_base();
        assert_ne!(lineage, 0);
        assert_ne!(other.mark_base(), lineage, "each base its own lineage");
        let mut copy = base.clone();
        copy.lend_from(&base);
        copy.apply(&set(b"x"));
        copy.apply(&Command::Del { key: b"x".to_vec() });
        assert!(
            copy.changed_keys(&base).contains(&&b"x"[..]),
            "the journal's keys"
        );
        assert!(
            copy.changed_keys(&other).is_empty(),
            "another base: the scan"
        );
        // Marked as a base itself, the copy keeps its state and has no journal to undo.
        copy.mark_base();
        assert!(!copy.put_back());
    }

    /// Copies put back wait up to the limit; one more is dropped, and so is a keyspace that
    /// was not lent (nothing says it equals the base).
    #[test]
    fn idle_copies_stop_at_their_limit() {
        let copies = Copies {
            idle: Mutex::new(Vec::new()),
        };
        copies.put_back(Keyspace::new());
        assert_eq!(copies.idle.lock().len(), 0, "not lent: dropped");
        let mut base = Keyspace::new();
        base.mark_base();
        for n in 1..=MAX_IDLE_COPIES + 2 {
            let mut lent = Keyspace::new();
            lent.lend_from(&base);
            copies.put_back(lent);
            assert_eq!(copies.idle.lock().len(), n.min(MAX_IDLE_COPIES), "copy {n}");
        }
    }

    #[test]
    fn the_sync_hint_alone_is_not_compared() {
        let a: Vec<u8> = (0..100u8).collect();
        for i in 0..100usize {
            let mut b = a.clone();
            b[i] ^= 1;
            let in_hint = (32..64).contains(&i);
            assert_eq!(same_outside_hint(&a, &b, 0), in_hint, "byte {i}");
            // The same bytes seen from a later offset: nothing of them is the hint.
            assert!(!same_outside_hint(&a, &b, 64), "byte {i} at offset 64");
            // A chunk starting inside the hint.
            assert_eq!(
                same_outside_hint(&a, &b, 40),
                i < 24,
                "byte {i} at offset 40"
            );
        }
    }
}
