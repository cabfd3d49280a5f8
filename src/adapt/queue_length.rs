//! `queue-length`: the rule Kubernetes users run today to scale queue consumers, KEDA feeding the
//! horizontal pod autoscaler (HPA) a queue length with an average-value target per replica.
//!
//! Each one-second window: the queue length L is the jobs in the system at its end, waiting and
//! in service (KEDA's RabbitMQ scaler counts ready and unacknowledged messages alike, and a
//! worker's job is an unacknowledged one); the HPA's rule is
//! desired = ⌈current × (L / current) / target⌉ = ⌈L / target⌉, with its defaults:
//!
//! - a **tolerance** of 10%: no change while L / current is within 10% of the target;
//! - **no scale-up stabilisation**: a higher recommendation is taken at once;
//! - a **scale-down stabilisation window** of 300 s: a lower count is the highest
//!   recommendation of the window, so the pool shrinks only to what the whole window would have
//!   allowed. Scaled to the run: the HPA decides every 15 s (its sync period) and this
//!   controller every 1 s, so the window is 300 / 15 = [`STABILISATION`] decisions, 20 s.

use std::collections::VecDeque;

use super::{Bounds, Limiter, State, Window};

/// The HPA's default tolerance on the metric's ratio to its target.
pub const TOLERANCE: f64 = 0.1;
/// The scale-down stabilisation window, in one-second decisions (300 s at the HPA's 15 s sync
/// period is 20 of its decisions).
pub const STABILISATION: usize = 20;

pub struct QueueLength {
    target: f64,
    count: usize,
    /// The latest recommendations, newest last, at most [`STABILISATION`].
    recent: VecDeque<usize>,
    state: State,
}

impl QueueLength {
    #[must_use]
    pub fn new(workers: usize, target: f64) -> QueueLength {
        // The count it starts from counts as a recommendation: no scale-down in its first window.
        let count = workers.max(1);
        QueueLength { target, count, recent: VecDeque::from([count]), state: State::Starting }
    }
}

impl Limiter for QueueLength {
    fn ready(&self, w: &Window) -> bool {
        w.secs >= super::WINDOW_S - 1e-9
    }

    #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    fn update(&mut self, w: &Window, b: &Bounds) -> usize {
        let current = self.count as f64;
        let per_worker = w.in_system / current;
        let ratio = per_worker / self.target;
        let desired =
            if (ratio - 1.0).abs() <= TOLERANCE { self.count } else { b.clamp((current * ratio).ceil()) as usize };
        self.recent.push_back(desired);
        if self.recent.len() > STABILISATION {
            self.recent.pop_front();
        }
        let held = if desired >= self.count {
            desired
        } else {
            // The highest recommendation of the window, and never above the present count.
            self.recent.iter().copied().max().unwrap_or(desired).min(self.count)
        };
        self.count = b.clamp(held as f64) as usize;
        self.state = State::QueueLength { per_worker, target: self.target, desired, held: self.count };
        self.count
    }

    fn reset_to(&mut self, workers: usize) {
        self.count = workers.max(1);
        self.recent = VecDeque::from([self.count]);
    }

    fn limit(&self) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        let c = self.count as f64;
        c
    }

    fn state(&self) -> State {
        self.state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: Bounds = Bounds { min: 1, max: 100, timeout: None };

    fn win(in_system: f64) -> Window {
        Window { secs: 1.0, in_system, ..Window::default() }
    }

    #[test]
    fn desired_is_the_queue_over_the_target_outside_the_tolerance() {
        let mut q = QueueLength::new(10, 2.0);
        // 21 in the system: 2.1 a worker, within 10% of 2: held.
        assert_eq!(q.update(&win(21.0), &B), 10);
        // 23: 2.3 a worker, 15% over: ⌈10 × 1.15⌉ = 12, at once.
        assert_eq!(q.update(&win(23.0), &B), 12);
        assert!(matches!(q.state(), State::QueueLength { desired: 12, held: 12, .. }));
    }

    #[test]
    fn scale_down_waits_for_the_stabilisation_window() {
        let mut q = QueueLength::new(10, 1.0);
        assert_eq!(q.update(&win(20.0), &B), 20);
        // The queue empties to 4: the recommendation is 4, but the window still holds 20.
        let mut counts = Vec::new();
        for _ in 0..STABILISATION {
            counts.push(q.update(&win(4.0), &B));
        }
        assert!(counts[..STABILISATION - 1].iter().all(|&c| c == 20), "{counts:?}");
        assert_eq!(counts[STABILISATION - 1], 4, "the window's highest is now 4: {counts:?}");
    }

    #[test]
    fn it_keeps_its_bounds() {
        let mut q = QueueLength::new(5, 1.0);
        assert_eq!(q.update(&win(500.0), &Bounds { max: 30, ..B }), 30);
        q.reset_to(5);
        assert_eq!(q.update(&win(0.0), &Bounds { min: 3, ..B }), 5, "down only after the window");
    }
}
