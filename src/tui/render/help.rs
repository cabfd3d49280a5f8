//! The help overlay, generated from the key table and the command line's words.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Widget};

use super::super::keys::KEYS;

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
    for (cmd, what) in [
        (":workers 16", "any knob by name: workers queue policy"),
        ("", "arrival rate clients think jobs service"),
        ("", "service_dist service_cv kind burst_on"),
        (":pause :resume", "stop or restart arrivals"),
        (":reset", "reset statistics"),
        (":window 2m", "chart window: 30s, 2m or 10m"),
        (":slo 20ms", "p99 target for the advisor; :slo off"),
        (":quit", "quit"),
    ] {
        lines.push(Line::from(vec![
            Span::styled(format!("{cmd:<15} "), Style::default().fg(Color::Yellow)),
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
