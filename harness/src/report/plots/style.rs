//! Shared look of every plot: size, the bundled font, colours, markers and number formats.

use std::sync::OnceLock;

use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

/// Width of every plot, pixels (PNG) or user units (SVG).
pub const WIDTH_PX: u32 = 1200;
/// Height of every plot.
pub const HEIGHT_PX: u32 = 760;

/// The family name the bundled font is registered under (what SVG viewers are asked for).
pub const FONT: &str = "sans-serif";

/// DejaVu Sans (Bitstream Vera licence, see assets/fonts/DejaVuSans-LICENSE.txt): text is
/// rendered with ab_glyph from these bytes, so no system font library is needed.
static FONT_TTF: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");

/// Registers the bundled font (once per process).
///
/// # Errors
/// When the bundled bytes are not a font (cannot happen with the shipped file).
pub fn ensure_font() -> Result<(), String> {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| {
        for style in [FontStyle::Normal, FontStyle::Bold] {
            register_font(FONT, style, FONT_TTF)
                .map_err(|_| "the bundled DejaVuSans.ttf is not a valid font".to_string())?;
        }
        Ok(())
    })
    .clone()
}

/// Okabe–Ito palette (readable with colour-vision deficiencies), then darker extras.
const PALETTE: [RGBColor; 10] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(0, 0, 0),
    RGBColor(120, 94, 240),
    RGBColor(140, 86, 75),
    RGBColor(127, 127, 127),
];

/// Colour of series `i` (cycles after ten).
pub fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// A grey for notes and reference lines.
pub const GREY: RGBColor = RGBColor(110, 110, 110);

/// Title text.
pub fn title() -> TextStyle<'static> {
    (FONT, 26).into_font().into()
}

/// Axis descriptions, legend and point labels.
pub fn label() -> TextStyle<'static> {
    (FONT, 17).into_font().into()
}

/// Tick labels.
pub fn tick() -> TextStyle<'static> {
    (FONT, 15).into_font().into()
}

/// Large notes such as "no measurements in this run".
pub fn note() -> TextStyle<'static> {
    (FONT, 22).into_font().color(&GREY)
}

/// `1234567` → `1.23M`, `5400` → `5.4k`, `12` → `12`.
pub fn si(v: f64) -> String {
    let a = v.abs();
    let (x, unit) = if a >= 1e9 {
        (v / 1e9, "G")
    } else if a >= 1e6 {
        (v / 1e6, "M")
    } else if a >= 1e3 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    let digits = if x.abs() >= 100.0 || x.fract().abs() < 1e-9 {
        0
    } else if x.abs() >= 10.0 {
        1
    } else {
        2
    };
    let s = format!("{x:.digits$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    format!("{s}{unit}")
}

/// A plain number with at most 3 significant digits, no trailing zeros (`0.05`, `12.5`, `1200`).
pub fn plain(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let digits = (2 - v.abs().log10().floor() as i32).max(0) as usize;
    let s = format!("{v:.digits$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// A byte count in binary units with at most 3 significant digits: `29058034` → `27.7 MiB`,
/// `512` → `512 B`.
pub fn bytes(v: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut x = v;
    let mut unit = 0;
    while x.abs() >= 1024.0 && unit + 1 < UNITS.len() {
        x /= 1024.0;
        unit += 1;
    }
    format!("{} {}", plain(x), UNITS[unit])
}

#[cfg(test)]
mod tests {
    #[test]
    fn number_formats() {
        assert_eq!(super::si(1_234_567.0), "1.23M");
        assert_eq!(super::si(5400.0), "5.4k");
        assert_eq!(super::si(12.0), "12");
        assert_eq!(super::plain(0.05), "0.05");
        assert_eq!(super::plain(12.5), "12.5");
        assert_eq!(super::plain(1200.0), "1200");
        assert_eq!(super::plain(0.0042), "0.0042");
        assert_eq!(super::bytes(29_058_034.0), "27.7 MiB");
        assert_eq!(super::bytes(512.0), "512 B");
        assert_eq!(super::bytes(0.0), "0 B");
    }
}
