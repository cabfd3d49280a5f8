//! A run's page: the command and settings, the summary, the time series (throughput, queue
//! depth, response time with the model's p50 and p99 dashed), the percentile plot with the
//! model's curve, the model comparison and the response split. A replayed trace's model is its
//! simulation, named so, with the fitted Poisson model's lines and curve beside it.

use std::fmt::Write as _;

use super::charts::{self, BLUE, Chart, GREEN, INK, Line, ORANGE, PURPLE, SKY, VERMILLION, XAxis};
use super::input::{self, Change, RunView, Series, thin};
use super::page::{command_and_settings, esc, figure, head, opt, table};
use super::{MAX_CHANGES, MAX_POINTS, ReportError};
use crate::metrics::Summary;

fn summary_row(name: &str, s: &Summary) -> Vec<String> {
    [s.mean, s.p50, s.p90, s.p99, s.p999, s.max].iter().fold(vec![name.to_string()], |mut v, x| {
        v.push(format!("{x:.3}"));
        v
    })
}

pub(super) fn run_page(r: &RunView, series: Option<&Series>) -> Result<String, ReportError> {
    let mut out = head("pooltune run report");
    command_and_settings(&mut out, &r.command, &r.config);
    out.push_str("<h2>Summary</h2>\n");
    let _ = writeln!(
        out,
        "<p>Measured over {:.1} s of a {:.1} s run (ended by {}). Offered {:.1} jobs/s, completed {:.1} jobs/s, utilisation {:.1}%, queue depth mean {:.2}, max {}.</p>",
        r.duration_s,
        r.elapsed_s,
        esc(&r.ended_by),
        r.offered_per_s,
        r.throughput_per_s,
        r.utilisation * 100.0,
        r.queue_depth.mean,
        r.queue_depth.max
    );
    let jobs: Vec<Vec<String>> = r
        .jobs
        .iter()
        .map(|(k, v)| {
            vec![k.replace('_', " "), v.to_string(), r.measured_jobs.get(k).map_or_else(String::new, u64::to_string)]
        })
        .collect();
    table(&mut out, &["jobs", "whole run", "measured window"], &jobs);
    let lat = [
        summary_row("response", &r.latency_ms),
        summary_row("wait", &r.wait_ms),
        summary_row("service", &r.service_ms),
    ];
    table(&mut out, &["ms", "mean", "p50", "p90", "p99", "p99.9", "max"], &lat);
    match series {
        Some(s) => {
            time_series(&mut out, r, s)?;
            super::usl::section(&mut out, &super::usl::series_points(s), false)?;
        }
        None => out.push_str("<p class=\"note\">No series was given, so there are no time-series charts: make the report with the run's CSV (pooltune report RUN.json SERIES.csv).</p>\n"),
    }
    percentiles(&mut out, r)?;
    model_section(&mut out, r);
    // The parts in the order a job meets them, as the dashboard's bar shows them.
    let mut parts = r.response_split_ms.map(|s| s.parts()).unwrap_or_default();
    parts.retain(|p| p.1.is_finite());
    if !parts.is_empty() {
        out.push_str("<h2>Response split</h2>\n");
        let svg = charts::split_bar(&parts)?;
        figure(
            &mut out,
            "split",
            &svg,
            "The mean response time as the time in the queue, in the broker (a broker run), in the runtime's scheduling delay, and in service; the first three are parts of the measured wait.",
        );
    }
    if let Some(a) = &r.account {
        out.push_str("<h2>Account of the gap to theory</h2>\n");
        let svg = charts::split_bar(&a.parts())?;
        let caption = format!(
            "The measured mean response ({:.3} ms) as theory at the configured inputs, randomness (the ideal pool on this run's own draws, less theory), the producer's lateness, the services' inflation and the pool's own overhead; the parts add up to {:.3} ms. A part below 0 runs back on the lower band.",
            a.measured.mean_ms, a.sum_ms
        );
        figure(&mut out, "account", &svg, &caption);
    }
    if let Some(b) = &r.broker {
        out.push_str("<h2>Broker</h2>\n");
        let rows: Vec<Vec<String>> = b
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(_, v)| !v.is_object())
            .map(|(k, v)| vec![k.replace('_', " "), v.to_string().trim_matches('"').to_string()])
            .collect();
        table(&mut out, &["broker", "value"], &rows);
    }
    out.push_str("</body></html>\n");
    Ok(out)
}

fn time_series(out: &mut String, r: &RunView, s: &Series) -> Result<(), ReportError> {
    // A controller's counts are drawn in the workers chart, not listed as knob changes.
    let adaptive = r.adapt.as_ref().is_some_and(|a| a.algorithm != "off");
    let by_controller =
        |c: &Change| adaptive && c.what.split(", ").all(|w| w.trim_start_matches("ramp: ").starts_with("workers "));
    let owned: Vec<Change> = s.changes.iter().filter(|c| !by_controller(c)).cloned().collect();
    let changes = &owned;
    let spans: Vec<(f64, f64)> = changes.iter().take(MAX_CHANGES).map(|c| (c.from, c.to)).collect();
    let line =
        |name: &str, label: &str, color, peak| Line::new(label, thin(&s.t, s.col(name), MAX_POINTS, peak), color);
    let refused: Vec<f64> = s.col("rejected_per_s").iter().zip(s.col("dropped_per_s")).map(|(a, b)| a + b).collect();
    out.push_str("<h2>Over time</h2>\n");
    let throughput = Chart {
        title: "Throughput",
        x_label: "time since start (s)",
        y_label: "jobs per second",
        x_axis: XAxis::Linear,
        lines: vec![
            line("offered_per_s", "offered", BLUE, false),
            line("completed_per_s", "completed", GREEN, false),
            Line::new("refused (rejected + dropped)", thin(&s.t, &refused, MAX_POINTS, true), VERMILLION),
        ],
        spans: spans.clone(),
        ring: None,
    };
    figure(
        out,
        "throughput",
        &charts::line_chart(&throughput)?,
        "Jobs offered by the producer, completed by the workers, and refused by the queue's policy, per tick; shaded spans are ramps and lines are single knob changes.",
    );
    let queue = Chart {
        title: "Queue depth",
        x_label: "time since start (s)",
        y_label: "jobs in the queue",
        x_axis: XAxis::Linear,
        lines: vec![
            line("queue_depth", "depth (largest in each point)", BLUE, true),
            line("queue_bound", "bound", INK, true).dashed(),
        ],
        spans: spans.clone(),
        ring: None,
    };
    figure(out, "queue", &charts::line_chart(&queue)?, "Jobs waiting in the queue against the queue's bound.");
    let mut lines = vec![
        line("latency_p50_ms", "p50", GREEN, false),
        line("latency_p99_ms", "p99", BLUE, true),
        line("latency_max_ms", "max", VERMILLION, true),
    ];
    let window = (r.elapsed_s - r.duration_s, r.elapsed_s);
    let model = r.model.as_ref();
    let predicted = model.and_then(|m| m.predicted.as_ref());
    let fitted = model.and_then(|m| m.fitted.as_ref());
    let (model_name, fitted_name) = names(model);
    for (who, p, colors) in [(model_name, predicted, [SKY, ORANGE]), (fitted_name, fitted, [INK, PURPLE])] {
        let Some(p) = p else { continue };
        for ((q, v), color) in [("p50", p.latency_ms_p50), ("p99", p.latency_ms_p99)].into_iter().zip(colors) {
            if let Some(v) = v {
                lines.push(Line::new(format!("{who} {q}"), vec![(window.0, v), (window.1, v)], color).dashed());
            }
        }
    }
    let latency = Chart {
        title: "Response time",
        x_label: "time since start (s)",
        y_label: "milliseconds",
        x_axis: XAxis::Linear,
        lines,
        spans: spans.clone(),
        ring: None,
    };
    let model_note = match (predicted, fitted) {
        (Some(_), Some(_)) => {
            "dashed: p50 and p99 of the simulation of the trace (exact, FIFO: the window's own arrivals through \
             this pool) and of the Poisson model fitted to the same mean rate and service, over the measured window"
        }
        (Some(_), None) => "dashed: the model's p50 and p99 at the measured inputs, over the measured window",
        _ => "no model lines: see the model section for why",
    };
    figure(
        out,
        "latency",
        &charts::line_chart(&latency)?,
        &format!("Response time from the intended arrival, per tick: p50, p99 and max ({model_note})."),
    );
    workers_chart(out, r, s, &spans)?;
    if !changes.is_empty() {
        let rows: Vec<Vec<String>> = changes
            .iter()
            .take(MAX_CHANGES)
            .map(|c| {
                vec![
                    if c.to > c.from { format!("{:.2}–{:.2}", c.from, c.to) } else { format!("{:.2}", c.from) },
                    c.what.clone(),
                ]
            })
            .collect();
        table(out, &["time (s)", "knob change"], &rows);
        if changes.len() > MAX_CHANGES {
            let _ = writeln!(
                out,
                "<p class=\"note\">… and {} more changes, left out of the charts and this list.</p>",
                changes.len() - MAX_CHANGES
            );
        }
    }
    Ok(())
}

/// The worker count over time: the count set, the workers busy, an adaptive controller's limit,
/// and, with a p99 target, the static and hindsight references (`report::slo`).
fn workers_chart(out: &mut String, r: &RunView, s: &Series, spans: &[(f64, f64)]) -> Result<(), ReportError> {
    let a = r.adapt.as_ref();
    let adaptive = a.is_some_and(|a| a.algorithm != "off");
    if !adaptive && a.and_then(|a| a.static_workers).is_none() {
        return Ok(());
    }
    let mut lines = vec![
        Line::new("set", thin(&s.t, s.col("workers"), MAX_POINTS, true), BLUE),
        Line::new("busy", thin(&s.t, s.col("busy_workers"), MAX_POINTS, false), GREEN),
    ];
    let limit: Vec<(f64, f64)> =
        thin(&s.t, &s.limit, MAX_POINTS, false).into_iter().filter(|p| p.1.is_finite()).collect();
    if adaptive && !limit.is_empty() {
        lines.push(Line::new("controller's limit", limit, ORANGE).dashed());
    }
    let window = (r.elapsed_s - r.duration_s, r.elapsed_s);
    let mut note = String::new();
    if let Some(a) = a {
        if let Some(n) = a.static_workers {
            lines.push(
                Line::new(format!("static ({n})"), vec![(window.0, f64::from(n)), (window.1, f64::from(n))], INK)
                    .dashed(),
            );
        }
        if !a.hindsight.is_empty() {
            let pts: Vec<(f64, f64)> = a.hindsight.iter().map(|&(t, n)| (t, f64::from(n))).collect();
            lines.push(Line::new("hindsight", pts, PURPLE).dashed());
        }
        if let (Some(t), Some(att)) = (a.slo_p99_ms, a.slo_attainment) {
            let ratio = |x: Option<f64>| x.map_or_else(|| "—".to_string(), |x| format!("{:.2}", a.worker_seconds / x));
            let _ = write!(
                note,
                " Against p99 ≤ {t} ms: met in {:.1}% of the one-second windows; {:.0} worker-seconds, {}× the hindsight schedule's and {}× the static pool's.",
                att * 100.0,
                a.worker_seconds,
                ratio(a.hindsight_worker_seconds),
                ratio(a.static_worker_seconds)
            );
        }
    }
    let chart = Chart {
        title: "Workers",
        x_label: "time since start (s)",
        y_label: "workers",
        x_axis: XAxis::Linear,
        lines,
        spans: spans.to_vec(),
        ring: None,
    };
    figure(
        out,
        "workers",
        &charts::line_chart(&chart)?,
        &format!(
            "The worker count set, the workers busy, the controller's limit, and, with a p99 target, the best static pool by the model and the hindsight schedule (each second's fewest workers for its true rate).{note}"
        ),
    );
    Ok(())
}

fn percentiles(out: &mut String, r: &RunView) -> Result<(), ReportError> {
    // Said, not silently left out: an older pooltune's JSON, or a window with no job done.
    let measured = match r.latency_distribution_ms.as_deref() {
        None => {
            out.push_str(
                "<p class=\"note\">The percentile plot is left out: this JSON has no <code>latency_distribution_ms</code> \
                 (an older pooltune wrote it); run again to get it.</p>\n",
            );
            return Ok(());
        }
        Some([]) => {
            out.push_str(
                "<p class=\"note\">The percentile plot is left out: no job finished in the measured window.</p>\n",
            );
            return Ok(());
        }
        Some(q) => q,
    };
    out.push_str("<h2>Latency percentile distribution</h2>\n");
    let pts =
        |q: &[crate::metrics::Quantile]| q.iter().map(|q| (charts::percentile_x(q.percentile), q.latency_ms)).collect();
    let mut lines = vec![Line::new("measured", pts(measured), BLUE).dots()];
    let top = measured.last().map_or(0.0, |q| charts::percentile_x(q.percentile));
    let model = r.model.as_ref();
    let (model_name, fitted_name) = names(model);
    for (who, dist, color) in [
        (model_name, model.and_then(|m| m.latency_distribution_ms.as_ref()), ORANGE),
        (fitted_name, model.and_then(|m| m.fitted_latency_distribution_ms.as_ref()), PURPLE),
    ] {
        if let Some(dist) = dist {
            let within: Vec<_> =
                dist.iter().copied().filter(|q| charts::percentile_x(q.percentile) <= top.ceil() + 1e-9).collect();
            lines.push(Line::new(who, pts(&within), color).dashed());
        }
    }
    let dashed = if model.is_some_and(input::ModelView::replayed) {
        "Dashed: the simulation of the trace (exact, FIFO, averaged over its draws when service is drawn), and the \
         Poisson model fitted to the same mean rate and service: the gap between them is what the trace's bursts cost."
    } else {
        "Dashed: the model at the measured inputs."
    };
    let c = Chart {
        title: "Response time by percentile",
        x_label: "percentile (log scale of 1/(1 − p))",
        y_label: "milliseconds",
        x_axis: XAxis::Percentile,
        lines,
        spans: Vec::new(),
        ring: None,
    };
    figure(
        out,
        "percentiles",
        &charts::line_chart(&c)?,
        &format!(
            "HdrHistogram's percentile plot: each step right is ten times rarer (90%, 99%, 99.9%); the measured curve stops where the sample runs out (p needs 1/(1 − p) jobs). {dashed}"
        ),
    );
    Ok(())
}

/// How the dashed lines are named: the model's, and the fitted model's beside a trace's simulation.
fn names(model: Option<&input::ModelView>) -> (&'static str, &'static str) {
    if model.is_some_and(input::ModelView::replayed) {
        ("trace simulation", "fitted Poisson")
    } else {
        ("model", "fitted")
    }
}

fn model_section(out: &mut String, r: &RunView) {
    out.push_str("<h2>Model comparison</h2>\n");
    let Some(m) = &r.model else {
        out.push_str("<p class=\"note\">No model in this summary.</p>\n");
        return;
    };
    match (&m.predicted, &m.fitted) {
        (Some(p), Some(f)) => {
            let _ = writeln!(
                out,
                "<p>Model: a {} of the replayed trace: the measured window's own arrivals through this pool.</p>",
                esc(&p.method)
            );
            let off = crate::report::trace_model::off_the_simulation;
            let _ = writeln!(
                out,
                "<p>The Poisson model fitted to the same mean rate and service ({}) says: mean response {}, p99 {}, \
                 against the simulation's.</p>",
                esc(&f.method),
                esc(&off(f.latency_ms_mean, p.latency_ms_mean)),
                esc(&off(f.latency_ms_p99, p.latency_ms_p99))
            );
        }
        (Some(p), None) => {
            let _ = writeln!(out, "<p>Model: {} at the measured inputs.</p>", esc(&p.method));
        }
        _ => {}
    }
    if let Some(why) = &m.reason {
        let _ = writeln!(out, "<p class=\"note\">Not compared: {}</p>", esc(why));
    }
    let rows: Vec<Vec<String>> = m
        .compared
        .iter()
        .map(|c| {
            vec![
                c.name.replace('_', " "),
                opt(c.predicted, 3),
                format!("{:.3}", c.measured),
                c.diff.map_or_else(|| "—".into(), |d| format!("{:+.1}%", d * 100.0)),
            ]
        })
        .collect();
    if !rows.is_empty() {
        table(out, &["figure", "model", "measured", "difference"], &rows);
    }
    if let Some(d) = &m.diagnosis {
        let _ = writeln!(out, "<p>Likely cause of the gap: {}</p>", esc(d));
    }
}
