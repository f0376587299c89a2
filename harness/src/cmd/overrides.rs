//! Applying `durlab bench` flags on top of a scenario.

use toml::Spanned;

use super::CliError;
use crate::cli::{BenchArgs, MatrixArgs};
use crate::scenario::model::{
    CommandKind, MatrixSpec, OpSpec, Scenario, ValueDistributionKind, ValueSpec,
};
use crate::scenario::parse;

/// Flags override the scenario: matrix lists are replaced, workload settings set.
///
/// # Errors
/// A bad `--mix`, a persistence mode that does not exist yet, or a combination that fails the
/// scenario checks (e.g. a mix without writes).
pub fn apply(s: &mut Scenario, a: &BenchArgs) -> Result<(), CliError> {
    apply_matrix(&mut s.matrix, &a.matrix);
    if let Some(p) = a.pipeline {
        s.matrix.pipeline = p;
    }
    let w = &mut s.workload;
    // Several counts are a sweep run by `bench::execute`; the scenario keeps its own.
    if let [n] = a.writers.as_slice() {
        w.writers = Spanned::new(0..0, *n);
    }
    if let Some(d) = a.duration {
        w.duration_secs = Some(Spanned::new(0..0, d));
        w.commands = None;
        if w.warmup_secs.as_ref().is_some_and(|x| *x.get_ref() >= d) {
            w.warmup_secs = None;
        }
    }
    if let Some(c) = a.commands {
        w.commands = Some(Spanned::new(0..0, c));
        w.duration_secs = None;
        w.warmup_secs = None;
    }
    if let Some(x) = a.warmup {
        w.warmup_secs = Some(Spanned::new(0..0, x));
    }
    if let Some(seed) = a.seed {
        w.seed = seed;
    }
    if let Some(bytes) = a.value_size {
        let fixed = ValueSpec {
            distribution: ValueDistributionKind::Fixed,
            bytes: Some(Spanned::new(0..0, bytes)),
            min_bytes: None,
            max_bytes: None,
        };
        w.values = fixed;
        for op in w.ops.get_mut() {
            op.values = None;
        }
    }
    if let Some(mix) = &a.mix {
        let old = std::mem::take(w.ops.get_mut());
        let mut ops = Vec::new();
        for part in mix.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, weight) = part
                .split_once('=')
                .ok_or_else(|| CliError(format!("--mix: expected command=weight, got '{part}'")))?;
            let command =
                CommandKind::parse(name.trim()).map_err(|e| CliError(format!("--mix: {e}")))?;
            let weight: u32 = weight.trim().parse().map_err(|_| {
                CliError(format!(
                    "--mix: weight of {name} must be a non-negative integer, got '{weight}'"
                ))
            })?;
            let mut op = old
                .iter()
                .find(|o| o.command == command)
                .cloned()
                .unwrap_or_else(|| default_op(command));
            op.weight = weight;
            ops.push(op);
        }
        *w.ops.get_mut() = ops;
    }
    parse::validate(s).map_err(|e| CliError(format!("after applying the command-line flags: {e}")))
}

/// Replaces the matrix lists of `m` by those given in `a`.
pub fn apply_matrix(m: &mut MatrixSpec, a: &MatrixArgs) {
    if !a.policy.is_empty() {
        m.policies = a.policy.clone();
    }
    if !a.backend.is_empty() {
        m.backends = a.backend.clone();
    }
    if !a.prealloc.is_empty() {
        m.prealloc = a.prealloc.clone();
    }
    if !a.persistence.is_empty() {
        m.persistence = a.persistence.clone();
    }
    if !a.target.is_empty() {
        m.targets = a.target.clone();
    }
    for (k, v) in &a.redis_config {
        m.redis_config.insert(k.clone(), v.clone());
    }
}

fn default_op(command: CommandKind) -> OpSpec {
    OpSpec {
        command,
        weight: 0,
        key_prefix: None,
        key_suffix: None,
        keys: None,
        values: None,
        ttl_ms: None,
        delta_max: None,
        fields: None,
        field_count: None,
        members: None,
        count: None,
        maxlen: None,
        set_options: false,
        group: None,
        consumers: None,
        ack_delay: None,
        never_acked: None,
        reclaim_delay: None,
        min_idle_ms: None,
    }
}
