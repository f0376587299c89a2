//! The oracle at any LSN without replaying 1..r for every question: the crash images of one
//! trace ask for LSNs that mostly grow, so a [`Cursor`] moves forward, and a bounded set of
//! checkpoints lets it step back. [`Oracle`] keeps a pool of cursors for its workload, so
//! threads judging images at once each get their own.

use std::sync::{Arc, Mutex, PoisonError};

use durlab_engine::Lsn;

use super::model::Model;
use crate::workload::Workload;
use crate::workload::rng::CommandSeeds;

/// Checkpoints a cursor keeps at most (it thins them out and doubles the spacing beyond).
/// Each is a full copy of the model, so this bounds a cursor's memory to this many states;
/// a step back then replays at most an eighth of the distance covered.
pub const MAX_CHECKPOINTS: usize = 8;
/// LSNs between checkpoints at first.
const FIRST_SPACING_LSNS: Lsn = 4096;

/// The model after commands 1..=`lsn` of one workload, movable to any LSN.
#[derive(Debug, Clone)]
pub struct Cursor {
    lsn: Lsn,
    model: Model,
    seeds: CommandSeeds,
    /// Copies of the model at multiples of `spacing`, in LSN order.
    checkpoints: Vec<(Lsn, Model)>,
    spacing: Lsn,
}

impl Cursor {
    /// A cursor at LSN 0 (the empty state) of `workload`.
    pub fn new(workload: &Workload) -> Cursor {
        Cursor::with_spacing(workload, FIRST_SPACING_LSNS)
    }

    /// As [`Cursor::new`], with checkpoints every `spacing_lsns` LSNs at first.
    pub fn with_spacing(workload: &Workload, spacing_lsns: Lsn) -> Cursor {
        Cursor {
            lsn: 0,
            model: Model::new(),
            seeds: workload.command_seeds(),
            checkpoints: Vec::new(),
            spacing: spacing_lsns.max(1),
        }
    }

    /// The LSN the cursor is at.
    pub fn lsn(&self) -> Lsn {
        self.lsn
    }

    /// Moves to LSN `r` of `workload` (the workload it was made for) and returns the model
    /// there: equal to [`super::expected`]`(workload, r)`.
    pub fn seek(&mut self, workload: &Workload, r: Lsn) -> &Model {
        if r < self.lsn {
            match self.checkpoints.iter().rev().find(|(at, _)| *at <= r) {
                Some((at, model)) => {
                    self.lsn = *at;
                    self.model = model.clone();
                }
                None => {
                    self.lsn = 0;
                    self.model = Model::new();
                }
            }
        }
        while self.lsn < r {
            self.lsn += 1;
            self.model
                .apply(&workload.write_command(&mut self.seeds, self.lsn));
            if self.lsn.is_multiple_of(self.spacing)
                && self.checkpoints.last().is_none_or(|(at, _)| *at < self.lsn)
            {
                self.checkpoint();
            }
        }
        &self.model
    }

    fn checkpoint(&mut self) {
        if self.checkpoints.len() == MAX_CHECKPOINTS {
            self.spacing *= 2;
            let spacing = self.spacing;
            self.checkpoints.retain(|(at, _)| *at % spacing == 0);
            if !self.lsn.is_multiple_of(spacing) {
                return;
            }
        }
        self.checkpoints.push((self.lsn, self.model.clone()));
        debug_assert!(self.checkpoints.is_sorted_by_key(|(at, _)| *at));
    }
}

/// The oracle of one workload: the model at any LSN, through a pool of cursors. Cheap to
/// clone (clones share the pool).
#[derive(Debug, Clone)]
pub struct Oracle {
    workload: Workload,
    cursors: Arc<Mutex<Vec<Cursor>>>,
}

impl Oracle {
    pub fn new(workload: Workload) -> Oracle {
        Oracle {
            workload,
            cursors: Arc::default(),
        }
    }

    /// The workload whose commands the oracle replays.
    pub fn workload(&self) -> &Workload {
        &self.workload
    }

    /// Runs `f` on the model after commands 1..=`r`, with a cursor of the pool (the one
    /// nearest below `r` if several are free); the cursor returns to the pool afterwards.
    pub fn with_model<T>(&self, r: Lsn, f: impl FnOnce(&Model) -> T) -> T {
        let mut cursor = {
            let mut pool = self.cursors.lock().unwrap_or_else(PoisonError::into_inner);
            let nearest = (0..pool.len())
                .filter(|&i| pool[i].lsn() <= r)
                .max_by_key(|&i| pool[i].lsn());
            match nearest.or_else(|| pool.len().checked_sub(1)) {
                Some(i) => pool.swap_remove(i),
                None => Cursor::new(&self.workload),
            }
        };
        let out = f(cursor.seek(&self.workload, r));
        self.cursors
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(cursor);
        out
    }
}
