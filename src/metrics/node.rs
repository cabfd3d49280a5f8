//! A worker node's report: what its workers recorded over one tick, as it travels to the
//! controller (feature `broker`).
//!
//! The controller merges each report's [`ShardStats`] into its own as if a local shard had
//! recorded them, so every snapshot, summary and output covers the whole pool. A report is a
//! JSON header (the counters, the node's state and the ids of the jobs it finished) followed by
//! the tick's six histograms in `HdrHistogram`'s V2 serialization, each prefixed by its length,
//! and a seventh: the node's time in the broker (publish → delivered) over the whole run so far:
//!
//! ```text
//! u32 header length | header (JSON) | (u32 length | V2 histogram) × 7
//! ```
//!
//! All lengths little-endian. The header's `version` must equal [`VERSION`].

use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use serde::{Deserialize, Serialize};

use super::recorder::ShardStats;

/// The report format this build writes and reads.
pub const VERSION: u32 = 1;

/// A node's state and counts, sent with each tick's statistics.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeHeader {
    pub version: u32,
    pub node: String,
    /// The node process's start (wall clock, ns): a process of the same name started again
    /// numbers its reports anew.
    #[serde(default)]
    pub session: u64,
    /// Reports from this node so far, this one included.
    pub seq: u64,
    pub workers: usize,
    pub busy: u64,
    /// Jobs delivered to this node for the first time, and a second time or more, this tick.
    pub delivered: u64,
    pub redelivered: u64,
    /// This node's clock minus the controller's (wall clocks, ns), and the estimate's
    /// uncertainty (half the round trip).
    pub offset_ns: i64,
    pub offset_uncertainty_ns: u64,
    /// The node has finished: no more reports follow.
    pub last: bool,
    /// The ids of the jobs this node finished this tick (completed or failed), for the
    /// controller to count each job once whatever was redelivered.
    pub ids: Vec<u64>,
    pub completed: u64,
    pub failed: u64,
    pub timed_out: u64,
    pub panicked: u64,
    pub latency_ns: u64,
    pub wait_ns: u64,
    pub service_ns: u64,
    pub queued_ns: u64,
    pub lag_ns: u64,
    pub handoff_ns: u64,
    pub failed_latency_ns: u64,
    pub service_sq: f64,
    pub held_sq: f64,
    /// Σ time in the broker (ns) of the jobs delivered to this node, over the run so far.
    pub broker_time_ns: u64,
    /// Σ (start − pulled from the stream) of this tick's completed jobs (ns), on the node's clock.
    #[serde(default)]
    pub prefetched_ns: u64,
    /// The jobs in the node's inbox (pulled ahead, not started) at its tick, and ∫ of that
    /// depth over its ticks since its last report (jobs·µs).
    #[serde(default)]
    pub held_now: u64,
    #[serde(default)]
    pub held_area_us: u64,
}

/// Why a report could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("a truncated node report")]
    Truncated,
    #[error("a node report header that is not valid: {0}")]
    Header(#[from] serde_json::Error),
    #[error(
        "a node report in format {0}; this pooltune reads format {VERSION} (run the same pooltune version everywhere)"
    )]
    Version(u32),
    #[error("a histogram in a node report that is not valid: {0}")]
    Histogram(String),
}

fn clamp(n: u128) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

fn hists(s: &ShardStats) -> [&Histogram<u64>; 6] {
    [&s.latency, &s.wait, &s.service, &s.failed_latency, &s.lag, &s.handoff]
}

/// Writes a report of `stats` and the node's time-in-broker histogram `broker` under `header`
/// (whose counters are filled in from `stats`).
#[must_use]
pub fn encode(mut header: NodeHeader, stats: &ShardStats, broker: &Histogram<u64>) -> Vec<u8> {
    header.version = VERSION;
    header.completed = stats.completed;
    header.failed = stats.failed;
    header.timed_out = stats.timed_out;
    header.panicked = stats.panicked;
    header.latency_ns = clamp(stats.latency_ns);
    header.wait_ns = clamp(stats.wait_ns);
    header.service_ns = clamp(stats.service_ns);
    header.queued_ns = clamp(stats.queued_ns);
    header.prefetched_ns = clamp(stats.prefetched_ns);
    header.lag_ns = clamp(stats.lag_ns);
    header.handoff_ns = clamp(stats.handoff_ns);
    header.failed_latency_ns = clamp(stats.failed_latency_ns);
    header.service_sq = stats.service_sq;
    header.held_sq = stats.held_sq;
    let json = serde_json::to_vec(&header).expect("a header always serializes");
    let mut out = Vec::with_capacity(json.len() + 6 * 64);
    out.extend_from_slice(&u32::try_from(json.len()).unwrap_or(u32::MAX).to_le_bytes());
    out.extend_from_slice(&json);
    let mut ser = V2Serializer::new();
    for h in hists(stats).into_iter().chain([broker]) {
        let mut buf = Vec::new();
        ser.serialize(h, &mut buf).expect("writing to a Vec cannot fail");
        out.extend_from_slice(&u32::try_from(buf.len()).unwrap_or(u32::MAX).to_le_bytes());
        out.extend_from_slice(&buf);
    }
    out
}

fn take<'a>(b: &mut &'a [u8]) -> Result<&'a [u8], ReportError> {
    if b.len() < 4 {
        return Err(ReportError::Truncated);
    }
    let n = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize;
    if b.len() < 4 + n {
        return Err(ReportError::Truncated);
    }
    let (part, rest) = b[4..].split_at(n);
    *b = rest;
    Ok(part)
}

/// Reads a report.
///
/// # Errors
/// A truncated or malformed report, or one of another format version.
pub fn decode(mut b: &[u8]) -> Result<(NodeHeader, ShardStats, Histogram<u64>), ReportError> {
    let header: NodeHeader = serde_json::from_slice(take(&mut b)?)?;
    if header.version != VERSION {
        return Err(ReportError::Version(header.version));
    }
    let mut de = Deserializer::new();
    let mut read = || -> Result<Histogram<u64>, ReportError> {
        let mut part = take(&mut b)?;
        de.deserialize(&mut part).map_err(|e| ReportError::Histogram(format!("{e:?}")))
    };
    let mut s = ShardStats::new();
    for h in [&mut s.latency, &mut s.wait, &mut s.service, &mut s.failed_latency, &mut s.lag, &mut s.handoff] {
        h.add(read()?).map_err(|e| ReportError::Histogram(format!("{e:?}")))?;
    }
    let mut broker = super::hist::new();
    broker.add(read()?).map_err(|e| ReportError::Histogram(format!("{e:?}")))?;
    s.completed = header.completed;
    s.failed = header.failed;
    s.timed_out = header.timed_out;
    s.panicked = header.panicked;
    s.latency_ns = u128::from(header.latency_ns);
    s.wait_ns = u128::from(header.wait_ns);
    s.service_ns = u128::from(header.service_ns);
    s.queued_ns = u128::from(header.queued_ns);
    s.prefetched_ns = u128::from(header.prefetched_ns);
    s.lag_ns = u128::from(header.lag_ns);
    s.handoff_ns = u128::from(header.handoff_ns);
    s.failed_latency_ns = u128::from(header.failed_latency_ns);
    s.service_sq = header.service_sq;
    s.held_sq = header.held_sq;
    Ok((header, s, broker))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::hist;
    use std::time::Duration;

    #[test]
    fn a_report_carries_every_histogram_and_count_in_its_place() {
        let mut s = ShardStats::new();
        for (i, h) in [&mut s.latency, &mut s.wait, &mut s.service, &mut s.failed_latency, &mut s.lag, &mut s.handoff]
            .into_iter()
            .enumerate()
        {
            hist::record(h, Duration::from_micros(100 * (i as u64 + 1)));
        }
        s.completed = 7;
        s.failed = 2;
        s.latency_ns = 123;
        s.handoff_ns = 456;
        s.held_sq = 0.25;
        s.prefetched_ns = 789;
        let h = NodeHeader { node: "n1".into(), seq: 3, ids: vec![5, 9], ..NodeHeader::default() };
        let mut broker = hist::new();
        hist::record(&mut broker, Duration::from_micros(900));
        let bytes = encode(h, &s, &broker);
        let (h2, s2, b2) = decode(&bytes).unwrap();
        assert_eq!(b2, broker, "the seventh histogram is the time in broker");
        assert_eq!((h2.node.as_str(), h2.seq, h2.ids.as_slice(), h2.version), ("n1", 3, &[5u64, 9][..], VERSION));
        for (i, (a, b)) in hists(&s).into_iter().zip(hists(&s2)).enumerate() {
            assert_eq!(a, b, "histogram {i}");
            assert_eq!(b.max(), hist::new().highest_equivalent(100 * (i as u64 + 1)), "histogram {i} in its place");
        }
        assert_eq!((s2.completed, s2.failed, s2.latency_ns, s2.handoff_ns, s2.held_sq), (7, 2, 123, 456, 0.25));
        assert_eq!(s2.prefetched_ns, 789, "the time held at the node travels too");
        assert!(matches!(decode(&bytes[..bytes.len() - 1]), Err(ReportError::Truncated)));
        let mut other = bytes.clone();
        let at = bytes.windows(11).position(|w| w == b"\"version\":1").unwrap();
        other[at + 10] = b'2';
        assert!(matches!(decode(&other), Err(ReportError::Version(2))));
    }
}
