//! Acknowledgement latency distribution per configuration, from the HdrHistograms in
//! `run.json`.
//!
//! x: latency in µs (log scale). y: fraction of commands acknowledged within that time, on a
//! "nines" scale (50%, 90%, 99%, 99.9%, ...) so that the tail is as visible as the median:
//! y = -log10(1 - fraction), capped at the resolution of the histogram (1 / count).

use plotters::coord::Shift;
use plotters::prelude::*;

use super::style;
use super::{DrawResult, Plot, builder, centred_note, legend};
use crate::report::model::RunResults;

/// Largest number of nines drawn (99.9999%).
const MAX_NINES: f64 = 6.0;

/// See the module docs.
#[derive(Debug)]
pub struct LatencyCdf<'a> {
    results: &'a RunResults,
}

impl<'a> LatencyCdf<'a> {
    /// The plot of `results`.
    pub fn new(results: &'a RunResults) -> Self {
        LatencyCdf { results }
    }

    /// Per configuration (run order): its label and the CDF points (µs, nines).
    pub fn curves(&self) -> Vec<(String, Vec<(f64, f64)>)> {
        let r = self.results;
        r.run
            .configs
            .iter()
            .filter_map(|label| {
                let h = r.latencies.get(label)?.histogram();
                let total = h.len();
                if total == 0 {
                    return None;
                }
                let cap = (total as f64).log10().min(MAX_NINES);
                let mut seen = 0u64;
                let pts = h
                    .iter_recorded()
                    .map(|v| {
                        seen += v.count_at_value();
                        let frac = seen as f64 / total as f64;
                        let us = h.highest_equivalent(v.value_iterated_to()) as f64 / 1000.0;
                        (us, nines(frac).min(cap))
                    })
                    .collect();
                Some((label.clone(), pts))
            })
            .collect()
    }
}

/// -log10(1 - fraction): 0.5 → 0.30, 0.9 → 1, 0.99 → 2 (infinite at 1).
pub fn nines(fraction: f64) -> f64 {
    -(1.0 - fraction).log10()
}

/// The tick label of `n` nines: 0 → `0%`, 1 → `90%`, 2 → `99%`, 3 → `99.9%`.
fn percent_label(n: f64) -> String {
    let pct = 100.0 * (1.0 - 10f64.powf(-n));
    let decimals = (n.round() as i32 - 2).max(0) as usize;
    format!("{pct:.decimals$}%")
}

impl Plot for LatencyCdf<'_> {
    fn stem(&self) -> &'static str {
        "latency-cdf"
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        root.fill(&WHITE)?;
        let curves = self.curves();
        if curves.is_empty() {
            return centred_note(root, "no latency histograms in this run");
        }
        let all = || curves.iter().flat_map(|(_, p)| p.iter());
        let xmin = all().map(|p| p.0).fold(f64::MAX, f64::min).max(0.001);
        let xmax = all().map(|p| p.0).fold(0.0, f64::max).max(xmin * 10.0);
        let ymax = all().map(|p| p.1).fold(1.0, f64::max).ceil();

        let mut chart = builder(
            root,
            &format!("{}: acknowledgement latency", self.results.run.scenario),
        )
        .build_cartesian_2d((xmin / 1.5..xmax * 1.5).log_scale(), 0.0..ymax)?;
        chart
            .configure_mesh()
            .x_desc("latency, µs (log scale)")
            .y_desc("commands acknowledged within (percentile)")
            .axis_desc_style(style::label())
            .label_style(style::tick())
            .x_label_formatter(&|v| style::plain(*v))
            .y_labels(ymax as usize + 1)
            .y_label_formatter(&|n| percent_label(*n))
            .light_line_style(WHITE.mix(0.0))
            .draw()?;
        for (i, (label, pts)) in curves.iter().enumerate() {
            let color = style::color(i);
            // A step curve: the fraction holds until the next recorded value.
            let mut steps = Vec::with_capacity(pts.len() * 2);
            let mut prev_y = 0.0;
            for &(x, y) in pts {
                steps.push((x, prev_y));
                steps.push((x, y));
                prev_y = y;
            }
            chart
                .draw_series(LineSeries::new(steps, color.stroke_width(2)))?
                .label(label.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(3))
                });
        }
        legend(&mut chart, SeriesLabelPosition::LowerRight)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn percent_labels() {
        assert_eq!(super::percent_label(0.0), "0%");
        assert_eq!(super::percent_label(1.0), "90%");
        assert_eq!(super::percent_label(2.0), "99%");
        assert_eq!(super::percent_label(3.0), "99.9%");
        assert!((super::nines(0.99) - 2.0).abs() < 1e-9);
    }
}
