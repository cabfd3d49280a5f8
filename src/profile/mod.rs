//! Profiles: saved workloads as TOML timelines. A profile sets the starting knobs, how the run
//! is timed, and phases that change knobs at time offsets (at once, or ramped linearly).
//!
//! - [`parse`]: text → [`Profile`], every error as `FILE:LINE:COL: message`.
//! - [`timeline`]: replays the phases against a running engine, tick by tick.
//! - [`record`]: turns a live session back into a profile.
//! - [`library`]: the shipped profiles and finding one by path or name.
//!
//! Keys mirror the command-line flags, and values go through the same [`Knob`] parser, so a
//! profile accepts and refuses exactly what the command line does. Depends on no UI crate.

pub mod arrivals;
pub mod library;
pub mod parse;
pub mod record;
pub mod sample;
pub mod timeline;

use std::time::Duration;

use crate::settings::{Knob, Settings};

/// A workload to replay.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub name: String,
    pub description: String,
    /// The starting knobs the profile sets (those fixed for a run, such as `threads`, too), in
    /// [`crate::settings::KNOB_NAMES`] order (they apply together, so order carries no meaning);
    /// the rest keep their defaults or flags.
    pub workload: Vec<Knob>,
    pub run: RunSpec,
    pub phases: Vec<Phase>,
    /// The trace it replays (`[arrivals]`), if any.
    pub arrivals: Option<arrivals::ProfileArrivals>,
    /// The sample `service_dist = "empirical"` draws from (`[service_sample]`), if any.
    pub service_sample: Option<sample::ProfileSample>,
}

/// The profile's `[run]` table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunSpec {
    pub duration: Option<Duration>,
    pub warmup: Option<Duration>,
    pub tick: Option<Duration>,
}

/// At `at`, set these knobs (or move them linearly over `ramp`).
#[derive(Debug, Clone, PartialEq)]
pub struct Phase {
    pub at: Duration,
    pub ramp: Option<Duration>,
    pub knobs: Vec<Knob>,
}

impl Profile {
    /// The starting settings: `base` with the profile's workload applied.
    ///
    /// # Errors
    /// The combination is invalid (each value alone was checked when parsing).
    pub fn settings(&self, base: &Settings) -> Result<Settings, crate::settings::SettingsError> {
        let mut s = self.starting(base);
        s.fill_batch_size();
        s.validate()?;
        Ok(s)
    }

    /// `base` with the profile's `[workload]` applied, not yet checked (flags may still
    /// override it).
    #[must_use]
    pub fn starting(&self, base: &Settings) -> Settings {
        let mut s = base.clone();
        for k in &self.workload {
            k.apply(&mut s);
        }
        s
    }

    /// The same profile with every time offset and run length divided by `factor` (service
    /// times are left alone): long profiles run in seconds in the tests.
    #[must_use]
    pub fn time_scaled(&self, factor: f64) -> Profile {
        let f = |d: Duration| Duration::from_secs_f64(d.as_secs_f64() / factor);
        let mut p = self.clone();
        p.run.duration = p.run.duration.map(f);
        p.run.warmup = p.run.warmup.map(f);
        for ph in &mut p.phases {
            ph.at = f(ph.at);
            ph.ramp = ph.ramp.map(f);
        }
        p
    }
}
