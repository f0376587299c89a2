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
