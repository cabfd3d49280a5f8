//! The runtime panel: tokio-metrics' view of the workload runtime, and where the response time
//! goes (queue wait, runtime scheduling delay, service) as a stacked bar, so the operator sees
//! whether the queue or the runtime is the bottleneck.

use std::fmt::Write as _;

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Widget};

use super::super::state::State;
use super::panels::{count, ms};

fn per_s(n: u64, s: &State) -> f64 {
    let secs = s.snap.tick_len.as_secs_f64();
    if secs > 0.0 { n as f64 / secs } else { 0.0 }
}

pub fn render(s: &State, area: Rect, buf: &mut Buffer) {
    let r = &s.snap.runtime;
    let mut first = format!(
        " threads {}  busy {:.0}%  global queue {}  tasks {}  parks {}/s",
        r.workers,
        r.busy_ratio * 100.0,
        r.global_queue_depth,
        r.live_tasks,
        count(per_s(r.park_count, s))
    );
    if let Some(st) = r.steals {
        let _ = write!(first, "  steals {}/s", count(per_s(st, s)));
    }
    if let Some(q) = r.local_queue_depth {
        let _ = write!(first, "  local queues {q}");
    }
    if let Some(b) = r.blocking_queue_depth {
        let _ = write!(first, "  blocking queue {b}");
    }
    // Task figures over the window since the last change, weighted by polls: a tick in which a
    // blocking poll was still running completed no poll and would read as zero.
    let w = &s.snap.measured.runtime;
    let second = format!(
        " worker tasks: scheduled delay {} ms · poll {} ms · slow polls {:.0}% · busy {:.0}%",
        ms(w.mean_scheduled_delay_us / 1e3),
        ms(w.mean_poll_us / 1e3),
        w.slow_poll_ratio * 100.0,
        w.busy_ratio * 100.0
    );
    let lines = vec![Line::from(first), Line::from(second), bar(s, area.width.saturating_sub(2) as usize)];
    Paragraph::new(lines).block(Block::bordered().title(" runtime (tokio-metrics) ")).render(area, buf);
}

/// Mean response split into queue wait, scheduling delay and service, as one bar.
fn bar(s: &State, width: usize) -> Line<'static> {
    let l = &s.snap.measured.latency;
    let service = l.service.mean.max(0.0);
    // The runtime's delay from wake to poll: part of what a job waits, capped at the wait itself.
    let sched = (s.snap.measured.runtime.mean_scheduled_delay_us / 1e3).min(l.wait.mean).max(0.0);
    let queue = (l.wait.mean - sched).max(0.0);
    let total = queue + sched + service;
    let label = format!(" response {} ms = ", ms(total));
    let legend = [("queue", queue, Color::Yellow), ("sched", sched, Color::Red), ("service", service, Color::Green)];
    let room = width.saturating_sub(label.chars().count() + 40).max(10);
    let mut spans = vec![Span::raw(label)];
    if total > 0.0 {
        for (_, v, c) in legend {
            let n = ((v / total) * room as f64).round() as usize;
            spans.push(Span::styled("█".repeat(n), Style::default().fg(c)));
        }
    }
    for (name, v, c) in legend {
        spans.push(Span::styled(format!(" {name} {}", ms(v)), Style::default().fg(c)));
    }
    Line::from(spans)
}
