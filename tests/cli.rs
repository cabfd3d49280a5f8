//! The real binary: exit statuses, one-line errors, output formats, signals.

mod common;

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

fn pooltune(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pooltune")).args(args).stdin(Stdio::null()).output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn bad_flags_get_one_line_naming_what_is_accepted() {
    let cases: &[&[&str]] = &[
        &["run", "--headless", "--workers", "many"],
        &["run", "--headless", "--workers", "100001"],
        &["run", "--headless", "--queue", "0"],
        &["run", "--headless", "--rate", "-5"],
        &["run", "--headless", "--rate", "NaN"],
        &["run", "--headless", "--policy", "lifo"],
        &["run", "--headless", "--arrival", "weekly"],
        &["run", "--headless", "--service", "5"],
        &["run", "--headless", "--service", "2h"],
        &["run", "--headless", "--service-dist", "uniform", "--service-cv", "2"],
        &["run", "--headless", "--service-kind", "nap"],
        &["run", "--headless", "--service-kind", "http"],
        &["run", "--headless", "--service-kind", "spin", "--target", "http://127.0.0.1:1/"],
        &["run", "--headless", "--target", "https://127.0.0.1:1/", "--insecure", "--ca-cert", "ca.pem"],
        &["run", "--headless", "--threads", "1025"],
        &["run", "--headless", "--interval", "1ms"],
        &["run", "--headless", "--duration", "1s", "--warmup", "2s"],
        &["run", "--headless", "--wokers", "3"],
        &["run", "--headless", "--adapt", "tcp-vegas"],
        &["run", "--headless", "--adapt", "vegas", "--workers-min", "10", "--workers-max", "5"],
        &["run", "--headless", "--workers-max", "0"],
        &["run", "--headless", "--contention", "-0.1"],
        &["run", "--headless", "--contention", "NaN"],
        &["run", "--headless", "--coherency", "NaN"],
        &["run", "--headless", "--coherency", "-1"],
        &["run", "--headless", "--json", "/no/such/dir/out.json"],
        &["run", "--headless", "--speed", "5"],
        &["run", "--headless", "--console", "not-an-address"],
        &["run", "--headless", "--duration", "10000000000000000000s"],
        &["run", "--headless", "--duration", "400d"],
        &["run", "--headless", "--warmup", "400d", "--jobs", "10"],
        &["model", "--rate", "1000", "--service", "5ms", "--workers", "4000000000", "--slo-p99", "20ms"],
        &["model", "--rate", "max", "--service", "5ms", "--workers", "2"],
        &["model", "--rate", "100", "--service", "5ms"],
        &["model", "--rate", "100", "--service", "0s", "--workers", "2"],
        &["model", "--rate", "100", "--service", "5ms", "--workers", "0"],
        &["model", "--rate", "-1", "--service", "5ms", "--workers", "2"],
        &["model", "--rate", "100", "--service", "5ms", "--workers", "2", "--service-dist", "lognormal"],
        &["model", "--arrival", "closed", "--service", "5ms", "--workers", "4"],
        &["model", "--arrival", "closed", "--clients", "0", "--service", "5ms", "--workers", "4"],
        &["model", "--arrival", "closed", "--clients", "8", "--rate", "100", "--service", "5ms", "--workers", "4"],
        &["model", "--arrival", "batch", "--service", "5ms", "--workers", "4"],
        &["model", "--arrival", "batch", "--jobs", "0", "--service", "5ms", "--workers", "4"],
        &["model", "--arrival", "batch", "--jobs", "10", "--think", "5ms", "--service", "5ms", "--workers", "4"],
        &["model", "--arrival", "bursty", "--service", "5ms", "--workers", "4"],
        &["model", "--rate", "100", "--jobs", "10", "--service", "5ms", "--workers", "4"],
        &["model", "--arrival", "closed", "--clients", "8", "--service", "5ms", "--workers", "4", "--slo-p99", "20ms"],
        &["model", "--rate", "800", "--service", "5ms", "--workers", "4", "--partitions", "0"],
        &["model", "--rate", "800", "--service", "5ms", "--workers", "4", "--keys", "5"],
        &["model", "--rate", "800", "--service", "5ms", "--workers", "4", "--partitions", "8", "--key-skew", "-1"],
        &["model", "--arrival", "closed", "--clients", "8", "--service", "5ms", "--workers", "4", "--partitions", "8"],
        &["sweep", "wokers", "1..8"],
        &["sweep", "policy", "1..8"],
        &["sweep", "rate", "2000..200"],
        &["sweep", "rate", "200-2000"],
        &["sweep", "rate", "200..2000", "--steps", "1"],
        &["sweep", "rate", "0..2000", "--scale", "log"],
        &["sweep", "rate", "200..2000", "--per-step", "1ms"],
        &["sweep", "rate", "200..2000", "--json", "/no/such/dir/sweep.json"],
        &["sweep", "workers", "0..200000"],
    ];
    let mut all = String::new();
    for args in cases {
        let o = pooltune(args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?} should fail on one line: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        let _ = write!(all, "{}\n  {}", args.join(" "), err);
    }
    insta::assert_snapshot!(all);
}

#[test]
fn help_lists_every_flag() {
    let o = pooltune(&["run", "--help"]);
    assert_eq!(o.status.code(), Some(0));
    insta::assert_snapshot!(String::from_utf8_lossy(&o.stdout));
}

#[test]
fn without_a_terminal_the_dashboard_suggests_headless() {
    let o = pooltune(&[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--headless"), "{}", stderr(&o));
}

#[test]
fn headless_json_and_csv_have_the_documented_fields() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("series.csv");
    let o = pooltune(&[
        "run",
        "--headless",
        "--duration",
        "1s",
        "--warmup",
        "200ms",
        "--rate",
        "300",
        "--threads",
        "1",
        "--json",
        "-",
        "--csv",
        csv.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    for key in [
        "duration_s",
        "config",
        "jobs",
        "throughput_per_s",
        "latency_ms",
        "wait_ms",
        "service_ms",
        "queue_depth",
        "utilisation",
        "model",
    ] {
        assert!(v.get(key).is_some(), "missing {key}");
    }
    for key in ["offered", "completed", "rejected", "dropped", "abandoned"] {
        assert!(v["jobs"][key].is_u64(), "jobs.{key}");
    }
    for dist in ["latency_ms", "wait_ms", "service_ms"] {
        for key in ["mean", "p50", "p90", "p99", "p999", "max"] {
            assert!(v[dist][key].is_number(), "{dist}.{key}");
        }
    }
    for key in ["mean", "max"] {
        assert!(v["queue_depth"][key].is_number(), "queue_depth.{key}");
    }
    for key in [
        "workers",
        "busy_ratio",
        "global_queue_depth",
        "live_tasks",
        "park_count",
        "mean_scheduled_delay_us",
        "mean_poll_us",
        "slow_poll_ratio",
    ] {
        assert!(v["runtime"][key].is_number(), "runtime.{key}: {}", v["runtime"]);
    }
    for key in
        ["workers", "queue", "policy", "arrival", "rate", "service", "service_dist", "service_kind", "threads", "seed"]
    {
        assert!(v["config"].get(key).is_some(), "config.{key}");
    }
    assert!((v["duration_s"].as_f64().unwrap() - 0.8).abs() < 0.05, "the warm-up is left out: {}", v["duration_s"]);
    let jobs = &v["jobs"];
    let n = |k: &str| jobs[k].as_u64().unwrap();
    assert_eq!(n("offered"), n("completed") + n("failed") + n("rejected") + n("dropped") + n("abandoned"));
    // The human summary goes to stderr when stdout carries the JSON.
    assert!(stderr(&o).contains("latency"), "{}", stderr(&o));

    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    assert!(header.starts_with("t_s,offered_per_s,completed_per_s,rejected_per_s,dropped_per_s,queue_depth,in_flight,busy_workers,workers,queue_bound,rate,service_mean_ms,latency_p50_ms,latency_p99_ms,latency_max_ms"));
    for col in [
        "rt_workers",
        "rt_busy_ratio",
        "rt_global_queue_depth",
        "rt_live_tasks",
        "rt_park_count",
        "rt_mean_scheduled_delay_us",
        "rt_mean_poll_us",
        "rt_slow_poll_ratio",
    ] {
        assert!(header.split(',').any(|c| c == col), "CSV lacks {col}");
    }
    let cols = header.split(',').count();
    let rows: Vec<&str> = lines.collect();
    assert!(rows.len() >= 3, "{rows:?}");
    assert!(rows.iter().all(|r| r.split(',').count() == cols));
}

fn assert_whole(json: &Path, csv: &Path) {
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    let jobs = &v["jobs"];
    let n = |k: &str| jobs[k].as_u64().unwrap();
    assert_eq!(n("offered"), n("completed") + n("failed") + n("rejected") + n("dropped") + n("abandoned"));
    let text = std::fs::read_to_string(csv).unwrap();
    let cols = text.lines().next().unwrap().split(',').count();
    assert!(text.ends_with('\n'));
    assert!(text.lines().all(|l| l.split(',').count() == cols));
}

#[test]
fn sigterm_and_sigint_end_the_run_with_whole_outputs() {
    for (signal, code, ended) in
        [(nix::sys::signal::Signal::SIGTERM, 143, "terminate"), (nix::sys::signal::Signal::SIGINT, 130, "interrupt")]
    {
        let dir = tempfile::tempdir().unwrap();
        let (json, csv) = (dir.path().join("out.json"), dir.path().join("out.csv"));
        let child = Command::new(env!("CARGO_BIN_EXE_pooltune"))
            .args(["run", "--headless", "--duration", "60s", "--threads", "1", "--json"])
            .arg(&json)
            .arg("--csv")
            .arg(&csv)
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        // Long enough for a few ticks; the run itself would last a minute.
        std::thread::sleep(Duration::from_millis(800));
        let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
        nix::sys::signal::kill(pid, signal).unwrap();
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(code), "{signal}");
        assert_whole(&json, &csv);
        let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        assert_eq!(v["ended_by"], ended);
        // No temporary files are left beside the outputs.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }
}

#[test]
fn jobs_limit_ends_a_headless_run() {
    let o = pooltune(&[
        "run",
        "--headless",
        "--arrival",
        "batch",
        "--jobs",
        "40",
        "--workers",
        "5",
        "--service",
        "1ms",
        "--json",
        "-",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["ended_by"], "jobs");
    assert_eq!(v["jobs"]["completed"], 40);
}

#[test]
fn model_json_has_the_documented_fields() {
    let o = pooltune(&[
        "model",
        "--rate",
        "2000",
        "--service",
        "4ms",
        "--workers",
        "10",
        "--queue",
        "50",
        "--slo-p99",
        "20ms",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    for key in [
        "rho",
        "p_wait",
        "wait_ms_mean",
        "latency_ms_mean",
        "queue_len_mean",
        "wait_ms_p99",
        "latency_ms_p99",
        "p_reject",
        "workers_needed",
        "max_rate",
    ] {
        assert!(v[key].is_number(), "{key}: {}", v[key]);
    }
    let o =
        pooltune(&["model", "--rate", "100", "--service", "30ms", "--workers", "4", "--slo-mean", "20ms", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["workers_needed"].is_null());
    assert!(v["workers_needed_reason"].as_str().unwrap().contains("service time alone"));
}

/// `pooltune model --partitions`: ordered processing costs p99 against the shared pool with the
/// same workers, the shares add up, and a hot key that overloads its partition makes the ordered
/// figures unstable while the pool still keeps up.
#[test]
fn model_of_a_partitioned_topic() {
    let run = |skew: &str| {
        let args = ["model", "--rate", "800", "--service", "5ms", "--workers", "8", "--partitions", "8"];
        let o = pooltune(&[&args[..], &["--keys", "1000", "--key-skew", skew, "--json"]].concat());
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()
    };
    let even = run("0");
    let shares: f64 = even["shares"].as_array().unwrap().iter().map(|s| s.as_f64().unwrap()).sum();
    assert!((shares - 1.0).abs() < 1e-9, "{shares}");
    assert_eq!(even["layout"]["partitions"], 8);
    let loss = even["pooling_loss"].as_f64().unwrap();
    assert!(loss > 1.5, "8 single-worker queues against one of 8 workers at ρ 0.5: {loss}");
    for key in ["latency_ms_mean", "latency_ms_p99"] {
        let (one, pool) = (even["unordered"][key].as_f64().unwrap(), even["pooled"][key].as_f64().unwrap());
        assert!((one / pool - 1.0).abs() < 1e-9, "{key}: one consumer's pool is the shared pool: {one} against {pool}");
    }
    let hot = run("1");
    assert_eq!(hot["ordered"]["stable"], false, "{}", hot["ordered"]);
    assert_eq!(hot["pooled"]["stable"], true);
    assert!(hot["pooling_loss"].is_null());
}

/// `pooltune model` for a closed loop and a batch prints what a run's model panel shows for the
/// same inputs: the run is fed its measured service mean, so the model command is given that.
#[test]
fn model_prints_what_the_run_predicts_for_closed_loops_and_batches() {
    let run = |args: &[&str]| -> serde_json::Value {
        let mut all = vec!["run", "--headless", "--threads", "1", "--json", "-"];
        all.extend_from_slice(args);
        let o = pooltune(&all);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let batch = ["--arrival", "batch", "--jobs", "40", "--workers", "4", "--service-dist", "constant"];
    let closed = ["--arrival", "closed", "--clients", "6", "--think", "5ms", "--workers", "3", "--duration", "2s"];
    for (shape, flags) in [("batch", &batch[..]), ("closed", &closed[..])] {
        let mut args = flags.to_vec();
        args.extend_from_slice(&["--service", "2ms"]);
        let r = run(&args);
        let inputs = &r["model"]["inputs"];
        let fed = format!("{}us", (inputs["service_ms_mean"].as_f64().unwrap() * 1e3).round());
        let cv = inputs["service_cv"].as_f64().unwrap().to_string();
        let think = format!("{}us", (inputs["think_ms"].as_f64().unwrap_or(0.0) * 1e3).round());
        let mut margs: Vec<&str> = vec!["model", "--json", "--service", &fed];
        let mut flags: Vec<&str> = flags.iter().copied().filter(|f| *f != "--duration" && *f != "2s").collect();
        if shape == "closed" {
            // The measured CV and think time, as the run fed them (the CV exponential within
            // sampling noise reads 1; each think runs a little long).
            margs.extend(["--service-cv", &cv]);
            let at = flags.iter().position(|f| *f == "--think").unwrap();
            flags[at + 1] = &think;
        }
        margs.extend(flags);
        let o = pooltune(&margs);
        assert_eq!(o.status.code(), Some(0), "{shape}: {}", stderr(&o));
        let m: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let p = &r["model"]["predicted"];
        assert_eq!(m["method"], p["method"], "{shape}");
        for key in ["throughput_per_s", "latency_ms_mean", "wait_ms_mean"] {
            let (a, b) = (m[key].as_f64().unwrap(), p[key].as_f64().unwrap());
            // The run's service mean is rounded to the microsecond for the command line.
            assert!((a / b - 1.0).abs() < 2e-3, "{shape} {key}: model {a}, run {b}");
        }
    }
}

/// A short sweep writes the documented JSON and one CSV row per step.
#[test]
fn sweep_json_and_csv_have_the_documented_fields() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("sweep.csv");
    let o = pooltune(&[
        "sweep",
        "workers",
        "1..3",
        "--steps",
        "3",
        "--per-step",
        "300ms",
        "--settle",
        "100ms",
        "--rate",
        "200",
        "--service",
        "2ms",
        "--threads",
        "1",
        "--slo-p99",
        "50ms",
        "--json",
        "-",
        "--csv",
        csv.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["knob"], "workers");
    let steps = v["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 3);
    for key in ["value", "offered_per_s", "throughput_per_s", "utilisation", "rejected", "dropped"] {
        assert!(steps[0][key].is_number(), "{key}: {}", steps[0][key]);
    }
    assert!(steps[0]["latency_ms"]["p99"].is_number() && steps[0]["saturated"].is_boolean());
    for key in ["p99_ms", "max_passing", "first_failing", "model_answer"] {
        assert!(v["slo"].get(key).is_some(), "slo.{key}");
    }
    assert!(v["verdict"].is_string());
    let rows = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(rows.lines().count(), 4, "a header and one row per step: {rows}");
    // Progress is drawn only on a terminal: this stderr is a pipe.
    assert!(!stderr(&o).contains("step") && !stderr(&o).contains('\r'), "no progress in a pipe: {}", stderr(&o));
}

#[test]
fn model_says_unstable_in_words() {
    let o = pooltune(&["model", "--rate", "5000", "--service", "1ms", "--workers", "4"]);
    assert_eq!(o.status.code(), Some(0));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("unstable") && text.contains("1000.0 jobs/s"), "{text}");
    assert!(!text.contains("NaN") && !text.contains("inf"), "{text}");
    // Four workers of 1 ms complete 4,000 jobs/s at most, whatever arrives.
    assert!(text.contains("throughput /s      4000.00"), "{text}");
}

#[test]
fn a_controller_starts_inside_its_bounds() {
    let o = pooltune(&["run", "--headless", "--adapt", "vegas", "--workers", "0", "--duration", "1s", "--json", "-"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("--adapt vegas starts inside --workers-min..--workers-max (1..1000): workers 0 -> 1"));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["jobs"]["completed"].as_u64().unwrap() > 0, "{v}");
}

#[cfg(not(feature = "console"))]
#[test]
fn console_without_the_feature_says_how_to_build_it() {
    let o = pooltune(&["run", "--headless", "--console"]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("cargo build --release --features console"), "{err}");
}

/// `--version` names the build's commit (this is a git checkout) and its features; the
/// completion scripts and the man page are made for every shell and subcommand.
#[test]
fn version_completions_and_man_page() {
    let v = pooltune(&["--version"]);
    let text = String::from_utf8_lossy(&v.stdout);
    let head = std::process::Command::new("git").args(["rev-parse", "--short=12", "HEAD"]).output().ok();
    if head.is_some_and(|h| h.status.success()) {
        // A build from an earlier commit of this checkout names that one: only its form is checked.
        let commit = text.split_once('(').map_or("", |(_, r)| r.split(' ').next().unwrap_or_default());
        assert!(commit.len() == 12 && commit.chars().all(|c| c.is_ascii_hexdigit()), "{text}");
    }
    assert!(text.contains("features: cli, broker"), "{text}");
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let o = pooltune(&["completions", shell]);
        let script = String::from_utf8_lossy(&o.stdout);
        assert!(o.status.success() && script.contains("pooltune") && script.contains("run-name"), "{shell}");
    }
    let o = pooltune(&["completions", "tcsh"]);
    assert_eq!(o.status.code(), Some(2));
    let man = pooltune(&["man"]);
    let page = String::from_utf8_lossy(&man.stdout);
    assert!(man.status.success() && page.starts_with(".ie") && page.contains(".TH pooltune 1"), "{page:.200}");
    assert!(page.contains(".SH \"POOLTUNE SWEEP\"") && page.contains("\\-\\-arrivals"), "every subcommand");
}
