//! A partitioned log (Kafka's topic) as queues: which partition each key's jobs go to, each
//! partition's share of the arrivals when some keys are hotter than others, and what processing
//! each partition in order costs against workers that are shared.
//!
//! **Where a key goes.** Kafka's default partitioner: murmur2 of the key's bytes with Kafka's
//! seed, its sign bit cleared, modulo the partition count. pooltune's keys are the numbers
//! 0..K, sent as Kafka's `IntegerSerializer` sends an int (4 bytes, big-endian), so a Java
//! producer with the same keys picks the same partitions.
//!
//! **How hot a key is.** Key k (k = 0..K) is drawn with probability ∝ (k + 1)^(−s), Zipf's law
//! with exponent s (the skew; 0 is uniform). A partition's share is the sum over the keys it
//! gets.
//!
//! **Ordered.** A partition consumed in order is served one job at a time, in offset order: it is
//! its own single-server queue. Keys drawn independently split Poisson arrivals into Poisson
//! streams (thinning), λₚ = λ·shareₚ, so each partition is an M/G/1 queue (exact means,
//! Pollaczek–Khinchine); for other arrivals the split stream's CV² is share·Cₐ² + 1 − share
//! (Whitt's splitting approximation). A job's response time is the mixture
//! P(T > t) = Σ shareₚ·P(Tₚ > t); its percentiles solve that by bisection between the
//! partitions' own. One partition with ρₚ ≥ 1 grows without end whatever the others do.
//!
//! **Unordered** (a pool of workers per consumer over all the partitions it owns, committing the
//! acknowledged prefix): one M/G/c per consumer with the arrivals of its partitions, Kafka's
//! range assignment deciding which (consumer i of C gets ⌊P/C⌋ partitions, the first P mod C
//! one more). With one consumer that is the **shared pool**: every worker serves any job.
//!
//! The **pooling loss** is the ordered p99 over the shared pool's, with the same workers: c
//! queues of one server each against one queue of c servers. Ordered processing needs a worker
//! per partition it serves at once; with fewer workers than partitions on a consumer, the
//! per-partition figures are optimistic (the prediction says so).

use std::ops::Range;

use serde::Serialize;

use super::{Inputs, ModelError, Percentiles, predict_with_tail, tail::Tail};

/// The partition Kafka's default partitioner gives key `key` of a topic with `partitions`.
///
/// # Panics
/// With no partitions (a topic has at least one).
#[must_use]
pub fn partition_of(key: u32, partitions: u32) -> u32 {
    assert!(partitions > 0, "a topic has at least one partition");
    let hash = murmur2::murmur2(&key.to_be_bytes(), murmur2::KAFKA_SEED);
    (hash & 0x7fff_ffff) % partitions
}

/// The share of jobs each of `keys` keys draws at Zipf exponent `skew` (0: all alike).
#[must_use]
pub fn key_shares(keys: u32, skew: f64) -> Vec<f64> {
    let weights: Vec<f64> = (1..=keys).map(|k| f64::from(k).powf(-skew)).collect();
    let total: f64 = weights.iter().sum();
    weights.into_iter().map(|w| w / total).collect()
}

/// The share of jobs each partition gets: the shares of the keys the partitioner sends there.
#[must_use]
pub fn partition_shares(keys: u32, skew: f64, partitions: u32) -> Vec<f64> {
    let mut shares = vec![0.0; partitions as usize];
    for (key, share) in (0..keys).zip(key_shares(keys, skew)) {
        shares[partition_of(key, partitions) as usize] += share;
    }
    shares
}

/// Kafka's range assignment of one topic: consumer i gets the partitions in `ranges[i]`.
#[must_use]
pub fn range_assignment(partitions: u32, consumers: u32) -> Vec<Range<u32>> {
    let consumers = consumers.max(1);
    let (each, extra) = (partitions / consumers, partitions % consumers);
    let mut start = 0;
    (0..consumers)
        .map(|i| {
            let end = start + each + u32::from(i < extra);
            let r = start..end;
            start = end;
            r
        })
        .collect()
}

/// How the topic is laid out and consumed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Layout {
    pub partitions: u32,
    /// Consumers in the group; each has the [`Inputs`]' workers.
    pub consumers: u32,
    /// Distinct keys, drawn by Zipf's law at `key_skew`.
    pub keys: u32,
    pub key_skew: f64,
}

impl Layout {
    fn check(&self) -> Result<(), ModelError> {
        let bad = |m: String| Err(ModelError::Invalid(m));
        if self.partitions == 0 {
            return bad("partitions 0: a topic has at least one partition".into());
        }
        if self.consumers == 0 {
            return bad("consumers 0: a group with no consumers serves nothing; expected at least 1".into());
        }
        if self.keys == 0 {
            return bad("keys 0: expected at least one key".into());
        }
        if !self.key_skew.is_finite() || self.key_skew < 0.0 {
            return bad(format!("key skew {} is not accepted; expected a Zipf exponent of 0 or more", self.key_skew));
        }
        Ok(())
    }
}

/// One way of consuming the topic: the response time of a job, over all of them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mixed {
    pub stable: bool,
    /// When unstable: how fast the backlog grows, jobs per second, summed over the queues that
    /// grow.
    pub growth_per_s: Option<f64>,
    pub latency_ms_mean: Option<f64>,
    pub latency_ms_p99: Option<f64>,
    /// The busiest queue (a partition when ordered, a consumer otherwise) and its utilisation.
    pub busiest: u32,
    pub busiest_rho: f64,
}

/// The model of a partitioned topic: ordered and unordered beside the shared pool.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Partitioned {
    /// Each partition's share of the jobs.
    pub shares: Vec<f64>,
    pub ordered: Mixed,
    pub unordered: Mixed,
    /// Every worker of every consumer serving any job: one M/G/c.
    pub pooled: Mixed,
    /// Ordered p99 over the shared pool's, when both are stable.
    pub pooling_loss: Option<f64>,
    pub note: Option<String>,
}

/// Predicts a topic of `layout` under the arrivals and service of `i`, whose `workers` are each
/// consumer's. The queue bound does not apply (a topic is not bounded by count).
///
/// # Errors
/// Inputs the model cannot take, as [`super::predict`], and a layout with no partitions,
/// consumers or keys, or a negative skew.
pub fn predict_partitioned(i: &Inputs, layout: &Layout) -> Result<Partitioned, ModelError> {
    layout.check()?;
    let unbounded = Inputs { queue: None, ..*i };
    let shares = partition_shares(layout.keys, layout.key_skew, layout.partitions);
    let queue = |share: f64, workers: u32| Inputs {
        rate: i.rate * share,
        workers,
        arrival_cv: (share * i.arrival_cv * i.arrival_cv + 1.0 - share).sqrt(),
        ..unbounded
    };
    let ordered: Vec<_> = shares.iter().map(|&s| (s, queue(s, 1))).collect();
    let assignment = range_assignment(layout.partitions, layout.consumers);
    let unordered: Vec<_> = assignment
        .iter()
        .map(|r| {
            let s: f64 = shares[r.start as usize..r.end as usize].iter().sum();
            (s, queue(s, i.workers))
        })
        .collect();
    let all = layout.consumers.checked_mul(i.workers).ok_or_else(|| ModelError::Invalid("too many workers".into()))?;
    let pooled = [(1.0, Inputs { workers: all, ..unbounded })];
    let (ordered, unordered, pooled) = (mix(&ordered)?, mix(&unordered)?, mix(&pooled)?);
    let pooling_loss = ordered.latency_ms_p99.zip(pooled.latency_ms_p99).map(|(o, p)| o / p);
    let most = assignment.iter().map(ExactSizeIterator::len).max();
    let note = most.filter(|&p| p > i.workers as usize).map(|p| {
        format!(
            "a consumer owns {p} partitions and has {} workers: ordered, at most {} of them are served at once, so its figures are optimistic",
            i.workers, i.workers
        )
    });
    Ok(Partitioned { shares, ordered, unordered, pooled, pooling_loss, note })
}

/// The mixture of `queues`, each (its share of the jobs, its inputs).
fn mix(queues: &[(f64, Inputs)]) -> Result<Mixed, ModelError> {
    let mut parts: Vec<(f64, Tail, f64)> = Vec::new();
    let (mut growth, mut mean, mut busiest, mut busiest_rho) = (0.0, 0.0, 0, 0.0);
    for (n, &(share, inputs)) in (0u32..).zip(queues) {
        if inputs.rho() > busiest_rho {
            (busiest, busiest_rho) = (n, inputs.rho());
        }
        if share <= 0.0 {
            continue;
        }
        let (p, tail) = predict_with_tail(&inputs, Percentiles::LatencyP99)?;
        match (tail, p.latency_ms_mean) {
            (Some(t), Some(m)) if p.stable => {
                mean += share * m;
                parts.push((share, t, p.latency_ms_p99.unwrap_or(m)));
            }
            _ => growth += p.growth_per_s.unwrap_or(0.0),
        }
    }
    if growth > 0.0 {
        let unstable = Mixed {
            stable: false,
            growth_per_s: Some(growth),
            latency_ms_mean: None,
            latency_ms_p99: None,
            busiest,
            busiest_rho,
        };
        return Ok(unstable);
    }
    let p99 = mixture_quantile(&parts, 0.99);
    Ok(Mixed {
        stable: true,
        growth_per_s: None,
        latency_ms_mean: Some(mean),
        latency_ms_p99: Some(p99),
        busiest,
        busiest_rho,
    })
}

/// The time, in milliseconds, below which `q` of the mixture's jobs finish: between the least
/// and the greatest of the parts' own quantiles (each part's share is below `q` at the first
/// and above it at the last), by bisection on Σ share·P(T > t) = 1 − q.
fn mixture_quantile(parts: &[(f64, Tail, f64)], q: f64) -> f64 {
    let (mut lo, mut hi) = parts.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), p| (lo.min(p.2), hi.max(p.2)));
    if parts.len() == 1 || hi <= lo {
        return hi;
    }
    let exceeds = |ms: f64| parts.iter().map(|(share, t, _)| share * t.response_exceeds(ms / 1e3)).sum::<f64>();
    for _ in 0..60 {
        let mid = f64::midpoint(lo, hi);
        if exceeds(mid) > 1.0 - q { lo = mid } else { hi = mid }
    }
    f64::midpoint(lo, hi)
}

#[cfg(test)]
#[path = "partitions_tests.rs"]
mod tests;
