//! Replaying a trace's arrival instants (`--arrivals FILE`): which instant arrival *j* is due
//! at, and the service time the trace gives it.
//!
//! Arrival *i* of the trace is due at (tᵢ − t₀) ÷ speed after the replay starts. The speed is
//! the `rate` knob over the trace's own mean rate, so the `rate` knob keeps its meaning (the mean
//! arrival rate) and `r`/`R`/`:rate` change the speed while a trace runs. A change of speed
//! takes effect from the instant it is made: the trace time reached so far is kept and the
//! rest runs at the new speed ([`Clock`]); arrivals already due keep their times (they are owed,
//! and their lateness is latency, as for every other arrival process).
//!
//! **Looping** (`--loop`): after the last arrival the trace starts again, one mean
//! inter-arrival gap (span ÷ (n − 1)) after it, so the looped trace keeps the trace's mean rate.
//! Without it the producer stops after the last arrival and the run ends once that arrival has
//! been served (unless `--duration` says otherwise).
//!
//! **Service times**: with a service column each job's demand is the trace's value scaled by
//! the `service` knob over the trace's mean service, so `s`/`S` scale every job alike and keep
//! the trace's shape; without one the run's service distribution draws it as usual.

use std::sync::Arc;
use std::time::Duration;

use crate::settings::Rate;
use crate::trace::Trace;

/// A trace to replay, fixed for a run.
#[derive(Debug, Clone)]
pub struct Arrivals {
    pub trace: Arc<Trace>,
    /// Start again after the last arrival.
    pub looped: bool,
    /// The mean of the trace's service column, seconds: summed once here, not for every job.
    service_mean: Option<f64>,
}

impl Arrivals {
    /// A replay of `trace`: it needs two arrivals at least, a span above zero, and a service
    /// column (if any) as long as the arrivals.
    ///
    /// # Errors
    /// A trace that cannot be replayed, in words.
    pub fn new(trace: Arc<Trace>, looped: bool) -> Result<Arrivals, String> {
        if trace.len() < 2 || trace.span().is_zero() {
            return Err(format!(
                "a trace needs at least 2 arrivals at different instants to have a rate; this one has {} over {}",
                trace.len(),
                crate::duration::format(trace.span())
            ));
        }
        if trace.service.as_ref().is_some_and(|s| s.len() != trace.len()) {
            return Err("the trace's service times do not match its arrivals one for one".into());
        }
        let service_mean =
            trace.service.as_ref().map(|s| s.iter().map(|&v| v as f64).sum::<f64>() / s.len().max(1) as f64 / 1e9);
        Ok(Arrivals { trace, looped, service_mean })
    }

    /// Arrivals in one pass.
    #[must_use]
    pub fn len(&self) -> u64 {
        self.trace.len() as u64
    }

    /// Always false: a replay has two arrivals at least.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.trace.is_empty()
    }

    /// The trace's own mean rate, arrivals a second at speed 1: (n − 1) ÷ span.
    #[must_use]
    pub fn mean_rate(&self) -> f64 {
        (self.trace.len() - 1) as f64 / self.trace.span().as_secs_f64()
    }

    /// The speed that replays the trace at `rate` arrivals a second on average.
    #[must_use]
    pub fn speed_for(&self, rate: f64) -> f64 {
        rate / self.mean_rate()
    }

    /// The speed a `rate` knob asks for: `None` for `max`, which has no speed.
    #[must_use]
    pub fn speed_of(&self, rate: Rate) -> Option<f64> {
        match rate {
            Rate::PerSec(r) => Some(self.speed_for(r)),
            Rate::Max => None,
        }
    }

    /// The gap a looped trace leaves between its last arrival and its first: the mean
    /// inter-arrival time, in seconds of trace time.
    #[must_use]
    pub fn loop_gap(&self) -> f64 {
        1.0 / self.mean_rate()
    }

    /// Trace time (seconds from the first arrival of the first pass) of arrival `j`, counting
    /// across passes; `None` past the end of a trace that does not loop.
    #[must_use]
    pub fn at(&self, j: u64) -> Option<f64> {
        let (pass, i) = (j / self.len(), (j % self.len()) as usize);
        if pass > 0 && !self.looped {
            return None;
        }
        let period = self.trace.span().as_secs_f64() + self.loop_gap();
        Some(pass as f64 * period + self.trace.offsets[i] as f64 / 1e9)
    }

    /// The trace's own service time for arrival `j`, scaled so their mean is `mean`.
    #[must_use]
    pub fn service(&self, j: u64, mean: Duration) -> Option<Duration> {
        let s = self.trace.service.as_ref()?;
        let own = self.service_mean()?;
        let raw = s[(j % self.len()) as usize] as f64 / 1e9;
        Some(Duration::from_secs_f64(if own > 0.0 { raw * mean.as_secs_f64() / own } else { 0.0 }))
    }

    /// Arrivals `from..to` (counted across passes): their instants in nanoseconds of trace time
    /// from the first of them, and, when the trace has a service column, their service times (ns)
    /// scaled as the replay scales them to `mean`. `None` for fewer than 2, or past the end of a
    /// trace that does not loop.
    #[must_use]
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    pub fn excerpt(&self, from: u64, to: u64, mean: Duration) -> Option<(Vec<u64>, Option<Vec<u64>>)> {
        if to < from.saturating_add(2) {
            return None;
        }
        let first = self.at(from)?;
        let at = (from..to).map(|j| self.at(j).map(|t| ((t - first) * 1e9).round() as u64)).collect::<Option<_>>()?;
        let service = self
            .trace
            .service
            .as_ref()
            .map(|_| (from..to).map(|j| self.service(j, mean).map_or(0, |d| d.as_nanos() as u64)).collect());
        Some((at, service))
    }

    /// The mean of the trace's service column, seconds.
    #[must_use]
    pub fn service_mean(&self) -> Option<f64> {
        self.service_mean
    }
}

/// Trace time ↔ run time at one speed: trace time `trace` was reached at run time `real`
/// (seconds since the run's start).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Clock {
    pub real: f64,
    pub trace: f64,
    pub speed: f64,
}

impl Clock {
    /// The run time at which trace time `t` falls.
    #[must_use]
    pub fn real_of(&self, t: f64) -> f64 {
        self.real + (t - self.trace) / self.speed
    }

    /// The trace time reached at run time `real`.
    #[must_use]
    pub fn trace_of(&self, real: f64) -> f64 {
        self.trace + (real - self.real) * self.speed
    }

    /// The same trace at `speed` from run time `real` on: continuous at `real`.
    #[must_use]
    pub fn respeed(&self, real: f64, speed: f64) -> Clock {
        Clock { real, trace: self.trace_of(real), speed }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trace(offsets_ms: &[u64], service_ms: Option<&[u64]>) -> Arc<Trace> {
        Arc::new(Trace {
            offsets: offsets_ms.iter().map(|v| v * 1_000_000).collect(),
            service: service_ms.map(|s| s.iter().map(|v| v * 1_000_000).collect()),
            ..Trace::default()
        })
    }

    #[test]
    fn arrivals_fall_at_their_offsets_and_loop_after_one_mean_gap() {
        // 5 arrivals over 2 s: a mean rate of 4/(2 s) = 2/s, a loop gap of 0.5 s.
        let a = Arrivals::new(trace(&[0, 100, 100, 1500, 2000], None), true).unwrap();
        assert!((a.mean_rate() - 2.0).abs() < 1e-12);
        assert_eq!(a.at(1), Some(0.1));
        assert_eq!(a.at(2), Some(0.1), "equal instants arrive together");
        // The second pass starts 2 s + 0.5 s after the first.
        assert_eq!(a.at(5), Some(2.5));
        assert_eq!(a.at(8), Some(4.0));
        let once = Arrivals::new(a.trace.clone(), false).unwrap();
        assert_eq!(once.at(4), Some(2.0));
        assert_eq!(once.at(5), None, "without --loop the trace ends");
    }

    #[test]
    fn a_change_of_speed_keeps_the_trace_time_reached() {
        let c = Clock { real: 0.0, trace: 0.0, speed: 2.0 };
        assert!((c.real_of(4.0) - 2.0).abs() < 1e-12, "speed 2: trace second 4 at run second 2");
        // At run second 1 (trace second 2) the speed halves to 1: trace second 4 is 2 s later.
        let d = c.respeed(1.0, 1.0);
        assert!((d.trace - 2.0).abs() < 1e-12);
        assert!((d.real_of(4.0) - 3.0).abs() < 1e-12);
    }

    #[test]
    fn service_times_keep_their_shape_at_the_mean_asked() {
        let a = Arrivals::new(trace(&[0, 10, 20], Some(&[10, 20, 30])), false).unwrap();
        assert!((a.service_mean().unwrap() - 0.020).abs() < 1e-12);
        // Asked for a 40 ms mean: every job twice as long as in the trace.
        assert_eq!(a.service(2, Duration::from_millis(40)), Some(Duration::from_millis(60)));
    }

    #[test]
    fn a_trace_without_a_rate_is_refused() {
        assert!(Arrivals::new(trace(&[0], None), false).unwrap_err().contains("at least 2 arrivals"));
        assert!(Arrivals::new(trace(&[0, 0], None), false).is_err());
    }
}
