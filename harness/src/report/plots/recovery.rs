//! Recovery time (`Engine::open`) against data size, one series per persistence mode, from
//! `recovery.json`; a note instead of points when the run has no recovery measurements.

use std::collections::BTreeMap;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::style;
use super::{DrawResult, Plot, builder, centred_note, legend};
use crate::report::model::RunResults;

const MIB: f64 = 1024.0 * 1024.0;

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

    /// persistence → (data MiB, open ms, label), sorted by size.
    pub fn series(&self) -> BTreeMap<String, Vec<(f64, f64, String)>> {
        let mut out: BTreeMap<String, Vec<(f64, f64, String)>> = BTreeMap::new();
        for m in &self.results.recovery {
            out.entry(m.config.persistence.clone()).or_default().push((
                m.data_bytes as f64 / MIB,
                m.open_ms,
                m.label.clone(),
            ));
        }
        for v in out.values_mut() {
            v.sort_by(|a, b| a.0.total_cmp(&b.0));
        }
        out
    }
}

impl Plot for Recovery<'_> {
    fn stem(&self) -> &'static str {
        "recovery"
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        root.fill(&WHITE)?;
        let series = self.series();
        let all = || series.values().flat_map(|v| v.iter());
        let xmax = all().map(|p| p.0).fold(0.0, f64::max).max(0.001) * 1.2;
        let ymax = all().map(|p| p.1).fold(0.0, f64::max).max(0.001) * 1.25;
        let mut chart = builder(
            root,
            &format!("{}: recovery time vs data size", self.results.run.scenario),
        )
        .build_cartesian_2d(0.0..xmax, 0.0..ymax)?;
        chart
            .configure_mesh()
            .x_desc("data directory size, MiB")
            .y_desc("recovery time (Engine::open), ms")
            .axis_desc_style(style::label())
            .label_style(style::tick())
            .x_label_formatter(&|v| style::plain(*v))
            .y_label_formatter(&|v| style::plain(*v))
            .light_line_style(WHITE.mix(0.0))
            .draw()?;
        if series.is_empty() {
            return centred_note(root, "no recovery measurements in this run");
        }
        for (i, (mode, pts)) in series.iter().enumerate() {
            let color = style::color(i);
            chart
                .draw_series(
                    pts.iter()
                        .map(|p| Circle::new((p.0, p.1), 6, color.filled())),
                )?
                .label(mode.clone())
                .legend(move |(x, y)| Circle::new((x + 10, y), 6, color.filled()));
            chart.draw_series(pts.iter().enumerate().map(|(k, p)| {
                EmptyElement::at((p.0, p.1))
                    + Text::new(
                        p.2.clone(),
                        (10, if k % 2 == 0 { -22 } else { 8 }),
                        style::tick(),
                    )
            }))?;
        }
        legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
        Ok(())
    }
}
