//! The broker panel, on a broker run only: the stream or queue (jobs held against the bound,
//! acks pending or RabbitMQ's unacknowledged and nacks, refusals retried, redeliveries,
//! duplicates, time in the broker) and one line per
//! worker node (workers busy/live, jobs done, p99, clock offset, when last heard; LOST when it
//! fell silent).

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Widget};

use super::super::state::State;
use super::fit::{self, HIGH, KEEP, LOW, MID};
use super::panels::{count, ms};
use crate::metrics::{NodeView, QueueParts};

/// Rows the panel wants: its border, the stream's line, and a line per node (at least one).
pub fn height(s: &State) -> u16 {
    s.snap.broker.as_ref().map_or(0, |_| 3 + s.snap.nodes.len().max(1) as u16)
}

pub fn render(s: &State, area: Rect, buf: &mut Buffer) {
    let Some(b) = &s.snap.broker else { return };
    let width = area.width.saturating_sub(2) as usize;
    let q = &s.snap.queue;
    let holder = &b.holder;
    let mut stream = vec![
        // What the bound counts: the jobs the broker holds (waiting, pulled ahead, in service).
        (
            KEEP,
            Span::raw(format!(
                " in {holder} {} / {} {}",
                q.depth,
                b.bound_label,
                b.bound_held.map_or(q.bound, |h| h as usize)
            )),
        ),
        // A bound the broker could not change live: the knob's value beside it.
        (HIGH, Span::raw(b.bound_held.map_or(String::new(), |_| format!(" (knob {}: fixed when declared)", q.bound)))),
        (HIGH, Span::raw(parts(q.parts, holder))),
        (HIGH, Span::raw(format!("  acks pending max {} / {}", b.ack_pending_max, b.ack_pending_cap))),
        (HIGH, Span::raw(format!("  redelivered {}", b.redelivered))),
        (MID, Span::raw(format!("  retries {}", b.publish_retries))),
        (MID, Span::raw(format!("  duplicates {}", b.duplicates))),
        (LOW, Span::raw(format!("  in broker p99 {} ms", ms(b.time_in_broker_ms.p99)))),
        (fit::count_rank(b.link.disconnects, MID), Span::raw(format!("  outages {}", b.link.disconnects))),
        // A stream made again: the jobs it held are counted `lost_in_broker` at the end.
        (fit::count_rank(b.link.streams_lost, HIGH), Span::raw(format!("  {holder} lost ×{}", b.link.streams_lost))),
    ];
    // The broker's own counts, next to what its bound counts (NATS has none).
    let own = b
        .extra
        .iter()
        .map(|(k, v)| (HIGH, Span::raw(format!("  {} {v}", k.replace('_', " ").replace("confirms ", "")))));
    stream.splice(1..1, own);
    let mut lines = vec![fit::fit(stream, width)];
    if s.snap.nodes.is_empty() {
        lines.push(Line::from(Span::styled(
            " no worker nodes yet (pooltune worker --broker URL --run-name NAME)",
            Style::default().fg(Color::DarkGray),
        )));
    }
    lines.extend(s.snap.nodes.iter().map(|n| node(n, width)));
    let title = format!(" broker: {} on {} ", b.stream, b.url);
    Paragraph::new(lines).block(Block::bordered().title(title)).render(area, buf);
}

/// Where the jobs waiting for a worker are: the controller's outbox, the stream (undelivered),
/// pulled ahead at the worker processes.
fn parts(p: Option<QueueParts>, holder: &str) -> String {
    let p = p.unwrap_or_default();
    format!("  waiting: outbox {:.0} · {holder} {:.0} · held {:.0}", p.outbox, p.stream, p.held)
}

fn node(n: &NodeView, width: usize) -> Line<'static> {
    let state = if n.lost {
        Span::styled("  LOST", Style::default().fg(Color::Red))
    } else if n.finished {
        Span::raw("  done")
    } else {
        Span::raw(format!("  heard {} ms ago", ms(n.last_heard_ms)))
    };
    #[allow(clippy::cast_precision_loss)]
    let fields = vec![
        (KEEP, Span::raw(format!(" {:<10}", n.name))),
        (KEEP, Span::raw(format!(" workers {}/{}", n.busy, n.workers))),
        (HIGH, Span::raw(format!("  done {}", count(n.completed as f64)))),
        (HIGH, Span::raw(format!("  p99 {} ms", ms(n.latency_ms.p99)))),
        (KEEP, state),
        (MID, Span::raw(format!("  clock {:+.3}±{:.3} ms", n.clock_offset_ms, n.clock_uncertainty_ms))),
        (LOW, Span::raw(format!("  redelivered {}", n.redelivered))),
    ];
    fit::fit(fields, width)
}
