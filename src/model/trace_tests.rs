//! The trace simulation against hand-worked replays, the policies at a full bound, speed, and
//! Erlang C on a long Poisson trace; the searches on a burst the Poisson model misjudges.

// Exact comparisons on purpose: every figure here is whole milliseconds in exact f64 arithmetic.
#![allow(clippy::float_cmp)]

use super::*;
use crate::model::trace_search::{fewest_workers, highest_speed, poisson_fewest_workers};
use crate::model::{erlang, predict};

const MS: u64 = 1_000_000;

fn inputs<'a>(arrivals: &'a [u64], service: &'a [u64], workers: u32) -> TraceInputs<'a> {
    TraceInputs {
        arrivals,
        speed: 1.0,
        service: Service::PerArrival(service),
        workers,
        queue: None,
        policy: Policy::Block,
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1.0)
}

/// One worker; arrivals at 0, 1, 5 ms needing 3, 3, 1 ms.
/// Job 0 runs 0–3 (wait 0, response 3); job 1 waits 1→3, runs 3–6 (wait 2, response 5);
/// job 2 waits 5→6, runs 6–7 (wait 1, response 2). Responses {2, 3, 5}: mean 10/3, nearest
/// rank p50 = 2nd = 3, p90 = p99 = 3rd = 5. Waits {0, 1, 2}: mean 1, p50 1, max 2. Span 0–7 ms:
/// busy 7/7 = 1, queue 3 ms of waiting / 7 ms = 3/7, throughput 3 / 7 ms = 428.57/s.
#[test]
fn single_server_three_arrivals() {
    let i = inputs(&[0, MS, 5 * MS], &[3 * MS, 3 * MS, MS], 1);
    let s = simulate(&i);
    assert_eq!((s.offered, s.completed, s.rejected, s.dropped), (3, 3, 0, 0));
    // The percentile plot's points, by the same nearest rank: 0 is the shortest.
    assert_eq!(latency_percentiles(&i, 5, &[0.0, 50.0, 66.0, 67.0, 99.0, 100.0]), [2.0, 3.0, 3.0, 5.0, 5.0, 5.0]);
    let r = s.response_ms;
    assert!(close(r.mean, 10.0 / 3.0) && r.p50 == 3.0 && r.p90 == 5.0 && r.p99 == 5.0 && r.max == 5.0, "{r:?}");
    let w = s.wait_ms;
    assert!(w.mean == 1.0 && w.p50 == 1.0 && w.p99 == 2.0 && w.max == 2.0, "{w:?}");
    assert!(close(s.busy, 1.0) && close(s.queue_len_mean, 3.0 / 7.0) && close(s.span_s, 0.007));
    assert!(close(s.throughput_per_s, 3.0 / 0.007) && close(s.p_wait, 2.0 / 3.0));
}

/// Two workers, four jobs of 10 ms at t = 0: jobs 0, 1 run 0–10, jobs 2, 3 wait 10 and run
/// 10–20. Responses {10, 10, 20, 20}: mean 15, p50 = 2nd = 10, p90 = 4th = 20; waits mean 5.
/// Span 20 ms: busy 40 / (2·20) = 1; queue (10 + 10) / 20 = 1.
#[test]
fn simultaneous_arrivals_on_two_workers() {
    let s = simulate(&inputs(&[0; 4], &[10 * MS; 4], 2));
    let r = s.response_ms;
    assert!(r.mean == 15.0 && r.p50 == 10.0 && r.p90 == 20.0 && r.max == 20.0, "{r:?}");
    assert!(s.wait_ms.mean == 5.0 && close(s.busy, 1.0) && close(s.queue_len_mean, 1.0), "{s:?}");
    // The linear scan and the heap (above SCAN_MAX workers) agree.
    let (a, sv) = ([0; 40], [10 * MS; 40]);
    let small = simulate(&inputs(&a[..4], &sv[..4], 2));
    let wide = simulate(&inputs(&a, &sv, 20));
    assert_eq!((small.response_ms, wide.response_ms), (r, r));
}

/// One worker, K = 1, arrivals at 0, 1, 2, 3 ms needing 10 ms each.
#[test]
fn a_full_bound_under_each_policy() {
    let (a, s) = ([0, MS, 2 * MS, 3 * MS], [10 * MS; 4]);
    let with = |policy, k| simulate(&TraceInputs { queue: Some(k), policy, ..inputs(&a, &s, 1) });
    // Reject: job 0 runs 0–10; job 1 takes the place and runs 10–20 (response 19); jobs 2 and 3
    // find the worker busy and job 1 waiting: refused.
    let r = with(Policy::Reject, 1);
    assert_eq!((r.completed, r.rejected, r.dropped), (2, 2, 0));
    assert!(r.response_ms.mean == 14.5 && r.response_ms.max == 19.0, "{r:?}");
    // K = 0: every arrival finding the worker busy is refused.
    assert_eq!(with(Policy::Reject, 0).rejected, 3);
    // Drop-oldest: job 2 evicts job 1 (waited 1 ms), job 3 evicts job 2 (1 ms); job 3 runs 10–20
    // (response 17). Queue: 1 + 1 + 7 ms over a 20 ms span = 0.45.
    let d = with(Policy::DropOldest, 1);
    assert_eq!((d.completed, d.rejected, d.dropped), (2, 0, 2));
    assert!(d.response_ms.mean == 13.5 && d.response_ms.max == 17.0 && close(d.queue_len_mean, 0.45), "{d:?}");
    assert_eq!(with(Policy::DropOldest, 0).dropped, 3);
    // Block: the unbounded queue's responses 10, 19, 28, 37. Job j enters at max(a(j), s(j−1)):
    // job 1 at 1 (queued 9), job 2 at 10 (held 8, queued 10), job 3 at 20 (held 17, queued 10).
    // Span 40: queue 29/40, held 25/40; together the unbounded queue's (9 + 18 + 27)/40.
    let b = with(Policy::Block, 1);
    let u = simulate(&inputs(&a, &s, 1));
    assert_eq!((b.response_ms, b.wait_ms, b.completed), (u.response_ms, u.wait_ms, 4));
    assert!(b.response_ms.max == 37.0 && close(b.queue_len_mean, 0.725) && close(b.held_mean, 0.625), "{b:?}");
    assert!(close(u.queue_len_mean, 1.35) && u.held_mean == 0.0);
    // K = 0: every wait is held.
    let b0 = with(Policy::Block, 0);
    assert!(b0.queue_len_mean == 0.0 && close(b0.held_mean, 1.35) && b0.response_ms == u.response_ms);
}

/// Speed 2 replays arrivals at half their offsets; with service halved too, every time halves
/// and throughput doubles.
#[test]
fn speed_scales_arrival_times() {
    let a: Vec<u64> = (0..50).map(|k| k * k * 300_000).collect();
    let half: Vec<u64> = a.iter().map(|x| x / 2).collect();
    let (s, s2) = (vec![7 * MS; 50], vec![7 * MS / 2; 50]);
    let fast = simulate(&TraceInputs { speed: 2.0, ..inputs(&a, &s, 2) });
    assert_eq!(fast, simulate(&inputs(&half, &s, 2)));
    let (one, two) = (simulate(&inputs(&a, &s, 2)), simulate(&TraceInputs { speed: 2.0, ..inputs(&a, &s2, 2) }));
    assert!(close(two.response_ms.p99 * 2.0, one.response_ms.p99) && close(two.wait_ms.mean * 2.0, one.wait_ms.mean));
    assert!(close(two.throughput_per_s, 2.0 * one.throughput_per_s) && close(two.busy, one.busy));
}

/// Poisson arrivals (λ = 140/s) on 2 workers with exponential service of 10 ms drawn by the
/// simulation: M/M/2 at ρ = 0.7, where Erlang C gives C = 0.5765 and W = 10 + C/(200 − 140) s
/// = 19.61 ms. Tolerance from the run length: R = 20 independent traces of n = 50,000 jobs
/// (arrivals and service seeds differ); the mean of their mean responses has standard error
/// SD/√R, measured from the runs themselves, and the test allows 4 of them (t₀.₉₉₉ with 19
/// degrees of freedom is 3.88) plus the start-empty bias, under 0.5% at 50,000 jobs (the
/// relaxation time at ρ = 0.7 is about 1/(μ(1 − √ρ)²) ≈ 0.4 s ≈ 60 jobs).
#[test]
fn poisson_trace_matches_erlang_c() {
    use rand::SeedableRng;
    use rand::rngs::SmallRng;
    use rand_distr::{Distribution, Exp};
    let (lambda, es, n, reps) = (140.0, 0.010, 50_000, 20);
    let exp = Exp::new(lambda).unwrap();
    let means: Vec<f64> = (0..reps)
        .map(|r| {
            let mut rng = SmallRng::seed_from_u64(1000 + r);
            let mut t = 0.0_f64;
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let arrivals: Vec<u64> = (0..n)
                .map(|_| {
                    t += exp.sample(&mut rng);
                    (t * 1e9).round() as u64
                })
                .collect();
            let service =
                Service::Drawn { mean: es, cv: 1.0, dist: ServiceDist::Exponential, seed: 7 + r, sample: None };
            let i = TraceInputs {
                arrivals: &arrivals,
                speed: 1.0,
                service,
                workers: 2,
                queue: None,
                policy: Policy::Block,
            };
            simulate(&i).response_ms.mean
        })
        .collect();
    let rf = f64::from(u32::try_from(reps).unwrap());
    let mean = means.iter().sum::<f64>() / rf;
    let se = (means.iter().map(|m| (m - mean).powi(2)).sum::<f64>() / (rf - 1.0) / rf).sqrt();
    let c = erlang::erlang_c(2, lambda * es);
    let theory = predict(&Inputs::mmc(lambda, es, 2)).unwrap().latency_ms_mean.unwrap();
    assert!((theory - (es + c / (200.0 - lambda)) * 1e3).abs() < 1e-9 && (theory - 19.608).abs() < 0.01);
    assert!(
        (mean - theory).abs() <= 4.0 * se + 0.005 * theory,
        "simulated {mean:.3} ms ± {se:.3}, Erlang C {theory:.3}"
    );
}

/// Replications vary only the drawn service; their interval covers the mean of many more.
#[test]
fn replications_give_a_student_t_interval() {
    let a: Vec<u64> = (0..2000).map(|k| k * 9 * MS).collect();
    let service = Service::Drawn { mean: 0.010, cv: 1.0, dist: ServiceDist::Exponential, seed: 1, sample: None };
    let i = TraceInputs { arrivals: &a, speed: 1.0, service, workers: 1, queue: None, policy: Policy::Block };
    let (m, h) = replicate(&i, 10);
    let (big, _) = replicate(&i, 200);
    assert_eq!((h.reps, m.offered), (10, 2000));
    assert!(h.response_ms.mean > 0.0 && (m.response_ms.mean - big.response_ms.mean).abs() < 1.5 * h.response_ms.mean);
    assert!((t975(9) - 2.262).abs() < 1e-9 && (t975(31) - 2.040).abs() < 1e-3 && (t975(1000) - 1.962).abs() < 1e-3);
    let (one, h1) = replicate(&inputs(&a[..3], &[MS; 3], 1), 5);
    assert_eq!((h1.reps, h1.response_ms.mean, one.completed), (1, 0.0, 3));
}

/// 50 bursts of 200 jobs at one instant, 2 s apart, each needing 10 ms. With c workers job k of
/// a burst (0-based) ends at (⌊k/c⌋ + 1)·10 ms, and bursts never overlap. p99 over 10,000 jobs
/// is the 9,900th smallest: in every burst, the 198th (k = 197). It is ≤ 100 ms when ⌊197/c⌋ ≤
/// 9: c = 20 (⌊197/19⌋ = 10 gives 110 ms at 19). The Poisson fit: λ = 10,000 / 98 s = 102/s,
/// a = 1.02, constant service: two workers meet 100 ms with room to spare.
#[test]
fn a_burst_needs_more_workers_than_poisson_says() {
    let a: Vec<u64> = (0..10_000u64).map(|j| j / 200 * 2_000 * MS).collect();
    let s = vec![10 * MS; a.len()];
    let i = inputs(&a, &s, 1);
    let n = fewest_workers(&i, 100.0, 1000).unwrap();
    assert_eq!((n.workers, n.p99_ms, n.p99_ms_fewer, n.p99_ms_more), (20, 100.0, Some(110.0), 100.0), "{n:?}");
    assert!(n.simulations <= 12, "{n:?}");
    assert!(fewest_workers(&i, 5.0, 1000).is_none());
    let fit = poisson_equivalent(&i);
    assert!(close(fit.rate, 10_000.0 / 98.0) && close(fit.service_mean, 0.01) && fit.service_cv == 0.0);
    assert_eq!(poisson_fewest_workers(&i, 100.0), Ok(2));
    // 20 workers clear a burst in 100 ms: at speed 20 bursts come 100 ms apart and still meet it.
    let v = highest_speed(&TraceInputs { workers: 20, ..i }, 100.0).unwrap();
    assert!((20.0 / 1.02..=20.0).contains(&v), "{v}");
    assert_eq!(highest_speed(&TraceInputs { workers: 19, ..i }, 100.0), None);
    let p = simulate(&TraceInputs { workers: 20, ..i }).prediction(&i);
    assert_eq!((p.method, p.exact, p.latency_ms_p99), ("trace simulation (exact, FIFO)", true, Some(100.0)));
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    /// A short trace with ties: gaps of 0–4 ms (0 a fifth of the time), service 0–12 ms.
    fn trace() -> impl Strategy<Value = (Vec<u64>, Vec<u64>)> {
        proptest::collection::vec((0u64..5, 0u64..13), 1..60).prop_map(|v| {
            let mut t = 0;
            v.into_iter()
                .map(|(g, s)| {
                    t += g * MS;
                    (t, s * MS)
                })
                .unzip()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

        /// Block at any bound keeps the unbounded queue's waits, and splits its queue length
        /// into places and held jobs; the waits never grow with another worker (module doc of
        /// `trace_search`); every arrival is completed, refused or dropped, and refusing or
        /// dropping serves a subsequence of the jobs first come first served, whose waits are
        /// no longer (the same argument, with a job taken away instead of a worker added).
        #[test]
        fn policies_keep_their_invariants((a, s) in trace(), c in 1u32..7, k in 0u64..5) {
            let unbounded = simulate(&inputs(&a, &s, c));
            let with = |policy| simulate(&TraceInputs { queue: Some(k), policy, ..inputs(&a, &s, c) });
            let b = with(Policy::Block);
            prop_assert_eq!((b.response_ms, b.wait_ms, b.completed), (unbounded.response_ms, unbounded.wait_ms, unbounded.completed));
            prop_assert!((b.queue_len_mean + b.held_mean - unbounded.queue_len_mean).abs() < 1e-9);
            let more = simulate(&inputs(&a, &s, c + 1));
            prop_assert!(more.response_ms.p99 <= unbounded.response_ms.p99 && more.wait_ms.max <= unbounded.wait_ms.max);
            for p in [Policy::Reject, Policy::DropOldest] {
                let r = with(p);
                prop_assert_eq!(r.completed + r.rejected + r.dropped, r.offered);
                prop_assert!(r.wait_ms.max <= unbounded.wait_ms.max + 1e-9);
            }
        }

        /// With one service time for all, reject and drop-oldest lose the same number of jobs:
        /// the number in the system follows the same path (an arrival at a full system leaves it
        /// unchanged either way, and workers free at the same instants).
        #[test]
        fn constant_service_loses_alike((a, _) in trace(), c in 1u32..5, k in 0u64..4, ms in 1u64..8) {
            let s = vec![ms * MS; a.len()];
            let with = |policy| simulate(&TraceInputs { queue: Some(k), policy, ..inputs(&a, &s, c) });
            let (r, d) = (with(Policy::Reject), with(Policy::DropOldest));
            prop_assert_eq!((r.rejected, r.completed), (d.dropped, d.completed));
        }
    }
}

/// Drawn from an empirical sample, scaled to the mean asked: with arrivals 100 ms apart on one
/// worker nothing waits, so each response is one draw. A sample of 2 and 4 ms scaled to a mean
/// of 6 ms gives exactly 4 and 8 ms, about half each; the fitted model takes the sample's CV
/// (1/3), not the knob's.
#[test]
fn drawn_service_comes_from_the_sample_scaled() {
    let sample = crate::model::sample::ServiceSample::from_values("s", vec![2 * MS, 4 * MS]).unwrap();
    let a: Vec<u64> = (0..1000).map(|k| k * 100 * MS).collect();
    let service = Service::Drawn { mean: 0.006, cv: 5.0, dist: ServiceDist::Empirical, seed: 3, sample: Some(&sample) };
    let i = TraceInputs { arrivals: &a, speed: 1.0, service, workers: 1, queue: None, policy: Policy::Block };
    let s = simulate(&i);
    let r = s.response_ms;
    assert_eq!((s.wait_ms.max, r.p50, r.p99, r.max), (0.0, 4.0, 8.0, 8.0), "{r:?}");
    // Half of 1000 draws at 8 ms, within 5 standard errors (√(1000 · ¼) = 15.8 jobs).
    assert!((r.mean - 6.0).abs() <= 4.0 * 5.0 * 15.8 / 1000.0, "mean {}", r.mean);
    assert!(close(poisson_equivalent(&i).service_cv, 1.0 / 3.0));
    // Every seed's shortest is 4 ms and its p99 8 ms: so is their mean.
    assert_eq!(latency_percentiles(&i, 5, &[0.0, 99.0]), [4.0, 8.0]);
    // Replications draw other values from the same sample, so the interval is not 0.
    let (m, h) = replicate(&i, 5);
    assert!(h.response_ms.mean > 0.0 && (m.response_ms.mean - 6.0).abs() < 0.2, "{m:?} ± {h:?}");
}
