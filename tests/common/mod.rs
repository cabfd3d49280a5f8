//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use pooltune::engine::{EngineHandle, RunOptions};
use pooltune::metrics::Snapshot;
use pooltune::settings::Settings;

/// Runs that measure queueing behaviour take the machine one at a time, so two of them never
/// compete for the same two cores.
static HEAVY: Mutex<()> = Mutex::new(());

pub fn exclusive() -> MutexGuard<'static, ()> {
    HEAVY.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub fn settings() -> Settings {
    Settings { threads: 2, ..Settings::default() }
}

pub fn run_for(s: Settings, duration: Duration, warmup: Duration) -> Snapshot {
    let opts =
        RunOptions { duration: Some(duration), warmup, interval: Duration::from_millis(100), ..RunOptions::default() };
    EngineHandle::start(s, opts).expect("valid settings").join()
}

/// Waits (polling snapshots) until `pred` holds, or panics after `limit`: a liveness bound, not
/// a timing assertion.
pub fn wait_for(engine: &EngineHandle, limit: Duration, what: &str, pred: impl Fn(&Snapshot) -> bool) -> Snapshot {
    let start = Instant::now();
    let mut rx = engine.subscribe();
    loop {
        let s = rx.borrow_and_update().clone();
        if pred(&s) {
            return s;
        }
        assert!(start.elapsed() < limit, "gave up waiting for {what}; last snapshot: {s:#?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Every offered job is accounted for at the end of a run.
pub fn assert_accounted(s: &Snapshot) {
    let t = &s.totals;
    assert_eq!(t.offered, t.completed + t.failed + t.rejected + t.dropped + t.abandoned, "jobs unaccounted for: {t:?}");
}
