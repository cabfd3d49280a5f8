//! A worker node's reports to the controller: each delivered once, in order, whatever the
//! broker does meanwhile.
//!
//! Each tick's report goes into a [`Mailbox`]; one task sends what the mailbox holds as a
//! request on the run's report topic and waits for the controller's reply, trying again until
//! it comes (the broker away or restarting, a reply lost). Ticks that pass meanwhile merge into
//! the report waiting, so an outage costs one report's memory, not one per tick. The controller
//! takes a report once by its node, session and `seq`, and answers every copy.
//!
//! The jobs a report counts are acknowledged after its reply: a node killed in between has them
//! redelivered (and the controller counts each job once by its id), never lost. A node's last
//! report is followed, after the last acknowledgements have left, by an empty one marked `last`.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::sync::{Notify, watch};

use super::adapter::{Ack, Shared, Topic};
use super::state::Settler;
use crate::metrics::node::{self as report, NodeHeader};
use crate::metrics::recorder::ShardStats;

/// How long a report waits for the controller's reply before it is sent again.
const REPLY_WAIT: Duration = Duration::from_secs(1);
/// The longest pause between two tries.
const MAX_PAUSE: Duration = Duration::from_millis(500);

/// One report, or several ticks' merged while an earlier one was on its way.
pub struct Outgoing {
    pub header: NodeHeader,
    pub stats: ShardStats,
    /// The node's time in the broker over the run so far (the latest replaces the older).
    pub broker: Histogram<u64>,
    /// The receipts of the jobs the report counts (their ids are in the header).
    pub receipts: Vec<Box<dyn Ack>>,
    pub last: bool,
}

impl Outgoing {
    /// Takes a later tick's report into this one.
    fn merge(&mut self, later: Outgoing) {
        // The later header's state wins; the per-tick counts and the finished ids add up.
        let mut ids = std::mem::take(&mut self.header.ids);
        ids.extend(later.header.ids);
        self.header = NodeHeader {
            ids,
            delivered: self.header.delivered + later.header.delivered,
            redelivered: self.header.redelivered + later.header.redelivered,
            held_area_us: self.header.held_area_us + later.header.held_area_us,
            ..later.header
        };
        self.stats.merge(&later.stats);
        self.broker = later.broker;
        self.receipts.extend(later.receipts);
        self.last |= later.last;
    }
}

/// The reports waiting to be sent, and whether the last one has been.
pub struct Mailbox {
    waiting: Mutex<Option<Outgoing>>,
    wake: Notify,
    last_sent: watch::Sender<bool>,
}

impl Default for Mailbox {
    fn default() -> Mailbox {
        Mailbox { waiting: Mutex::new(None), wake: Notify::new(), last_sent: watch::channel(false).0 }
    }
}

impl Mailbox {
    /// Puts a tick's report in, merged with one still waiting.
    pub fn post(&self, o: Outgoing) {
        let mut w = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        match w.as_mut() {
            Some(earlier) => earlier.merge(o),
            None => *w = Some(o),
        }
        drop(w);
        self.wake.notify_one();
    }

    /// Resolves once the last report (and the acknowledgements before it) have been delivered.
    pub async fn last_sent(&self) {
        let _ = self.last_sent.subscribe().wait_for(|sent| *sent).await;
    }
}

/// Sends the mailbox's reports until the last one has been delivered.
pub async fn send(broker: Shared, mailbox: Arc<Mailbox>, settler: Arc<Settler>) {
    loop {
        mailbox.wake.notified().await;
        let Some(o) = mailbox.waiting.lock().unwrap_or_else(PoisonError::into_inner).take() else { continue };
        deliver(&broker, report::encode(o.header.clone(), &o.stats, &o.broker)).await;
        for ack in o.receipts {
            settler.ack(ack).await;
        }
        if o.last {
            // The last word comes after the last acknowledgements have reached the server, so
            // the controller's count of what the stream still holds cannot race them.
            if let Err(e) = broker.flush().await {
                tracing::warn!("could not send the last acknowledgements: {e}");
            }
            let end = NodeHeader {
                last: true,
                seq: o.header.seq + 1,
                ids: Vec::new(),
                delivered: 0,
                redelivered: 0,
                held_now: 0,
                held_area_us: 0,
                ..o.header
            };
            deliver(&broker, report::encode(end, &ShardStats::new(), &crate::metrics::hist::new())).await;
            mailbox.last_sent.send_replace(true);
            return;
        }
    }
}

/// Sends one report until the controller answers it.
async fn deliver(broker: &Shared, body: Vec<u8>) {
    let mut pause = Duration::from_millis(20);
    loop {
        match broker.request(Topic::Report, body.clone(), REPLY_WAIT).await {
            Ok(_) => return,
            Err(e) => tracing::debug!("a report not taken yet: {e}"),
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(MAX_PAUSE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tick(seq: u64, ids: Vec<u64>, completed: u64, last: bool) -> Outgoing {
        let mut stats = ShardStats::new();
        stats.completed = completed;
        let header =
            NodeHeader { node: "a".into(), seq, workers: seq as usize, delivered: 2, ids, ..NodeHeader::default() };
        Outgoing { header, stats, broker: crate::metrics::hist::new(), receipts: Vec::new(), last }
    }

    /// Ticks that pass while a report is on its way merge into the one waiting: nothing of
    /// them is lost, and the latest state wins.
    #[test]
    fn ticks_waiting_merge_into_one_report() {
        let m = Mailbox::default();
        m.post(tick(1, vec![1, 2], 2, false));
        m.post(tick(2, vec![3], 1, false));
        m.post(tick(3, vec![], 0, true));
        let o = m.waiting.lock().unwrap().take().unwrap();
        let h = &o.header;
        assert_eq!((h.seq, h.workers, h.delivered, h.ids.clone()), (3, 3, 6, vec![1, 2, 3]));
        assert_eq!(o.stats.completed, 3);
        assert!(o.last, "a last tick makes the merged report the last");
        assert!(m.waiting.lock().unwrap().is_none());
    }
}
