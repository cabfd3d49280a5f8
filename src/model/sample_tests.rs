//! The sample's figures by hand, and the one draw scaled so its mean is the knob's with the
//! sample's shape kept.

use rand::SeedableRng;
use rand::rngs::SmallRng;

use super::*;
use crate::model::draw::{Draw, cv};
use crate::settings::ServiceDist;

const MS: f64 = 1e6;

fn ms(v: &[u64]) -> Vec<u64> {
    v.iter().map(|x| x * 1_000_000).collect()
}

#[test]
fn a_samples_mean_cv_and_p99_are_its_own() {
    // 1, 2, 3, 4, 10 ms: mean 4, variance (9 + 4 + 1 + 0 + 36) / 5 = 10, p99 the 5th of 5.
    let s = ServiceSample::from_values("s.txt", ms(&[10, 2, 4, 1, 3])).unwrap();
    assert_eq!(s.mean(), Duration::from_millis(4));
    assert!((s.cv() - 10f64.sqrt() / 4.0).abs() < 1e-12, "{}", s.cv());
    assert!((s.p99_at(0.004) - 0.010).abs() < 1e-12);
    assert_eq!(s.len(), 5);
    assert_eq!(s.to_string(), "s.txt: 5 values, mean 4ms, cv 0.79, p99 10ms");
    // 200 values 1..=200 ms: p99 is the 198th.
    let s = ServiceSample::from_values("s", (1..=200).map(|v| v * 1_000_000).collect()).unwrap();
    assert!((s.p99_at(s.mean().as_secs_f64()) - 0.198).abs() < 1e-12);
}

#[test]
fn a_sample_without_values_or_a_mean_is_refused() {
    assert!(ServiceSample::from_values("s", Vec::new()).unwrap_err().contains("no service times"));
    assert!(ServiceSample::from_values("s", vec![0, 0]).unwrap_err().contains("every service time in the sample is 0"));
}

/// Every draw is one of the sample's values times the scale mean / sample mean: here exactly 2,
/// and each value comes up about a fifth of the time (within 5 standard errors of 1/5 over
/// 100,000 draws: √(0.2 · 0.8 / 100000) = 0.0013).
#[test]
fn draws_are_the_samples_values_scaled_to_the_mean_asked() {
    let s = ServiceSample::from_values("s", ms(&[1, 2, 3, 4, 10])).unwrap();
    let d = Draw::new(0.008, 0.0, ServiceDist::Empirical, Some(&s));
    let mut rng = SmallRng::seed_from_u64(5);
    let n = 100_000;
    let mut counts = std::collections::BTreeMap::new();
    for _ in 0..n {
        let x = (d.secs(&mut rng) * 1e9).round() as u64;
        *counts.entry(x / 1_000_000).or_insert(0u32) += 1;
    }
    assert_eq!(counts.keys().copied().collect::<Vec<_>>(), [2, 4, 6, 8, 20], "twice each value, nothing else");
    for (v, c) in &counts {
        let share = f64::from(*c) / f64::from(n);
        assert!((share - 0.2).abs() < 5.0 * 0.0013, "{v} ms drawn {share:.4} of the time");
    }
    // The scaled distribution's mean is the one asked, its CV the sample's.
    let mean: f64 = counts.iter().map(|(v, c)| *v as f64 * f64::from(*c)).sum::<f64>() / f64::from(n);
    assert!((mean - 8.0).abs() < 8.0 * 5.0 * s.cv() / f64::from(n).sqrt(), "mean {mean} ms");
    assert!((cv(ServiceDist::Empirical, 3.0, Some(&s)) - s.cv()).abs() < 1e-15, "the sample's CV, not the knob's");
    assert!((s.p99_at(0.008) - 0.020).abs() < 1e-12);
}

#[test]
fn a_runs_percentiles_make_a_piecewise_linear_sample_with_its_mean() {
    // Past p50 the areas are 0.4·(3+10)/2 + 0.09·(10+20)/2 + 0.009·(20+30)/2 + 0.001·(30+40)/2
    // = 4.21 ms; the first segment adds 0.25·(x₀ + 3): a mean of 5.21 puts x₀ at 1 ms.
    let points = [(0.5, 3.0 * MS), (0.9, 10.0 * MS), (0.99, 20.0 * MS), (0.999, 30.0 * MS), (1.0, 40.0 * MS)];
    let s = ServiceSample::from_percentiles("r.json", &points, 5.21 * MS, 400).unwrap();
    assert!((s.quantile(0.0) - MS).abs() < 1.0, "x₀ {}", s.quantile(0.0));
    assert!((s.quantile(0.25) - 2.0 * MS).abs() < 1.0);
    assert!((s.quantile(0.7) - 6.5 * MS).abs() < 1.0);
    assert!((s.mean().as_secs_f64() - 0.00521).abs() < 1e-9);
    assert!((s.p99_at(0.00521) - 0.020).abs() < 1e-9);
    assert_eq!(s.len(), 400);
    // E[X²] segment by segment, (b − a)(xa² + xa·xb + xb²)/3.
    let m2 = 0.5 * (1.0 + 3.0 + 9.0) / 3.0
        + 0.4 * (9.0 + 30.0 + 100.0) / 3.0
        + 0.09 * (100.0 + 200.0 + 400.0) / 3.0
        + 0.009 * (400.0 + 600.0 + 900.0) / 3.0
        + 0.001 * (900.0 + 1200.0 + 1600.0) / 3.0;
    let want = (m2 - 5.21f64 * 5.21).sqrt() / 5.21;
    assert!((s.cv() - want).abs() < 1e-9, "cv {} want {want}", s.cv());
    // A mean below what the percentiles allow: x₀ is 0, and the mean is the function's.
    let low = ServiceSample::from_percentiles("r.json", &points, 1.0 * MS, 400).unwrap();
    assert!(low.quantile(0.0).abs() < 1e-9, "x₀ {}", low.quantile(0.0));
    assert!((low.mean().as_secs_f64() - 0.00496).abs() < 1e-9);
    // Draws stay inside the function's range, scaled.
    let d = Draw::new(0.00521 * 2.0, 0.0, ServiceDist::Empirical, Some(&s));
    let mut rng = SmallRng::seed_from_u64(1);
    assert!((0..10_000).all(|_| (0.002..=0.080).contains(&d.secs(&mut rng))));
}

#[test]
fn percentiles_out_of_order_are_refused() {
    let bad = [(0.5, 3.0 * MS), (0.9, 2.0 * MS), (1.0, 4.0 * MS)];
    assert!(ServiceSample::from_percentiles("r", &bad, MS, 9).unwrap_err().contains("must rise"));
    let no_max = [(0.5, 3.0 * MS), (0.9, 4.0 * MS)];
    assert!(ServiceSample::from_percentiles("r", &no_max, MS, 9).is_err());
    let none = [(1.0, 0.0)];
    assert!(ServiceSample::from_percentiles("r", &none, 0.0, 9).unwrap_err().contains("is 0"));
    assert!(ServiceSample::from_percentiles("r", &[(1.0, MS)], MS, 0).unwrap_err().contains("no service times"));
}
