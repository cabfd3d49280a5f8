//! The charts over the selected window: throughput, queue depth against its bound, and
//! latency percentiles, with the model's predictions as dotted lines and a vertical line
//! wherever a knob changed; while an adaptive controller sets the worker count, a fourth chart
//! of its limit beside the workers set, alive and busy.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::symbols::Marker;
use ratatui::text::Span;
use ratatui::widgets::{Axis, Block, Chart, Dataset, GraphType, Widget};

use super::super::state::{Point, State, WINDOWS};
use super::fit::{HIGH, KEEP, LOW, fit};
use super::panels::{count, ms};

struct Series {
    name: &'static str,
    color: Color,
    data: Vec<(f64, f64)>,
    predicted: bool,
}

fn series(s: &State, name: &'static str, color: Color, f: impl Fn(&Point) -> Option<f64>) -> Series {
    let now = s.now();
    let data = s.visible().filter_map(|p| f(p).map(|v| (p.t - now, v))).collect();
    Series { name, color, data, predicted: false }
}

fn predicted(mut x: Series) -> Series {
    x.predicted = true;
    x
}

pub fn render(s: &State, area: Rect, buf: &mut Buffer) {
    let (area, workers_area) = if s.visible().any(|p| p.limit.is_some()) {
        let [top, bottom] = Layout::vertical([Constraint::Ratio(3, 4), Constraint::Ratio(1, 4)]).areas(area);
        (top, Some(bottom))
    } else {
        (area, None)
    };
    if let Some(w) = workers_area {
        let workers = [
            series(s, "limit", Color::Magenta, |p| p.limit),
            series(s, "set", Color::White, |p| Some(p.workers)),
            series(s, "live", Color::Cyan, |p| Some(p.live)),
            series(s, "busy", Color::Green, |p| Some(p.busy)),
        ];
        let title = s.snap.adapt.map_or_else(|| "workers".to_string(), |a| format!("workers, {}", a.algorithm));
        draw(s, w, buf, &title, &workers, count);
    }
    let [a, b, c] = Layout::vertical([Constraint::Ratio(1, 3); 3]).areas(area);
    let throughput = [
        series(s, "offered/s", Color::Cyan, |p| Some(p.offered)),
        series(s, "done/s", Color::Green, |p| Some(p.completed)),
        series(s, "refused/s", Color::Red, |p| Some(p.refused)),
    ];
    draw(s, a, buf, "throughput, jobs/s", &throughput, count);

    let max_depth = s.visible().map(|p| p.depth).fold(0.0, f64::max);
    // The bound is drawn when it is in view: a bound of 10M next to a depth of 3 would flatten
    // the chart into nothing.
    let show_bound = s.visible().any(|p| p.bound <= (max_depth * 2.0).max(10.0));
    let mut depth = vec![series(s, "depth", Color::Yellow, |p| Some(p.depth))];
    if show_bound {
        depth.push(series(s, "bound", Color::Red, |p| Some(p.bound)));
    }
    depth.push(predicted(series(s, "model", Color::Gray, |p| p.predicted_queue)));
    draw(s, b, buf, "queue depth", &depth, count);

    let latency = [
        series(s, "p50", Color::Green, |p| Some(p.p50)),
        series(s, "p99", Color::Yellow, |p| Some(p.p99)),
        series(s, "max", Color::Red, |p| Some(p.max)),
        predicted(series(s, "model mean", Color::Gray, |p| p.predicted_mean)),
        predicted(series(s, "model p99", Color::Magenta, |p| p.predicted_p99)),
    ];
    draw(s, c, buf, "latency, ms", &latency, ms);
}

/// Without colour, the measured series of a chart in turn: a fine line, blocks, bars.
const MONO_MARKERS: [(Marker, &str); 3] = [(Marker::Braille, "━ "), (Marker::Block, "█ "), (Marker::Bar, "▄ ")];

fn draw(s: &State, area: Rect, buf: &mut Buffer, title: &str, all: &[Series], fmt: fn(f64) -> String) {
    let window = WINDOWS[s.window].as_secs_f64();
    let top = all.iter().flat_map(|x| x.data.iter().map(|p| p.1)).fold(0.0, f64::max);
    let top = if top > 0.0 { top * 1.1 } else { 1.0 };
    let now = s.now();
    // A single change is one line; a ramp is two, where it started and where it ended (so far).
    let markers: Vec<[(f64, f64); 2]> = s
        .markers
        .iter()
        .flat_map(|m| if m.until > m.t { vec![m.t, m.until] } else { vec![m.t] })
        .map(|t| t - now)
        .filter(|x| *x >= -window)
        .map(|x| [(x, 0.0), (x, top)])
        .collect();
    let mut sets: Vec<Dataset> = markers
        .iter()
        .map(|m| {
            Dataset::default()
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(Style::default().fg(Color::DarkGray))
                .data(m)
        })
        .collect();
    // Each series' marker and the legend's mark for it: in colour the measured ones are lines
    // and the model's dots; without colour each measured series has a marker of its own.
    let looks: Vec<(Marker, &str)> = all
        .iter()
        .scan(0, |measured, x| {
            Some(if x.predicted {
                (Marker::Dot, "· ")
            } else {
                *measured += 1;
                if s.palette == crate::tui::state::Palette::Mono {
                    MONO_MARKERS[(*measured - 1) % MONO_MARKERS.len()]
                } else {
                    (Marker::Braille, "━ ")
                }
            })
        })
        .collect();
    sets.extend(all.iter().zip(&looks).filter(|(x, _)| !x.data.is_empty()).map(|(x, &(marker, _))| {
        Dataset::default()
            .name(x.name)
            .marker(marker)
            .graph_type(if x.predicted { GraphType::Scatter } else { GraphType::Line })
            .style(Style::default().fg(x.color))
            .data(&x.data)
    }));
    // The legend fits the border by the fitting rule: the model's series go first.
    let mut title = vec![(KEEP, Span::raw(format!(" {title} ")))];
    for (x, &(_, mark)) in all.iter().zip(&looks) {
        let rank = if x.predicted { LOW } else { HIGH };
        title.push((rank, Span::styled(format!("{mark}{} ", x.name), Style::default().fg(x.color))));
    }
    let title = fit(title, area.width.saturating_sub(2) as usize);
    let w = crate::duration::format(WINDOWS[s.window]);
    let x_labels = vec![Span::raw(format!("-{w}")), Span::raw("now")];
    let y_labels = vec![Span::raw("0"), Span::raw(fmt(top / 2.0)), Span::raw(fmt(top))];
    Chart::new(sets)
        .block(Block::bordered().title(title))
        .x_axis(Axis::default().bounds([-window, 0.0]).labels(x_labels).style(Style::default().fg(Color::DarkGray)))
        .y_axis(Axis::default().bounds([0.0, top]).labels(y_labels).style(Style::default().fg(Color::DarkGray)))
        .legend_position(None)
        .render(area, buf);
}
