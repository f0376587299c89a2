//! The report's plots, each drawn once as SVG and once as PNG with the same code.

pub mod group_commit;
pub mod latency_cdf;
pub mod loss_vs_throughput;
pub mod recovery;
pub mod style;

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use super::ReportError;
use super::model::RunResults;

/// Drawing errors of backend `DB`.
pub type DrawResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// A plot that can be drawn on any plotters backend.
pub trait Plot {
    /// File name without extension (`loss-vs-throughput`).
    fn stem(&self) -> &'static str;
    /// Draws the whole plot on `root` (already sized [`style::WIDTH_PX`] ×
    /// [`style::HEIGHT_PX`]).
    ///
    /// # Errors
    /// Errors of the backend.
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB>;
}

/// Writes `plot` as `<dir>/<stem>.svg` and `<dir>/<stem>.png`; returns both paths.
///
/// # Errors
/// [`ReportError::Plot`] naming the file when drawing or writing fails.
pub fn write(plot: &impl Plot, dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
    let svg = dir.join(format!("{}.svg", plot.stem()));
    let png = dir.join(format!("{}.png", plot.stem()));
    let fail = |path: &Path| {
        let path = path.to_owned();
        move |e: &dyn std::fmt::Display| ReportError::Plot {
            path,
            message: e.to_string(),
        }
    };
    style::ensure_font().map_err(|e| fail(&svg)(&e))?;
    let size = (style::WIDTH_PX, style::HEIGHT_PX);
    {
        let root = SVGBackend::new(&svg, size).into_drawing_area();
        plot.draw(&root).map_err(|e| fail(&svg)(&e))?;
        root.present().map_err(|e| fail(&svg)(&e))?;
    }
    {
        let root = BitMapBackend::new(&png, size).into_drawing_area();
        plot.draw(&root).map_err(|e| fail(&png)(&e))?;
        root.present().map_err(|e| fail(&png)(&e))?;
    }
    Ok(vec![svg, png])
}

/// Writes all four plots of `results` into `dir`.
///
/// # Errors
/// As [`write`].
pub fn write_all(results: &RunResults, dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
    let mut files = write(&loss_vs_throughput::LossVsThroughput::new(results), dir)?;
    files.extend(write(&latency_cdf::LatencyCdf::new(results), dir)?);
    files.extend(write(&group_commit::GroupCommit::new(results), dir)?);
    files.extend(write(&recovery::Recovery::new(results), dir)?);
    Ok(files)
}

/// A chart builder with the common layout: `title` on top, margins and label areas.
pub fn builder<'a, 'b, DB: DrawingBackend>(
    root: &'a DrawingArea<DB, Shift>,
    title: &str,
) -> ChartBuilder<'a, 'b, DB> {
    let mut b = ChartBuilder::on(root);
    b.caption(title, style::title())
        .margin(20)
        .x_label_area_size(60)
        .y_label_area_size(90);
    b
}

/// Draws the legend of `chart` at `position` in the common style.
///
/// # Errors
/// Errors of the backend.
pub fn legend<'a, DB: DrawingBackend + 'a, CT: plotters::coord::CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
) -> DrawResult<DB> {
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font(style::label())
        .draw()
}

/// Draws `text` centred in `area` (for "no measurements" notes).
///
/// # Errors
/// Errors of the backend.
pub fn centred_note<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    text: &str,
) -> DrawResult<DB> {
    let (w, h) = area.dim_in_pixel();
    let style = style::note().pos(plotters::style::text_anchor::Pos::new(
        plotters::style::text_anchor::HPos::Center,
        plotters::style::text_anchor::VPos::Center,
    ));
    area.draw(&Text::new(
        text.to_string(),
        (w as i32 / 2, h as i32 / 2),
        style,
    ))
}

/// A pixel rectangle `(left, top, right, bottom)`.
pub type PixelBox = (i32, i32, i32, i32);

/// Places point labels so that no two overlap each other or a marker: each label takes the
/// first free position among candidates right and left of its point, moving outwards in
/// rows, and reserves it. Text boxes are estimated from the tick font (15 px: about 7 px per
/// character of DejaVu Sans plus 10 px, 18 px high).
#[derive(Debug, Default)]
pub struct LabelPlacer {
    taken: Vec<PixelBox>,
    /// The plotting area: a candidate reaching outside it is not used.
    area: Option<PixelBox>,
}

/// Estimated pixel width of `text` in the tick font.
fn text_width(text: &str) -> i32 {
    7 * text.chars().count() as i32 + 10
}

/// A point label as drawn by [`label_element`]: the point, a leader line and the text.
pub type Label<C, DB> = plotters::element::ComposedElement<
    C,
    DB,
    PathElement<(i32, i32)>,
    Text<'static, (i32, i32), String>,
>;

/// A label at pixel `offset` from its point, with a thin leader line to the point when the
/// placer had to move it away from the first row, so that the reader sees whose it is.
pub fn label_element<C: Clone, DB: DrawingBackend>(
    point: C,
    text: String,
    offset: (i32, i32),
) -> Label<C, DB> {
    let far = offset.1 < -30 || offset.1 > 12;
    // The leader ends at the label's vertical middle, on its side nearest the point.
    let end = (
        if offset.0 < 0 {
            offset.0 + text_width(&text)
        } else {
            offset.0
        },
        offset.1 + 9,
    );
    let leader = if far { vec![(0, 0), end] } else { Vec::new() };
    EmptyElement::at(point)
        + PathElement::new(leader, style::GREY.stroke_width(1))
        + Text::new(text, offset, style::tick())
}

/// The pixel box the legend drawn by [`legend`] at the upper left takes, estimated from its
/// `entries` and their longest text (`longest` characters in the label font).
pub fn legend_box(area: PixelBox, entries: usize, longest: usize) -> PixelBox {
    (
        area.0,
        area.1,
        area.0 + 60 + 8 * longest as i32,
        area.1 + 12 + 22 * entries as i32,
    )
}

/// The pixel box of `chart`'s plotting area.
pub fn plot_area<DB: DrawingBackend, CT: plotters::coord::CoordTranslate>(
    chart: &ChartContext<'_, DB, CT>,
) -> PixelBox {
    let (x, y) = chart.plotting_area().get_pixel_range();
    (x.start, y.start, x.end, y.end)
}

/// Whether two boxes share any pixel.
pub fn overlaps(a: PixelBox, b: PixelBox) -> bool {
    a.0 < b.2 && b.0 < a.2 && a.1 < b.3 && b.1 < a.3
}

impl LabelPlacer {
    /// A placer that keeps labels off markers of radius 10 px at `markers` (pixels).
    pub fn new(markers: impl IntoIterator<Item = (i32, i32)>) -> LabelPlacer {
        LabelPlacer {
            taken: markers
                .into_iter()
                .map(|(x, y)| (x - 10, y - 10, x + 10, y + 10))
                .collect(),
            area: None,
        }
    }

    /// Keeps labels inside `area` (pixels) when a candidate fits there.
    pub fn within(mut self, area: PixelBox) -> LabelPlacer {
        self.area = Some(area);
        self
    }

    /// Reserves `b` (pixels), e.g. a fixed note, so that no label covers it.
    pub fn reserve(&mut self, b: PixelBox) {
        self.taken.push(b);
    }

    /// The offset from `at` (pixels) at which to draw `text` (its top-left corner), now
    /// reserved. When every candidate is taken, the first one (overlap accepted rather than
    /// a label dropped).
    pub fn place(&mut self, at: (i32, i32), text: &str) -> (i32, i32) {
        let w = text_width(text);
        const H: i32 = 18;
        let mut candidates = Vec::new();
        for row in 0..8 {
            let up = -H - 6 - row * (H + 2);
            let down = 8 + row * (H + 2);
            candidates.extend([(12, up), (12, down), (-w - 12, up), (-w - 12, down)]);
        }
        let boxed = |(dx, dy): (i32, i32)| (at.0 + dx, at.1 + dy, at.0 + dx + w, at.1 + dy + H);
        let chosen = candidates
            .iter()
            .copied()
            .find(|&c| {
                let b = boxed(c);
                let inside = self
                    .area
                    .is_none_or(|a| a.0 <= b.0 && b.2 <= a.2 && a.1 <= b.1 && b.3 <= a.3);
                inside && !self.taken.iter().any(|&t| overlaps(t, b))
            })
            .unwrap_or(candidates[0]);
        self.taken.push(boxed(chosen));
        chosen
    }

    /// Every box reserved so far (markers first, then labels in placement order).
    pub fn boxes(&self) -> &[PixelBox] {
        &self.taken
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_of_coinciding_points_do_not_overlap() {
        // Eight points on one pixel (kill -9 points of eight configurations on the 0 ms floor)
        // and two labels at a neighbour.
        let points = [(300, 400); 8];
        let mut placer = LabelPlacer::new(points);
        for (i, p) in points.iter().enumerate() {
            placer.place(*p, &format!("everysec-pwrite-none-aof-{i}"));
        }
        placer.place((320, 400), "no-pwrite-none-aof");
        let labels = &placer.boxes()[points.len()..];
        for (i, a) in labels.iter().enumerate() {
            for b in &labels[i + 1..] {
                assert!(!overlaps(*a, *b), "{a:?} and {b:?}");
            }
            assert!(
                !overlaps(*a, (290, 390, 310, 410)),
                "label {a:?} on the marker"
            );
        }
        // The overlap check itself: boxes sharing pixels overlap, touching ones do not.
        assert!(overlaps((0, 0, 10, 10), (5, 5, 15, 15)));
        assert!(!overlaps((0, 0, 10, 10), (10, 0, 20, 10)));
    }
}
