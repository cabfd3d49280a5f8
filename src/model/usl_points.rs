//! The points a USL fit ([`super::usl_fit`]) is made from, gathered from the windows of a run:
//! each window (a tick of the dashboard, a row of the CSV series, a sweep's step) says how many
//! workers were set, how long it lasted, how many jobs completed and how much service time they
//! took. Windows are summed per worker count into one [`Point`]: N = Σservice / Σduration (the
//! mean number of jobs inside, by Little's law) and S = Σservice / Σjobs.
//!
//! Only steady windows count: a paused window, one with no completions, and the first window
//! after the count changed (its jobs started under the old count, and a ramp's count moves
//! within it) are left out; a controller that moves every window keeps that first window as a
//! stand-in for a count it never stays at ([`Points::keeping_firsts`]). A sweep's step already
//! left its settling time out, so [`Points::push_steady`] takes it as it is. Pure bookkeeping: no
//! I/O.

use std::collections::BTreeMap;

use super::usl_fit::{self, NotEnough, Point, UslFit};

#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Sum {
    service_s: f64,
    duration_s: f64,
    jobs: u64,
}

/// Windows summed per worker count.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Points {
    sums: BTreeMap<u32, Sum>,
    /// The count of the last window seen, to drop the first window after a change.
    last: Option<u32>,
    /// With [`Points::keeping_firsts`]: the first windows after changes, per count, standing in
    /// for a count no steady window has measured.
    firsts: Option<BTreeMap<u32, Sum>>,
}

impl Points {
    #[must_use]
    pub fn new() -> Points {
        Points::default()
    }

    /// Points for a controller that changes the count only at window ends and may leave a count
    /// after one window: the first window after a change stands in for its count until a steady
    /// one measures it. A climb through counts it never stays at (4, 26, 40 workers in front of
    /// a downstream past its peak) still gives the fit its three counts; the stand-in is dropped
    /// once the count is measured steady, since a scale-down's first window still completes the
    /// longer jobs the larger pool started.
    #[must_use]
    pub fn keeping_firsts() -> Points {
        Points { firsts: Some(BTreeMap::new()), ..Points::default() }
    }

    /// One window of a run: `workers` set for all of it, `duration_s` long, `jobs` completed
    /// holding their workers `service_s` seconds in all. The first window at a new count is
    /// skipped (kept as a stand-in with [`Points::keeping_firsts`]), as is a paused or empty one.
    pub fn push(&mut self, workers: u32, duration_s: f64, jobs: u64, service_s: f64, paused: bool) {
        let changed = self.last != Some(workers);
        self.last = Some(workers);
        if paused {
            return;
        }
        if !changed {
            self.push_steady(workers, duration_s, jobs, service_s);
        } else if let Some(firsts) = &mut self.firsts {
            add(firsts, workers, duration_s, jobs, service_s);
        }
    }

    /// A window known to be steady (a sweep's measured step).
    pub fn push_steady(&mut self, workers: u32, duration_s: f64, jobs: u64, service_s: f64) {
        add(&mut self.sums, workers, duration_s, jobs, service_s);
    }

    /// The first windows standing in for counts no steady window has measured.
    fn stand_ins(&self) -> impl Iterator<Item = (&u32, &Sum)> {
        self.firsts.iter().flatten().filter(|(w, _)| !self.sums.contains_key(w))
    }

    /// One point per worker count measured.
    #[must_use]
    pub fn points(&self) -> Vec<Point> {
        #[allow(clippy::cast_precision_loss)]
        self.sums
            .iter()
            .chain(self.stand_ins())
            .map(|(&workers, s)| Point {
                workers,
                inside: s.service_s / s.duration_s,
                hold_s: s.service_s / s.jobs as f64,
                jobs: s.jobs,
            })
            .collect()
    }

    /// Distinct worker counts measured so far.
    #[must_use]
    pub fn counts(&self) -> usize {
        self.sums.len() + self.stand_ins().count()
    }

    /// The fit of the points so far.
    ///
    /// # Errors
    /// Too few counts: see [`NotEnough`].
    pub fn fit(&self) -> Result<UslFit, NotEnough> {
        usl_fit::fit(&self.points())
    }
}

/// Adds one window to `sums`, unless it is empty or unmeasured.
fn add(sums: &mut BTreeMap<u32, Sum>, workers: u32, duration_s: f64, jobs: u64, service_s: f64) {
    if workers == 0 || jobs == 0 || !(duration_s > 0.0 && service_s > 0.0 && service_s.is_finite()) {
        return;
    }
    let s = sums.entry(workers).or_default();
    s.service_s += service_s;
    s.duration_s += duration_s;
    s.jobs += jobs;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_window_after_a_change_and_paused_ones_are_left_out() {
        let mut p = Points::new();
        p.push(4, 1.0, 100, 3.0, false); // first at 4: left out
        p.push(4, 1.0, 100, 4.0, false);
        p.push(4, 1.0, 100, 4.0, true); // paused
        p.push(8, 1.0, 100, 7.0, false); // first at 8
        p.push(8, 1.0, 200, 8.0, false);
        p.push(4, 1.0, 100, 9.0, false); // back at 4: first again
        p.push(4, 1.0, 100, 4.0, false);
        let pts = p.points();
        assert_eq!(pts.len(), 2);
        assert_eq!((pts[0].workers, pts[0].jobs), (4, 200));
        assert!((pts[0].inside - 4.0).abs() < 1e-12 && (pts[0].hold_s - 0.04).abs() < 1e-12);
        assert_eq!((pts[1].workers, pts[1].jobs), (8, 200));
        assert!((pts[1].hold_s - 0.04).abs() < 1e-12);
        assert!(p.fit().unwrap_err().to_string().contains("measure 1 more"));
    }

    #[test]
    fn kept_first_windows_stand_in_until_a_steady_one_measures_the_count() {
        let mut p = Points::keeping_firsts();
        p.push(4, 1.0, 100, 4.0, false); // first at 4: a stand-in
        p.push(26, 1.0, 100, 26.0, false); // first at 26: a stand-in
        p.push(40, 1.0, 100, 40.0, false);
        assert_eq!(p.counts(), 3);
        p.push(10, 1.0, 100, 13.0, false); // a scale-down's first: biased by the longer jobs
        p.push(10, 1.0, 100, 10.0, false); // steady at 10 replaces it
        let pts = p.points();
        assert_eq!(pts.iter().map(|q| q.workers).collect::<Vec<_>>(), vec![10, 4, 26, 40]);
        assert!((pts[0].inside - 10.0).abs() < 1e-12, "the steady window alone: {pts:?}");
        assert_eq!(p.counts(), 4);
        // Without keeping firsts the same windows give one count.
        let mut q = Points::new();
        for (w, busy) in [(4, 4.0), (26, 26.0), (40, 40.0), (10, 13.0), (10, 10.0)] {
            q.push(w, 1.0, 100, busy, false);
        }
        assert_eq!(q.counts(), 1);
    }
}
