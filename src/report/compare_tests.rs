//! The comparison's rules: which windows are compared, and when a gap is a diagnosis.

use super::*;
use crate::metrics::Summary;
use crate::settings::Settings;

/// A window of `jobs` jobs at a measured 688/s, 5 ms service, the rate now set at 1000/s.
fn window(jobs: u64, set_rate: Option<f64>, changes: u64) -> Snapshot {
    let mut s = Snapshot::initial(Settings { rate: Rate::PerSec(1000.0), ..Settings::default() });
    let m = &mut s.measured;
    m.duration_s = 5.8;
    m.offered_per_s = 688.0;
    m.throughput_per_s = 688.0;
    m.latency.service = Summary { count: jobs, mean: 5.0, ..Summary::default() };
    m.latency.response = Summary { count: jobs, mean: 80.0, ..Summary::default() };
    m.service_cv = 1.0;
    m.arrival_cv = 1.0;
    m.set_rate_per_s = set_rate;
    m.setting_changes = changes;
    s
}

#[test]
fn arrivals_are_judged_against_the_rate_set_over_the_window() {
    // A ramp from 400/s averaged 710/s over the window: 688/s is 3% below it, not 31%.
    assert_eq!(diagnose(&window(4000, Some(710.0), 16)), None);
    let held = diagnose(&window(4000, Some(1000.0), 0)).unwrap();
    assert!(held.contains("31% below the set rate"), "{held}");
}

#[test]
fn no_comparison_from_a_window_too_short_or_while_settings_moved() {
    let r = model_report(&window(399, Some(1000.0), 0), None);
    assert!(r.predicted.is_none() && r.diagnosis.is_none(), "{r:?}");
    assert_eq!(r.reason.as_deref(), Some("comparing needs 400 completed jobs in the window (399 so far)"));
    let r = model_report(&window(4000, Some(710.0), 16), None);
    assert!(r.predicted.is_none(), "{r:?}");
    assert!(r.reason.unwrap().contains("changed 16 times"));
    assert!(model_report(&window(4000, Some(1000.0), 0), None).predicted.is_some());
}

#[test]
fn a_service_gap_inside_its_noise_is_not_a_diagnosis() {
    // 5.3 ms for 5 ms over 400 exponential draws is 1.2 standard errors: noise.
    let mut s = window(400, Some(688.0), 0);
    s.measured.latency.service.mean = 5.3;
    assert_eq!(diagnose(&s), None);
    s.measured.latency.service = Summary { count: 40_000, mean: 5.3, ..Summary::default() };
    assert!(diagnose(&s).unwrap().contains("6% longer"), "{:?}", diagnose(&s));
}
