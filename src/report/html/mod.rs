//! The HTML report: one self-contained file (inline SVG charts, no script, no network request)
//! made from a run's or a sweep's JSON and, for a run, its CSV series. `run --report`,
//! `sweep --report` and `pooltune report` all come here with the text of those files.
//!
//! Each chart is a `<figure class="chart" id="…">` holding one `<svg>`, so a reader (or a test)
//! finds every chart by its id: `throughput`, `queue`, `latency`, `percentiles`, `split` for a
//! run, `curve` for a sweep.

use std::fmt::Write as _;

use thiserror::Error;

pub mod charts;
pub mod input;

use charts::{BLUE, Chart, GREEN, INK, Line, ORANGE, PURPLE, SKY, VERMILLION, XAxis};
use input::{RunView, Series, Source, thin};

use crate::metrics::Summary;
use crate::settings::{Knob, Settings};
use crate::sweep::SweepReport;

/// Why a report cannot be made.
#[derive(Debug, Error)]
pub enum ReportError {
    #[error("the JSON file is {0}")]
    Json(String),
    /// The text does not parse as JSON at all (a CSV given first, a truncated file).
    #[error(
        "the JSON file is not JSON ({0}); expected a run summary (pooltune run --json) or a sweep (pooltune sweep --json)"
    )]
    NotJson(String),
    #[error("the CSV series: {0}")]
    Csv(String),
    #[error("drawing a chart failed: {0}")]
    Chart(String),
}

/// The most points a time-series line keeps (a 10-minute run at 250 ms ticks has 2,400).
pub const MAX_POINTS: usize = 600;

/// The most knob changes drawn and listed; a run with more says how many it left out.
pub const MAX_CHANGES: usize = 200;

/// The report for `json` (a run summary or a sweep) and, for a run, its series.
///
/// # Errors
/// A file that is not what it should be, naming what was wrong.
pub fn page(json: &str, csv: Option<&str>) -> Result<String, ReportError> {
    let series = csv.map(Series::parse).transpose()?;
    match Source::parse(json)? {
        Source::Run(run) => run_page(&run, series.as_ref()),
        Source::Sweep(sweep) => sweep_page(&sweep),
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;color:#222;max-width:960px;margin:2em auto;padding:0 1em}\
h1{font-size:1.6em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ccc}\
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.2em .6em;text-align:right}\
th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}\
pre{background:#f6f6f6;padding:.6em;white-space:pre-wrap;word-break:break-all}\
figure.chart{margin:1em 0;break-inside:avoid}figure.chart svg{max-width:100%;height:auto}\
figcaption{font-size:.9em;color:#444}.note{color:#555;font-style:italic}\
@media print{body{max-width:none;margin:0}h2{break-after:avoid}}";

fn head(title: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body>\n<h1>{}</h1>\n",
        esc(title),
        esc(title)
    )
}

fn figure(out: &mut String, id: &str, svg: &str, caption: &str) {
    let _ =
        writeln!(out, "<figure class=\"chart\" id=\"{id}\">{svg}<figcaption>{}</figcaption></figure>", esc(caption));
}

fn table(out: &mut String, header: &[&str], rows: &[Vec<String>]) {
    out.push_str("<table><tr>");
    for h in header {
        let _ = write!(out, "<th>{}</th>", esc(h));
    }
    out.push_str("</tr>\n");
    for r in rows {
        out.push_str("<tr>");
        for c in r {
            let _ = write!(out, "<td>{}</td>", esc(c));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
}

fn command_and_settings(out: &mut String, command: &[String], settings: &serde_json::Map<String, serde_json::Value>) {
    out.push_str("<h2>Command and settings</h2>\n");
    if !command.is_empty() {
        let _ = writeln!(out, "<pre>{}</pre>", esc(&command.join(" ")));
    }
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "—".into(),
        serde_json::Value::Object(o) if o.contains_key("mean_ms") => sample_text(o),
        v => v.to_string(),
    };
    // The knobs this run reads first; the rest (burst lengths for Poisson arrivals, prefetch
    // without a broker) folded away beneath, still there for whoever looks.
    let mut s = Settings::default();
    for (k, v) in settings {
        if let Ok(knob) = Knob::parse(k, &text(v)) {
            knob.apply(&mut s);
        }
    }
    let broker = command.iter().any(|a| a == "--broker" || a.starts_with("--broker="));
    let (used, unused): (Vec<_>, Vec<_>) = settings.iter().partition(|(k, _)| s.knob_applies(k, broker));
    let rows = |kv: Vec<(&String, &serde_json::Value)>| -> Vec<Vec<String>> {
        kv.into_iter().map(|(k, v)| vec![k.replace('_', " "), text(v)]).collect()
    };
    table(out, &["setting", "value"], &rows(used));
    if !unused.is_empty() {
        let _ = writeln!(out, "<details><summary>Not used by this run ({})</summary>", unused.len());
        table(out, &["setting", "value"], &rows(unused));
        out.push_str("</details>\n");
    }
}

/// A service sample as the run's JSON describes it (`config.service_sample`), in one line.
fn sample_text(o: &serde_json::Map<String, serde_json::Value>) -> String {
    let num = |k: &str| o.get(k).and_then(serde_json::Value::as_f64).unwrap_or(f64::NAN);
    let count = o.get("count").map_or_else(String::new, ToString::to_string);
    let what = match o.get("kind").and_then(serde_json::Value::as_str) {
        Some("values") => format!("{count} values"),
        _ => format!("the percentiles of a run's {count} service times"),
    };
    format!(
        "{}: {what}, mean {:.3} ms, cv {:.2}, p99 {:.3} ms",
        o.get("file").and_then(serde_json::Value::as_str).unwrap_or("?"),
        num("mean_ms"),
        num("cv"),
        num("p99_ms")
    )
}

fn summary_row(name: &str, s: &Summary) -> Vec<String> {
    [s.mean, s.p50, s.p90, s.p99, s.p999, s.max].iter().fold(vec![name.to_string()], |mut v, x| {
        v.push(format!("{x:.3}"));
        v
    })
}

fn opt(x: Option<f64>, digits: usize) -> String {
    x.map_or_else(|| "—".into(), |v| format!("{v:.digits$}"))
}

fn run_page(r: &RunView, series: Option<&Series>) -> Result<String, ReportError> {
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
        Some(s) => time_series(&mut out, r, s)?,
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
    let spans: Vec<(f64, f64)> = s.changes.iter().take(MAX_CHANGES).map(|c| (c.from, c.to)).collect();
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
        spans,
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
    if !s.changes.is_empty() {
        let rows: Vec<Vec<String>> = s
            .changes
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
        if s.changes.len() > MAX_CHANGES {
            let _ = writeln!(
                out,
                "<p class=\"note\">… and {} more changes, left out of the charts and this list.</p>",
                s.changes.len() - MAX_CHANGES
            );
        }
    }
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

fn sweep_page(w: &SweepReport) -> Result<String, ReportError> {
    let mut out = head(&format!("pooltune sweep report: {}", w.knob));
    let mut settings = w.settings.clone();
    if let (Some(first), Some(last)) = (w.steps.first(), w.steps.last()) {
        let swept = format!("swept: {} to {} in {} steps", first.value_text, last.value_text, w.steps.len());
        settings.insert(w.knob.replace('-', "_"), serde_json::Value::String(swept));
    }
    command_and_settings(&mut out, &w.command, &settings);
    out.push_str("<h2>Verdict</h2>\n");
    let _ = writeln!(out, "<p><strong>{}</strong></p>", esc(&w.verdict));
    if let Some(k) = &w.knee {
        let _ = writeln!(out, "<p>Knee: {} {} ({}).</p>", esc(&w.knob), k.value, esc(&k.rule));
    }
    if let Some(s) = &w.slo {
        let _ = writeln!(
            out,
            "<p>Target p99 ≤ {} ms: highest passing {} {}, first failing {}; the model's answer {}{}.</p>",
            s.p99_ms,
            esc(&w.knob),
            opt(s.max_passing, 1),
            opt(s.first_failing, 1),
            opt(s.model_answer, 1),
            s.model_answer_reason.as_deref().map(|r| format!(" ({})", esc(r))).unwrap_or_default()
        );
    }
    if let Some(why) = &w.stopped_early {
        let _ = writeln!(out, "<p class=\"note\">Stopped early: {}</p>", esc(why));
    }
    out.push_str("<h2>Latency against throughput</h2>\n");
    let by_x = |f: &dyn Fn(&crate::sweep::Step) -> Option<f64>| -> Vec<(f64, f64)> {
        w.steps.iter().filter_map(|s| f(s).map(|y| (s.throughput_per_s, y))).collect()
    };
    // On a trace the model is the exact simulation of each step's window: said so everywhere.
    let model = if w.replayed() { "simulated" } else { "model" };
    let mut lines = vec![
        Line::new("measured p99", by_x(&|s| Some(s.latency_ms.p99)), BLUE).dots(),
        Line::new("measured p50", by_x(&|s| Some(s.latency_ms.p50)), GREEN).dots(),
        Line::new(format!("{model} p99"), by_x(&|s| s.model.as_ref().and_then(|m| m.latency_ms_p99)), ORANGE).dashed(),
        Line::new(format!("{model} mean"), by_x(&|s| s.model.as_ref().and_then(|m| m.latency_ms_mean)), SKY).dashed(),
    ];
    if let Some(s) = &w.slo {
        let xs: Vec<f64> = w.steps.iter().map(|s| s.throughput_per_s).collect();
        let (a, b) = (xs.iter().copied().fold(f64::INFINITY, f64::min), xs.iter().copied().fold(0.0, f64::max));
        lines.push(
            Line::new(format!("target p99 {} ms", s.p99_ms), vec![(a, s.p99_ms), (b, s.p99_ms)], VERMILLION).dashed(),
        );
    }
    let ring = w.knee.as_ref().and_then(|k| {
        w.steps
            .iter()
            .find(|s| s.value.to_bits() == k.value.to_bits())
            .map(|s| (format!("knee ({} {})", w.knob, s.value_text), (s.throughput_per_s, s.latency_ms.p99)))
    });
    let c = Chart {
        title: "Response time against throughput",
        x_label: "completed jobs per second",
        y_label: "milliseconds",
        x_axis: XAxis::Linear,
        lines,
        spans: Vec::new(),
        ring,
    };
    let dashed = if w.replayed() {
        "the simulation of the trace (exact, FIFO) over each step's own arrivals"
    } else {
        "the model at each step's measured inputs"
    };
    figure(
        &mut out,
        "curve",
        &charts::line_chart(&c)?,
        &format!(
            "Each dot is one step of the sweep; dashed lines are {dashed} and the p99 target; the ring is the knee."
        ),
    );
    out.push_str("<h2>Steps</h2>\n");
    let rows: Vec<Vec<String>> = w
        .steps
        .iter()
        .map(|s| {
            let speed = s.speed.map(|x| format!("{x:.2}×"));
            [Some(s.value_text.clone()), speed]
                .into_iter()
                .flatten()
                .chain([
                    format!("{:.1}", s.offered_per_s),
                    format!("{:.1}", s.throughput_per_s),
                    format!("{:.3}", s.utilisation),
                    format!("{:.3}", s.latency_ms.mean),
                    format!("{:.3}", s.latency_ms.p99),
                    opt(s.model.as_ref().and_then(|m| m.latency_ms_p99), 3),
                    (s.rejected + s.dropped).to_string(),
                    if s.saturated { "saturated".into() } else { String::new() },
                ])
                .collect()
        })
        .collect();
    let model_p99 = format!("{model} p99");
    let speed = w.replayed().then_some("speed");
    let head: Vec<&str> = [Some(w.knob.as_str()), speed]
        .into_iter()
        .flatten()
        .chain(["offered/s", "done/s", "ρ", "mean ms", "p99 ms", &model_p99, "refused", ""])
        .collect();
    table(&mut out, &head, &rows);
    out.push_str("</body></html>\n");
    Ok(out)
}
