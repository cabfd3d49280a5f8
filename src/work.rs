//! Your own work: hand pooltune an async job and it runs it in place of the synthetic service,
//! with the same queue, pool, knobs, measurements and outputs.
//!
//! A job gets a [`JobContext`] and returns `Ok(())` or an error; a job that runs past the
//! `timeout` knob is cancelled and counted as timed out; a job that panics is caught, counted as
//! panicked, and its worker carries on. Any `Fn(JobContext) -> impl Future<Output = Result<(),
//! E>>` with `E: Display` is a [`Work`]:
//!
//! ```
//! use pooltune::work::{JobContext, Work};
//!
//! async fn fetch(ctx: JobContext) -> Result<(), String> {
//!     if ctx.id % 10 == 0 { return Err(format!("job {} failed", ctx.id)); }
//!     tokio::time::sleep(std::time::Duration::from_millis(2)).await;
//!     Ok(())
//! }
//! let work: std::sync::Arc<dyn Work> = std::sync::Arc::new(fetch);
//! # let _ = work;
//! ```
//!
//! Boxing the job's future costs one allocation per job: the price of running arbitrary code,
//! and the only per-job allocation in the engine.

use std::fmt::Display;
use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

/// What a job is told about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobContext {
    /// Unique within a run, in arrival order.
    pub id: u64,
    /// When the arrival schedule said the job arrives (latency is measured from here).
    pub intended: Instant,
    /// 1 for the first try (pooltune does not retry; a wrapper of yours may).
    pub attempt: u32,
}

/// A job's future, boxed.
pub type JobFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'static>>;

/// Work pooltune can run: one call per job.
pub trait Work: Send + Sync + 'static {
    fn call(&self, ctx: JobContext) -> JobFuture;
}

impl<F, Fut, E> Work for F
where
    F: Fn(JobContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
    E: Display,
{
    fn call(&self, ctx: JobContext) -> JobFuture {
        let fut = self(ctx);
        Box::pin(async move { fut.await.map_err(|e| e.to_string()) })
    }
}

/// How a job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Failed(String),
    TimedOut,
    Panicked(String),
}

/// The message of a caught panic.
#[must_use]
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}
