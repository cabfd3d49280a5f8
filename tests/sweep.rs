//! A capacity sweep against the model: the highest rate an M/M/4 pool sustains under a p99
//! target, measured step by step, lands within one step of the advisor's answer.

mod common;

use std::time::Duration;

use common::{exclusive, instrumented, settings};
use pooltune::settings::{Policy, Settings};
use pooltune::sweep::{Plan, Scale};

/// M/M/4 with 2 ms exponential service, swept from 200 to 1,900 jobs/s in 10 steps (188.9 apart)
/// under p99 ≤ 15 ms. (The 10 ms sits on the service's own p99, 2 ms × ln 100 = 9.2 ms,
/// so every step from 200/s on is within the p99's sampling error of it and any answer is luck;
/// at 15 ms the curve crosses the target steeply.)
///
/// What is judged, and against what:
/// - The advisor's answer at the configured inputs is 1,644.6/s: pure computation, exact.
/// - The highest passing step, as measured, is within one step of the highest step the model
///   passes at that step's *measured* inputs (each step's `model`, the figure the sweep shows
///   beside it). That reference is measured in the same run, so a machine that stretches the
///   2 ms services (a debug build at 1,500 jobs/s on a busy 2-core CI host read 20.7 ms at
///   1,520/s where the configured inputs give 12.5 ms) moves both sides alike.
/// - One step either side is the sweep's resolution, and it also covers one step whose p99 a
///   scheduling stall lifts past the target: at 2,300 jobs the 99th percentile is the 23rd
///   largest, whose rank moves by about √23 ≈ 5 (under 10% of the value here), but a stall of a
///   few milliseconds delays every job in flight (a CI run read 15.1 ms at 1,330/s where its model
///   said 12.7 ms).
///
/// The comparison with the configured answer is printed: on a quiet machine it lands within one
/// step too (1,520/s passes at 10.7 ms, 1,710/s fails).
#[test]
fn the_highest_passing_rate_is_within_one_step_of_the_model() {
    // The model's answer is from the configured service; with `--features console` tokio
    // instruments every task and each hand-off costs more (see tests/theory.rs), which moves
    // the measured curve, not the sweep's logic. Judged in the default build.
    if instrumented() {
        return;
    }
    let _g = exclusive();
    let base = Settings {
        workers: 4,
        service: Duration::from_millis(2),
        queue: 100_000,
        policy: Policy::Reject,
        seed: 9,
        ..settings()
    };
    let (knob, values) = Plan::values_of("rate", "200..1900", 10, Scale::Lin).unwrap();
    let step = 1700.0 / 9.0;
    let plan = Plan {
        knob,
        values,
        settle: Duration::from_millis(500),
        per_step: Duration::from_millis(1500),
        stop_on_saturation: true,
    };
    let (report, _) = common::sweep(&base, &plan, Some(Duration::from_millis(15)));
    for s in &report.steps {
        eprintln!(
            "{:>8} offered {:>7.1}/s p99 {:>7.3} ms model {:?}{}",
            s.value_text,
            s.offered_per_s,
            s.latency_ms.p99,
            s.model.as_ref().and_then(|m| m.latency_ms_p99),
            if s.saturated { " saturated" } else { "" }
        );
    }
    eprintln!("{}", report.verdict);
    let slo = report.slo.unwrap();
    let model = slo.model_answer.expect("the advisor answers a rate sweep");
    assert!((model - 1644.6).abs() < 1.0, "the model's answer {model}");
    let passing = slo.max_passing.expect("the low rates pass");
    let modelled = report
        .steps
        .iter()
        .filter(|s| s.model.as_ref().and_then(|m| m.latency_ms_p99).is_some_and(|p| p <= 15.0))
        .map(|s| s.value)
        .fold(f64::NAN, f64::max);
    eprintln!(
        "highest passing {passing}/s; the model at each step's measured inputs passes up to {modelled}/s; at the configured inputs it answers {model:.1}/s ({:+.1} steps)",
        (passing - model) / step
    );
    assert!(modelled.is_finite(), "the model passes some step");
    assert!(
        (passing - modelled).abs() <= step + 1e-9,
        "highest passing {passing}/s, the model at the measured inputs {modelled}/s, one step {step:.1}"
    );
    eprintln!("first failing: {:?}", slo.first_failing);
    // The knee depends on the last step's p99, near saturation the most variable of all
    // (25–39 ms at 1,900/s here, against 3 × 8.8–9.1 ms): printed, not judged.
    eprintln!("knee: {:?}", report.knee);
}
