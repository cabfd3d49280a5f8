//! Broker runs from the command line, whatever the broker: the `pooltune` binary, worker
//! processes and a controller for a `--broker` URL, and the checks every broker's tests make of
//! a run's JSON.

use std::process::Command;
use std::time::Duration;

pub fn pooltune(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_pooltune")).args(args).output().unwrap()
}

/// `args` is refused before any run: exit status 2 and one line on stderr with each of `want`.
pub fn refused(args: &[&str], want: &[&str]) {
    let out = pooltune(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert_eq!(err.lines().count(), 1, "{args:?}: one line, got {err}");
    for w in want {
        assert!(err.contains(w), "{args:?}: {err:?} lacks {w:?}");
    }
}

pub fn with<'a>(run: &[&'a str], url: &'a str) -> Vec<&'a str> {
    [run, &[url]].concat()
}

/// A `pooltune worker` process for `run` on the broker at `url`, its stderr kept in `log`; killed
/// if the test fails half-way, so no node is left reconnecting to a stopped server.
pub fn worker(url: &str, run: &str, name: &str, log: &std::path::Path) -> KillOnDrop {
    worker_of(url, run, name, log, 2)
}

/// [`worker`] with `workers` workers.
pub fn worker_of(url: &str, run: &str, name: &str, log: &std::path::Path, workers: usize) -> KillOnDrop {
    let workers = workers.to_string();
    KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_pooltune"))
            .args(["worker", "--broker", url, "--run-name", run, "--workers", &workers, "--name", name])
            .args(["--threads", "1", "--log", log.with_extension("trace").to_str().unwrap()])
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

/// A controller with no workers of its own, 10 ms constant service, and `extra`: its JSON.
pub fn controller(url: &str, run: &str, json: &std::path::Path, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["run", "--headless", "--broker", url, "--run-name", run, "--workers", "0"];
    args.extend(["--service", "10ms", "--service-dist", "constant", "--json", json.to_str().unwrap()]);
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
