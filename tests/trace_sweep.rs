//! Sweeps over a trace (`pooltune sweep … --arrivals FILE`): each step's model is the exact
//! simulation of the arrivals its window replayed (and the report says so), a `rate` sweep
//! says the speed beside each rate, and a bad trace is the same one-line exit-2 message as `run` gives.
//!
//! The trace the tests write: 2 s of bursts, one every 200 ms of 120 arrivals 0.5 ms apart
//! (2,000/s for 60 ms, then 140 ms of nothing), 644.8 arrivals a second on average (1,199 gaps
//! over 1.8595 s), each job 2 ms. Two workers serve 1,000 jobs a second: a burst leaves about 60 jobs waiting, so its
//! last arrivals wait some 60 ms. Six serve 3,000 a second and a burst queues nothing, so the
//! simulated p99 of the six-worker step is a few milliseconds, far below the two-worker step's:
//! the comparison is between two exact replays of the same kind of window, not a measurement.

mod common;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use pooltune::sweep::SweepReport;

/// Writes the bursty trace described above into `dir`.
fn bursty_trace(dir: &Path) -> PathBuf {
    let mut csv = String::from("t_s,service\n");
    for burst in 0..10 {
        for i in 0..120 {
            let t = f64::from(burst) * 0.2 + f64::from(i) * 0.0005;
            let _ = writeln!(csv, "{t:.4},2ms");
        }
    }
    let path = dir.join("bursty.csv");
    std::fs::write(&path, csv).unwrap();
    path
}

fn pooltune(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pooltune")).args(args).stdin(Stdio::null()).output().unwrap()
}

/// `pooltune sweep KNOB RANGE` over the bursty trace (written into `dir`): steps measured for
/// 1 s, a queue no burst fills, the trace's service column; then the flags in `more`.
fn sweep_on_trace(dir: &Path, knob: &str, range: &str, more: &[&str]) -> Output {
    let trace = bursty_trace(dir);
    let mut args = vec!["sweep", knob, range, "--per-step", "1s", "--queue", "10000"];
    args.extend(["--arrivals", trace.to_str().unwrap(), "--service-column", "service"]);
    args.extend(more);
    let out = pooltune(&args);
    assert!(out.status.success(), "the sweep ran: {}", String::from_utf8_lossy(&out.stderr));
    out
}

#[test]
fn each_step_of_a_workers_sweep_is_beside_the_simulation_of_its_window() {
    let _g = common::exclusive();
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("sweep.html");
    let more = ["--steps", "3", "--settle", "300ms", "--report", html.to_str().unwrap(), "--json", "-"];
    let out = sweep_on_trace(dir.path(), "workers", "2..6", &more);
    let said = String::from_utf8_lossy(&out.stderr);
    eprintln!("{said}");
    // A 1 s step is about half a pass of the 1.86 s trace: the sweep says each sees a stretch.
    assert!(said.contains("the steps see different stretches of it; --per-step 2s"), "{said}");
    let r: SweepReport = serde_json::from_slice(&out.stdout).expect("the sweep's JSON");
    assert_eq!(r.steps.len(), 3, "every step ran: {:?}", r.stopped_early);
    let mut p99 = Vec::new();
    for s in &r.steps {
        let m = s.model.as_ref().unwrap_or_else(|| panic!("step {} has a model", s.value_text));
        eprintln!(
            "workers {}: measured p99 {:.3} ms, simulated {:?}",
            s.value_text, s.latency_ms.p99, m.latency_ms_p99
        );
        assert!(m.method.contains("trace simulation"), "step {}: the model is {}", s.value_text, m.method);
        let speed = s.speed.expect("a trace's step says its speed");
        assert!((speed - 1.0).abs() < 1e-3, "replayed at its own pace: {speed}");
        p99.push(m.latency_ms_p99.expect("a simulated p99"));
    }
    assert!(p99[2] < p99[0], "six workers queue less of each burst than two: simulated p99 {p99:?}");
    // The report's dashed lines and table say they are the trace's simulation, not the formulas.
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("simulated p99") && page.contains("the simulation of the trace"), "the report's labels");
    assert!(!page.contains("model p99"), "no line is called the model's");
}

#[test]
fn a_rate_sweep_on_a_trace_is_a_sweep_of_its_speed() {
    let _g = common::exclusive();
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("steps.csv");
    let more = ["--steps", "2", "--settle", "200ms", "--workers", "8", "--csv", csv.to_str().unwrap()];
    let out = sweep_on_trace(dir.path(), "rate", "300..1200", &more);
    let table = String::from_utf8_lossy(&out.stdout);
    eprintln!("{table}");
    // The trace's mean rate is 644.8/s: 300/s replays it at 0.47 of its pace, 1,200/s at 1.86.
    assert!(table.lines().next().unwrap().contains("speed"), "the table has a speed column:\n{table}");
    assert!(table.contains("0.47×") && table.contains("1.86×"), "each rate's speed:\n{table}");
    let rows = std::fs::read_to_string(&csv).unwrap();
    assert!(rows.lines().next().unwrap().ends_with(",speed"), "{rows}");
}

#[test]
fn a_bad_trace_is_one_line_and_exit_2_as_for_run() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "t_s\n0.1\nsoon\n").unwrap();
    let sweep = pooltune(&["sweep", "workers", "2..4", "--arrivals", bad.to_str().unwrap()]);
    let run = pooltune(&["run", "--headless", "--arrivals", bad.to_str().unwrap()]);
    let said = String::from_utf8_lossy(&sweep.stderr);
    assert_eq!(sweep.status.code(), Some(2), "{said}");
    assert_eq!(said.trim().lines().count(), 1, "one line: {said}");
    assert_eq!(said, String::from_utf8_lossy(&run.stderr), "the same words as run");
    // A rate sweep steps the speed itself: --speed beside it is refused.
    let both = pooltune(&["sweep", "rate", "100..200", "--arrivals", bad.to_str().unwrap(), "--speed", "2"]);
    assert_eq!(both.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&both.stderr).contains("--speed sets the rate"));
}
