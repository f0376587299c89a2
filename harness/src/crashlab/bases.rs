//! Replay bases shared by the recoveries of one trace's crash images
//! ([`durlab_engine::ReplayBase`]): the images of a trace share most of their log, so a
//! recovery that replayed many records offers its state, and later images whose log starts
//! with the same bytes resume from it. The engine compares those bytes itself when it opens an
//! image, so a base never decides a verdict: an image that matches no base is replayed from
//! its start, with the same result.

use std::sync::{Arc, Mutex, PoisonError};

use durlab_engine::{Engine, RecoveryReport, ReplayBase};

/// Bases kept per trace, at most: each holds a keyspace and a log prefix, and a copy of the
/// keyspace per judging thread, lent to recoveries and put back ([`ReplayBase::idle_copies`]).
const MAX_BASES: usize = 4;

/// A recovery that replayed at least this many records past the base it resumed from offers
/// its own state as a base (keeping it costs a read of its log prefix; the keyspace is the
/// closed engine's own, [`Engine::into_replay_base`]).
const NEW_BASE_RECORDS: u64 = 1024;

/// The bases of one trace's images, shared by the threads judging them. When full, the base
/// least recently resumed from (or offered) goes: the base at a sync point, which every later
/// image of that sync's second starts with (their unsynced tails differ, so their own states
/// seldom prefix each other's), stays while it serves, instead of being pushed out by four
/// offers of one-off tails.
#[derive(Debug)]
pub struct Bases {
    pool: Mutex<Pool>,
    /// Records a recovery must replay past its base to offer its state.
    new_base_records: u64,
}

impl Default for Bases {
    fn default() -> Bases {
        Bases::with_new_base_records(NEW_BASE_RECORDS)
    }
}

#[derive(Debug, Default)]
struct Pool {
    /// Each base with the tick of its last use.
    bases: Vec<(Arc<ReplayBase>, u64)>,
    tick: u64,
    /// Recoveries that resumed from a base.
    resumed: u64,
}

impl Pool {
    fn tick(&mut self) -> u64 {
        self.tick += 1;
        self.tick
    }
}

impl Bases {
    pub fn new() -> Bases {
        Bases::default()
    }

    /// Bases offered by recoveries that replayed at least `records` records past their base
    /// (default [`NEW_BASE_RECORDS`]; tests of short traces take fewer).
    pub fn with_new_base_records(records: u64) -> Bases {
        Bases {
            pool: Mutex::default(),
            new_base_records: records,
        }
    }

    /// How many recoveries resumed from one of these bases ([`Bases::used`]).
    pub fn resumed(&self) -> u64 {
        self.lock().resumed
    }

    /// The bases a log of `log_len` bytes may start with, longest first (a longer one cannot
    /// match), to try in that order ([`Engine::open_from`]).
    pub fn candidates(&self, log_len: u64) -> Vec<Arc<ReplayBase>> {
        let mut c: Vec<Arc<ReplayBase>> = self
            .lock()
            .bases
            .iter()
            .map(|(b, _)| b)
            .filter(|b| b.len_bytes() <= log_len)
            .cloned()
            .collect();
        c.sort_by_key(|b| std::cmp::Reverse(b.len_bytes()));
        c
    }

    /// Notes that a recovery resumed from `base` (it is kept over bases unused since).
    pub fn used(&self, base: &ReplayBase) {
        let mut pool = self.lock();
        pool.resumed += 1;
        let tick = pool.tick();
        if let Some((_, last)) = pool
            .bases
            .iter_mut()
            .find(|(b, _)| std::ptr::eq(&**b, base))
        {
            *last = tick;
        }
    }

    /// Keeps the state `engine` recovered (as `report` says) as a base when it replayed at
    /// least [`NEW_BASE_RECORDS`] (or the count given) records of its own, and closes the engine; the base least
    /// recently used goes when there are more than [`MAX_BASES`]. A base that cannot be made
    /// is simply not kept.
    pub fn offer(&self, engine: Engine, report: &RecoveryReport) {
        if report.records_replayed < report.resumed_records + self.new_base_records {
            return;
        }
        let Ok(Some(base)) = engine.into_replay_base() else {
            return;
        };
        let evicted = {
            let mut pool = self.lock();
            let tick = pool.tick();
            pool.bases.push((Arc::new(base), tick));
            if pool.bases.len() > MAX_BASES {
                let lru = (0..pool.bases.len())
                    .min_by_key(|&i| pool.bases[i].1)
                    .expect("more than MAX_BASES");
                Some(pool.bases.swap_remove(lru))
            } else {
                None
            }
        };
        // Dropped outside the lock: freeing a keyspace takes a while.
        drop(evicted);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pool> {
        self.pool.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
