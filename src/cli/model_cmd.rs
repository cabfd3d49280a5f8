//! `pooltune model`: the queueing model on its own, from flags (`--arrivals` goes to
//! `model_trace`, `--fit` to `model_fit`, `--partitions` to `model_partitions`).

use std::fmt::Write as _;
use std::process::ExitCode;

use super::args::ModelArgs;
use super::{BadInput, Outcome};
use crate::model::advisor::{self, Target};
use crate::model::batch::Batch;
use crate::model::bursty::Bursty;
use crate::model::closed::Closed;
use crate::model::sample::ServiceSample;
use crate::model::{self, Inputs, ModelError, Workload};
use crate::settings::{ArrivalKind, ServiceDist, Settings};

fn inputs(a: &ModelArgs, sample: Option<&ServiceSample>) -> Result<Workload, BadInput> {
    let (service_dist, service_cv) = match (sample, a.service_dist, a.service_cv) {
        (Some(s), _, _) => (ServiceDist::Empirical, s.cv()),
        (None, _, Some(cv)) => (ServiceDist::Exponential, cv),
        (None, Some(ServiceDist::Constant), None) => (ServiceDist::Constant, 0.0),
        (None, Some(d @ (ServiceDist::Uniform | ServiceDist::Lognormal)), None) => {
            return Err(BadInput(format!("--service-dist {d} needs --service-cv X to fix its spread")));
        }
        _ => (ServiceDist::Exponential, 1.0),
    };
    let workers = a.workers.unwrap_or(1);
    let workers = u32::try_from(workers).map_err(|_| BadInput(format!("workers {workers} is too many")))?;
    // A sample's own mean, unless --service scales it.
    let service_mean = a
        .service
        .or(sample.map(ServiceSample::mean))
        .ok_or_else(|| BadInput("--service DUR is needed: the mean service time E[S], e.g. 5ms".into()))?
        .as_secs_f64();
    let arrival = a.arrival.unwrap_or(ArrivalKind::Poisson);
    // Each process takes its own flags and no other's.
    let foreign: &[(&str, bool)] = match arrival {
        ArrivalKind::Closed => &[
            ("--rate", a.rate.is_some()),
            ("--jobs", a.jobs.is_some()),
            ("--burst-on/--burst-off", a.burst_on.or(a.burst_off).is_some()),
        ],
        ArrivalKind::Batch => &[
            ("--rate", a.rate.is_some()),
            ("--clients/--think", a.clients.is_some() || a.think.is_some()),
            ("--burst-on/--burst-off", a.burst_on.or(a.burst_off).is_some()),
        ],
        ArrivalKind::Bursty => {
            &[("--clients/--think", a.clients.is_some() || a.think.is_some()), ("--jobs", a.jobs.is_some())]
        }
        ArrivalKind::Poisson | ArrivalKind::Constant | ArrivalKind::Trace => &[
            ("--clients/--think", a.clients.is_some() || a.think.is_some()),
            ("--jobs", a.jobs.is_some()),
            ("--burst-on/--burst-off", a.burst_on.or(a.burst_off).is_some()),
        ],
    };
    if let Some((flag, _)) = foreign.iter().find(|f| f.1) {
        return Err(BadInput(format!("{flag} does not apply to --arrival {arrival}")));
    }
    let default = Settings::default();
    let rate = || {
        a.rate.ok_or_else(|| {
            BadInput(format!(
                "--arrival {arrival} needs --rate R (jobs per second; closed and batch arrivals set their own)"
            ))
        })
    };
    let open = |rate: f64, arrival_cv: f64| Inputs {
        rate,
        service_mean,
        workers,
        queue: a.queue.map(|k| k as u64),
        arrival_cv,
        service_cv,
        service_dist,
        downstream: crate::model::usl::Usl {
            contention: a.contention.unwrap_or(0.0),
            coherency: a.coherency.unwrap_or(0.0),
            capacity: a.capacity.map(|c| u32::try_from(c).unwrap_or(u32::MAX)),
        },
    };
    Ok(match arrival {
        ArrivalKind::Trace => {
            return Err(BadInput("--arrival trace needs the trace itself: give --arrivals FILE".into()));
        }
        ArrivalKind::Closed => Workload::Closed(Closed {
            clients: a.clients.ok_or_else(|| {
                BadInput(
                    "--arrival closed needs --clients N (1 to 100000), and takes --think DUR (default 10ms)".into(),
                )
            })? as u64,
            think: a.think.unwrap_or(default.think).as_secs_f64(),
            workers,
            queue: a.queue.map(|k| k as u64),
            service_mean,
            service_cv,
            service_dist,
        }),
        ArrivalKind::Batch => Workload::Batch(Batch {
            jobs: a.jobs.ok_or_else(|| BadInput("--arrival batch needs --jobs N (at least 1)".into()))?,
            workers,
            service_mean,
            service_dist,
        }),
        ArrivalKind::Bursty => Workload::Bursty(Bursty {
            base: open(rate()?, 1.0),
            on: a.burst_on.unwrap_or(default.burst_on).as_secs_f64(),
            off: a.burst_off.unwrap_or(default.burst_off).as_secs_f64(),
        }),
        ArrivalKind::Poisson | ArrivalKind::Constant => {
            let arrival_cv = match (a.arrival, a.arrival_cv) {
                (_, Some(cv)) => cv,
                (Some(ArrivalKind::Constant), None) => 0.0,
                _ => 1.0,
            };
            Workload::Open(open(rate()?, arrival_cv))
        }
    })
}

/// Before a downstream that pushes back: its peak, and the saturated throughput and the time a
/// job takes inside at worker counts around it (the curves that peak and then fall).
fn downstream_curve(out: &mut String, i: &Inputs) {
    let u = i.downstream;
    if u.is_none() {
        return;
    }
    if let Some(n) = u.peak() {
        let _ = writeln!(out, "downstream peak    N* = √((1−σ)/κ) = {n:.2} jobs inside");
    }
    let best = u.best_workers().unwrap_or(i.workers).max(1);
    let _ = writeln!(out, "{:<18} {:>10} {:>12}", "saturated workers", "jobs/s", "service ms");
    let mut counts: Vec<u32> = [1, best / 2, best, best + best / 2, 2 * best, 3 * best, i.workers].to_vec();
    counts.retain(|c| *c >= 1);
    counts.sort_unstable();
    counts.dedup();
    for c in counts {
        let inside = f64::from(u.inside(c));
        let mark = if c == best {
            "  ← most throughput"
        } else if c == i.workers {
            "  ← this pool"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "{c:<18} {:>10.1} {:>12.3}{mark}",
            u.throughput(c, i.service_mean),
            i.service_mean * u.stretch(inside) * 1e3
        );
    }
}

pub fn run(a: &ModelArgs) -> Outcome {
    if let Some(path) = &a.fit {
        return super::model_fit::run(a, path);
    }
    if a.trace.arrivals.is_some() {
        return super::model_trace::run(a);
    }
    let sample = super::sample::model_sample(&a.sample, a.service_dist, a.service_cv)?;
    let w = inputs(a, sample.as_deref())?;
    if let Some(partitions) = a.partitions {
        let Workload::Open(i) = w else {
            return Err(BadInput(format!(
                "--partitions models open-loop arrivals (poisson or constant at --rate, or --arrival-cv), not --arrival {}",
                a.arrival.unwrap_or(ArrivalKind::Poisson)
            ))
            .into());
        };
        return super::model_partitions::run(a, &i, partitions);
    }
    let p = model::predict_workload(&w).map_err(|ModelError::Invalid(m)| BadInput(m))?;
    let target = a.slo_p99.map(|d| Target::P99(d.as_secs_f64())).or(a.slo_mean.map(|d| Target::Mean(d.as_secs_f64())));
    let advice = match (target, w) {
        (None, _) => None,
        (Some(t), Workload::Open(i)) => Some(advisor::advise(&i, t)),
        (Some(_), _) => {
            return Err(BadInput(format!(
                "--slo-p99/--slo-mean advise open-loop pools (poisson or constant arrivals at --rate), not --arrival {}",
                a.arrival.unwrap_or(ArrivalKind::Poisson)
            ))
            .into());
        }
    };
    if a.json {
        let mut v = serde_json::to_value(&p)?;
        if let (Some(s), Some(obj)) = (&sample, v.as_object_mut()) {
            obj.insert("service_sample".into(), serde_json::to_value(s)?);
        }
        if let (Some(adv), Some(obj)) = (&advice, v.as_object_mut()) {
            obj.insert("target".into(), adv.target.clone().into());
            obj.insert("workers_needed".into(), serde_json::to_value(adv.workers_needed)?);
            obj.insert("workers_needed_reason".into(), serde_json::to_value(&adv.workers_reason)?);
            obj.insert("max_rate".into(), serde_json::to_value(adv.max_rate)?);
            obj.insert("max_rate_reason".into(), serde_json::to_value(&adv.max_rate_reason)?);
        }
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = String::new();
    if let Some(s) = &sample {
        let scaled = a.service.map(|d| format!(", scaled to a mean of {}", crate::duration::format(d)));
        let _ = writeln!(out, "service sample     {s}{}", scaled.unwrap_or_default());
    }
    let _ = writeln!(out, "{}{}", p.method, if p.exact { "" } else { " (approximate)" });
    let _ = writeln!(out, "utilisation ρ      {:.4}", p.rho);
    if !p.stable {
        let _ = writeln!(out, "unstable: ρ ≥ 1, the queue grows by about {:.1} jobs/s", p.growth_per_s.unwrap_or(0.0));
    }
    let f = |v: Option<f64>| v.map_or("n/a".to_string(), |x| format!("{x:.4}"));
    for (label, v) in [
        ("P(wait)", p.p_wait),
        ("P(reject)", p.p_reject),
        ("wait mean ms", p.wait_ms_mean),
        ("wait p50/p90/p99 ms", None),
        ("latency mean ms", p.latency_ms_mean),
        ("queue length mean", p.queue_len_mean),
        ("in system mean", p.in_system_mean),
    ] {
        if label.starts_with("wait p50") {
            let _ = writeln!(out, "{label:<18} {} / {} / {}", f(p.wait_ms_p50), f(p.wait_ms_p90), f(p.wait_ms_p99));
            let _ = writeln!(
                out,
                "{:<18} {} / {} / {}",
                "latency p50/p90/p99",
                f(p.latency_ms_p50),
                f(p.latency_ms_p90),
                f(p.latency_ms_p99)
            );
        } else if label != "P(reject)" || v.is_some() {
            let _ = writeln!(out, "{label:<18} {}", f(v));
        }
    }
    let _ = writeln!(out, "throughput /s      {:.2}", p.throughput_per_s);
    if let Some(m) = p.makespan_ms {
        let _ = writeln!(out, "last job ends ms   {m:.4}");
    }
    if let Some(n) = &p.note {
        let _ = writeln!(out, "note: {n}");
    }
    if let Workload::Open(i) = &w {
        downstream_curve(&mut out, i);
    }
    if let Some(adv) = advice {
        let _ = writeln!(out, "advice: {}", adv.line());
        match (adv.max_rate, adv.max_rate_reason) {
            (Some(r), _) => {
                let _ = writeln!(
                    out,
                    "advice: {} workers sustain up to {r:.1} jobs/s under {}",
                    a.workers.unwrap_or(1),
                    adv.target
                );
            }
            (None, Some(why)) => {
                let _ = writeln!(out, "advice: no rate: {why}");
            }
            _ => {}
        }
    }
    print!("{out}");
    Ok(ExitCode::SUCCESS)
}
