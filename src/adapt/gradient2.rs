//! Gradient2, as concurrency-limits' `Gradient2Limit` defines it: the limit follows the ratio of
//! a long exponential average of the service time to the latest window's (see the module above
//! for the rule and its defaults).

use super::{Bounds, Limiter, State, Window, workers_of};

/// Jobs the limit may grow by while service times hold.
const QUEUE_SIZE: f64 = 4.0;
const SMOOTHING: f64 = 0.2;
/// A rise of the service time up to this factor over the long average is tolerated.
const TOLERANCE: f64 = 1.5;
/// Windows in the long average, and the first ones averaged plainly.
const LONG_WINDOW: f64 = 600.0;
const WARMUP: u32 = 10;

/// An exponential average whose first values are a plain mean (`ExpAvgMeasurement`).
#[derive(Debug, Clone, Copy, Default)]
struct ExpAvg {
    value: f64,
    sum: f64,
    count: u32,
}

impl ExpAvg {
    fn add(&mut self, x: f64) -> f64 {
        if self.count < WARMUP {
            self.count += 1;
            self.sum += x;
            self.value = self.sum / f64::from(self.count);
        } else {
            let factor = 2.0 / (LONG_WINDOW + 1.0);
            self.value = self.value * (1.0 - factor) + x * factor;
        }
        self.value
    }
}

pub struct Gradient2 {
    estimate: f64,
    long: ExpAvg,
    state: State,
}

impl Gradient2 {
    #[must_use]
    pub fn new(start: f64) -> Gradient2 {
        Gradient2 { estimate: start, long: ExpAvg::default(), state: State::Starting }
    }
}

impl Limiter for Gradient2 {
    fn ready(&self, w: &Window) -> bool {
        w.full()
    }

    fn update(&mut self, w: &Window, b: &Bounds) -> usize {
        let short = w.service_s;
        if short <= 0.0 {
            return workers_of(self.estimate, b);
        }
        let long = self.long.add(short);
        // After a long overload the average lags far above the present: bring it down faster.
        if long / short > 2.0 {
            self.long.value *= 0.95;
        }
        let gradient = (TOLERANCE * long / short).clamp(0.5, 1.0);
        self.state = State::Gradient2 { gradient, short_ms: short * 1e3, long_ms: long * 1e3 };
        // Limited by the arrivals, not by the pool: no evidence to grow on.
        if w.inflight < self.estimate / 2.0 {
            return workers_of(self.estimate, b);
        }
        let new = self.estimate * gradient + QUEUE_SIZE;
        let new = self.estimate * (1.0 - SMOOTHING) + new * SMOOTHING;
        self.estimate = b.clamp(new);
        workers_of(self.estimate, b)
    }

    fn reset_to(&mut self, workers: usize) {
        #[allow(clippy::cast_precision_loss)]
        let w = workers.max(1) as f64;
        self.estimate = w;
    }

    fn limit(&self) -> f64 {
        self.estimate
    }

    fn state(&self) -> State {
        self.state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: Bounds = Bounds { min: 1, max: 200, timeout: None };

    fn win(service_ms: f64, inflight: f64) -> Window {
        super::super::window_of(service_ms, inflight, 0)
    }

    #[test]
    fn steady_service_grows_the_limit_by_a_fifth_of_the_queue_size() {
        // gradient = clamp(1.5 × 10/10) = 1: new = 20 + 4, smoothed: 20 × 0.8 + 24 × 0.2 = 20.8.
        let mut g = Gradient2::new(20.0);
        assert_eq!(g.update(&win(10.0, 20.0), &B), 20);
        assert!((g.limit() - 20.8).abs() < 1e-9, "{}", g.limit());
        assert!((g.update(&win(10.0, 20.0), &B) as f64 - (20.8f64 * 0.8 + (20.8 + 4.0) * 0.2).floor()).abs() < 1e-9);
    }

    #[test]
    fn slower_service_than_tolerated_shrinks_it_by_the_gradient() {
        let mut g = Gradient2::new(40.0);
        // Ten windows at 10 ms fill the plain-mean warm-up of the long average.
        for _ in 0..10 {
            g.update(&win(10.0, 40.0), &Bounds { max: 40, ..B });
        }
        assert!((g.limit() - 40.0).abs() < 1e-9, "held at the bound: {}", g.limit());
        // A 30 ms window: long = 10 × (1 − 2/601) + 30 × 2/601; gradient = 1.5 × long / 30.
        let long = 10.0 * (1.0 - 2.0 / 601.0) + 30.0 * 2.0 / 601.0;
        let gradient = 1.5 * long / 30.0;
        let want = 40.0 * 0.8 + (40.0 * gradient + 4.0) * 0.2;
        g.update(&win(30.0, 40.0), &B);
        assert!((g.limit() - want).abs() < 1e-9, "{} vs {want}", g.limit());
        assert!(matches!(g.state(), State::Gradient2 { gradient: x, .. } if (x - gradient).abs() < 1e-12));
        // The gradient never goes below one half, however slow the window.
        let before = g.limit();
        g.update(&win(1000.0, 40.0), &B);
        assert!((g.limit() - (before * 0.8 + (before * 0.5 + 4.0) * 0.2)).abs() < 1e-9);
    }

    #[test]
    fn it_holds_when_fewer_than_half_are_busy() {
        let mut g = Gradient2::new(20.0);
        g.update(&win(10.0, 9.0), &B);
        assert!((g.limit() - 20.0).abs() < 1e-12, "{}", g.limit());
    }

    #[test]
    fn a_backlog_in_the_queue_does_not_shrink_it() {
        // Every worker busy, a queue growing in front of them, service times unchanged: the
        // wait is not Gradient2's input, so the limit grows (by up to 0.8 a window) toward max.
        let mut g = Gradient2::new(10.0);
        for _ in 0..50 {
            let n = g.limit();
            g.update(&win(5.0, n.floor()), &B);
        }
        assert!(g.limit() > 40.0, "{}", g.limit());
    }

    #[test]
    fn the_long_average_is_cut_when_far_above_the_short() {
        let mut g = Gradient2::new(20.0);
        for _ in 0..10 {
            g.update(&win(50.0, 20.0), &B);
        }
        g.update(&win(10.0, 20.0), &B);
        let long = 50.0 * (1.0 - 2.0 / 601.0) + 10.0 * 2.0 / 601.0;
        assert!((g.long.value * 1e3 - long * 0.95).abs() < 1e-9, "{}", g.long.value * 1e3);
    }
}
