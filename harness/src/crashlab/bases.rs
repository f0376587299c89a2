//! Replay bases shared by the recoveries of one trace's crash images
//! ([`durlab_engine::ReplayBase`]): the images of a trace share most of their log, so a
//! recovery that replayed many records offers its state, and later images whose log starts
//! with the same bytes resume from it. The engine compares those bytes itself when it opens an
//! image, so a base never decides a verdict: an image that matches no base is replayed from
//! its start, with the same result.

use std::sync::{Arc, Mutex, PoisonError};

use durlab_engine::{Engine, RecoveryReport, ReplayBase};

/// Bases kept per trace, at most: each holds a copy of a keyspace and of a log prefix.
const MAX_BASES: usize = 4;

/// A recovery that replayed at least this many records past the base it resumed from offers
/// its own state as a base (a copy of the keyspace costs about as much as replaying this many
/// records).
const NEW_BASE_RECORDS: u64 = 1024;

/// The bases of one trace's images, shared by the threads judging them.
#[derive(Debug, Default)]
pub struct Bases {
    pool: Mutex<Vec<Arc<ReplayBase>>>,
}

impl Bases {
    pub fn new() -> Bases {
        Bases::default()
    }

    /// The bases a log of `log_len` bytes may start with, longest first (a longer one cannot
    /// match), to try in that order ([`Engine::open_from`]).
    pub fn candidates(&self, log_len: u64) -> Vec<Arc<ReplayBase>> {
        let mut c: Vec<Arc<ReplayBase>> = self
            .lock()
            .iter()
            .filter(|b| b.len_bytes() <= log_len)
            .cloned()
            .collect();
        c.sort_by_key(|b| std::cmp::Reverse(b.len_bytes()));
        c
    }

    /// Keeps the state `engine` recovered (as `report` says) as a base when it replayed at
    /// least [`NEW_BASE_RECORDS`] records of its own; the oldest base goes when there are
    /// more than [`MAX_BASES`]. A base that cannot be made is simply not kept.
    pub fn offer(&self, engine: &Engine, report: &RecoveryReport) {
        if report.records_replayed < report.resumed_records + NEW_BASE_RECORDS {
            return;
        }
        let Ok(Some(base)) = engine.replay_base() else {
            return;
        };
        let mut pool = self.lock();
        pool.push(Arc::new(base));
        if pool.len() > MAX_BASES {
            pool.remove(0);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Arc<ReplayBase>>> {
        self.pool.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
