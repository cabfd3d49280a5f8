//! The synthetic service's downstream: the Universal Scalability Law realised on the timer
//! (see [`crate::model::usl`] for the law, and why a job is stretched at its start rather than
//! shared). A job enters (waiting while `capacity` jobs are inside), its demand is stretched by
//! 1 + σ(N−1) + κN(N−1) with N the jobs inside counting itself, and it leaves when served.
//!
//! Inert by default (σ = κ = 0, no capacity limit): then workers skip it entirely. The knobs are
//! live: atomics read as each job enters, so a change applies to the next job.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use tokio::sync::Notify;

use crate::model::usl::Usl;
use crate::settings::{MAX_WORKERS, Settings};

pub struct Downstream {
    inside: AtomicUsize,
    contention: AtomicU64,
    coherency: AtomicU64,
    capacity: AtomicUsize,
    /// Woken when a job leaves or the capacity grows.
    room: Notify,
}

/// A job inside the downstream; leaving is dropping it (also when a timeout cancels the job).
pub struct Inside<'a> {
    d: &'a Downstream,
    /// Jobs inside when this one entered, itself included.
    pub n: usize,
    /// It had to wait for room.
    pub waited: bool,
}

impl Drop for Inside<'_> {
    fn drop(&mut self) {
        self.d.inside.fetch_sub(1, Ordering::AcqRel);
        self.d.room.notify_one();
    }
}

impl Downstream {
    #[must_use]
    pub fn new(s: &Settings) -> Downstream {
        let d = Downstream {
            inside: AtomicUsize::new(0),
            contention: AtomicU64::new(0),
            coherency: AtomicU64::new(0),
            capacity: AtomicUsize::new(MAX_WORKERS),
            room: Notify::new(),
        };
        d.configure(s);
        d
    }

    /// Takes the knobs' new values (a capacity that grew lets waiting jobs in).
    pub fn configure(&self, s: &Settings) {
        self.contention.store(s.contention.to_bits(), Ordering::Relaxed);
        self.coherency.store(s.coherency.to_bits(), Ordering::Relaxed);
        self.capacity.store(s.capacity.max(1), Ordering::Release);
        self.room.notify_waiters();
    }

    /// The law as it stands now.
    #[must_use]
    pub fn usl(&self) -> Usl {
        let capacity = self.capacity.load(Ordering::Relaxed);
        Usl {
            contention: f64::from_bits(self.contention.load(Ordering::Relaxed)),
            coherency: f64::from_bits(self.coherency.load(Ordering::Relaxed)),
            capacity: (capacity < MAX_WORKERS).then(|| u32::try_from(capacity).unwrap_or(u32::MAX)),
        }
    }

    /// Enters, waiting while it is full.
    pub async fn enter(&self) -> Inside<'_> {
        let mut waited = false;
        loop {
            // Registered before the check, so a job leaving in between is not missed.
            let room = self.room.notified();
            let now = self.inside.load(Ordering::Acquire);
            if now < self.capacity.load(Ordering::Acquire) {
                if self.inside.compare_exchange(now, now + 1, Ordering::AcqRel, Ordering::Acquire).is_ok() {
                    return Inside { d: self, n: now + 1, waited };
                }
                continue;
            }
            waited = true;
            room.await;
        }
    }

    /// Jobs inside now.
    #[cfg(test)]
    #[must_use]
    pub fn inside(&self) -> usize {
        self.inside.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn capacity_holds_jobs_outside_and_lets_them_in_as_others_leave() {
        let d = Arc::new(Downstream::new(&Settings { capacity: 2, contention: 0.5, ..Settings::default() }));
        assert!(!d.usl().is_none());
        let a = d.enter().await;
        let b = d.enter().await;
        assert_eq!((a.n, b.n), (1, 2));
        assert!((d.usl().stretch(2.0) - 1.5).abs() < 1e-12);
        let waiting = {
            let d = d.clone();
            tokio::spawn(async move {
                let c = d.enter().await;
                (c.n, c.waited)
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "a third job waits at capacity 2");
        drop(a);
        assert_eq!(waiting.await.unwrap(), (2, true));
        drop(b);
        assert_eq!(d.inside(), 0);
        // Growing the capacity lets a waiting job in without anyone leaving.
        let x = d.enter().await;
        let y = d.enter().await;
        let waiting = {
            let d = d.clone();
            tokio::spawn(async move { d.enter().await.n })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        d.configure(&Settings { capacity: 3, ..Settings::default() });
        assert_eq!(waiting.await.unwrap(), 3);
        drop((x, y));
        assert!(Downstream::new(&Settings::default()).usl().is_none(), "inert by default");
    }
}
