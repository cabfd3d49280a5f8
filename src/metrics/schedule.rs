//! What the settings asked for over a measured window, beside what was measured: the
//! time-weighted set arrival rate, and how often the settings changed. A run whose rate ramps
//! is then compared with the rate it was asked for on average, not with wherever the ramp
//! ended, and a window in which the settings moved is known as such (the model describes one
//! setting held still).

use crate::settings::{ArrivalKind, Rate, Settings};

/// Sums over the ticks of one measured window.
#[derive(Debug, Clone, Default)]
pub struct ScheduleSums {
    /// ∫ set rate dt, jobs (a paused tick asks for none).
    rate_area: f64,
    /// Seconds summed.
    secs: f64,
    /// Some tick had no set rate (`max`, a closed loop or a batch).
    unset: bool,
    /// Ticks whose settings differed from the tick before.
    changes: u64,
    last: Option<Settings>,
    /// The fewest and most workers set, and the ticks at which the count changed.
    workers_min: usize,
    workers_max: usize,
    worker_changes: u64,
}

impl ScheduleSums {
    /// Adds a tick of `secs` that ended with `s` (a change inside the tick counts from its
    /// start: a tick's error at most).
    pub fn add(&mut self, s: &Settings, paused: bool, secs: f64) {
        match s.rate {
            _ if matches!(s.arrival, ArrivalKind::Closed | ArrivalKind::Batch) => self.unset = true,
            Rate::Max => self.unset = true,
            Rate::PerSec(_) if paused => {}
            Rate::PerSec(r) => self.rate_area += r * secs,
        }
        self.secs += secs;
        if self.last.as_ref().is_some_and(|l| l != s) {
            self.changes += 1;
        }
        if let Some(l) = &self.last {
            self.worker_changes += u64::from(l.workers != s.workers);
            self.workers_min = self.workers_min.min(s.workers);
            self.workers_max = self.workers_max.max(s.workers);
        } else {
            (self.workers_min, self.workers_max) = (s.workers, s.workers);
        }
        if self.last.as_ref() != Some(s) {
            self.last = Some(s.clone());
        }
    }

    /// A new window starts. Its first tick's settings are where it starts from: the dashboard
    /// resets the window *because* of a change, which is then not a change within it.
    pub fn reset(&mut self) {
        *self = ScheduleSums::default();
    }

    /// The mean set arrival rate over the window (`None`: not an open loop at a set rate
    /// throughout, or nothing summed yet).
    #[must_use]
    pub fn set_rate_per_s(&self) -> Option<f64> {
        (!self.unset && self.secs > 0.0).then(|| self.rate_area / self.secs)
    }

    /// Ticks in the window at which the settings changed.
    #[must_use]
    pub fn changes(&self) -> u64 {
        self.changes
    }

    /// The worker count over the window, given the worker-seconds summed beside it.
    #[must_use]
    pub fn workers(&self, worker_seconds: f64) -> super::WorkerUse {
        super::WorkerUse {
            min: self.workers_min,
            max: self.workers_max,
            mean: if self.secs > 0.0 { worker_seconds / self.secs } else { 0.0 },
            changes: self.worker_changes,
            worker_seconds,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ramp_is_weighted_by_time_and_counted_as_changes() {
        let mut w = ScheduleSums::default();
        let at = |r: f64| Settings { rate: Rate::PerSec(r), ..Settings::default() };
        w.add(&at(400.0), false, 1.0);
        for r in [500.0, 600.0, 700.0] {
            w.add(&at(r), false, 1.0);
        }
        w.add(&at(700.0), true, 1.0);
        assert_eq!(w.set_rate_per_s(), Some((400.0 + 500.0 + 600.0 + 700.0) / 5.0));
        assert_eq!(w.changes(), 3);
        w.reset();
        w.add(&at(700.0), false, 2.0);
        assert_eq!((w.set_rate_per_s(), w.changes()), (Some(700.0), 0));
        w.add(&Settings { rate: Rate::Max, ..at(700.0) }, false, 1.0);
        assert_eq!((w.set_rate_per_s(), w.changes()), (None, 1));
    }

    #[test]
    fn worker_counts_are_tracked_through_the_window() {
        let mut w = ScheduleSums::default();
        let at = |n: usize| Settings { workers: n, ..Settings::default() };
        for n in [8, 8, 9, 7, 7, 12] {
            w.add(&at(n), false, 0.5);
        }
        let u = w.workers(25.5);
        assert_eq!((u.min, u.max, u.changes), (7, 12, 3));
        assert!((u.mean - 8.5).abs() < 1e-12 && (u.worker_seconds - 25.5).abs() < 1e-12, "{u:?}");
    }
}
