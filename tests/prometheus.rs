//! `--metrics-addr` end to end: a real Prometheus scrapes a run and what it stored is checked
//! against the run's own JSON, with every query of the Grafana dashboard; every metric the
//! README lists is found in a live `/metrics` (a run, an adaptive run, a sweep, a broker run and
//! its worker node); a port in use or a bad address is refused before the run.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::prometheus::{Prometheus, Served, unix_now};
use common::servers::{Nats, free_port};
use serde_json::Value;

/// The queries the comparison rests on; the Grafana dashboard must hold the same ones.
const COMPLETED_RATE: &str = r#"rate(pooltune_jobs_total{outcome="completed"}[5s])"#;
const P99_WINDOW: &str = "histogram_quantile(0.99, rate(pooltune_response_seconds_bucket[5s]))";
const P99_RUN: &str = "histogram_quantile(0.99, pooltune_response_seconds_bucket)";
const MODEL_P99: &str = r#"pooltune_model_response_seconds{stat="p99"}"#;
const DASHBOARD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/contrib/grafana/pooltune.json");

/// The run's snapshot tick (the default `--interval`).
const TICK_S: f64 = 0.25;

fn pooltune(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pooltune")).args(args).output().unwrap()
}

fn num(v: &Value) -> f64 {
    v.as_str().and_then(|s| s.parse().ok()).or_else(|| v.as_f64()).unwrap_or(f64::NAN)
}

/// The dashboard's queries, with its `$window` at 5 s.
fn dashboard_queries() -> Vec<String> {
    let d: Value = serde_json::from_str(&std::fs::read_to_string(DASHBOARD).unwrap()).expect("the dashboard is JSON");
    let panels = d["panels"].as_array().expect("panels");
    panels
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .map(|t| t["expr"].as_str().expect("a target's expr").replace("$window", "5s"))
        .collect()
}

#[test]
fn prometheus_agrees_with_the_runs_own_json() {
    let metrics: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let Some(prom) = Prometheus::start(metrics) else { return };
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("run.json");
    let _alone = common::exclusive();
    let mut run = Command::new(env!("CARGO_BIN_EXE_pooltune"))
        .args(["run", "--headless", "--duration", "12s", "--rate", "400", "--metrics-addr", &metrics.to_string()])
        .arg("--json")
        .arg(&json)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    // While it runs: Prometheus already holds its counts (a liveness bound, not a timing one).
    let start = Instant::now();
    while prom.value(r#"pooltune_jobs_total{outcome="completed"}"#, unix_now()).is_none_or(|v| v <= 0.0) {
        assert!(run.try_wait().unwrap().is_none(), "the run ended before Prometheus had scraped it");
        assert!(start.elapsed() < Duration::from_secs(10), "Prometheus stored nothing within 10 s of the run");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(run.wait().unwrap().success());
    let j: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let (throughput, completed) = (j["throughput_per_s"].as_f64().unwrap(), j["jobs"]["completed"].as_f64().unwrap());
    let p99 = j["latency_ms"]["p99"].as_f64().unwrap() / 1e3;

    // The samples Prometheus stored of the run.
    let samples = prom.query(r#"pooltune_jobs_total{outcome="completed"}[1m]"#, unix_now());
    let samples: Vec<(f64, f64)> =
        samples[0]["values"].as_array().expect("stored samples").iter().map(|s| (num(&s[0]), num(&s[1]))).collect();
    assert!(samples.len() >= 10, "a 12 s run scraped every second: {samples:?}");
    let (first, (last, at_last)) = (samples[0].0, *samples.last().unwrap());
    // The last scrape saw the counts of a tick at most 1 s + a tick before the run's end.
    let unseen = completed - at_last;
    assert!((0.0..=throughput * (1.0 + TICK_S) * 1.2 + 10.0).contains(&unseen), "{at_last} of {completed} jobs");

    // Throughput: the rate a Grafana panel draws, a point a second, against the JSON's. A point
    // counts four seconds of jobs, about 1,600: Poisson noise alone is ±√1600 (2.5%), more if the
    // machine stalls the run for a while. Their mean telescopes to the count between the run's
    // first few and last few seconds: most of the JSON's own jobs, the rest differing by about
    // √(1/3200 − 1/4800) ≈ 1% of the rate for a steady run, so 5% is ~5σ.
    let points: Vec<f64> = prom.query_range(COMPLETED_RATE, first + 5.0, last)[0]["values"]
        .as_array()
        .expect("a rate series")
        .iter()
        .map(|p| num(&p[1]))
        .collect();
    assert!(points.len() >= 5, "{points:?}");
    let mean = points.iter().sum::<f64>() / points.len() as f64;
    assert!((mean / throughput - 1.0).abs() <= 0.05, "rate over the run {mean:.1}/s, JSON {throughput:.1}/s");

    // p99 over every job up to the last scrape, within the width of the JSON p99's bucket.
    let buckets = prom.query("pooltune_response_seconds_bucket", last);
    let mut bounds: Vec<f64> = buckets.as_array().unwrap().iter().map(|b| num(&b["metric"]["le"])).collect();
    bounds.retain(|b| b.is_finite());
    bounds.sort_by(f64::total_cmp);
    let i = bounds.partition_point(|b| *b < p99);
    assert!(i > 0 && i < bounds.len(), "the p99 {p99} lies inside the buckets {bounds:?}");
    let width = bounds[i] - bounds[i - 1];
    let run_p99 = prom.value(P99_RUN, last).expect("a p99 over the run");
    assert!((run_p99 - p99).abs() <= width, "p99 {run_p99} from Prometheus, {p99} in the JSON, bucket {width}");
    // The last 5 s alone (the Grafana panel's p99) is a p99 of other jobs: shown beside, and
    // only checked to lie inside the buckets' range.
    let window_p99 = prom.value(P99_WINDOW, last).expect("a 5 s p99");
    assert!((bounds[0]..=bounds[bounds.len() - 1]).contains(&window_p99), "5 s p99 {window_p99}");

    // The model beside them: its inputs at the last scrape lack at most the run's last 1.25 s
    // (a tenth of its jobs), which moves ρ by well under 1% and the M/M/4 p99 by about twice that.
    let model = j["model"]["predicted"]["latency_ms_p99"].as_f64().unwrap() / 1e3;
    let model_scraped = prom.value(MODEL_P99, last).expect("the model's p99");
    assert!((model_scraped / model - 1.0).abs() <= 0.1, "model p99 {model_scraped} scraped, {model} in the JSON");

    // The Grafana dashboard's queries: the comparison's own, and every one answers.
    let queries = dashboard_queries();
    for q in [COMPLETED_RATE, P99_WINDOW, P99_RUN, MODEL_P99] {
        assert!(queries.iter().any(|d| d == q), "the dashboard lacks {q}");
    }
    for q in queries.iter().filter(|q| !q.contains("adaptive")) {
        assert!(!prom.query(q, last).as_array().unwrap().is_empty(), "the dashboard's {q} has no answer");
    }
    println!(
        "prometheus vs JSON: throughput {mean:.1}/s (5 s points {:.1}..{:.1}) vs {throughput:.1}/s; \
         p99 over the run {:.2} ms vs {:.2} ms (bucket {:.2} ms wide), last 5 s {:.2} ms; \
         model p99 {:.2} ms vs {:.2} ms; completed {at_last} at the last scrape of {completed}",
        points.iter().copied().fold(f64::INFINITY, f64::min),
        points.iter().copied().fold(0.0, f64::max),
        run_p99 * 1e3,
        p99 * 1e3,
        width * 1e3,
        window_p99 * 1e3,
        model_scraped * 1e3,
        model * 1e3,
    );
}

/// A row of the README's metric table: the name, its labels (each with the values it must take,
/// if the table names them) and when it is exported.
struct Row {
    name: String,
    labels: Vec<(String, Vec<String>)>,
    when: String,
}

fn readme() -> (Vec<Row>, String) {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let from = text.find("## Prometheus and Grafana").expect("the README's section");
    let to = text[from + 1..].find("\n## ").map_or(text.len(), |n| from + 1 + n);
    let section = &text[from..to];
    let rows = section
        .lines()
        .filter(|l| l.starts_with("| `pooltune_"))
        .map(|l| {
            let cells: Vec<&str> = l.split(" | ").map(|c| c.trim_matches(|c| c == '|' || c == ' ')).collect();
            let labels = cells[2]
                .split(';')
                .filter(|c| c.contains('`'))
                .flat_map(|c| {
                    let (keys, values) = c.split_once(':').unwrap_or((c, ""));
                    let values: Vec<String> =
                        values.split(',').map(|v| v.trim().to_string()).filter(|v| !v.is_empty()).collect();
                    keys.split(',').map(move |k| (k.trim().trim_matches('`').to_string(), values.clone()))
                })
                .collect();
            Row { name: cells[0].trim_matches('`').to_string(), labels, when: cells[3].to_string() }
        })
        .collect();
    (rows, section.to_string())
}

/// The exposition's series: each sample's name and its labels.
fn series(exposition: &str) -> Vec<(String, BTreeMap<String, String>)> {
    let label = |kv: &str| kv.split_once('=').map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()));
    exposition
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let head = l.rsplit_once(' ')?.0;
            let (name, labels) = head.split_once('{').unwrap_or((head, "}"));
            Some((name.to_string(), labels.trim_end_matches('}').split("\",").filter_map(label).collect()))
        })
        .collect()
}

/// Every row exported `when` is in `exposition` with its labels and their values; and every
/// family exported is named in the README's section.
fn check(exposition: &str, when: &[&str], what: &str) {
    let (rows, section) = readme();
    let all = series(exposition);
    for row in rows.iter().filter(|r| when.contains(&r.when.as_str())) {
        let mine: Vec<_> = all.iter().filter(|(n, _)| *n == row.name || *n == format!("{}_bucket", row.name)).collect();
        assert!(!mine.is_empty(), "{what}: {} is in the README but not exported:\n{exposition}", row.name);
        for (key, values) in &row.labels {
            assert!(mine.iter().all(|(_, l)| l.contains_key(key)), "{what}: {} without label {key}", row.name);
            for v in values {
                assert!(mine.iter().any(|(_, l)| l.get(key) == Some(v)), "{what}: no {}{{{key}=\"{v}\"}}", row.name);
            }
        }
    }
    for line in exposition.lines().filter_map(|l| l.strip_prefix("# TYPE ")) {
        let (family, kind) = line.split_once(' ').unwrap();
        let name = match kind {
            "counter" => format!("{family}_total"),
            "info" => format!("{family}_info"),
            _ => family.to_string(),
        };
        assert!(section.contains(&format!("`{name}`")), "{what}: {name} is exported but not in the README");
    }
}

#[test]
fn every_metric_the_readme_lists_is_exported() {
    let _alone = common::exclusive();
    let (rows, _) = readme();
    assert!(rows.len() >= 20 && rows.iter().any(|r| r.when == "nodes"), "the README's table was found");
    let scrape = |args: &[&str], ready: &str| {
        let mut served = Served::start(args);
        served.scrape_when(Duration::from_secs(30), |m| m.contains(ready))
    };
    let run = ["run", "--headless", "--duration", "30s", "--rate", "400", "--threads", "1"];
    // The model answers once 400 jobs are measured: about a second in.
    let m = scrape(&run, "pooltune_model_response_seconds");
    assert!(m.contains("pooltune_response_seconds_count"), "the histograms with the model");
    check(&m, &["always", "model"], "a run");
    let m = scrape(&[&run[..], &["--adapt", "vegas"]].concat(), "pooltune_adaptive_limit");
    check(&m, &["always", "--adapt"], "an adaptive run");
    let sweep = ["sweep", "workers", "2..3", "--steps", "2", "--per-step", "5s", "--settle", "1s", "--rate", "300"];
    // Histograms from the first tick on, when the run's distributions start.
    let m = scrape(&sweep, "pooltune_response_seconds_count");
    check(&m, &["always"], "a sweep");
}

#[test]
fn a_broker_run_exports_its_nodes_and_the_broker_and_a_node_its_own() {
    let Some(nats) = Nats::start() else { return };
    let _alone = common::exclusive();
    let on = ["--broker", &nats.url, "--run-name", "prometheus", "--threads", "1"];
    let mut controller =
        Served::start(&[&["run", "--headless", "--duration", "30s", "--rate", "200"], &on[..]].concat());
    let mut node = Served::start(&[&["worker", "--workers", "2", "--name", "n1"], &on[..]].concat());
    let m = controller.scrape_when(Duration::from_secs(30), |m| m.contains(r#"pooltune_node_up{node="n1"} 1"#));
    check(&m, &["always", "broker", "nodes"], "a broker run");
    let m = node.scrape_when(Duration::from_secs(30), |m| {
        m.contains("pooltune_service_seconds_count") && !m.contains(r#"pooltune_jobs_total{outcome="completed"} 0"#)
    });
    check(&m, &["always"], "a worker node");
}

#[test]
fn a_port_in_use_or_a_bad_address_is_refused_before_the_run() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = busy.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("run.json");
    let json = json.to_str().unwrap();
    for (args, says) in [
        (vec!["run", "--headless", "--json", json, "--metrics-addr", &busy], "the port is in use"),
        (vec!["sweep", "workers", "1..2", "--metrics-addr", &busy], "the port is in use"),
        (vec!["worker", "--broker", "nats://127.0.0.1:1", "--run-name", "r", "--metrics-addr", &busy], "in use"),
        (vec!["run", "--headless", "--metrics-addr", "metrics"], "expected HOST:PORT"),
        (vec!["run", "--headless", "--metrics-addr", "127.0.0.1:70000"], "expected HOST:PORT"),
        (vec!["run", "--headless", "--metrics-addr", "192.0.2.1:9464"], "no interface of this machine"),
    ] {
        let o = pooltune(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says) && err.lines().count() == 1, "{args:?}: {err}");
        assert!(o.stdout.is_empty() && !std::path::Path::new(json).exists(), "{args:?} ran");
    }
    // An address beyond loopback, given explicitly, is served, and the line says what that means.
    let o = pooltune(&["run", "--headless", "--duration", "200ms", "--metrics-addr", "0.0.0.0:0"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success() && err.contains("http://0.0.0.0:") && err.contains("no authentication"), "{err}");
}
