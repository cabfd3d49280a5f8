//! The live sweep's view, in place of the charts while a `:sweep` is on screen: response time
//! against throughput as the steps complete (measured p50 and p99, the model's p99 at each
//! step's measured inputs, the p99 target), and where the sweep stands or what it found.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Block, Chart, Dataset, GraphType, Paragraph, Widget, Wrap};

use super::super::state::State;
use super::fit::{HIGH, KEEP, LOW, fit};
use super::panels::{count, ms};
use crate::model::advisor::Target;
use crate::sweep::Sweeper;

pub fn render(s: &State, sw: &Sweeper, area: Rect, buf: &mut Buffer) {
    let steps = sw.steps();
    let pts = |f: &dyn Fn(&crate::sweep::Step) -> Option<f64>| -> Vec<(f64, f64)> {
        steps.iter().filter_map(|st| f(st).map(|y| (st.throughput_per_s, y))).collect()
    };
    let p99 = pts(&|st| Some(st.latency_ms.p99));
    let p50 = pts(&|st| Some(st.latency_ms.p50));
    let model = pts(&|st| st.model.as_ref().and_then(|m| m.latency_ms_p99));
    let target = match s.slo {
        Some(Target::P99(t)) => Some(t * 1e3),
        _ => None,
    };
    let x_max = steps.iter().map(|st| st.throughput_per_s).fold(0.0, f64::max).max(1.0) * 1.05;
    let y_max = p99.iter().chain(&model).map(|p| p.1).chain(target).fold(0.0, f64::max).max(0.1) * 1.1;
    let slo_line = target.map(|t| [(0.0, t), (x_max, t)]);
    let mut sets = Vec::new();
    if let Some(line) = &slo_line {
        sets.push(
            Dataset::default()
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(Style::default().fg(Color::Red))
                .data(line),
        );
    }
    for (data, color, predicted) in
        [(&model, Color::Magenta, true), (&p50, Color::Green, false), (&p99, Color::Yellow, false)]
    {
        sets.push(
            Dataset::default()
                .marker(if predicted { Marker::Dot } else { Marker::Braille })
                .graph_type(if predicted { GraphType::Scatter } else { GraphType::Line })
                .style(Style::default().fg(color))
                .data(data),
        );
    }
    let (k, n) = sw.progress();
    let report = sw.report();
    let state_text = match (&report.stopped_early, sw.done()) {
        (Some(why), _) => format!("stopped: {why}"),
        (None, true) => "done".to_string(),
        (None, false) => {
            let left = std::time::Duration::from_secs(sw.time_left().as_secs_f64().ceil() as u64);
            format!("step {k} of {n}, {} left", crate::duration::format(left))
        }
    };
    let mut title = vec![(KEEP, Span::raw(format!(" sweep {} · {state_text} ", sw.knob())))];
    // On a trace each step's model is the simulation of its window.
    let model = if report.replayed() { "· simulated p99 " } else { "· model p99 " };
    for (name, color, rank) in
        [("━ p99 ", Color::Yellow, HIGH), ("━ p50 ", Color::Green, HIGH), (model, Color::Magenta, LOW)]
    {
        title.push((rank, Span::styled(name, Style::default().fg(color))));
    }
    if target.is_some() {
        title.push((LOW, Span::styled("━ target ", Style::default().fg(Color::Red))));
    }
    let block = Block::bordered().title(fit(title, area.width.saturating_sub(2) as usize));
    let inner = block.inner(area);
    block.render(area, buf);
    let [chart_area, text_area] = Layout::vertical([Constraint::Min(0), Constraint::Length(2)]).areas(inner);
    let x_labels = vec![Span::raw("0"), Span::raw(format!("{} done/s", count(x_max)))];
    let y_labels = vec![Span::raw("0"), Span::raw(ms(y_max / 2.0)), Span::raw(ms(y_max))];
    Chart::new(sets)
        .x_axis(Axis::default().bounds([0.0, x_max]).labels(x_labels).style(Style::default().fg(Color::DarkGray)))
        .y_axis(Axis::default().bounds([0.0, y_max]).labels(y_labels).style(Style::default().fg(Color::DarkGray)))
        .render(chart_area, buf);
    let text = if steps.is_empty() {
        "measuring the first step…".to_string()
    } else {
        let last = &steps[steps.len() - 1];
        format!(
            "{} · last: {} {} → p99 {} ms at {:.0}/s",
            report.verdict,
            sw.knob(),
            last.value_text,
            ms(last.latency_ms.p99),
            last.throughput_per_s
        )
    };
    Paragraph::new(Line::from(text)).wrap(Wrap { trim: true }).render(text_area, buf);
}
