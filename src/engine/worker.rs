//! A worker: take a job, serve it, record it, repeat.
//!
//! A worker asked to retire (the pool shrank) finishes the job it holds and then stops; it only
//! checks between jobs, so no job is cut short, lost or run twice. Retirement is an atomic flag
//! read by the queue's pop (a `CancellationToken` would take a mutex on every job).
//!
//! A job is the synthetic service (through the downstream when one is set:
//! [`super::downstream`]) or your [`Work`](crate::work::Work). The `timeout` knob cancels
//! a job that is still running when it expires (a blocking kind cannot be cancelled: it is
//! counted as timed out when it ends late); a panic in your job is caught, counted and the
//! worker carries on.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures_util::FutureExt;

use super::backend::settle;
use super::service::serve;
use super::{RECENT_ERRORS, Shared};
use crate::engine::queue::Job;
use crate::metrics::recorder::{Batch, JobTimes, Kind};
use crate::work::{JobContext, Outcome, panic_message};

/// Jobs shorter than this keep their records in the worker's batch; before a longer one the
/// batch is flushed, so no record waits behind a long job.
const SHORT_JOB: Duration = Duration::from_micros(50);

pub async fn run(id: usize, shared: Arc<Shared>, retire: Arc<AtomicBool>) {
    let shard = shared.recorders.shard(id);
    let mut records = Batch::new(&shared.recorders, id);
    // The clock read that ended the last job, when nothing since could have taken long.
    let mut last_end = None;
    // Since when this worker has been free: a job queued before it is ready from here, one
    // queued after from its enqueue; the rest of its wait is the hand-off.
    let mut free_since = Instant::now();
    loop {
        // Take a job without waiting if there is one; otherwise publish what is recorded before
        // waiting, so an idle worker never sits on unpublished records.
        let now = last_end.take().unwrap_or_else(Instant::now);
        let (mut job, start) = match shared.queue.try_pop_at(now) {
            Ok(Some(taken)) => taken,
            Err(()) => break,
            Ok(None) => {
                records.flush();
                match shared.queue.pop(&retire).await {
                    Some(taken) => taken,
                    None => break,
                }
            }
        };
        if job.service >= SHORT_JOB || shared.work.is_some() {
            records.flush();
        }
        shard.start();
        let outcome = run_job(&shared, &job, start).await;
        let end = Instant::now();
        let kind = match outcome {
            Outcome::Ok => Kind::Ok,
            Outcome::Failed(e) => note(&shared, Kind::Failed, e),
            Outcome::TimedOut => note(&shared, Kind::TimedOut, format!("job {} timed out", job.id)),
            Outcome::Panicked(m) => note(&shared, Kind::Panicked, format!("job {} panicked: {m}", job.id)),
        };
        let ready = job.enqueued.max(free_since).min(start);
        // A broker job reached this process when it was pulled from the stream: from there to its
        // start it was held here (`prefetch`). Both instants are this machine's.
        let fetched = super::backend::fetched(&job).map_or(start, |f| f.min(start));
        let times =
            JobTimes { intended: job.intended, enqueued: job.enqueued, ready, fetched, start, end, asked: job.service };
        records.push(times, kind);
        job.release();
        if let Some(receipt) = job.receipt.take() {
            // A node acknowledges a job only after a report that counts it: its record must be
            // in the shard before its receipt is kept.
            records.flush();
            settle(receipt).await;
        }
        free_since = end;
        // Taking a job spends tokio's cooperative budget, as a channel receive would: a worker
        // that never waits (zero, spin or block service under load) still yields every 128 jobs
        // instead of holding its thread for ever. Unless it yields now, this job's end is the
        // next one's start (a queued job is taken within a microsecond, the histograms'
        // resolution): one clock read a job fewer at the ceiling.
        let yields = !tokio::task::coop::has_budget_remaining();
        tokio::task::consume_budget().await;
        if !yields {
            last_end = Some(end);
        }
        if retire.load(Ordering::Acquire) {
            break;
        }
    }
}

/// Keeps a failure's message among the recent ones.
fn note(shared: &Shared, kind: Kind, message: String) -> Kind {
    let mut errors = shared.errors.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if errors.len() == RECENT_ERRORS {
        errors.pop_front();
    }
    errors.push_back(message);
    kind
}

async fn run_job(shared: &Shared, job: &Job, start: Instant) -> Outcome {
    // Strict sleeps for the timeout: a job must never be cut off before its time is up.
    let timeout = match shared.timeout_ns.load(Ordering::Relaxed) {
        0 => None,
        ns => Some(start + Duration::from_nanos(ns)),
    };
    let Some(work) = &shared.work else {
        let served = async {
            // The law read once a job: whether there is a downstream, and how it stretches.
            let law = shared.downstream.usl();
            if law.is_none() {
                serve(&shared.service_kind, &shared.timer, start, job.service).await;
            } else {
                // Inside the downstream for the whole service; a job that waited for room starts
                // its service when it gets in.
                let inside = shared.downstream.enter().await;
                let from = if inside.waited { Instant::now() } else { start };
                #[allow(clippy::cast_precision_loss)]
                let stretched = job.service.as_secs_f64() * law.stretch(inside.n as f64);
                let demand = Duration::from_secs_f64(stretched.min(3600.0));
                serve(&shared.service_kind, &shared.timer, from, demand).await;
            }
        };
        return match timeout {
            None => {
                served.await;
                Outcome::Ok
            }
            Some(deadline) => {
                tokio::select! {
                    () = served => if Instant::now() > deadline { Outcome::TimedOut } else { Outcome::Ok },
                    () = shared.timer.sleep_until_strict(deadline) => Outcome::TimedOut,
                }
            }
        };
    };
    let ctx = JobContext { id: job.id, intended: job.intended, attempt: 1 };
    // Calling the work may panic before it returns a future; so may polling the future.
    let fut = match std::panic::catch_unwind(AssertUnwindSafe(|| work.call(ctx))) {
        Ok(f) => AssertUnwindSafe(f).catch_unwind(),
        Err(p) => return Outcome::Panicked(panic_message(p.as_ref())),
    };
    let result = match timeout {
        None => fut.await,
        Some(deadline) => {
            tokio::select! {
                r = fut => r,
                () = shared.timer.sleep_until_strict(deadline) => return Outcome::TimedOut,
            }
        }
    };
    match result {
        Ok(Ok(())) => Outcome::Ok,
        Ok(Err(e)) => Outcome::Failed(e),
        Err(p) => Outcome::Panicked(panic_message(p.as_ref())),
    }
}
