//! The queue as a RabbitMQ quorum queue: runs over a real rabbitmq-server, one per test binary
//! (it boots in seconds) with a user and password of its own; each test has its own run name.
//! Without RabbitMQ a test prints how to install it and skips (a failure under `.ci/run`).

mod common;

use std::time::Duration;

use common::procs::{self, n, pooltune, with};
use common::servers::{RABBIT_PASSWORD, RABBIT_USER, Rabbit};
use common::{assert_accounted, exclusive, settings};
use pooltune::engine::broker::BrokerSpec;
use pooltune::engine::{Command as Cmd, EngineHandle, QueueChoice, RunOptions};
use pooltune::settings::{Knob, Policy, Rate, ServiceDist, Settings};

fn on(r: &Rabbit, run: &str) -> QueueChoice {
    QueueChoice::Broker(BrokerSpec::new(&r.url(), run).unwrap())
}

fn opts(secs: u64) -> RunOptions {
    RunOptions {
        duration: Some(Duration::from_secs(secs)),
        interval: Duration::from_millis(100),
        ..RunOptions::default()
    }
}

/// A client of the test's own, for what the server says of the run's queues.
fn client<T>(r: &Rabbit, f: impl AsyncFnOnce(lapin::Channel) -> T) -> T {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let conn = lapin::Connection::connect(&r.url(), lapin::ConnectionProperties::default()).await.unwrap();
        f(conn.create_channel().await.unwrap()).await
    })
}

/// Whether the queue exists (a passive declaration).
fn exists(r: &Rabbit, queue: &str) -> bool {
    client(r, async |ch| {
        let passive = lapin::options::QueueDeclareOptions::default().passive();
        ch.queue_declare(queue.into(), passive, lapin::types::FieldTable::default()).await.is_ok()
    })
}

/// Whether the queue exists with these arguments: a declaration with other arguments than the
/// queue's is refused (`PRECONDITION_FAILED`).
fn declared_with(r: &Rabbit, run: &str, bound: i64, overflow: &str) -> bool {
    use lapin::types::{AMQPValue, FieldTable, LongString};
    client(r, async |ch| {
        let mut t = FieldTable::default();
        let text = |s: &str| AMQPValue::LongString(LongString::from(s));
        t.insert("x-queue-type".into(), text("quorum"));
        t.insert("x-max-length".into(), AMQPValue::LongLongInt(bound));
        t.insert("x-overflow".into(), text(overflow));
        t.insert("x-dead-letter-exchange".into(), text(""));
        t.insert("x-dead-letter-routing-key".into(), text(&format!("pooltune.{run}.dropped")));
        let durable = lapin::options::QueueDeclareOptions::durable();
        ch.queue_declare(format!("pooltune.{run}.jobs").into(), durable, t).await.is_ok()
    })
}

/// Offered far beyond the pool into a queue bound to 40 ready jobs. Each policy's own count
/// moves and the others stay 0; every job is accounted for once; every nack is counted (a
/// rejected job under `reject`, a retry under `block`); the queues are gone after the run.
///
/// `reject` and `drop-oldest`: 2 workers of 2 ms (1,000 jobs/s) against 2,000/s, published
/// with confirms pipelined. `block` pipelines too (up to the bound awaiting confirms) but
/// retries a refused job alone, in order, before it takes another: its pool is 1 worker of
/// 10 ms (100/s), which the publisher outruns, so the queue stays at its bound and nacks.
#[test]
fn each_policy_counts_every_job_once_over_rabbitmq() {
    let Some(r) = Rabbit::shared() else { return };
    let _g = exclusive();
    for (policy, workers, service, served) in
        [(Policy::Reject, 2, 2, 500), (Policy::DropOldest, 2, 2, 500), (Policy::Block, 1, 10, 100)]
    {
        let run = format!("amqp-policy-{}", policy.to_string().replace('-', "_"));
        let s = Settings {
            workers,
            queue: 40,
            policy,
            rate: Rate::PerSec(2000.0),
            service: Duration::from_millis(service),
            service_dist: ServiceDist::Constant,
            ..settings()
        };
        let last = EngineHandle::start_on(s, opts(2), None, on(r, &run)).unwrap().join();
        let t = &last.totals;
        eprintln!("{policy}: {t:?}, depth max {}", last.measured.queue_depth_max);
        assert_accounted(&last);
        // What a run can leave: the job the producer holds while the outbox is full, the outbox
        // (40), the publishes awaiting their confirm (at most the bound, 40), the queue's ready
        // jobs and what the consumer held (its prefetch, 64). A quorum queue refuses once it is
        // over its bound (41), but it tells the channel so after the enqueue that crossed it:
        // publishes already on their way are taken, so with up to 40 in flight it can hold
        // 41 + 40 ready. Seen under `block`: a depth of 141 (64 unacknowledged, 77 ready) and
        // 210 abandoned; a budget of 41 ready failed CI once with 199.
        assert!(t.abandoned <= 1 + 40 + 40 + (41 + 40) + 64, "{policy}: {} abandoned", t.abandoned);
        assert!(t.completed > served, "{policy}: the pool served {} jobs in 2 s", t.completed);
        let b = last.broker.as_ref().unwrap();
        eprintln!("{policy}: {b:?}");
        let nacked = *b.extra.get("confirms_nacked").expect("RabbitMQ's own fields");
        match policy {
            Policy::Reject => assert!(t.rejected > 500 && t.dropped == 0 && nacked == t.rejected, "{t:?} {b:?}"),
            Policy::DropOldest => assert!(t.dropped > 500 && t.rejected == 0 && nacked == 0, "{t:?} {b:?}"),
            Policy::Block => assert!(
                t.rejected == 0 && t.dropped == 0 && nacked > 0 && nacked == b.publish_retries - b.publish_errors,
                "{t:?} {b:?}"
            ),
        }
        for q in ["jobs", "dropped"] {
            assert!(!exists(r, &format!("pooltune.{run}.{q}")), "the run's {q} queue outlived the run");
        }
    }
}

/// The queue is declared from the knobs; a live change of the bound cannot reach it (RabbitMQ
/// keeps a declared queue's arguments): it keeps them, the snapshot says which bound holds
/// (`bound_held`), and the run goes on and accounts for
/// every job. `reject` → `block` needs nothing of the queue. A live `prefetch` does reach the
/// consumer: 2 workers of 20 ms against 200 jobs/s are both busy, and at prefetch 1 (one
/// unacknowledged delivery) never more than one is.
#[test]
fn the_queue_is_declared_from_the_knobs_and_prefetch_follows_live() {
    let Some(r) = Rabbit::shared() else { return };
    let _g = exclusive();
    let s = Settings {
        workers: 2,
        queue: 30,
        policy: Policy::Reject,
        rate: Rate::PerSec(200.0),
        service: Duration::from_millis(20),
        service_dist: ServiceDist::Constant,
        ..settings()
    };
    let opts = RunOptions { interval: Duration::from_millis(100), ..RunOptions::default() };
    let engine = EngineHandle::start_on(s, opts, None, on(r, "amqp-live")).unwrap();
    assert!(declared_with(r, "amqp-live", 30, "reject-publish"), "the queue has bound 30 and reject-publish");
    assert!(!declared_with(r, "amqp-live", 30, "drop-head"), "a declaration with other arguments is refused");
    common::wait_for(&engine, Duration::from_secs(10), "both workers busy", |s| s.busy_workers == 2);
    engine.try_send(Cmd::Set(Knob::Queue(500))).unwrap();
    engine.try_send(Cmd::Set(Knob::Policy(Policy::Block))).unwrap();
    engine.try_send(Cmd::Set(Knob::Prefetch(1))).unwrap();
    // The deliveries made under prefetch 64 are served first (at most the 30 ready, the bound,
    // and 64 held: under a second at 100 jobs/s); from then on one at a time.
    let at = |s: &pooltune::metrics::Snapshot| s.elapsed;
    let changed = at(&common::wait_for(&engine, Duration::from_secs(5), "a tick", |s| s.settings.prefetch == 1));
    let mut rx = engine.subscribe();
    let mut busy = Vec::new();
    while busy.len() < 20 {
        let snap = rx.borrow_and_update().clone();
        if at(&snap) > changed + Duration::from_secs(2) && busy.last().is_none_or(|(t, _)| *t < snap.tick) {
            busy.push((snap.tick, snap.busy_workers));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(busy.iter().all(|(_, b)| *b <= 1), "at prefetch 1 one job at a time: {busy:?}");
    assert!(declared_with(r, "amqp-live", 30, "reject-publish"), "the queue keeps its arguments");
    let held = engine.subscribe().borrow().broker.as_ref().and_then(|b| b.bound_held);
    assert_eq!(held, Some(30), "the snapshot shows the bound the queue keeps, not the knob's 500");
    let last = engine.shutdown();
    assert_accounted(&last);
}

/// A refusal (see [`procs::refused`]) whose line holds no password.
fn refused(args: &[&str], want: &[&str]) {
    let err = procs::refused(args, want);
    assert!(!err.contains(RABBIT_PASSWORD) && !err.contains("wr0ng-pw"), "a password in {err:?}");
}

/// A bad URL, an unreachable server, wrong credentials, an unknown virtual host and options
/// that are not RabbitMQ's: one line naming the URL (its password as `***`) and the reason,
/// exit status 2, before any run.
#[test]
fn a_broker_that_cannot_be_used_is_refused_before_the_run() {
    let run = ["run", "--headless", "--duration", "1s", "--run-name", "r", "--broker"];
    refused(&with(&run, "amqp://127.0.0.1"), &["amqp://127.0.0.1", "no port"]);
    let closed = format!("amqp://127.0.0.1:{}", common::servers::free_port());
    refused(&with(&run, &closed), &[&closed, "cannot reach"]);
    let Some(r) = Rabbit::shared() else { return };
    let wrong = r.url_as(RABBIT_USER, "wr0ng-pw");
    let shown = format!("amqp://{RABBIT_USER}:***@127.0.0.1:{}", r.port);
    refused(&with(&run, &wrong), &[&shown, "refused the credentials", "ACCESS_REFUSED"]);
    let vhost = format!("{}/nowhere", r.url());
    refused(&with(&run, &vhost), &["refused", "nowhere"]);
    let url = r.url();
    // Files that exist: what is refused is the option on this scheme, not the file.
    let dir = tempfile::tempdir().unwrap();
    let (creds, ca) = (dir.path().join("x.creds"), dir.path().join("ca.pem"));
    std::fs::write(&creds, "x").unwrap();
    std::fs::write(&ca, "x").unwrap();
    let (creds, ca) = (creds.to_str().unwrap(), ca.to_str().unwrap());
    refused(&[&with(&run, &url)[..], &["--broker-creds", creds]].concat(), &["--broker-creds", "NATS"]);
    refused(&[&with(&run, &url)[..], &["--broker-ca", ca]].concat(), &["--broker-ca", "amqps://"]);
}

/// `amqps://` against a listener that wants a client certificate from the test's CA: with the CA
/// (`--broker-ca`) and the client's certificate and key the run goes through; without the
/// certificate, or without the CA (the server's certificate then chains to no root pooltune
/// trusts), it is refused before the run in one line.
#[test]
fn amqps_with_a_private_ca_and_a_client_certificate() {
    let Some(r) = Rabbit::shared() else { return };
    let url = r.tls_url();
    let (ca, cert, key) = (r.tls_file("ca.pem"), r.tls_file("client.pem"), r.tls_file("client.key"));
    let (ca, cert, key) = (ca.to_str().unwrap(), cert.to_str().unwrap(), key.to_str().unwrap());
    let run = ["run", "--headless", "--duration", "1s", "--rate", "100", "--run-name", "amqp-tls", "--broker"];
    let out =
        pooltune(&[&with(&run, &url)[..], &["--broker-ca", ca, "--broker-cert", cert, "--broker-key", key]].concat());
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let shown = format!("amqps://{RABBIT_USER}:***@127.0.0.1:{}", r.tls_port);
    refused(&[&with(&run, &url)[..], &["--broker-ca", ca]].concat(), &[&shown, "cannot reach"]);
    refused(
        &[&with(&run, &url)[..], &["--broker-cert", cert, "--broker-key", key]].concat(),
        &[&shown, "cannot reach"],
    );
}

/// The command line over RabbitMQ with the server's user and password: the run accounts for
/// every job, and the password is in nothing the run writes or prints (stderr, JSON, CSV, log).
#[test]
fn the_command_line_runs_over_rabbitmq_and_keeps_the_password_out_of_every_output() {
    let Some(r) = Rabbit::shared() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (json, csv, log) = (dir.path().join("run.json"), dir.path().join("run.csv"), dir.path().join("run.log"));
    let out = pooltune(&[
        "run",
        "--headless",
        "--broker",
        &r.url(),
        "--duration",
        "1s",
        "--rate",
        "300",
        "--json",
        json.to_str().unwrap(),
        "--csv",
        csv.to_str().unwrap(),
        "--log",
        log.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let shown = format!("amqp://{RABBIT_USER}:***@127.0.0.1:{}", r.port);
    assert!(err.contains("pooltune: run run-") && err.contains(&shown), "{err}");
    let text = std::fs::read_to_string(&json).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let j = &v["jobs"];
    let n = |k: &str| j[k].as_u64().unwrap();
    assert!(n("completed") > 200, "{j}");
    assert_eq!(n("offered"), n("completed") + n("failed") + n("rejected") + n("dropped") + n("abandoned"), "{j}");
    assert_eq!(v["broker"]["url"], shown.as_str());
    let everything = [
        err.to_string(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        text,
        std::fs::read_to_string(&csv).unwrap(),
        std::fs::read_to_string(&log).unwrap_or_default(),
    ];
    for (what, t) in ["stderr", "stdout", "JSON", "CSV", "log"].iter().zip(&everything) {
        assert!(!t.contains(RABBIT_PASSWORD), "the password is in the {what}: {t}");
    }
}

/// A controller with no workers of its own and two worker processes (see
/// [`procs::two_nodes_serve`]); what the nodes held unacknowledged reached the controller
/// (RabbitMQ tells no client that count: the nodes' reports carry it).
#[test]
fn two_worker_processes_serve_a_controller_with_none() {
    let Some(r) = Rabbit::shared() else { return };
    let _g = exclusive();
    // A clock request's round trip through RabbitMQ is about 0.6 ms here (0.1 ms through NATS):
    // the estimate is held to its own bound, half the shortest round trip.
    let v = procs::two_nodes_serve(&r.url(), "amqp-pair", |uncertainty| uncertainty);
    let broker = &v["broker"];

    // Each node holds its jobs in service (2 workers) and those its next report counts.
    assert!(n(broker, "unacked_max") >= 2, "the nodes' unacknowledged jobs reached the controller: {broker}");
}

/// kill -9 of a worker node mid-run: RabbitMQ takes back what it held when its connection
/// closes (no `ack_wait`), the other node serves it, the lost node is marked lost, and every
/// job is still counted once (a job the killed node had finished and reported but not
/// acknowledged runs again: a duplicate, counted as such). Offered 500/s against 400/s of
/// workers, each node holds its prefetch (64) when one is killed.
#[test]
fn a_killed_node_loses_no_job() {
    let Some(r) = Rabbit::shared() else { return };
    let _g = exclusive();
    let v = procs::kill_a_node(&r.url(), "amqp-kill", &["--rate", "500", "--duration", "5s", "--queue", "1000"]);
    let j = &v["jobs"];
    let broker = &v["broker"];
    assert!(n(broker, "redelivered") > 0, "node a's jobs came back at once: {broker}");
    // Left at the end: the job the producer holds, the outbox (1000, and one being published),
    // the queue's ready jobs (1001) and node b's prefetch (64).
    assert!(n(j, "abandoned") <= 1 + 1000 + 1 + 1001 + 64, "{j}");
    assert_eq!(n(j, "completed") + n(j, "abandoned"), n(j, "offered"), "none refused, dropped or failed: {j}");
    eprintln!("jobs {j}\nbroker {broker}");
}

/// The server killed (SIGKILL) mid-run, started again 2 s later on the same data (it boots in
/// seconds more): controller and node say so, reconnect and go on. The quorum queue is on disk,
/// so nothing it had confirmed is lost (`lost_in_broker` 0, nothing unaccounted); what was in
/// flight is counted (publishes retried, deliveries made again, jobs run twice as duplicates).
/// Offered 500/s against 800/s of workers (a controller with 2 and a node with 2, 5 ms each).
#[test]
fn a_server_restart_is_survived_and_nothing_confirmed_is_lost() {
    let Some(mut r) = Rabbit::start() else { return };
    let _g = exclusive();
    let url = r.url();
    let v =
        procs::through_an_outage(
            &url,
            "amqp-restart",
            ["500", "25s", "400"],
            |up| if up { r.restart() } else { r.stop() },
        );
    let (j, b) = (&v["jobs"], &v["broker"]);
    assert_eq!(n(b, "lost_in_broker"), 0, "a quorum queue keeps what it confirmed: {b}");
    // At most 3 s × 500/s arrived before the stop: more completions than that came after it.
    assert!(n(j, "completed") > 1500, "the run went on after the restart: {j}");
}
