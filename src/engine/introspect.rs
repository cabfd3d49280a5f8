//! The workload runtime seen from inside, sampled on the control thread each tick: a
//! `RuntimeMonitor` over the runtime and a `TaskMonitor` over the worker tasks (tokio-metrics).
//! Figures that need `--cfg tokio_unstable` are gated here and nowhere else.

use tokio::runtime::Handle;
use tokio_metrics::{RuntimeIntervals, RuntimeMonitor, TaskIntervals, TaskMonitor};

use crate::metrics::RuntimeStats;

pub struct Introspect {
    runtime: RuntimeIntervals,
    /// Instruments every worker task; sampled each tick.
    pub tasks: TaskMonitor,
    task_intervals: TaskIntervals,
}

fn us(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

impl Introspect {
    #[must_use]
    pub fn new(handle: &Handle) -> Self {
        let tasks = TaskMonitor::new();
        Self { runtime: RuntimeMonitor::new(handle).intervals(), task_intervals: tasks.intervals(), tasks }
    }

    /// The figures since the previous call.
    pub fn sample(&mut self) -> RuntimeStats {
        let (Some(r), Some(t)) = (self.runtime.next(), self.task_intervals.next()) else {
            return RuntimeStats::default();
        };
        #[allow(unused_mut)]
        let mut s = RuntimeStats {
            workers: r.workers_count,
            busy_ratio: r.busy_ratio().clamp(0.0, 1.0),
            global_queue_depth: r.global_queue_depth,
            live_tasks: r.live_tasks_count,
            park_count: r.total_park_count,
            mean_scheduled_delay_us: us(t.mean_scheduled_duration()),
            mean_poll_us: us(t.mean_poll_duration()),
            slow_poll_ratio: if t.total_poll_count > 0 { t.slow_poll_ratio() } else { 0.0 },
            task_polls: t.total_poll_count,
            ..RuntimeStats::default()
        };
        #[cfg(tokio_unstable)]
        {
            s.polls = Some(r.total_polls_count);
            s.steals = Some(r.total_steal_count);
            s.local_queue_depth = Some(r.total_local_queue_depth);
            s.blocking_queue_depth = Some(r.blocking_queue_depth);
            s.blocking_threads = Some(r.blocking_threads_count);
            s.runtime_mean_poll_us = Some(us(r.mean_poll_duration));
        }
        s
    }
}
