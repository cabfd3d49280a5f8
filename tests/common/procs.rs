//! The pooltune binary as the broker tests run it: a command and its output, a refusal, a
//! worker process (killed if the test fails half-way), a headless controller with no workers of
//! its own and its JSON, and the JSON's accounting. Each takes the broker's URL, whatever the
//! broker.

use std::process::Command;
use std::time::Duration;

pub fn pooltune(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_pooltune")).args(args).output().unwrap()
}

/// `args` exit with status 2 and one line on stderr holding each of `want`: that line.
pub fn refused(args: &[&str], want: &[&str]) -> String {
    let out = pooltune(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert_eq!(err.lines().count(), 1, "{args:?}: one line, got {err}");
    for w in want {
        assert!(err.contains(w), "{args:?}: {err:?} lacks {w:?}");
    }
    err.to_string()
}

/// `run` with `url` after it.
pub fn with<'a>(run: &[&'a str], url: &'a str) -> Vec<&'a str> {
    [run, &[url]].concat()
}

/// A `pooltune worker` process with `workers` workers for `run` on the broker at `url`, its
/// stderr kept in `log` (its `--log` beside it, `.trace`); killed if the test fails half-way,
/// so no node is left reconnecting to a stopped server.
pub fn worker(url: &str, run: &str, name: &str, log: &std::path::Path, workers: usize) -> KillOnDrop {
    let workers = workers.to_string();
    KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_pooltune"))
            .args([
                "worker",
                "--broker",
                url,
                "--run-name",
                run,
                "--workers",
                &workers,
                "--name",
                name,
                "--threads",
                "1",
                "--log",
                log.with_extension("trace").to_str().unwrap(),
            ])
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap(),
    )
}

/// Waits for a worker process to exit by itself (a liveness bound, not a timing assertion).
pub fn exit_of(child: &mut std::process::Child) -> Option<i32> {
    let start = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("the worker process did not exit after the run");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A headless controller's arguments: `run` on `url` with `workers` workers of `service`
/// (constant), its JSON to `json`.
fn run_args<'a>(url: &'a str, run: &'a str, workers: &'a str, service: &'a str, json: &'a str) -> Vec<&'a str> {
    vec![
        "run",
        "--headless",
        "--broker",
        url,
        "--run-name",
        run,
        "--workers",
        workers,
        "--service",
        service,
        "--service-dist",
        "constant",
        "--json",
        json,
    ]
}

/// Kills the worker process `a` once its log (`log`) says it joined and `after` has passed (a
/// liveness bound on the wait); the join handle gives its exit status.
fn kill_once_joined(
    mut a: KillOnDrop,
    log: std::path::PathBuf,
    after: Duration,
) -> std::thread::JoinHandle<std::process::ExitStatus> {
    std::thread::spawn(move || {
        let start = std::time::Instant::now();
        while !std::fs::read_to_string(&log).unwrap_or_default().contains("joined") {
            assert!(start.elapsed() < Duration::from_secs(20), "the node never joined");
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(after);
        a.kill().unwrap();
        a.wait().unwrap()
    })
}

/// Two worker processes `a` and `b` (2 workers each) for `run` and a controller with none
/// (`extra` its load); `a` is killed (SIGKILL) 700 ms after it joined, its inbox full by then.
/// `b` exits 0, `a` is marked lost and `b` not, and every job is counted once. The run's JSON.
pub fn kill_a_node(url: &str, run: &str, extra: &[&str]) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let a_log = dir.path().join("a.log");
    let a = worker(url, run, "a", &a_log, 2);
    let mut b = worker(url, run, "b", &dir.path().join("b.log"), 2);
    let killer = kill_once_joined(a, a_log, Duration::from_millis(700));
    let v = controller(url, run, &dir.path().join("run.json"), extra);
    killer.join().unwrap();
    assert_eq!(exit_of(&mut b), Some(0));
    assert_identity(&v);
    let nodes = v["nodes"].as_array().unwrap();
    let node = |name: &str| nodes.iter().find(|x| x["name"] == name).unwrap();
    assert!(node("a")["lost"] == true && node("b")["lost"] == false, "{nodes:?}");
    v
}

/// A headless controller for `run` with no workers of its own (10 ms constant service), its
/// JSON written to `json` and read back; it must exit 0.
pub fn controller(url: &str, run: &str, json: &std::path::Path, extra: &[&str]) -> serde_json::Value {
    let mut args = run_args(url, run, "0", "10ms", json.to_str().unwrap());
    args.extend_from_slice(extra);
    let out = pooltune(&args);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap()
}

pub fn n(v: &serde_json::Value, k: &str) -> u64 {
    v[k].as_u64().unwrap_or_else(|| panic!("{k} in {v}"))
}

/// Every job counted once, and each by a count of its own: `unaccounted` is what the end of the
/// run could only fold into `abandoned` (a job lost).
pub fn assert_identity(v: &serde_json::Value) {
    let j = &v["jobs"];
    let sum = n(j, "completed") + n(j, "failed") + n(j, "rejected") + n(j, "dropped") + n(j, "abandoned");
    assert_eq!(n(j, "offered"), sum, "every job once: {j}\nbroker {}\nnodes {}", v["broker"], v["nodes"]);
    assert_eq!(n(&v["broker"], "unaccounted"), 0, "jobs lost: {}", v["broker"]);
}

/// A controller with no workers of its own (200 jobs/s for 3 s) and two worker processes `a`
/// and `b` (2 workers each) for `run`: the nodes serve every job, their reports add up to the
/// run's totals, each exits 0 with its summary and its own log, and each node's clock offset
/// from the controller (one machine: truly 0) comes out within `max_offset(uncertainty)` ms.
/// The run's JSON.
pub fn two_nodes_serve(url: &str, run: &str, max_offset: impl Fn(f64) -> f64) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let mut a = worker(url, run, "a", &dir.path().join("a.log"), 2);
    let mut b = worker(url, run, "b", &dir.path().join("b.log"), 2);
    let v = controller(url, run, &dir.path().join("run.json"), &["--rate", "200", "--duration", "3s"]);
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
        let uncertainty = x["clock_uncertainty_ms"].as_f64().unwrap();
        eprintln!("node {}: clock offset {offset:+.4} ms ± {uncertainty:.4}", x["name"]);
        assert!(offset.abs() <= max_offset(uncertainty), "one machine's clock is 0 ms from itself: {x}");
    }
    assert_eq!(v["broker"]["duplicates"], 0);
    // The controller ran no job: the time in broker is the nodes' (publish → delivered there).
    let tib = &v["broker"]["time_in_broker_ms"];
    assert_eq!(n(tib, "count"), served, "every served job's time in broker: {tib}");
    v
}

/// A controller with 2 workers of 5 ms (run `run`, `--rate`, `--duration` and `--queue` from
/// `load`) and a worker node `a` with 2; 3 s in, `server(false)` stops the broker's server and
/// 2 s later `server(true)` starts it again: both exit 0 and say they lost the broker and reconnected; every job is counted
/// once, and every report the node sent through the outage reached the controller (what it says
/// it served is what the controller counted for it). The run's JSON.
pub fn through_an_outage(url: &str, run: &str, load: [&str; 3], mut server: impl FnMut(bool)) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let node_log = dir.path().join("a.log");
    let mut a = worker(url, run, "a", &node_log, 2);
    let json = dir.path().join("run.json");
    let [rate, duration, queue] = load;
    let mut args = run_args(url, run, "2", "5ms", json.to_str().unwrap());
    args.extend(["--rate", rate, "--duration", duration, "--queue", queue]);
    let controller = Command::new(env!("CARGO_BIN_EXE_pooltune"))
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(3000));
    server(false);
    std::thread::sleep(Duration::from_millis(2000));
    server(true);
    let out = controller.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let node = std::fs::read_to_string(&node_log).unwrap();
    assert_eq!(exit_of(&mut a), Some(0), "the node: {node}");
    for (who, text) in [("controller", &*stderr), ("node", &*node)] {
        assert!(text.contains("lost the broker") && text.contains("reconnected"), "{who}: {text}");
    }
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    eprintln!("jobs {}\nbroker {}", v["jobs"], v["broker"]);
    assert_identity(&v);
    assert!(n(&v["broker"], "disconnects") >= 1, "{}", v["broker"]);
    let served: u64 = node.split("node a served ").nth(1).and_then(|t| t.split(' ').next()).unwrap().parse().unwrap();
    assert_eq!(n(&v["nodes"][0], "completed"), served, "{}", v["nodes"]);
    v
}

/// A worker process killed when dropped, unless it has ended.
pub struct KillOnDrop(pub std::process::Child);

impl std::ops::Deref for KillOnDrop {
    type Target = std::process::Child;
    fn deref(&self) -> &std::process::Child {
        &self.0
    }
}

impl std::ops::DerefMut for KillOnDrop {
    fn deref_mut(&mut self) -> &mut std::process::Child {
        &mut self.0
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}
