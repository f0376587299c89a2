//! The oracle at any LSN without replaying 1..r for every question: the crash images of one
//! trace ask for LSNs that mostly grow, so a [`Cursor`] moves forward; it steps back a little
//! by undoing its last commands (what each changed, kept for the last [`UNDO_LSNS`]), and
//! further, or forward a long way, from a checkpoint (a copy of the model at a multiple of
//! the checkpoint spacing). [`Oracle`] keeps a pool of cursors for its workload, so threads
//! judging images at once each get their own, and one set of checkpoints they all share and
//! fill ([`Checkpoints`]).
//!
//! Each crash image asks twice, at LSNs far apart under policy `no`: at r, the LSN its
//! recovery reached (the comparison), and at the highest LSN acknowledged before its crash
//! (the delivery verdicts: [`crate::crashlab::verdict::Judgement::deliveries`]). A cursor
//! that overshot, or is far behind, restores the nearest checkpoint at or below the LSN asked
//! when that is cheaper than undoing or replaying, and the pool hands out the cursor with
//! the cheapest move.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use durlab_engine::{Command, Lsn};

use super::compare;
use super::model::{Model, ModelEntry, ModelValue, Op};
use crate::workload::Workload;
use crate::workload::rng::CommandSeeds;

/// Checkpoints kept at most, per set of checkpoints (one per [`Oracle`], shared by its
/// cursors; one per cursor made alone): beyond, the spacing doubles and the checkpoints off
/// it are dropped.
pub const MAX_CHECKPOINTS: usize = 64;
/// The size the checkpoints of one set may add up to, in bytes as [`model_bytes`] estimates
/// them (keys, values, fields, entries and groups, with a fixed overhead per item); beyond,
/// the spacing doubles as for [`MAX_CHECKPOINTS`]. Each checkpoint is a full copy of the
/// model, so this and [`MAX_CHECKPOINTS`] bound their memory: about 256 MiB per oracle (as
/// estimated), plus one model per cursor (one per thread judging at once) beside them. A
/// single checkpoint larger than the budget is not kept.
pub const MAX_CHECKPOINT_BYTES: usize = 256 << 20;
/// LSNs between checkpoints at first: a step from one costs one copy of the model and at
/// most this many commands (the spacing doubles as the history and the model grow:
/// [`MAX_CHECKPOINTS`], [`MAX_CHECKPOINT_BYTES`], `Checkpoints::fit`).
const FIRST_SPACING_LSNS: Lsn = 256;
/// What restoring a checkpoint costs, in commands replayed, per byte of it
/// ([`model_bytes`]): copying (and later dropping) a model costs about as much as applying a
/// command per 128 bytes of it (a stream entry, with its shared fields, counts 16 bytes). A
/// model of many small keys costs an allocation per key and per value to copy and to free:
/// at 512 bytes per command, crawler-counters' 100k-key model was restored where replaying
/// was cheaper, and its torn images verified at 0.6-0.8x the states per second of the
/// per-cursor checkpoints before (one sitting, docs/results.md).
const RESTORE_BYTES_PER_COMMAND: usize = 128;

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

/// Copies of the model at multiples of a spacing, shared by the cursors of an [`Oracle`]:
/// a cursor passing a multiple that has none adds it; a cursor moving to an LSN may start
/// from the nearest at or below it. Bounded by [`MAX_CHECKPOINTS`] and
/// [`MAX_CHECKPOINT_BYTES`].
#[derive(Debug)]
struct Checkpoints {
    spacing: Lsn,
    /// (LSN, the model there, its [`model_bytes`]), in LSN order.
    at: Vec<(Lsn, Arc<Model>, usize)>,
    /// The sum of their bytes.
    bytes: usize,
}

impl Checkpoints {
    fn new(spacing: Lsn) -> Checkpoints {
        Checkpoints {
            spacing: spacing.max(1),
            at: Vec::new(),
            bytes: 0,
        }
    }

    /// Whether a checkpoint belongs at `lsn` and is missing.
    fn wanted(&self, lsn: Lsn) -> bool {
        lsn.is_multiple_of(self.spacing) && self.at.binary_search_by_key(&lsn, |c| c.0).is_err()
    }

    /// Doubles the spacing (dropping the checkpoints off it) until restoring a checkpoint of
    /// `bytes` costs at most `spacing` commands: a checkpoint then costs at most as much to
    /// make as the commands between two, so making them at most doubles the cost of a first
    /// pass over the history, whatever the model's size (crawler-counters' tens of thousands
    /// of keys), while a small model (event-stream's, whose entries' fields are shared) keeps
    /// them dense.
    fn fit(&mut self, bytes: usize) {
        while restore_cost(bytes) > self.spacing {
            self.double();
        }
    }

    fn double(&mut self) {
        self.spacing = self.spacing.saturating_mul(2);
        let spacing = self.spacing;
        self.at.retain(|c| c.0.is_multiple_of(spacing));
        self.bytes = self.at.iter().map(|c| c.2).sum();
    }

    /// Adds `model`, the model at `lsn`, then thins the set back within its bounds (which may
    /// drop it again).
    fn add(&mut self, lsn: Lsn, model: Arc<Model>, bytes: usize) {
        let Err(i) = self.at.binary_search_by_key(&lsn, |c| c.0) else {
            return;
        };
        if !lsn.is_multiple_of(self.spacing) {
            return;
        }
        self.at.insert(i, (lsn, model, bytes));
        self.bytes += bytes;
        while self.at.len() > MAX_CHECKPOINTS || self.bytes > MAX_CHECKPOINT_BYTES {
            self.double();
        }
    }

    /// The checkpoint nearest at or below `r`, with what restoring it costs in commands.
    fn at_or_below(&self, r: Lsn) -> Option<(Lsn, Arc<Model>, Lsn)> {
        let i = self.at.partition_point(|c| c.0 <= r).checked_sub(1)?;
        let (at, model, bytes) = &self.at[i];
        Some((*at, model.clone(), restore_cost(*bytes)))
    }
}

/// What restoring a checkpoint of `bytes` costs, in commands replayed.
fn restore_cost(bytes: usize) -> Lsn {
    (bytes / RESTORE_BYTES_PER_COMMAND) as Lsn + 1
}

/// How a cursor at `lsn` (able to undo `undoable` commands) gets to `r`, and what it costs in
/// commands applied, undone or (restoring a checkpoint) copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Move {
    /// Undo commands back to `r`.
    Undo(Lsn),
    /// Apply commands from where it is.
    Forward(Lsn),
    /// Restore the checkpoint at this LSN (0: the empty model), then apply commands.
    Restore { from: Lsn, cost: Lsn },
}

impl Move {
    fn cost(self) -> Lsn {
        match self {
            Move::Undo(n) | Move::Forward(n) => n,
            Move::Restore { cost, .. } => cost,
        }
    }

    /// The cheapest move from `lsn` to `r`, given the checkpoint nearest at or below `r`
    /// (its LSN and restore cost).
    fn choose(lsn: Lsn, undoable: Lsn, r: Lsn, checkpoint: Option<(Lsn, Lsn)>) -> Move {
        let restore = match checkpoint {
            Some((at, restore)) => Move::Restore {
                from: at,
                cost: restore + (r - at),
            },
            None => Move::Restore { from: 0, cost: r },
        };
        let direct = if r <= lsn && lsn - r <= undoable {
            Some(Move::Undo(lsn - r))
        } else if lsn <= r {
            Some(Move::Forward(r - lsn))
        } else {
            None
        };
        match direct {
            Some(m) if m.cost() <= restore.cost() => m,
            _ => restore,
        }
    }
}

/// The model after commands 1..=`lsn` of one workload, movable to any LSN.
#[derive(Debug, Clone)]
pub struct Cursor {
    lsn: Lsn,
    model: Model,
    seeds: CommandSeeds,
    /// Copies of the model at multiples of a spacing: the cursor's own, or its oracle's.
    checkpoints: Arc<Mutex<Checkpoints>>,
    /// The spacing last seen in `checkpoints` (it only grows: a stale one asks more often).
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
        let checkpoints = Arc::new(Mutex::new(Checkpoints::new(spacing_lsns)));
        Cursor::sharing(workload, checkpoints, undo_lsns)
    }

    /// A cursor at LSN 0 using (and filling) `checkpoints`.
    fn sharing(
        workload: &Workload,
        checkpoints: Arc<Mutex<Checkpoints>>,
        undo_lsns: usize,
    ) -> Cursor {
        let spacing = lock(&checkpoints).spacing;
        Cursor {
            undo_lsns,
            undo_max_elements: UNDO_MAX_ELEMENTS,
            lsn: 0,
            model: Model::new(),
            seeds: workload.command_seeds(),
            checkpoints,
            spacing,
            undo: VecDeque::new(),
        }
    }

    /// The cheapest way to `r` ([`Move::choose`]), with the checkpoint it would restore.
    fn plan(&self, r: Lsn) -> (Move, Option<Arc<Model>>) {
        let checkpoint = if self.lsn == r {
            None
        } else {
            lock(&self.checkpoints).at_or_below(r)
        };
        let m = Move::choose(
            self.lsn,
            self.undo.len() as Lsn,
            r,
            checkpoint.as_ref().map(|(at, _, cost)| (*at, *cost)),
        );
        (m, checkpoint.map(|(_, model, _)| model))
    }

    /// As this cursor, copying entries of at most `elements` elements to undo (default
    /// [`UNDO_MAX_ELEMENTS`]).
    pub fn with_undo_max_elements(mut self, elements: usize) -> Cursor {
        self.undo_max_elements = elements;
        self
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

    /// Moves to where the cheapest way to `r` starts ([`Cursor::plan`]): back to `r` by
    /// undoing commands, or to the checkpoint at or below it (or the start); stays where it
    /// is to apply commands from here.
    fn rewind(&mut self, r: Lsn) {
        let (m, checkpoint) = self.plan(r);
        match m {
            Move::Forward(_) => {}
            Move::Undo(_) => self.undo_to(r),
            Move::Restore { from, .. } => {
                self.undo.clear();
                self.lsn = from;
                self.model = match checkpoint {
                    Some(model) if from > 0 => (*model).clone(),
                    _ => Model::new(),
                };
            }
        }
    }

    /// Undoes commands back to `r` (the plan, [`Move::Undo`], checked the undo log holds them).
    fn undo_to(&mut self, r: Lsn) {
        while self.lsn > r {
            match self.undo.pop_back().expect("the plan checked the length") {
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
        if self.lsn.is_multiple_of(self.spacing) {
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

    /// Adds the model as a checkpoint if one is wanted at this LSN (copied outside the lock;
    /// a cursor that added the same one meanwhile wins).
    fn checkpoint(&mut self) {
        {
            let c = lock(&self.checkpoints);
            self.spacing = c.spacing;
            if !c.wanted(self.lsn) {
                return;
            }
        }
        let bytes = model_bytes(&self.model);
        {
            let mut c = lock(&self.checkpoints);
            c.fit(bytes);
            self.spacing = c.spacing;
            if !c.wanted(self.lsn) {
                return;
            }
        }
        let model = Arc::new(self.model.clone());
        lock(&self.checkpoints).add(self.lsn, model, bytes);
    }
}

/// About how many bytes a copy of `m` takes of its own: keys and values, with 48 bytes of
/// overhead per key, field, member and pending entry, and 16 per stream entry. A stream
/// entry's fields are not counted: a copy shares them with the model ([`ModelValue::Stream`]),
/// so they take memory once however many checkpoints hold the entry (at most every entry the
/// workload added up to the highest checkpoint).
pub fn model_bytes(m: &Model) -> usize {
    const ITEM: usize = 48;
    m.map
        .iter()
        .map(|(k, e)| {
            k.len()
                + ITEM
                + match &e.value {
                    ModelValue::Str(v) => v.len(),
                    ModelValue::Hash(h) => h.iter().map(|(f, v)| f.len() + v.len() + ITEM).sum(),
                    ModelValue::ZSet(z) => z.keys().map(|m| m.len() + ITEM).sum(),
                    ModelValue::Stream {
                        entries, groups, ..
                    } => {
                        entries.len() * 16
                            + groups
                                .iter()
                                .map(|(n, g)| {
                                    n.len()
                                        + ITEM
                                        + g.pel
                                            .values()
                                            .map(|p| p.consumer.len() + ITEM)
                                            .sum::<usize>()
                                        + g.consumers.keys().map(|c| c.len() + ITEM).sum::<usize>()
                                })
                                .sum::<usize>()
                    }
                }
        })
        .sum()
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
    /// The checkpoints every cursor of the pool shares.
    checkpoints: Arc<Mutex<Checkpoints>>,
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
            checkpoints: Arc::new(Mutex::new(Checkpoints::new(FIRST_SPACING_LSNS))),
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

    /// Runs `f` on the model after commands 1..=`r`, with the cursor of the pool that gets
    /// there cheapest ([`Move::choose`]); the cursor returns to the pool afterwards.
    pub fn with_model<T>(&self, r: Lsn, f: impl FnOnce(&Model) -> T) -> T {
        let mut cursor = {
            let checkpoint = lock(&self.checkpoints)
                .at_or_below(r)
                .map(|(at, _, cost)| (at, cost));
            let mut pool = lock(&self.cursors);
            // The cheapest move; among equal ones (a restore of the same checkpoint) a
            // cursor past `r` before one behind it, and the one furthest behind, so that
            // cursors that can still move forward cheaply are kept.
            let rank = |c: &Cursor| {
                let m = Move::choose(c.lsn(), c.undo.len() as Lsn, r, checkpoint);
                (m.cost(), c.lsn() <= r, c.lsn())
            };
            let cheapest = (0..pool.len()).min_by_key(|&i| rank(&pool[i]));
            match cheapest {
                Some(i) => pool.swap_remove(i),
                None => Cursor::sharing(&self.workload, self.checkpoints.clone(), UNDO_LSNS),
            }
        };
        let kept = |n| lock(&self.written).command(&self.workload, n);
        let out = f(cursor.seek_with(&self.workload, r, kept));
        lock(&self.cursors).push(cursor);
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

    /// How many of the LSNs that a policy-`no` trace's images ask for ([`Oracle::with_model`]
    /// at r, growing from 0, then at the acknowledged LSN, near the end and back and forth),
    /// from two threads at once over event-stream's workload, get a model different from
    /// [`super::super::expected`], after `spoil` changed the shared checkpoints.
    fn alternating_differences(spoil: &dyn Fn(&mut Checkpoints)) -> usize {
        let path = crate::scenario::locate::find_scenario("event-stream").expect("scenario");
        let w = Workload::new(&crate::scenario::load(&path).expect("loads").workload);
        let o = Oracle::new(w.clone());
        o.with_model(1_500, |_| ());
        spoil(&mut lock(&o.checkpoints));
        let asks = |t: u64| -> Vec<Lsn> {
            (0..12)
                .flat_map(|i| [i * 41 + t * 13, 1_450 - (i * 157 + t * 61) % 400])
                .collect()
        };
        std::thread::scope(|s| {
            let threads: Vec<_> = (0..2)
                .map(|t| {
                    let (o, w, asks) = (&o, &w, asks(t));
                    s.spawn(move || {
                        asks.into_iter()
                            .filter(|&r| {
                                o.with_model(r, Model::clone) != super::super::expected(w, r)
                            })
                            .count()
                    })
                })
                .collect();
            threads
                .into_iter()
                .map(|t| t.join().expect("no panic"))
                .sum()
        })
    }

    #[test]
    fn shared_checkpoints_give_the_models_of_a_fresh_replay() {
        assert_eq!(alternating_differences(&|_| {}), 0);
    }

    /// The companion: a checkpoint holding the model of another LSN is restored, and seen.
    #[test]
    fn a_wrong_checkpoint_is_seen() {
        let wrong = alternating_differences(&|c| {
            assert!(c.at.len() >= 4, "{} checkpoints", c.at.len());
            let n = c.at.len();
            c.at[n - 1].1 = c.at[n - 2].1.clone();
        });
        assert!(wrong >= 3, "{wrong} models differ");
    }
}
