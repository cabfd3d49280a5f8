//! The runtime panel: tokio-metrics' view of the workload runtime, and where the response time
//! goes (queue wait, time in the broker on a broker run, runtime scheduling delay, service) as
//! a stacked bar, so the operator sees whether the queue or the runtime is the bottleneck.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Widget};

use super::super::state::State;
use super::fit::{self, HIGH, KEEP, LOW, MID};
use super::panels::{count, ms};

fn per_s(n: u64, s: &State) -> f64 {
    let secs = s.snap.tick_len.as_secs_f64();
    if secs > 0.0 { n as f64 / secs } else { 0.0 }
}

pub fn render(s: &State, area: Rect, buf: &mut Buffer) {
    let r = &s.snap.runtime;
    let width = area.width.saturating_sub(2) as usize;
    let mut first = vec![
        (KEEP, Span::raw(format!(" threads {}", r.workers))),
        (KEEP, Span::raw(format!("  busy {:.0}%", r.busy_ratio * 100.0))),
        (HIGH, Span::raw(format!("  global queue {}", r.global_queue_depth))),
        (MID, Span::raw(format!("  tasks {}", r.live_tasks))),
        (LOW, Span::raw(format!("  parks {}/s", count(per_s(r.park_count, s))))),
    ];
    if let Some(st) = r.steals {
        first.push((LOW, Span::raw(format!("  steals {}/s", count(per_s(st, s))))));
    }
    if let Some(q) = r.local_queue_depth {
        first.push((MID, Span::raw(format!("  local queues {q}"))));
    }
    if let Some(b) = r.blocking_queue_depth {
        first.push((fit::count_rank(b as u64, HIGH), Span::raw(format!("  blocking queue {b}"))));
    }
    // Task figures over the window since the last change, weighted by polls: a tick in which a
    // blocking poll was still running completed no poll and would read as zero.
    let w = &s.snap.measured.runtime;
    let second = vec![
        (KEEP, Span::raw(format!(" tasks: sched delay {} ms", ms(w.mean_scheduled_delay_us / 1e3)))),
        (HIGH, Span::raw(format!(" · poll {} ms", ms(w.mean_poll_us / 1e3)))),
        (MID, Span::raw(format!(" · slow polls {:.0}%", w.slow_poll_ratio * 100.0))),
        (LOW, Span::raw(format!(" · busy {:.0}%", w.busy_ratio * 100.0))),
    ];
    let lines = vec![fit::fit(first, width), fit::fit(second, width), bar(s, width)];
    Paragraph::new(lines).block(Block::bordered().title(" runtime (tokio-metrics) ")).render(area, buf);
}

/// Mean response split into queue wait, scheduling delay and service, as one bar.
fn bar(s: &State, width: usize) -> Line<'static> {
    let split = crate::metrics::ResponseSplit::of(&s.snap.measured, s.snap.broker.as_ref());
    let total = split.total();
    let label = format!(" response {} ms = ", ms(total));
    let parts: Vec<_> = split
        .parts()
        .into_iter()
        .map(|(name, v)| match name {
            "queue" => ("queue", v, Color::Yellow, HIGH),
            "broker" => ("broker", v, Color::Magenta, HIGH),
            "held" => ("held", v, Color::Cyan, HIGH),
            "scheduling" => ("sched", v, Color::Red, LOW),
            _ => ("service", v, Color::Green, MID),
        })
        .collect();
    let legend: Vec<(u8, Span<'static>)> = parts
        .iter()
        .map(|(name, v, c, rank)| (*rank, Span::styled(format!(" {name} {}", ms(*v)), Style::default().fg(*c))))
        .collect();
    let legend_w: usize = legend.iter().map(|(_, sp)| sp.width()).sum();
    // The bar takes what the legend leaves, and at least 10 columns: on a narrow panel the
    // legend's smaller parts go first.
    let room = width.saturating_sub(label.chars().count() + legend_w).clamp(10, 40);
    let mut fields = vec![(KEEP, Span::raw(label))];
    if total > 0.0 {
        for (_, v, c, _) in &parts {
            let n = ((v / total) * room as f64).round() as usize;
            fields.push((KEEP, Span::styled("█".repeat(n), Style::default().fg(*c))));
        }
    }
    fields.extend(legend);
    fit::fit(fields, width)
}
