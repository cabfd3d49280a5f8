//! The left column: knobs, the latency distribution, and the model beside the measurements.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Widget, Wrap};

use super::super::state::{State, WINDOWS};
use super::super::trail::SLOTS;
use super::fit::{self, HIGH, KEEP, LOW, MID};
use crate::duration;
use crate::metrics::Summary;
use crate::model::sample::ServiceSample;
use crate::settings::{ArrivalKind, Rate, ServiceDist};

/// A number of milliseconds in at most six characters.
#[must_use]
pub fn ms(v: f64) -> String {
    if !v.is_finite() {
        "n/a".into()
    } else if v < 10.0 {
        format!("{v:.2}")
    } else if v < 100.0 {
        format!("{v:.1}")
    } else if v < 100_000.0 {
        format!("{v:.0}")
    } else if v < 1e8 {
        format!("{:.0}s", v / 1000.0)
    } else {
        format!("{v:.0e}")
    }
}

/// A count or rate in at most seven characters (1234 → 1234, 12345 → 12.3k, 1.2M).
#[must_use]
pub fn count(v: f64) -> String {
    if v < 10_000.0 {
        format!("{v:.0}")
    } else if v < 10_000_000.0 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{:.1}M", v / 1e6)
    }
}

fn label(text: &str) -> Span<'static> {
    Span::styled(format!(" {text:<12}"), Style::default().fg(Color::Gray))
}

fn value(text: String) -> Span<'static> {
    Span::styled(text, Style::default().fg(Color::White).add_modifier(Modifier::BOLD))
}

fn dim(text: String) -> Span<'static> {
    Span::styled(text, Style::default().fg(Color::DarkGray))
}

/// How many lines the knobs panel has (its height less the border).
#[must_use]
pub fn knob_lines(s: &State) -> usize {
    9 + 3 * usize::from(s.snap.adapt.is_some())
        + usize::from(s.snap.producer_lag > std::time::Duration::ZERO)
        + usize::from(s.snap.totals.failed > 0)
        + s.notes.len()
}

pub fn knobs(s: &State, area: Rect, buf: &mut Buffer) {
    let k = &s.desired;
    let snap = &s.snap;
    let rate = match k.rate {
        Rate::Max => "max".to_string(),
        Rate::PerSec(r) => format!("{}/s", count(r)),
    };
    let arrival_detail = match k.arrival {
        ArrivalKind::Closed => format!("{} clients, think {}", k.clients, duration::format(k.think)),
        ArrivalKind::Batch => format!("{} jobs at once", k.jobs.unwrap_or(0)),
        ArrivalKind::Bursty => {
            format!("{rate} on {}/off {}", duration::format(k.burst_on), duration::format(k.burst_off))
        }
        ArrivalKind::Trace => match s.trace_speed() {
            Some(x) => format!("{rate} ×{x:.2}"),
            None => rate,
        },
        _ => rate,
    };
    let mut lines: Vec<Vec<(u8, Span<'static>)>> = vec![
        vec![
            (KEEP, label("workers")),
            (KEEP, value(format!("{:<6}", k.workers))),
            (MID, dim(format!("busy {} ", snap.busy_workers))),
            (LOW, dim(format!("live {}", snap.live_workers))),
        ],
        vec![
            (KEEP, label("queue bound")),
            (KEEP, value(format!("{:<6}", count(k.queue as f64)))),
            (MID, dim(format!("depth {}", snap.queue.depth))),
        ],
        vec![(KEEP, label("policy")), (KEEP, value(k.policy.to_string()))],
        vec![(KEEP, label("arrival")), (KEEP, value(format!("{} ", k.arrival))), (HIGH, dim(arrival_detail))],
        vec![
            (KEEP, label("offered")),
            (KEEP, value(format!("{:<6}", format!("{}/s", count(snap.rates.offered))))),
            (HIGH, dim(format!(" done {}/s", count(snap.rates.completed)))),
        ],
        if snap.custom_work {
            vec![
                (KEEP, label("service")),
                (KEEP, value(s.work_label.clone().unwrap_or_else(|| "your job".into()))),
                (MID, dim(format!("  mean {} ms", ms(snap.latency.service.mean)))),
            ]
        } else {
            service_line(k, snap.service_sample.as_deref())
        },
        vec![
            (KEEP, label("timeout")),
            (KEEP, value(format!("{:<6}", k.timeout.map_or_else(|| "off".to_string(), duration::format)))),
            (
                LOW,
                dim(format!(
                    "cv {:.2} ",
                    if snap.custom_work {
                        snap.measured.service_cv
                    } else {
                        crate::model::draw::cv_of(k, snap.service_sample.as_deref())
                    }
                )),
            ),
            (MID, dim(if snap.custom_work { String::new() } else { format!("kind {}", k.service_kind) })),
        ],
        vec![
            (KEEP, label("utilisation")),
            (KEEP, value(format!("{:<6}", format!("{:.0}%", snap.utilisation * 100.0)))),
            (MID, dim(format!("in flight {}", snap.in_flight))),
        ],
        vec![(KEEP, label("last change")), (KEEP, dim(s.last_change.clone().unwrap_or_else(|| "none yet".into())))],
    ];
    if let Some(a) = &snap.adapt {
        lines.extend(adapt_lines(s, a));
    }
    if snap.totals.failed > 0 {
        let t = &snap.totals;
        lines.push(vec![
            (KEEP, Span::styled(format!(" {:<12}", "failed"), Style::default().fg(Color::Red))),
            (KEEP, value(format!("{:<6}", format!("{}/s", count(snap.rates.failed))))),
            (HIGH, dim(format!("{} ", t.failed))),
            (fit::count_rank(t.timed_out, MID), dim(format!("· {} t/o ", t.timed_out))),
            (fit::count_rank(t.panicked, MID), dim(format!("· {} panic", t.panicked))),
        ]);
    }
    if snap.producer_lag > std::time::Duration::ZERO {
        lines.push(vec![
            (KEEP, label("behind")),
            (KEEP, value(format!("{} ms", ms(snap.producer_lag.as_secs_f64() * 1e3)))),
        ]);
    }
    let width = area.width.saturating_sub(2) as usize;
    let mut lines: Vec<Line<'static>> = lines.into_iter().map(|l| fit::fit(l, width)).collect();
    lines.extend(s.notes.iter().map(|n| Line::from(dim(format!(" {n}")))));
    Paragraph::new(lines).block(Block::bordered().title(" knobs ")).render(area, buf);
}

/// The controller's state, and the run beside the static answer: the advisor's count for the
/// `:slo` target, or else the downstream's throughput peak.
/// The service knob: its mean and distribution; an empirical sample's p99 at that mean and its
/// file beside them.
fn service_line(k: &crate::settings::Settings, sample: Option<&ServiceSample>) -> Vec<(u8, Span<'static>)> {
    let mut line =
        vec![(KEEP, label("service")), (KEEP, value(format!("{} {}", duration::format(k.service), k.service_dist)))];
    if let (ServiceDist::Empirical, Some(s)) = (k.service_dist, sample) {
        line.push((MID, dim(format!("  p99 {} ms", ms(s.p99_at(k.service.as_secs_f64()) * 1e3)))));
        let file =
            std::path::Path::new(s.source()).file_name().map_or_else(|| s.source().into(), |f| f.to_string_lossy());
        line.push((LOW, dim(format!("  {file}"))));
    }
    line
}

fn adapt_lines(s: &State, a: &crate::adapt::AdaptView) -> [Vec<(u8, Span<'static>)>; 3] {
    let k = &s.snap.settings;
    let advised = s.model.as_ref().and_then(|m| m.advice.as_ref()).and_then(|a| a.workers_needed);
    let static_answer = match (advised, crate::model::usl::Usl::of(k).peak()) {
        (Some(n), _) => format!("≥ {n} (:slo)"),
        (None, Some(p)) => format!("N* {p:.1}"),
        (None, None) => ":slo to compare".to_string(),
    };
    let w = &s.snap.measured.workers;
    let ranks = [KEEP, HIGH, MID, LOW];
    let state = a.state.parts().into_iter().zip(ranks).map(|(p, r)| (r, dim(format!(" {p}")))).collect();
    [
        vec![
            (KEEP, label("adapt")),
            (KEEP, value(format!("{} ", a.algorithm))),
            (MID, dim(format!("limit {:.1} ", a.limit))),
            (LOW, dim(format!("[{}..{}]", k.workers_min, k.workers_max))),
        ],
        state,
        vec![
            (KEEP, label("static")),
            (KEEP, value(format!("{static_answer} "))),
            (MID, dim(format!("{}–{} mean {:.1}", w.min, w.max, w.mean))),
        ],
    ]
}

fn dist_row(name: &str, d: &Summary) -> Line<'static> {
    Line::from(vec![
        Span::styled(format!(" {name:<8}"), Style::default().fg(Color::Gray)),
        Span::raw(format!("{:>6}{:>6}{:>6}{:>7}", ms(d.mean), ms(d.p50), ms(d.p99), ms(d.max))),
    ])
}

/// The distribution over the chart's window, titled with the stretch it covers ("last 30s", or
/// less while the run is younger than the window).
pub fn distribution(s: &State, area: Rect, buf: &mut Buffer) {
    let window = WINDOWS[s.window];
    let recent = s.recent.unwrap_or_default();
    // The window's edge moves a slot at a time, so a full window covers at least (SLOTS-1)/SLOTS.
    #[allow(clippy::cast_precision_loss)]
    let full = recent.span_s >= window.as_secs_f64() * (SLOTS - 1) as f64 / SLOTS as f64;
    let title = if full {
        format!(" ms, last {} ", duration::format(window))
    } else {
        format!(" ms, last {:.0}s of {} ", recent.span_s.floor(), duration::format(window))
    };
    let l = &recent.latency;
    let lines = vec![
        Line::from(dim(format!(" {:<8}{:>6}{:>6}{:>6}{:>7}", "", "mean", "p50", "p99", "max"))),
        dist_row("latency", &l.response),
        dist_row("wait", &l.wait),
        dist_row("service", &l.service),
    ];
    Paragraph::new(lines).block(Block::bordered().title(title)).render(area, buf);
}

fn pct(diff: Option<f64>) -> String {
    match diff {
        None => String::new(),
        Some(d) if d > 9.99 => ">+999%".into(),
        Some(d) => format!("{:+.0}%", d * 100.0),
    }
}

pub fn model(s: &State, area: Rect, buf: &mut Buffer) {
    let Some(report) = &s.model else {
        Paragraph::new("").block(Block::bordered().title(" model ")).render(area, buf);
        return;
    };
    // Ranked for a short panel: the response figures and a named cause outrank the rest.
    let mut lines: Vec<(u8, Line<'static>)> = Vec::new();
    let title = match &report.predicted {
        Some(p) => format!(" model: {}{} ", p.method, if p.exact { "" } else { " (approx.)" }),
        None => " model ".to_string(),
    };
    match (&report.predicted, &report.reason) {
        (Some(p), _) if !p.stable => {
            lines.push((
                KEEP,
                Line::from(Span::styled(
                    format!(" unstable: ρ = {:.2}, queue grows ~{:.0}/s", p.rho, p.growth_per_s.unwrap_or(0.0)),
                    Style::default().fg(Color::Red).add_modifier(Modifier::BOLD),
                )),
            ));
        }
        (Some(_), _) => {
            lines.push((KEEP, Line::from(dim(format!(" {:<10}{:>7}{:>7}{:>7}", "", "model", "meas", "diff")))));
            for c in &report.compared {
                let (name, scale, rank) = match c.name {
                    "utilisation" => ("ρ", 1.0, LOW),
                    "wait_ms_mean" => ("wait ms", 1.0, MID),
                    "latency_ms_mean" => ("resp ms", 1.0, KEEP),
                    "latency_ms_p99" => ("p99 ms", 1.0, HIGH),
                    "queue_len_mean" => ("queue", 1.0, LOW),
                    "p_reject" => ("reject %", 100.0, HIGH),
                    "throughput_per_s" => ("thru /s", 1.0, HIGH),
                    "makespan_ms" => ("last ms", 1.0, HIGH),
                    other => (other, 1.0, LOW),
                };
                let pred = c.predicted.map_or("n/a".to_string(), |v| ms(v * scale));
                lines.push((
                    rank,
                    Line::from(vec![
                        Span::styled(format!(" {name:<10}"), Style::default().fg(Color::Gray)),
                        Span::raw(format!("{pred:>7}{:>7}", ms(c.measured * scale))),
                        Span::styled(format!("{:>7}", pct(c.diff)), Style::default().fg(diff_color(c.diff))),
                    ]),
                ));
            }
            if let Some(l) = &report.little {
                lines.push((
                    LOW,
                    Line::from(dim(format!(
                        " Little: L {} vs λW {} {}",
                        ms(l.measured),
                        ms(l.predicted.unwrap_or(0.0)),
                        pct(l.diff)
                    ))),
                ));
            }
        }
        (None, Some(why)) => lines.push((KEEP, Line::from(dim(format!(" {why}"))))),
        (None, None) => {}
    }
    if let Some(line) = downstream_line(s) {
        lines.push((HIGH, line));
    }
    if let Some(line) = fit_line(s) {
        lines.push((MID, line));
    }
    // A trace: what a Poisson model of the same mean rate would have said, the lesson itself.
    if let (Some(f), Some(p)) = (&report.fitted, &report.predicted) {
        let p99 = |x: Option<f64>| x.map_or("n/a".to_string(), ms);
        // The fitted model's p99 against the simulation's (the model column above).
        let off = match (f.latency_ms_p99, p.latency_ms_p99) {
            (Some(a), Some(b)) if b > 0.0 => format!(" ({})", pct(Some((a - b) / b))),
            _ => String::new(),
        };
        lines.push((
            HIGH,
            Line::from(Span::styled(
                format!(" Poisson fit: p99 {}{off}", p99(f.latency_ms_p99)),
                Style::default().fg(Color::Magenta),
            )),
        ));
    }
    if let Some(a) = &s.account {
        lines.push((MID, Line::from(dim(format!(" {}", a.line())))));
    }
    if let Some(a) = &report.advice {
        lines.push((HIGH, Line::from(Span::styled(format!(" {}", a.line()), Style::default().fg(Color::Cyan)))));
    }
    if let Some(d) = &report.diagnosis {
        lines.push((KEEP, Line::from(Span::styled(format!(" {d}"), Style::default().fg(Color::Yellow)))));
    }
    if let Some(note) = report.predicted.as_ref().and_then(|p| p.note.as_ref()) {
        lines.push((LOW, Line::from(dim(format!(" {note}")))));
    }
    for e in s.snap.recent_errors.iter().rev() {
        lines.push((MID, Line::from(Span::styled(format!(" ✗ {e}"), Style::default().fg(Color::Red)))));
    }
    let inner = (area.width.saturating_sub(2) as usize, area.height.saturating_sub(2) as usize);
    Paragraph::new(fit::fit_rows(lines, inner.0, inner.1))
        .block(Block::bordered().title(title))
        .wrap(Wrap { trim: false })
        .render(area, buf);
}

/// A downstream that pushes back: its peak and where the pool stands against it, in yellow when
/// the pool is past the peak (fewer workers would complete more).
fn downstream_line(s: &State) -> Option<Line<'static>> {
    let st = &s.snap.settings;
    let u = crate::model::usl::Usl::of(st);
    if u.is_none() || s.snap.custom_work {
        return None;
    }
    let svc = st.service.as_secs_f64();
    let c = u32::try_from(st.workers).unwrap_or(u32::MAX);
    let now = u.throughput(c, svc);
    let (text, past) = match u.best_workers() {
        Some(b) => {
            let peak = u.peak().map_or_else(|| format!("{b}"), |n| format!("{n:.1}"));
            (
                format!(" downstream: N* {peak}, at most {:.0}/s; {c} workers give {now:.0}/s", u.throughput(b, svc)),
                c > b,
            )
        }
        None => (format!(" downstream: {c} workers give at most {now:.0}/s"), false),
    };
    Some(Line::from(Span::styled(text, Style::default().fg(if past { Color::Yellow } else { Color::Cyan }))))
}

/// The USL fitted from the run's own windows, once the operator (or a controller) has tried a
/// second worker count, or from the first when the run configures a downstream: σ, κ and N*
/// with their intervals, or how many more counts the fit needs and which.
fn fit_line(s: &State) -> Option<Line<'static>> {
    let configured = !crate::model::usl::Usl::of(&s.snap.settings).is_none();
    if s.snap.broker.is_some() {
        return None;
    }
    match s.usl_fit.as_ref()? {
        Ok(f) => {
            let past = f.peak.is_some_and(|n| s.snap.settings.workers as f64 > n.high.max(n.value));
            let color = if past { Color::Yellow } else { Color::Cyan };
            let advice = s.usl_advice.as_deref().map(|a| format!("; {a}")).unwrap_or_default();
            Some(Line::from(Span::styled(format!(" USL fit: {}{advice}", f.line()), Style::default().fg(color))))
        }
        Err(e) if e.have.len() >= 2 || configured => Some(Line::from(dim(format!(" {e}")))),
        Err(_) => None,
    }
}

fn diff_color(diff: Option<f64>) -> Color {
    match diff.map(f64::abs) {
        Some(d) if d > 0.25 => Color::Red,
        Some(d) if d > 0.10 => Color::Yellow,
        Some(_) => Color::Green,
        None => Color::DarkGray,
    }
}
