//! Where the jobs wait and where their time goes: the queue at a tick ([`QueueView`]), a
//! broker run's waiting jobs by place ([`QueueParts`]), and the mean response split into its
//! parts ([`ResponseSplit`]).

use serde::Serialize;

use super::{BrokerView, Measured};

/// The queue at the end of a tick. `depth`, `mean` and `max` count what `bound` bounds: on the
/// in-process queue the jobs waiting; over a broker the jobs the run's stream holds (undelivered,
/// pulled ahead by a worker process, in service until acknowledged), read from the server, so
/// never above the bound (but for a bound just lowered). Where a broker run's waiting jobs are
/// is in `parts`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct QueueView {
    pub depth: usize,
    /// Time-weighted mean depth over the tick.
    pub mean: f64,
    pub max: usize,
    pub bound: usize,
    /// A broker run: the jobs waiting for a worker, by place, at the end of the tick.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parts: Option<QueueParts>,
}

/// Where a broker run's jobs wait for a worker (counts, or time-weighted means).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct QueueParts {
    /// On the controller, not yet stored by the stream: the outbox, bounded by `queue` (under
    /// `block` the producer waits when it is full), and the job being published.
    pub outbox: f64,
    /// In the stream, not yet delivered to any worker process.
    pub stream: f64,
    /// Pulled ahead (`prefetch`) by a worker process, not yet taken by a worker: the controller's
    /// own and every node's.
    pub held: f64,
}

impl QueueParts {
    #[must_use]
    pub fn total(&self) -> f64 {
        self.outbox + self.stream + self.held
    }

    #[must_use]
    pub fn scaled(&self, k: f64) -> QueueParts {
        QueueParts { outbox: self.outbox * k, stream: self.stream * k, held: self.held * k }
    }

    #[must_use]
    pub fn plus(&self, o: &QueueParts) -> QueueParts {
        QueueParts { outbox: self.outbox + o.outbox, stream: self.stream + o.stream, held: self.held + o.held }
    }
}

/// Where the mean response time goes: the queue, the broker (a broker run's publish → delivery:
/// its time in the stream), held at the worker process that pulled the job before a worker took
/// it (a broker run's `prefetch`), the runtime's scheduling delay, and the service. Queue,
/// broker, held and scheduling are parts of the measured wait, so they add up to the mean
/// response.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct ResponseSplit {
    pub queue: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broker: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held: Option<f64>,
    pub scheduling: f64,
    pub service: f64,
}

impl ResponseSplit {
    /// The split of a window's mean response, in milliseconds.
    #[must_use]
    pub fn of(m: &Measured, broker: Option<&BrokerView>) -> ResponseSplit {
        let l = &m.latency;
        let service = l.service.mean.max(0.0);
        // The runtime's delay from wake to poll: part of what a job waits, capped at the wait.
        let scheduling = (m.runtime.mean_scheduled_delay_us / 1e3).min(l.wait.mean).max(0.0);
        // On a broker run, the time held at the worker process after the pull (the `prefetch`
        // buffer), measured over this window; then the time from publish to delivery, which the
        // broker reports over the whole run (warm-up included, when jobs may queue before any
        // node has joined): where the two would pass the wait, the window's own figure stands
        // and the broker's is capped.
        let held = broker.map(|_| m.held_ms_mean.min(l.wait.mean - scheduling).max(0.0));
        let rest = l.wait.mean - scheduling - held.unwrap_or(0.0);
        let broker = broker.map(|b| b.time_in_broker_ms.mean.min(rest).max(0.0));
        let queue = (rest - broker.unwrap_or(0.0)).max(0.0);
        ResponseSplit { queue, broker, held, scheduling, service }
    }

    /// The parts that are there, named, in the order a job meets them.
    #[must_use]
    pub fn parts(&self) -> Vec<(&'static str, f64)> {
        let mut v = vec![("queue", self.queue)];
        v.extend(self.broker.map(|b| ("broker", b)));
        v.extend(self.held.map(|h| ("held", h)));
        v.extend([("scheduling", self.scheduling), ("service", self.service)]);
        v
    }

    #[must_use]
    pub fn total(&self) -> f64 {
        self.parts().iter().map(|(_, v)| v).sum()
    }
}
