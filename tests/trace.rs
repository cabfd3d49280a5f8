//! Replaying a trace through the engine: every arrival offered once, at its instant (lateness is
//! latency), the run ending once the last is served, looping, the speed, and service times from
//! the trace.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{assert_accounted, exclusive, settings};
use pooltune::engine::replay::Arrivals;
use pooltune::engine::{EngineHandle, QueueChoice, RunOptions};
use pooltune::metrics::Snapshot;
use pooltune::settings::{ArrivalKind, Policy, Rate, ServiceDist, Settings};
use pooltune::trace::Trace;

fn trace(offsets_ms: &[f64], service_ms: Option<&[f64]>) -> Arc<Trace> {
    let ns = |v: &f64| (v * 1e6).round() as u64;
    Arc::new(Trace {
        offsets: offsets_ms.iter().map(ns).collect(),
        service: service_ms.map(|s| s.iter().map(ns).collect()),
        ..Trace::default()
    })
}

/// Bursts: `bursts` of `per` arrivals 1 ms apart, one burst every `every_ms`.
fn bursts(bursts: usize, per: usize, every_ms: f64) -> Vec<f64> {
    (0..bursts).flat_map(|b| (0..per).map(move |i| b as f64 * every_ms + i as f64)).collect()
}

fn replay(s: Settings, a: Arrivals, duration: Option<Duration>) -> Snapshot {
    let opts = RunOptions { duration, interval: Duration::from_millis(50), ..RunOptions::default() };
    EngineHandle::start_replay(s, opts, None, QueueChoice::InProcess, Some(a)).expect("valid settings").join()
}

fn traced(a: &Arrivals, speed: f64) -> Settings {
    Settings {
        arrival: ArrivalKind::Trace,
        rate: Rate::PerSec(a.mean_rate() * speed),
        workers: 8,
        queue: 10_000,
        policy: Policy::Reject,
        service: Duration::from_millis(1),
        service_dist: ServiceDist::Constant,
        ..settings()
    }
}

#[test]
fn every_arrival_is_offered_once_and_the_run_ends_after_the_last() {
    let _g = exclusive();
    // 12 bursts of 50 over 1.1 s, replayed twice as fast: about 0.55 s.
    let a = Arrivals::new(trace(&bursts(12, 50, 100.0), None), false).unwrap();
    let last = replay(traced(&a, 2.0), a, None);
    assert!(last.finished);
    assert_eq!(last.totals.offered, 600, "{:?}", last.totals);
    assert_eq!(last.totals.completed, 600);
    assert_accounted(&last);
    // The trace lasts 1.1 s at speed 1; replayed at 2 it cannot have ended before 0.55 s.
    assert!(last.elapsed >= Duration::from_millis(550), "{:?}", last.elapsed);
}

#[test]
fn latency_counts_from_the_traces_instants() {
    let _g = exclusive();
    // 200 arrivals at one instant (and one a second later, so the trace has a rate) on one
    // worker of 2 ms, behind a queue of 10 under block: the producer waits, and the last job
    // of the burst is due at the burst's instant, so its wait is at least 199 × 2 ms.
    let mut at = vec![0.0; 200];
    at.push(1000.0);
    let a = Arrivals::new(trace(&at, None), false).unwrap();
    let s =
        Settings { workers: 1, queue: 10, policy: Policy::Block, service: Duration::from_millis(2), ..traced(&a, 1.0) };
    let last = replay(s, a, None);
    assert_eq!(last.totals.offered, 201);
    assert_accounted(&last);
    let wait = &last.measured.latency.wait;
    assert!(wait.max >= 398.0, "the burst's last job waited {:.1} ms from its instant", wait.max);
}

#[test]
fn a_looped_trace_starts_again() {
    let _g = exclusive();
    // 20 arrivals over 190 ms (10/s gaps of 10 ms), looped for 1 s at speed 1: about 100.
    let a = Arrivals::new(trace(&(0..20).map(|i| f64::from(i) * 10.0).collect::<Vec<_>>(), None), true).unwrap();
    let last = replay(traced(&a, 1.0), a, Some(Duration::from_secs(1)));
    assert!(last.totals.offered > 60, "looped: {:?}", last.totals);
    assert_accounted(&last);
}

#[test]
fn service_times_come_from_the_trace() {
    let _g = exclusive();
    // Jobs of 20 and 40 ms in turn (a mean of 30). Drawn from the run's distribution instead
    // (exponential, mean 30 ms), a tenth of them would be over 69 ms.
    let n = 200;
    let at: Vec<f64> = (0..n).map(|i| f64::from(i) * 5.0).collect();
    let service: Vec<f64> = (0..n).map(|i| if i % 2 == 0 { 20.0 } else { 40.0 }).collect();
    let a = Arrivals::new(trace(&at, Some(&service)), false).unwrap();
    let s = Settings { service: Duration::from_millis(30), service_dist: ServiceDist::Exponential, ..traced(&a, 1.0) };
    let last = replay(s, a, None);
    assert_eq!(last.totals.completed, 200);
    let svc = &last.measured.latency.service;
    assert!(svc.mean >= 29.9, "never shorter than asked: {svc:?}");
    assert!(svc.p90 < 45.0, "the trace's times, not exponential draws: {svc:?}");
}

#[test]
fn a_trace_arrival_needs_a_trace() {
    let s = Settings { arrival: ArrivalKind::Trace, ..settings() };
    let err = EngineHandle::start(s, RunOptions::default()).err().expect("refused").to_string();
    assert!(err.contains("--arrivals FILE"), "{err}");
}

fn pooltune(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_pooltune"))
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

/// Bad input is one line naming the file, the line and what is accepted, exit status 2, before
/// anything runs.
#[test]
fn bad_traces_and_flags_are_one_line_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_string()
    };
    let good = file("good.csv", "t,size\n0.0,3\n0.5,4\n1.0,5\n");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["--arrivals".into(), dir.path().join("none.csv").to_str().unwrap().into()], "none.csv"),
        (vec!["--arrivals".into(), file("word.txt", "0.1\n0.2\nsoon\n")], ":3"),
        (vec!["--arrivals".into(), good.clone(), "--arrivals-column".into(), "when".into()], "when"),
        (vec!["--arrivals".into(), good.clone(), "--arrivals-window".into(), "5s..6s".into()], "window"),
        (
            vec!["--arrivals".into(), good.clone(), "--speed".into(), "2".into(), "--rate".into(), "10".into()],
            "--speed",
        ),
        (vec!["--arrivals".into(), good.clone(), "--rate".into(), "max".into()], "--rate max"),
        (vec!["--arrivals".into(), good.clone(), "--speed".into(), "0".into()], "0.01 to 1000"),
        (vec!["--arrivals".into(), good.clone(), "--arrival".into(), "closed".into()], "--arrival"),
        (
            vec![
                "--arrivals".into(),
                file("neg.csv", "t,size\n0,1\n1,-2\n"),
                "--service-column".into(),
                "size".into(),
                "--service-per-unit".into(),
                "1ms".into(),
            ],
            ":3",
        ),
        (vec!["--arrivals".into(), file("one.txt", "5\n")], "at least 2 arrivals"),
    ];
    for (extra, want) in cases {
        common::refused_run(&extra, want);
    }
}

/// `pooltune model` on the shipped bursty trace: the simulation sizes the pool, checked one
/// worker either side, and the fitted Poisson model's answer (too few) is beside it.
#[test]
fn model_sizes_the_pool_for_the_trace_and_the_poisson_fit_undersizes_it() {
    let o = pooltune(&[
        "model",
        "--arrivals",
        "profiles/bursty-trace.csv",
        "--service-column",
        "tokens",
        "--service-base",
        "5ms",
        "--service-per-unit",
        "100us",
        "--workers",
        "4",
        "--slo-p99",
        "100ms",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let sized = &v["workers_needed"];
    let n = sized["workers"].as_u64().unwrap();
    assert!(sized["p99_ms"].as_f64().unwrap() <= 100.0 && sized["p99_ms_fewer"].as_f64().unwrap() > 100.0, "{v}");
    let fitted = v["fitted_workers_needed"].as_u64().unwrap();
    assert!(n >= 2 * fitted, "the bursts need far more than Poisson says: {n} against {fitted}");
    assert_eq!(v["arrivals"], 12007);
    assert!(v["highest_speed"].as_f64().unwrap() < 1.0, "4 workers miss the target at the trace's own speed: {v}");
}
