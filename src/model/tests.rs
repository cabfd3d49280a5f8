//! The model against published values and its own properties.

use super::advisor::{self, Target};
use super::*;

fn rel(a: f64, b: f64) -> f64 {
    ((a - b) / b).abs()
}

#[test]
fn mm1_matches_the_textbook() {
    // M/M/1 (Kleinrock, Queueing Systems Vol. 1, §3.2): Wq = ρ/(μ − λ), W = 1/(μ − λ),
    // and T is exponential with rate μ − λ, so its p99 is ln(100)/(μ − λ).
    let p = predict(&Inputs::mmc(700.0, 0.001, 1)).unwrap();
    let (mu, lambda) = (1000.0, 700.0);
    assert!(rel(p.wait_ms_mean.unwrap(), 0.7 / (mu - lambda) * 1e3) < 1e-12);
    assert!(rel(p.latency_ms_mean.unwrap(), 1e3 / (mu - lambda)) < 1e-12);
    assert!(rel(p.latency_ms_p99.unwrap(), 100f64.ln() / (mu - lambda) * 1e3) < 1e-6);
    assert!(rel(p.p_wait.unwrap(), 0.7) < 1e-12);
}

#[test]
fn the_percentile_curve_of_mm1_is_exponential() {
    // T ~ Exp(μ − λ): its p-quantile is −ln(1 − p)/(μ − λ), at every point of the plot.
    let ps = [50.0, 90.0, 99.0, 99.9, 99.99];
    let curve = latency_percentiles(&Inputs::mmc(700.0, 0.001, 1), &ps).unwrap().unwrap();
    for (p, got) in ps.iter().zip(curve) {
        let want = -(1.0 - p / 100.0_f64).ln() / 300.0 * 1e3;
        assert!(rel(got, want) < 1e-5, "p{p}: {got} ms, expected {want} ms");
    }
    // An unstable pool has no distribution.
    assert_eq!(latency_percentiles(&Inputs::mmc(1200.0, 0.001, 1), &ps).unwrap(), None);
}

#[test]
fn mmc_check_values() {
    // Check value (see the module docs): c = 3, a = 2 gives C = 4/9; Wq = C/(cμ − λ).
    let p = predict(&Inputs::mmc(2.0, 1.0, 3)).unwrap();
    assert!(rel(p.p_wait.unwrap(), 4.0 / 9.0) < 1e-12);
    assert!(rel(p.wait_ms_mean.unwrap(), 4.0 / 9.0 * 1e3) < 1e-12);
    // Little's law holds inside the model.
    assert!(rel(p.queue_len_mean.unwrap(), 2.0 * 4.0 / 9.0) < 1e-12);
    // The wait's p99 solves C·e^(−(cμ−λ)t) = 0.01.
    assert!(rel(p.wait_ms_p99.unwrap(), (4.0 / 9.0 / 0.01f64).ln() * 1e3) < 1e-12);
}

#[test]
fn md1_is_half_the_mm1_wait() {
    // Pollaczek–Khinchine: deterministic service halves the M/M/1 wait, Wq = ρ·E[S]/(2(1 − ρ)).
    let i = Inputs { service_cv: 0.0, service_dist: ServiceDist::Constant, ..Inputs::mmc(500.0, 0.001, 1) };
    let p = predict(&i).unwrap();
    assert!(p.exact);
    assert!(rel(p.wait_ms_mean.unwrap(), 0.5 * 0.001 / (2.0 * 0.5) * 1e3) < 1e-12);
}

#[test]
fn mmck_tends_to_mmc_and_rejects_at_overload() {
    let open = predict(&Inputs::mmc(3000.0, 0.001, 4)).unwrap();
    let bounded = predict(&Inputs { queue: Some(100_000), ..Inputs::mmc(3000.0, 0.001, 4) }).unwrap();
    assert!(rel(bounded.wait_ms_mean.unwrap(), open.wait_ms_mean.unwrap()) < 1e-9);
    assert!(bounded.p_reject.unwrap() < 1e-12);
    let over = predict(&Inputs { queue: Some(50), ..Inputs::mmc(8000.0, 0.001, 4) }).unwrap();
    // ρ = 2: about half the arrivals are refused and throughput sits at capacity.
    assert!(rel(over.p_reject.unwrap(), 0.5) < 1e-6);
    assert!(rel(over.throughput_per_s, 4000.0) < 1e-6);
}

#[test]
fn properties_hold_over_a_grid() {
    for c in [1u32, 2, 3, 8, 50, 1000] {
        let mut last_wait = 0.0;
        for k in 1..100 {
            let rho = f64::from(k) / 100.0;
            let i = Inputs::mmc(rho * f64::from(c) / 0.002, 0.002, c);
            let p = predict(&i).unwrap();
            let pw = p.p_wait.unwrap();
            assert!((0.0..=1.0).contains(&pw), "c {c} ρ {rho}: {pw}");
            let w = p.wait_ms_mean.unwrap();
            assert!(w >= last_wait, "wait must grow with λ (c {c}, ρ {rho})");
            last_wait = w;
            for v in [p.latency_ms_p50, p.latency_ms_p90, p.latency_ms_p99].into_iter().flatten() {
                assert!(v.is_finite() && v >= 0.0);
            }
            assert!(p.latency_ms_p50 <= p.latency_ms_p90 && p.latency_ms_p90 <= p.latency_ms_p99);
        }
    }
}

#[test]
fn huge_pools_near_saturation_are_finite() {
    let p = predict(&Inputs::mmc(9_999.0 / 0.01, 0.01, 10_000)).unwrap();
    for v in [p.p_wait, p.wait_ms_mean, p.latency_ms_p99, p.queue_len_mean] {
        assert!(v.unwrap().is_finite());
    }
}

#[test]
fn unstable_says_so_without_numbers() {
    let p = predict(&Inputs::mmc(5000.0, 0.001, 4)).unwrap();
    assert!(!p.stable);
    assert!(rel(p.growth_per_s.unwrap(), 1000.0) < 1e-12);
    assert!(rel(p.throughput_per_s, 4000.0) < 1e-12, "an unstable pool completes its capacity");
    assert!(p.wait_ms_mean.is_none() && p.latency_ms_p99.is_none());
    let json = serde_json::to_string(&p).unwrap();
    assert!(!json.contains("NaN") && !json.contains("inf"), "{json}");
}

#[test]
fn bad_inputs_are_refused_with_reasons() {
    for (i, want) in [
        (Inputs::mmc(-1.0, 0.001, 1), "rate -1"),
        (Inputs::mmc(f64::NAN, 0.001, 1), "rate NaN"),
        (Inputs::mmc(10.0, 0.0, 1), "more than zero"),
        (Inputs::mmc(10.0, 0.001, 0), "workers 0"),
    ] {
        let ModelError::Invalid(msg) = predict(&i).unwrap_err();
        assert!(msg.contains(want), "{msg}");
    }
}

#[test]
fn advisor_finds_the_smallest_pool_and_the_highest_rate() {
    let i = Inputs::mmc(2000.0, 0.004, 1);
    let t = Target::P99(0.020);
    let n = advisor::workers_needed(&i, t).unwrap();
    let p99 = |c: u32| predict(&Inputs { workers: c, ..i }).ok().and_then(|p| p.latency_ms_p99);
    assert!(p99(n).unwrap() <= 20.0);
    assert!(p99(n - 1).is_none_or(|v| v > 20.0), "{n} is not the smallest");
    let r = advisor::max_rate(&Inputs { workers: n, ..i }, t).unwrap();
    assert!(r >= 2000.0 && r < f64::from(n) / 0.004);
    let at = predict(&Inputs { workers: n, rate: r, ..i }).unwrap().latency_ms_p99.unwrap();
    assert!((at - 20.0).abs() < 0.01, "{at}");
}

#[test]
fn advisor_says_why_when_nothing_helps() {
    let i = Inputs::mmc(100.0, 0.030, 4);
    let a = advisor::advise(&i, Target::Mean(0.020));
    assert!(a.workers_needed.is_none());
    assert!(a.workers_reason.unwrap().contains("service time alone"));
    assert!(a.max_rate.is_none());
}
