//! Rendering: a pure function of [`State`]. `impl Widget for &State` draws the whole screen
//! without cloning anything per frame; each region has a file of its own.
//!
//! Layout (80×24 and up): an overload banner when there is one; the knobs, the latency
//! distribution and the model on the left; throughput, queue depth and latency charts on the
//! right (a live `:sweep`'s curve in their place), and on a broker run the broker and its worker
//! nodes under them; the status line and
//! key hints at the bottom. Below [`MIN_WIDTH`]×[`MIN_HEIGHT`] it
//! says the terminal is too small.

mod broker;
mod charts;
mod fit;
mod help;
mod mono;
mod panels;
mod runtime;
mod status;
mod sweep;

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Widget, Wrap};

use super::state::State;

pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 18;

impl Widget for &State {
    fn render(self, area: Rect, buf: &mut Buffer) {
        draw(self, area, buf);
        if self.palette == super::state::Palette::Mono {
            mono::strip(area, buf);
        }
    }
}

/// The whole screen, in colour.
fn draw(s: &State, area: Rect, buf: &mut Buffer) {
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let text = vec![
            Line::from("terminal too small"),
            Line::from(format!("{}×{}, needs {MIN_WIDTH}×{MIN_HEIGHT}", area.width, area.height)),
            Line::from("q quits"),
        ];
        Paragraph::new(text).style(Style::default().fg(Color::Yellow)).wrap(Wrap { trim: true }).render(area, buf);
        return;
    }
    let banner_h = u16::from(s.overload.is_some());
    let [banner, main, status_row, hints_row] = Layout::vertical([
        Constraint::Length(banner_h),
        Constraint::Min(0),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);
    let left_w = if area.width >= 140 { 44 } else { 36 };
    let [left, right] = Layout::horizontal([Constraint::Length(left_w), Constraint::Min(0)]).areas(main);
    let knobs_h = panels::knob_lines(s) as u16 + 2;
    let [knobs, dist, model] =
        Layout::vertical([Constraint::Length(knobs_h), Constraint::Length(6), Constraint::Min(3)]).areas(left);
    status::banner(s, banner, buf);
    panels::knobs(s, knobs, buf);
    panels::distribution(s, dist, buf);
    panels::model(s, model, buf);
    // A broker run adds its panel under the runtime's, leaving the charts at least 9 rows.
    let broker_h = broker::height(s).min(right.height.saturating_sub(14));
    let [charts_area, runtime_area, broker_area] =
        Layout::vertical([Constraint::Min(0), Constraint::Length(5), Constraint::Length(broker_h)]).areas(right);
    match &s.sweep {
        Some(sw) => sweep::render(s, sw, charts_area, buf),
        None => charts::render(s, charts_area, buf),
    }
    runtime::render(s, runtime_area, buf);
    broker::render(s, broker_area, buf);
    status::status(s, status_row, buf);
    status::hints(s, hints_row, buf);
    if s.help {
        help::render(area, buf);
    }
}
