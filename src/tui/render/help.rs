//! The help overlay, generated from the key table, the knob table (every live knob by name) and
//! the command line's words.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Widget};

use super::super::keys::KEYS;
use crate::settings::live_names;

/// The width of the command column and of the knob-name lines beside it.
const CMD: usize = 15;
const NAMES: usize = 40;

pub fn render(area: Rect, buf: &mut Buffer) {
    let mut lines: Vec<Line> = KEYS
        .iter()
        .map(|b| {
            Line::from(vec![
                Span::styled(
                    format!("{:>7}  ", b.label),
                    Style::default().fg(Color::Yellow).add_modifier(Modifier::BOLD),
                ),
                Span::raw(b.help),
            ])
        })
        .collect();
    lines.push(Line::from(""));
    lines.push(Line::from(Span::styled("command line", Style::default().add_modifier(Modifier::BOLD))));
    let mut rows: Vec<(String, String)> = name_lines()
        .into_iter()
        .enumerate()
        .map(|(i, names)| (if i == 0 { ":workers 16".into() } else { String::new() }, names))
        .collect();
    rows.extend(
        [
            (":workers NODE 4", "one worker node's workers (broker runs)"),
            (":pause :resume", "stop or restart arrivals"),
            (":reset", "reset statistics"),
            (":window 2m", "chart window: 30s, 2m or 10m"),
            (":slo 20ms", "p99 target for the advisor; :slo off"),
            (":sweep rate 200..2000 10", "live sweep [STEPS] [PER-STEP]; :sweep off"),
            (":quit", "quit"),
        ]
        .map(|(c, w)| (c.to_string(), w.to_string())),
    );
    for (cmd, what) in rows {
        lines.push(Line::from(vec![
            Span::styled(format!("{cmd:<CMD$} "), Style::default().fg(Color::Yellow)),
            Span::raw(what),
        ]));
    }
    // Two columns when one would not fit the height.
    let one = lines.len() as u16 + 2 <= area.height;
    let rows = if one { lines.len() } else { lines.len().div_ceil(2) };
    let h = (rows as u16 + 2).min(area.height);
    let w = area.width.saturating_sub(2).min(if one { 70 } else { 120 });
    let [row] = Layout::vertical([Constraint::Length(h)]).flex(Flex::Center).areas(area);
    let [popup] = Layout::horizontal([Constraint::Length(w)]).flex(Flex::Center).areas(row);
    Clear.render(popup, buf);
    let block = Block::bordered().title(" help: keys (? closes) ").border_style(Style::default().fg(Color::Yellow));
    let inner = block.inner(popup);
    block.render(popup, buf);
    if one {
        Paragraph::new(lines).render(inner, buf);
    } else {
        let right = lines.split_off(rows);
        let [a, b] = Layout::horizontal([Constraint::Ratio(1, 2); 2]).areas(inner);
        Paragraph::new(lines).render(a, buf);
        Paragraph::new(right).render(b, buf);
    }
}

/// "any knob by name: workers queue …", every live knob of the table, wrapped at [`NAMES`].
fn name_lines() -> Vec<String> {
    let mut out = vec![String::from("any knob by name:")];
    for name in live_names() {
        let last = out.last_mut().expect("starts with one line");
        if last.len() + 1 + name.len() > NAMES {
            out.push(name.to_string());
        } else {
            last.push(' ');
            last.push_str(name);
        }
    }
    out
}
