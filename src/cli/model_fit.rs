//! `pooltune model --fit FILE`: the downstream's Universal Scalability Law fitted from what a
//! run saw, read from the run's CSV series (`run --csv`) or a workers sweep's JSON (`sweep
//! --json`). A run's JSON summary keeps no per-window series, so it is refused with what to give
//! instead. With `--rate` and `--slo-p99`/`--slo-mean` the advisor sizes the pool in front of the
//! fitted downstream (the holding time of a job alone, S₁, as the service time).

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use super::args::ModelArgs;
use super::{BadInput, Outcome};
use crate::model::Inputs;
use crate::model::advisor::{self, Target};
use crate::model::usl_points::Points;
use crate::report::html::input::Series;
use crate::report::html::usl::series_points;
use crate::sweep::SweepReport;

/// The points in `path`: a CSV series or a sweep's JSON.
fn points_of(path: &Path) -> Result<Points, BadInput> {
    let shown = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| BadInput(format!("--fit '{shown}': {e}")))?;
    if text.trim_start().starts_with('{') {
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| BadInput(format!("--fit '{shown}' is not JSON: {e}")))?;
        if v.get("knob").is_none() || v.get("steps").is_none() {
            return Err(BadInput(format!(
                "--fit '{shown}' is a run's JSON summary, which keeps no per-window series; expected the run's CSV series (pooltune run --csv FILE) or a workers sweep's JSON (pooltune sweep workers … --json FILE)"
            )));
        }
        let sweep: SweepReport = serde_json::from_value(v)
            .map_err(|e| BadInput(format!("--fit '{shown}' is not a sweep's JSON (pooltune sweep --json): {e}")))?;
        return sweep.usl_points().ok_or_else(|| {
            BadInput(format!(
                "--fit '{shown}' is a sweep of '{}', which holds the worker count still; expected a sweep of workers",
                sweep.knob
            ))
        });
    }
    let series = Series::parse(&text).map_err(|e| BadInput(format!("--fit '{shown}': {e}")))?;
    Ok(series_points(&series))
}

pub fn run(a: &ModelArgs, path: &Path) -> Outcome {
    for (flag, set) in [
        ("--workers", a.workers.is_some()),
        ("--contention/--coherency/--capacity", a.contention.or(a.coherency).is_some() || a.capacity.is_some()),
        ("--arrivals", a.trace.arrivals.is_some()),
    ] {
        if set {
            return Err(BadInput(format!("{flag} does not go with --fit: the fit finds the downstream itself")).into());
        }
    }
    let target = a.slo_p99.map(|d| Target::P99(d.as_secs_f64())).or(a.slo_mean.map(|d| Target::Mean(d.as_secs_f64())));
    if target.is_some() && a.rate.is_none() {
        return Err(
            BadInput("--fit with --slo-p99/--slo-mean needs --rate R: the rate to size the pool for".into()).into()
        );
    }
    let points = points_of(path)?;
    let fit = points.fit().map_err(|e| BadInput(format!("--fit '{}': {e}", path.display())))?;
    // The advisor in front of the fitted downstream: only a fit with a peak (a plateau is no
    // downstream the model should add; a flat one is the plain queue's).
    let advice = target.zip(a.rate).map(|(t, rate)| {
        let i = Inputs { downstream: fit.downstream().unwrap_or_default(), ..Inputs::mmc(rate, fit.alone_s, 1) };
        advisor::advise(&i, t)
    });
    if a.json {
        let mut v = serde_json::to_value(&fit)?;
        if let (Some(adv), Some(obj)) = (&advice, v.as_object_mut()) {
            obj.insert("target".into(), adv.target.clone().into());
            obj.insert("workers_needed".into(), serde_json::to_value(adv.workers_needed)?);
            obj.insert("workers_needed_reason".into(), serde_json::to_value(&adv.workers_reason)?);
        }
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = String::new();
    let _ = writeln!(out, "USL fit of {} (weighted least squares on S = N/X; 95% intervals)", path.display());
    let _ = writeln!(
        out,
        "{:<8} {:>8} {:>10} {:>10} {:>8} {:>10}",
        "workers", "inside", "jobs/s", "held ms", "jobs", "fit ms"
    );
    for p in &fit.points {
        let _ = writeln!(
            out,
            "{:<8} {:>8.2} {:>10.1} {:>10.3} {:>8} {:>10.3}",
            p.workers,
            p.inside,
            p.inside / p.hold_s,
            p.hold_s * 1e3,
            p.jobs,
            fit.alone_s * fit.usl.stretch(p.inside) * 1e3
        );
    }
    let iv = |i: Option<crate::model::usl_fit::Interval>, v: f64, d: usize| match i {
        Some(i) => format!("{:.d$}  [{:.d$} – {:.d$}]", i.value, i.low, i.high),
        None => format!("{v:.d$}  (no interval: one more count gives one)"),
    };
    let _ = writeln!(out, "contention σ       {}", iv(fit.contention, fit.usl.contention, 4));
    let _ = writeln!(out, "coherency κ        {}", iv(fit.coherency, fit.usl.coherency, 5));
    let _ = writeln!(out, "alone S₁           {:.3} ms", fit.alone_s * 1e3);
    match (fit.peak, fit.peak_per_s) {
        (Some(n), Some(x)) => {
            let past = if fit.peak_extrapolated { " (past the counts measured: extrapolated)" } else { "" };
            let _ = writeln!(
                out,
                "peak N*            {:.2}  [{:.2} – {:.2}] jobs inside{past}\npeak throughput    {x:.1} jobs/s",
                n.value, n.low, n.high
            );
        }
        _ => {
            let _ = writeln!(out, "peak N*            no peak in range: κ ≈ 0 within its interval");
        }
    }
    if let Some(adv) = &fit.advice {
        let _ = writeln!(out, "note: {adv}");
    }
    if let Some(adv) = advice {
        let _ = writeln!(out, "advice: {}", adv.line());
    }
    print!("{out}");
    Ok(ExitCode::SUCCESS)
}
