//! A worker: take a job, serve it, record it, repeat.
//!
//! A worker asked to retire (the pool shrank) finishes the job it holds and then stops; it only
//! checks between jobs, so no job is cut short, lost or run twice. Retirement is an atomic flag
//! read by the queue's pop (a `CancellationToken` would take a mutex on every job).

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use super::Shared;
use super::service::serve;
use crate::metrics::recorder::{Batch, JobTimes};

/// Jobs shorter than this keep their records in the worker's batch; before a longer one the
/// batch is flushed, so no record waits behind a long job.
const SHORT_JOB: Duration = Duration::from_micros(50);

pub async fn run(id: usize, shared: Arc<Shared>, retire: Arc<AtomicBool>) {
    let shard = shared.recorders.shard(id);
    let mut records = Batch::new(shard);
    loop {
        // Take a job without waiting if there is one; otherwise publish what is recorded before
        // waiting, so an idle worker never sits on unpublished records.
        let (job, start) = match shared.queue.try_pop() {
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
        if job.service >= SHORT_JOB {
            records.flush();
        }
        shard.start();
        serve(&shared.service_kind, &shared.timer, start, job.service).await;
        let end = Instant::now();
        records.push(JobTimes { intended: job.intended, enqueued: job.enqueued, start, end }, true);
        job.release();
        // Taking a job spends tokio's cooperative budget, as a channel receive would: a worker
        // that never waits (zero, spin or block service under load) still yields every 128 jobs
        // instead of holding its thread for ever.
        tokio::task::consume_budget().await;
        if retire.load(std::sync::atomic::Ordering::Acquire) {
            break;
        }
    }
}
