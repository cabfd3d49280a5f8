//! AIMD, as concurrency-limits' `AIMDLimit` defines it: one more worker a window while nothing
//! fails and at least half are busy; a tenth fewer (at least one) on a failure, a timeout or a
//! window slower than the timeout.

use std::time::Duration;

use super::{Bounds, Limiter, State, Window};

const BACKOFF: f64 = 0.9;
/// The reference's timeout when the run sets none.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

pub struct Aimd {
    limit: usize,
    backoffs: u64,
    state: State,
}

impl Aimd {
    #[must_use]
    pub fn new(start: usize) -> Aimd {
        Aimd { limit: start, backoffs: 0, state: State::Starting }
    }
}

impl Limiter for Aimd {
    fn ready(&self, w: &Window) -> bool {
        w.full()
    }

    fn update(&mut self, w: &Window, b: &Bounds) -> usize {
        let timeout = b.timeout.unwrap_or(DEFAULT_TIMEOUT).as_secs_f64();
        let current = self.limit;
        #[allow(clippy::cast_precision_loss)]
        let new = if w.drops > 0 || w.service_s > timeout {
            self.backoffs += 1;
            ((current as f64 * BACKOFF) as usize).min(current.saturating_sub(1)).max(1)
        } else if w.inflight * 2.0 >= current as f64 {
            current + 1
        } else {
            current
        };
        self.state = State::Aimd { backoffs: self.backoffs, rtt_ms: w.service_s * 1e3 };
        self.limit = b.clamp(new as f64) as usize;
        self.limit
    }

    fn reset_to(&mut self, workers: usize) {
        self.limit = workers.max(1);
    }

    #[allow(clippy::cast_precision_loss)]
    fn limit(&self) -> f64 {
        self.limit as f64
    }

    fn state(&self) -> State {
        self.state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: Bounds = Bounds { min: 1, max: 1000, timeout: None };

    use super::super::window_of as win;

    #[test]
    fn additive_increase_multiplicative_decrease() {
        let mut a = Aimd::new(10);
        assert_eq!(a.update(&win(5.0, 5.0, 0), &B), 11, "half busy: one more");
        assert_eq!(a.update(&win(5.0, 5.0, 0), &B), 11, "under half busy: held");
        assert_eq!(a.update(&win(5.0, 11.0, 3), &B), 9, "a failure: ⌊11 × 0.9⌋ = 9");
        assert_eq!(a.update(&win(5.0, 9.0, 1), &B), 8, "⌊9 × 0.9⌋ = 8");
        let mut small = Aimd::new(5);
        assert_eq!(small.update(&win(5.0, 5.0, 1), &B), 4, "⌊5 × 0.9⌋ = 4");
        let mut two = Aimd::new(2);
        assert_eq!(two.update(&win(5.0, 2.0, 1), &B), 1, "at least one less");
        assert_eq!(two.update(&win(5.0, 1.0, 1), &B), 1, "never below one");
    }

    #[test]
    fn a_window_slower_than_the_timeout_is_a_drop() {
        let mut a = Aimd::new(20);
        let b = Bounds { timeout: Some(Duration::from_millis(50)), ..B };
        assert_eq!(a.update(&win(60.0, 20.0, 0), &b), 18, "slower than --timeout");
        assert_eq!(a.update(&win(4000.0, 18.0, 0), &B), 19, "5 s is the default timeout");
        assert_eq!(a.update(&win(6000.0, 19.0, 0), &B), 17);
        assert!(matches!(a.state(), State::Aimd { backoffs: 2, .. }));
    }

    #[test]
    fn queue_wait_alone_never_backs_it_off() {
        // Every worker busy behind a backlog, no failures, service unchanged: it only grows.
        let mut a = Aimd::new(4);
        for _ in 0..6 {
            let n = a.limit;
            a.update(&win(5.0, n as f64, 0), &B);
        }
        assert_eq!(a.limit, 10);
    }
}
