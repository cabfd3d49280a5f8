//! What a run is given besides its settings, fixed for the run ([`Supplied`]): your own job, a
//! trace to replay and a sample to draw service times from; and the check that settings which
//! need a trace or a sample have it ([`check`]), at the start and for every knob change.
//!
//! The run context (`cli::RunContext`) builds it once; the engine shares it with the producer
//! (the trace's instants, the sample's draws) and names the sample in every snapshot
//! ([`crate::metrics::Snapshot::service_sample`]), so each client shows and models the sample the
//! run draws from. Nothing of it lives in a global.

use std::sync::Arc;

use super::EngineError;
use super::replay::Arrivals;
use crate::model::sample::ServiceSample;
use crate::settings::{ArrivalKind, Rate, ServiceDist, Settings};

/// Your job, a trace and a service sample, each when the run has one.
#[derive(Clone, Default)]
pub struct Supplied {
    /// The job the workers run instead of the synthetic service.
    pub work: Option<Arc<dyn crate::work::Work>>,
    /// The trace replayed while `arrival = trace`.
    pub arrivals: Option<Arrivals>,
    /// The sample drawn from while `service_dist = empirical`.
    pub service_sample: Option<Arc<ServiceSample>>,
}

/// Which of a trace and a sample a run has: what every knob change is checked against.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Has {
    pub trace: bool,
    pub sample: bool,
}

impl Supplied {
    pub(crate) fn has(&self) -> Has {
        Has { trace: self.arrivals.is_some(), sample: self.service_sample.is_some() }
    }

    /// What the engine checks at its start (`check`), for a client that refuses bad input
    /// before anything starts.
    ///
    /// # Errors
    /// `s` needs a trace or a sample these do not hold.
    pub fn check(&self, s: &Settings) -> Result<(), EngineError> {
        check(s, self.has())
    }
}

/// Refuses `arrival = trace` without a trace to replay, a trace at `rate = max` (a trace is
/// replayed at a speed: its own mean rate times a factor), and `service_dist = empirical`
/// without a sample to draw from.
pub(crate) fn check(s: &Settings, has: Has) -> Result<(), EngineError> {
    if s.arrival == ArrivalKind::Trace && !has.trace {
        return Err(EngineError::Invalid(
            "arrival trace needs a trace to replay: start the run with --arrivals FILE".into(),
        ));
    }
    if s.arrival == ArrivalKind::Trace && s.rate == Rate::Max {
        return Err(EngineError::Invalid(
            "rate max is not accepted while a trace replays; expected a rate in jobs/s (the trace's mean rate times the speed)".into(),
        ));
    }
    if s.service_dist == ServiceDist::Empirical && !has.sample {
        return Err(EngineError::Invalid(
            "service_dist empirical draws service times from a sample: start the run with --service-sample FILE (a file of durations, or a pooltune run's JSON)".into(),
        ));
    }
    Ok(())
}
