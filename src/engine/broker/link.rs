//! The connection to the broker, as every adapter records it: whether it is up, and its
//! outages. Clients reconnect by themselves (or the adapter does); each tells the [`Link`] when
//! the connection was lost and when it came back, and the snapshots show it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::metrics::LinkView;

#[derive(Debug)]
pub struct Link {
    since: Instant,
    /// Times the connection was lost.
    pub disconnects: AtomicU64,
    /// Nanoseconds after `since` when the current outage began; 0 while connected.
    down_at_ns: AtomicU64,
    /// The length of the last outage that ended (ns).
    pub last_outage_ns: AtomicU64,
}

impl Default for Link {
    fn default() -> Link {
        Link {
            since: Instant::now(),
            disconnects: AtomicU64::new(0),
            down_at_ns: AtomicU64::new(0),
            last_outage_ns: AtomicU64::new(0),
        }
    }
}

impl Link {
    fn now_ns(&self) -> u64 {
        u64::try_from(self.since.elapsed().as_nanos()).unwrap_or(u64::MAX).max(1)
    }

    /// The connection was lost (a second call during the same outage changes nothing).
    pub fn lost(&self) {
        if self.down_at_ns.compare_exchange(0, self.now_ns(), Ordering::Relaxed, Ordering::Relaxed).is_ok() {
            self.disconnects.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("lost the broker; reconnecting");
        }
    }

    /// The connection is up (again).
    pub fn back(&self) {
        let down = self.down_at_ns.swap(0, Ordering::Relaxed);
        if down > 0 {
            let outage = self.now_ns().saturating_sub(down);
            self.last_outage_ns.store(outage, Ordering::Relaxed);
            tracing::warn!("reconnected to the broker after {:.1} s", outage as f64 / 1e9);
        }
    }

    /// `None` while connected, else how long the connection has been down.
    pub fn down_for(&self) -> Option<Duration> {
        let down = self.down_at_ns.load(Ordering::Relaxed);
        (down > 0).then(|| Duration::from_nanos(self.now_ns().saturating_sub(down)))
    }

    /// The snapshot's view; `queues_lost` is the core's count of queues made again.
    pub fn view(&self, queues_lost: u64) -> LinkView {
        let down = self.down_for();
        let outage =
            down.map_or_else(|| self.last_outage_ns.load(Ordering::Relaxed) as f64 / 1e6, |d| d.as_secs_f64() * 1e3);
        LinkView {
            connected: down.is_none(),
            disconnects: self.disconnects.load(Ordering::Relaxed),
            outage_ms: outage,
            streams_lost: queues_lost,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outage_is_counted_once_and_its_length_kept() {
        let l = Link::default();
        assert!(l.down_for().is_none());
        l.lost();
        l.lost();
        std::thread::sleep(Duration::from_millis(2));
        assert!(l.down_for().is_some());
        l.back();
        let v = l.view(0);
        assert!(v.connected && v.disconnects == 1 && v.outage_ms >= 2.0, "{v:?}");
    }
}
