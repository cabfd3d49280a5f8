//! A capacity sweep against the model: the highest rate an M/M/4 pool sustains under a p99
//! target, measured step by step, lands within one step of the advisor's answer.

mod common;

use std::time::Duration;

use common::{exclusive, instrumented, settings};
use pooltune::settings::{Policy, Settings};
use pooltune::sweep::{Plan, Scale};

/// M/M/4 with 2 ms exponential service, swept from 200 to 1,900 jobs/s in 10 steps (188.9 apart)
/// under p99 ≤ 15 ms; the model's answer is 1,644.6/s. (The 10 ms sits on the service's
/// own p99, 2 ms × ln 100 = 9.2 ms, so every step from 200/s on is within the p99's sampling
/// error of it and any answer is luck; at 15 ms the curve crosses the target steeply.) Where
/// the tolerance comes from: one step either side is the sweep's resolution; the steps next to
/// the answer sit well clear of the target (the model says 12.5 ms at 1,522/s and 29 ms at
/// 1,711/s), beyond the p99's sampling error over 1.5 s: at 2,300 jobs the 99th percentile is the
/// 23rd largest, whose rank moves by about √23 ≈ 5, under 10% of the value here.
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
    assert!((passing - model).abs() <= step, "highest passing {passing}/s, the model {model}/s, one step {step:.1}");
    eprintln!("first failing: {:?}", slo.first_failing);
    // The knee depends on the last step's p99, near saturation the most variable of all
    // (25–39 ms at 1,900/s here, against 3 × 8.8–9.1 ms): printed, not judged.
    eprintln!("knee: {:?}", report.knee);
}
