//! Group commit: throughput of `always` against the number of writers, one series per
//! configuration (target × backend × prealloc × persistence). The points come from the run's
//! group-commit sweep (`group-commit/`) when it has one, else from the run's own `always`
//! records (one writer count: no curve).
//!
//! x: writers on a log2 axis (1, 2, 4, ... evenly spaced). y: ops/s. Labels give ops/s and the
//! average records per log write (the group-commit factor).

use std::collections::BTreeMap;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::style;
use super::{DrawResult, Plot, builder, centred_note, legend};
use crate::report::model::{RunResults, config_label};
use crate::results::json::BenchRecord;

/// See the module docs.
#[derive(Debug)]
pub struct GroupCommit<'a> {
    results: &'a RunResults,
}

/// One point: writers, ops/s, average batch (records per log write).
pub type Point = (u32, f64, f64);

impl<'a> GroupCommit<'a> {
    /// The plot of `results`.
    pub fn new(results: &'a RunResults) -> Self {
        GroupCommit { results }
    }

    /// True when the points come from a group-commit sweep.
    pub fn from_sweep(&self) -> bool {
        self.results.group_commit.is_some()
    }

    /// The `always` records the plot is drawn from (see the module docs).
    pub fn records(&self) -> Vec<&'a BenchRecord> {
        let r = self.results;
        r.group_commit
            .as_deref()
            .map_or(&r.benches, |g| &g.benches)
            .iter()
            .filter(|b| b.config.policy == "always")
            .collect()
    }

    /// Configuration (as in the report's tables) → points, sorted by writers.
    pub fn series(&self) -> BTreeMap<String, Vec<Point>> {
        let mut out: BTreeMap<String, Vec<Point>> = BTreeMap::new();
        for b in self.records() {
            out.entry(config_label(&b.config)).or_default().push((
                b.config.writers,
                b.ops_per_sec,
                b.avg_batch,
            ));
        }
        for v in out.values_mut() {
            v.sort_by_key(|p| p.0);
        }
        out
    }

    /// The distinct writer counts of the points.
    pub fn writer_counts(&self) -> Vec<u32> {
        let mut w: Vec<u32> = self.records().iter().map(|b| b.config.writers).collect();
        w.sort_unstable();
        w.dedup();
        w
    }
}

impl Plot for GroupCommit<'_> {
    fn stem(&self) -> &'static str {
        "group-commit"
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        root.fill(&WHITE)?;
        let series = self.series();
        if series.is_empty() {
            return centred_note(root, "no `always` configurations in this run");
        }
        let writers = self.writer_counts();
        let log2 = |w: u32| f64::from(w.max(1)).log2();
        let xlo = log2(writers.first().copied().unwrap_or(1)) - 0.3;
        let xhi = log2(writers.last().copied().unwrap_or(1)) + 0.9;
        let ymax = series
            .values()
            .flat_map(|v| v.iter().map(|p| p.1))
            .fold(0.0, f64::max)
            * 1.25;
        let mut chart = builder(
            root,
            &format!(
                "{}: group commit (policy always)",
                self.results.run.scenario
            ),
        )
        .build_cartesian_2d(xlo..xhi, 0.0..ymax.max(1.0))?;
        chart
            .configure_mesh()
            .x_desc("writers (client threads), log2 scale")
            .y_desc("throughput, ops/s")
            .axis_desc_style(style::label())
            .label_style(style::tick())
            .x_labels(((xhi - xlo).ceil() as usize + 1).max(2))
            .x_label_formatter(&|v| {
                if (v - v.round()).abs() < 1e-6 {
                    format!("{}", 2f64.powf(v.round()))
                } else {
                    String::new()
                }
            })
            .y_label_formatter(&|v| style::si(*v))
            .light_line_style(WHITE.mix(0.0))
            .draw()?;
        for (i, (name, pts)) in series.iter().enumerate() {
            let color = style::color(i);
            let at = |p: &Point| (log2(p.0), p.1);
            chart
                .draw_series(LineSeries::new(pts.iter().map(at), color.stroke_width(2)))?
                .label(name.clone())
                .legend(move |(x, y)| Circle::new((x + 10, y), 6, color.filled()));
            chart.draw_series(pts.iter().map(|p| Circle::new(at(p), 6, color.filled())))?;
            let dy = if i % 2 == 0 { -24 } else { 10 };
            chart.draw_series(pts.iter().map(|p| {
                EmptyElement::at(at(p))
                    + Text::new(
                        format!("{}, batch {:.1}", style::si(p.1), p.2),
                        (8, dy),
                        style::tick(),
                    )
            }))?;
        }
        legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
        if writers.len() < 2 {
            let text = format!(
                "only one writer count ({}) in this run: no scaling curve",
                writers.first().copied().unwrap_or(0)
            );
            let (w, _) = root.dim_in_pixel();
            root.draw(&Text::new(text, (w as i32 / 2 - 260, 90), style::note()))?;
        }
        Ok(())
    }
}
