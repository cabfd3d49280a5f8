//! [`Knob`]: one setting set to one value, the unit of every change (flags, profiles, the `:`
//! command line, live commands), with its parsing, checks and names.

use std::time::Duration;

use super::{
    ArrivalKind, MAX_CLIENTS, MAX_CV, MAX_QUEUE, MAX_TIME, MAX_WORKERS, Policy, Rate, ServiceDist, ServiceKind,
    Settings, check_rate,
};
use crate::duration;

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
}
