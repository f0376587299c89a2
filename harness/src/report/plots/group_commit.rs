//! Group commit: throughput of `always` against the number of writers, one series per
//! backend × prealloc × persistence (configurations that differ only in writers).

use std::collections::BTreeMap;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::style;
use super::{DrawResult, Plot, builder, centred_note, legend};
use crate::report::model::RunResults;

/// See the module docs.
#[derive(Debug)]
pub struct GroupCommit<'a> {
    results: &'a RunResults,
}

impl<'a> GroupCommit<'a> {
    /// The plot of `results`.
    pub fn new(results: &'a RunResults) -> Self {
        GroupCommit { results }
    }

    /// `backend / prealloc / persistence` → (writers, ops/s, avg batch) of `always` records,
    /// sorted by writers.
    pub fn series(&self) -> BTreeMap<String, Vec<(u32, f64, f64)>> {
        let mut out: BTreeMap<String, Vec<(u32, f64, f64)>> = BTreeMap::new();
        for b in &self.results.benches {
            let c = &b.config;
            if c.policy != "always" {
                continue;
            }
            out.entry(format!(
                "{} / {} / {}",
                c.backend, c.prealloc, c.persistence
            ))
            .or_default()
            .push((c.writers, b.ops_per_sec, b.avg_batch));
        }
        for v in out.values_mut() {
            v.sort_by_key(|p| p.0);
        }
        out
    }

    /// The distinct writer counts of the `always` records.
    pub fn writer_counts(&self) -> Vec<u32> {
        let mut w: Vec<u32> = self
            .series()
            .values()
            .flat_map(|v| v.iter().map(|p| p.0))
            .collect();
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
        let wmax = writers.last().copied().unwrap_or(1);
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
        .build_cartesian_2d(0u32..wmax + 1, 0.0..ymax.max(1.0))?;
        chart
            .configure_mesh()
            .x_desc("writers (client threads)")
            .y_desc("throughput, ops/s")
            .axis_desc_style(style::label())
            .label_style(style::tick())
            .x_labels((wmax as usize + 2).min(17))
            .y_label_formatter(&|v| style::si(*v))
            .light_line_style(WHITE.mix(0.0))
            .draw()?;
        for (i, (name, pts)) in series.iter().enumerate() {
            let color = style::color(i);
            chart
                .draw_series(LineSeries::new(
                    pts.iter().map(|p| (p.0, p.1)),
                    color.stroke_width(2),
                ))?
                .label(name.clone())
                .legend(move |(x, y)| Circle::new((x + 10, y), 6, color.filled()));
            chart.draw_series(
                pts.iter()
                    .map(|p| Circle::new((p.0, p.1), 6, color.filled())),
            )?;
            chart.draw_series(pts.iter().map(|p| {
                EmptyElement::at((p.0, p.1))
                    + Text::new(
                        format!("{} ops/s, batch {:.1}", style::si(p.1), p.2),
                        (10, -22),
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
