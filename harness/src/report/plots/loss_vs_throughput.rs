//! The headline plot: loss window against throughput, one point per configuration and fault.
//!
//! x is throughput (ops/s, log scale, from the bench records); y is the loss window in ms on
//! a log scale: marker at p50, ring at p99, cap at max (over crash trials). A log scale
//! cannot show 0, so a zero loss window is drawn on a dashed floor line labelled "0 ms", one
//! decade below the smallest non-zero value. Points of different faults for the same
//! configuration are spread ±4% sideways so that they do not hide each other. The Pareto
//! front of each fault (on p50) is joined by a dashed line and ringed. A censored max (a
//! lower bound, docs/design.md "Censoring") gets an arrow pointing up from its cap, and its
//! point's label says how many states were censored. Every point is labelled, the labels
//! placed clear of each other ([`LabelPlacer`]).

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::style::{self, GREY};
use super::{
    DrawResult, LabelPlacer, Plot, builder, centred_note, label_element, legend, legend_box,
    plot_area,
};
use crate::report::model::{CrashRecord, RunResults, pareto_front};
use crate::results::json::BenchRecord;

/// The legend entry of the censored arrow.
const CENSORED_LEGEND: &str = "censored: max (and any figure under the arrow) only a lower bound";

/// How far up the arrow of a censored max reaches, as a factor on the loss axis.
const CENSORED_ARROW: f64 = 1.8;

/// Sideways spread between faults, as a factor on throughput.
pub const DODGE_FACTOR: f64 = 1.04;

/// See the module docs.
#[derive(Debug)]
pub struct LossVsThroughput<'a> {
    results: &'a RunResults,
}

impl<'a> LossVsThroughput<'a> {
    /// The plot of `results`.
    pub fn new(results: &'a RunResults) -> Self {
        LossVsThroughput { results }
    }

    /// The faults, each with the (bench, crash) pairs measured under it.
    fn series(&self) -> Vec<(String, Vec<(&'a BenchRecord, &'a CrashRecord)>)> {
        let r = self.results;
        r.faults()
            .into_iter()
            .map(|f| {
                let pts = r
                    .benches
                    .iter()
                    .filter(|b| b.ops_per_sec > 0.0)
                    .filter_map(|b| r.crash(&b.config, &f).map(|c| (b, c)))
                    .collect();
                (f, pts)
            })
            .collect()
    }
}

/// The y value standing for 0 ms: one decade below the smallest positive loss figure,
/// a power of ten, at least 0.001 ms (1 ms when there is no positive figure).
pub fn zero_floor_ms(values: impl IntoIterator<Item = f64>) -> f64 {
    let min = values
        .into_iter()
        .filter(|v| *v > 0.0)
        .fold(f64::INFINITY, f64::min);
    if min.is_finite() {
        10f64.powi(min.log10().floor() as i32 - 1).max(0.001)
    } else {
        1.0
    }
}

/// Vertices of marker `shape` around (0, 0), in pixels: circle, triangle, square, diamond,
/// inverted triangle, then again.
fn marker_shape(shape: usize, r: i32) -> Vec<(i32, i32)> {
    let poly = |n: usize, phase: f64| -> Vec<(i32, i32)> {
        (0..n)
            .map(|k| {
                let a = phase + k as f64 * std::f64::consts::TAU / n as f64;
                (
                    (a.cos() * f64::from(r)).round() as i32,
                    (a.sin() * f64::from(r)).round() as i32,
                )
            })
            .collect()
    };
    use std::f64::consts::{FRAC_PI_2, FRAC_PI_4};
    match shape % 5 {
        0 => poly(16, 0.0),
        1 => poly(3, -FRAC_PI_2),
        2 => poly(4, FRAC_PI_4),
        3 => poly(4, 0.0),
        _ => poly(3, FRAC_PI_2),
    }
}

fn shifted(vertices: &[(i32, i32)], (x, y): (i32, i32)) -> Vec<(i32, i32)> {
    vertices.iter().map(|(dx, dy)| (x + dx, y + dy)).collect()
}

impl Plot for LossVsThroughput<'_> {
    fn stem(&self) -> &'static str {
        "loss-vs-throughput"
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        root.fill(&WHITE)?;
        let r = self.results;
        let benches: Vec<&BenchRecord> = r.benches.iter().filter(|b| b.ops_per_sec > 0.0).collect();
        if benches.is_empty() {
            return centred_note(root, "no bench results in this run");
        }
        let xmin = benches
            .iter()
            .map(|b| b.ops_per_sec)
            .fold(f64::MAX, f64::min);
        let xmax = benches.iter().map(|b| b.ops_per_sec).fold(0.0, f64::max);
        let (xlo, xhi) = (xmin / 2.0, xmax * 2.0);
        let series = self.series();
        let spreads = || {
            series
                .iter()
                .flat_map(|(_, p)| p.iter().map(|(_, c)| c.window.summary))
        };
        let floor = zero_floor_ms(spreads().flat_map(|s| [s.p50, s.p99, s.max]));
        let top = spreads().map(|s| s.max).fold(floor * 100.0, f64::max) * 3.0;
        let (ylo, yhi) = (floor / 2.5, top);
        let clamp = |v: f64| v.max(floor);

        let mut chart = builder(
            root,
            &format!("{}: loss window vs throughput", r.run.scenario),
        )
        .build_cartesian_2d((xlo..xhi).log_scale(), (ylo..yhi).log_scale())?;
        let measured = !r.crashes.is_empty();
        let y_fmt = |v: &f64| {
            if !measured {
                String::new()
            } else if (*v / floor - 1.0).abs() < 1e-6 {
                "0 ms".to_string()
            } else if *v < floor {
                String::new()
            } else {
                style::plain(*v)
            }
        };
        chart
            .configure_mesh()
            .x_desc("throughput (ops/s, log scale; from bench)")
            .y_desc(if measured {
                "loss window, ms (log; marker p50, ring p99, cap max)"
            } else {
                "loss window: not measured"
            })
            .axis_desc_style(style::label())
            .label_style(style::tick())
            .x_label_formatter(&|v| style::si(*v))
            .y_label_formatter(&y_fmt)
            .light_line_style(WHITE.mix(0.0))
            .draw()?;

        if !measured {
            for (i, b) in benches.iter().enumerate() {
                let y = yhi / 3.0 / 2f64.powi(i as i32 % 8);
                chart.draw_series(DashedLineSeries::new(
                    [(b.ops_per_sec, ylo), (b.ops_per_sec, yhi)],
                    4,
                    4,
                    GREY.stroke_width(1),
                ))?;
                chart.draw_series(std::iter::once(
                    EmptyElement::at((b.ops_per_sec, y))
                        + Text::new(b.label.clone(), (4, 0), style::tick()),
                ))?;
            }
            return centred_note(
                root,
                "no crash results in this run: loss window not measured",
            );
        }

        // The zero-loss floor.
        chart.draw_series(DashedLineSeries::new(
            [(xlo, floor), (xhi, floor)],
            8,
            5,
            GREY.stroke_width(1),
        ))?;
        let right_top = style::tick().pos(Pos::new(HPos::Right, VPos::Top));
        chart.draw_series(std::iter::once(
            EmptyElement::at((xhi, floor))
                + Text::new("0 ms: no acknowledged write lost", (-8, 6), right_top),
        ))?;

        let nf = series.len();
        for (fi, (fault, points)) in series.iter().enumerate() {
            let color = style::color(fi);
            let dodge = DODGE_FACTOR.powf(fi as f64 - (nf as f64 - 1.0) / 2.0);
            let at = |b: &BenchRecord| b.ops_per_sec * dodge;

            // Pareto front on p50.
            let xy: Vec<(f64, f64)> = points
                .iter()
                .map(|(b, c)| (b.ops_per_sec, c.window.summary.p50))
                .collect();
            let front = pareto_front(&xy);
            chart.draw_series(DashedLineSeries::new(
                front
                    .iter()
                    .map(|&i| (at(points[i].0), clamp(points[i].1.window.summary.p50)))
                    .collect::<Vec<_>>(),
                10,
                5,
                color.stroke_width(2),
            ))?;
            chart.draw_series(front.iter().map(|&i| {
                Circle::new(
                    (at(points[i].0), clamp(points[i].1.window.summary.p50)),
                    13,
                    color.stroke_width(2),
                )
            }))?;

            chart.draw_series(points.iter().map(|(b, c)| {
                let s = c.window.summary;
                ErrorBar::new_vertical(
                    at(b),
                    clamp(s.p50),
                    clamp(s.p99),
                    clamp(s.max),
                    color.stroke_width(2),
                    12,
                )
            }))?;
            let shape = marker_shape(fi, 7);
            let legend_shape = shape.clone();
            chart
                .draw_series(points.iter().map(|(b, c)| {
                    EmptyElement::at((at(b), clamp(c.window.summary.p50)))
                        + Polygon::new(shape.clone(), color.filled())
                }))?
                .label(fault.clone())
                .legend(move |p| Polygon::new(shifted(&legend_shape, p), color.filled()));
        }
        // Censored figures: an arrow up from the cap (the max is only a lower bound).
        let censored: Vec<(f64, f64)> = series
            .iter()
            .enumerate()
            .flat_map(|(fi, (_, points))| {
                let dodge = DODGE_FACTOR.powf(fi as f64 - (nf as f64 - 1.0) / 2.0);
                points
                    .iter()
                    .filter(|(_, c)| c.window.max_is_lower_bound())
                    .map(move |(b, c)| (b.ops_per_sec * dodge, clamp(c.window.summary.max)))
            })
            .collect();
        let head = |(x, y): (i32, i32)| {
            Polygon::new(
                vec![(x - 7, y + 6), (x + 7, y + 6), (x, y - 8)],
                BLACK.filled(),
            )
        };
        for &(x, y) in &censored {
            chart.draw_series(LineSeries::new(
                [(x, y), (x, y * CENSORED_ARROW)],
                BLACK.stroke_width(2),
            ))?;
            chart.draw_series(std::iter::once(
                EmptyElement::at((x, y * CENSORED_ARROW)) + head((0, 0)),
            ))?;
        }
        if !censored.is_empty() {
            chart
                .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())?
                .label(CENSORED_LEGEND)
                .legend(head);
        }
        // Every point labelled (kill -9 points on the floor too), placed clear of the markers
        // and of each other; a configuration's label is drawn once per height, so faults
        // dodged side by side at one loss share it.
        let mut placed: Vec<(String, i32, i32)> = Vec::new();
        let mut todo: Vec<((f64, f64), String)> = Vec::new();
        for (fi, (_, points)) in series.iter().enumerate() {
            let dodge = DODGE_FACTOR.powf(fi as f64 - (nf as f64 - 1.0) / 2.0);
            for (b, c) in points {
                let mut text = b.label.clone();
                if let Some(n) = c.window.censored.filter(|n| *n > 0) {
                    text.push_str(&format!(" (censored {n}/{})", c.window.states));
                }
                todo.push(((b.ops_per_sec * dodge, clamp(c.window.summary.p50)), text));
            }
        }
        let px: Vec<(i32, i32)> = todo.iter().map(|(p, _)| chart.backend_coord(p)).collect();
        let area = plot_area(&chart);
        let mut placer = LabelPlacer::new(px.iter().copied()).within(area);
        let entries: Vec<&str> = series.iter().map(|(f, _)| f.as_str()).collect();
        let longest = entries
            .iter()
            .map(|e| e.len())
            .chain([CENSORED_LEGEND.len()])
            .max();
        placer.reserve(legend_box(
            area,
            entries.len() + 1 + usize::from(!censored.is_empty()),
            longest.unwrap_or(0),
        ));
        // The floor's own note, right-aligned under the line's right end.
        let (fx, fy) = chart.backend_coord(&(xhi, floor));
        placer.reserve((fx - 300, fy, fx, fy + 26));
        for ((p, text), at) in todo.iter().zip(&px) {
            if placed
                .iter()
                .any(|(t, x, y)| t == text && (x - at.0).abs() < 60 && (y - at.1).abs() < 30)
            {
                continue;
            }
            placed.push((text.clone(), at.0, at.1));
            let offset = placer.place(*at, text);
            chart.draw_series(std::iter::once(label_element(*p, text.clone(), offset)))?;
        }
        chart
            .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())?
            .label("Pareto front (dashed, ringed)")
            .legend(|(x, y)| Circle::new((x, y), 8, GREY.stroke_width(2)));

        legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
        Ok(())
    }
}
