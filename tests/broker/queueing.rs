//! Queueing over the broker with worker processes: `block` holds the producer at the bound
//! (issue #25 A), where the jobs wait and what the model is told of them (B), and the workers
//! the end-of-run model is given (C).

use std::time::Duration;

use pooltune::engine::{EngineHandle, RunOptions};
use pooltune::metrics::{ResponseSplit, Snapshot};
use pooltune::report::compare::MIN_COMPARE_JOBS;
use pooltune::report::model_report;
use pooltune::settings::{Policy, Rate, ServiceDist, Settings};

use super::common::servers::Nats;
use super::common::{assert_accounted, exclusive, settings};
use super::{exit_of, on, opts, worker};

/// Runs `s` for `secs` on a controller over `nats` while polling its snapshots: every tick seen
/// (in order), and the last snapshot.
fn run_watching(nats: &Nats, run: &str, s: Settings, secs: u64, warmup: Duration) -> (Vec<Snapshot>, Snapshot) {
    let engine = EngineHandle::start_on(s, RunOptions { warmup, ..opts(secs) }, None, on(nats, run)).unwrap();
    let mut rx = engine.subscribe();
    let mut seen: Vec<Snapshot> = Vec::new();
    loop {
        let snap = rx.borrow_and_update().clone();
        if seen.last().is_none_or(|l| l.tick < snap.tick) {
            seen.push(snap.clone());
        }
        if snap.finished || snap.elapsed >= Duration::from_secs(secs) {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    (seen, engine.join())
}

/// Under `block`, a node whose 2 workers serve 400 jobs/s against 600/s offered: the stream holds
/// at most the bound at every reading, the controller's outbox at most the bound and its
/// publishes in flight at most as many again, and the rest of the backlog is the producer's lag,
/// which grows. Before the outbox was bounded it held up to 1,024 jobs and the lag stayed near
/// zero.
#[test]
fn block_holds_the_producer_at_the_bound_over_the_broker() {
    let Some(nats) = Nats::start() else { return };
    let _g = exclusive();
    let dir = tempfile::tempdir().unwrap();
    let mut node = worker(&nats.url, "backlog", "a", &dir.path().join("a.log"), 2);
    let bound = 100;
    let s = Settings {
        workers: 0,
        queue: bound,
        policy: Policy::Block,
        rate: Rate::PerSec(600.0),
        service: Duration::from_millis(5),
        service_dist: ServiceDist::Constant,
        ..settings()
    };
    let (ticks, last) = run_watching(&nats, "backlog", s, 4, Duration::ZERO);
    assert_eq!(exit_of(&mut node), Some(0));
    assert_accounted(&last);
    let t = &last.totals;
    assert!(t.rejected == 0 && t.dropped == 0 && t.completed > 1000, "{t:?}");
    let outbox_cap = 2.0 * bound as f64;
    for s in ticks.iter().filter(|s| s.tick > 0) {
        let q = &s.queue;
        assert!(q.depth <= bound && q.max <= bound, "at {:?} the stream held {q:?}", s.elapsed);
        let p = q.parts.expect("a broker run says where its jobs wait");
        assert!(p.outbox <= outbox_cap, "at {:?} the outbox held {} (cap {outbox_cap})", s.elapsed, p.outbox);
    }
    assert!(last.measured.queue_depth_max <= bound, "{:?}", last.measured);
    // The backlog beyond the stream and the outbox is the producer's: 200 jobs/s too many.
    let lag_at = |secs: f64| {
        ticks.iter().filter(|s| s.elapsed.as_secs_f64() <= secs).map(|s| s.producer_lag).next_back().unwrap_or_default()
    };
    let (early, late) = (lag_at(1.5), lag_at(3.9));
    eprintln!(
        "producer lag {early:?} at 1.5 s, {late:?} at 3.9 s; outbox max {:?}",
        ticks.iter().map(|s| s.queue.parts.unwrap_or_default().outbox as u64).max()
    );
    assert!(late >= Duration::from_millis(500) && late > early, "the producer was not held back: {early:?} → {late:?}");
}

/// A controller of 2 workers and a node of 4 at 1,000 jobs/s of 5 ms (ρ 0.83 over 6 workers):
/// the end-of-run model (the JSON's) is given the workers that served the window, as the
/// dashboard's last comparison in the run was. Before, the end counted the finished node as 0
/// workers and read "unstable: ρ = 2.5" for a pool that had served every job.
#[test]
fn the_final_model_keeps_the_nodes_workers() {
    let Some(nats) = Nats::start() else { return };
    let _g = exclusive();
    let dir = tempfile::tempdir().unwrap();
    let mut node = worker(&nats.url, "final-model", "a", &dir.path().join("a.log"), 4);
    let s = Settings {
        workers: 2,
        queue: 1000,
        rate: Rate::PerSec(1000.0),
        service: Duration::from_millis(5),
        service_dist: ServiceDist::Constant,
        ..settings()
    };
    // The window starts after the node has joined (it joins on the controller's first word).
    let (ticks, last) = run_watching(&nats, "final-model", s, 4, Duration::from_secs(1));
    assert_eq!(exit_of(&mut node), Some(0));
    assert_accounted(&last);
    let in_run = ticks.iter().rfind(|s| !s.finished && s.measured.latency.service.count >= MIN_COMPARE_JOBS).unwrap();
    let (live, end) = (model_report(in_run, None), model_report(&last, None));
    eprintln!("in the run: {:?}\nat the end: {:?}", live.inputs, end.inputs);
    assert_eq!(last.remote_workers, 0, "the node has finished by the end");
    let workers = |r: &pooltune::report::ModelReport| r.inputs.map(|i| i.workers);
    assert_eq!(workers(&live), Some(6), "the dashboard's comparison: {live:?}");
    assert_eq!(workers(&end), workers(&live), "the end's model: {end:?}");
    assert!(end.predicted.is_some() && end.reason.is_none(), "{end:?}");
    let rho = end.compared.iter().find(|c| c.name == "utilisation").and_then(|c| c.predicted).unwrap();
    assert!(rho < 1.0, "ρ {rho}: {end:?}");
}

/// One run of two nodes of 4 workers at 1,000 jobs/s of 5 ms (ρ 0.62) with `prefetch`.
fn two_nodes_with_prefetch(nats: &Nats, prefetch: usize) -> Snapshot {
    let run = format!("prefetch-{prefetch}");
    let dir = tempfile::tempdir().unwrap();
    let mut a = worker(&nats.url, &run, "a", &dir.path().join("a.log"), 4);
    let mut b = worker(&nats.url, &run, "b", &dir.path().join("b.log"), 4);
    let s = Settings {
        workers: 0,
        queue: 1000,
        prefetch,
        rate: Rate::PerSec(1000.0),
        service: Duration::from_millis(5),
        ..settings()
    };
    let o = RunOptions { warmup: Duration::from_secs(1), ..opts(5) };
    let last = EngineHandle::start_on(s, o, None, on(nats, &run)).unwrap().join();
    assert_eq!((exit_of(&mut a), exit_of(&mut b)), (Some(0), Some(0)));
    assert_accounted(&last);
    last
}

/// Prefetch 64 against 1 on the same pool: jobs held at a node (pulled ahead while its workers
/// are busy) are a larger share of the wait with 64, the model says so, and Little's law holds on
/// the queue length that counts them.
///
/// Little's tolerance. L counts the jobs waiting by place (outbox, stream, held at a node); λW
/// counts each job's whole enqueue → start. The one stretch no count sees is a job's transit
/// through the broker (publish → stored, the server's delivery → the node's inbox), a part of
/// its time in the broker (publish → delivered, measured per job). So `λ(W − T_broker) ≤ L ≤ λW`,
/// up to ε: the stream's count is sampled every 20 ms and a node's held jobs are counted when its
/// 20 ms report arrives, which moves at most a report's worth across each edge of a 4 s window
/// (≈ 2 × 20 ms / 4 s = 1% of L); ε = 5% of λW + 0.02 jobs covers both with room. Before the held
/// jobs were counted, L at prefetch 64 was the outbox's alone (0.04 against λW 0.86).
#[test]
fn prefetch_holds_jobs_at_the_nodes_and_the_queue_length_counts_them() {
    let Some(nats) = Nats::start() else { return };
    let _g = exclusive();
    let runs = [1, 64].map(|p| (p, two_nodes_with_prefetch(&nats, p)));
    let mut share = Vec::new();
    for (p, last) in &runs {
        let m = &last.measured;
        let r = model_report(last, None);
        let split = ResponseSplit::of(m, last.broker.as_ref());
        let x = m.throughput_per_s;
        let lambda_w = x * m.queued_ms_mean / 1e3;
        let t_broker = last.broker.as_ref().unwrap().time_in_broker_ms.mean;
        let l = m.queue_waiting_mean;
        eprintln!(
            "prefetch {p}: wait {:.3} ms, held at a node {:.3} ms, in broker {t_broker:.3} ms; split {split:?}\n  \
             L {l:.3} ({:?}) vs λW {lambda_w:.3}, λ(W − T_broker) {:.3}; X {x:.1}/s\n  little {:?}\n  diagnosis {:?}",
            m.latency.wait.mean,
            m.held_ms_mean,
            m.queue_parts_mean,
            x * (m.queued_ms_mean - t_broker) / 1e3,
            r.little.map(|c| c.diff),
            r.diagnosis,
        );
        let eps = 0.05 * lambda_w + 0.02;
        let low = x * (m.queued_ms_mean - t_broker) / 1e3 - eps;
        assert!(l >= low && l <= lambda_w + eps, "prefetch {p}: L {l:.3} outside [{low:.3}, {:.3}]", lambda_w + eps);
        share.push(m.held_ms_mean / m.latency.wait.mean);
        let held = split.held.unwrap();
        assert!(held > 0.0 && held <= m.latency.wait.mean, "prefetch {p}: {split:?}");
        if *p == 64 {
            let d = r.diagnosis.unwrap_or_default();
            assert!(d.contains("prefetch 64 holds jobs at busy nodes"), "prefetch {p}: {d:?}");
        }
    }
    assert!(
        share[1] > share[0],
        "held at a node: {:.0}% of the wait with prefetch 1, {:.0}% with 64",
        share[0] * 100.0,
        share[1] * 100.0
    );
}
