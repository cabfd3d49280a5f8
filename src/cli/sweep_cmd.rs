//! `pooltune sweep`: a capacity sweep from the command line, a client of [`crate::sweep`]. A
//! progress line on stderr while it runs; at the end a table of the steps, the knee and the
//! verdict on stdout, and the JSON and CSV files written whole.
//!
//! With `--arrivals FILE` the knob is stepped while the trace replays, looped (a sweep is as
//! long as its steps, not its trace), each step's model being the simulation of its window and
//! each row saying the speed: a `rate` sweep is a sweep of the trace's speed.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use super::args::SweepArgs;
use super::arrivals::{ArrivalsArgs, replay_settings};
use super::prometheus::Exporter;
use super::{BadInput, Outcome, RunContext, finish};
use crate::engine::RunOptions;
use crate::engine::replay::Arrivals;
use crate::settings::Settings;
use crate::sweep::{self, Plan, SweepReport};

pub fn run(a: &SweepArgs, work: Option<super::Work>) -> Outcome {
    let (knob, values) = Plan::values_of(&a.knob, &a.range, a.steps, a.scale).map_err(|e| BadInput(e.to_string()))?;
    if a.per_step < Duration::from_millis(100) {
        return Err(BadInput(format!(
            "--per-step {} is too short to measure; expected 100ms or more",
            crate::duration::format(a.per_step)
        ))
        .into());
    }
    let mut base = Settings::default();
    for k in a.workload.knobs() {
        k.apply(&mut base);
    }
    let arrivals = trace(a)?;
    if let Some(t) = &arrivals {
        base = replay_settings(base, &a.workload.knobs(), t, a.speed)?;
    }
    let service_sample = a.sample.load(None)?;
    if let Some(sample) = &service_sample {
        let traced = arrivals.as_ref().is_some_and(|t| t.service_mean().is_some());
        base = super::sample::sample_settings(base, &a.workload.knobs(), sample, traced)?;
    }
    let mut first = base.clone();
    values[0].apply(&mut first);
    first.fill_batch_size();
    first.validate().map_err(BadInput::from)?;
    if let Some(note) = arrivals.as_ref().and_then(|t| stretch_note(t, &first, a.per_step)) {
        eprintln!("pooltune: {note}");
    }
    let to_stdout = a.json.as_deref() == Some(Path::new("-"));
    let json = match &a.json {
        Some(p) if !to_stdout => Some(finish::open(p, "JSON")?),
        _ => None,
    };
    let csv = a.csv.as_deref().map(|p| finish::open(p, "CSV")).transpose()?;
    let html = a.report.as_deref().map(|p| finish::open(p, "report")).transpose()?;
    let metrics = a.metrics.metrics_addr.map(|m| Exporter::bind(m, true).map(Arc::new)).transpose()?;
    let plan = Plan { knob, values, settle: a.settle, per_step: a.per_step, stop_on_saturation: a.stop_on_saturation };
    let opts = RunOptions { interval: Duration::from_millis(100), ..RunOptions::default() };
    if let Some(m) = &metrics {
        eprintln!("pooltune: {}", m.announcement());
    }
    let ctx = RunContext { work, arrivals, service_sample, metrics, ..RunContext::default() };
    ctx.supplied().check(&first)?;
    let engine = finish::start_engine(first, opts, &ctx)?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let _hook = crate::panic_hook::install(None);
    let progress = super::progress::Progress::new(Some(plan.values.len() as u64), "sweep, steps");
    let report = rt.block_on(sweep::run(&engine, &plan, &base, base.slo_p99, ctx.arrivals.as_ref(), |k, n, _left| {
        progress.step(k, n);
    }));
    progress.finish();
    let _ = engine.try_join()?;
    let mut report = report?;
    report.command = crate::engine::broker::redact_args(std::env::args());
    let text = serde_json::to_string_pretty(&report)?;
    if let Some(f) = json {
        finish::write_json(f, &text)?;
    }
    if let Some(mut f) = csv {
        f.write_all(csv_rows(&report).as_bytes())?;
        f.commit()?;
    }
    if let Some(f) = html {
        super::report_cmd::write(f, &text, None)?;
        eprintln!("pooltune: wrote the report to {}", a.report.as_deref().unwrap_or(Path::new("")).display());
    }
    if to_stdout {
        println!("{text}");
        eprint!("{}", table(&report));
    } else {
        print!("{}", table(&report));
    }
    Ok(ExitCode::SUCCESS)
}

/// The trace to sweep over, read as `run` reads it (every bad input one exit-2 line), always
/// looped; `--speed` beside a `rate` sweep is refused, the sweep stepping the speed itself.
fn trace(a: &SweepArgs) -> Result<Option<Arrivals>, BadInput> {
    if a.speed.is_some() && a.knob.trim().eq_ignore_ascii_case("rate") {
        return Err(BadInput(
            "--speed sets the rate that a rate sweep steps; give one (each rate is a speed: rate ÷ the trace's mean rate)"
                .into(),
        ));
    }
    ArrivalsArgs { looped: true, ..a.trace.clone() }.load(None)
}

/// When a step measures less than one pass of the trace: each step then replays another stretch
/// of it (a burst in one, a lull in the next), and the steps differ by more than the knob.
fn stretch_note(t: &Arrivals, first: &Settings, per_step: Duration) -> Option<String> {
    let pass = (t.trace.span().as_secs_f64() + t.loop_gap()) / t.speed_of(first.rate)?;
    (per_step.as_secs_f64() < pass).then(|| {
        let pass = crate::duration::format(Duration::from_secs_f64(pass.ceil()));
        format!(
            "each step measures {} of a trace that takes {pass} to replay, so the steps see different stretches of it; --per-step {pass} (or a shorter --arrivals-window) gives every step all of it",
            crate::duration::format(per_step)
        )
    })
}

fn csv_rows(r: &SweepReport) -> String {
    let mut out = String::from(
        "value,offered_per_s,throughput_per_s,utilisation,latency_ms_mean,latency_ms_p50,latency_ms_p90,latency_ms_p99,latency_ms_max,wait_ms_mean,wait_ms_p99,service_ms_mean,rejected,dropped,saturated,model_latency_ms_mean,model_latency_ms_p99,speed\n",
    );
    let opt = |v: Option<f64>| v.map_or(String::new(), |x| format!("{x:.4}"));
    for s in &r.steps {
        let l = &s.latency_ms;
        let _ = writeln!(
            out,
            "{},{:.3},{:.3},{:.4},{:.4},{:.4},{:.4},{:.4},{:.4},{:.4},{:.4},{:.4},{},{},{},{},{},{}",
            s.value,
            s.offered_per_s,
            s.throughput_per_s,
            s.utilisation,
            l.mean,
            l.p50,
            l.p90,
            l.p99,
            l.max,
            s.wait_ms.mean,
            s.wait_ms.p99,
            s.service_ms.mean,
            s.rejected,
            s.dropped,
            s.saturated,
            opt(s.model.as_ref().and_then(|m| m.latency_ms_mean)),
            opt(s.model.as_ref().and_then(|m| m.latency_ms_p99)),
            opt(s.speed),
        );
    }
    out
}

fn table(r: &SweepReport) -> String {
    let mut out = String::new();
    // A trace's sweep: each row's speed beside its value, and the model is the simulation.
    let traced = r.replayed();
    let speed = |text: String| if traced { format!("{text:>7} ") } else { String::new() };
    let _ = writeln!(
        out,
        "{:>12} {}{:>10} {:>10} {:>6} {:>9} {:>9} {:>9} {:>9}",
        r.knob,
        speed("speed".into()),
        "offered/s",
        "done/s",
        "ρ",
        "mean ms",
        "p99 ms",
        if traced { "sim p99" } else { "model p99" },
        ""
    );
    for s in &r.steps {
        let model = s.model.as_ref().and_then(|m| m.latency_ms_p99).map_or("n/a".to_string(), |p| format!("{p:.3}"));
        let _ = writeln!(
            out,
            "{:>12} {}{:>10.1} {:>10.1} {:>6.3} {:>9.3} {:>9.3} {:>9} {:>9}",
            s.value_text,
            speed(s.speed.map_or("n/a".into(), |v| format!("{v:.2}×"))),
            s.offered_per_s,
            s.throughput_per_s,
            s.utilisation,
            s.latency_ms.mean,
            s.latency_ms.p99,
            model,
            if s.saturated { "saturated" } else { "" }
        );
    }
    if let Some(k) = &r.knee {
        let _ = writeln!(out, "knee      {} {} ({})", r.knob, k.value, k.rule);
    }
    if let Some(why) = &r.stopped_early {
        let _ = writeln!(out, "stopped   {why}");
    }
    if let Some(s) = &r.slo
        && let Some(why) = &s.model_answer_reason
        && s.model_answer.is_none()
    {
        let _ = writeln!(out, "model     no answer: {why}");
    }
    let _ = writeln!(out, "verdict   {}", r.verdict);
    out
}
