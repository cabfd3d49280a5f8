//! A tick's distributions in a compact, mergeable form, for clients that keep trailing windows
//! (the dashboard's distribution panel).
//!
//! A dense histogram of 1 µs to 1 h at 3 significant digits is about 190 KB; a tick's jobs fill a
//! few hundred of its buckets. [`Sparse`] keeps only those, as (bucket value, count) pairs sorted
//! by value, so a window of many ticks costs what its data needs, and merging two is one pass.

use std::cmp::Ordering;

use hdrhistogram::Histogram;

use super::hist;
use super::{Latency, Summary};

/// The recorded buckets of one histogram, sorted by value, with the exact sum of the values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sparse {
    /// (a value in the bucket, in µs; how many records the bucket holds), ascending, no repeats.
    pub buckets: Vec<(u64, u64)>,
    pub sum_ns: u128,
}

impl Sparse {
    /// The buckets of `h` that hold records.
    #[must_use]
    pub fn of(h: &Histogram<u64>, sum_ns: u128) -> Sparse {
        let buckets = h.iter_recorded().map(|v| (v.value_iterated_to(), v.count_at_value())).collect();
        Sparse { buckets, sum_ns }
    }

    #[must_use]
    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.1).sum()
    }

    /// Adds `other` into `self`: a merge of two sorted runs, summing the counts of equal values.
    pub fn merge(&mut self, other: &Sparse) {
        self.sum_ns += other.sum_ns;
        if other.buckets.is_empty() {
            return;
        }
        let mine = std::mem::take(&mut self.buckets);
        let (x, y) = (&mine, &other.buckets);
        let mut out = Vec::with_capacity(x.len() + y.len());
        let (mut i, mut j) = (0, 0);
        while i < x.len() && j < y.len() {
            match x[i].0.cmp(&y[j].0) {
                Ordering::Less => {
                    out.push(x[i]);
                    i += 1;
                }
                Ordering::Greater => {
                    out.push(y[j]);
                    j += 1;
                }
                Ordering::Equal => {
                    out.push((x[i].0, x[i].1 + y[j].1));
                    i += 1;
                    j += 1;
                }
            }
        }
        out.extend_from_slice(&x[i..]);
        out.extend_from_slice(&y[j..]);
        self.buckets = out;
    }
}

/// Response, wait and service of one tick (successful jobs, as [`Latency`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TickDist {
    pub response: Sparse,
    pub wait: Sparse,
    pub service: Sparse,
}

impl TickDist {
    pub fn merge(&mut self, other: &TickDist) {
        self.response.merge(&other.response);
        self.wait.merge(&other.wait);
        self.service.merge(&other.service);
    }
}

/// Summarises merged sparse distributions; owns the one dense histogram it needs, reused.
pub struct Summariser {
    scratch: Histogram<u64>,
}

impl Default for Summariser {
    fn default() -> Self {
        Self { scratch: hist::new() }
    }
}

impl Summariser {
    /// The percentiles of everything in `parts`, taken together.
    pub fn summary<'a>(&mut self, parts: impl Iterator<Item = &'a Sparse>) -> Summary {
        self.scratch.reset();
        let mut sum_ns = 0;
        for p in parts {
            sum_ns += p.sum_ns;
            for &(value, n) in &p.buckets {
                // Values came from a histogram of the same bounds, so they are in range.
                let _ = self.scratch.record_n(value, n);
            }
        }
        Summary::of(&self.scratch, sum_ns)
    }

    /// Response, wait and service of everything in `dists`, taken together.
    pub fn latency<'a>(&mut self, dists: impl Iterator<Item = &'a TickDist> + Clone) -> Latency {
        Latency {
            response: self.summary(dists.clone().map(|d| &d.response)),
            wait: self.summary(dists.clone().map(|d| &d.wait)),
            service: self.summary(dists.map(|d| &d.service)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn hist_of(us: &[u64]) -> (Histogram<u64>, u128) {
        let mut h = hist::new();
        for &u in us {
            hist::record(&mut h, Duration::from_micros(u));
        }
        (h, us.iter().map(|&u| u128::from(u) * 1000).sum())
    }

    #[test]
    fn merging_sparse_parts_gives_the_dense_summary_of_the_whole() {
        let a: Vec<u64> = (1..=500).map(|i| i * 7).collect();
        let b: Vec<u64> = (1..=800).map(|i| i * 5 + 3).collect();
        let (ha, sa) = hist_of(&a);
        let (hb, sb) = hist_of(&b);
        let mut merged = Sparse::of(&ha, sa);
        merged.merge(&Sparse::of(&hb, sb));
        assert!(merged.buckets.windows(2).all(|w| w[0].0 < w[1].0), "sorted, no repeats");
        assert_eq!(merged.count(), 1300);

        let whole: Vec<u64> = a.iter().chain(&b).copied().collect();
        let (hw, sw) = hist_of(&whole);
        let dense = Summary::of(&hw, sw);
        let mut s = Summariser::default();
        assert_eq!(s.summary([&merged].into_iter()), dense);
        // Summarising the parts without merging them first gives the same.
        let (pa, pb) = (Sparse::of(&ha, sa), Sparse::of(&hb, sb));
        assert_eq!(s.summary([&pa, &pb].into_iter()), dense);
    }

    #[test]
    fn empty_parts_summarise_to_nothing() {
        let mut s = Summariser::default();
        assert_eq!(s.summary(std::iter::empty()), Summary::default());
        let mut e = Sparse::default();
        e.merge(&Sparse::default());
        assert_eq!(e, Sparse::default());
    }
}
