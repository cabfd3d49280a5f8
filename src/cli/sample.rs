//! `--service-sample FILE` and its flags, shared by `run`, `sweep` and `model`: reading the
//! sample (every bad input an exit-2 line before anything starts), and the settings a run with a
//! sample starts with (`service_dist = empirical` unless another was named, and the `service`
//! knob at the sample's mean unless it was given).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use super::BadInput;
use crate::model::sample::ServiceSample;
use crate::profile::sample::ProfileSample;
use crate::settings::{Knob, ServiceDist, Settings};
use crate::trace::{self, SampleSpec, TimeUnit};

/// The fields are the flags' names (clap derives one from the other), hence their prefix.
#[derive(Debug, Clone, Default, Args)]
#[allow(clippy::struct_field_names)]
pub struct SampleArgs {
    /// Draw service times from this sample (--service-dist empirical): a file of durations, one
    /// per line or a column of CSV/TSV/JSON lines, or a pooltune run's JSON; see the README's
    /// "Your own traffic"
    #[arg(long, value_name = "FILE")]
    pub service_sample: Option<PathBuf>,
    /// The sample's column (a CSV/TSV header name or number, or a JSON-lines field) [default:
    /// one named service…, duration…, latency…, elapsed…, else the first holding a number]
    #[arg(long, value_name = "NAME", requires = "service_sample")]
    pub service_sample_column: Option<String>,
    /// The unit of the sample's bare numbers: s, ms, us or ns [default: none; values carry a
    /// unit, e.g. 12ms]
    #[arg(long, value_name = "UNIT", requires = "service_sample", value_parser = unit)]
    pub service_sample_unit: Option<TimeUnit>,
}

fn unit(s: &str) -> Result<TimeUnit, String> {
    trace::parse_unit(s)
}

impl SampleArgs {
    /// The sample as a profile's `[service_sample]` would name it: the flags' file, or the
    /// profile's own when no `--service-sample` is given.
    #[must_use]
    pub fn source(&self, profile: Option<&ProfileSample>) -> Option<ProfileSample> {
        match &self.service_sample {
            Some(path) => Some(ProfileSample {
                spec: SampleSpec {
                    path: path.clone(),
                    column: self.service_sample_column.clone(),
                    unit: self.service_sample_unit,
                },
            }),
            None => profile.cloned(),
        }
    }

    /// Reads the sample, if one is given (by these flags, or else by the profile).
    ///
    /// # Errors
    /// [`BadInput`]: the file, the line and what was expected.
    pub fn load(&self, profile: Option<&ProfileSample>) -> Result<Option<Arc<ServiceSample>>, BadInput> {
        let Some(source) = self.source(profile) else { return Ok(None) };
        source.load().map(|s| Some(Arc::new(s))).map_err(BadInput)
    }
}

/// The settings a run with `sample` starts with: `service_dist = empirical` unless `named`
/// (the flags, then the profile's starting knobs) names another distribution, which keeps the
/// sample for a later switch; and with `empirical`, the `service` knob at the sample's mean
/// (to the microsecond) unless `named` sets it, which then scales the sample.
///
/// # Errors
/// A sample beside a trace's own service times (`trace_service`), which would never be drawn.
pub fn sample_settings(
    mut s: Settings,
    named: &[Knob],
    sample: &ServiceSample,
    trace_service: bool,
) -> Result<Settings, BadInput> {
    if trace_service {
        return Err(BadInput(
            "--service-sample draws each job's time from a sample, and --service-column gives each arrival its own; give one".into(),
        ));
    }
    if !named.iter().any(|k| matches!(k, Knob::ServiceDist(_))) {
        s.service_dist = ServiceDist::Empirical;
    }
    let service_named = named.iter().any(|k| matches!(k, Knob::Service(_)));
    if s.service_dist == ServiceDist::Empirical && !service_named {
        // To the microsecond, the timer's resolution (and the knob's).
        s.service = Duration::from_micros((sample.mean().as_secs_f64() * 1e6).round() as u64);
    }
    s.validate().map_err(BadInput::from)?;
    Ok(s)
}

/// `pooltune model`'s sample, read and checked against the flags beside it: with one, the
/// distribution is `empirical` (`dist` may say so or be left out; `cv` is the sample's own).
///
/// # Errors
/// `--service-dist empirical` without a sample, a sample beside `--service-cv` or another
/// distribution, or a sample that cannot be read.
pub fn model_sample(
    a: &SampleArgs,
    dist: Option<ServiceDist>,
    cv: Option<f64>,
) -> Result<Option<Arc<ServiceSample>>, BadInput> {
    let sample = a.load(None)?;
    match (&sample, dist, cv) {
        (None, Some(ServiceDist::Empirical), _) => Err(BadInput(
            "--service-dist empirical draws service times from a sample: give --service-sample FILE (a file of durations, or a pooltune run's JSON)".into(),
        )),
        (Some(_), _, Some(_)) => {
            Err(BadInput("--service-cv and --service-sample both set the service times' spread; give one".into()))
        }
        (Some(_), Some(d), _) if d != ServiceDist::Empirical => Err(BadInput(format!(
            "--service-sample is drawn by --service-dist empirical, not {d}; leave --service-dist out"
        ))),
        _ => Ok(sample),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_makes_the_distribution_empirical_at_its_mean_unless_named() {
        let sample = ServiceSample::from_values("s", vec![2_000_000, 4_000_000, 12_000_000]).unwrap();
        let s = sample_settings(Settings::default(), &[], &sample, false).unwrap();
        assert_eq!((s.service_dist, s.service), (ServiceDist::Empirical, Duration::from_millis(6)));
        // A service given (the flags are applied before) stays, and scales the sample.
        let given = Settings { service: Duration::from_millis(3), ..Settings::default() };
        let s = sample_settings(given, &[Knob::Service(Duration::from_millis(3))], &sample, false).unwrap();
        assert_eq!((s.service_dist, s.service), (ServiceDist::Empirical, Duration::from_millis(3)));
        // Another distribution named keeps the knob, and the sample for a later switch.
        let named = [Knob::ServiceDist(ServiceDist::Lognormal)];
        let given = Settings { service_dist: ServiceDist::Lognormal, ..Settings::default() };
        let s = sample_settings(given, &named, &sample, false).unwrap();
        assert_eq!((s.service_dist, s.service), (ServiceDist::Lognormal, Duration::from_millis(5)));
        let err = sample_settings(Settings::default(), &[], &sample, true).unwrap_err();
        assert!(err.0.contains("--service-column"), "{err}");
    }
}
