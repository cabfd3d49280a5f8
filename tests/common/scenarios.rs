//! What every broker promises, as scenarios run the same over each (`tests/broker.rs`: NATS,
//! `tests/broker_redis.rs`: Redis): each takes a server of the test's own and checks what is
//! broker-independent; a broker's own file checks the rest on what a scenario returns.

use std::process::Command;
use std::time::Duration;

use pooltune::engine::broker::BrokerSpec;
use pooltune::engine::{EngineHandle, QueueChoice, RunOptions};
use pooltune::metrics::Snapshot;
use pooltune::settings::{Policy, Rate, ServiceDist, Settings};

use super::procs::{assert_identity, controller, exit_of, n, worker};
use super::{assert_accounted, exclusive, settings};

/// A server a scenario can use, stop and start again.
pub trait Broker {
    fn url(&self) -> &str;
    /// Stops the server: what it keeps in memory is gone with it.
    fn stop(&mut self);
    /// Starts it again on the same port (and store, where it has one).
    fn restart(&mut self);
}

impl Broker for super::servers::Nats {
    fn url(&self) -> &str {
        &self.url
    }
    fn stop(&mut self) {
        super::servers::Nats::stop(self);
    }
    fn restart(&mut self) {
        super::servers::Nats::restart(self);
    }
}

impl Broker for super::servers::Redis {
    fn url(&self) -> &str {
        &self.url
    }
    fn stop(&mut self) {
        super::servers::Redis::stop(self);
    }
    fn restart(&mut self) {
        super::servers::Redis::restart(self);
    }
}

/// Twice the pool's capacity (2 workers of 2 ms constant: 1000 jobs/s) into a queue of 40 for
/// each policy. Each policy's own count moves and the others stay 0; every job is accounted for
/// once; `gone(run)` says the run's queue is gone after the run. Each policy's last snapshot.
///
/// The thresholds: 2 s at 1000 jobs/s is 2000 completions and 2000 jobs over the bound; a quarter
/// of each (500) is what a machine busy with other builds still clears, while a policy that
/// counted nothing, or into the wrong count, is far from it.
pub fn each_policy_counts_every_job_once(server: &dyn Broker, gone: impl Fn(&str) -> bool) -> Vec<(Policy, Snapshot)> {
    let _g = exclusive();
    let mut out = Vec::new();
    for policy in [Policy::Reject, Policy::DropOldest, Policy::Block] {
        let run = format!("policy-{}", policy.to_string().replace('-', "_"));
        let s = Settings {
            workers: 2,
            queue: 40,
            policy,
            rate: Rate::PerSec(2000.0),
            service: Duration::from_millis(2),
            service_dist: ServiceDist::Constant,
            ..settings()
        };
        let o = RunOptions {
            duration: Some(Duration::from_secs(2)),
            interval: Duration::from_millis(100),
            ..RunOptions::default()
        };
        let q = QueueChoice::Broker(BrokerSpec::new(server.url(), &run).unwrap());
        let last = EngineHandle::start_on(s, o, None, q).unwrap().join();
        let t = &last.totals;
        eprintln!("{policy}: {t:?}");
        assert_accounted(&last);
        // What a run can leave behind: the job the producer holds while the outbox is full, the
        // outbox (the bound, 40), the publishes in flight (at most the bound) and what the queue
        // holds (40: waiting, prefetched, in service). More would be jobs lost and counted as
        // abandoned.
        assert!(t.abandoned <= 1 + 40 + 40 + 40, "{policy}: {} abandoned", t.abandoned);
        assert!(t.completed > 500, "{policy}: the pool served {} jobs in 2 s", t.completed);
        match policy {
            Policy::Reject => assert!(t.rejected > 500 && t.dropped == 0, "{t:?}"),
            Policy::DropOldest => assert!(t.dropped > 500 && t.rejected == 0, "{t:?}"),
            Policy::Block => assert!(t.rejected == 0 && t.dropped == 0, "{t:?}"),
        }
        assert!(gone(&run), "the run's queue outlived the run");
        out.push((policy, last));
    }
    out
}

/// The command line over the broker at `url` (printed as `shown`), 1 s at 300 jobs/s, with
/// `extra` arguments: the run's name is printed when none is given, and the JSON accounts for
/// every job. Its stdout and stderr, and the JSON.
pub fn the_command_line_runs_over_the_broker(
    url: &str,
    shown: &str,
    extra: &[&str],
) -> (String, String, serde_json::Value) {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("run.json");
    let mut args = vec!["run", "--headless", "--broker", url, "--duration", "1s", "--rate", "300"];
    args.extend(["--json", json.to_str().unwrap()]);
    args.extend_from_slice(extra);
    let out = super::procs::pooltune(&args);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("pooltune: run run-") && err.contains(shown), "{err}");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let j = &v["jobs"];
    assert!(n(j, "completed") > 200, "{j}");
    assert_eq!(
        n(j, "offered"),
        n(j, "completed") + n(j, "failed") + n(j, "rejected") + n(j, "dropped") + n(j, "abandoned"),
        "{j}"
    );
    (String::from_utf8_lossy(&out.stdout).to_string(), err, v)
}

/// A controller with no workers of its own and two worker processes: the nodes serve every
/// job, their reports add up to the run's totals, each exits 0 with its summary, and each
/// node's clock offset from the controller (one machine: truly 0) comes out within 0.1 ms.
/// The controller's JSON.
pub fn two_worker_processes_serve_a_controller_with_none(server: &dyn Broker) -> serde_json::Value {
    let _g = exclusive();
    let dir = tempfile::tempdir().unwrap();
    let mut a = worker(server.url(), "pair", "a", &dir.path().join("a.log"), 2);
    let mut b = worker(server.url(), "pair", "b", &dir.path().join("b.log"), 2);
    let v = controller(server.url(), "pair", &dir.path().join("run.json"), &["--rate", "200", "--duration", "3s"]);
    for (child, name) in [(&mut a, "a"), (&mut b, "b")] {
        let log = dir.path().join(format!("{name}.log"));
        assert_eq!(exit_of(child), Some(0), "{}", std::fs::read_to_string(&log).unwrap());
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(text.contains(&format!("node {name} served")), "{text}");
        // Its own log file (--log), with the broker's events in it.
        let trace = std::fs::read_to_string(log.with_extension("trace")).unwrap();
        assert!(trace.contains("connected"), "node {name}'s log: {trace}");
    }
    let j = &v["jobs"];
    assert_identity(&v);
    assert!(n(j, "completed") > 400, "{j}");
    let nodes = v["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 2, "{nodes:?}");
    let served: u64 = nodes.iter().map(|x| n(x, "completed")).sum();
    assert_eq!(served, n(j, "completed"), "the nodes' reports are the run's completions");
    for x in nodes {
        assert!(n(x, "completed") > 50 && x["finished"] == true && x["lost"] == false, "{x}");
        let offset = x["clock_offset_ms"].as_f64().unwrap();
        eprintln!("node {}: clock offset {offset:+.4} ms ± {:.4}", x["name"], x["clock_uncertainty_ms"]);
        assert!(offset.abs() <= 0.1, "one machine's clock is 0 ms from itself: {x}");
    }
    assert_eq!(v["broker"]["duplicates"], 0);
    // The controller ran no job: the time in broker is the nodes' (publish → delivered there).
    let tib = &v["broker"]["time_in_broker_ms"];
    assert_eq!(n(tib, "count"), served, "every served job's time in broker: {tib}");
    v
}

/// kill -9 of a worker node mid-run: the lost node is marked lost, the other is not, and every
/// job is still counted once (none refused, dropped or failed). Offered 500/s against 400/s of
/// workers, each node's inbox is full (`prefetch` 64) when one is killed; `ack_wait` 1 s. The
/// controller's JSON (whether what node a held came back is each broker's to check).
pub fn a_killed_node_loses_no_job(server: &dyn Broker) -> serde_json::Value {
    let _g = exclusive();
    let dir = tempfile::tempdir().unwrap();
    let a_log = dir.path().join("a.log");
    let mut a = worker(server.url(), "kill", "a", &a_log, 2);
    let mut b = worker(server.url(), "kill", "b", &dir.path().join("b.log"), 2);
    // Killed once it has joined and had 700 ms to fill its inbox (a liveness bound on the wait).
    let killer = std::thread::spawn(move || {
        let start = std::time::Instant::now();
        while !std::fs::read_to_string(&a_log).unwrap_or_default().contains("joined") {
            assert!(start.elapsed() < Duration::from_secs(20), "node a never joined");
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(700));
        a.kill().unwrap();
        a.wait().unwrap()
    });
    let v = controller(
        server.url(),
        "kill",
        &dir.path().join("run.json"),
        &["--rate", "500", "--duration", "5s", "--ack-wait", "1s", "--queue", "1000"],
    );
    killer.join().unwrap();
    assert_eq!(exit_of(&mut b), Some(0));
    let j = &v["jobs"];
    assert_identity(&v);
    let nodes = v["nodes"].as_array().unwrap();
    let node = |name: &str| nodes.iter().find(|x| x["name"] == name).unwrap();
    assert!(node("a")["lost"] == true && node("b")["lost"] == false, "{nodes:?}");
    // What may be left at the end: the job the producer holds while the outbox is full, the
    // outbox (at most the bound, and the job being published), and what the queue still held
    // (at most the bound).
    assert!(n(j, "abandoned") <= 1 + 1000 + 1 + 1000, "{j}");
    assert!(n(j, "completed") + n(j, "abandoned") == n(j, "offered"), "none refused, dropped or failed: {j}");
    eprintln!("jobs {j}, redelivered {}, duplicates {}", v["broker"]["redelivered"], v["broker"]["duplicates"]);
    v
}

/// The server stopped for 2 s and started again mid-run: controller and node say so, reconnect
/// and go on. The server keeps the run's queue in memory, so what it held is gone with it:
/// counted as `lost_in_broker` (never more than the queue could hold: its bound), and every
/// other job is counted once. Offered 1000/s against 800/s of workers (a controller with 2 and a
/// node with 2, 5 ms each), the queue holds a backlog when the server stops. The JSON.
pub fn a_server_restart_is_survived_and_what_it_lost_is_counted(server: &mut dyn Broker) -> serde_json::Value {
    let _g = exclusive();
    let dir = tempfile::tempdir().unwrap();
    let node_log = dir.path().join("a.log");
    let url = server.url().to_string();
    let mut a = worker(&url, "restart", "a", &node_log, 2);
    let json = dir.path().join("run.json");
    let run = Command::new(env!("CARGO_BIN_EXE_pooltune"))
        .args(["run", "--headless", "--broker", &url, "--run-name", "restart", "--workers", "2", "--service", "5ms"])
        .args(["--service-dist", "constant", "--rate", "1000", "--duration", "9s", "--queue", "400", "--json"])
        .arg(&json)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(3000));
    server.stop();
    std::thread::sleep(Duration::from_millis(2000));
    server.restart();
    let out = run.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(exit_of(&mut a), Some(0));
    let node = std::fs::read_to_string(&node_log).unwrap();
    for (who, text) in [("controller", &*stderr), ("node", &*node)] {
        assert!(text.contains("lost the broker") && text.contains("reconnected"), "{who}: {text}");
    }
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let (j, b) = (&v["jobs"], &v["broker"]);
    assert_identity(&v);
    eprintln!("jobs {j}\nbroker {b}");
    let lost = n(b, "lost_in_broker");
    assert!(lost > 0 && lost <= 400, "the queue's backlog (at most its bound, 400) went with the server: {b}");
    assert!(n(b, "disconnects") >= 1, "{b}");
    // Every report the node sent through the outage reached the controller: what it says it
    // served is what the controller counted for it.
    let served: u64 = node.split("node a served ").nth(1).and_then(|t| t.split(' ').next()).unwrap().parse().unwrap();
    assert_eq!(n(&v["nodes"][0], "completed"), served, "{}", v["nodes"]);
    assert!(n(j, "abandoned") >= lost, "lost jobs are among the abandoned: {j}");
    // At most 3 s × 1000/s arrived before the stop: more completions than that came after it.
    assert!(n(j, "completed") > 3000, "the run went on after the restart: {j}");
    v
}
