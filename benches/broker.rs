//! `cargo bench --bench broker`: pooltune over each broker beside a bare loop of the same client
//! on the same server, measured side by side in one run, ending with one table: NATS JetStream
//! (needs `nats-server`), Redis Streams (`redis-server`) and RabbitMQ (`rabbitmq-server`). A
//! broker whose server is missing is skipped with a line saying how to install it.
//!
//! (a) ceiling: completed jobs/s at zero service and `--rate max` through the broker (one
//!     process, 4 workers, prefetch 64, bound 1000) under `block` (the default) and `reject`,
//!     beside the bare loop of the broker's own client doing the same work (`broker/bare.rs`).
//!     Medians of 3 alternating runs.
//! (b) the broker's added latency per job at low load: mean latency at 200 jobs/s and zero
//!     service through the broker, less the same run on the in-process queue (medians of 3).
//! (c) `prefetch` 1, 10 and 100: pooltune's ceiling as in (a) under `block` (median of 3).
//!
//! The same durability is not on offer from all three, and the table says which each has: the
//! NATS stream is in memory (a restarted server loses it), Redis runs without persistence (as
//! the tests run it), and the RabbitMQ queue is a quorum queue on disk (each confirm waits for
//! the write to be synced).
//!
//! `BENCH_SECONDS` (default 2) sets each measurement's length.

#[path = "broker/bare.rs"]
mod bare;
#[allow(dead_code)]
#[path = "../tests/common/servers.rs"]
mod servers;
#[allow(dead_code)]
#[path = "../tests/common/tls.rs"]
mod tls;

use std::time::Duration;

use pooltune::engine::broker::BrokerSpec;
use pooltune::engine::{EngineHandle, QueueChoice, RunOptions};
use pooltune::settings::{Policy, Rate, Settings};

fn seconds() -> Duration {
    let s = std::env::var("BENCH_SECONDS").ok().and_then(|v| v.parse::<f64>().ok()).unwrap_or(2.0);
    Duration::from_secs_f64(s)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// One run through the broker at `url` (or the in-process queue, `url` `None`) with `knobs`'
/// policy and prefetch: its throughput and mean response time.
fn run(url: Option<&str>, n: u32, rate: Rate, length: Duration, knobs: &Settings) -> (f64, f64) {
    let s = Settings { workers: 4, rate, service: Duration::ZERO, queue: 1000, threads: 2, ..knobs.clone() };
    let warm = Duration::from_millis(300);
    let opts = RunOptions { duration: Some(length + warm), warmup: warm, ..RunOptions::default() };
    let queue = match url {
        Some(url) => QueueChoice::Broker(BrokerSpec::new(url, &format!("bench{n}")).unwrap()),
        None => QueueChoice::InProcess,
    };
    let m = EngineHandle::start_on(s, opts, None, queue).unwrap().join().measured;
    (m.throughput_per_s, m.latency.response.mean)
}

/// A bare loop: the broker's URL, a run number, the run's length; its jobs/s.
type Bare = fn(&str, u32, Duration) -> f64;

/// One broker's row of the table.
struct Row {
    name: &'static str,
    durability: &'static str,
    bare: f64,
    block: f64,
    reject: f64,
    added_ms: f64,
    prefetch: [f64; 3],
}

const PREFETCH: [usize; 3] = [1, 10, 100];

fn measure(name: &'static str, durability: &'static str, url: &str, bare: Bare) -> Row {
    let length = seconds();
    println!("pooltune over {name} ({} s per run)", length.as_secs_f64());
    let block = Settings::default();
    let reject = Settings { policy: Policy::Reject, ..Settings::default() };
    let (mut theirs, mut ours, mut piped) = (Vec::new(), Vec::new(), Vec::new());
    for n in 0..3 {
        theirs.push(bare(url, n, length));
        ours.push(run(Some(url), n, Rate::Max, length, &block).0);
        piped.push(run(Some(url), n + 3, Rate::Max, length, &reject).0);
    }
    let (b, o, p) = (median(theirs), median(ours), median(piped));
    println!("(a) bare loop {b:.0}/s   pooltune block {o:.0}/s ({:.2}x)   reject {p:.0}/s ({:.2}x)", o / b, p / b);
    let (mut with, mut without) = (Vec::new(), Vec::new());
    for n in 10..13 {
        without.push(run(None, n, Rate::PerSec(200.0), length, &block).1);
        with.push(run(Some(url), n, Rate::PerSec(200.0), length, &block).1);
    }
    let (w, wo) = (median(with), median(without));
    println!("(b) mean latency at 200/s: broker {w:.3} ms, in-process {wo:.3} ms, added {:.3} ms", w - wo);
    let mut prefetch = [0.0; 3];
    for (i, &k) in PREFETCH.iter().enumerate() {
        let knobs = Settings { prefetch: k, ..Settings::default() };
        let runs = (0..3).map(|r| run(Some(url), 20 + 3 * i as u32 + r, Rate::Max, length, &knobs).0).collect();
        prefetch[i] = median(runs);
        println!("(c) prefetch {k:>3}: block {:.0}/s", prefetch[i]);
    }
    println!();
    Row { name, durability, bare: b, block: o, reject: p, added_ms: w - wo, prefetch }
}

fn main() {
    let mut rows = Vec::new();
    if let Some(s) = servers::Nats::start() {
        rows.push(measure("NATS JetStream", "memory stream", &s.url, bare::run_bare_nats));
    }
    if let Some(s) = servers::Redis::start() {
        rows.push(measure("Redis Streams", "no persistence", &s.url, bare::run_bare_redis));
    }
    if let Some(s) = servers::Rabbit::start() {
        rows.push(measure("RabbitMQ", "quorum queue, on disk", &s.url(), bare::run_bare_amqp));
    }
    println!(
        "| broker | durability | bare client, jobs/s | pooltune `block`, jobs/s (× bare) | `reject`, jobs/s | added latency at 200/s | prefetch 1 / 10 / 100, jobs/s |"
    );
    println!("|---|---|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {} | {:.0} | {:.0} ({:.2}×) | {:.0} | {:.2} ms | {:.0} / {:.0} / {:.0} |",
            r.name,
            r.durability,
            r.bare,
            r.block,
            r.block / r.bare,
            r.reject,
            r.added_ms,
            r.prefetch[0],
            r.prefetch[1],
            r.prefetch[2],
        );
    }
}
