//! The controller's side of a broker run's worker nodes: their reports, their clocks, and
//! every job counted once.
//!
//! - A task takes the nodes' reports off `pooltune.NAME.report`, answers each (a node sends a
//!   report until it is answered; a copy already taken is left out) and queues them; each tick the
//!   control thread [`Cluster::absorb`]s them: the records go into the engine's recorders as if
//!   a local shard had made them, and the node table is updated. A node silent for 3 ticks is
//!   marked lost.
//! - A task answers clock requests on `pooltune.NAME.clock` with the run's time and the wall
//!   clock, for the nodes' NTP-style offset estimates.
//! - Every finished job's id, local or remote, is marked in a bit set: a job finished twice
//!   (redelivered after a node was lost or `ack_wait` passed, and both copies ran) is counted
//!   once, and the second is reported as a duplicate.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use hdrhistogram::Histogram;
use tokio_util::sync::CancellationToken;

use super::adapter::{Shared, Topic};
use super::protocol::{self, ClockReply};
use super::wire::offset;
use crate::metrics::node::{self as report, NodeHeader};
use crate::metrics::recorder::{Recorders, ShardStats};
use crate::metrics::{NodeView, Summary};

/// Ticks of silence after which a node is marked lost.
const LOST_AFTER_TICKS: u32 = 3;

struct Node {
    last: NodeHeader,
    /// The node's time in the broker over the run so far (each report replaces it).
    broker_time: Histogram<u64>,
    total: ShardStats,
    completed: u64,
    failed: u64,
    redelivered: u64,
    heard: Instant,
}

/// The jobs the nodes hold pulled ahead, as the control thread takes them each tick.
#[derive(Default)]
struct Held {
    /// The last tick taken, and ∫ depth dt (jobs·µs) reported since.
    since: Option<Instant>,
    area_us: u64,
}

/// What the control thread takes each tick.
pub(crate) struct Absorbed {
    pub nodes: Vec<NodeView>,
    /// Workers on nodes not lost nor finished.
    pub workers: usize,
    /// Jobs finished twice since the last tick.
    pub duplicates: u64,
    /// Jobs pulled ahead into the inboxes of nodes neither lost nor finished, as each last
    /// reported, and their time-weighted mean since the last tick (the reports' integrals over
    /// the time since).
    pub held_now: usize,
    pub held_mean: f64,
}

#[derive(Default)]
pub(crate) struct Cluster {
    inbox: Mutex<Vec<(NodeHeader, ShardStats, Histogram<u64>)>>,
    nodes: Mutex<BTreeMap<String, Node>>,
    finished: Mutex<Vec<u64>>,
    duplicates: AtomicU64,
    taken_duplicates: AtomicU64,
    pub redelivered: AtomicU64,
    /// First deliveries on the nodes, for the drop count at the end.
    pub delivered: AtomicU64,
    /// Workers for every node, once set during the run.
    all_workers: Mutex<Option<usize>>,
    /// Workers set for one node since (`:workers NODE N`).
    node_workers: Mutex<BTreeMap<String, usize>>,
    /// When each node was last heard from, and whether that was its last report.
    heard: Mutex<BTreeMap<String, (Instant, bool)>>,
    /// The latest report taken from each node process (name, session).
    seen: Mutex<BTreeMap<(String, u64), u64>>,
    held: Mutex<Held>,
}

impl Cluster {
    /// Marks job `id` finished; `true` when it already was (a duplicate, counted).
    pub fn finished(&self, id: u64) -> bool {
        let mut bits = self.finished.lock().unwrap_or_else(PoisonError::into_inner);
        let (word, mask) = slot(id);
        if word >= bits.len() {
            bits.resize((word + 1).next_power_of_two(), 0);
        }
        let seen = bits[word] & mask != 0;
        bits[word] |= mask;
        if seen {
            self.duplicates.fetch_add(1, Ordering::Relaxed);
        }
        seen
    }

    /// The operator set the workers during the run: every node takes the count too.
    pub fn set_all_workers(&self, n: usize) {
        *self.all_workers.lock().unwrap_or_else(PoisonError::into_inner) = Some(n);
        // Every node means every node: a count set for one before gives way.
        self.node_workers.lock().unwrap_or_else(PoisonError::into_inner).clear();
    }

    /// The operator set one node's workers.
    pub fn set_node_workers(&self, node: &str, n: usize) {
        self.node_workers.lock().unwrap_or_else(PoisonError::into_inner).insert(node.to_string(), n);
    }

    /// The counts set for single nodes, for the control word.
    pub fn node_workers(&self) -> Vec<(String, usize)> {
        self.node_workers.lock().unwrap_or_else(PoisonError::into_inner).iter().map(|(k, v)| (k.clone(), *v)).collect()
    }

    pub fn all_workers(&self) -> Option<usize> {
        *self.all_workers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether job `id` has finished, here or on a node.
    pub fn is_finished(&self, id: u64) -> bool {
        let bits = self.finished.lock().unwrap_or_else(PoisonError::into_inner);
        let (word, mask) = slot(id);
        bits.get(word).is_some_and(|w| w & mask != 0)
    }

    pub fn duplicates(&self) -> u64 {
        self.duplicates.load(Ordering::Relaxed)
    }

    /// Takes a report in (the listener's side): the counts the end of the run needs move at
    /// once; the rest waits for the next tick. A copy of a report already taken (its reply was
    /// lost and the node sent it again) is left out.
    fn queue(&self, header: NodeHeader, stats: ShardStats, broker: Histogram<u64>, now: Instant) {
        {
            let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
            let last = seen.entry((header.node.clone(), header.session)).or_insert(0);
            if header.seq <= *last {
                return;
            }
            *last = header.seq;
        }
        // Marked on arrival, not at the next tick: the end of the run reads the stream as soon
        // as every node's last report is in, and a job in that report is finished, not left.
        for &id in &header.ids {
            self.finished(id);
        }
        self.delivered.fetch_add(header.delivered, Ordering::Relaxed);
        self.redelivered.fetch_add(header.redelivered, Ordering::Relaxed);
        self.heard.lock().unwrap_or_else(PoisonError::into_inner).insert(header.node.clone(), (now, header.last));
        self.inbox.lock().unwrap_or_else(PoisonError::into_inner).push((header, stats, broker));
    }

    /// Merges the reports that came since the last tick into `recorders` and the node table.
    pub fn absorb(&self, recorders: &Recorders, now: Instant, interval: Duration) -> Absorbed {
        let reports = std::mem::take(&mut *self.inbox.lock().unwrap_or_else(PoisonError::into_inner));
        let mut nodes = self.nodes.lock().unwrap_or_else(PoisonError::into_inner);
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        for (h, stats, broker) in reports {
            recorders.merge_remote(&stats);
            held.area_us = held.area_us.saturating_add(h.held_area_us);
            let n = nodes.entry(h.node.clone()).or_insert_with(|| Node {
                last: NodeHeader::default(),
                broker_time: crate::metrics::hist::new(),
                total: ShardStats::new(),
                completed: 0,
                failed: 0,
                redelivered: 0,
                heard: now,
            });
            n.total.merge(&stats);
            if !broker.is_empty() {
                n.broker_time = broker;
            }
            n.completed += stats.completed;
            n.failed += stats.failed;
            n.redelivered += h.redelivered;
            n.heard = self.heard_at(&h.node).unwrap_or(now);
            // The last report comes after the node's workers retired: keep the count it ran.
            let workers = if h.last { n.last.workers } else { h.workers };
            n.last = NodeHeader { workers, ..h };
        }
        let lost_after = interval * LOST_AFTER_TICKS;
        let mut workers = 0;
        let mut busy = 0;
        let mut held_now = 0;
        let views = nodes
            .iter()
            .map(|(name, n)| {
                let silent = now.saturating_duration_since(n.heard);
                let lost = !n.last.last && silent >= lost_after;
                if !lost && !n.last.last {
                    workers += n.last.workers;
                    busy += n.last.busy;
                    held_now += n.last.held_now;
                }
                #[allow(clippy::cast_precision_loss)]
                NodeView {
                    name: name.clone(),
                    workers: n.last.workers,
                    busy: n.last.busy,
                    completed: n.completed,
                    failed: n.failed,
                    redelivered: n.redelivered,
                    lost,
                    finished: n.last.last,
                    clock_offset_ms: n.last.offset_ns as f64 / 1e6,
                    clock_uncertainty_ms: n.last.offset_uncertainty_ns as f64 / 1e6,
                    last_heard_ms: silent.as_secs_f64() * 1e3,
                    latency_ms: Summary::of(&n.total.latency, n.total.latency_ns),
                    service_ms: Summary::of(&n.total.service, n.total.service_ns),
                }
            })
            .collect();
        recorders.set_remote_busy(busy);
        let all = self.duplicates();
        let before = self.taken_duplicates.swap(all, Ordering::Relaxed);
        let span = held.since.map_or(interval, |t| now.saturating_duration_since(t)).as_secs_f64();
        let held_mean = if span > 0.0 { std::mem::take(&mut held.area_us) as f64 / 1e6 / span } else { 0.0 };
        held.since = Some(now);
        Absorbed {
            nodes: views,
            workers,
            duplicates: all - before,
            held_now: usize::try_from(held_now).unwrap_or(usize::MAX),
            held_mean,
        }
    }

    /// Every node's time in the broker so far merged into `into`, and the sum of the times (ns).
    pub fn broker_time(&self, into: &mut Histogram<u64>) -> u64 {
        let nodes = self.nodes.lock().unwrap_or_else(PoisonError::into_inner);
        let mut sum = 0u64;
        for n in nodes.values() {
            let _ = into.add(&n.broker_time);
            sum = sum.saturating_add(n.last.broker_time_ns);
        }
        sum
    }

    /// Whether any worker node has reported.
    pub fn has_nodes(&self) -> bool {
        !self.heard.lock().unwrap_or_else(PoisonError::into_inner).is_empty()
    }

    fn heard_at(&self, node: &str) -> Option<Instant> {
        self.heard.lock().unwrap_or_else(PoisonError::into_inner).get(node).map(|(t, _)| *t)
    }

    /// Whether every node that ever reported has sent its last report or is lost.
    pub fn all_done(&self, now: Instant, interval: Duration) -> bool {
        let heard = self.heard.lock().unwrap_or_else(PoisonError::into_inner);
        heard.values().all(|&(t, last)| last || now.saturating_duration_since(t) >= interval * LOST_AFTER_TICKS)
    }
}

/// Takes reports off the run's report topic until `stop`.
pub(crate) async fn listen(broker: Shared, cluster: Arc<Cluster>, stop: CancellationToken) {
    let mut requests = match broker.serve(Topic::Report).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("cannot hear the worker nodes: {e}");
            return;
        }
    };
    loop {
        let r = tokio::select! {
            () = stop.cancelled() => return,
            r = requests.next() => match r { Some(r) => r, None => return },
        };
        match report::decode(&r.body) {
            Ok((h, stats, broker)) => cluster.queue(h, stats, broker, Instant::now()),
            Err(e) => tracing::warn!("a node report refused: {e}"),
        }
        // The node sends a report until it is answered.
        (r.reply)(Vec::new()).await;
    }
}

/// Answers the nodes' clock requests until `stop`.
pub(crate) async fn clock(broker: Shared, epoch: Instant, stop: CancellationToken) {
    let mut requests = match broker.serve(Topic::Clock).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("cannot answer the nodes' clock requests: {e}");
            return;
        }
    };
    loop {
        let r = tokio::select! {
            () = stop.cancelled() => return,
            r = requests.next() => match r { Some(r) => r, None => return },
        };
        let reply = ClockReply {
            version: protocol::VERSION,
            run_ns: offset(epoch, Instant::now()),
            wall_ns: protocol::wall_ns(),
        };
        (r.reply)(serde_json::to_vec(&reply).unwrap_or_default()).await;
    }
}

/// Job `id`'s word in the finished bitset, and its bit there.
fn slot(id: u64) -> (usize, u64) {
    (usize::try_from(id / 64).unwrap_or(usize::MAX), 1 << (id % 64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_finished_twice_is_counted_once_and_reported() {
        let c = Cluster::default();
        assert!(!c.finished(3));
        assert!(!c.finished(1000));
        assert!(c.finished(3));
        assert_eq!(c.duplicates(), 1);
        let r = Recorders::new(1);
        let mut h = NodeHeader { node: "a".into(), seq: 1, workers: 2, ids: vec![1000, 5], ..NodeHeader::default() };
        let mut stats = ShardStats::new();
        stats.completed = 2;
        let t0 = Instant::now();
        c.queue(h.clone(), ShardStats::new(), crate::metrics::hist::new(), t0);
        assert!(c.is_finished(5), "finished once its report is in, before the tick takes it");
        let got = c.absorb(&r, t0, Duration::from_millis(100));
        assert_eq!((got.duplicates, got.workers, got.nodes.len()), (2, 2, 1), "3 twice, then 1000 again");
        // Silent for 3 ticks: lost, and its workers no longer count.
        let later = c.absorb(&r, t0 + Duration::from_millis(300), Duration::from_millis(100));
        assert!(later.nodes[0].lost && later.workers == 0 && later.duplicates == 0);
        // A copy of a report already taken (its reply lost, sent again) is left out.
        c.queue(h.clone(), ShardStats::new(), crate::metrics::hist::new(), t0 + Duration::from_millis(300));
        assert_eq!(c.absorb(&r, t0 + Duration::from_millis(300), Duration::from_millis(100)).duplicates, 0);
        (h.last, h.seq) = (true, 2);
        c.queue(h, stats, crate::metrics::hist::new(), t0 + Duration::from_millis(400));
        let done = c.absorb(&r, t0 + Duration::from_millis(400), Duration::from_millis(100));
        assert!(done.nodes[0].finished && !done.nodes[0].lost && done.nodes[0].completed == 2);
        assert!(c.all_done(t0 + Duration::from_millis(400), Duration::from_millis(100)));
    }
}
