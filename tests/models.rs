//! The engine against the models of batches, closed loops and bursts (the open-loop models are
//! judged in `theory.rs`): each run's prediction, as the JSON and the dashboard show it (the model
//! fed the run's measured service), against what the run measured.

mod common;

use std::time::Duration;

use common::{assert_accounted, exclusive, run_for, settings};
use pooltune::engine::{EngineHandle, RunOptions};
use pooltune::model::bursty::{self, Bursty};
use pooltune::model::simulate::{LoopStats, closed_loop, spread};
use pooltune::model::{Inputs, Prediction};
use pooltune::report::model_report;
use pooltune::settings::{ArrivalKind, Policy, Rate, ServiceDist, Settings};

fn predicted(last: &pooltune::metrics::Snapshot) -> Prediction {
    let r = model_report(last, None);
    let p = r.predicted.unwrap_or_else(|| panic!("no prediction: {:?}", r.reason));
    eprintln!("model: {}{}; compared: {:?}", p.method, if p.exact { "" } else { " (approximate)" }, r.compared);
    p
}

/// The seed's batch: 100 jobs on 5 workers, constant 20 ms. The model (exact for constant
/// service: 400 ms and 210 ms at exactly 20 ms) is fed the measured service mean S̄. The
/// measured mean response is Σ wⱼ·Sⱼ / N, job j's service counted once for itself and once for
/// each later job on its worker (wⱼ = 20, 19, …, 1 by round), against the model's 10.5·S̄; the
/// difference is the covariance of wⱼ and Sⱼ, which whatever the order of the services is at
/// most sd(w)·sd(S) = √((20² − 1)/12)·σₛ = 5.77·σₛ (Cauchy–Schwarz), σₛ the measured
/// service spread. (It is not 0: the first round's services run longest here, the timer waking
/// from idle, and count 20 times.) Allowed on top: the measured lag and each worker's first
/// hand-off (which delays all 20 of its jobs), real time a job spends that the model leaves out.
#[test]
fn the_seed_batch_is_predicted_exactly() {
    let _g = exclusive();
    let s = Settings {
        workers: 5,
        arrival: ArrivalKind::Batch,
        jobs: Some(100),
        queue: 100,
        service: Duration::from_millis(20),
        service_dist: ServiceDist::Constant,
        ..settings()
    };
    let last = EngineHandle::start(s, RunOptions { interval: Duration::from_millis(20), ..Default::default() })
        .unwrap()
        .join();
    assert_accounted(&last);
    let p = predicted(&last);
    assert!(p.exact && p.method == "batch, constant service", "{}", p.method);
    let m = &last.measured;
    let svc = m.latency.service.mean;
    let bound = ((20.0f64 * 20.0 - 1.0) / 12.0).sqrt() * m.service_cv * svc;
    // Each worker's first hand-off delays all 20 of its jobs, and the later ones have none (a
    // worker goes from one job to the next on one clock read): 20 × the mean hand-off.
    let overhead = m.lag_us.mean / 1e3 + 20.0 * m.handoff_us.mean / 1e3;
    let want = p.latency_ms_mean.unwrap();
    assert!((want - 10.5 * svc).abs() < 1e-9, "the model is 10.5 services");
    let got = m.latency.response.mean;
    eprintln!("mean response {got:.3} ms against {want:.3} (allowed ±{bound:.3}, + {overhead:.3})");
    assert!(got >= want - bound && got <= want + overhead + bound, "mean response {got} ms against {want} ms");
    // The last job ends after 20 services on its worker: at least 20 × the shortest, at most the
    // lag plus 20 × the longest service and the longest hand-off (all measured).
    let last_job = m.latency.response.max;
    let s = &m.latency.service;
    assert!((p.makespan_ms.unwrap() - 20.0 * svc).abs() < 1e-9);
    assert!(last_job >= 20.0 * s.p50.min(s.mean) * 0.999, "last job at {last_job} ms, before 20 services");
    assert!(
        last_job <= m.lag_us.max / 1e3 + 20.0 * (s.max + m.handoff_us.max / 1e3) + 0.001,
        "last job at {last_job} ms"
    );
    // The median job (the 50th or 51st) ends in round 10 or 11.
    let p50 = m.latency.response.p50;
    assert!((p50 / s.mean - 10.5).abs() <= 1.0, "median at {p50} ms = {} services", p50 / s.mean);
}

/// A closed loop (8 clients, 10 ms exponential think, 4 workers, 5 ms exponential service),
/// against M/M/c//N fed the measured service mean and think time (fed the configured 10 ms, the
/// throughput sat 1.6–6.9% low here: every think runs a little long). The tolerance is the run length's: 4
/// standard deviations of each statistic over 200 exact simulations of the same loop with as
/// many jobs as the run measured.
#[test]
fn a_closed_loop_matches_the_finite_source_model() {
    let _g = exclusive();
    let s = Settings {
        workers: 4,
        arrival: ArrivalKind::Closed,
        clients: 8,
        think: Duration::from_millis(10),
        service: Duration::from_millis(5),
        queue: 100,
        seed: 3,
        ..settings()
    };
    let last = run_for(s, Duration::from_secs(6), Duration::from_secs(1));
    assert_accounted(&last);
    let p = predicted(&last);
    assert!(p.method.contains("closed loop"), "{}", p.method);
    let m = &last.measured;
    let n = m.jobs.completed as usize;
    let svc = m.latency.service.mean / 1e3;
    // The model is fed the think time the clients really spent (the timer runs each a little long).
    let think = m.think_ms_mean.expect("a closed loop measures its think times") / 1e3;
    eprintln!("think: configured 10 ms, measured {:.4} ms", think * 1e3);
    let runs: Vec<_> = (0..200).flat_map(|seed| closed_loop((8, think, 4, svc), 500, n, 1, seed)).collect();
    for (what, want, got, f) in [
        ("throughput /s", p.throughput_per_s, m.throughput_per_s, (|s| s.throughput_per_s) as fn(&LoopStats) -> f64),
        ("mean response ms", p.latency_ms_mean.unwrap(), m.latency.response.mean, |s| s.response_ms_mean),
    ] {
        let (_, sd) = spread(&runs, f);
        eprintln!(
            "{what}: measured {got:.4}, model {want:.4} ({:+.1}%), allowed ±{:.4}",
            (got / want - 1.0) * 100.0,
            4.0 * sd
        );
        assert!((got - want).abs() <= 4.0 * sd, "{what}: measured {got}, model {want}, allowed ±{}", 4.0 * sd);
    }
}

/// The default bursty workload (`--rate 500 --workers 4 --service 5ms`, 200 ms on, 800 ms off)
/// overloads the pool in each burst: the fluid model's mean wait and p99 wait, each within the
/// error the model states (2 standard deviations of a burst's backlog), over 10 bursts.
#[test]
fn bursts_are_within_the_error_the_model_states() {
    let _g = exclusive();
    let s = Settings {
        workers: 4,
        arrival: ArrivalKind::Bursty,
        rate: Rate::PerSec(500.0),
        service: Duration::from_millis(5),
        queue: 100_000,
        policy: Policy::Reject,
        seed: 5,
        ..settings()
    };
    let (on, off) = (s.burst_on.as_secs_f64(), s.burst_off.as_secs_f64());
    let last = run_for(s, Duration::from_secs(10), Duration::from_secs(1));
    assert_accounted(&last);
    let p = predicted(&last);
    assert!(!p.exact && p.method.contains("fluid"), "{}", p.method);
    let m = &last.measured;
    let b = Bursty { base: Inputs::mmc(m.offered_per_s, m.latency.service.mean / 1e3, 4), on, off };
    let stated = bursty::error_s(&b) * 1e3;
    assert!(p.note.as_deref().is_some_and(|n| n.contains(&format!("±{stated:.0} ms"))), "{:?}", p.note);
    for (what, want, got) in [
        ("mean wait", p.wait_ms_mean.unwrap(), m.latency.wait.mean),
        ("p99 wait", p.wait_ms_p99.unwrap(), m.latency.wait.p99),
    ] {
        eprintln!(
            "{what}: measured {got:.1} ms, model {want:.1} ms ({:+.1} ms), stated error ±{stated:.1} ms",
            got - want
        );
        assert!((got - want).abs() <= stated, "{what}: measured {got} ms, model {want} ms, stated ±{stated} ms");
    }
}

/// A run drawing from a sample is modelled with the sample's CV: the snapshot names the sample,
/// and the measured CV (1% above the sample's, within noise over 4,000 jobs) snaps to it; the
/// `service_cv` knob (1) plays no part.
#[test]
fn an_empirical_run_is_modelled_with_its_samples_cv() {
    use pooltune::model::sample::ServiceSample;
    // 1 ms × 97 and 41 ms × 3: mean 2.2 ms, cv √(51.4 − 2.2²) / 2.2 = 3.10.
    let values: Vec<u64> = (0..100).map(|k| if k < 97 { 1_000_000 } else { 41_000_000 }).collect();
    let sample = std::sync::Arc::new(ServiceSample::from_values("s", values).unwrap());
    let mut s = pooltune::metrics::Snapshot::initial(Settings {
        rate: Rate::PerSec(100.0),
        service: Duration::from_micros(2200),
        service_dist: ServiceDist::Empirical,
        ..Settings::default()
    });
    s.service_sample = Some(sample.clone());
    let m = &mut s.measured;
    m.duration_s = 40.0;
    (m.offered_per_s, m.throughput_per_s, m.arrival_cv) = (100.0, 100.0, 1.0);
    m.latency.service = pooltune::metrics::Summary { count: 4000, mean: 2.2, ..Default::default() };
    m.latency.response = pooltune::metrics::Summary { count: 4000, mean: 3.0, ..Default::default() };
    m.service_cv = sample.cv() * 1.01;
    let r = model_report(&s, None);
    let cv = r.inputs.expect("compared").service_cv;
    assert!((cv - sample.cv()).abs() < 1e-12, "the sample's cv {}, got {cv}", sample.cv());
}
