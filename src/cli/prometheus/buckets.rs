//! The exported histograms' buckets: where their bounds lie, chosen once for the process, and how
//! pooltune's own HDR histograms fill them (nothing is observed twice).
//!
//! # The bounds
//! Quarter-octaves (each bound 2^¼ ≈ 1.19 times the one before, so a bucket is 19% wide and
//! `histogram_quantile` is never further than that from the truth) from an eighth of the mean
//! service time to 128 times it: where a pool's percentiles lie, from an idle pool (responses
//! are services: an exponential service's p1 is a hundredth of its mean, its p99.9 seven
//! times it) to a deep queue (response p99 at 90% load on one worker: 46 times). Then octaves
//! to 8192 times it, for a queue that is overflowing, and `+Inf`. 47 bounds; each rounded to three
//! significant figures so the `le` labels read as written (`0.00119`, not `0.0011892…`), and none
//! below 1 µs (the histograms' resolution) or above an hour (their ceiling).
//!
//! The scale is the service time set when the process starts (`--service`, 5 ms by default);
//! a run whose service time is not known beforehand (your own job, `--target`) takes 10 ms.
//! The bounds cannot move during a run (a series' `le` values must stay put for `rate` and
//! `histogram_quantile`), so a run that changes the service time keeps the first one's.
//!
//! # Filling them
//! An HDR bucket (3 significant digits: 0.1% wide) is counted whole in the exported bucket its
//! highest value falls in, so a record within 0.1% under a bound may be counted just above it:
//! far inside the exported bucket's 19%.

use std::time::Duration;

use crate::metrics::sparse::Sparse;

/// The scale when the service time is not pooltune's to know (your own job, an HTTP target).
pub const UNKNOWN_SCALE: Duration = Duration::from_millis(10);

/// Bounds per octave in the fine band.
const PER_OCTAVE: i32 = 4;
/// The fine band, in octaves below and above the scale: 1/8 to 128 times it.
const FINE: (i32, i32) = (-3, 7);
/// The coarse band's last octave above the scale: 8192 times it.
const COARSE_TOP: i32 = 13;
/// The histograms' floor and ceiling, seconds.
const FLOOR_S: f64 = 1e-6;
const CEILING_S: f64 = crate::metrics::hist::MAX_US as f64 / 1e6;

/// The finite upper bounds of a run's buckets, seconds, ascending (`+Inf` follows them).
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    bounds: Vec<f64>,
}

impl Layout {
    /// The bounds around a mean service time of `scale`.
    #[must_use]
    pub fn around(scale: Duration) -> Layout {
        let s = scale.as_secs_f64().max(FLOOR_S);
        let fine = (FINE.0 * PER_OCTAVE..=FINE.1 * PER_OCTAVE).map(|q| f64::from(q) / f64::from(PER_OCTAVE));
        let coarse = (FINE.1 + 1..=COARSE_TOP).map(f64::from);
        let mut bounds: Vec<f64> = fine
            .chain(coarse)
            .map(|octaves| three_figures(s * octaves.exp2()))
            .filter(|b| (FLOOR_S..=CEILING_S).contains(b))
            .collect();
        bounds.dedup();
        Layout { bounds }
    }

    #[cfg(test)]
    pub fn bounds(&self) -> &[f64] {
        &self.bounds
    }

    /// The records of `d` by bucket (each bucket's own count, not cumulative), `+Inf` last, as
    /// prometheus-client's histogram encoding takes them.
    #[must_use]
    pub fn fill(&self, d: &Sparse) -> Vec<(f64, u64)> {
        let mut counts = vec![0; self.bounds.len() + 1];
        for &(us, n) in &d.buckets {
            let s = us as f64 / 1e6;
            counts[self.bounds.partition_point(|b| *b < s)] += n;
        }
        self.bounds.iter().copied().chain([f64::INFINITY]).zip(counts).collect()
    }
}

/// `x` rounded to three significant figures, as the nearest double to that decimal.
fn three_figures(x: f64) -> f64 {
    format!("{x:.2e}").parse().unwrap_or(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quarter_octaves_around_the_service_time_then_octaves() {
        let l = Layout::around(Duration::from_millis(5));
        let b = l.bounds();
        assert_eq!(b.len(), 47);
        assert_eq!((b[0], b[12], b[40], b[46]), (0.000_625, 0.005, 0.64, 41.0));
        for w in b[..41].windows(2) {
            let r = w[1] / w[0];
            assert!((r - 2f64.powf(0.25)).abs() < 0.01, "{w:?}: a quarter-octave ({r})");
        }
        for w in b[40..].windows(2) {
            assert!((w[1] / w[0] - 2.0).abs() < 0.01, "{w:?}: an octave");
        }
        assert!(b.iter().all(|x| x.to_bits() == three_figures(*x).to_bits()), "labels of three figures at most");
    }

    #[test]
    fn bounds_stay_inside_the_histograms_range() {
        let tiny = Layout::around(Duration::from_nanos(100));
        assert!(tiny.bounds()[0] >= FLOOR_S && tiny.bounds().windows(2).all(|w| w[0] < w[1]));
        let huge = Layout::around(Duration::from_secs(60));
        assert!(*huge.bounds().last().unwrap() <= CEILING_S);
    }

    #[test]
    fn records_land_in_the_bucket_their_value_falls_in() {
        let l = Layout::around(Duration::from_millis(8));
        // 1 ms is the first bound itself; 1.1 ms is above it; 2 h is past every bound.
        let d = Sparse { buckets: vec![(1000, 3), (1100, 2), (7_200_000_000, 1)], sum_ns: 0 };
        let f = l.fill(&d);
        assert_eq!(f.len(), l.bounds().len() + 1);
        assert_eq!((f[0], f[1]), ((0.001, 3), (0.00119, 2)));
        assert_eq!(f.last(), Some(&(f64::INFINITY, 1)));
        assert_eq!(f.iter().map(|b| b.1).sum::<u64>(), d.count());
    }
}
