//! Vegas, as concurrency-limits' `VegasLimit` defines it: the limit grows while the estimated
//! queue inside the downstream is short and shrinks when it is long (see the module above for
//! the rule and its defaults).

use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};

use super::{Bounds, Limiter, State, Window, workers_of};

/// Windows between no-load probes, per unit of limit.
const PROBE_MULTIPLIER: f64 = 30.0;
/// How far a window moves the limit toward its new value (1: all the way).
const SMOOTHING: f64 = 1.0;

/// max(1, ⌊log₁₀ limit⌋) below 1000, ⌊√limit⌋ from there (`Log10RootFunction`).
#[must_use]
pub fn log10_root(limit: usize) -> f64 {
    #[allow(clippy::cast_precision_loss)]
    let l = limit as f64;
    if limit < 1000 { l.log10().floor().max(1.0) } else { l.sqrt().floor() }
}

pub struct Vegas {
    estimate: f64,
    /// The no-load service time, seconds (0: none yet).
    rtt_noload: f64,
    probe_count: u64,
    probe_jitter: f64,
    rng: SmallRng,
    state: State,
}

impl Vegas {
    #[must_use]
    pub fn new(start: f64, seed: u64) -> Vegas {
        let mut rng = SmallRng::seed_from_u64(seed);
        let probe_jitter = rng.random_range(0.5..1.0);
        Vegas { estimate: start, rtt_noload: 0.0, probe_count: 0, probe_jitter, rng, state: State::Starting }
    }

    /// The next probe's jitter, and the window count it waits for (for tests).
    #[must_use]
    pub fn probe_due(&self) -> f64 {
        self.probe_jitter * PROBE_MULTIPLIER * self.estimate
    }
}

impl Limiter for Vegas {
    fn ready(&self, w: &Window) -> bool {
        w.full()
    }

    fn update(&mut self, w: &Window, b: &Bounds) -> usize {
        let rtt = w.service_s;
        if rtt <= 0.0 {
            return workers_of(self.estimate, b);
        }
        self.probe_count += 1;
        #[allow(clippy::cast_precision_loss)]
        if self.probe_due() <= self.probe_count as f64 {
            // Probe: this window's service time is the no-load one from now on.
            self.probe_jitter = self.rng.random_range(0.5..1.0);
            self.probe_count = 0;
            self.rtt_noload = rtt;
            return workers_of(self.estimate, b);
        }
        if self.rtt_noload == 0.0 || rtt < self.rtt_noload {
            self.rtt_noload = rtt;
            return workers_of(self.estimate, b);
        }
        let queue = (self.estimate * (1.0 - self.rtt_noload / rtt)).ceil();
        self.state = State::Vegas { queue, rtt_ms: rtt * 1e3, rtt_noload_ms: self.rtt_noload * 1e3 };
        let log = log10_root(self.estimate as usize);
        let new = if w.drops > 0 {
            self.estimate - log
        } else if w.inflight * 2.0 < self.estimate {
            // Not near the limit: growing it would drift upward on no evidence.
            return workers_of(self.estimate, b);
        } else if queue <= log {
            self.estimate + 6.0 * log
        } else if queue < 3.0 * log {
            self.estimate + log
        } else if queue > 6.0 * log {
            self.estimate - log
        } else {
            return workers_of(self.estimate, b);
        };
        let new = b.clamp(new);
        self.estimate = (1.0 - SMOOTHING) * self.estimate + SMOOTHING * new;
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

    const B: Bounds = Bounds { min: 1, max: 1000, timeout: None };

    fn win(service_ms: f64, inflight: f64) -> Window {
        super::super::window_of(service_ms, inflight, 0)
    }

    #[test]
    fn log10_root_matches_the_reference_table() {
        let cases = [(0, 1.0), (1, 1.0), (9, 1.0), (10, 1.0), (99, 1.0), (100, 2.0), (999, 2.0), (1000, 31.0)];
        for (l, want) in cases {
            assert!((log10_root(l) - want).abs() < 1e-12, "{l}: {}", log10_root(l));
        }
    }

    #[test]
    fn the_queue_estimate_picks_the_step() {
        // limit 20: log 1, so alpha 3, beta 6, threshold 1. The first window sets no-load (10 ms).
        let mut v = Vegas::new(20.0, 1);
        assert_eq!(v.update(&win(10.0, 20.0), &B), 20);
        // queue = ⌈20 × (1 − 10/10.2)⌉ = 1 ≤ threshold: + beta (6).
        assert_eq!(v.update(&win(10.2, 20.0), &B), 26);
        // queue = ⌈26 × (1 − 10/10.8)⌉ = ⌈1.93⌉ = 2 < alpha: + log (1).
        assert_eq!(v.update(&win(10.8, 26.0), &B), 27);
        // queue = ⌈27 × (1 − 10/12)⌉ = ⌈4.5⌉ = 5, between alpha and beta: held.
        assert_eq!(v.update(&win(12.0, 27.0), &B), 27);
        // queue = ⌈27 × (1 − 10/20)⌉ = ⌈13.5⌉ = 14 > beta: − log.
        assert_eq!(v.update(&win(20.0, 27.0), &B), 26);
        assert!(matches!(v.state(), State::Vegas { queue, .. } if (queue - 14.0).abs() < 1e-9));
        // A failure shrinks it whatever the queue.
        let dropped = Window { drops: 1, ..win(10.2, 26.0) };
        assert_eq!(v.update(&dropped, &B), 25);
        // A faster window is the new no-load, with no change.
        assert_eq!(v.update(&win(9.0, 25.0), &B), 25);
    }

    #[test]
    fn it_does_not_grow_when_fewer_than_half_are_busy() {
        let mut v = Vegas::new(20.0, 1);
        v.update(&win(10.0, 20.0), &B);
        assert_eq!(v.update(&win(10.0, 9.0), &B), 20, "9 busy of 20: held");
        assert_eq!(v.update(&win(10.0, 10.0), &B), 26, "10 busy of 20: grows");
    }

    #[test]
    fn it_probes_the_no_load_time_afresh() {
        // Held at 2 by its bounds, so the probe's due count stays put.
        let b = Bounds { min: 2, max: 2, timeout: None };
        let mut v = Vegas::new(2.0, 3);
        v.update(&win(10.0, 2.0), &b);
        // Windows of 30 ms would shrink it, until the probe takes 30 ms as the no-load time.
        let due = v.probe_due().ceil() as usize;
        assert!((30..=60).contains(&due), "30 × 2 × U(0.5, 1): {due}");
        let mut probed = false;
        // The first window counted one; the probe comes with the window that counts `due`.
        for _ in 2..due {
            v.update(&win(30.0, 2.0), &b);
            probed |= v.rtt_noload > 0.02;
        }
        assert!(!probed, "no probe before it is due");
        v.update(&win(30.0, 2.0), &b);
        assert!((v.rtt_noload - 0.030).abs() < 1e-12, "the probe window is the new no-load: {}", v.rtt_noload);
    }

    #[test]
    fn the_queue_wait_is_not_its_input() {
        // A backlog in front of the pool leaves service times alone: with every worker busy and
        // the service time at its no-load value, Vegas grows the pool; it never sees the wait.
        let mut v = Vegas::new(10.0, 1);
        v.update(&win(5.0, 10.0), &B);
        let mut n = 10;
        for _ in 0..5 {
            n = v.update(&win(5.0, n as f64), &B);
        }
        assert_eq!(n, 40, "five windows of +6 from 10");
    }
}
