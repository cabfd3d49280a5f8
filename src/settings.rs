//! The workload's knobs: what the engine runs, how each knob is named, parsed and checked.
//!
//! One [`Knob`] type serves every way of changing a setting: engine commands, the dashboard's
//! `:` command line, profile phases and recordings. Limits live here and only here, so a value
//! refused on the command line is refused with the same words in a profile or live.
//! Owns no tokio and no UI.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::duration;

/// The most workers a pool may have: beyond this the tool would measure its own task churn.
pub const MAX_WORKERS: usize = 100_000;
/// The largest queue bound; memory grows only with what is really queued, not with the bound.
pub const MAX_QUEUE: usize = 10_000_000;
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
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
    }
);

named_enum!(
    /// The distribution of service times around their mean.
    ServiceDist, "a service distribution" {
        Constant = "constant",
        Exponential = "exponential",
        Uniform = "uniform",
        Lognormal = "lognormal",
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
        let v: f64 =
            num.parse().map_err(|_| format!("'{s}' is not a rate; expected jobs per second (e.g. 2500) or 'max'"))?;
        check_rate(v).map(Rate::PerSec)
    }
}

fn check_rate(v: f64) -> Result<f64, String> {
    if !v.is_finite() || v < 0.0 {
        return Err(format!("rate {v} is not accepted; expected 0 to {MAX_RATE} jobs per second or 'max'"));
    }
    if v > MAX_RATE {
        return Err(format!("rate {v} is too high; expected at most {MAX_RATE} jobs per second or 'max'"));
    }
    Ok(v)
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

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Num(f64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Num(v) => check_rate(v).map(Rate::PerSec).map_err(serde::de::Error::custom),
            Raw::Text(t) => t.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// Every knob of a running workload. `threads` and `seed` are fixed for a run; the rest change live.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Settings {
    pub workers: usize,
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
    /// A job running longer than this is cancelled and counted as timed out (`None`: no limit).
    #[serde(serialize_with = "timeout_serde")]
    pub timeout: Option<Duration>,
    pub threads: usize,
    pub seed: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            workers: 4,
            queue: 100,
            policy: Policy::Block,
            arrival: ArrivalKind::Poisson,
            rate: Rate::PerSec(500.0),
            clients: 8,
            think: Duration::from_millis(10),
            jobs: None,
            burst_on: Duration::from_millis(200),
            burst_off: Duration::from_millis(800),
            service: Duration::from_millis(5),
            service_dist: ServiceDist::Exponential,
            service_cv: 1.0,
            service_kind: ServiceKind::Sleep,
            timeout: None,
            threads: default_threads(),
            seed: 1,
        }
    }
}

/// The number of cores, the default runtime thread count.
#[must_use]
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(2, std::num::NonZero::get)
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

/// The coefficient of variation the distribution really has, whatever `service_cv` says.
impl Settings {
    #[must_use]
    pub fn effective_service_cv(&self) -> f64 {
        match self.service_dist {
            ServiceDist::Constant => 0.0,
            ServiceDist::Exponential => 1.0,
            ServiceDist::Uniform | ServiceDist::Lognormal => self.service_cv,
        }
    }

    /// Checks every knob and the combinations between them.
    ///
    /// # Errors
    /// The first value that is out of range, with what is accepted.
    pub fn validate(&self) -> Result<(), String> {
        let knobs = [
            Knob::Workers(self.workers),
            Knob::Queue(self.queue),
            Knob::Rate(self.rate),
            Knob::Clients(self.clients),
            Knob::Think(self.think),
            Knob::BurstOn(self.burst_on),
            Knob::BurstOff(self.burst_off),
            Knob::Service(self.service),
            Knob::ServiceCv(self.service_cv),
        ];
        for k in knobs {
            k.check()?;
        }
        if let Some(j) = self.jobs {
            Knob::Jobs(j).check()?;
        }
        if self.threads == 0 || self.threads > MAX_THREADS {
            return Err(format!("threads {} is not accepted; expected 1 to {MAX_THREADS}", self.threads));
        }
        if self.service_dist == ServiceDist::Uniform && self.service_cv > UNIFORM_MAX_CV {
            return Err(format!(
                "service_cv {} is too high for a uniform distribution (it would need negative times); expected at most {UNIFORM_MAX_CV:.3}",
                self.service_cv
            ));
        }
        if self.arrival == ArrivalKind::Batch && self.jobs.is_none() {
            return Err("arrival 'batch' needs a batch size; set jobs (e.g. --jobs 100)".into());
        }
        Ok(())
    }

    /// This settings with one knob changed, if the result is valid.
    ///
    /// # Errors
    /// Why the new value is refused.
    pub fn with(&self, knob: Knob) -> Result<Settings, String> {
        knob.check()?;
        let mut s = self.clone();
        knob.apply(&mut s);
        s.validate()?;
        Ok(s)
    }
}

/// A uniform distribution on [m(1−√3·cv), m(1+√3·cv)] stays non-negative up to cv = 1/√3.
pub const UNIFORM_MAX_CV: f64 = 0.577_350_269_189_625_7;

/// One knob set to one value: the unit of every change, live or replayed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Knob {
    Workers(usize),
    Queue(usize),
    Policy(Policy),
    Arrival(ArrivalKind),
    Rate(Rate),
    Clients(usize),
    Think(Duration),
    Jobs(u64),
    BurstOn(Duration),
    BurstOff(Duration),
    Service(Duration),
    ServiceDist(ServiceDist),
    ServiceCv(f64),
    ServiceKind(ServiceKind),
    /// `None` turns the timeout off.
    Timeout(Option<Duration>),
}

/// The live knobs' names, as used by profiles and the `:` command line (dashes also accepted).
pub const KNOB_NAMES: &[&str] = &[
    "workers",
    "queue",
    "policy",
    "arrival",
    "rate",
    "clients",
    "think",
    "jobs",
    "burst_on",
    "burst_off",
    "service",
    "service_dist",
    "service_cv",
    "service_kind",
    "timeout",
];

fn parse_count(name: &str, value: &str, max: u64) -> Result<u64, String> {
    value.trim().parse::<u64>().map_err(|_| format!("{name} '{value}' is not a whole number; expected 0 to {max}"))
}

fn parse_time(name: &str, value: &str) -> Result<Duration, String> {
    duration::parse(value).map_err(|e| format!("{name} {e}"))
}

impl Knob {
    /// Parses `name value`, e.g. `("workers", "16")` or `("service", "3ms")`.
    ///
    /// # Errors
    /// An unknown name (with the nearest known one) or a value out of range.
    pub fn parse(name: &str, value: &str) -> Result<Knob, String> {
        let key = name.trim().replace('-', "_");
        let usize_of = |max: usize| -> Result<usize, String> {
            let v = parse_count(&key, value, max as u64)?;
            usize::try_from(v).map_err(|_| format!("{key} {v} is too large; expected at most {max}"))
        };
        let knob = match key.as_str() {
            "workers" => Knob::Workers(usize_of(MAX_WORKERS)?),
            "queue" => Knob::Queue(usize_of(MAX_QUEUE)?),
            "policy" => Knob::Policy(value.parse()?),
            "arrival" => Knob::Arrival(value.parse()?),
            "rate" => Knob::Rate(value.parse()?),
            "clients" => Knob::Clients(usize_of(MAX_CLIENTS)?),
            "think" => Knob::Think(parse_time(&key, value)?),
            "jobs" => Knob::Jobs(parse_count(&key, value, u64::MAX)?),
            "burst_on" => Knob::BurstOn(parse_time(&key, value)?),
            "burst_off" => Knob::BurstOff(parse_time(&key, value)?),
            "service" => Knob::Service(parse_time(&key, value)?),
            "service_dist" => Knob::ServiceDist(value.parse()?),
            "service_cv" => Knob::ServiceCv(
                value
                    .trim()
                    .parse::<f64>()
                    .map_err(|_| format!("service_cv '{value}' is not a number; expected 0 to {MAX_CV}"))?,
            ),
            "service_kind" | "kind" => Knob::ServiceKind(value.parse()?),
            "timeout" => Knob::Timeout(match value.trim() {
                "off" | "none" => None,
                v => Some(parse_time(&key, v)?),
            }),
            _ => return Err(unknown_knob(name)),
        };
        knob.check()?;
        Ok(knob)
    }

    /// The knob's name as [`Knob::parse`] takes it.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Knob::Workers(_) => "workers",
            Knob::Queue(_) => "queue",
            Knob::Policy(_) => "policy",
            Knob::Arrival(_) => "arrival",
            Knob::Rate(_) => "rate",
            Knob::Clients(_) => "clients",
            Knob::Think(_) => "think",
            Knob::Jobs(_) => "jobs",
            Knob::BurstOn(_) => "burst_on",
            Knob::BurstOff(_) => "burst_off",
            Knob::Service(_) => "service",
            Knob::ServiceDist(_) => "service_dist",
            Knob::ServiceCv(_) => "service_cv",
            Knob::ServiceKind(_) => "service_kind",
            Knob::Timeout(_) => "timeout",
        }
    }

    /// The value as [`Knob::parse`] takes it.
    #[must_use]
    pub fn value_text(&self) -> String {
        match self {
            Knob::Workers(v) | Knob::Queue(v) | Knob::Clients(v) => v.to_string(),
            Knob::Jobs(v) => v.to_string(),
            Knob::Policy(v) => v.to_string(),
            Knob::Arrival(v) => v.to_string(),
            Knob::Rate(v) => v.to_string(),
            Knob::Think(d) | Knob::BurstOn(d) | Knob::BurstOff(d) | Knob::Service(d) | Knob::Timeout(Some(d)) => {
                duration::format(*d)
            }
            Knob::ServiceDist(v) => v.to_string(),
            Knob::ServiceCv(v) => v.to_string(),
            Knob::ServiceKind(v) => v.to_string(),
            Knob::Timeout(None) => "off".into(),
        }
    }

    /// Checks the value on its own (combinations are checked by [`Settings::validate`]).
    ///
    /// # Errors
    /// Why the value is refused and what is accepted.
    pub fn check(&self) -> Result<(), String> {
        let time = |name: &str, d: &Duration, min: Duration| {
            if *d < min || *d > MAX_TIME {
                Err(format!(
                    "{name} {} is not accepted; expected {} to 1h",
                    duration::format(*d),
                    duration::format(min)
                ))
            } else {
                Ok(())
            }
        };
        match self {
            Knob::Workers(n) if *n > MAX_WORKERS => {
                Err(format!("workers {n} is too many; expected 0 to {MAX_WORKERS}"))
            }
            Knob::Queue(n) if *n == 0 || *n > MAX_QUEUE => {
                Err(format!("queue bound {n} is not accepted; expected 1 to {MAX_QUEUE}"))
            }
            Knob::Clients(n) if *n == 0 || *n > MAX_CLIENTS => {
                Err(format!("clients {n} is not accepted; expected 1 to {MAX_CLIENTS}"))
            }
            Knob::Jobs(0) => Err("jobs 0 is not accepted; expected at least 1".into()),
            Knob::Rate(Rate::PerSec(v)) => check_rate(*v).map(|_| ()),
            Knob::Timeout(Some(d)) => time("timeout", d, Duration::from_micros(1)),
            Knob::ServiceCv(v) if !v.is_finite() || *v < 0.0 || *v > MAX_CV => {
                Err(format!("service_cv {v} is not accepted; expected 0 to {MAX_CV}"))
            }
            Knob::Think(d) => time("think", d, Duration::ZERO),
            Knob::Service(d) => time("service", d, Duration::ZERO),
            Knob::BurstOn(d) => time("burst_on", d, Duration::from_micros(1)),
            Knob::BurstOff(d) => time("burst_off", d, Duration::ZERO),
            _ => Ok(()),
        }
    }

    /// Writes the value into `s` (unchecked; see [`Settings::with`]).
    pub fn apply(self, s: &mut Settings) {
        match self {
            Knob::Workers(v) => s.workers = v,
            Knob::Queue(v) => s.queue = v,
            Knob::Policy(v) => s.policy = v,
            Knob::Arrival(v) => s.arrival = v,
            Knob::Rate(v) => s.rate = v,
            Knob::Clients(v) => s.clients = v,
            Knob::Think(v) => s.think = v,
            Knob::Jobs(v) => s.jobs = Some(v),
            Knob::BurstOn(v) => s.burst_on = v,
            Knob::BurstOff(v) => s.burst_off = v,
            Knob::Service(v) => s.service = v,
            Knob::ServiceDist(v) => s.service_dist = v,
            Knob::ServiceCv(v) => s.service_cv = v,
            Knob::ServiceKind(v) => s.service_kind = v,
            Knob::Timeout(v) => s.timeout = v,
        }
    }

    /// The knobs of `after` that differ from `before`: a knob change, as the dashboard marks it
    /// and a recording writes it.
    #[must_use]
    pub fn changed(before: &Settings, after: &Settings) -> Vec<Knob> {
        let old = Knob::all_of(before);
        Knob::all_of(after).into_iter().filter(|k| !old.contains(k)).collect()
    }

    /// Every live knob of `s`, in [`KNOB_NAMES`] order.
    #[must_use]
    pub fn all_of(s: &Settings) -> Vec<Knob> {
        let mut v = vec![
            Knob::Workers(s.workers),
            Knob::Queue(s.queue),
            Knob::Policy(s.policy),
            Knob::Arrival(s.arrival),
            Knob::Rate(s.rate),
            Knob::Clients(s.clients),
            Knob::Think(s.think),
        ];
        if let Some(j) = s.jobs {
            v.push(Knob::Jobs(j));
        }
        v.extend([
            Knob::BurstOn(s.burst_on),
            Knob::BurstOff(s.burst_off),
            Knob::Service(s.service),
            Knob::ServiceDist(s.service_dist),
            Knob::ServiceCv(s.service_cv),
            Knob::ServiceKind(s.service_kind),
            Knob::Timeout(s.timeout),
        ]);
        v
    }
}

/// "unknown knob 'wokers'; did you mean 'workers'? Known: ..."
#[must_use]
pub fn unknown_knob(name: &str) -> String {
    let hint = crate::suggest::closest(name, KNOB_NAMES).map(|b| format!("; did you mean '{b}'?")).unwrap_or_default();
    format!("unknown setting '{name}'{hint} Known settings: {}", KNOB_NAMES.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        Settings::default().validate().unwrap();
    }

    #[test]
    fn knobs_parse_and_print_back() {
        for k in Knob::all_of(&Settings { jobs: Some(5), ..Settings::default() }) {
            let again = Knob::parse(k.name(), &k.value_text()).unwrap();
            assert_eq!(again, k);
        }
    }

    #[test]
    fn refusals_name_the_value_and_the_range() {
        let cases = [
            ("workers", "100001", "expected 0 to 100000"),
            ("queue", "0", "expected 1 to 10000000"),
            ("rate", "-5", "expected 0 to"),
            ("rate", "NaN", "expected 0 to"),
            ("rate", "fast", "'fast' is not a rate"),
            ("policy", "lifo", "expected one of block | reject | drop-oldest"),
            ("service", "2h", "expected 0s to 1h"),
            ("service_cv", "inf", "expected 0 to 100"),
            ("wokers", "3", "did you mean 'workers'"),
        ];
        for (name, value, want) in cases {
            let err = Knob::parse(name, value).unwrap_err();
            assert!(err.contains(want), "{name} {value}: {err}");
        }
    }

    #[test]
    fn combinations_are_checked() {
        let s = Settings::default();
        let s = s.with(Knob::ServiceDist(ServiceDist::Uniform)).unwrap_err();
        assert!(s.contains("too high for a uniform"), "{s}");
        let err = Settings::default().with(Knob::Arrival(ArrivalKind::Batch)).unwrap_err();
        assert!(err.contains("needs a batch size"), "{err}");
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
