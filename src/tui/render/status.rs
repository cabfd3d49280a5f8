//! The overload banner, the status line (or the `:` command line) and the key hints.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use super::super::keys;
use super::super::state::State;

pub fn banner(s: &State, area: Rect, buf: &mut Buffer) {
    if let Some(text) = &s.overload {
        Paragraph::new(format!(" {text}"))
            .style(Style::default().fg(Color::White).bg(Color::Red).add_modifier(Modifier::BOLD))
            .render(area, buf);
    }
}

/// `hh:mm:ss` of a run's elapsed time.
#[must_use]
pub fn clock(secs: f64) -> String {
    let s = secs as u64;
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

pub fn status(s: &State, area: Rect, buf: &mut Buffer) {
    if let Some(input) = &s.input {
        let line = Line::from(vec![
            Span::styled(":", Style::default().fg(Color::Yellow)),
            Span::raw(input.as_str()),
            Span::raw("█"),
        ]);
        Paragraph::new(line).render(area, buf);
        return;
    }
    let t = &s.snap.totals;
    let state = if s.snap.paused || (s.paused_sent && s.sent > s.snap.commands) { "paused" } else { "running" };
    let mut spans = vec![
        Span::styled(
            format!(" {state} "),
            Style::default().fg(Color::Black).bg(if state == "paused" { Color::Yellow } else { Color::Green }),
        ),
        Span::raw(format!(" {} ", clock(s.now()))),
    ];
    // The message first: it answers the last key, and the totals can be cut on a narrow screen.
    if let Some(m) = &s.message {
        let style = if m.error {
            Style::default().fg(Color::Red).add_modifier(Modifier::BOLD)
        } else {
            Style::default().fg(Color::Cyan)
        };
        spans.push(Span::styled(format!("{} ", m.text), style));
        spans.push(Span::raw("│"));
    }
    spans.push(Span::raw(format!(
        " offered {} · done {} · refused {} · abandoned {}",
        t.offered,
        t.completed,
        t.rejected + t.dropped,
        t.abandoned
    )));
    Paragraph::new(Line::from(spans)).render(area, buf);
}

pub fn hints(_s: &State, area: Rect, buf: &mut Buffer) {
    Paragraph::new(format!(" {}", keys::hints())).style(Style::default().fg(Color::DarkGray)).render(area, buf);
}
