//! The fit's own tests: exact recovery from the law's own points, a flat downstream, the
//! constraint σ, κ ≥ 0, intervals that cover, and the message when points are too few.

use super::*;

fn law_points(u: Usl, s1: f64, counts: &[u32], noise: &[f64]) -> Vec<Point> {
    counts
        .iter()
        .enumerate()
        .map(|(i, &n)| {
            let hold = s1 * u.stretch(f64::from(n)) * (1.0 + noise.get(i).copied().unwrap_or(0.0));
            Point { workers: n, inside: f64::from(n), hold_s: hold, jobs: 2000 }
        })
        .collect()
}

const CONTENTION: Usl = Usl { contention: 0.1, coherency: 0.01, capacity: None };

#[test]
fn noise_free_points_are_recovered_exactly() {
    let f = fit(&law_points(CONTENTION, 0.005, &[2, 5, 9, 14, 20, 30], &[])).unwrap();
    assert!((f.usl.contention - 0.1).abs() < 1e-9, "{}", f.usl.contention);
    assert!((f.usl.coherency - 0.01).abs() < 1e-9, "{}", f.usl.coherency);
    assert!((f.alone_s - 0.005).abs() < 1e-12);
    let n = f.peak.unwrap();
    assert!((n.value - 90f64.sqrt()).abs() < 1e-6, "{n:?}");
    // No residual: the intervals collapse onto the values.
    assert!(n.high - n.low < 1e-6, "{n:?}");
    let x = f.peak_per_s.unwrap();
    assert!((x - 90f64.sqrt() / (0.005 * CONTENTION.stretch(90f64.sqrt()))).abs() < 1e-6, "{x}");
    assert!(!f.peak_extrapolated && f.advice.is_none());
    assert!(f.line().contains("N* 9.5"), "{}", f.line());
}

#[test]
fn three_counts_fit_without_intervals_and_ask_for_a_fourth() {
    let f = fit(&law_points(CONTENTION, 0.005, &[2, 9, 20], &[])).unwrap();
    assert!((f.usl.coherency - 0.01).abs() < 1e-9);
    assert!(f.contention.is_none() && f.coherency.is_none());
    assert!(f.peak.is_some());
    assert!(f.advice.as_deref().is_some_and(|a| a.contains("one more count")), "{:?}", f.advice);
}

#[test]
fn a_flat_downstream_fits_no_contention_and_no_peak() {
    let noise = [0.01, -0.012, 0.004, -0.006, 0.009, -0.003];
    let f = fit(&law_points(Usl::default(), 0.005, &[2, 4, 8, 12, 16, 24], &noise)).unwrap();
    assert!(f.usl.contention < 0.01, "{}", f.usl.contention);
    assert!(f.usl.coherency < 0.0005, "{}", f.usl.coherency);
    assert!(f.peak.is_none() && f.downstream().is_none());
    assert!(f.line().contains("no peak in range"), "{}", f.line());
}

/// Holding times that fall with N would need σ < 0: the constraint holds it at 0.
#[test]
fn negative_coefficients_are_held_at_zero() {
    let pts: Vec<Point> = [(2u32, 0.0050), (4, 0.0049), (8, 0.0048), (16, 0.0047)]
        .iter()
        .map(|&(n, s)| Point { workers: n, inside: f64::from(n), hold_s: s, jobs: 1000 })
        .collect();
    let f = fit(&pts).unwrap();
    assert!(f.usl.contention >= 0.0 && f.usl.coherency >= 0.0, "{:?}", f.usl);
    assert!(f.usl.contention == 0.0 || f.usl.coherency == 0.0);
}

/// With 3% noise the 95% intervals contain the truth (this draw), and are not absurdly wide.
#[test]
fn noisy_points_give_intervals_around_the_truth() {
    let noise = [0.02, -0.03, 0.01, 0.025, -0.02, 0.015, -0.01, 0.0];
    let f = fit(&law_points(CONTENTION, 0.005, &[2, 4, 7, 10, 14, 19, 25, 30], &noise)).unwrap();
    let (s, k, n) = (f.contention.unwrap(), f.coherency.unwrap(), f.peak.unwrap());
    assert!(s.low <= 0.1 && 0.1 <= s.high, "{s:?}");
    assert!(k.low <= 0.01 && 0.01 <= k.high, "{k:?}");
    assert!(n.low <= 9.49 && 9.49 <= n.high, "{n:?}");
    assert!(n.high - n.low < 5.0, "{n:?}");
}

#[test]
fn too_few_counts_say_how_many_more_and_where() {
    let e = fit(&[]).unwrap_err();
    assert_eq!(e.suggest, vec![2, 8, 16]);
    assert!(e.to_string().contains("measure 3 more"), "{e}");
    let one = law_points(CONTENTION, 0.005, &[4], &[]);
    let e = fit(&one).unwrap_err();
    assert_eq!((e.have.clone(), e.suggest.clone()), (vec![4], vec![8, 16]));
    assert_eq!(e.to_string(), "USL fit: needs 3 worker counts (have 4); measure 2 more, e.g. at 8, 16 workers");
    let two = law_points(CONTENTION, 0.005, &[4, 8], &[]);
    assert_eq!(fit(&two).unwrap_err().suggest, vec![16]);
    // Repeated windows at one count are one count.
    let same = law_points(CONTENTION, 0.005, &[4, 4, 4, 4], &[]);
    assert_eq!(fit(&same).unwrap_err().have, vec![4]);
}

/// A coefficient held at 0 still gets the interval the points allow above it.
#[test]
fn a_coefficient_held_at_zero_keeps_an_interval_above_it() {
    let noise = [0.01, -0.012, 0.004, -0.006, 0.009, -0.003];
    let f = fit(&law_points(Usl::default(), 0.005, &[2, 4, 8, 12, 16, 24], &noise)).unwrap();
    let (s, k) = (f.contention.unwrap(), f.coherency.unwrap());
    assert!(s.low == 0.0 && s.high > 0.0, "{s:?}");
    assert!(k.low == 0.0 && k.high > 0.0, "{k:?}");
}

/// The advisor sizes in front of the fitted curve, never past its peak, and only from a fit
/// whose peak the points have gone past.
#[test]
fn the_advisor_uses_a_fit_whose_peak_was_measured() {
    use crate::model::advisor::Target;
    let f = fit(&law_points(CONTENTION, 0.005, &[2, 5, 9, 14, 20, 30], &[])).unwrap();
    let line = f.advice(400.0, Target::P99(0.2)).expect("a fit with a measured peak");
    let n: u32 = line.split("≥ ").nth(1).and_then(|t| t.split(' ').next()).and_then(|t| t.parse().ok()).unwrap();
    assert!((1..=9).contains(&n), "{line}");
    let short = fit(&law_points(CONTENTION, 0.005, &[1, 2, 4, 6], &[])).unwrap();
    assert!(short.peak_extrapolated && short.advice(400.0, Target::P99(0.2)).is_none());
}
