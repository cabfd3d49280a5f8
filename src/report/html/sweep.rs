//! A sweep's page: the settings with the swept knob's range, the verdict (knee, target, the
//! model's answer), response time against throughput with the model's (or, on a trace, the
//! simulation's) p99 and mean dashed, and the steps' table.

use super::ReportError;
use std::fmt::Write as _;

use super::charts::{self, BLUE, Chart, GREEN, Line, ORANGE, SKY, VERMILLION, XAxis};
use super::page::{command_and_settings, esc, figure, head, opt, table};
use crate::sweep::SweepReport;

pub(super) fn sweep_page(w: &SweepReport) -> Result<String, ReportError> {
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
    if let Some(points) = w.usl_points() {
        super::usl::section(&mut out, &points, true)?;
    }
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
