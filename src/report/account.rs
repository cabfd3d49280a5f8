//! A run's exact account of its gap to theory: the measured mean response split into parts that
//! add up to it. The per-job replays come from the engine's snapshot
//! ([`crate::metrics::account`]); this adds the theory at the *configured* inputs (the rate,
//! service and pool the user set, through the model the run's workload chooses: Erlang C,
//! Pollaczek–Khinchine, Allen–Cunneen, the batch or the closed loop) and the part between it and
//! the ideal pool.
//!
//! measured = **theory** + **randomness** (the ideal pool on this run's draws − theory: the
//! finite sample) + **lateness** (the producer behind its schedule) + **inflation** (services
//! longer than asked) + **overhead** (what the pool itself adds). The last three are per-job
//! differences between replays, so they have a p99 of their own; theory has the model's p99
//! where the model gives one, and randomness the ideal pool's p99 less theory's.

use std::fmt::Write;

use serde::Serialize;

use super::compare::workload;
use crate::metrics::Snapshot;
use crate::metrics::account::Part;
use crate::model::{self, Prediction};
use crate::settings::{ArrivalKind, Rate};

/// One part: its mean and (where it has one) 99th percentile, ms.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Share {
    pub mean_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p99_ms: Option<f64>,
}

impl From<Part> for Share {
    fn from(p: Part) -> Share {
        Share { mean_ms: p.mean, p99_ms: Some(p.p99) }
    }
}

/// The account: JSON `account`, the dashboard's model panel line, the report's split bar.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Account {
    /// The model behind `theory`.
    pub method: &'static str,
    /// Successful jobs of the measured window the account covers.
    pub jobs: u64,
    /// Every job of the run was kept; false when the run outgrew the log and the account covers
    /// its first jobs only.
    pub complete: bool,
    pub measured: Share,
    pub theory: Share,
    pub randomness: Share,
    pub lateness: Share,
    pub inflation: Share,
    pub overhead: Share,
    /// theory + randomness + lateness + inflation + overhead, and how far it is from `measured`
    /// (relative): it adds up by construction, up to rounding.
    pub sum_ms: f64,
    pub sum_error: f64,
}

impl Account {
    /// The five parts by name, in the order they add up.
    #[must_use]
    pub fn parts(&self) -> [(&'static str, Share); 5] {
        [
            ("theory", self.theory),
            ("randomness", self.randomness),
            ("lateness", self.lateness),
            ("inflation", self.inflation),
            ("overhead", self.overhead),
        ]
    }

    /// One line, each part's mean in µs (the dashboard's model panel): "Σ µs theory 1372 rand
    /// -8 late 2 infl 21 over 14 = 1401".
    #[must_use]
    pub fn line(&self) -> String {
        let short = ["theory", "rand", "late", "infl", "over"];
        let mut s = String::from("Σ µs");
        for ((_, p), name) in self.parts().iter().zip(short) {
            let _ = write!(s, " {name} {:.0}", p.mean_ms * 1e3);
        }
        let _ = write!(s, " = {:.0}", self.measured.mean_ms * 1e3);
        s
    }
}

/// The account of `s`'s measured window, when there is one: a replay in the snapshot, the
/// settings held still, the synthetic service (your own job asks for no service time) and a
/// model for the configured inputs.
#[must_use]
pub fn of(s: &Snapshot) -> Option<Account> {
    let r = s.account?;
    if s.measured.setting_changes > 0 || s.custom_work {
        return None;
    }
    let p = configured(s)?;
    let theory = Share { mean_ms: p.latency_ms_mean?, p99_ms: p.latency_ms_p99 };
    let randomness = Share { mean_ms: r.ideal.mean - theory.mean_ms, p99_ms: theory.p99_ms.map(|t| r.ideal.p99 - t) };
    let (lateness, inflation, overhead) = (r.lateness.into(), r.inflation.into(), r.overhead.into());
    let mut a = Account {
        method: p.method,
        jobs: r.jobs,
        complete: r.complete,
        measured: r.measured.into(),
        theory,
        randomness,
        lateness,
        inflation,
        overhead,
        sum_ms: 0.0,
        sum_error: 0.0,
    };
    a.sum_ms = a.parts().iter().map(|(_, p)| p.mean_ms).sum();
    a.sum_error = if a.measured.mean_ms > 0.0 { (a.sum_ms - a.measured.mean_ms) / a.measured.mean_ms } else { 0.0 };
    Some(a)
}

/// The model at the configured inputs: the set rate (an open loop needs one; a trace has no
/// configured rate), the set service mean and shape, the configured arrival shape, and the
/// configured think time of a closed loop; the pool and bound as the window ran.
fn configured(s: &Snapshot) -> Option<Prediction> {
    let st = &s.settings;
    let mut c = s.clone();
    let m = &mut c.measured;
    match (st.arrival, st.rate) {
        (ArrivalKind::Trace, _) => return None,
        (ArrivalKind::Closed | ArrivalKind::Batch, _) => {}
        (_, Rate::PerSec(r)) => m.offered_per_s = r,
        (_, Rate::Max) => return None,
    }
    m.latency.service.mean = st.service.as_secs_f64() * 1e3;
    // The model takes a configured shape when the measured one agrees with it: make it agree.
    m.latency.service.count = m.latency.service.count.max(2);
    m.jobs.offered = m.jobs.offered.max(2);
    m.service_cv = model::draw::cv_of(st, s.service_sample.as_deref());
    m.arrival_cv = if st.arrival == ArrivalKind::Constant { 0.0 } else { 1.0 };
    m.think_ms_mean = None;
    c.producer_lag = std::time::Duration::ZERO;
    model::predict_workload(&workload(&c).1).ok()
}
