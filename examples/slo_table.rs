//! The adaptive controllers against a p99 target, side by side: prints the README's table.
//!
//! For each scenario and seed it starts one `pooltune run --headless` per controller at once (so
//! they share the machine's noise), reads each run's JSON, and prints the median over the seeds
//! (and the spread, least to most) of the SLO attainment, the worker-seconds and their ratio to
//! the hindsight schedule of the same run.
//!
//! ```text
//! cargo build --release && cargo run --release --example slo_table -- [--seeds 3] [--only knee|mmpp]
//! ```
//! `POOLTUNE_BIN` names the binary (default `target/release/pooltune`).

use std::path::PathBuf;
use std::process::{Command, Stdio};

use std::time::Duration;

use pooltune::adapt::sizer::Sizer;
use pooltune::settings::{ArrivalKind, Rate, Settings};
use serde_json::Value;

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_string()).collect()
}

struct Scenario {
    name: &'static str,
    /// The command's common part.
    common: Vec<&'static str>,
    /// Each controller's own flags.
    runs: Vec<(&'static str, Vec<String>)>,
}

fn scenarios() -> Vec<Scenario> {
    let cap = ["--workers-max", "16"];
    let controllers = |static_workers: String, queue_target: &'static str| {
        vec![
            ("slo", strings(&[&["--adapt", "slo", "--workers", "4"][..], &cap].concat())),
            (
                "queue-length",
                strings(
                    &[&["--adapt", "queue-length", "--workers", "4", "--queue-target", queue_target][..], &cap]
                        .concat(),
                ),
            ),
            ("vegas", strings(&[&["--adapt", "vegas", "--workers", "4"][..], &cap].concat())),
            ("gradient2", strings(&[&["--adapt", "gradient2", "--workers", "4"][..], &cap].concat())),
            ("static", vec!["--workers".to_string(), static_workers]),
        ]
    };
    let fewest = |s: &Settings, t: f64| {
        let sizer = Sizer::of(s);
        let rate = match s.rate {
            Rate::PerSec(r) => r,
            Rate::Max => f64::NAN,
        };
        sizer.fewest(rate, s.service.as_secs_f64(), sizer.service_cv, t).expect("a pool meets the target").to_string()
    };
    let knee = Settings { rate: Rate::PerSec(1000.0), service: Duration::from_millis(5), ..Settings::default() };
    let mmpp = Settings {
        arrival: ArrivalKind::Bursty,
        rate: Rate::PerSec(200.0),
        burst_on: Duration::from_millis(250),
        burst_off: Duration::from_millis(750),
        ..knee.clone()
    };
    vec![
        Scenario {
            name: "knee",
            // The static pool: the model's fewest for the peak, 1,000 jobs/s.
            runs: controllers(fewest(&knee, 0.030), "1"),
            // 400 → 1,000 jobs/s (ramped from 10 s to 50 s), 5 ms exponential, 60 s, 2 s settle.
            common: vec!["run", "knee", "--headless", "--slo-p99", "30ms"],
        },
        Scenario {
            name: "mmpp",
            runs: controllers(fewest(&mmpp, 0.050), "1"),
            // On/off (MMPP) arrivals, 250 ms bursts at 4× the mean rate (800 jobs/s) every second.
            common: vec![
                "run",
                "--headless",
                "--arrival",
                "bursty",
                "--rate",
                "200",
                "--burst-on",
                "250ms",
                "--burst-off",
                "750ms",
                "--service",
                "5ms",
                "--queue",
                "2000",
                "--duration",
                "60s",
                "--warmup",
                "5s",
                "--slo-p99",
                "50ms",
            ],
        },
    ]
}

#[derive(Default, Clone, Copy)]
struct Row {
    attainment: f64,
    worker_seconds: f64,
    hindsight: f64,
    static_ws: f64,
    static_workers: f64,
    p99: f64,
    rejected: f64,
}

fn read(path: &PathBuf) -> Row {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let v: Value = serde_json::from_str(&text).expect("the run's JSON");
    let f = |x: &Value| x.as_f64().unwrap_or(f64::NAN);
    let a = &v["adapt"];
    Row {
        attainment: f(&a["slo_attainment"]),
        worker_seconds: f(&a["worker_seconds"]),
        hindsight: f(&a["hindsight_worker_seconds"]),
        static_ws: f(&a["static_worker_seconds"]),
        static_workers: f(&a["static_workers"]),
        p99: f(&v["latency_ms"]["p99"]),
        rejected: f(&v["measured_jobs"]["rejected"]),
    }
}

fn median(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let seeds: u64 = flag("--seeds").map_or(3, |s| s.parse().expect("--seeds N"));
    let only = flag("--only");
    let bin = std::env::var("POOLTUNE_BIN").unwrap_or_else(|_| "target/release/pooltune".into());
    let dir = tempfile::tempdir().expect("a temporary directory");
    for sc in scenarios().into_iter().filter(|s| only.as_deref().is_none_or(|o| o == s.name)) {
        let mut rows: Vec<Vec<Row>> = vec![Vec::new(); sc.runs.len()];
        for seed in 1..=seeds {
            let children: Vec<_> = sc
                .runs
                .iter()
                .enumerate()
                .map(|(i, (_, own))| {
                    let json = dir.path().join(format!("{}-{seed}-{i}.json", sc.name));
                    let seed = seed.to_string();
                    let child = Command::new(&bin)
                        .args(&sc.common)
                        .args(own)
                        .args(["--seed", &seed, "--json", json.to_str().unwrap()])
                        .stdin(Stdio::null())
                        .stdout(Stdio::null())
                        .spawn()
                        .unwrap_or_else(|e| panic!("{bin}: {e} (set POOLTUNE_BIN or build --release)"));
                    (child, json)
                })
                .collect();
            for (i, (mut child, json)) in children.into_iter().enumerate() {
                assert!(child.wait().expect("the run ended").success(), "{} {:?} failed", sc.name, sc.runs[i]);
                rows[i].push(read(&json));
            }
            eprintln!("{}: seed {seed} done", sc.name);
        }
        println!("\n{} (median of {seeds} seeds; least..most in brackets)", sc.name);
        println!(
            "| controller | SLO attainment | worker-seconds | × hindsight | × static | whole-run p99 ms | refused |"
        );
        println!("|---|---|---|---|---|---|---|");
        for ((name, _), r) in sc.runs.iter().zip(&rows) {
            let m = |g: fn(&Row) -> f64| median(r.iter().map(g).collect());
            let (att, alo, ahi) = m(|x| x.attainment);
            let (ws, wlo, whi) = m(|x| x.worker_seconds);
            let (xh, hlo, hhi) = m(|x| x.worker_seconds / x.hindsight);
            let (xs, _, _) = m(|x| x.worker_seconds / x.static_ws);
            let (p99, _, _) = m(|x| x.p99);
            let (rej, _, _) = m(|x| x.rejected);
            println!(
                "| {name} | {:.1}% [{:.1}..{:.1}] | {ws:.0} [{wlo:.0}..{whi:.0}] | {xh:.2} [{hlo:.2}..{hhi:.2}] | {xs:.2} | {p99:.1} | {rej:.0} |",
                att * 100.0,
                alo * 100.0,
                ahi * 100.0
            );
        }
        let (h, _, _) = median(rows[0].iter().map(|x| x.hindsight).collect());
        let (s, _, _) = median(rows[0].iter().map(|x| x.static_ws).collect());
        let (n, _, _) = median(rows[0].iter().map(|x| x.static_workers).collect());
        println!("| hindsight schedule | | {h:.0} | 1.00 | {:.2} | | |", h / s);
        println!("| best static pool ({n:.0} workers, by the model) | | {s:.0} | {:.2} | 1.00 | | |", s / h);
    }
}
