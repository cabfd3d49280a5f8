//! Service times drawn from a sample (`--service-dist empirical`): a run measures the sample's
//! mean and p99 scaled to the `service` knob; the command line starts at the sample's mean and
//! reports it; a run's JSON serves as a sample; profiles name one beside them; and every bad
//! sample is one line, exit status 2, before the run.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::{assert_accounted, exclusive, settings};
use pooltune::engine::{EngineHandle, QueueChoice, RunOptions, Supplied};
use pooltune::metrics::Snapshot;
use pooltune::model::sample::ServiceSample;
use pooltune::settings::{Policy, Rate, ServiceDist, Settings};

const FIXTURES: &str = "tests/fixtures/samples";

fn pooltune(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pooltune")).args(args).stdin(Stdio::null()).output().unwrap()
}

fn fixture(name: &str) -> String {
    Path::new(FIXTURES).join(name).to_str().unwrap().to_string()
}

/// The fixture's values, in milliseconds, sorted: 900 of 4–6 ms and 100 of 40–60 ms.
fn bimodal_ms() -> Vec<f64> {
    let text = std::fs::read_to_string(fixture("service-times.txt")).unwrap();
    let mut v: Vec<f64> = text.lines().map(|l| l.trim_end_matches("ms").parse().unwrap()).collect();
    v.sort_by(f64::total_cmp);
    v
}

fn run(s: Settings, sample: Option<Arc<ServiceSample>>, secs: u64) -> Snapshot {
    let opts = RunOptions {
        duration: Some(Duration::from_secs(secs)),
        interval: Duration::from_millis(100),
        ..Default::default()
    };
    let supplied = Supplied { service_sample: sample, ..Supplied::default() };
    EngineHandle::start_supplied(s, opts, QueueChoice::InProcess, supplied).expect("valid settings").join()
}

/// The measured service mean and p99 are the sample's, scaled by the `service` knob (1.5 times
/// the sample's mean here), within a tolerance derived from the run:
/// - **sampling**: n measured jobs are n independent draws. Their mean has standard error σ/√n
///   (σ the scaled sample's standard deviation); their p99 is the sample's quantile at a rank
///   that moves by √(0.99·0.01/n) of n: the band is the sample's quantiles at 0.99 ± 4 of those.
/// - **the timer**: a sleep ends up to 0.2 ms early (its learned wake-up latency, bounded by
///   `MAX_EARLY_NS`) and late by what this machine's load makes it; the lateness is measured by
///   a control run just before (constant service at the same mean, rate and pool, as long) and
///   allowed twice over (the load can change between the two runs), plus HDR's 0.1% resolution.
///
/// An exponential of the same mean would put the p99 at 4.6 × 14.3 = 66 ms, well below the
/// band (84–89 ms before lateness); drawing the sample unscaled, at 57 ms.
#[test]
fn a_run_measures_the_samples_mean_and_p99_scaled_to_the_knob() {
    let _g = exclusive();
    let values = bimodal_ms();
    let sample =
        Arc::new(ServiceSample::from_values("bimodal", values.iter().map(|v| (v * 1e6) as u64).collect()).unwrap());
    let own = sample.mean().as_secs_f64() * 1e3;
    let service = Duration::from_micros((own * 1.5 * 1e3).round() as u64);
    let scale = service.as_secs_f64() * 1e3 / own;
    let base = Settings {
        workers: 64,
        queue: 10_000,
        policy: Policy::Block,
        rate: Rate::PerSec(400.0),
        service,
        ..settings()
    };
    let control = run(Settings { service_dist: ServiceDist::Constant, ..base.clone() }, None, 5);
    let mean_ms = service.as_secs_f64() * 1e3;
    let late_mean = (control.measured.latency.service.mean - mean_ms).max(0.0);
    let late_p99 = (control.measured.latency.service.p99 - mean_ms).max(0.0);
    let last = run(Settings { service_dist: ServiceDist::Empirical, ..base }, Some(sample.clone()), 5);
    assert_accounted(&last);
    let m = &last.measured.latency.service;
    let n = m.count as f64;
    eprintln!(
        "sample scaled ×{scale:.3}: mean {:.3} ms (asked {mean_ms:.3}), p99 {:.3} ms (the sample's ×{scale:.3}: {:.3}); \
         control lateness mean {late_mean:.3} ms, p99 {late_p99:.3} ms; n {n}",
        m.mean,
        m.p99,
        57.9 * scale
    );
    assert!(n > 1000.0, "enough jobs to measure: {n}");
    let sd = sample.cv() * mean_ms;
    let early = 0.2;
    let (lo, hi) = (mean_ms - 4.0 * sd / n.sqrt() - early, mean_ms + 4.0 * sd / n.sqrt() + 2.0 * late_mean);
    assert!((lo..=hi).contains(&m.mean), "mean {:.3} ms, expected {lo:.3} to {hi:.3} (n {n})", m.mean);
    let rank = |p: f64| values[((p * values.len() as f64).ceil() as usize).clamp(1, values.len()) - 1];
    let band = 4.0 * (0.99 * 0.01 / n).sqrt();
    let lo = rank(0.99 - band) * scale * 0.999 - early;
    let hi = rank(0.99 + band) * scale * 1.001 + 2.0 * late_p99;
    assert!((lo..=hi).contains(&m.p99), "p99 {:.3} ms, expected {lo:.3} to {hi:.3} (n {n})", m.p99);
}

/// `--service-sample` alone: the distribution is empirical, the `service` knob starts at the
/// sample's mean, and the JSON's config names the sample with its mean, CV and p99.
#[test]
fn the_command_line_starts_at_the_samples_mean_and_reports_it() {
    let o = pooltune(&[
        "run",
        "--headless",
        "--duration",
        "1s",
        "--rate",
        "100",
        "--workers",
        "8",
        "--service-sample",
        &fixture("service-times.txt"),
        "--json",
        "-",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let c = &v["config"];
    assert_eq!(c["service_dist"], "empirical");
    assert_eq!(c["service"], "9.5ms", "the knob starts at the sample's mean");
    let s = &c["service_sample"];
    assert_eq!((s["count"].as_u64(), s["kind"].as_str()), (Some(1000), Some("values")));
    assert!((s["mean_ms"].as_f64().unwrap() - 9.5).abs() < 1e-3, "{s}");
    assert!((s["p99_ms"].as_f64().unwrap() - 57.9).abs() < 1e-3, "{s}");
    assert!((s["cv"].as_f64().unwrap() - 1.43).abs() < 0.01, "{s}");
    let summary = String::from_utf8_lossy(&o.stderr);
    assert!(
        summary.contains("sample    tests/fixtures/samples/service-times.txt: 1000 values, mean 9.5ms"),
        "{summary}"
    );
}

/// A run's JSON is a sample: its service percentiles, scaled to the mean asked.
#[test]
fn a_runs_json_serves_as_a_sample() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("run.json");
    let first = ["run", "--headless", "--duration", "1s", "--rate", "200", "--service", "3ms"];
    let o = pooltune(&[&first[..], &["--service-dist", "constant", "--json", json.to_str().unwrap()]].concat());
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let o =
        pooltune(&["model", "--rate", "200", "--workers", "2", "--service-sample", json.to_str().unwrap(), "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let s = &v["service_sample"];
    assert_eq!(s["kind"], "percentiles of a run", "{v}");
    // The sample is the run's own service figures: its count, mean and p99 exactly (what the
    // run measured, whatever the machine's timer did to the 3 ms asked), and a spread that
    // follows from them.
    let run: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let measured = &run["service_ms"];
    assert_eq!(s["count"], measured["count"], "{s} vs {measured}");
    assert!((s["mean_ms"].as_f64().unwrap() - measured["mean"].as_f64().unwrap()).abs() < 1e-9, "{s} vs {measured}");
    assert!((s["p99_ms"].as_f64().unwrap() - measured["p99"].as_f64().unwrap()).abs() < 1e-9, "{s} vs {measured}");
    assert!(s["cv"].as_f64().unwrap() > 0.0, "{s}");
    assert!((v["rho"].as_f64().unwrap() - 200.0 * s["mean_ms"].as_f64().unwrap() / 1e3 / 2.0).abs() < 1e-6, "{v}");
}

/// Every bad sample, and `empirical` without one: exit status 2, one line naming the file (and
/// the line) and what is accepted, before anything runs.
#[test]
fn bad_samples_are_one_line_exit_2() {
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["--service-dist".into(), "empirical".into()], "--service-sample FILE"),
        (vec!["--service-sample".into(), fixture("missing.txt")], "missing.txt: cannot read the service sample"),
        (vec!["--service-sample".into(), fixture("empty.txt")], "empty.txt: no service times: the file is empty"),
        (vec!["--service-sample".into(), fixture("header-only.csv")], "header-only.csv: no service times: the header"),
        (vec!["--service-sample".into(), fixture("negative.txt")], "negative.txt:3: service value '-3ms' is negative"),
        (vec!["--service-sample".into(), fixture("not-a-duration.csv")], "not-a-duration.csv:3: service value 'fast'"),
        (
            vec!["--service-sample".into(), fixture("bare-numbers.txt")],
            "bare-numbers.txt:1: service value '4' is a bare",
        ),
        (
            vec!["--service-sample".into(), fixture("all-zero.txt")],
            "all-zero.txt: every service time in the sample is 0",
        ),
        (vec!["--service-sample".into(), fixture("no-histogram.json")], "no-histogram.json: the JSON document has no"),
        (
            vec![
                "--service-sample".into(),
                fixture("service-times.txt"),
                "--service-sample-unit".into(),
                "hours".into(),
            ],
            "'hours' is not a time unit",
        ),
    ];
    for (extra, want) in cases {
        common::refused_run(&extra, want);
    }
    // A trace's own service times and a sample cannot both give a job its time.
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("t.csv");
    std::fs::write(&trace, "t,s\n0,4ms\n0.5,5ms\n1,6ms\n").unwrap();
    let o = pooltune(&[
        "run",
        "--headless",
        "--arrivals",
        trace.to_str().unwrap(),
        "--service-column",
        "s",
        "--service-sample",
        &fixture("service-times.txt"),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("give one"), "{}", String::from_utf8_lossy(&o.stderr));
}

/// A profile's `[service_sample]` is read beside the profile, wherever the run starts from; a
/// recording of the run names it again and replays.
#[test]
fn a_profile_draws_from_the_sample_beside_it_and_a_recording_keeps_it() {
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("rec.toml");
    let profile = std::fs::canonicalize(fixture("sampled.toml")).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_pooltune"))
        .args(["run", profile.to_str().unwrap(), "--headless", "--json", "-", "--record", rec.to_str().unwrap()])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["config"]["service_dist"], "empirical");
    assert!(v["config"]["service_sample"]["file"].as_str().unwrap().ends_with("samples/service-times.txt"), "{v}");
    let recorded = std::fs::read_to_string(&rec).unwrap();
    assert!(recorded.contains("[service_sample]\nfile = "), "{recorded}");
    let o = pooltune(&["run", rec.to_str().unwrap(), "--headless", "--duration", "300ms", "--json", "-"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["config"]["service_sample"]["count"], 1000);
}

/// `model` on a trace and `sweep` draw from the sample too: the simulation replicates its draws
/// (10, with an interval) at the sample's mean, so the pool is as busy as the trace's rate ×
/// 9.5 ms over 4 workers; the sweep's settings name the sample.
#[test]
fn model_on_a_trace_and_sweep_draw_from_the_sample() {
    let sample = fixture("service-times.txt");
    let o = pooltune(&[
        "model",
        "--arrivals",
        "profiles/bursty-trace.csv",
        "--workers",
        "4",
        "--service-sample",
        &sample,
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!((v["spread"]["reps"].as_u64(), v["service_sample"]["count"].as_u64()), (Some(10), Some(1000)), "{v}");
    assert!(v["spread"]["response_ms"]["mean"].as_f64().unwrap() > 0.0, "draws vary: {v}");
    let busy = v["simulation"]["busy"].as_f64().unwrap();
    let want = v["rate_per_s"].as_f64().unwrap() * 0.0095 / 4.0;
    assert!((busy - want).abs() < 0.05 * want, "busy {busy}, rate × 9.5 ms / 4 = {want}");
    let o = pooltune(&[
        "sweep",
        "workers",
        "2..4",
        "--steps",
        "2",
        "--per-step",
        "300ms",
        "--settle",
        "100ms",
        "--rate",
        "100",
        "--service-sample",
        &sample,
        "--json",
        "-",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (v["settings"]["service_dist"].as_str(), v["settings"]["service"].as_str()),
        (Some("empirical"), Some("9.5ms"))
    );
    assert_eq!(v["settings"]["service_sample"]["count"], 1000, "{}", v["settings"]);
}
