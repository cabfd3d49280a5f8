//! Why settings were refused: [`KnobError`] for one knob's name or value, [`SettingsError`]
//! for a whole set of settings.
//!
//! `Display` is the one-line message a user sees (naming what was wrong and what is accepted);
//! the variant is what a caller branches on: the `:` line and the engine tell a knob that is
//! fixed for a run ([`KnobError::Fixed`]) from a bad value, the `run` flags offer their own
//! alternatives only for a value that is not one of the knob's ([`KnobError::Malformed`]), and
//! every client treats all of these as the user's input (exit status 2), never as a failure of
//! the run.

/// Why a knob, or a value for one, was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum KnobError {
    /// No knob is called `name`; `suggestion` is the nearest of the `known` keys.
    #[error(
        "unknown setting '{name}'{} Known settings: {}",
        suggestion.map(|b| format!("; did you mean '{b}'?")).unwrap_or_default(),
        known.join(", ")
    )]
    Unknown { name: String, suggestion: Option<&'static str>, known: &'static [&'static str] },
    /// The text is not a value of the knob's type at all (`'fast' is not a rate`); the message
    /// names the knob and what is accepted.
    #[error("{0}")]
    Malformed(String),
    /// A value of the right type outside the knob's range: `{label} {value} {verdict};
    /// expected {expected}`.
    #[error("{label} {value} {verdict}; expected {expected}")]
    OutOfRange { label: &'static str, value: String, verdict: &'static str, expected: String },
    /// The knob holds for a whole run; it is set by its flag or a profile's `[workload]`.
    #[error("{key} is fixed for a run; set it with --{flag} or in a profile's [workload]")]
    Fixed { key: &'static str, flag: &'static str },
}

/// Why a set of settings was refused: one knob, or a combination of knobs.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SettingsError {
    #[error(transparent)]
    Knob(#[from] KnobError),
    /// A uniform distribution this wide would need negative service times.
    #[error(
        "service_cv {cv} is too high for a uniform distribution (it would need negative times); expected at most {max:.3}"
    )]
    UniformTooWide { cv: f64, max: f64 },
    /// `batch` arrivals with no batch size.
    #[error("arrival 'batch' needs a batch size; set jobs (e.g. --jobs 100)")]
    BatchWithoutSize,
    /// An adaptive controller's range that holds no worker count.
    #[error("workers_min {min} is above workers_max {max}; expected workers_min <= workers_max")]
    WorkersRange { min: usize, max: usize },
    /// The `slo` controller with nothing to size for.
    #[error("adapt 'slo' needs a p99 target; set slo_p99 (e.g. --slo-p99 30ms)")]
    SloWithoutTarget,
}
