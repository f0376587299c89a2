//! Reading and checking a scenario file, with errors that name the file, line and field.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::model::{
    KeyDistributionKind, KeySpec, OpSpec, Scenario, ValueDistributionKind, ValueSpec,
};

/// Why a scenario file was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioError {
    /// The file as given.
    pub file: PathBuf,
    /// 1-based line and column of the offending text (0 when unknown, e.g. unreadable file).
    pub line: usize,
    pub column: usize,
    /// Dotted path of the field (`workload.keys.exponent`, `workload.ops[2].weight`), or empty.
    pub field: String,
    /// What was wrong and what was expected.
    pub message: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        if !self.field.is_empty() {
            write!(f, ": field `{}`", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ScenarioError {}

/// Reads and checks the scenario file at `path`.
///
/// # Errors
/// [`ScenarioError`] when the file cannot be read, is not valid TOML, does not match the
/// scenario shape (unknown field, wrong type, missing field, bad name), or fails a check
/// (zipf exponent out of range, all weights zero, inconsistent duration/commands, ...).
pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
    let text = std::fs::read_to_string(path).map_err(|e| ScenarioError {
        file: path.to_owned(),
        line: 0,
        column: 0,
        field: String::new(),
        message: format!("cannot read the file: {e}"),
    })?;
    parse_str(path, &text)
}

/// Parses and checks scenario `text`; `file` is only used in errors.
///
/// # Errors
/// As [`load`].
pub fn parse_str(file: &Path, text: &str) -> Result<Scenario, ScenarioError> {
    let at = |span: Option<Range<usize>>, message: String, field: Option<String>| {
        let span = span.unwrap_or(0..0);
        let (line, column) = line_col(text, span.start);
        let field = field.unwrap_or_else(|| field_at(text, span.start));
        ScenarioError {
            file: file.to_owned(),
            line,
            column,
            field,
            message,
        }
    };
    let scenario: Scenario = toml::from_str(text).map_err(|e| {
        let message = e.message().trim().to_string();
        // For a missing field the span is the enclosing table: name the table and the field.
        let mut field = None;
        if let Some(name) = message
            .strip_prefix("missing field `")
            .and_then(|m| m.split('`').next())
        {
            let table = e
                .span()
                .map(|s| field_at(text, s.start))
                .unwrap_or_default();
            field = Some(if table.is_empty() {
                name.to_string()
            } else {
                format!("{table}.{name}")
            });
        }
        at(e.span(), message, field)
    })?;
    check(&scenario).map_err(|c| at(Some(c.span), c.message, Some(c.field)))?;
    Ok(scenario)
}

/// Runs the semantic checks on an already-built scenario (e.g. after command-line overrides),
/// without file positions.
///
/// # Errors
/// `field: message` of the first failed check.
pub fn validate(s: &Scenario) -> Result<(), String> {
    check(s).map_err(|c| format!("field `{}`: {}", c.field, c.message))
}

/// A failed semantic check, before it is placed in the file.
struct Check {
    span: Range<usize>,
    field: String,
    message: String,
}

fn fail(span: Range<usize>, field: impl Into<String>, message: impl Into<String>) -> Check {
    Check {
        span,
        field: field.into(),
        message: message.into(),
    }
}

fn check(s: &Scenario) -> Result<(), Check> {
    if let Some(t) = s.crash.as_ref().and_then(|c| c.trial_secs)
        && !(t > 0.0 && t.is_finite())
    {
        return Err(fail(
            0..0,
            "crash.trial_secs",
            "expected a number of seconds > 0",
        ));
    }
    if let Some(mib) = s.crash.as_ref().and_then(|c| c.copy_rate_mib)
        && !(1..=100_000).contains(&mib)
    {
        return Err(fail(
            0..0,
            "crash.copy_rate_mib",
            "expected MiB/s in 1..=100000",
        ));
    }
    for key in s.matrix.redis_config.keys() {
        crate::servers::redis_server::check_setting(key)
            .map_err(|m| fail(0..0, format!("matrix.redis_config.{key}"), m))?;
    }
    let w = &s.workload;
    if *w.writers.get_ref() == 0 || *w.writers.get_ref() > 1024 {
        return Err(fail(
            w.writers.span(),
            "workload.writers",
            "expected an integer in 1..=1024",
        ));
    }
    match (&w.duration_secs, &w.commands) {
        (Some(_), Some(c)) => {
            return Err(fail(
                c.span(),
                "workload.commands",
                "expected either `duration_secs` or `commands`, not both",
            ));
        }
        (None, None) => {
            return Err(fail(
                0..0,
                "workload",
                "expected one of `duration_secs` or `commands`",
            ));
        }
        (Some(d), None) if !(*d.get_ref() > 0.0 && d.get_ref().is_finite()) => {
            return Err(fail(
                d.span(),
                "workload.duration_secs",
                "expected a number of seconds > 0",
            ));
        }
        (None, Some(c)) if *c.get_ref() == 0 => {
            return Err(fail(
                c.span(),
                "workload.commands",
                "expected a command count > 0",
            ));
        }
        _ => {}
    }
    if let Some(wu) = &w.warmup_secs {
        let v = *wu.get_ref();
        let limit = w
            .duration_secs
            .as_ref()
            .map(|d| *d.get_ref())
            .unwrap_or(f64::INFINITY);
        if !(v >= 0.0 && v < limit) {
            return Err(fail(
                wu.span(),
                "workload.warmup_secs",
                "expected seconds >= 0 and below `duration_secs`",
            ));
        }
    }
    if let Some(r) = &w.rate {
        crate::driver::pacing::Rate::new(r.get_ref().ops_per_sec, r.get_ref().arrivals)
            .map_err(|m| fail(r.span(), "workload.rate.ops_per_sec", m))?;
    }
    check_keys(&w.keys, "workload.keys")?;
    check_values(&w.values, "workload.values")?;
    let ops = w.ops.get_ref();
    if ops.is_empty() {
        return Err(fail(
            w.ops.span(),
            "workload.ops",
            "expected at least one [[workload.ops]] entry",
        ));
    }
    if ops.iter().all(|o| o.weight == 0) {
        return Err(fail(
            w.ops.span(),
            "workload.ops",
            "all weights are zero: expected at least one weight > 0",
        ));
    }
    if !ops.iter().any(|o| o.weight > 0 && o.command.is_write()) {
        return Err(fail(
            w.ops.span(),
            "workload.ops",
            "expected at least one write command (anything but get) with weight > 0",
        ));
    }
    for (i, op) in ops.iter().enumerate() {
        let path = format!("workload.ops[{i}]");
        check_op(op, &path)?;
        check_consumer_op(
            op,
            &path,
            s.matrix.targets.iter().any(|t| t.is_resp()),
            &w.keys,
        )?;
    }
    if ops.iter().any(|o| o.command.is_consumer() && o.weight > 0)
        && !ops
            .iter()
            .any(|o| o.command == crate::scenario::model::CommandKind::XReadGroup && o.weight > 0)
    {
        return Err(fail(
            w.ops.span(),
            "workload.ops",
            "xack and xautoclaim need an xreadgroup op (whose keys get the group)",
        ));
    }
    check_sweeps(s)
}

/// Largest recovery sweep step, MiB.
pub const MAX_RECOVERY_MB: f64 = 65536.0;

fn check_sweeps(s: &Scenario) -> Result<(), Check> {
    let g = &s.group_commit;
    let writers = g.writers.get_ref();
    if writers.is_empty() || writers.iter().any(|&n| n == 0 || n > 1024) {
        return Err(fail(
            g.writers.span(),
            "group_commit.writers",
            "expected a non-empty list of writer counts, each in 1..=1024",
        ));
    }
    if let Some(d) = &g.duration_secs
        && !(*d.get_ref() > 0.0 && d.get_ref().is_finite())
    {
        return Err(fail(
            d.span(),
            "group_commit.duration_secs",
            "expected a number of seconds > 0",
        ));
    }
    let r = &s.recovery.data_mb;
    let sizes = r.get_ref();
    if sizes.is_empty() || sizes.iter().any(|&m| !(m > 0.0 && m <= MAX_RECOVERY_MB)) {
        return Err(fail(
            r.span(),
            "recovery.data_mb",
            format!("expected a non-empty list of sizes in MiB, each in (0, {MAX_RECOVERY_MB}]"),
        ));
    }
    Ok(())
}

fn check_keys(k: &KeySpec, path: &str) -> Result<(), Check> {
    if *k.count.get_ref() == 0 {
        return Err(fail(
            k.count.span(),
            format!("{path}.count"),
            "expected a key count > 0",
        ));
    }
    match (k.distribution, &k.exponent) {
        (KeyDistributionKind::Zipf, None) => Err(fail(
            k.count.span(),
            format!("{path}.exponent"),
            "zipf needs an `exponent` in (0, 10]",
        )),
        (KeyDistributionKind::Zipf, Some(e)) if !(*e.get_ref() > 0.0 && *e.get_ref() <= 10.0) => {
            Err(fail(
                e.span(),
                format!("{path}.exponent"),
                format!("expected a zipf exponent in (0, 10], got {}", e.get_ref()),
            ))
        }
        (KeyDistributionKind::Uniform, Some(e)) => Err(fail(
            e.span(),
            format!("{path}.exponent"),
            "`exponent` only applies to distribution = \"zipf\"",
        )),
        _ => Ok(()),
    }
}

/// Largest value size accepted (16 MiB), well under the engine's record limit.
pub const MAX_VALUE_BYTES: u32 = 16 << 20;

fn check_values(v: &ValueSpec, path: &str) -> Result<(), Check> {
    let size = |s: &Spanned<u32>, name: &str| {
        if *s.get_ref() > MAX_VALUE_BYTES {
            Err(fail(
                s.span(),
                format!("{path}.{name}"),
                format!("expected at most {MAX_VALUE_BYTES} bytes"),
            ))
        } else {
            Ok(())
        }
    };
    match v.distribution {
        ValueDistributionKind::Fixed => {
            let Some(b) = &v.bytes else {
                return Err(fail(
                    0..0,
                    format!("{path}.bytes"),
                    "distribution = \"fixed\" needs `bytes`",
                ));
            };
            if let Some(m) = v.min_bytes.as_ref().or(v.max_bytes.as_ref()) {
                return Err(fail(
                    m.span(),
                    path.to_string(),
                    "`min_bytes`/`max_bytes` only apply to distribution = \"uniform\"",
                ));
            }
            size(b, "bytes")
        }
        ValueDistributionKind::Uniform => {
            let (Some(lo), Some(hi)) = (&v.min_bytes, &v.max_bytes) else {
                return Err(fail(
                    0..0,
                    format!("{path}.min_bytes"),
                    "distribution = \"uniform\" needs `min_bytes` and `max_bytes`",
                ));
            };
            if let Some(b) = &v.bytes {
                return Err(fail(
                    b.span(),
                    format!("{path}.bytes"),
                    "`bytes` only applies to distribution = \"fixed\"",
                ));
            }
            size(lo, "min_bytes")?;
            size(hi, "max_bytes")?;
            if lo.get_ref() > hi.get_ref() {
                return Err(fail(
                    hi.span(),
                    format!("{path}.max_bytes"),
                    "expected `max_bytes` >= `min_bytes`",
                ));
            }
            Ok(())
        }
    }
}

fn check_op(op: &OpSpec, path: &str) -> Result<(), Check> {
    if let Some(k) = &op.keys {
        check_keys(k, &format!("{path}.keys"))?;
    }
    if let Some(v) = &op.values {
        check_values(v, &format!("{path}.values"))?;
    }
    let positive = |v: &Option<Spanned<u32>>, name: &str| match v {
        Some(s) if *s.get_ref() == 0 => Err(fail(
            s.span(),
            format!("{path}.{name}"),
            "expected an integer > 0",
        )),
        _ => Ok(()),
    };
    positive(&op.fields, "fields")?;
    positive(&op.field_count, "field_count")?;
    positive(&op.members, "members")?;
    if let Some(d) = &op.delta_max
        && *d.get_ref() < 1
    {
        return Err(fail(
            d.span(),
            format!("{path}.delta_max"),
            "expected an integer >= 1",
        ));
    }
    if let Some(c) = &op.count
        && *c.get_ref() == 0
    {
        return Err(fail(
            c.span(),
            format!("{path}.count"),
            "expected an integer > 0",
        ));
    }
    Ok(())
}

/// Keys of one `xreadgroup` op at most (each gets its group at the start of the sequence).
pub const MAX_CONSUMER_KEYS: u64 = 1024;

/// The consumer fields: only on the commands they apply to, and in range.
fn check_consumer_op(
    op: &OpSpec,
    path: &str,
    resp_target: bool,
    default_keys: &crate::scenario::model::KeySpec,
) -> Result<(), Check> {
    use crate::scenario::model::CommandKind as K;
    use crate::workload::consumers::{DEFAULT_RECLAIM_FACTOR, MAX_ACK_DELAY_LSNS};
    let only = |present: bool, name: &str, kinds: &[K]| {
        if present && !kinds.contains(&op.command) {
            let names: Vec<_> = kinds.iter().map(|k| k.name()).collect();
            return Err(fail(
                0..0,
                format!("{path}.{name}"),
                format!("`{name}` only applies to {}", names.join(", ")),
            ));
        }
        Ok(())
    };
    let consumer = [K::XReadGroup, K::XAck, K::XAutoClaim];
    only(op.group.is_some(), "group", &consumer)?;
    only(op.consumers.is_some(), "consumers", &[K::XReadGroup])?;
    only(op.ack_delay.is_some(), "ack_delay", &[K::XAck])?;
    only(op.never_acked.is_some(), "never_acked", &[K::XAck])?;
    only(op.reclaim_delay.is_some(), "reclaim_delay", &[K::XAck])?;
    only(op.min_idle_ms.is_some(), "min_idle_ms", &[K::XAutoClaim])?;
    if let Some(c) = &op.consumers
        && !(1..=1024).contains(c.get_ref())
    {
        return Err(fail(
            c.span(),
            format!("{path}.consumers"),
            "expected a consumer count in 1..=1024",
        ));
    }
    for (d, name) in [
        (&op.ack_delay, "ack_delay"),
        (&op.reclaim_delay, "reclaim_delay"),
    ] {
        if let Some(d) = d
            && !(1..=MAX_ACK_DELAY_LSNS).contains(d.get_ref())
        {
            return Err(fail(
                d.span(),
                format!("{path}.{name}"),
                format!("expected an integer in 1..={MAX_ACK_DELAY_LSNS} (commands)"),
            ));
        }
    }
    // The default reclaim_delay (10 x ack_delay) is used when some entries are never acked.
    if op.reclaim_delay.is_none()
        && op.never_acked.as_ref().is_some_and(|f| *f.get_ref() > 0.0)
        && let Some(d) = &op.ack_delay
        && d.get_ref().saturating_mul(DEFAULT_RECLAIM_FACTOR) > MAX_ACK_DELAY_LSNS
    {
        return Err(fail(
            d.span(),
            format!("{path}.ack_delay"),
            format!(
                "the default reclaim_delay ({DEFAULT_RECLAIM_FACTOR} x ack_delay = {}) is over \
                 {MAX_ACK_DELAY_LSNS} commands: set reclaim_delay",
                d.get_ref().saturating_mul(DEFAULT_RECLAIM_FACTOR)
            ),
        ));
    }
    if let Some(f) = &op.never_acked
        && !(0.0..=1.0).contains(f.get_ref())
    {
        return Err(fail(
            f.span(),
            format!("{path}.never_acked"),
            "expected a fraction in [0, 1]",
        ));
    }
    if let Some(m) = &op.min_idle_ms
        && *m.get_ref() > 0
        && resp_target
    {
        return Err(fail(
            m.span(),
            format!("{path}.min_idle_ms"),
            "a RESP target (redis, durlab-server) measures idle time by its own clock, which \
             the oracle cannot follow: expected min_idle_ms = 0 with a RESP target",
        ));
    }
    let k = op.keys.as_ref().unwrap_or(default_keys);
    if op.command == K::XReadGroup && *k.count.get_ref() > MAX_CONSUMER_KEYS {
        return Err(fail(
            k.count.span(),
            format!("{path}.keys.count"),
            format!("expected at most {MAX_CONSUMER_KEYS} keys for xreadgroup"),
        ));
    }
    Ok(())
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    (line, before[line_start..].chars().count() + 1)
}

/// The dotted path of the innermost key or value of `text` that contains byte `offset`
/// (empty when none does, or the text does not parse).
pub fn field_at(text: &str, offset: usize) -> String {
    let Ok(doc) = DeTable::parse(text) else {
        return String::new();
    };
    let mut path = String::new();
    find_in_table(doc.get_ref(), offset, &mut path);
    path
}

fn contains(span: Range<usize>, offset: usize) -> bool {
    span.start <= offset && offset < span.end.max(span.start + 1)
}

fn find_in_table(table: &DeTable<'_>, offset: usize, path: &mut String) -> bool {
    for (key, value) in table.iter() {
        let in_key = contains(key.span(), offset);
        let in_value = contains(value.span(), offset);
        let len = path.len();
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(key.get_ref());
        if in_key {
            return true;
        }
        // Tables built from `[headers]` may span more (or less) than their entries: look inside
        // every table and array, and accept the match only if something inside matches or the
        // value itself does.
        if find_in_value(value, offset, path) || in_value {
            return true;
        }
        path.truncate(len);
    }
    false
}

fn find_in_value(value: &Spanned<DeValue<'_>>, offset: usize, path: &mut String) -> bool {
    match value.get_ref() {
        DeValue::Table(t) => find_in_table(t, offset, path),
        DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                let inside = find_in_value(item, offset, path);
                if inside || contains(item.span(), offset) {
                    return true;
                }
                path.truncate(len);
            }
            false
        }
        _ => false,
    }
}
