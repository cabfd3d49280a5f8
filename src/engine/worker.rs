//! A worker: take a job, serve it, record it, repeat.
//!
//! A worker asked to retire (the pool shrank) finishes the job it holds and then stops; it only
//! checks between jobs, so no job is cut short, lost or run twice. The pop and the retirement
//! check race in a biased `select!`: the pop removes a job only in the poll that returns it, so a
//! retiring worker never takes a job it will not run.

use std::sync::Arc;
use std::time::Instant;

use tokio_util::sync::CancellationToken;

use super::Shared;
use super::service::serve;
use crate::metrics::recorder::JobTimes;

pub async fn run(id: usize, shared: Arc<Shared>, retire: CancellationToken) {
    let shard = shared.recorders.shard(id);
    loop {
        let job = tokio::select! {
            biased;
            () = retire.cancelled() => break,
            job = shared.queue.pop() => match job {
                Some(job) => job,
                None => break,
            },
        };
        let start = Instant::now();
        shard.start();
        serve(&shared.service_kind, &shared.timer, start, job.service).await;
        let end = Instant::now();
        shard.finish(
            JobTimes {
                intended: job.intended,
                enqueued: job.enqueued,
                start,
                end,
            },
            true,
        );
        job.release();
    }
}
