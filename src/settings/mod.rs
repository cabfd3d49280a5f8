//! The workload's knobs: what the engine runs, how each knob is named, parsed and checked.
//!
//! One [`Knob`] type serves every way of changing a setting: engine commands, the dashboard's
//! `:` command line, profile phases and recordings. Limits live here and only here, so a value
//! refused on the command line is refused with the same words in a profile or live.
//! Owns no tokio and no UI.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::Serialize;

use crate::duration;

mod error;
mod knob;
mod value;
pub use error::{KnobError, SettingsError};
pub use knob::{KNOB_NAMES, KNOBS, Knob, KnobSpec, live_names, markdown_table};
pub use value::{KnobValue, ValueKind};

/// The most workers a pool may have: beyond this the tool would measure its own task churn.
pub const MAX_WORKERS: usize = 100_000;
/// The largest queue bound; memory grows only with what is really queued, not with the bound.
pub const MAX_QUEUE: usize = 10_000_000;
/// The most jobs a broker node pulls ahead of its workers.
pub const MAX_PREFETCH: usize = 100_000;
/// The highest finite arrival rate, jobs per second (`max` means "as fast as the queue accepts").
pub const MAX_RATE: f64 = 10_000_000.0;
/// The longest service, think or burst time.
pub const MAX_TIME: Duration = Duration::from_secs(3600);
/// The most closed-loop clients.
pub const MAX_CLIENTS: usize = 100_000;
/// Batch size when `batch` arrivals are chosen without a job count.
pub const DEFAULT_BATCH: u64 = 100;
/// The largest coefficient of variation accepted for service times.
pub const MAX_CV: f64 = 100.0;
/// The most runtime threads.
pub const MAX_THREADS: usize = 1024;

/// Implements `FromStr`, `Display` and a list of accepted names for a unit-only enum.
macro_rules! named_enum {
    ($(#[$m:meta])* $name:ident, $what:literal { $($(#[$vm:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
        pub enum $name { $($(#[$vm])* #[serde(rename = $text)] $variant),+ }

        impl $name {
            /// Every value, in the order the dashboard cycles through them.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// The accepted spellings, for error messages and help.
            pub const NAMES: &'static str = concat!($($text, " | "),+);

            /// The spelling used on the command line and in profiles.
            #[must_use]
            pub fn name(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// The next value in [`Self::ALL`], wrapping round.
            #[must_use]
            pub fn next(self) -> Self {
                let i = Self::ALL.iter().position(|v| *v == self).unwrap_or(0);
                Self::ALL[(i + 1) % Self::ALL.len()]
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s.trim() {
                    $($text => Ok($name::$variant),)+
                    other => Err(format!(
                        "'{other}' is not {}; expected one of {}",
                        $what,
                        Self::NAMES.trim_end_matches(" | ")
                    )),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

named_enum!(
    /// Who sets the worker count: the operator (`off`), or a controller that moves it between
    /// `workers_min` and `workers_max` (see the `adapt` module for each algorithm).
    Adapt, "an adaptive algorithm" {
        /// The worker count is what the operator, a flag or a profile set.
        Off = "off",
        /// Maximise throughput: the .NET thread pool's hill climbing.
        HillClimb = "hill-climb",
        /// Hold the service time near its no-load value: Netflix concurrency-limits' `VegasLimit`.
        Vegas = "vegas",
        /// Follow the gradient of short against long service time: `Gradient2Limit`.
        Gradient2 = "gradient2",
        /// Grow by one until a failure or timeout, then back off: `AIMDLimit`.
        Aimd = "aimd",
        /// The fewest workers the queueing model says meet `slo_p99` at the estimated rate.
        Slo = "slo",
        /// Kubernetes' event-driven autoscaling of queue consumers: jobs per worker against
        /// `queue_target`.
        QueueLength = "queue-length",
    }
);

named_enum!(
    /// What happens to an arrival that finds the queue full.
    Policy, "a policy" {
        /// Backpressure: the producer waits; the wait shows in latency (measured from the intended time).
        Block = "block",
        /// The new job is refused and counted.
        Reject = "reject",
        /// The oldest queued job is discarded and counted, and the new one is queued.
        DropOldest = "drop-oldest",
    }
);

named_enum!(
    /// How jobs arrive.
    ArrivalKind, "an arrival process" {
        /// Open loop, exponential inter-arrival times (Poisson process) at the rate.
        Poisson = "poisson",
        /// Open loop, evenly spaced at the rate.
        Constant = "constant",
        /// Open loop, Poisson during on-periods and silent during off-periods; the long-run mean is the rate.
        Bursty = "bursty",
        /// Closed loop: a fixed number of clients, each waiting for its job and then thinking.
        Closed = "closed",
        /// A batch of `jobs` jobs submitted at once.
        Batch = "batch",
        /// The arrival instants of a file (`--arrivals FILE`), replayed at `rate` ÷ the trace's
        /// own mean rate (the speed).
        Trace = "trace",
    }
);

named_enum!(
    /// The distribution of service times around their mean.
    ServiceDist, "a service distribution" {
        Constant = "constant",
        Exponential = "exponential",
        Uniform = "uniform",
        Lognormal = "lognormal",
        /// Drawn from a sample of measured times (`--service-sample FILE`), scaled so its mean is
        /// `service`: the run context holds the sample, not the settings.
        Empirical = "empirical",
    }
);

named_enum!(
    /// What a job does for its service time.
    ServiceKind, "a service kind" {
        /// An async wait (an I/O-bound job), on the precise timer.
        Sleep = "sleep",
        /// Busy CPU on the runtime thread.
        Spin = "spin",
        /// `std::thread::sleep` on a runtime thread: the classic mistake, offered on purpose.
        Block = "block",
        /// The same blocking wait moved to `spawn_blocking`.
        Offload = "offload",
    }
);

/// An arrival rate: jobs per second, or `max` (the producer enqueues as fast as the queue accepts).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rate {
    PerSec(f64),
    Max,
}

impl FromStr for Rate {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        if t == "max" {
            return Ok(Rate::Max);
        }
        let num = t.strip_suffix("/s").unwrap_or(t);
        num.parse()
            .map(Rate::PerSec)
            .map_err(|_| format!("'{s}' is not a rate; expected jobs per second (e.g. 2500) or 'max'"))
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rate::Max => f.write_str("max"),
            Rate::PerSec(v) => write!(f, "{v}"),
        }
    }
}

impl Serialize for Rate {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Rate::Max => s.serialize_str("max"),
            Rate::PerSec(v) => s.serialize_f64(*v),
        }
    }
}

/// Every knob of a running workload, one field per row of the knob table ([`KNOBS`], which also
/// gives `Default`). `threads` and `seed` are fixed for a run; the rest change live.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Settings {
    pub workers: usize,
    /// Who sets the worker count (`off`: the operator).
    pub adapt: Adapt,
    /// The fewest and most workers an adaptive controller may set.
    pub workers_min: usize,
    pub workers_max: usize,
    /// A p99 response-time target: the `slo` controller sizes for it, the advisor and the
    /// run's attainment are measured against it (`None`: no target).
    #[serde(serialize_with = "timeout_serde")]
    pub slo_p99: Option<Duration>,
    /// `queue-length`: the jobs in the system per worker the controller aims at.
    pub queue_target: f64,
    /// `hill-climb`: a worker must raise throughput by this share of its own to be worth adding
    /// (.NET's 0.15 settles near 0.8 N* for about 2% of the peak's throughput; 0 aims at N*).
    pub adapt_bias: f64,
    pub queue: usize,
    pub policy: Policy,
    pub arrival: ArrivalKind,
    pub rate: Rate,
    /// Closed loop: the number of clients.
    pub clients: usize,
    /// Closed loop: mean think time between a client's job finishing and its next arrival (exponential).
    #[serde(with = "duration_serde")]
    pub think: Duration,
    /// Batch size for `batch`; for other arrivals, stop offering after this many jobs (`None`: no limit).
    pub jobs: Option<u64>,
    /// Bursty: length of an on-period.
    #[serde(with = "duration_serde")]
    pub burst_on: Duration,
    /// Bursty: length of an off-period.
    #[serde(with = "duration_serde")]
    pub burst_off: Duration,
    /// Mean service time.
    #[serde(with = "duration_serde")]
    pub service: Duration,
    pub service_dist: ServiceDist,
    /// Coefficient of variation of service times (used by `uniform` and `lognormal`).
    pub service_cv: f64,
    pub service_kind: ServiceKind,
    /// Downstream (Universal Scalability Law): contention σ.
    pub contention: f64,
    /// Downstream: coherency κ.
    pub coherency: f64,
    /// Downstream: jobs served at once (`MAX_WORKERS`: no limit).
    pub capacity: usize,
    /// A job running longer than this is cancelled and counted as timed out (`None`: no limit).
    #[serde(serialize_with = "timeout_serde")]
    pub timeout: Option<Duration>,
    /// Broker: how many jobs a node pulls ahead of its workers.
    pub prefetch: usize,
    /// Broker: a job held unacknowledged this long is delivered again.
    #[serde(with = "duration_serde")]
    pub ack_wait: Duration,
    /// Runtime threads; `0` until the run starts: one per core, less one when the timer is busy
    /// ([`auto_threads`]).
    pub threads: usize,
    pub seed: u64,
}

/// The number of cores.
#[must_use]
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(2, std::num::NonZero::get)
}

/// The runtime threads `threads = 0` (auto) gives on `cores` cores.
///
/// One per core, except that a run which waits on pooltune's timer the whole time (a synthetic
/// service that sleeps, with paced arrivals or a service time) leaves one core free. The timer
/// thread and the control thread must be woken at their instant; with a runtime thread on every
/// core they wait for a scheduler slice behind one. Measured on 2 cores (M/M/4, 2,800/s, 1 ms,
/// four pairs of runs alternating 1 and 2 threads): producer lag mean 30–56 µs against 49–77,
/// mean service 1.022–1.037 ms against 1.032–1.054, mean response above the textbook queue by
/// +3.5–7.9% against +4.7–9.3%, one thread better in every pair. A flood (`--rate max` and no
/// service time) keeps every core: its ceiling needs them (on 2 cores, 2 threads gave 4.7–4.8
/// million jobs/s at 2 to 4 workers where 1 gave 3.2–3.6).
#[must_use]
pub fn auto_threads(s: &Settings, cores: usize) -> usize {
    let timed = s.service_kind == ServiceKind::Sleep && !(s.rate == Rate::Max && s.service.is_zero());
    if timed { cores.saturating_sub(1).max(1) } else { cores.max(1) }
}

#[allow(clippy::ref_option)]
fn timeout_serde<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_str(&duration::format(*d)),
        None => s.serialize_none(),
    }
}

mod duration_serde {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::duration::format(*d))
    }
}

impl Settings {
    /// The settings a run starts with: `threads = 0` made a count ([`auto_threads`]), and an
    /// adaptive controller's starting count inside its bounds ([`Settings::adaptive_start`]).
    #[must_use]
    pub fn resolved(mut self) -> Settings {
        if self.threads == 0 {
            self.threads = auto_threads(&self, default_threads());
        }
        if let Some(n) = self.adaptive_start() {
            self.workers = n;
        }
        self
    }

    /// Where an adaptive controller starts when the count given is outside
    /// `workers_min..=workers_max` (at least one worker): the nearest count inside. `None` when
    /// no controller runs or the count is inside already. A controller started at 0 workers
    /// would measure nothing and never move.
    #[must_use]
    pub fn adaptive_start(&self) -> Option<usize> {
        let lo = self.workers_min.max(1);
        let n = self.workers.clamp(lo, self.workers_max.max(lo));
        (self.adapt != Adapt::Off && n != self.workers).then_some(n)
    }

    /// Whether the knob `key` has any effect on a run with these settings (`broker`: the run's
    /// queue is a broker). The others hold a value the run never reads (`clients` for Poisson
    /// arrivals, `prefetch` without a broker): reports fold them away. Unknown keys apply.
    #[must_use]
    pub fn knob_applies(&self, key: &str, broker: bool) -> bool {
        let downstream = self.contention > 0.0 || self.coherency > 0.0 || self.capacity < MAX_WORKERS;
        match key {
            "workers_min" | "workers_max" => self.adapt != Adapt::Off,
            "queue_target" => self.adapt == Adapt::QueueLength,
            "adapt_bias" => self.adapt == Adapt::HillClimb,
            "slo_p99" => self.slo_p99.is_some(),
            "rate" => !matches!(self.arrival, ArrivalKind::Closed | ArrivalKind::Batch),
            "clients" | "think" => self.arrival == ArrivalKind::Closed,
            "burst_on" | "burst_off" => self.arrival == ArrivalKind::Bursty,
            "jobs" => self.jobs.is_some(),
            "service_cv" => matches!(self.service_dist, ServiceDist::Uniform | ServiceDist::Lognormal),
            "contention" | "coherency" | "capacity" => downstream,
            "timeout" => self.timeout.is_some(),
            "prefetch" | "ack_wait" => broker,
            _ => true,
        }
    }

    /// `batch` arrivals without a size get [`DEFAULT_BATCH`] (`--arrival batch` alone, or a
    /// profile's `arrival = "batch"`).
    pub fn fill_batch_size(&mut self) {
        if self.arrival == ArrivalKind::Batch && self.jobs.is_none() {
            self.jobs = Some(DEFAULT_BATCH);
        }
    }

    /// Checks every knob and the combinations between them.
    ///
    /// # Errors
    /// The first value that is out of range, with what is accepted.
    pub fn validate(&self) -> Result<(), SettingsError> {
        for k in Knob::all_of(self) {
            k.check()?;
        }
        if self.service_dist == ServiceDist::Uniform && self.service_cv > UNIFORM_MAX_CV {
            return Err(SettingsError::UniformTooWide { cv: self.service_cv, max: UNIFORM_MAX_CV });
        }
        if self.arrival == ArrivalKind::Batch && self.jobs.is_none() {
            return Err(SettingsError::BatchWithoutSize);
        }
        if self.workers_min > self.workers_max {
            return Err(SettingsError::WorkersRange { min: self.workers_min, max: self.workers_max });
        }
        if self.adapt == Adapt::Slo && self.slo_p99.is_none() {
            return Err(SettingsError::SloWithoutTarget);
        }
        Ok(())
    }

    /// This settings with one knob changed, if the result is valid.
    ///
    /// # Errors
    /// Why the new value is refused.
    pub fn with(&self, knob: Knob) -> Result<Settings, SettingsError> {
        knob.check()?;
        let mut s = self.clone();
        knob.apply(&mut s);
        s.validate()?;
        Ok(s)
    }
}

/// A uniform distribution on [m(1−√3·cv), m(1+√3·cv)] stays non-negative up to cv = 1/√3.
pub const UNIFORM_MAX_CV: f64 = 0.577_350_269_189_625_7;

#[cfg(test)]
mod tests {
    use super::*;

    /// `threads = 0` leaves a core to the timer when the run waits on it, and only then.
    #[test]
    fn automatic_threads_leave_the_timer_a_core_when_it_is_busy() {
        let timed = Settings::default();
        assert_eq!((auto_threads(&timed, 2), auto_threads(&timed, 8), auto_threads(&timed, 1)), (1, 7, 1));
        let flood = Settings { rate: Rate::Max, service: Duration::ZERO, ..Settings::default() };
        assert_eq!(auto_threads(&flood, 2), 2, "a flood keeps every core");
        let paced = Settings { service: Duration::ZERO, ..Settings::default() };
        assert_eq!(auto_threads(&paced, 2), 1, "paced arrivals wait on the timer");
        let spin = Settings { service_kind: ServiceKind::Spin, ..Settings::default() };
        assert_eq!(auto_threads(&spin, 4), 4, "a CPU-bound service needs every core");
        assert_eq!(Settings { threads: 3, ..timed.clone() }.resolved().threads, 3, "a count given stays");
        assert!(timed.resolved().threads >= 1);
    }

    #[test]
    fn defaults_are_valid() {
        Settings::default().validate().unwrap();
    }

    #[test]
    fn combinations_are_checked() {
        let s = Settings::default();
        let err = s.with(Knob::ServiceDist(ServiceDist::Uniform)).unwrap_err();
        assert!(matches!(err, SettingsError::UniformTooWide { .. }), "{err:?}");
        assert!(err.to_string().contains("too high for a uniform"), "{err}");
        let err = Settings::default().with(Knob::Arrival(ArrivalKind::Batch)).unwrap_err();
        assert_eq!(err, SettingsError::BatchWithoutSize);
        assert!(err.to_string().contains("needs a batch size"), "{err}");
    }

    #[test]
    fn enums_cycle_through_every_value() {
        let mut p = Policy::Block;
        for _ in 0..Policy::ALL.len() {
            p = p.next();
        }
        assert_eq!(p, Policy::Block);
    }
}
