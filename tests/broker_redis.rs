//! The queue as a Redis stream: the NATS tests' promises (tests/broker.rs) kept over a real
//! redis-server of the test's own (see `common::servers`; skipped with a line saying how to
//! install it when there is none, a failure under `.ci/run`), and a server that wants a password.

mod common;

use std::time::Duration;

use common::procs::{assert_identity, n, pooltune, refused, with};
use common::scenarios;
use common::servers::Redis;
use common::{assert_accounted, settings, wait_for};
use pooltune::engine::broker::BrokerSpec;
use pooltune::engine::{Command as Cmd, EngineHandle, QueueChoice, RunOptions};
use pooltune::settings::{Knob, Rate, Settings};

fn on(redis: &Redis, run: &str) -> QueueChoice {
    QueueChoice::Broker(BrokerSpec::new(&redis.url, run).unwrap())
}

/// One command on the server, with a client of the test's own.
fn ask<T: redis::FromRedisValue>(redis: &Redis, cmd: &redis::Cmd) -> T {
    let mut c = redis::Client::open(redis.url.as_str()).unwrap().get_connection().unwrap();
    cmd.query(&mut c).unwrap()
}

fn exists(redis: &Redis, key: &str) -> bool {
    ask::<i64>(redis, redis::cmd("EXISTS").arg(key)) == 1
}

/// See [`scenarios::each_policy_counts_every_job_once`]: a stream of 40, its bound checked by the
/// publish script; the group's pending entries never above it either, and the server's own count
/// of entries `drop-oldest` deleted (`trimmed`) is the run's `dropped`.
#[test]
fn each_policy_counts_every_job_once_over_redis() {
    let Some(redis) = Redis::start() else { return };
    let runs =
        scenarios::each_policy_counts_every_job_once(&redis, |run| !exists(&redis, &format!("pooltune:{run}:jobs")));
    for (policy, last) in runs {
        let b = last.broker.unwrap();
        assert!(b.ack_pending_max <= 40, "{policy}: {} pending, over the bound", b.ack_pending_max);
        assert_eq!((b.kind.as_str(), b.extra.get("trimmed")), ("redis", Some(&last.totals.dropped)), "{policy}: {b:?}");
    }
}

/// `ack_wait` changed during the run reaches the run's hash, which every node's claims read.
#[test]
fn a_live_ack_wait_change_reaches_the_server() {
    let Some(redis) = Redis::start() else { return };
    let s = Settings { workers: 2, ack_wait: Duration::from_secs(30), rate: Rate::PerSec(200.0), ..settings() };
    let engine = EngineHandle::start_on(s, RunOptions::default(), None, on(&redis, "live")).unwrap();
    let ack_wait = || ask::<Option<u64>>(&redis, redis::cmd("HGET").arg("pooltune:live:meta").arg("ack_wait_ms"));
    assert_eq!(ack_wait(), Some(30_000));
    engine.try_send(Cmd::Set(Knob::AckWait(Duration::from_millis(1500)))).unwrap();
    let start = std::time::Instant::now();
    while ack_wait() != Some(1500) {
        assert!(start.elapsed() < Duration::from_secs(10), "the hash still has {:?}", ack_wait());
        std::thread::sleep(Duration::from_millis(50));
    }
    wait_for(&engine, Duration::from_secs(10), "completed jobs", |s| s.totals.completed > 50);
    assert_accounted(&engine.shutdown());
    assert!(!exists(&redis, "pooltune:live:meta"), "the run's hash outlived the run");
}

/// Bad URLs, options Redis does not take, an unreachable server: one line naming the URL and the
/// reason, exit status 2, before any run.
#[test]
fn a_redis_that_cannot_be_used_is_refused_before_the_run() {
    let run = ["run", "--headless", "--duration", "1s", "--run-name", "r", "--broker"];
    refused(&with(&run, "redis://127.0.0.1"), &["redis://127.0.0.1", "no port", "redis://HOST:PORT"]);
    let closed = format!("redis://127.0.0.1:{}", common::servers::free_port());
    refused(&with(&run, &closed), &[&closed, "cannot reach"]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("x.pem");
    std::fs::write(&file, "not a certificate").unwrap();
    let f = file.to_str().unwrap();
    refused(
        &[&with(&run, &closed)[..], &["--broker-creds", f]].concat(),
        &["--broker-creds", "redis://USER:PASSWORD@HOST:PORT"],
    );
    refused(&[&with(&run, &closed)[..], &["--broker-ca", f]].concat(), &["--broker-ca", "rediss://"]);
}

/// The command line over Redis (see [`scenarios::the_command_line_runs_over_the_broker`]): the
/// JSON names the stream and the group.
#[test]
fn the_command_line_runs_over_redis() {
    let Some(redis) = Redis::start() else { return };
    let (_, _, v) = scenarios::the_command_line_runs_over_the_broker(&redis.url, &redis.url, &[]);
    assert_identity(&v);
    let b = &v["broker"];
    assert!(b["stream"].as_str().is_some_and(|s| s.starts_with("pooltune:run-") && s.ends_with(":jobs")), "{b}");
    assert_eq!(b["consumer"], "workers", "{b}");
}

/// See [`scenarios::two_worker_processes_serve_a_controller_with_none`]; nothing was held past
/// `ack_wait` (30 s), so nothing was claimed.
#[test]
fn two_worker_processes_serve_a_controller_with_none_over_redis() {
    let Some(redis) = Redis::start() else { return };
    let v = scenarios::two_worker_processes_serve_a_controller_with_none(&redis);
    assert_eq!(v["broker"]["redelivered"], 0, "{}", v["broker"]);
}

/// kill -9 of a worker node mid-run (see [`scenarios::a_killed_node_loses_no_job`]): after
/// `ack_wait` (1 s) node b claims what node a held (`XAUTOCLAIM`) and serves it, as redelivered;
/// a job that ran on both is a duplicate, counted once.
#[test]
fn a_killed_node_loses_no_job_over_redis() {
    let Some(redis) = Redis::start() else { return };
    let v = scenarios::a_killed_node_loses_no_job(&redis);
    let (b, nodes) = (&v["broker"], v["nodes"].as_array().unwrap());
    let node_b = nodes.iter().find(|x| x["name"] == "b").unwrap();
    // Node a held its inbox (up to 64) and its 2 jobs in service; the controller ran none.
    assert!(n(b, "redelivered") > 0 && n(node_b, "redelivered") == n(b, "redelivered"), "{b}\n{nodes:?}");
    // The server counted the claims too: node b reported every one it made.
    assert_eq!(n(b, "claimed"), n(b, "redelivered"), "{b}");
}

/// See [`scenarios::a_server_restart_is_survived_and_what_it_lost_is_counted`]: the same port,
/// empty (no persistence); the controller makes the stream again, once.
#[test]
fn a_redis_restart_is_survived_and_what_it_lost_is_counted() {
    let Some(mut redis) = Redis::start() else { return };
    let v = scenarios::a_server_restart_is_survived_and_what_it_lost_is_counted(&mut redis);
    assert_eq!(n(&v["broker"], "streams_lost"), 1, "{}", v["broker"]);
}

/// A server with `requirepass`: the right password runs, a wrong one or none is refused with one
/// line (exit 2), and the password is in nothing the run prints or writes (stdout, stderr, the
/// JSON, the CSV, the HTML report, the recording, the log).
#[test]
fn a_password_opens_redis_and_is_never_shown() {
    const PASSWORD: &str = "pw-Zq81-never-shown";
    let Some(redis) = Redis::start_with(Some(PASSWORD), None) else { return };
    let run = ["run", "--headless", "--duration", "1s", "--run-name", "r", "--broker"];
    let wrong = redis.url.replace(PASSWORD, "not-the-pw-7");
    refused(&with(&run, &wrong), &["refused the credentials", "redis://:***@127.0.0.1"]);
    assert!(!String::from_utf8_lossy(&pooltune(&with(&run, &wrong)).stderr).contains("not-the-pw-7"));
    let none = format!("redis://127.0.0.1:{}", redis.port);
    refused(&with(&run, &none), &["refused the credentials", &none]);
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let files = [file("run.csv"), file("run.html"), file("run.rec"), file("run.log")];
    let shown = format!("redis://:***@127.0.0.1:{}", redis.port);
    let extra = ["--csv", &files[0], "--report", &files[1], "--record", &files[2], "--log", &files[3]];
    let (stdout, stderr, v) = scenarios::the_command_line_runs_over_the_broker(&redis.url, &shown, &extra);
    assert_identity(&v);
    assert_eq!(v["broker"]["url"], shown);
    let json = serde_json::to_string(&v).unwrap();
    let mut outputs =
        vec![("stdout".to_string(), stdout), ("stderr".to_string(), stderr), ("the JSON".to_string(), json)];
    for f in files {
        let text = String::from_utf8_lossy(&std::fs::read(&f).unwrap()).to_string();
        outputs.push((f, text));
    }
    for (what, text) in outputs {
        assert!(!text.is_empty() || what == "stdout", "{what} is empty");
        assert!(!text.contains(PASSWORD), "the password is in {what}");
    }
}

/// TLS (`rediss://`) to a server with a certificate from a CA made here: trusted with
/// `--broker-ca`, refused without it or with another CA; a server that asks for a client
/// certificate is refused without one and served with one its CA signed.
#[test]
fn tls_to_redis_is_trusted_through_the_ca_given() {
    let dir = tempfile::tempdir().unwrap();
    let (ours, other) = (dir.path().join("ours"), dir.path().join("other"));
    std::fs::create_dir_all(&ours).unwrap();
    std::fs::create_dir_all(&other).unwrap();
    let (ca, other) = (common::tls::test_ca(&ours), common::tls::test_ca(&other));
    let Some(redis) = Redis::start_with(None, Some((&ca, false))) else { return };
    let path = |p: &std::path::Path| p.to_str().unwrap().to_string();
    let (trusted, untrusted) = (path(&ca.ca), path(&other.ca));
    let (_, _, v) =
        scenarios::the_command_line_runs_over_the_broker(&redis.url, &redis.url, &["--broker-ca", &trusted]);
    assert_identity(&v);
    let run = ["run", "--headless", "--duration", "1s", "--run-name", "r", "--broker", &redis.url];
    refused(&run, &["cannot reach the broker at rediss://127.0.0.1", "certificate"]);
    refused(&[&run[..], &["--broker-ca", &untrusted]].concat(), &["cannot reach", "certificate"]);
    let Some(mutual) = Redis::start_with(None, Some((&ca, true))) else { return };
    let run =
        ["run", "--headless", "--duration", "1s", "--run-name", "r", "--broker", &mutual.url, "--broker-ca", &trusted];
    refused(&run, &["cannot reach the broker at rediss://127.0.0.1"]);
    let (cert, key) = (path(&ca.cert), path(&ca.key));
    let with_cert = ["--broker-ca", &trusted, "--broker-cert", &cert, "--broker-key", &key];
    let (_, _, v) = scenarios::the_command_line_runs_over_the_broker(&mutual.url, &mutual.url, &with_cert);
    assert_identity(&v);
}
