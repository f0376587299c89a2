//! The readable table printed by `durlab bench` without `--json`.

use super::json::BenchRecord;

fn ratio(r: Option<f64>) -> String {
    r.map(|v| format!("{v:.3}")).unwrap_or_else(|| "-".into())
}

/// One line per configuration.
pub fn render(records: &[BenchRecord]) -> String {
    let mut out = format!(
        "{:<44} {:>12} {:>9} {:>9} {:>9} {:>9} {:>8} {:>7} {:>7} {:>8} {:>7}\n",
        "configuration",
        "ops/s",
        "p50 us",
        "p99 us",
        "p999 us",
        "max us",
        "syncs",
        "batch",
        "/off",
        "/probe",
        "/redis"
    );
    for r in records {
        let label = if r.config.baseline_only {
            format!("{} (baseline)", r.label)
        } else {
            r.label.clone()
        };
        out.push_str(&format!(
            "{:<44} {:>12.0} {:>9.1} {:>9.1} {:>9.1} {:>9.0} {:>8} {:>7.1} {:>7} {:>8} {:>7}\n",
            label,
            r.ops_per_sec,
            r.latency_us.p50,
            r.latency_us.p99,
            r.latency_us.p999,
            r.latency_us.max,
            r.syncs,
            r.avg_batch,
            ratio(r.ratio_to_off),
            ratio(r.ratio_to_probe),
            ratio(r.ratio_to_redis),
        ));
    }
    out
}
