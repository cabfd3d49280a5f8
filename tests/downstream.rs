//! A downstream that pushes back (the Universal Scalability Law): a saturated pool scaled out past
//! the throughput peak N* completes less and takes longer, as the law and its model say.

mod common;

use std::time::Duration;

use common::{assert_accounted, exclusive, instrumented, settings};
use pooltune::model::usl::Usl;
use pooltune::settings::{Policy, Rate, Settings};
use pooltune::sweep::{Plan, Scale};

/// σ 0.1 and κ 0.01 put the peak at N* = √90 ≈ 9.5, with 9 workers best: X(9) = 9 / (5 ms ·
/// 2.52) = 714/s against X(27) = 27 / (5 ms · 10.62) = 508/s, and each job inside 12.6 ms
/// against 53.1 ms. Offered 1,500/s, both pools are saturated.
///
/// The two pools are a two-step sweep of `workers`, measured by the sweep's own stepper: each
/// window begins after its statistics were reset (so it holds one pool only) and lasts 3 s.
///
/// Tolerance: completions in T seconds at rate X vary like a Poisson count, so each measured rate
/// has a standard error √(X/T); the drop from 9 to 27 workers must exceed four standard errors of
/// the difference (about 4·√((714 + 508)/3) ≈ 81/s, against an expected 206/s).
#[test]
fn scaling_out_past_the_peak_makes_throughput_and_latency_worse() {
    if instrumented() {
        return;
    }
    let _g = exclusive();
    let base = Settings {
        workers: 9,
        service: Duration::from_millis(5),
        rate: Rate::PerSec(1500.0),
        queue: 200,
        policy: Policy::Reject,
        contention: 0.1,
        coherency: 0.01,
        seed: 5,
        ..settings()
    };
    let law = Usl::of(&base);
    assert_eq!(law.best_workers(), Some(9));
    // Both steps saturate, by design: the sweep must not stop at the first.
    let (knob, values) = Plan::values_of("workers", "9..27", 2, Scale::Lin).unwrap();
    let plan = Plan {
        knob,
        values,
        settle: Duration::from_secs(1),
        per_step: Duration::from_secs(3),
        stop_on_saturation: false,
    };
    let (report, last) = common::sweep(&base, &plan, None);
    assert_accounted(&last);
    let (at_peak, past) = (&report.steps[0], &report.steps[1]);
    let (x9, x27) = (at_peak.throughput_per_s, past.throughput_per_s);
    eprintln!(
        "9 workers: {x9:.1}/s (law {:.1}), service {:.2} ms; 27 workers: {x27:.1}/s (law {:.1}), service {:.2} ms",
        law.throughput(9, 0.005),
        at_peak.service_ms.mean,
        law.throughput(27, 0.005),
        past.service_ms.mean
    );
    let t = plan.per_step.as_secs_f64();
    let margin = 4.0 * ((x9 + x27) / t).sqrt();
    assert!(x27 + margin < x9, "27 workers completed {x27:.1}/s, 9 completed {x9:.1}/s (margin {margin:.1})");
    assert!(
        past.latency_ms.mean > at_peak.latency_ms.mean,
        "latency {:.2} ms at 27 workers against {:.2} ms at 9",
        past.latency_ms.mean,
        at_peak.latency_ms.mean
    );
    // Each job took the law's stretch: the ratio of the two mean service times is the ratio of
    // the factors (4.21), within four standard errors (CV 1: each mean's relative error is 1/√n).
    // A timer that runs every sleep a little late shifts both means alike and the ratio barely.
    let ratio = past.service_ms.mean / at_peak.service_ms.mean;
    let want = law.stretch(27.0) / law.stretch(9.0);
    #[allow(clippy::cast_precision_loss)]
    let rel_se = (1.0 / at_peak.service_ms.count as f64 + 1.0 / past.service_ms.count as f64).sqrt();
    assert!(
        (ratio / want - 1.0).abs() <= 4.0 * rel_se,
        "service ratio {ratio:.3}, law {want:.3} (relative se {rel_se:.3})"
    );
}
