//! A downstream that pushes back (the Universal Scalability Law): a saturated pool scaled out past
//! the throughput peak N* completes less and takes longer, as the law and its model say.

mod common;

use std::time::Duration;

use common::{assert_accounted, exclusive, settings, wait_for};
use pooltune::engine::{Command, EngineHandle, RunOptions};
use pooltune::metrics::Measured;
use pooltune::model::usl::Usl;
use pooltune::settings::{Knob, Policy, Rate, Settings};

/// Measures `workers` for `secs` after a second to settle.
fn window(engine: &EngineHandle, workers: usize, secs: f64) -> Measured {
    engine.try_send(Command::Set(Knob::Workers(workers))).unwrap();
    std::thread::sleep(Duration::from_secs(1));
    engine.try_send(Command::ResetStats).unwrap();
    let s = wait_for(engine, Duration::from_secs(60), "the window", |s| {
        s.settings.workers == workers && s.measured.duration_s >= secs
    });
    s.measured
}

/// σ 0.1 and κ 0.01 put the peak at N* = √90 ≈ 9.5, with 9 workers best: X(9) = 9 / (5 ms ·
/// 2.52) = 714/s against X(27) = 27 / (5 ms · 10.62) = 508/s, and each job inside 12.6 ms
/// against 53.1 ms. Offered 1,500/s, both pools are saturated.
///
/// Tolerance: completions in T seconds at rate X vary like a Poisson count, so each measured rate
/// has a standard error √(X/T); the drop from 9 to 27 workers must exceed four standard errors of
/// the difference (here about 4·√(714/3 + 508/3)/1 ≈ 81/s, against an expected 206/s).
#[test]
fn scaling_out_past_the_peak_makes_throughput_and_latency_worse() {
    if cfg!(feature = "console") {
        eprintln!("skipped under --features console: task instrumentation slows every hand-off; run `cargo test`");
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
    let engine =
        EngineHandle::start(base, RunOptions { interval: Duration::from_millis(100), ..RunOptions::default() })
            .unwrap();
    let t = 3.0;
    let at_peak = window(&engine, 9, t);
    let past = window(&engine, 27, t);
    let last = engine.shutdown();
    assert_accounted(&last);
    let (x9, x27) = (at_peak.throughput_per_s, past.throughput_per_s);
    eprintln!(
        "9 workers: {x9:.1}/s (law {:.1}), service {:.2} ms; 27 workers: {x27:.1}/s (law {:.1}), service {:.2} ms",
        law.throughput(9, 0.005),
        at_peak.latency.service.mean,
        law.throughput(27, 0.005),
        past.latency.service.mean
    );
    let margin = 4.0 * (x9 / at_peak.duration_s + x27 / past.duration_s).sqrt();
    assert!(x27 + margin < x9, "27 workers completed {x27:.1}/s, 9 completed {x9:.1}/s (margin {margin:.1})");
    assert!(
        past.latency.response.mean > at_peak.latency.response.mean,
        "latency {:.2} ms at 27 workers against {:.2} ms at 9",
        past.latency.response.mean,
        at_peak.latency.response.mean
    );
    // Each job took the law's stretch: the ratio of the two mean service times is the ratio of
    // the factors (4.21), within four standard errors (CV 1: each mean's relative error is 1/√n).
    // A timer that runs every sleep a little late shifts both means alike and the ratio barely.
    let ratio = past.latency.service.mean / at_peak.latency.service.mean;
    let want = law.stretch(27.0) / law.stretch(9.0);
    #[allow(clippy::cast_precision_loss)]
    let rel_se = (1.0 / at_peak.latency.service.count as f64 + 1.0 / past.latency.service.count as f64).sqrt();
    assert!(
        (ratio / want - 1.0).abs() <= 4.0 * rel_se,
        "service ratio {ratio:.3}, law {want:.3} (relative se {rel_se:.3})"
    );
}
