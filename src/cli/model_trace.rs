//! `pooltune model --arrivals FILE`: what a pool does on a user's own trace, by exact
//! simulation ([`crate::model::trace`]), beside what the textbook model fitted to the same mean
//! rate says; with `--slo-p99`, the fewest workers that meet it on this trace (checked against
//! the simulated p99 one worker either side) and the highest speed (traffic growth) the pool
//! given sustains.

use std::fmt::Write as _;
use std::process::ExitCode;

use serde::Serialize;

use super::args::ModelArgs;
use super::{BadInput, Outcome};
use crate::engine::replay::Arrivals;
use crate::model::sample::ServiceSample;
use crate::model::trace::{Service, Spread, TraceInputs, TraceSim, poisson_equivalent, replicate, simulate};
use crate::model::trace_search::{PoolSize, fewest_workers, highest_speed, poisson_fewest_workers};
use crate::model::{Prediction, predict};
use crate::settings::{Policy, ServiceDist};

/// Replications of a simulation whose service times are drawn (a 95% interval is printed).
const REPLICATIONS: u32 = 10;
/// The most workers the search tries.
const MAX_WORKERS: u32 = 100_000;

/// What `--json` prints.
#[derive(Serialize)]
struct Answer<'a> {
    trace: &'a str,
    arrivals: usize,
    speed: f64,
    rate_per_s: f64,
    workers: u32,
    simulation: TraceSim,
    /// 95% half-widths over the replications (service drawn; zero for the trace's own times).
    spread: Spread,
    /// The sample service times are drawn from, if any (scaled to the mean simulated).
    #[serde(skip_serializing_if = "Option::is_none")]
    service_sample: Option<&'a ServiceSample>,
    fitted: Option<Prediction>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target_p99_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    workers_needed: Option<PoolSize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fitted_workers_needed: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    highest_speed: Option<f64>,
}

pub fn run(a: &ModelArgs) -> Outcome {
    let arrivals = a.trace.load(None)?.ok_or_else(|| BadInput("--arrivals FILE is needed".into()))?;
    if a.slo_mean.is_some() {
        return Err(BadInput("on a trace the advisor sizes for a p99 target: give --slo-p99 DUR".into()).into());
    }
    let speed = match (a.speed, a.rate) {
        (Some(_), Some(_)) => {
            return Err(BadInput("--speed and --rate both set how fast the trace replays; give one".into()).into());
        }
        (Some(k), None) => k,
        (None, Some(r)) => arrivals.speed_for(r),
        (None, None) => 1.0,
    };
    let sample = super::sample::model_sample(&a.sample, a.service_dist, a.service_cv)?;
    let service = service_times(a, &arrivals, sample.as_deref())?;
    let workers = a.workers.unwrap_or(1);
    let workers = u32::try_from(workers).map_err(|_| BadInput(format!("workers {workers} is too many")))?;
    if workers == 0 {
        return Err(BadInput("workers 0: a pool with no workers serves nothing; expected at least 1".into()).into());
    }
    let i = TraceInputs {
        arrivals: &arrivals.trace.offsets,
        speed,
        service: match &service {
            Some(v) => Service::PerArrival(v),
            None => drawn(a, sample.as_deref()),
        },
        workers,
        // The formulas' bound refuses what finds it full: the simulation does the same.
        queue: a.queue.map(|k| k as u64),
        policy: if a.queue.is_some() { Policy::Reject } else { Policy::Block },
    };
    // A long trace takes seconds per search: its stages show on a terminal's stderr.
    let target = a.slo_p99.map(|d| d.as_secs_f64() * 1e3);
    let stages = if target.is_some() { 3 } else { 1 };
    let progress = super::progress::Progress::new(Some(stages), "model of the trace, stages");
    progress.step(1, stages as usize);
    let (sim, spread) = if service.is_some() { (simulate(&i), Spread::default()) } else { replicate(&i, REPLICATIONS) };
    let fitted = predict(&poisson_equivalent(&i)).ok();
    progress.step(2, stages as usize);
    let sized = target.and_then(|t| fewest_workers(&TraceInputs { queue: None, ..i }, t, MAX_WORKERS));
    let fitted_sized = target.and_then(|t| poisson_fewest_workers(&TraceInputs { queue: None, ..i }, t).ok());
    progress.step(3, stages as usize);
    let fastest = target.and_then(|t| highest_speed(&TraceInputs { queue: None, ..i }, t));
    progress.finish();
    let answer = Answer {
        trace: &arrivals.trace.describe,
        arrivals: arrivals.trace.len(),
        speed,
        rate_per_s: arrivals.mean_rate() * speed,
        workers,
        simulation: sim,
        spread,
        service_sample: sample.as_deref(),
        fitted,
        target_p99_ms: target,
        workers_needed: sized,
        fitted_workers_needed: fitted_sized,
        highest_speed: fastest,
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
    } else {
        print!("{}", text(&answer, &arrivals));
    }
    Ok(ExitCode::SUCCESS)
}

/// The trace's own service times (scaled to `--service` when given), or `None` to draw them
/// (from `--service-dist`, or from the sample).
fn service_times(
    a: &ModelArgs,
    arrivals: &Arrivals,
    sample: Option<&ServiceSample>,
) -> Result<Option<Vec<u64>>, BadInput> {
    match (arrivals.service_mean(), a.service) {
        (Some(_), _) if sample.is_some() => Err(BadInput(
            "--service-sample draws each job's time from a sample, and --service-column gives each arrival its own; give one".into(),
        )),
        (None, _) if sample.is_some() => Ok(None),
        (Some(own), given) => {
            let mean = given.unwrap_or(std::time::Duration::from_secs_f64(own));
            Ok(Some(
                (0..arrivals.len()).map(|j| arrivals.service(j, mean).map_or(0, |d| d.as_nanos() as u64)).collect(),
            ))
        }
        (None, Some(_)) => Ok(None),
        (None, None) => Err(BadInput(
            "the trace has no service times: give --service DUR (drawn from --service-dist), --service-sample FILE or --service-column NAME"
                .into(),
        )),
    }
}

/// Service drawn from `--service`, `--service-dist` and `--service-cv`, or from the sample
/// (scaled to `--service` when given), as a run draws it.
fn drawn<'a>(a: &ModelArgs, sample: Option<&'a ServiceSample>) -> Service<'a> {
    let (dist, cv) = match (sample, a.service_dist, a.service_cv) {
        (Some(s), _, _) => (ServiceDist::Empirical, s.cv()),
        (None, _, Some(cv)) => (ServiceDist::Lognormal, cv),
        (None, Some(d), None) => (d, 1.0),
        (None, None, None) => (ServiceDist::Exponential, 1.0),
    };
    let mean = a.service.or(sample.map(ServiceSample::mean)).map_or(0.0, |d| d.as_secs_f64());
    Service::Drawn { mean, cv, dist, seed: 1, sample }
}

fn text(w: &Answer, arrivals: &Arrivals) -> String {
    let mut out = String::new();
    let t = &arrivals.trace;
    let _ = writeln!(out, "trace              {}", t.describe);
    let _ = writeln!(
        out,
        "                   inter-arrival CV {:.2}, index of dispersion {:.1} over 1 s windows (Poisson: 1 and 1)",
        t.interarrival_cv(),
        t.dispersion(std::time::Duration::from_secs(1))
    );
    let _ =
        writeln!(out, "replayed at        ×{:.3}: {:.2} arrivals/s on {} workers", w.speed, w.rate_per_s, w.workers);
    if let Some(s) = w.service_sample {
        let _ = writeln!(out, "service drawn from {s}");
    }
    let s = &w.simulation;
    let reps = if w.spread.reps > 1 { format!(", mean of {} draws ± 95%", w.spread.reps) } else { String::new() };
    let _ = writeln!(out, "trace simulation (exact, FIFO){reps}");
    let pm = |x: f64, h: f64| if h > 0.0 { format!("{x:.3} ± {h:.3}") } else { format!("{x:.3}") };
    let (r, rh) = (&s.response_ms, &w.spread.response_ms);
    let _ = writeln!(out, "utilisation ρ      {:.4}", s.busy);
    let _ = writeln!(out, "P(wait)            {:.4}", s.p_wait);
    let _ = writeln!(out, "wait mean ms       {}", pm(s.wait_ms.mean, w.spread.wait_ms.mean));
    let _ = writeln!(out, "latency mean ms    {}", pm(r.mean, rh.mean));
    let _ = writeln!(out, "latency p50/p90/p99 {} / {} / {}", pm(r.p50, rh.p50), pm(r.p90, rh.p90), pm(r.p99, rh.p99));
    let _ = writeln!(out, "latency max ms     {:.3}", r.max);
    let _ = writeln!(out, "queue length mean  {:.4}", s.queue_len_mean + s.held_mean);
    if s.rejected + s.dropped > 0 {
        let _ = writeln!(out, "refused            {} of {}", s.rejected + s.dropped, s.offered);
    }
    if let Some(f) = &w.fitted {
        let off = |fit: Option<f64>, sim: f64| match fit {
            Some(x) if sim > 0.0 => format!("{x:.3} ms ({:+.0}% off the trace)", (x - sim) / sim * 100.0),
            Some(x) => format!("{x:.3} ms"),
            None => "n/a (unstable)".into(),
        };
        let _ = writeln!(out, "fitted Poisson     {} at the same mean rate and service says:", f.method);
        let _ = writeln!(
            out,
            "                   latency mean {}, p99 {}",
            off(f.latency_ms_mean, r.mean),
            off(f.latency_ms_p99, r.p99)
        );
    }
    if let Some(target) = w.target_p99_ms {
        match &w.workers_needed {
            Some(z) => {
                let fewer = z.p99_ms_fewer.map_or_else(|| "n/a".into(), |p| format!("{p:.1}"));
                let _ = writeln!(
                    out,
                    "advice: p99 ≤ {target} ms on this trace needs ≥ {} workers (simulated p99 {fewer} / {:.1} / {:.1} ms at {} / {} / {})",
                    z.workers,
                    z.p99_ms,
                    z.p99_ms_more,
                    z.workers.saturating_sub(1),
                    z.workers,
                    z.workers + 1
                );
            }
            None => {
                let _ =
                    writeln!(out, "advice: no pool up to {MAX_WORKERS} workers meets p99 ≤ {target} ms on this trace");
            }
        }
        if let Some(n) = w.fitted_workers_needed {
            let _ = writeln!(out, "advice: the fitted Poisson model would say {n} workers");
        }
        match w.highest_speed {
            Some(k) => {
                let _ = writeln!(
                    out,
                    "advice: {} workers keep p99 ≤ {target} ms up to speed ×{k:.3} ({:.1} arrivals/s on average)",
                    w.workers,
                    arrivals.mean_rate() * k
                );
            }
            None => {
                let _ = writeln!(out, "advice: {} workers miss p99 ≤ {target} ms at any speed tried", w.workers);
            }
        }
    }
    out
}
