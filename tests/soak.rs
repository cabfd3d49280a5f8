//! Soak: long headless runs at the engine's ceiling, at 50,000 jobs/s with 1 ms service, and at
//! 20,000 jobs/s with a 60 s `--timeout` that every job beats (each leaves a cancelled timer
//! sleep behind), sampling resident memory every second. Not run by CI (ignored); run it with
//!
//! ```sh
//! cargo test --release --test soak -- --ignored --nocapture        # 10 minutes each
//! SOAK_SECONDS=60 cargo test --release --test soak -- --ignored --nocapture
//! ```
//!
//! Checks: after the warm-up, memory stays flat (max − min within 10% of max) and under
//! 100 MiB, and every job is accounted for at the end.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok()
}

fn soak(name: &str, extra: &[&str]) {
    let secs: u64 = std::env::var("SOAK_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(600);
    let warm = (secs / 20).max(5);
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("soak.json");
    let mut args = vec!["run".to_string(), "--headless".into(), "--duration".into(), format!("{secs}s")];
    args.extend(["--warmup".into(), format!("{warm}s"), "--json".into(), json.display().to_string()]);
    args.extend(extra.iter().map(|s| (*s).to_string()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_pooltune")).args(&args).stdout(Stdio::null()).spawn().unwrap();
    let start = Instant::now();
    let mut samples = Vec::new();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() >= Duration::from_secs(warm)
            && let Some(kib) = rss_kib(child.id())
        {
            samples.push(kib);
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let j = &v["jobs"];
    let n = |k: &str| j[k].as_u64().unwrap();
    let (min, max) = (*samples.iter().min().unwrap(), *samples.iter().max().unwrap());
    println!(
        "soak {name}: {secs} s, {} jobs completed ({:.0}/s measured), RSS after warm-up {:.1}–{:.1} MiB over {} samples, spread {:.1}%",
        n("completed"),
        v["throughput_per_s"].as_f64().unwrap(),
        min as f64 / 1024.0,
        max as f64 / 1024.0,
        samples.len(),
        (max - min) as f64 / max as f64 * 100.0
    );
    assert_eq!(n("offered"), n("completed") + n("failed") + n("rejected") + n("dropped") + n("abandoned"), "{j}");
    assert!(max < 100 * 1024, "{name}: {max} KiB resident");
    assert!((max - min) as f64 <= 0.10 * max as f64, "{name}: memory grew from {min} to {max} KiB");
}

#[test]
#[ignore = "a 10-minute soak; run by hand (see the module doc)"]
fn soak_at_the_ceiling() {
    soak("ceiling", &["--rate", "max", "--service", "0s", "--workers", "4", "--queue", "1024"]);
}

#[test]
#[ignore = "a 10-minute soak; run by hand (see the module doc)"]
fn soak_at_50k_per_s_with_1ms_service() {
    soak("50k/s 1ms", &["--rate", "50000", "--service", "1ms", "--workers", "256", "--queue", "10000"]);
}

#[test]
#[ignore = "a 10-minute soak; run by hand (see the module doc)"]
fn soak_with_a_timeout_every_job_beats() {
    soak("timeout", &["--rate", "20000", "--workers", "64", "--service", "1ms", "--timeout", "60s"]);
}
