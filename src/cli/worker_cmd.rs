//! `pooltune worker`: a worker node of a broker run, on this machine or another.
//!
//! It waits for the run (saying so), estimates its clock's offset from the controller's, serves
//! the run's jobs with its workers (the synthetic service the controller's knobs describe, or
//! your own job through [`crate::App`]), reports every tick, and exits 0 with its own summary
//! when the controller ends the run. SIGINT or SIGTERM end it early (130, 143): the jobs in hand
//! finish and are reported; the ones it had pulled but not started go back to the stream.

use std::process::ExitCode;
use std::time::Duration;

use super::args::WorkerArgs;
use super::prometheus::Exporter;
use super::{BadInput, Failure, Outcome, Work, finish};
use crate::engine::broker::BrokerSpec;
use crate::engine::{EngineHandle, QueueChoice, RunOptions};
use crate::metrics::Snapshot;
use crate::settings::Settings;

/// A node's tick: how often it reports, and so how soon its finished jobs are acknowledged.
const NODE_TICK: Duration = Duration::from_millis(20);

pub fn run(a: &WorkerArgs, work: Option<Work>) -> Outcome {
    let spec = BrokerSpec::new(&a.broker, &a.run_name)
        .map_err(|e| BadInput(e.to_string()))?
        .with_security(a.security.security());
    let name = a.name.clone().unwrap_or_else(default_name);
    if name.is_empty() || name.len() > 64 || name.contains(char::is_whitespace) {
        return Err(BadInput(format!("--name {name:?} is not accepted; expected 1 to 64 characters, no spaces")).into());
    }
    let _log = super::logging::init(a.log.as_deref(), None)?;
    let mut settings = Settings::default();
    if let Some(n) = a.workers {
        settings.workers = n;
    }
    if let Some(t) = a.threads {
        settings.threads = t;
    }
    // Bound before the wait, so a port in use is said at once; serving from the run's start.
    let metrics = a.metrics.metrics_addr.map(|m| Exporter::bind(m, false)).transpose()?;
    if let Some(m) = &metrics {
        eprintln!("pooltune: {}", m.announcement());
    }
    eprintln!("pooltune: node {name} waiting for run {} on {}", spec.run_name, spec.shown());
    // A node acknowledges a job only after a report that counts it, so its tick bounds how long
    // a finished job holds a place in the stream: short ticks keep that small.
    let opts = RunOptions { interval: NODE_TICK, run_distributions: metrics.is_some(), ..RunOptions::default() };
    let engine = EngineHandle::start_on(settings, opts, work, QueueChoice::Node { spec, name: name.clone() })
        .map_err(Failure::from)?;
    if let Some(m) = &metrics {
        m.follow(engine.subscribe());
    }
    eprintln!("pooltune: node {name} joined; serving until the controller ends the run");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let _hook = crate::panic_hook::install(None);
    let signal = rt.block_on(finish::follow(&engine, |_| Ok(())))?;
    let last = engine.try_join().map_err(Failure::from)?;
    eprintln!("{}", summary(&name, &last));
    Ok(signal.map_or(ExitCode::SUCCESS, finish::exit_code))
}

/// The host's name and this process's id.
fn default_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let host = host.trim();
    format!("{}-{}", if host.is_empty() { "node" } else { host }, std::process::id())
}

fn summary(name: &str, s: &Snapshot) -> String {
    let t = &s.totals;
    let l = &s.measured.latency.response;
    format!(
        "pooltune: node {name} served {} jobs ({} failed) with {} workers over {:.1} s; latency p50 {:.3} p99 {:.3} ms",
        t.completed,
        t.failed,
        s.settings.workers,
        s.elapsed.as_secs_f64(),
        l.p50,
        l.p99
    )
}
