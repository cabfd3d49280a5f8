//! The latency distribution over the chart's trailing window (30 s, 2 min, 10 min), built from
//! each tick's distributions ([`crate::metrics::Snapshot::dist`]).
//!
//! Each window keeps [`SLOTS`] slots of a thirtieth of its length; a tick merges into the slot
//! its time falls in, and slots that left the window are dropped. Memory is bounded by the
//! slots, not by the run's length or tick, and the window's edge moves in steps of one slot
//! (1 s for 30 s): it covers between 29/30 of the window and all of it, and says how much.

use std::collections::VecDeque;

use crate::metrics::Latency;
use crate::metrics::sparse::{Summariser, TickDist};

/// Slots per window.
pub const SLOTS: u64 = 30;

struct Ring {
    /// Slot length, seconds.
    slot: f64,
    /// Oldest first.
    slots: VecDeque<Slot>,
}

struct Slot {
    /// Which slot of the run (its time over the slot length).
    n: u64,
    /// When its first tick began, seconds.
    from: f64,
    dist: TickDist,
}

impl Ring {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    fn add(&mut self, t: f64, len: f64, d: &TickDist) {
        let n = (t.max(0.0) / self.slot).floor() as u64;
        match self.slots.back_mut() {
            Some(last) if last.n == n => last.dist.merge(d),
            _ => self.slots.push_back(Slot { n, from: (t - len).max(0.0), dist: d.clone() }),
        }
        while self.slots.front().is_some_and(|first| first.n + SLOTS <= n) {
            self.slots.pop_front();
        }
    }
}

/// Trailing windows of the distribution, one per chart window.
pub struct Trail {
    rings: Vec<Ring>,
    summariser: Summariser,
}

/// A window's distribution and how many seconds of the run it covers.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Recent {
    pub latency: Latency,
    pub span_s: f64,
}

impl Trail {
    #[must_use]
    pub fn new(windows: &[std::time::Duration]) -> Self {
        let rings =
            windows.iter().map(|w| Ring { slot: w.as_secs_f64() / SLOTS as f64, slots: VecDeque::new() }).collect();
        Self { rings, summariser: Summariser::default() }
    }

    /// Adds the tick that ended at `t` seconds and lasted `len`.
    pub fn add(&mut self, t: f64, len: f64, d: &TickDist) {
        for r in &mut self.rings {
            r.add(t, len, d);
        }
    }

    /// Forgets everything (the operator reset the statistics).
    pub fn clear(&mut self) {
        for r in &mut self.rings {
            r.slots.clear();
        }
    }

    /// The distribution of window `i` at time `now` (seconds), or `None` before any data.
    pub fn recent(&mut self, i: usize, now: f64) -> Option<Recent> {
        let ring = self.rings.get(i)?;
        let from = ring.slots.front()?.from;
        let latency = self.summariser.latency(ring.slots.iter().map(|s| &s.dist));
        Some(Recent { latency, span_s: (now - from).max(0.0) })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::metrics::hist;
    use crate::metrics::sparse::Sparse;

    /// A tick in which every job took `ms` milliseconds end to end.
    fn tick(ms: u64, jobs: u64) -> TickDist {
        let mut h = hist::new();
        h.record_n(ms * 1000, jobs).unwrap();
        let s = Sparse::of(&h, u128::from(ms * jobs) * 1_000_000);
        TickDist { response: s.clone(), wait: Sparse::default(), service: s }
    }

    #[test]
    fn a_window_holds_what_fell_inside_it_and_nothing_older() {
        let mut t = Trail::new(&[Duration::from_secs(30), Duration::from_secs(120)]);
        assert!(t.recent(0, 0.0).is_none());
        // 40 s of 10 ms jobs, then 20 s of 1 ms jobs, one tick per second.
        for s in 1..=60u32 {
            t.add(f64::from(s), 1.0, &tick(if s <= 40 { 10 } else { 1 }, 100));
        }
        let short = t.recent(0, 60.0).unwrap();
        // Slots of 1 s: the window is the 30 slots up to now, ticks 31..=60.
        assert_eq!(short.latency.response.count, 3000);
        assert!((short.span_s - 30.0).abs() < 1e-9, "{}", short.span_s);
        // 10 of the 30 ticks were 10 ms jobs.
        assert!((short.latency.response.mean - (10.0 * 10.0 + 20.0 * 1.0) / 30.0).abs() < 1e-9);
        assert!((short.latency.response.max - 10.0).abs() < 0.01);
        // The 2-minute window still has everything since the start.
        let long = t.recent(1, 60.0).unwrap();
        assert_eq!(long.latency.response.count, 6000);
        assert!((long.span_s - 60.0).abs() < 1e-9);
        // Another 30 s of 1 ms jobs and the 10 ms ones are out of the short window.
        for s in 61..=90u32 {
            t.add(f64::from(s), 1.0, &tick(1, 100));
        }
        let short = t.recent(0, 90.0).unwrap();
        assert!((short.latency.response.max - 1.0).abs() < 0.01, "{:?}", short.latency.response);
        t.clear();
        assert!(t.recent(0, 90.0).is_none());
    }

    #[test]
    fn memory_follows_the_slots_not_the_ticks() {
        let mut t = Trail::new(&[Duration::from_secs(30)]);
        // 10 ms ticks for ten minutes.
        for i in 1..=60_000u32 {
            t.add(f64::from(i) / 100.0, 0.01, &tick(u64::from(i % 7 + 1), 3));
        }
        assert!(t.rings[0].slots.len() <= SLOTS as usize);
        // 7 distinct values: no slot holds more buckets than that.
        assert!(t.rings[0].slots.iter().all(|s| s.dist.response.buckets.len() <= 7));
    }
}
