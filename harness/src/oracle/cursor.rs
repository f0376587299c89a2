//! The oracle at any LSN without replaying 1..r for every question: the crash images of one
//! trace ask for LSNs that mostly grow, so a [`Cursor`] moves forward; it steps back a little
//! by undoing its last commands (what each changed, kept for the last [`UNDO_LSNS`]), and
//! further through a bounded set of checkpoints. [`Oracle`] keeps a pool of cursors for its
//! workload, so threads judging images at once each get their own.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use durlab_engine::{Command, Lsn};

use super::compare;
use super::model::{Model, ModelEntry, ModelValue, Op};
use crate::workload::Workload;
use crate::workload::rng::CommandSeeds;

/// Checkpoints a cursor keeps at most (it thins them out and doubles the spacing beyond).
/// Each is a full copy of the model, so this bounds a cursor's memory to this many states;
/// a step back then replays at most an eighth of the distance covered.
pub const MAX_CHECKPOINTS: usize = 8;
/// LSNs between checkpoints at first.
const FIRST_SPACING_LSNS: Lsn = 4096;

/// Commands a cursor can undo, at most: the crash images of a trace recover to LSNs that
/// jitter by up to the policy's loss window (a second or two of commands) around a front that
/// grows, and undoing a step costs about as much as applying it, where a checkpoint costs a
/// copy of the whole model.
pub const UNDO_LSNS: usize = 1 << 15;

/// The largest entry a cursor copies to undo a command, in elements ([`elements`]). An
/// undo record is a copy of each entry its command addresses, so a stream of thousands of
/// entries would be copied at every `XADD` (event-stream's oracle spent most of its time
/// there, and its memory on 32k such copies). A command on a larger entry ends the undo log
/// instead: a step back past it goes through a checkpoint.
pub const UNDO_MAX_ELEMENTS: usize = 32;

/// What one command changed: the previous entries of the keys it addresses (`None`: absent),
/// or the whole previous map for a command that may change any key.
#[derive(Debug, Clone)]
enum Undo {
    Keys(Vec<(Vec<u8>, Option<ModelEntry>)>),
    All(BTreeMap<Vec<u8>, ModelEntry>),
}

/// The model after commands 1..=`lsn` of one workload, movable to any LSN.
#[derive(Debug, Clone)]
pub struct Cursor {
    lsn: Lsn,
    model: Model,
    seeds: CommandSeeds,
    /// Copies of the model at multiples of `spacing`, in LSN order.
    checkpoints: Vec<(Lsn, Model)>,
    spacing: Lsn,
    /// How to undo commands `lsn - undo.len() + 1..=lsn`, oldest first.
    undo: VecDeque<Undo>,
    /// At most this many.
    undo_lsns: usize,
    /// Entries larger than this are not copied to undo ([`UNDO_MAX_ELEMENTS`]).
    undo_max_elements: usize,
}

impl Cursor {
    /// A cursor at LSN 0 (the empty state) of `workload`.
    pub fn new(workload: &Workload) -> Cursor {
        Cursor::with_spacing(workload, FIRST_SPACING_LSNS)
    }

    /// As [`Cursor::new`], with checkpoints every `spacing_lsns` LSNs at first.
    pub fn with_spacing(workload: &Workload, spacing_lsns: Lsn) -> Cursor {
        Cursor::with_limits(workload, spacing_lsns, UNDO_LSNS)
    }

    /// As [`Cursor::with_spacing`], undoing at most `undo_lsns` commands (0: every step
    /// back goes through a checkpoint).
    pub fn with_limits(workload: &Workload, spacing_lsns: Lsn, undo_lsns: usize) -> Cursor {
        Cursor {
            undo_lsns,
            undo_max_elements: UNDO_MAX_ELEMENTS,
            lsn: 0,
            model: Model::new(),
            seeds: workload.command_seeds(),
            checkpoints: Vec::new(),
            spacing: spacing_lsns.max(1),
            undo: VecDeque::new(),
        }
    }

    /// As this cursor, copying entries of at most `elements` elements to undo (default
    /// [`UNDO_MAX_ELEMENTS`]).
    pub fn with_undo_max_elements(mut self, elements: usize) -> Cursor {
        self.undo_max_elements = elements;
        self
    }

    /// Whether the cursor can reach `r` by undoing commands (`r` at most its LSN).
    fn can_undo_to(&self, r: Lsn) -> bool {
        r <= self.lsn && self.lsn - r <= self.undo.len() as Lsn
    }

    /// The LSN the cursor is at.
    pub fn lsn(&self) -> Lsn {
        self.lsn
    }

    /// Moves to LSN `r` of `workload` (the workload it was made for) and returns the model
    /// there: equal to [`super::expected`]`(workload, r)`.
    pub fn seek(&mut self, workload: &Workload, r: Lsn) -> &Model {
        self.seek_with(workload, r, |_| None)
    }

    /// [`Cursor::seek`], taking command n from `kept(n)` where it gives one (the same
    /// command: generated once for every cursor of an [`Oracle`]), else generating it.
    fn seek_with(
        &mut self,
        workload: &Workload,
        r: Lsn,
        kept: impl Fn(Lsn) -> Option<Arc<Step>>,
    ) -> &Model {
        self.rewind(r);
        while self.lsn < r {
            let n = self.lsn + 1;
            match kept(n) {
                Some(step) => self.step(&step),
                None => {
                    let cmd = workload.write_command(&mut self.seeds, n);
                    self.step(&Step::of(&cmd));
                }
            }
        }
        &self.model
    }

    /// Moves back to LSN `r` if it is behind: by undoing commands, else to the checkpoint at
    /// or below it (or the start).
    fn rewind(&mut self, r: Lsn) {
        if self.can_undo_to(r) {
            while self.lsn > r {
                match self
                    .undo
                    .pop_back()
                    .expect("can_undo_to checked the length")
                {
                    Undo::Keys(keys) => {
                        for (key, old) in keys.into_iter().rev() {
                            match old {
                                Some(e) => self.model.map.insert(key, e),
                                None => self.model.map.remove(&key),
                            };
                        }
                    }
                    Undo::All(map) => self.model.map = map,
                }
                self.lsn -= 1;
            }
        } else if r < self.lsn {
            self.undo.clear();
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
    }

    /// Applies `step`, the command of LSN `lsn + 1`, keeping its undo and a checkpoint when
    /// due. The reply is not built ([`Model::run_quiet`]: the same changes as
    /// [`Model::apply`]).
    fn step(&mut self, step: &Step) {
        self.lsn += 1;
        if self.undo_lsns > 0 {
            if self.undo.len() >= self.undo_lsns {
                self.undo.pop_front();
            }
            match self.undo_of(step.keys.as_deref()) {
                Some(undo) => self.undo.push_back(undo),
                // Commands before this one can no longer be undone either.
                None => self.undo.clear(),
            }
        }
        self.model.run_quiet(&step.op);
        if self.lsn.is_multiple_of(self.spacing)
            && self.checkpoints.last().is_none_or(|(at, _)| *at < self.lsn)
        {
            self.checkpoint();
        }
    }

    /// How to undo a command addressing `keys` ([`command_keys`]) on the current model;
    /// `None` when that would copy an entry of more than `undo_max_elements` elements, or the
    /// whole map.
    fn undo_of(&self, keys: Option<&[Vec<u8>]>) -> Option<Undo> {
        let small = |e: &ModelEntry| elements(e) <= self.undo_max_elements;
        match keys {
            Some(keys) => {
                // Checked before anything is copied.
                if !keys.iter().all(|k| self.model.map.get(k).is_none_or(small)) {
                    return None;
                }
                let undo = keys
                    .iter()
                    .map(|k| (k.clone(), self.model.map.get(k).cloned()))
                    .collect();
                Some(Undo::Keys(undo))
            }
            None if self.model.map.values().all(small)
                && self.model.map.len() <= self.undo_max_elements =>
            {
                Some(Undo::All(self.model.map.clone()))
            }
            None => None,
        }
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

/// The size of `e` for [`UNDO_MAX_ELEMENTS`]: its fields, members or stream entries and
/// groups, a string one per started KiB.
fn elements(e: &ModelEntry) -> usize {
    match &e.value {
        ModelValue::Str(v) => 1 + v.len() / 1024,
        ModelValue::Hash(m) => m.len(),
        ModelValue::ZSet(m) => m.len(),
        ModelValue::Stream {
            entries, groups, ..
        } => entries.len() + groups.len(),
    }
}

/// The oracle of one workload: the model at any LSN, through a pool of cursors. Cheap to
/// clone (clones share the pool).
#[derive(Debug, Clone)]
pub struct Oracle {
    workload: Workload,
    cursors: Arc<Mutex<Vec<Cursor>>>,
    written: Arc<Mutex<Written>>,
}

/// Write commands the oracle keeps for its cursors, at most (their memory: a command is
/// about a hundred bytes): the first this many LSNs are generated once and replayed by every
/// cursor from the store; beyond, each cursor generates its own, as [`Cursor::seek`] does.
/// A step back through a checkpoint replays thousands of commands, and generating one costs
/// about as much as applying it.
pub const MAX_KEPT_COMMANDS: usize = 1 << 18;

/// One write command as a cursor applies it: the model's command ([`compare::op`] of the
/// engine's, converted once) and the keys it addresses ([`command_keys`]).
#[derive(Debug)]
pub(crate) struct Step {
    op: Op,
    keys: Option<Box<[Vec<u8>]>>,
}

impl Step {
    fn of(cmd: &Command) -> Step {
        Step {
            op: compare::op(cmd),
            keys: command_keys(cmd),
        }
    }
}

/// The write commands of the workload by LSN (the first [`MAX_KEPT_COMMANDS`]) and the keys
/// each addresses (all asked for), generated once as far as asked.
#[derive(Debug)]
struct Written {
    seeds: CommandSeeds,
    /// Index `n - 1`: the keys of command `n`, or `None` for a command that may change any
    /// key (`FLUSHALL`).
    by_lsn: Vec<Option<Box<[Vec<u8>]>>>,
    /// Index `n - 1`: command `n`.
    commands: Vec<Arc<Step>>,
}

impl Written {
    /// Generates commands up to LSN `to` (keeping the first [`MAX_KEPT_COMMANDS`]).
    fn extend(&mut self, workload: &Workload, to: Lsn) {
        while (self.by_lsn.len() as Lsn) < to {
            let n = self.by_lsn.len() as Lsn + 1;
            let cmd = workload.write_command(&mut self.seeds, n);
            self.by_lsn.push(command_keys(&cmd));
            if self.commands.len() < MAX_KEPT_COMMANDS {
                self.commands.push(Arc::new(Step::of(&cmd)));
            }
        }
    }

    /// Command `n` (from 1), when it is among those kept.
    fn command(&mut self, workload: &Workload, n: Lsn) -> Option<Arc<Step>> {
        if n as usize > MAX_KEPT_COMMANDS {
            return None;
        }
        self.extend(workload, n);
        self.commands.get(n as usize - 1).cloned()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The keys `cmd` addresses (a transaction's sub-commands' included), or `None` when it may
/// change any key.
fn command_keys(cmd: &Command) -> Option<Box<[Vec<u8>]>> {
    match cmd {
        Command::Multi { cmds } => {
            let mut keys = Vec::new();
            for c in cmds {
                keys.extend(command_keys(c)?);
            }
            Some(keys.into())
        }
        other => other.key().map(|k| vec![k.to_vec()].into()),
    }
}

impl Oracle {
    pub fn new(workload: Workload) -> Oracle {
        let seeds = workload.command_seeds();
        Oracle {
            workload,
            cursors: Arc::default(),
            written: Arc::new(Mutex::new(Written {
                seeds,
                by_lsn: Vec::new(),
                commands: Vec::new(),
            })),
        }
    }

    /// Calls `f` with every key that write commands `from + 1..=to` address (a key once per
    /// command), and returns true; false, having stopped, when one of them may change any key
    /// (`FLUSHALL`). Outside these keys, the model at `to` equals the model at `from`: the
    /// model's commands change only the keys they address.
    pub fn keys_written(&self, from: Lsn, to: Lsn, mut f: impl FnMut(&[u8])) -> bool {
        let mut w = lock(&self.written);
        w.extend(&self.workload, to);
        let range = from.min(to) as usize..to as usize;
        for keys in &w.by_lsn[range] {
            match keys {
                Some(keys) => keys.iter().for_each(|k| f(k)),
                None => return false,
            }
        }
        true
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
            // The cheapest move: fewest commands to apply or undo; else (a step back past
            // every cursor's undo log) any cursor, through its checkpoints.
            let cost = |c: &Cursor| {
                if c.lsn() <= r {
                    Some(r - c.lsn())
                } else {
                    c.can_undo_to(r).then(|| c.lsn() - r)
                }
            };
            let cheapest = (0..pool.len())
                .filter_map(|i| cost(&pool[i]).map(|d| (d, i)))
                .min()
                .map(|(_, i)| i);
            match cheapest.or_else(|| pool.len().checked_sub(1)) {
                Some(i) => pool.swap_remove(i),
                None => Cursor::new(&self.workload),
            }
        };
        let kept = |n| lock(&self.written).command(&self.workload, n);
        let out = f(cursor.seek_with(&self.workload, r, kept));
        self.cursors
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(cursor);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How many of a set of LSNs, forward and back, [`Oracle::with_model`] (its cursors
    /// replaying the kept commands) gets a model different from [`super::super::expected`]
    /// at, after `spoil` changed the kept commands.
    fn models_differing(spoil: &dyn Fn(&mut Written)) -> usize {
        let w = Workload::new(&crate::scenario::builtin::scenario().workload);
        let o = Oracle::new(w.clone());
        {
            let mut written = lock(&o.written);
            written.extend(&w, 600);
            spoil(&mut written);
        }
        [50, 150, 120, 400, 90, 300, 599, 5000, 4999, 4100]
            .into_iter()
            .filter(|&r| o.with_model(r, Model::clone) != super::super::expected(&w, r))
            .count()
    }

    #[test]
    fn kept_commands_give_the_models_of_generated_ones() {
        assert_eq!(models_differing(&|_| {}), 0);
    }

    /// The companion: a kept command that is not the workload's command of its LSN is seen.
    #[test]
    fn a_wrong_kept_command_is_seen() {
        let wrong = models_differing(&|w| w.commands[99] = w.commands[0].clone());
        assert!(wrong >= 5, "{wrong} models differ");
    }
}
