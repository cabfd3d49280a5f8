//! A worker node's side of a broker run: the controller's first word (and the version check),
//! the clock estimate, the controller's later words, and the tick's report.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::runtime::Handle;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::adapter::{Ack, BoxStream, Shared, Topic};
use super::protocol::{self, ClockReply, Control};
use super::reports::{Mailbox, Outgoing};
use super::state::{Clock, Inner};
use super::{BrokerError, BrokerSpec};
use crate::engine::backend::Update;
use crate::metrics::node::NodeHeader;
use crate::metrics::recorder::ShardStats;

/// Clock requests a node makes when it joins; the one with the shortest round trip is kept.
const CLOCK_SAMPLES: usize = 7;
/// How long a clock request waits for the controller's answer.
const CLOCK_WAIT: Duration = Duration::from_secs(5);

/// What a node keeps of its part in the run.
pub struct NodeSide {
    name: String,
    clock: Clock,
    control: watch::Receiver<Option<Control>>,
    /// This process's reports, told apart from an earlier process's of the same name.
    session: u64,
    seq: AtomicU64,
    pub mailbox: Arc<Mailbox>,
    delivered_reported: AtomicU64,
    redelivered_reported: AtomicU64,
}

/// What a tick hands to its report.
pub struct Tick {
    /// What the tick's drains took from this node's shards.
    pub stats: ShardStats,
    /// The receipts of the jobs the tick's records count, by job id.
    pub pending: Vec<(u64, Box<dyn Ack>)>,
    pub workers: usize,
    pub busy: u64,
    pub last: bool,
}

impl NodeSide {
    pub fn new(name: &str, clock: Clock, control: watch::Receiver<Option<Control>>) -> NodeSide {
        NodeSide {
            name: name.to_string(),
            clock,
            control,
            session: protocol::wall_ns(),
            seq: AtomicU64::new(0),
            mailbox: Arc::default(),
            delivered_reported: AtomicU64::new(0),
            redelivered_reported: AtomicU64::new(0),
        }
    }

    /// The controller's latest word, once per change (and the first before any report).
    pub fn control_update(&self) -> Option<Update> {
        let mut rx = self.control.clone();
        if !rx.has_changed().unwrap_or(false) && self.seq.load(Ordering::Relaxed) > 0 {
            return None;
        }
        let word = rx.borrow_and_update().clone()?;
        if word.end {
            return Some(Update::End);
        }
        let (knobs, bad) = word.knobs_for(&self.name);
        for e in bad {
            tracing::warn!("the controller sent a knob this pooltune cannot read: {e}");
        }
        Some(Update::Knobs(knobs))
    }

    /// Posts the tick's report (see [`reports`](super::reports)): the jobs it counts are
    /// acknowledged once the controller has it. For the last, returns a task that ends when it
    /// has been delivered.
    pub fn report(&self, inner: &Inner, handle: &Handle, t: Tick) -> Option<JoinHandle<()>> {
        let c = &inner.counts;
        let delivered = c.delivered.load(Ordering::Relaxed);
        let redelivered = c.redelivered.load(Ordering::Relaxed);
        let (ids, receipts) = t.pending.into_iter().unzip();
        let header = NodeHeader {
            node: self.name.clone(),
            session: self.session,
            seq: self.seq.fetch_add(1, Ordering::Relaxed) + 1,
            workers: t.workers,
            busy: t.busy,
            delivered: delivered - self.delivered_reported.swap(delivered, Ordering::Relaxed),
            redelivered: redelivered - self.redelivered_reported.swap(redelivered, Ordering::Relaxed),
            offset_ns: self.clock.offset_ns,
            offset_uncertainty_ns: self.clock.uncertainty_ns,
            last: false,
            ids,
            broker_time_ns: c.broker_time_ns.load(Ordering::Relaxed),
            held_now: c.held_now.load(Ordering::Relaxed),
            held_area_us: c.held_area_us.swap(0, Ordering::Relaxed),
            ..NodeHeader::default()
        };
        let broker = inner.broker_time.lock().unwrap_or_else(PoisonError::into_inner).clone();
        self.mailbox.post(Outgoing { header, stats: t.stats, broker, receipts, last: t.last });
        let mailbox = Arc::clone(&self.mailbox);
        t.last.then(|| handle.spawn(async move { mailbox.last_sent().await }))
    }
}

/// Waits for the controller's first word on the run's control topic; refuses another version's.
pub async fn first_word(sub: &mut BoxStream<Vec<u8>>, spec: &BrokerSpec) -> Result<Control, BrokerError> {
    let Some(m) = sub.next().await else {
        return Err(BrokerError::Unreachable { url: spec.shown(), reason: "the connection closed".into() });
    };
    // A word this build cannot read is another version's (version 0: not pooltune's at all).
    let first: Control = serde_json::from_slice(&m).unwrap_or_default();
    if first.version != protocol::VERSION {
        return Err(BrokerError::Incompatible { run: spec.run_name.clone(), theirs: first.version });
    }
    Ok(first)
}

/// Keeps the controller's latest word for the node's engine.
pub async fn listen_control(mut sub: BoxStream<Vec<u8>>, tx: watch::Sender<Option<Control>>, stop: CancellationToken) {
    loop {
        let m = tokio::select! {
            () = stop.cancelled() => return,
            m = sub.next() => match m { Some(m) => m, None => return },
        };
        match serde_json::from_slice::<Control>(&m) {
            Ok(c) => {
                tx.send_if_modified(|old| {
                    let changed = old.as_ref() != Some(&c);
                    *old = Some(c);
                    changed
                });
            }
            Err(e) => tracing::warn!("a control message refused: {e}"),
        }
    }
}

/// NTP-style: the controller's clocks read between two of ours, the round trip's midpoint taken
/// as the moment it read them. Of [`CLOCK_SAMPLES`] tries the shortest round trip is kept; its
/// half is the uncertainty.
pub async fn estimate_clock(broker: &Shared) -> Result<Clock, String> {
    let mut best: Option<(Duration, Clock)> = None;
    for _ in 0..CLOCK_SAMPLES {
        let (i0, w0) = (Instant::now(), protocol::wall_ns());
        let reply = broker.request(Topic::Clock, Vec::new(), CLOCK_WAIT).await?;
        let (i3, w3) = (Instant::now(), protocol::wall_ns());
        let r: ClockReply = serde_json::from_slice(&reply).map_err(|e| e.to_string())?;
        let rtt = i3 - i0;
        let mid = i0 + rtt / 2;
        let epoch = mid.checked_sub(Duration::from_nanos(r.run_ns)).unwrap_or(i0);
        let wall_mid = i128::from(w0) + (i128::from(w3) - i128::from(w0)) / 2;
        let offset_ns = i64::try_from(wall_mid - i128::from(r.wall_ns)).unwrap_or(i64::MAX);
        let clock = Clock { epoch, offset_ns, uncertainty_ns: u64::try_from((rtt / 2).as_nanos()).unwrap_or(u64::MAX) };
        if best.as_ref().is_none_or(|(b, _)| rtt < *b) {
            best = Some((rtt, clock));
        }
    }
    best.map(|(_, c)| c).ok_or_else(|| "no clock reply".into())
}
