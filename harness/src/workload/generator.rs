//! [`Workload`]: the compiled command mix, and the commands it generates.

use durlab_engine::keyspace::{SetCond, SetOptions, SetTtl, XAddId};
use durlab_engine::{Command, Lsn};
use rand::{Rng, RngExt};
use rand_chacha::ChaCha8Rng;

use super::distribution::{KeyDist, ValueSize, Zipf};
use super::lookback::OpKeyRing;
use super::rng::{CommandSeeds, SplitMix64, read_rng};
use crate::scenario::model::{
    CommandKind, KeyDistributionKind, KeySpec, OpSpec, ValueDistributionKind, ValueSpec,
    WorkloadSpec,
};

/// The workload clock at write command n, in ms since the Unix epoch: 2026-01-01T00:00:00Z
/// plus n (one millisecond per command). `PEXPIREAT` times are relative to it, so they do not
/// depend on when the run happens.
pub const CLOCK_EPOCH_MS: u64 = 1_767_225_600_000;

/// Default `ttl_ms` of `pexpireat`.
pub const DEFAULT_TTL_MS: u64 = 60_000;

/// Default number of distinct hash field names.
pub const DEFAULT_FIELD_COUNT: u32 = 16;

/// One entry of the mix, ready to generate commands.
#[derive(Debug, Clone)]
pub(super) struct Op {
    pub(super) kind: CommandKind,
    prefix: Vec<u8>,
    suffix: Vec<u8>,
    pub(super) keys: KeyDist,
    values: ValueSize,
    ttl_ms: u64,
    delta_max: i64,
    fields: u32,
    field_count: u32,
    members: u32,
    count: u64,
    maxlen: Option<u64>,
    /// `set`: draw SET options ([`OpSpec::set_options`](crate::scenario::model::OpSpec)).
    set_options: bool,
    /// The consumer side ([`super::consumers`]).
    pub(super) consumer: super::consumers::ConsumerOp,
}

/// Weighted choice among ops by cumulative weights.
#[derive(Debug, Clone, Default)]
pub(super) struct Mix {
    pub(super) ops: Vec<Op>,
    cumulative: Vec<u64>,
    total: u64,
}

impl Mix {
    fn push(&mut self, op: Op, weight: u32) {
        if weight == 0 {
            return;
        }
        self.total += u64::from(weight);
        self.cumulative.push(self.total);
        self.ops.push(op);
    }

    #[inline]
    pub(super) fn pick(&self, rng: &mut impl Rng) -> &Op {
        &self.ops[self.pick_index(rng)]
    }

    /// The index in `ops` of the op [`Mix::pick`] picks (the same draws).
    #[inline]
    pub(super) fn pick_index(&self, rng: &mut impl Rng) -> usize {
        if self.ops.len() == 1 {
            return 0;
        }
        let x = rng.random_range(0..self.total);
        self.cumulative.partition_point(|&c| c <= x)
    }
}

/// A compiled workload: immutable, shared by all writers.
#[derive(Debug, Clone)]
pub struct Workload {
    seed: u64,
    pub(super) writes: Mix,
    /// Write commands 1..=len: the consumer groups' `XGROUP CREATE`s (empty without
    /// consumer ops, which keeps every other sequence as it was).
    setup: Vec<Command>,
    reads: Mix,
    /// Read weight out of `read_weight + writes.total`.
    read_weight: u64,
    values: ValueSize,
    /// How far back an `xack` looks, in LSNs (0 without `xack` ops): see
    /// [`Workload::lookback_lsns`].
    lookback_lsns: Lsn,
    /// Per write op, the index of the first write op with the same key prefix and suffix
    /// (so ops of one family name key i alike).
    key_family: Vec<usize>,
}

impl Workload {
    /// Compiles a checked workload spec (see [`crate::scenario::parse`]).
    pub fn new(spec: &WorkloadSpec) -> Workload {
        let keys = compile_keys(&spec.keys);
        let values = compile_values(&spec.values);
        let mut writes = Mix::default();
        let mut reads = Mix::default();
        for o in spec.ops.get_ref() {
            let op = compile_op(o, keys, values);
            if o.command.is_write() {
                writes.push(op, o.weight);
            } else {
                reads.push(op, o.weight);
            }
        }
        let setup = super::consumers::setup(&writes.ops);
        if !setup.is_empty() {
            for op in &mut writes.ops {
                op.consumer.explicit_ids = true;
            }
        }
        let lookback_lsns = super::consumers::lookback_lsns(&writes.ops);
        let key_family = writes
            .ops
            .iter()
            .map(|o| {
                writes
                    .ops
                    .iter()
                    .position(|f| f.prefix == o.prefix && f.suffix == o.suffix)
                    .expect("an op is in its own mix")
            })
            .collect();
        Workload {
            seed: spec.seed,
            lookback_lsns,
            key_family,
            read_weight: reads.total,
            writes,
            setup,
            reads,
            values,
        }
    }

    /// The seed of the sequence.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The default value size distribution (what `config.value_size` reports).
    pub fn value_size(&self) -> ValueSize {
        self.values
    }

    /// Fraction of a writer's commands that are reads.
    pub fn read_fraction(&self) -> f64 {
        self.read_weight as f64 / (self.read_weight + self.writes.total) as f64
    }

    /// Write command `n` (n >= 1) of the sequence; a fresh derivation (slower than a
    /// [`WriterStream`], which caches): for checks and the oracle.
    pub fn command(&self, n: Lsn) -> Command {
        self.write_command(&mut CommandSeeds::new(self.seed), n)
    }

    /// Write command `n`, using `seeds` (which must come from this workload's seed); an
    /// `xack` derives its look-back afresh (a [`WriterStream`] caches it).
    #[inline]
    pub fn write_command(&self, seeds: &mut CommandSeeds, n: Lsn) -> Command {
        self.generate(seeds, None, n)
    }

    /// Write command `n`; an `xack` takes its look-back from `ring` when given (the same
    /// command either way: see harness/src/workload/lookback.rs).
    #[inline]
    fn generate(&self, seeds: &mut CommandSeeds, ring: Option<&mut OpKeyRing>, n: Lsn) -> Command {
        if let Some(cmd) = n
            .checked_sub(1)
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| self.setup.get(i))
        {
            return cmd.clone();
        }
        let mut rng = seeds.for_command(n);
        let at = self.writes.pick_index(&mut rng);
        let op = &self.writes.ops[at];
        match (op.kind, ring) {
            (CommandKind::XAck, Some(ring)) => {
                super::consumers::xack(self, at, n, &mut rng, |m| ring.op_and_key(self, n, m))
            }
            (CommandKind::XAck, None) => {
                let mut fresh = CommandSeeds::new(self.seed);
                super::consumers::xack(self, at, n, &mut rng, |m| self.op_and_key(&mut fresh, m))
            }
            _ => build(op, n, &mut rng),
        }
    }

    /// How far back before n generating `xack` n reads ops and keys, in LSNs: at most
    /// [`MAX_LOOKBACK_LSNS`](super::consumers::MAX_LOOKBACK_LSNS); 0 without `xack` ops.
    pub fn lookback_lsns(&self) -> Lsn {
        self.lookback_lsns
    }

    /// Whether write op `at`'s key `i` is `key`, which is write op `me`'s key `index`: a
    /// comparison of indexes within a key family, of bytes across families (where
    /// `a1` + `2` is `a` + `12`).
    #[inline]
    pub(super) fn same_key(
        &self,
        (at, i): (usize, u64),
        (me, index): (usize, u64),
        key: &[u8],
    ) -> bool {
        if self.key_family[at] == self.key_family[me] {
            i == index
        } else {
            key_is(&self.writes.ops[at], i, key)
        }
    }

    /// The number of setup commands (LSNs 1..=this are `XGROUP CREATE`s).
    pub fn setup_len(&self) -> Lsn {
        self.setup.len() as Lsn
    }

    /// The mix's op of write command `n` (after the setup) and its key index: what
    /// [`Workload::write_command`] draws first, without building the command.
    pub(super) fn op_and_key(&self, seeds: &mut CommandSeeds, n: Lsn) -> (usize, u64) {
        let mut rng = seeds.for_command(n);
        let at = self.writes.pick_index(&mut rng);
        (at, self.writes.ops[at].keys.sample(&mut rng))
    }

    /// Fresh per-command seeds of this workload (for [`Workload::write_command`]).
    pub fn command_seeds(&self) -> CommandSeeds {
        CommandSeeds::new(self.seed)
    }

    /// The command stream of writer `id`: its reads and its share of writes.
    pub fn writer(&self, id: u32) -> WriterStream<'_> {
        WriterStream {
            workload: self,
            seeds: self.command_seeds(),
            lookback: OpKeyRing::for_workload(self),
            reads: read_rng(self.seed, id),
        }
    }
}

/// One writer's view: decides read or write, and builds either; caches what its `xack`s
/// look back at (harness/src/workload/lookback.rs).
#[derive(Debug, Clone)]
pub struct WriterStream<'w> {
    workload: &'w Workload,
    seeds: CommandSeeds,
    /// `None` without `xack` ops.
    lookback: Option<OpKeyRing>,
    reads: ChaCha8Rng,
}

impl WriterStream<'_> {
    /// Whether this writer's next command is a read (drawn from its own read stream).
    #[inline]
    pub fn next_is_read(&mut self) -> bool {
        let w = self.workload;
        w.read_weight > 0
            && self.reads.random_range(0..w.read_weight + w.writes.total) < w.read_weight
    }

    /// This writer's next read command.
    #[inline]
    pub fn read_command(&mut self) -> Command {
        let op = self.workload.reads.pick(&mut self.reads);
        let index = op.keys.sample(&mut self.reads);
        Command::Get {
            key: key(op, index),
        }
    }

    /// Write command `n` of the global sequence (the same as [`Workload::command`]).
    #[inline]
    pub fn write_command(&mut self, n: Lsn) -> Command {
        self.workload
            .generate(&mut self.seeds, self.lookback.as_mut(), n)
    }
}

fn compile_keys(k: &KeySpec) -> KeyDist {
    let count = *k.count.get_ref();
    match k.distribution {
        KeyDistributionKind::Uniform => KeyDist::Uniform { count },
        KeyDistributionKind::Zipf => {
            let s = k.exponent.as_ref().map(|e| *e.get_ref()).unwrap_or(1.0);
            KeyDist::Zipf(Zipf::new(count, s))
        }
    }
}

fn compile_values(v: &ValueSpec) -> ValueSize {
    let get = |s: &Option<toml::Spanned<u32>>| s.as_ref().map(|b| *b.get_ref()).unwrap_or(0);
    match v.distribution {
        ValueDistributionKind::Fixed => ValueSize::Fixed(get(&v.bytes)),
        ValueDistributionKind::Uniform => ValueSize::Uniform {
            min: get(&v.min_bytes),
            max: get(&v.max_bytes),
        },
    }
}

fn compile_op(o: &OpSpec, keys: KeyDist, values: ValueSize) -> Op {
    let num =
        |s: &Option<toml::Spanned<u32>>, d: u32| s.as_ref().map(|v| *v.get_ref()).unwrap_or(d);
    Op {
        kind: o.command,
        prefix: o
            .key_prefix
            .clone()
            .unwrap_or_else(|| "key:".into())
            .into_bytes(),
        suffix: o.key_suffix.clone().unwrap_or_default().into_bytes(),
        keys: o.keys.as_ref().map(compile_keys).unwrap_or(keys),
        values: o.values.as_ref().map(compile_values).unwrap_or(values),
        ttl_ms: o.ttl_ms.unwrap_or(DEFAULT_TTL_MS),
        delta_max: o.delta_max.as_ref().map(|d| *d.get_ref()).unwrap_or(1),
        fields: num(&o.fields, 1),
        field_count: num(&o.field_count, DEFAULT_FIELD_COUNT),
        members: num(&o.members, 1),
        count: o.count.as_ref().map(|c| *c.get_ref()).unwrap_or(1),
        maxlen: o.maxlen,
        set_options: o.set_options,
        consumer: super::consumers::ConsumerOp::new(o),
    }
}

/// Appends the decimal digits of `v` to `out` without allocating.
#[inline]
fn push_decimal(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(decimal(&mut [0u8; 20], v));
}

/// The decimal digits of `v`, written at the end of `buf` (20 digits hold any u64).
#[inline]
fn decimal(buf: &mut [u8; 20], mut v: u64) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    &buf[i..]
}

/// Whether `key(op, index)` is `key`, without building it.
#[inline]
fn key_is(op: &Op, index: u64, key: &[u8]) -> bool {
    let Some(digits) = key
        .strip_prefix(op.prefix.as_slice())
        .and_then(|k| k.strip_suffix(op.suffix.as_slice()))
    else {
        return false;
    };
    digits == decimal(&mut [0u8; 20], index)
}

#[inline]
pub(super) fn key(op: &Op, index: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(op.prefix.len() + 20 + op.suffix.len());
    k.extend_from_slice(&op.prefix);
    push_decimal(&mut k, index);
    k.extend_from_slice(&op.suffix);
    k
}

#[inline]
fn value(op: &Op, rng: &mut SplitMix64) -> Vec<u8> {
    let len = op.values.sample(rng);
    let mut v = vec![0u8; len];
    rng.fill_bytes(&mut v);
    v
}

fn named(prefix: &[u8], index: u64) -> Vec<u8> {
    let mut f = Vec::with_capacity(prefix.len() + 20);
    f.extend_from_slice(prefix);
    push_decimal(&mut f, index);
    f
}

fn job(n: u64, j: u64) -> Vec<u8> {
    let mut m = named(b"job:", n);
    m.push(b':');
    push_decimal(&mut m, j);
    m
}

/// Builds write command `n` of kind `op` from its generator.
fn build(op: &Op, n: Lsn, rng: &mut SplitMix64) -> Command {
    let key = key(op, op.keys.sample(rng));
    match op.kind {
        CommandKind::Set if op.set_options => {
            let value = value(op, rng);
            let cond = [SetCond::Always, SetCond::Nx, SetCond::Xx][rng.random_range(0..3usize)];
            let ttl = match rng.random_range(0..3u8) {
                0 => SetTtl::Clear,
                1 => SetTtl::Keep,
                // `PX ttl_ms` at the workload clock, in the absolute form the log holds.
                _ => SetTtl::At(CLOCK_EPOCH_MS + n + op.ttl_ms),
            };
            let get = rng.random_range(0..2u8) == 1;
            Command::SetOpts {
                key,
                value,
                opts: SetOptions { cond, ttl, get },
            }
        }
        CommandKind::Set => Command::Set {
            value: value(op, rng),
            key,
        },
        CommandKind::Get => Command::Get { key },
        CommandKind::Del => Command::Del { key },
        CommandKind::SetNx => Command::SetNx {
            value: value(op, rng),
            key,
        },
        CommandKind::IncrBy => Command::IncrBy {
            key,
            delta: rng.random_range(1..=op.delta_max),
        },
        CommandKind::PExpireAt => Command::PExpireAt {
            key,
            at_ms: CLOCK_EPOCH_MS + n + op.ttl_ms,
        },
        CommandKind::HSet => {
            let fields = (0..op.fields)
                .map(|_| {
                    (
                        named(b"f", rng.random_range(0..u64::from(op.field_count))),
                        value(op, rng),
                    )
                })
                .collect();
            Command::HSet { key, fields }
        }
        CommandKind::HDel => {
            let fields = (0..op.fields)
                .map(|_| named(b"f", rng.random_range(0..u64::from(op.field_count))))
                .collect();
            Command::HDel { key, fields }
        }
        CommandKind::ZAdd => {
            // Queue semantics: the score is the enqueue "time" (n), members are unique jobs.
            let members = (0..u64::from(op.members))
                .map(|j| (n as f64, job(n, j)))
                .collect();
            Command::ZAdd { key, members }
        }
        CommandKind::ZRem => {
            let members = (0..op.members)
                .map(|_| job(rng.random_range(1..=n), 0))
                .collect();
            Command::ZRem { key, members }
        }
        CommandKind::ZPopMin => Command::ZPopMin {
            key,
            count: op.count,
        },
        CommandKind::XAdd => Command::XAdd {
            key,
            id: if op.consumer.explicit_ids {
                XAddId::Explicit(super::consumers::entry_id(n))
            } else {
                XAddId::Auto
            },
            fields: vec![(b"v".to_vec(), value(op, rng))],
            maxlen: op.maxlen,
        },
        CommandKind::XReadGroup => super::consumers::xreadgroup(op, key, n, rng),
        CommandKind::XAutoClaim => super::consumers::xautoclaim(op, key, n),
        CommandKind::XAck => unreachable!("built by consumers::xack"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::builtin;

    #[test]
    fn push_decimal_writes_digits() {
        for v in [0u64, 7, 10, 12345, u64::MAX] {
            let mut out = Vec::new();
            push_decimal(&mut out, v);
            assert_eq!(out, v.to_string().into_bytes());
        }
    }

    #[test]
    fn same_key_compares_bytes_across_key_families() {
        let ops = r#"
[[workload.ops]]
command = "set"
weight = 1
key_prefix = "a1"
[[workload.ops]]
command = "set"
weight = 1
key_prefix = "a"
[[workload.ops]]
command = "del"
weight = 1
key_prefix = "a"
"#;
        let text = format!(
            "name = \"t\"\nquestion = \"q\"\n[workload]\nseed = 1\nwriters = 1\n\
             commands = 10\nkeys = {{ count = 100, distribution = \"uniform\" }}\n\
             values = {{ distribution = \"fixed\", bytes = 8 }}\n{ops}"
        );
        let spec = crate::scenario::parse_str(std::path::Path::new("t.toml"), &text)
            .expect("parses")
            .workload;
        let w = Workload::new(&spec);
        let (a1, a, del) = (0, 1, 2);
        assert_eq!(w.key_family, [a1, a, a]);
        // `a` + 12 is `a1` + 2; within a family only the index counts.
        assert!(w.same_key((a1, 2), (a, 12), b"a12"));
        assert!(!w.same_key((a1, 3), (a, 12), b"a12"));
        assert!(w.same_key((del, 12), (a, 12), b"a12"));
        assert!(!w.same_key((del, 2), (a, 12), b"a12"));
        for (at, i, k) in [(a1, 2, "a12"), (a, 12, "a12"), (a1, 0, "a10")] {
            assert_eq!(key(&w.writes.ops[at], i), k.as_bytes());
            assert!(key_is(&w.writes.ops[at], i, k.as_bytes()));
        }
        assert!(!key_is(&w.writes.ops[a1], 2, b"a1"));
    }

    #[test]
    fn builtin_is_mostly_sets() {
        let w = Workload::new(&builtin::scenario().workload);
        assert!((w.read_fraction() - 0.2).abs() < 1e-9);
        for n in 1..100 {
            assert!(matches!(w.command(n), Command::Set { .. }));
        }
    }
}
