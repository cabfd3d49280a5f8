//! The overload banner, the status line (or the `:` command line) and the key hints.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use super::super::keys;
use super::super::state::State;
use super::fit::{self, HIGH, KEEP, MID};

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
    // A broker run whose connection is down says so first: every other figure is stale.
    let link = s.snap.broker.as_ref().map(|b| b.link);
    if let Some(l) = link.filter(|l| !l.connected) {
        let text = format!(" broker down {:.1} s, reconnecting ", l.outage_ms / 1e3);
        spans.push(Span::styled(text, Style::default().fg(Color::White).bg(Color::Red)));
    }
    // Counts by the fitting rule: on a narrow screen a zero goes first, exact counts stay exact.
    let refused = t.rejected + t.dropped;
    let mut fields: Vec<(u8, Span<'static>)> = spans.into_iter().map(|s| (KEEP, s)).collect();
    fields.extend([
        (HIGH, Span::raw(format!(" offered {}", t.offered))),
        (HIGH, Span::raw(format!(" · done {}", t.completed))),
        (fit::count_rank(refused, MID), Span::raw(format!(" · refused {refused}"))),
        (fit::count_rank(t.abandoned, MID), Span::raw(format!(" · abandoned {}", t.abandoned))),
    ]);
    if let Some(l) = link.filter(|l| l.streams_lost > 0) {
        // The jobs it held are counted `lost_in_broker` at the end.
        let text = format!(" · stream lost ×{}", l.streams_lost);
        fields.push((HIGH, Span::styled(text, Style::default().fg(Color::Red))));
    }
    Paragraph::new(fit::fit(fields, area.width as usize)).render(area, buf);
}

/// The key hints, whole ones only: the table's order is their importance, so a narrow screen
/// loses them from the right.
pub fn hints(_s: &State, area: Rect, buf: &mut Buffer) {
    let fields = keys::hints()
        .into_iter()
        .enumerate()
        .map(|(i, h)| (if i < 3 { KEEP } else { MID }, Span::raw(format!(" {h} "))));
    Paragraph::new(fit::fit(fields.collect(), area.width as usize))
        .style(Style::default().fg(Color::DarkGray))
        .render(area, buf);
}
