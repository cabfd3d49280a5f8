//! What one tick reads from the engine's shared state for the aggregator: the counters, the
//! producer's lag, the queue's counts and depth, the think times and the latest errors.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::Shared;
use crate::metrics::RuntimeStats;
use crate::metrics::aggregate::{GapSums, TickInputs};
use crate::settings::Settings;

pub(super) fn inputs<'a>(
    sh: &'a Shared,
    settings: &'a Settings,
    paused: bool,
    live_workers: usize,
    finished: bool,
    commands: u64,
) -> TickInputs<'a> {
    let now = Instant::now();
    let pending = sh.pending_intended.load(Ordering::Relaxed);
    let producer_lag = if pending == u64::MAX {
        Duration::ZERO
    } else {
        now.saturating_duration_since(sh.start + Duration::from_nanos(pending))
    };
    let gaps = sh.gaps.read();
    let counted = sh.queue.counts();
    #[allow(clippy::cast_precision_loss)]
    let think = GapSums {
        count: sh.thinks.swap(0, Ordering::Relaxed),
        sum: sh.think_ns.swap(0, Ordering::Relaxed) as f64 / 1e9,
        sum_sq: 0.0,
    };
    TickInputs {
        now,
        recorders: &sh.recorders,
        offered: sh.offered.load(Ordering::Relaxed),
        rejected: sh.rejected.load(Ordering::Relaxed) + counted.rejected,
        dropped: sh.dropped.load(Ordering::Relaxed) + counted.dropped,
        abandoned: sh.abandoned.load(Ordering::Relaxed),
        depth: sh.queue.take_depth_stats(),
        settings,
        paused,
        live_workers,
        producer_lag,
        trace_offered: sh.trace_offered.load(Ordering::Relaxed),
        gaps,
        think,
        finished,
        commands,
        runtime: RuntimeStats::default(),
        recent_errors: sh.errors.lock().unwrap_or_else(std::sync::PoisonError::into_inner).iter().cloned().collect(),
        custom_work: sh.work.is_some(),
        service_sample: sh.service_sample.clone(),
        nodes: Vec::new(),
        node_workers: 0,
        duplicates: 0,
        broker: None,
    }
}
