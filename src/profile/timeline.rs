//! Replaying a profile's phases against a running engine.
//!
//! [`Timeline::due`] is called on every snapshot with the run's elapsed time and returns the
//! knob changes due by then: a phase's knobs at once when it has no ramp; with a ramp, the knobs
//! the knob table marks as ramping move linearly from their value when the phase starts to the target, one step a tick
//! (non-numeric knobs of a ramped phase apply at its start). A phase fires on the tick nearest
//! its offset (up to half a tick early): tick instants jitter by microseconds, and a phase
//! recorded at a tick must replay at that tick, not the next one. So changes land within one
//! tick of their offset.

use std::time::Duration;

use super::Phase;
use crate::duration;
use crate::settings::{Knob, Settings};

#[derive(Debug, Clone)]
struct Ramp {
    target: Knob,
    from: f64,
    to: f64,
    start: Duration,
    len: Duration,
    last: Option<Knob>,
}

/// The replay state of a profile's phases.
#[derive(Debug, Clone)]
pub struct Timeline {
    phases: Vec<Phase>,
    next: usize,
    ramps: Vec<Ramp>,
    /// Half the tick: how early a phase may fire.
    slack: Duration,
}

/// The value `current` holds for the knob `k` names.
fn current_of(k: &Knob, current: &Settings) -> Option<f64> {
    Knob::all_of(current).into_iter().find(|c| c.name() == k.name()).as_ref().and_then(Knob::ramp_value)
}

impl Timeline {
    /// A timeline replayed on snapshots `tick` apart.
    #[must_use]
    pub fn new(phases: Vec<Phase>, tick: Duration) -> Self {
        Self { phases, next: 0, ramps: Vec::new(), slack: tick / 2 }
    }

    /// The knob changes due at `elapsed`, given the settings running now (ramps start from them).
    pub fn due(&mut self, elapsed: Duration, current: &Settings) -> Vec<Knob> {
        let mut out = Vec::new();
        while let Some(ph) = self.phases.get(self.next).filter(|ph| ph.at <= elapsed + self.slack) {
            for k in &ph.knobs {
                let ramped = ph.ramp.filter(|r| !r.is_zero()).zip(k.ramp_value()).zip(current_of(k, current));
                if let Some(((len, to), from)) = ramped {
                    // A new ramp of the same knob replaces an older one.
                    self.ramps.retain(|r| r.target.name() != k.name());
                    self.ramps.push(Ramp { target: *k, from, to, start: ph.at, len, last: None });
                } else {
                    self.ramps.retain(|r| r.target.name() != k.name());
                    out.push(*k);
                }
            }
            self.next += 1;
        }
        for r in &mut self.ramps {
            let frac = ((elapsed.saturating_sub(r.start)).as_secs_f64() / r.len.as_secs_f64()).clamp(0.0, 1.0);
            let k = if frac >= 1.0 { r.target } else { r.target.with_ramp_value(r.from + (r.to - r.from) * frac) };
            if r.last != Some(k) {
                r.last = Some(k);
                out.push(k);
            }
        }
        self.ramps.retain(|r| elapsed < r.start + r.len);
        out
    }

    /// Whether the timeline has changes still to make: a phase to come or a ramp under way.
    #[must_use]
    pub fn running(&self) -> bool {
        self.next < self.phases.len() || !self.ramps.is_empty()
    }

    /// Progress for the dashboard: "timeline 2/4, next at 30s" (phases started / phases).
    #[must_use]
    pub fn progress(&self) -> String {
        let n = self.phases.len();
        match self.phases.get(self.next) {
            _ if n == 0 => "timeline: no phases".into(),
            Some(ph) => format!("timeline {}/{n}, next at {}", self.next, duration::format(ph.at)),
            None if !self.ramps.is_empty() => format!("timeline {n}/{n}, ramping"),
            None => format!("timeline {n}/{n} done"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Rate;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn steps_land_on_the_first_tick_at_or_after_their_time() {
        let mut t = Timeline::new(
            vec![
                Phase { at: ms(1000), ramp: None, knobs: vec![Knob::Workers(8)] },
                Phase { at: ms(2000), ramp: None, knobs: vec![Knob::Rate(Rate::PerSec(900.0))] },
            ],
            ms(250),
        );
        let s = Settings::default();
        assert!(t.due(ms(750), &s).is_empty());
        // A tick a hair before the offset still takes the phase: it is the nearest tick.
        assert_eq!(t.due(ms(999), &s), [Knob::Workers(8)]);
        assert!(t.due(ms(1250), &s).is_empty());
        assert_eq!(t.due(ms(2500), &s), [Knob::Rate(Rate::PerSec(900.0))]);
        assert_eq!(t.progress(), "timeline 2/2 done");
    }

    #[test]
    fn ramps_move_linearly_from_the_running_value() {
        let mut t = Timeline::new(
            vec![Phase { at: ms(1000), ramp: Some(ms(1000)), knobs: vec![Knob::Rate(Rate::PerSec(2000.0))] }],
            ms(250),
        );
        let s = Settings { rate: Rate::PerSec(1000.0), ..Settings::default() };
        assert!(t.running(), "a phase to come");
        assert_eq!(t.due(ms(1000), &s), [Knob::Rate(Rate::PerSec(1000.0))]);
        assert!(t.running(), "every phase started, the ramp under way");
        assert_eq!(t.due(ms(1250), &s), [Knob::Rate(Rate::PerSec(1250.0))]);
        assert_eq!(t.due(ms(1500), &s), [Knob::Rate(Rate::PerSec(1500.0))]);
        assert_eq!(t.due(ms(2100), &s), [Knob::Rate(Rate::PerSec(2000.0))]);
        assert_eq!(t.progress(), "timeline 1/1 done");
        assert!(!t.running());
        assert!(t.due(ms(3000), &s).is_empty());
    }
}
