//! The report's charts, drawn by plotters into SVG strings: one line-chart shape for every
//! chart (time series, the percentile plot, the sweep's curve) and a bar for the response split.
//!
//! Colours are the Okabe–Ito palette, which readers with any common colour-vision deficiency can
//! tell apart; the model's lines are also dashed, so they differ from measurements without colour.

use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::series::DashedLineSeries;

use super::ReportError;

/// Okabe–Ito: blue, orange, bluish green, vermillion, sky blue, reddish purple, black.
pub const BLUE: RGBColor = RGBColor(0x00, 0x72, 0xB2);
pub const ORANGE: RGBColor = RGBColor(0xE6, 0x9F, 0x00);
pub const GREEN: RGBColor = RGBColor(0x00, 0x9E, 0x73);
pub const VERMILLION: RGBColor = RGBColor(0xD5, 0x5E, 0x00);
pub const SKY: RGBColor = RGBColor(0x56, 0xB4, 0xE9);
pub const PURPLE: RGBColor = RGBColor(0xCC, 0x79, 0xA7);
pub const INK: RGBColor = RGBColor(0x22, 0x22, 0x22);

const SIZE: (u32, u32) = (900, 340);

/// One line of a chart.
pub struct Line {
    pub label: String,
    pub points: Vec<(f64, f64)>,
    pub color: RGBColor,
    /// Dashed: the model, or a limit (a bound, a target).
    pub dashed: bool,
    /// Draw a marker at each point as well (few points: a sweep's steps).
    pub dots: bool,
}

impl Line {
    #[must_use]
    pub fn new(label: impl Into<String>, points: Vec<(f64, f64)>, color: RGBColor) -> Line {
        Line { label: label.into(), points, color, dashed: false, dots: false }
    }

    #[must_use]
    pub fn dashed(mut self) -> Line {
        self.dashed = true;
        self
    }

    #[must_use]
    pub fn dots(mut self) -> Line {
        self.dots = true;
        self
    }
}

/// How the x axis reads.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum XAxis {
    Linear,
    /// x is log10(1/(1 − p)); ticks are labelled as percentiles (90%, 99%, 99.9%).
    Percentile,
}

/// A line chart.
pub struct Chart<'a> {
    pub title: &'a str,
    pub x_label: &'a str,
    pub y_label: &'a str,
    pub x_axis: XAxis,
    pub lines: Vec<Line>,
    /// Shaded spans (ramps) and vertical markers (single changes), in x.
    pub spans: Vec<(f64, f64)>,
    /// A labelled point to ring (the knee).
    pub ring: Option<(String, (f64, f64))>,
}

/// A percentile's place on the [`XAxis::Percentile`] axis.
#[must_use]
pub fn percentile_x(p: f64) -> f64 {
    (1.0 / (1.0 - p / 100.0).max(1e-12)).log10()
}

fn percentile_label(x: f64) -> String {
    let p = 100.0 * (1.0 - 10f64.powf(-x));
    if p < 1e-9 {
        "0%".into()
    } else {
        let s = format!("{p:.4}");
        format!("{}%", s.trim_end_matches('0').trim_end_matches('.'))
    }
}

fn err(e: impl std::fmt::Display) -> ReportError {
    ReportError::Chart(e.to_string())
}

type Plot<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// Every chart's legend: a framed box of the series' labels at `at`.
fn legend<'b>(chart: &mut Plot<'b, 'b>, at: SeriesLabelPosition) -> Result<(), ReportError> {
    chart
        .configure_series_labels()
        .position(at)
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(0xBB, 0xBB, 0xBB))
        .label_font(("sans-serif", 13).into_font().color(&INK))
        .draw()
        .map_err(err)
}

/// Draws `c` as an SVG document (`<svg …>…</svg>`).
///
/// # Errors
/// plotters failed to lay the chart out.
pub fn line_chart(c: &Chart) -> Result<String, ReportError> {
    let all = c.lines.iter().flat_map(|l| l.points.iter()).filter(|p| p.0.is_finite() && p.1.is_finite());
    let (mut x0, mut x1, mut y1) = (f64::INFINITY, f64::NEG_INFINITY, 0.0f64);
    for (x, y) in all {
        (x0, x1, y1) = (x0.min(*x), x1.max(*x), y1.max(*y));
    }
    if !x0.is_finite() {
        (x0, x1) = (0.0, 1.0);
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    if c.x_axis == XAxis::Percentile {
        (x0, x1) = (0.0, x1.ceil().max(1.0));
    }
    let y1 = if y1 > 0.0 { y1 * 1.08 } else { 1.0 };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(c.title, ("sans-serif", 18).into_font().color(&INK))
            .margin(12)
            .x_label_area_size(42)
            .y_label_area_size(64)
            .build_cartesian_2d(x0..x1, 0.0..y1)
            .map_err(err)?;
        let mut mesh = chart.configure_mesh();
        mesh.x_desc(c.x_label)
            .y_desc(c.y_label)
            .axis_desc_style(("sans-serif", 15).into_font().color(&INK))
            .label_style(("sans-serif", 13).into_font().color(&INK))
            .light_line_style(RGBColor(0xEE, 0xEE, 0xEE));
        if c.x_axis == XAxis::Percentile {
            mesh.x_labels((x1 - x0) as usize + 1).x_label_formatter(&|x| percentile_label(*x));
        }
        mesh.draw().map_err(err)?;
        for &(a, b) in &c.spans {
            if b > a {
                let shade = Rectangle::new([(a, 0.0), (b, y1)], PURPLE.mix(0.15).filled());
                chart.draw_series(std::iter::once(shade)).map_err(err)?;
            } else {
                let mark = PathElement::new(vec![(a, 0.0), (a, y1)], PURPLE.mix(0.7).stroke_width(1));
                chart.draw_series(std::iter::once(mark)).map_err(err)?;
            }
        }
        if !c.spans.is_empty() {
            // A legend entry for the markers, drawn outside the plot.
            chart
                .draw_series(std::iter::once(PathElement::new(Vec::<(f64, f64)>::new(), PURPLE)))
                .map_err(err)?
                .label("knob change / ramp")
                .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 18, y + 5)], PURPLE.mix(0.3).filled()));
        }
        for l in &c.lines {
            let style = l.color.stroke_width(2);
            let pts = l.points.iter().copied().filter(|p| p.0.is_finite() && p.1.is_finite());
            let anno = if l.dashed {
                chart.draw_series(DashedLineSeries::new(pts.clone(), 8, 5, style)).map_err(err)?
            } else {
                chart.draw_series(LineSeries::new(pts.clone(), style)).map_err(err)?
            };
            let color = l.color;
            anno.label(l.label.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
            if l.dots {
                chart.draw_series(pts.map(|p| Circle::new(p, 3, l.color.filled()))).map_err(err)?;
            }
        }
        if let Some((label, at)) = &c.ring {
            chart.draw_series(std::iter::once(Circle::new(*at, 8, VERMILLION.stroke_width(2)))).map_err(err)?;
            let text = Text::new(label.clone(), (at.0, at.1), ("sans-serif", 13).into_font().color(&VERMILLION));
            chart.draw_series(std::iter::once(text)).map_err(err)?;
        }
        legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// The mean response time split into its parts, as one stacked bar with a legend. A part below
/// 0 (the account's randomness or lateness can be: this run's draws kinder than theory's mean)
/// is drawn on a lower band running back from the end of the parts above 0, so the lower band
/// ends at the sum of all the parts.
///
/// # Errors
/// plotters failed to lay the chart out.
pub fn split_bar(parts: &[(&str, f64)]) -> Result<String, ReportError> {
    let total: f64 = parts.iter().map(|p| p.1.max(0.0)).sum();
    let total = if total > 0.0 { total } else { 1.0 };
    let color_of = |name: &str| match name {
        "queue" | "lateness" => ORANGE,
        "broker" | "randomness" => PURPLE,
        "scheduling" | "overhead" => VERMILLION,
        "inflation" => SKY,
        "theory" => GREEN,
        _ => BLUE,
    };
    // The bands: the whole height when every part is above 0, else an upper and a lower one.
    let signed = parts.iter().any(|p| p.1 < 0.0);
    let (up, down) = if signed { ((0.45, 0.75), (0.05, 0.35)) } else { ((0.05, 0.75), (0.05, 0.75)) };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 220)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption("Where the mean response time goes", ("sans-serif", 18).into_font().color(&INK))
            .margin(12)
            .x_label_area_size(36)
            .build_cartesian_2d(0.0..total, 0.0..1.8)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("milliseconds")
            .axis_desc_style(("sans-serif", 15).into_font().color(&INK))
            .label_style(("sans-serif", 13).into_font().color(&INK))
            .disable_y_mesh()
            .disable_y_axis()
            .draw()
            .map_err(err)?;
        let (mut at, mut back) = (0.0, total);
        // The bar takes the lower part; the legend sits above it.
        for (name, v) in parts {
            let color = color_of(name);
            let bar = if *v >= 0.0 {
                at += v;
                Rectangle::new([(at - v, up.0), (at, up.1)], color.filled())
            } else {
                back += v;
                Rectangle::new([(back, down.0), (back - v, down.1)], color.filled())
            };
            chart
                .draw_series(std::iter::once(bar))
                .map_err(err)?
                .label(format!("{name} {v:.3} ms"))
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 18, y + 5)], color.filled()));
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_part_below_zero_runs_back_on_its_own_band() {
        let svg = split_bar(&[("theory", 2.0), ("randomness", -0.5), ("overhead", 0.25)]).unwrap();
        for text in ["theory 2.000 ms", "randomness -0.500 ms", "overhead 0.250 ms"] {
            assert!(svg.contains(text), "no {text}");
        }
    }

    #[test]
    fn the_percentile_axis_reads_as_percentiles() {
        assert_eq!(percentile_label(0.0), "0%");
        assert_eq!(percentile_label(1.0), "90%");
        assert_eq!(percentile_label(2.0), "99%");
        assert_eq!(percentile_label(3.0), "99.9%");
        assert!((percentile_x(99.99) - 4.0).abs() < 1e-9);
    }

    #[test]
    fn a_chart_has_its_title_axes_and_legend() {
        let c = Chart {
            title: "Throughput",
            x_label: "time (s)",
            y_label: "jobs/s",
            x_axis: XAxis::Linear,
            lines: vec![
                Line::new("offered", vec![(0.0, 1.0), (1.0, 2.0)], BLUE),
                Line::new("model", vec![(0.0, 1.5), (1.0, 1.5)], ORANGE).dashed(),
            ],
            spans: vec![(0.5, 0.5)],
            ring: None,
        };
        let svg = line_chart(&c).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..60]);
        for text in ["Throughput", "time (s)", "jobs/s", "offered", "model", "knob change"] {
            assert!(svg.contains(text), "no {text}");
        }
    }
}
