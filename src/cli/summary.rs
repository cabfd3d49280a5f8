//! The short human summary printed at the end of a headless run.

use std::fmt::Write;

use crate::metrics::Summary;
use crate::report::RunSummary;

fn dist(label: &str, s: &Summary) -> String {
    format!(
        "{label:<9} mean {:>8.3}  p50 {:>8.3}  p90 {:>8.3}  p99 {:>8.3}  p99.9 {:>8.3}  max {:>8.3} ms\n",
        s.mean, s.p50, s.p90, s.p99, s.p999, s.max
    )
}

#[must_use]
pub fn render(r: &RunSummary) -> String {
    let s = &r.config.settings;
    let f = &r.final_settings;
    let mut out = String::new();
    let service = if let Some(h) = &r.http {
        format!("http {}", h.target)
    } else if r.custom_work {
        "your job".to_string()
    } else {
        format!("{} {} {}", crate::duration::format(f.service), f.service_dist, f.service_kind)
    };
    // A broker run's worker nodes serve the same queue: the workers the model was given (over
    // the window, every node's included) beside this process's own.
    let served = r.model.as_ref().and_then(|m| m.inputs).map(|i| i.workers).filter(|_| r.nodes.is_some());
    let workers = match served {
        Some(n) if n > f.workers => format!("{} workers here, {n} with the worker nodes", f.workers),
        _ => format!("{} workers", f.workers),
    };
    let _ = writeln!(
        out,
        "pooltune: {:.1} s measured, ended by {} ({} {} /s, {workers}, queue {} {}, service {service})",
        r.duration_s,
        serde_json::to_value(r.ended_by).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default(),
        s.arrival,
        f.rate,
        f.queue,
        f.policy,
    );
    if let Some(sample) = &r.config.service_sample {
        let at = (f.service_dist == crate::settings::ServiceDist::Empirical).then(|| {
            let mean = f.service.as_secs_f64();
            format!(" (drawn at mean {}: p99 {:.3} ms)", crate::duration::format(f.service), sample.p99_at(mean) * 1e3)
        });
        let _ = writeln!(
            out,
            "sample    {sample}{}",
            at.unwrap_or_else(|| " (not drawn from: another distribution)".into())
        );
    }
    let j = &r.jobs;
    let _ = writeln!(
        out,
        "jobs      offered {}  completed {}  failed {} (timed out {}, panicked {})  rejected {}  dropped {}  abandoned {}",
        j.offered, j.completed, j.failed, j.timed_out, j.panicked, j.rejected, j.dropped, j.abandoned
    );
    if let Some(b) = r.broker.as_ref().filter(|b| b.link.disconnects + b.lost_in_broker + b.unaccounted > 0) {
        let _ = writeln!(
            out,
            "broker    {} outages (the last {:.1} s); {} lost {}×: {} jobs lost in the broker, {} unaccounted (both among the abandoned)",
            b.link.disconnects,
            b.holder,
            b.link.outage_ms / 1e3,
            b.link.streams_lost,
            b.lost_in_broker,
            b.unaccounted
        );
    }
    let _ = writeln!(
        out,
        "rate      offered {:.1}/s  completed {:.1}/s  utilisation {:.1}%  queue depth mean {:.2} max {}",
        r.offered_per_s,
        r.throughput_per_s,
        r.utilisation * 100.0,
        r.queue_depth.mean,
        r.queue_depth.max
    );
    out.push_str(&dist("latency", &r.latency.response));
    out.push_str(&dist("wait", &r.latency.wait));
    out.push_str(&dist("service", &r.latency.service));
    if let Some(h) = &r.http {
        let _ = writeln!(out, "http      {}", h.line());
    }
    let a = &r.adapt;
    if a.algorithm != crate::settings::Adapt::Off || a.changes > 0 {
        let _ = writeln!(
            out,
            "workers   {} set {} to {} (mean {:.2}), {} changes, {:.1} worker-seconds",
            if a.algorithm == crate::settings::Adapt::Off { "the operator" } else { a.algorithm.name() },
            a.limit_min,
            a.limit_max,
            a.limit_mean,
            a.changes,
            a.worker_seconds
        );
    }
    if r.failed_latency_ms.count > 0 {
        out.push_str(&dist("failed", &r.failed_latency_ms));
        for e in &r.recent_errors {
            let _ = writeln!(out, "error     {e}");
        }
    }
    if let Some(m) = &r.model {
        match (&m.predicted, &m.reason) {
            (Some(p), _) => {
                let fmt = |v: Option<f64>| v.map_or("n/a".to_string(), |x| format!("{x:.3}"));
                // A closed loop's or a batch's throughput is the model's answer, not its input.
                let thru = m
                    .compared
                    .iter()
                    .find(|c| c.name == "throughput_per_s")
                    .map(|_| format!(", throughput {:.1}/s", p.throughput_per_s))
                    .unwrap_or_default();
                let last = p.makespan_ms.map(|x| format!(", last job {x:.3} ms")).unwrap_or_default();
                let _ = writeln!(
                    out,
                    "model     {}{}: latency mean {} ms, p99 {} ms, wait mean {} ms{thru}{last}{}",
                    p.method,
                    if p.exact { "" } else { " (approximate)" },
                    fmt(p.latency_ms_mean),
                    fmt(p.latency_ms_p99),
                    fmt(p.wait_ms_mean),
                    p.note.as_ref().map(|n| format!(" ({n})")).unwrap_or_default()
                );
            }
            (None, Some(why)) => {
                let _ = writeln!(out, "model     n/a: {why}");
            }
            _ => {}
        }
        // A trace: what the textbook model fitted to its mean rate says, and how far off it is.
        if let (Some(f), Some(p)) = (&m.fitted, &m.predicted) {
            let off = crate::report::trace_model::off_the_simulation;
            let _ = writeln!(
                out,
                "fitted    Poisson arrivals at the same mean rate would say: latency mean {}, p99 {} against the trace's",
                off(f.latency_ms_mean, p.latency_ms_mean),
                off(f.latency_ms_p99, p.latency_ms_p99)
            );
        }
        if let Some(d) = &m.diagnosis {
            let _ = writeln!(out, "note      {d}");
        }
        if let Some(a) = &m.advice {
            let _ = writeln!(out, "advice    {}", a.line());
        }
    }
    if r.missed_ticks > 0 {
        let _ = writeln!(out, "note      {} snapshot ticks were missed by the writer", r.missed_ticks);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::RunOptions;
    use crate::metrics::Snapshot;
    use crate::report::{EndedBy, ModelReport, RunConfig};
    use crate::settings::Settings;

    /// A broker controller with no workers of its own and nodes that served the run says both.
    #[test]
    fn a_broker_runs_header_counts_the_nodes_workers() {
        let s = Settings { workers: 0, threads: 1, ..Settings::default() };
        let last = Snapshot::initial(s.clone());
        let mut r = RunSummary::new(&last, RunConfig::new(&s, &RunOptions::default()), EndedBy::Duration, 0);
        assert!(render(&r).contains("(poisson 500 /s, 0 workers, queue"), "{}", render(&r));
        r.nodes = Some(Vec::new());
        let mut m = ModelReport::not_compared(String::new());
        m.inputs = Some(crate::report::compare::ModelInputs {
            rate_per_s: 500.0,
            service_ms_mean: 5.0,
            workers: 4,
            queue: None,
            arrival_cv: 1.0,
            service_cv: 1.0,
            clients: None,
            think_ms: None,
            jobs: None,
            burst_on_ms: None,
            burst_off_ms: None,
        });
        r.model = Some(m);
        assert!(render(&r).contains("0 workers here, 4 with the worker nodes"), "{}", render(&r));
    }
}
