//! The closed-loop model against mean value analysis and an exact simulation.

use super::*;

fn closed(clients: u64, think: f64, workers: u32, service: f64) -> Closed {
    Closed {
        clients,
        think,
        workers,
        queue: None,
        service_mean: service,
        service_cv: 1.0,
        service_dist: ServiceDist::Exponential,
    }
}

/// Mean value analysis by hand: 1 worker, N = 2, Z = 1/μ: X = 0.8μ, R = 1.5/μ.
#[test]
fn two_clients_on_one_worker_match_mean_value_analysis() {
    let p = predict(&closed(2, 0.01, 1, 0.01));
    assert!((p.throughput_per_s - 80.0).abs() < 1e-9, "{}", p.throughput_per_s);
    assert!((p.latency_ms_mean.unwrap() - 15.0).abs() < 1e-9);
    assert!((p.rho - 0.8).abs() < 1e-12);
    // An arrival finds the other client in the pool with probability (2·p0 + 1·p1)… weights
    // (N − n)·pₙ = (2, 2, 0)/5, so half the arrivals wait.
    assert!((p.p_wait.unwrap() - 0.5).abs() < 1e-12);
}

/// A single client never waits, and the loop runs at 1/(Z + S).
#[test]
fn one_client_never_waits() {
    let p = predict(&closed(1, 0.010, 4, 0.005));
    assert!((p.throughput_per_s - 1.0 / 0.015).abs() < 1e-9);
    assert!(p.wait_ms_mean.unwrap().abs() < 1e-12);
    assert_eq!(p.wait_ms_p99, Some(0.0));
}

/// 100,000 clients neither overflow nor underflow: the pool saturates at c·μ.
#[test]
fn many_clients_saturate_the_pool() {
    let p = predict(&closed(100_000, 0.01, 8, 0.005));
    assert!((p.throughput_per_s / 1600.0 - 1.0).abs() < 1e-6, "{}", p.throughput_per_s);
    assert!(p.latency_ms_mean.unwrap().is_finite() && p.latency_ms_p99.unwrap().is_finite());
}

/// With zero think time every client is always in the pool.
#[test]
fn zero_think_keeps_every_client_in_the_pool() {
    let p = predict(&closed(8, 0.0, 4, 0.005));
    assert!((p.throughput_per_s - 800.0).abs() < 1e-9);
    assert!((p.latency_ms_mean.unwrap() - 10.0).abs() < 1e-9, "8 in the pool at 800/s");
}

/// Against an exact event-by-event simulation of the same loop (8 clients, 10 ms think, 4
/// workers, 5 ms service; 400,000 jobs in 20 stretches): throughput, mean response and p99 of
/// the wait each within 4 standard errors of the stretches' mean (their spread over √20).
#[test]
fn eight_clients_match_a_simulation() {
    use crate::model::simulate::{LoopStats, closed_loop, spread};
    type Stat = fn(&LoopStats) -> f64;
    let stats = closed_loop((8, 0.010, 4, 0.005), 1000, 20_000, 20, 7);
    let p = predict(&closed(8, 0.010, 4, 0.005));
    let checks: [(&str, f64, Stat); 3] = [
        ("throughput", p.throughput_per_s, |s| s.throughput_per_s),
        ("mean response", p.latency_ms_mean.unwrap(), |s| s.response_ms_mean),
        ("wait p99", p.wait_ms_p99.unwrap(), |s| s.wait_ms_p99),
    ];
    for (what, want, f) in checks {
        let (m, sd) = spread(&stats, f);
        let se = sd / (stats.len() as f64).sqrt();
        assert!((want - m).abs() <= 4.0 * se, "{what}: model {want:.4}, simulated {m:.4} ± {se:.4}");
    }
}

/// Under `reject` with a bound, a full pool refuses: 2 clients, 1 worker, no waiting place.
#[test]
fn a_bound_refuses_what_does_not_fit() {
    let p = predict(&Closed { queue: Some(0), ..closed(2, 0.01, 1, 0.01) });
    // States 0, 1 only: p1/p0 = 2 → p = (1/3, 2/3); X = 2μ/3; arrivals see (2·1/3, 1·2/3):
    // half are refused.
    assert!((p.throughput_per_s - 200.0 / 3.0).abs() < 1e-9);
    assert!((p.p_reject.unwrap() - 0.5).abs() < 1e-12);
    assert!(p.wait_ms_mean.unwrap().abs() < 1e-12);
}
