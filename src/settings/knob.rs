//! The knob table: every setting of a workload stated once — its key, flag, value type and
//! range, default, help line, whether it changes live and whether a profile may ramp it — and
//! [`Knob`], one setting set to one value, the unit of every change (flags, profiles, the `:`
//! command line, live engine commands, recordings).
//!
//! Everything else is derived from the table: the `Knob` enum and its parse, print, check,
//! apply and `all_of`; `Settings::default()`; the `run` flags and their help (`cli::args`);
//! profile keys and their TOML types (`profile::parse`, `profile::record`); which knobs ramp
//! (`profile::timeline`); the `:` line's names and examples and the `?` overlay (`tui`); and
//! the README's knob table (a test keeps it equal to [`markdown_table`]).
//!
//! **Adding a knob** is one entry here plus a field in [`Settings`] (the generated `Default`
//! fails to compile until the two agree) and what the engine does with it: read the field where
//! the work happens and, if it is live, react to `Command::Set` in `engine::control`. A value
//! type the table does not know yet also needs a [`KnobValue`] implementation.

use std::fmt::Write as _;
use std::time::Duration;

use super::error::KnobError;
use super::value::{KnobValue, ValueKind};
use super::{
    Adapt, ArrivalKind, MAX_CLIENTS, MAX_CV, MAX_PREFETCH, MAX_QUEUE, MAX_RATE, MAX_THREADS, MAX_TIME, MAX_WORKERS,
    Policy, Rate, ServiceDist, ServiceKind, Settings,
};

/// One row of the knob table, for clients that list knobs (help, flags, profiles, docs).
#[derive(Debug, Clone, Copy)]
pub struct KnobSpec {
    /// The name in profiles, the `:` line and JSON (`burst_on`).
    pub key: &'static str,
    /// The command-line flag without its dashes (`burst-on`).
    pub flag: &'static str,
    /// Another name the `:` line and profiles accept (`kind` for `service_kind`).
    pub alias: Option<&'static str>,
    /// The placeholder in `--help` (`N`, `DUR`).
    pub value_name: &'static str,
    pub kind: ValueKind,
    /// One line of help.
    pub help: &'static str,
    /// Changes while a run goes on (engine command, `:` line, profile phase); otherwise it is
    /// fixed for a run (flag or a profile's `[workload]` only).
    pub live: bool,
    /// A profile phase may ramp it linearly.
    pub ramps: bool,
    /// A value to show in examples (`:workers 16`).
    pub example: &'static str,
    /// The accepted range as help prints it (`None`: a choice or any value).
    pub range: fn() -> Option<String>,
    /// The default as help prints it (`None`: unset by default).
    pub default: fn() -> Option<String>,
}

impl KnobSpec {
    /// The knob named `name` (its key, flag or alias; dashes and underscores alike).
    #[must_use]
    pub fn find(name: &str) -> Option<&'static KnobSpec> {
        let key = name.trim().replace('-', "_");
        KNOBS.iter().find(|s| s.key == key || s.alias == Some(key.as_str()))
    }

    /// What the knob accepts, as help and the README print it: its range, or its choices
    /// joined by `sep` (`None`: any value).
    #[must_use]
    pub fn accepts(&self, sep: &str) -> Option<String> {
        match self.kind {
            ValueKind::Choice(names) => Some(names.trim_end_matches(" | ").replace(" | ", sep)),
            _ => (self.range)(),
        }
    }

    /// The help line with its accepted values and default: `Worker tasks [0 to 100000;
    /// default 4]`, `Arrival process: poisson | constant | … [default poisson]`.
    #[must_use]
    pub fn help_line(&self) -> String {
        self.help_with(self.help, true)
    }

    /// `what` followed by what the knob accepts and, if `with_default`, its default: the help
    /// of a client that describes the knob in its own words (`pooltune model`).
    #[must_use]
    pub fn help_with(&self, what: &str, with_default: bool) -> String {
        let choice = matches!(self.kind, ValueKind::Choice(_));
        let accepts = self.accepts(" | ");
        let text = match (&accepts, choice) {
            (Some(names), true) => format!("{what}: {names}"),
            _ => what.to_string(),
        };
        let parts: Vec<String> =
            [accepts.filter(|_| !choice), (self.default)().filter(|_| with_default).map(|d| format!("default {d}"))]
                .into_iter()
                .flatten()
                .collect();
        if parts.is_empty() { text } else { format!("{text} [{}]", parts.join("; ")) }
    }
}

/// Generates [`Knob`], [`KNOBS`], [`KNOB_NAMES`], the knob methods and `Settings::default()`
/// from one entry per knob.
macro_rules! knobs {
    ($(
        $(#[$doc:meta])*
        $variant:ident($t:ty) {
            key: $key:literal, flag: $flag:literal, alias: $alias:expr, label: $label:literal,
            value_name: $vname:literal, range: ($lo:expr, $hi:expr),
            default: $field:ident = $default:expr, shown: $shown:expr,
            get: $get:expr, set: $set:expr,
            live: $live:literal, ramps: $ramps:literal, example: $example:literal,
            help: $help:literal $(,)?
        }
    ),+ $(,)?) => {
        /// One knob set to one value: the unit of every change, live or replayed.
        #[derive(Debug, Clone, Copy, PartialEq)]
        pub enum Knob { $($(#[$doc])* $variant($t)),+ }

        /// The knob table, in its canonical order (flags, profiles and recordings follow it).
        pub static KNOBS: &[KnobSpec] = &[$(KnobSpec {
            key: $key,
            flag: $flag,
            alias: $alias,
            value_name: $vname,
            kind: <$t as KnobValue>::KIND,
            help: $help,
            live: $live,
            ramps: $ramps,
            example: $example,
            range: || <$t as KnobValue>::range_text($lo, $hi),
            default: || {
                let shown: Option<&str> = $shown;
                let get: fn(&Settings) -> Option<$t> = $get;
                shown.map(String::from).or_else(|| get(&Settings::default()).map(|v| KnobValue::text(&v)))
            },
        }),+];

        /// Every knob's key, in table order.
        pub const KNOB_NAMES: &[&str] = &[$($key),+];

        impl Knob {
            /// Parses `name value`, e.g. `("workers", "16")` or `("service", "3ms")`.
            ///
            /// # Errors
            /// An unknown name (with the nearest known one) or a value out of range.
            pub fn parse(name: &str, value: &str) -> Result<Knob, KnobError> {
                let Some(spec) = KnobSpec::find(name) else { return Err(unknown_knob(name)) };
                let knob = match spec.key {
                    $($key => Knob::$variant(<$t as KnobValue>::parse($key, value, $lo, $hi)?),)+
                    _ => unreachable!("KnobSpec::find returns a row of the table"),
                };
                knob.check()?;
                Ok(knob)
            }

            /// The knob's key as [`Knob::parse`] takes it.
            #[must_use]
            pub fn name(&self) -> &'static str {
                match self { $(Knob::$variant(_) => $key),+ }
            }

            /// The knob's row of the table.
            #[must_use]
            pub fn spec(&self) -> &'static KnobSpec {
                #[allow(dead_code)]
                enum Row { $($variant),+ }
                &KNOBS[match self { $(Knob::$variant(_) => Row::$variant as usize),+ }]
            }

            /// The value as [`Knob::parse`] takes it.
            #[must_use]
            pub fn value_text(&self) -> String {
                match self { $(Knob::$variant(v) => KnobValue::text(v)),+ }
            }

            /// Checks the value on its own (combinations are checked by [`Settings::validate`]).
            ///
            /// # Errors
            /// Why the value is refused and what is accepted.
            pub fn check(&self) -> Result<(), KnobError> {
                match self { $(Knob::$variant(v) => KnobValue::check(v, $label, $lo, $hi)),+ }
            }

            /// Writes the value into `s` (unchecked; see [`Settings::with`]).
            pub fn apply(self, s: &mut Settings) {
                match self { $(Knob::$variant(v) => {
                    let set: fn(&mut Settings, $t) = $set;
                    set(s, v);
                })+ }
            }

            /// Every knob of `s` that holds a value, in table order.
            #[must_use]
            pub fn all_of(s: &Settings) -> Vec<Knob> {
                let mut out = Vec::with_capacity(KNOBS.len());
                $({
                    let get: fn(&Settings) -> Option<$t> = $get;
                    out.extend(get(s).map(Knob::$variant));
                })+
                out
            }

            /// The value, if this knob holds a `T` (for clients that want it typed).
            #[must_use]
            pub fn value<T: Copy + 'static>(&self) -> Option<T> {
                match self { $(Knob::$variant(v) => (v as &dyn std::any::Any).downcast_ref::<T>().copied()),+ }
            }

            /// The value as a number for a ramp (`None`: this knob, or this value, does not ramp).
            #[must_use]
            pub fn ramp_value(&self) -> Option<f64> {
                match self { $(Knob::$variant(v) => if $ramps { KnobValue::numeric(v) } else { None }),+ }
            }

            /// The same knob holding the value nearest `x` that it can take, for a ramp's steps.
            #[must_use]
            pub fn with_ramp_value(&self, x: f64) -> Knob {
                match self { $(Knob::$variant(v) => Knob::$variant(KnobValue::ramped(v, x, $lo))),+ }
            }
        }

        impl Default for Settings {
            fn default() -> Self {
                Settings { $($field: $default),+ }
            }
        }
    };
}

knobs! {
    Workers(usize) {
        key: "workers", flag: "workers", alias: None, label: "workers", value_name: "N",
        range: (0, MAX_WORKERS), default: workers = 4, shown: None,
        get: |s| Some(s.workers), set: |s, v| s.workers = v,
        live: true, ramps: true, example: "16", help: "Worker tasks",
    },
    Adapt(Adapt) {
        key: "adapt", flag: "adapt", alias: None, label: "adapt", value_name: "ALGORITHM",
        range: ((), ()), default: adapt = Adapt::Off, shown: None,
        get: |s| Some(s.adapt), set: |s, v| s.adapt = v,
        live: true, ramps: false, example: "vegas",
        help: "Let a controller set the worker count, between workers_min and workers_max",
    },
    WorkersMin(usize) {
        key: "workers_min", flag: "workers-min", alias: None, label: "workers_min", value_name: "N",
        range: (1, MAX_WORKERS), default: workers_min = 1, shown: None,
        get: |s| Some(s.workers_min), set: |s, v| s.workers_min = v,
        live: true, ramps: false, example: "2", help: "Adaptive: the fewest workers the controller may set",
    },
    WorkersMax(usize) {
        key: "workers_max", flag: "workers-max", alias: None, label: "workers_max", value_name: "N",
        range: (1, MAX_WORKERS), default: workers_max = 1000, shown: None,
        get: |s| Some(s.workers_max), set: |s, v| s.workers_max = v,
        live: true, ramps: false, example: "64", help: "Adaptive: the most workers the controller may set",
    },
    /// `None`: no target.
    SloP99(Option<Duration>) {
        key: "slo_p99", flag: "slo-p99", alias: None, label: "slo_p99", value_name: "DUR",
        range: (Duration::from_micros(1), MAX_TIME), default: slo_p99 = None, shown: None,
        get: |s| Some(s.slo_p99), set: |s, v| s.slo_p99 = v,
        live: true, ramps: false, example: "30ms",
        help: "A p99 response-time target: the slo controller sizes for it; the advisor and the run's attainment use it",
    },
    QueueTarget(f64) {
        key: "queue_target", flag: "queue-target", alias: None, label: "queue_target", value_name: "JOBS",
        range: (0.01, 1_000_000.0), default: queue_target = 1.0, shown: None,
        get: |s| Some(s.queue_target), set: |s, v| s.queue_target = v,
        live: true, ramps: false, example: "2",
        help: "Adaptive queue-length: jobs in the system (waiting and in service) per worker to aim at",
    },
    AdaptBias(f64) {
        key: "adapt_bias", flag: "adapt-bias", alias: None, label: "adapt_bias", value_name: "SHARE",
        range: (0.0, 0.9), default: adapt_bias = 0.15, shown: None,
        get: |s| Some(s.adapt_bias), set: |s, v| s.adapt_bias = v,
        live: true, ramps: false, example: "0.05",
        help: "Adaptive hill-climb: the share of its own throughput a worker must add to be worth adding (0 climbs to the peak)",
    },
    Queue(usize) {
        key: "queue", flag: "queue", alias: None, label: "queue bound", value_name: "N",
        range: (1, MAX_QUEUE), default: queue = 100, shown: None,
        get: |s| Some(s.queue), set: |s, v| s.queue = v,
        live: true, ramps: true, example: "500", help: "Queue bound: waiting places",
    },
    Policy(Policy) {
        key: "policy", flag: "policy", alias: None, label: "policy", value_name: "POLICY",
        range: ((), ()), default: policy = Policy::Block, shown: None,
        get: |s| Some(s.policy), set: |s, v| s.policy = v,
        live: true, ramps: false, example: "reject", help: "What a full queue does with an arrival",
    },
    Arrival(ArrivalKind) {
        key: "arrival", flag: "arrival", alias: None, label: "arrival", value_name: "PROCESS",
        range: ((), ()), default: arrival = ArrivalKind::Poisson, shown: None,
        get: |s| Some(s.arrival), set: |s, v| s.arrival = v,
        live: true, ramps: false, example: "constant", help: "Arrival process",
    },
    Rate(Rate) {
        key: "rate", flag: "rate", alias: None, label: "rate", value_name: "R",
        range: (0.0, MAX_RATE), default: rate = Rate::PerSec(500.0), shown: None,
        get: |s| Some(s.rate), set: |s, v| s.rate = v,
        live: true, ramps: true, example: "2500",
        help: "Arrival rate in jobs/s, or `max` (as fast as the queue accepts)",
    },
    Clients(usize) {
        key: "clients", flag: "clients", alias: None, label: "clients", value_name: "N",
        range: (1, MAX_CLIENTS), default: clients = 8, shown: None,
        get: |s| Some(s.clients), set: |s, v| s.clients = v,
        live: true, ramps: true, example: "32", help: "Closed loop: number of clients",
    },
    Think(Duration) {
        key: "think", flag: "think", alias: None, label: "think", value_name: "DUR",
        range: (Duration::ZERO, MAX_TIME), default: think = Duration::from_millis(10), shown: None,
        get: |s| Some(s.think), set: |s, v| s.think = v,
        live: true, ramps: true, example: "20ms", help: "Closed loop: mean think time between a client's jobs",
    },
    /// `None` in [`Settings::jobs`] (no limit) has no knob value.
    Jobs(u64) {
        key: "jobs", flag: "jobs", alias: None, label: "jobs", value_name: "N",
        range: (1, u64::MAX), default: jobs = None, shown: None,
        get: |s| s.jobs, set: |s, v| s.jobs = Some(v),
        live: true, ramps: false, example: "1000",
        help: "Batch size for `batch`; otherwise end the run once this many jobs are done",
    },
    BurstOn(Duration) {
        key: "burst_on", flag: "burst-on", alias: None, label: "burst_on", value_name: "DUR",
        range: (Duration::from_micros(1), MAX_TIME), default: burst_on = Duration::from_millis(200), shown: None,
        get: |s| Some(s.burst_on), set: |s, v| s.burst_on = v,
        live: true, ramps: true, example: "200ms", help: "Bursty: length of an on-period",
    },
    BurstOff(Duration) {
        key: "burst_off", flag: "burst-off", alias: None, label: "burst_off", value_name: "DUR",
        range: (Duration::ZERO, MAX_TIME), default: burst_off = Duration::from_millis(800), shown: None,
        get: |s| Some(s.burst_off), set: |s, v| s.burst_off = v,
        live: true, ramps: true, example: "800ms", help: "Bursty: length of an off-period",
    },
    Service(Duration) {
        key: "service", flag: "service", alias: None, label: "service", value_name: "DUR",
        range: (Duration::ZERO, MAX_TIME), default: service = Duration::from_millis(5), shown: None,
        get: |s| Some(s.service), set: |s, v| s.service = v,
        live: true, ramps: true, example: "3ms", help: "Mean service time, e.g. 250us, 5ms",
    },
    ServiceDist(ServiceDist) {
        key: "service_dist", flag: "service-dist", alias: None, label: "service_dist", value_name: "DIST",
        range: ((), ()), default: service_dist = ServiceDist::Exponential, shown: None,
        get: |s| Some(s.service_dist), set: |s, v| s.service_dist = v,
        live: true, ramps: false, example: "lognormal", help: "Service distribution",
    },
    ServiceCv(f64) {
        key: "service_cv", flag: "service-cv", alias: None, label: "service_cv", value_name: "X",
        range: (0.0, MAX_CV), default: service_cv = 1.0, shown: None,
        get: |s| Some(s.service_cv), set: |s, v| s.service_cv = v,
        live: true, ramps: true, example: "2",
        help: "Coefficient of variation of service times (uniform, lognormal)",
    },
    ServiceKind(ServiceKind) {
        key: "service_kind", flag: "service-kind", alias: Some("kind"), label: "service_kind", value_name: "KIND",
        range: ((), ()), default: service_kind = ServiceKind::Sleep, shown: None,
        get: |s| Some(s.service_kind), set: |s, v| s.service_kind = v,
        live: true, ramps: false, example: "offload", help: "What a job does",
    },
    Contention(f64) {
        key: "contention", flag: "contention", alias: None, label: "contention", value_name: "SIGMA",
        range: (0.0, 1.0), default: contention = 0.0, shown: None,
        get: |s| Some(s.contention), set: |s, v| s.contention = v,
        live: true, ramps: true, example: "0.05",
        help: "Downstream: contention σ of the Universal Scalability Law (each job stretched by 1 + σ(N−1) + κN(N−1), N jobs inside)",
    },
    Coherency(f64) {
        key: "coherency", flag: "coherency", alias: None, label: "coherency", value_name: "KAPPA",
        range: (0.0, 1.0), default: coherency = 0.0, shown: None,
        get: |s| Some(s.coherency), set: |s, v| s.coherency = v,
        live: true, ramps: true, example: "0.002",
        help: "Downstream: coherency κ of the Universal Scalability Law (throughput peaks at N* = √((1−σ)/κ))",
    },
    Capacity(usize) {
        key: "capacity", flag: "capacity", alias: None, label: "capacity", value_name: "N",
        range: (1, MAX_WORKERS), default: capacity = MAX_WORKERS, shown: Some("no limit"),
        get: |s| Some(s.capacity), set: |s, v| s.capacity = v,
        live: true, ramps: true, example: "8",
        help: "Downstream: jobs it serves at once; more wait inside it, holding their workers",
    },
    /// `None` turns the timeout off.
    Timeout(Option<Duration>) {
        key: "timeout", flag: "timeout", alias: None, label: "timeout", value_name: "DUR",
        range: (Duration::from_micros(1), MAX_TIME), default: timeout = None, shown: None,
        get: |s| Some(s.timeout), set: |s, v| s.timeout = v,
        live: true, ramps: false, example: "50ms",
        help: "Cancel a job still running after this long, counting it as timed out",
    },
    Prefetch(usize) {
        key: "prefetch", flag: "prefetch", alias: None, label: "prefetch", value_name: "N",
        range: (1, MAX_PREFETCH), default: prefetch = 64, shown: None,
        get: |s| Some(s.prefetch), set: |s, v| s.prefetch = v,
        live: true, ramps: false, example: "128",
        help: "Broker: jobs a node pulls ahead of its workers",
    },
    AckWait(Duration) {
        key: "ack_wait", flag: "ack-wait", alias: None, label: "ack_wait", value_name: "DUR",
        range: (Duration::from_millis(10), MAX_TIME), default: ack_wait = Duration::from_secs(30), shown: None,
        get: |s| Some(s.ack_wait), set: |s, v| s.ack_wait = v,
        live: true, ramps: false, example: "5s",
        help: "Broker: a job held unacknowledged this long is delivered again",
    },
    Threads(usize) {
        key: "threads", flag: "threads", alias: None, label: "threads", value_name: "N",
        range: (0, MAX_THREADS), default: threads = 0, shown: Some("0: auto"),
        get: |s| Some(s.threads), set: |s, v| s.threads = v,
        live: false, ramps: false, example: "2",
        help: "Threads of the workload runtime; 0: one per core, one less when arrivals or service are timed",
    },
    Seed(u64) {
        key: "seed", flag: "seed", alias: None, label: "seed", value_name: "N",
        range: (0, u64::MAX), default: seed = 1, shown: None,
        get: |s| Some(s.seed), set: |s, v| s.seed = v,
        live: false, ramps: false, example: "7", help: "Seed of every random draw, so a run's random inputs repeat",
    },
}

impl Knob {
    /// This knob, refused if it cannot change during a run.
    ///
    /// # Errors
    /// The knob is fixed for a run, and where it can be set instead.
    pub fn live(self) -> Result<Knob, KnobError> {
        let spec = self.spec();
        if spec.live { Ok(self) } else { Err(KnobError::Fixed { key: spec.key, flag: spec.flag }) }
    }

    /// The knobs of `after` that differ from `before`: a knob change, as the dashboard marks it
    /// and a recording writes it.
    #[must_use]
    pub fn changed(before: &Settings, after: &Settings) -> Vec<Knob> {
        let old = Knob::all_of(before);
        Knob::all_of(after).into_iter().filter(|k| !old.contains(k)).collect()
    }
}

/// The keys of the knobs that change live, in table order (profile phases, the `:` line).
#[must_use]
pub fn live_names() -> Vec<&'static str> {
    KNOBS.iter().filter(|s| s.live).map(|s| s.key).collect()
}

/// An unknown knob name, with the nearest known one if any is close.
fn unknown_knob(name: &str) -> KnobError {
    KnobError::Unknown {
        name: name.to_string(),
        suggestion: crate::suggest::closest(name, KNOB_NAMES),
        known: KNOB_NAMES,
    }
}

/// The knob table as the README shows it (a test keeps the README equal to this).
#[must_use]
pub fn markdown_table() -> String {
    let mut out = String::from(
        "| knob | flag | accepts | default | live | ramps | what it does |\n|---|---|---|---|---|---|---|\n",
    );
    for s in KNOBS {
        let accepts = s.accepts(", ").unwrap_or_default();
        let yes = |b: bool| if b { "yes" } else { "no" };
        let _ = writeln!(
            out,
            "| `{}` | `--{} {}` | {} | {} | {} | {} | {} |",
            s.key,
            s.flag,
            s.value_name,
            accepts,
            (s.default)().unwrap_or_else(|| "none".into()),
            yes(s.live),
            yes(s.ramps),
            s.help
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knobs_parse_and_print_back() {
        let all =
            Knob::all_of(&Settings { jobs: Some(5), timeout: Some(Duration::from_millis(7)), ..Settings::default() });
        assert_eq!(all.len(), KNOBS.len(), "every knob of the table holds a value here");
        for k in all {
            let again = Knob::parse(k.name(), &k.value_text()).unwrap();
            assert_eq!(again, k);
        }
    }

    #[test]
    fn every_row_names_its_own_variant() {
        for spec in KNOBS {
            let k = Knob::parse(spec.key, spec.example).unwrap_or_else(|e| panic!("{}'s example: {e}", spec.key));
            assert_eq!(k.name(), spec.key);
            assert_eq!(k.spec().key, spec.key, "{}'s spec() is its own row", spec.key);
            assert_eq!(KnobSpec::find(spec.flag).map(|s| s.key), Some(spec.key), "--{} finds its row", spec.flag);
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
            ("threads", "1025", "expected 0 to 1024"),
            ("jobs", "0", "expected at least 1"),
            ("wokers", "3", "did you mean 'workers'"),
        ];
        for (name, value, want) in cases {
            let err = Knob::parse(name, value).unwrap_err().to_string();
            assert!(err.contains(want), "{name} {value}: {err}");
        }
    }

    #[test]
    fn fixed_knobs_are_refused_live() {
        assert!(Knob::Workers(3).live().is_ok());
        let err = Knob::Threads(3).live().unwrap_err();
        assert_eq!(err, KnobError::Fixed { key: "threads", flag: "threads" });
        let err = err.to_string();
        assert!(err.contains("fixed for a run") && err.contains("--threads"), "{err}");
    }
}
