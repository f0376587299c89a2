//! Recovery time (`Engine::open`) against data size, one colour per persistence mode, from
//! `recovery.json`: the recovery sweep's steps joined by a line (filled markers), and the
//! measurements right after each bench configuration as open markers labelled with the
//! configuration. Both axes are logarithmic (sizes and times span decades). A note instead of
//! points when the run has no recovery measurements.

use std::collections::BTreeMap;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::style;
use super::{
    DrawResult, LabelPlacer, Plot, builder, centred_note, label_element, legend, legend_box,
    plot_area,
};
use crate::report::model::{RecoveryRecord, RunResults};

const MIB: f64 = 1024.0 * 1024.0;

/// One point: data MiB, open ms, and the label of an after-bench point (`everysec pwrite`:
/// policy and backend, plus preallocation when not `none`).
pub type Point = (f64, f64, String);

/// The points of one persistence mode.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ModeSeries {
    /// Recovery sweep steps, sorted by size.
    pub sweep: Vec<Point>,
    /// Measurements right after a bench, sorted by size.
    pub after_bench: Vec<Point>,
}

/// See the module docs.
#[derive(Debug)]
pub struct Recovery<'a> {
    results: &'a RunResults,
}

impl<'a> Recovery<'a> {
    /// The plot of `results`.
    pub fn new(results: &'a RunResults) -> Self {
        Recovery { results }
    }

    /// persistence → its points.
    pub fn series(&self) -> BTreeMap<String, ModeSeries> {
        let mut out: BTreeMap<String, ModeSeries> = BTreeMap::new();
        for m in &self.results.recovery {
            let s = out.entry(m.config.persistence.clone()).or_default();
            let list = if m.fill_mb.is_some() {
                &mut s.sweep
            } else {
                &mut s.after_bench
            };
            list.push(point(m));
        }
        for s in out.values_mut() {
            s.sweep.sort_by(|a, b| a.0.total_cmp(&b.0));
            s.after_bench.sort_by(|a, b| a.0.total_cmp(&b.0));
        }
        out
    }
}

fn point(m: &RecoveryRecord) -> Point {
    let c = &m.config;
    let mut label = format!("{} {}", c.policy, c.backend);
    if c.prealloc != "none" {
        label = format!("{label} {}", c.prealloc);
    }
    (m.data_bytes as f64 / MIB, m.open_ms, label)
}

/// The range of the positive `values` for a log axis, widened by a factor of 2 below and 4
/// above (room for labels right of the points; 0.01..1 when there are none).
fn log_range(values: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let (lo, hi) = values
        .filter(|v| *v > 0.0)
        .fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if !lo.is_finite() {
        return 0.01..1.0;
    }
    (lo / 2.0)..(hi * 4.0)
}

impl Plot for Recovery<'_> {
    fn stem(&self) -> &'static str {
        "recovery"
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        root.fill(&WHITE)?;
        let series = self.series();
        let all = || {
            series
                .values()
                .flat_map(|s| s.sweep.iter().chain(&s.after_bench))
        };
        let xs = log_range(all().map(|p| p.0));
        let ys = log_range(all().map(|p| p.1));
        let floor = (xs.start, ys.start);
        let clamp = |p: &Point| (p.0.max(floor.0), p.1.max(floor.1));
        let mut chart = builder(
            root,
            &format!("{}: recovery time vs data size", self.results.run.scenario),
        )
        .build_cartesian_2d(xs.log_scale(), ys.log_scale())?;
        chart
            .configure_mesh()
            .x_desc("data directory size, MiB (log scale)")
            .y_desc("recovery time (Engine::open), ms (log scale)")
            .axis_desc_style(style::label())
            .label_style(style::tick())
            .x_label_formatter(&|v| style::plain(*v))
            .y_label_formatter(&|v| style::plain(*v))
            .light_line_style(WHITE.mix(0.0))
            .draw()?;
        if series.is_empty() {
            return centred_note(root, "no recovery measurements in this run");
        }
        // Labels are placed after every marker is known, clear of markers and of each other.
        let markers: Vec<(i32, i32)> = all().map(|p| chart.backend_coord(&clamp(p))).collect();
        let area = plot_area(&chart);
        let mut placer = LabelPlacer::new(markers).within(area);
        // Two legend entries per mode at most, "<mode>: sweep (filled to each size)" longest.
        let longest = series.keys().map(|m| m.len()).max().unwrap_or(0) + 27;
        placer.reserve(legend_box(area, 2 * series.len(), longest));
        let mut labels: Vec<((f64, f64), String)> = Vec::new();
        for (i, (mode, s)) in series.iter().enumerate() {
            let color = style::color(i);
            if !s.sweep.is_empty() {
                chart
                    .draw_series(LineSeries::new(
                        s.sweep.iter().map(clamp),
                        color.stroke_width(2),
                    ))?
                    .label(format!("{mode}: sweep (filled to each size)"))
                    .legend(move |(x, y)| Circle::new((x + 10, y), 6, color.filled()));
                chart.draw_series(
                    s.sweep
                        .iter()
                        .map(|p| Circle::new(clamp(p), 6, color.filled())),
                )?;
                labels.extend(
                    s.sweep
                        .iter()
                        .map(|p| (clamp(p), format!("{} ms", style::plain(p.1)))),
                );
            }
            if !s.after_bench.is_empty() {
                chart
                    .draw_series(
                        s.after_bench
                            .iter()
                            .map(|p| Circle::new(clamp(p), 7, color.stroke_width(2))),
                    )?
                    .label(format!("{mode}: after each bench"))
                    .legend(move |(x, y)| Circle::new((x + 10, y), 7, color.stroke_width(2)));
                labels.extend(s.after_bench.iter().map(|p| (clamp(p), p.2.clone())));
            }
        }
        for (p, text) in labels {
            let offset = placer.place(chart.backend_coord(&p), &text);
            chart.draw_series(std::iter::once(label_element(p, text, offset)))?;
        }
        legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
        Ok(())
    }
}
