//! What follows a run's snapshots besides the screen, for the headless runner and the dashboard
//! alike: the CSV series, a profile's timeline, the recorder, and the series an HTML report
//! needs (kept in memory, as the CSV file would hold it).

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context;

use super::BadInput;
use super::finish::{open, open_series};
use crate::engine::{Command, EngineError, EngineHandle};
use crate::metrics::Snapshot;
use crate::profile::record::{Recorder, to_toml};
use crate::profile::timeline::Timeline;
use crate::profile::{Profile, RunSpec};
use crate::report::{AtomicFile, SeriesWriter};
use crate::settings::{Adapt, Knob, Settings};

pub struct Driver {
    pub csv: Option<SeriesWriter>,
    pub timeline: Option<Timeline>,
    recording: Option<(Recorder, AtomicFile, PathBuf, String)>,
    report: Option<(AtomicFile, PathBuf, SeriesWriter<Vec<u8>>)>,
}

/// What is left to write once the run's summary exists: the report, made from the summary's
/// JSON and the series.
pub struct PendingReport {
    file: AtomicFile,
    pub path: PathBuf,
    series: String,
}

impl PendingReport {
    /// Makes the report from the run's JSON text and writes it whole.
    ///
    /// # Errors
    /// The page could not be made or written.
    pub fn write(self, json: &str) -> Result<PathBuf, super::Failure> {
        super::report_cmd::write(self.file, json, Some(&self.series))?;
        Ok(self.path)
    }
}

impl Driver {
    /// Opens the outputs (so a bad path is reported before the run starts).
    ///
    /// # Errors
    /// [`BadInput`] for a file that cannot be written.
    pub fn new(
        csv: Option<&std::path::Path>,
        report: Option<&std::path::Path>,
        record: Option<&std::path::Path>,
        profile: Option<&Profile>,
        start: &Settings,
        run: RunSpec,
        tick: std::time::Duration,
    ) -> Result<Self, BadInput> {
        let recording = record
            .map(|path| {
                let file = open(path, "recording")?;
                let name =
                    path.file_stem().map_or_else(|| "recorded".to_string(), |s| s.to_string_lossy().into_owned());
                Ok::<_, BadInput>((Recorder::new(start, run, tick), file, path.to_path_buf(), name))
            })
            .transpose()?;
        let report = report
            .map(|p| Ok::<_, BadInput>((open(p, "report")?, p.to_path_buf(), SeriesWriter::in_memory())))
            .transpose()?;
        Ok(Self {
            report,
            csv: csv.map(open_series).transpose()?,
            timeline: profile.filter(|p| !p.phases.is_empty()).map(|p| Timeline::new(p.phases.clone(), tick)),
            recording,
        })
    }

    /// Feeds one snapshot to the outputs and sends the timeline's due changes; returns the
    /// refusals to show (a phase value the running settings cannot take).
    ///
    /// # Errors
    /// Writing the series failed.
    pub fn on_snapshot(&mut self, snap: &Snapshot, engine: &EngineHandle) -> anyhow::Result<Vec<String>> {
        if let Some(c) = self.csv.as_mut() {
            c.write(snap).context("writing the CSV file")?;
        }
        if let Some((.., kept)) = self.report.as_mut() {
            kept.write(snap)?;
        }
        if let Some((r, ..)) = self.recording.as_mut() {
            r.observe(snap);
        }
        let mut refused = Vec::new();
        if let (Some(t), false) = (self.timeline.as_mut(), snap.finished) {
            for k in t.due(snap.elapsed, &snap.settings) {
                // An adaptive controller owns the worker count while it runs: a timeline's
                // counts (a recording's are the controller's own decisions) are left out.
                if matches!(k, Knob::Workers(_)) && snap.settings.adapt != Adapt::Off {
                    continue;
                }
                match engine.try_send(Command::Set(k)) {
                    Ok(()) | Err(EngineError::Stopped) => {}
                    Err(e) => refused.push(format!("timeline: {} {}: {e}", k.name(), k.value_text())),
                }
            }
        }
        Ok(refused)
    }

    /// Writes what the run leaves: the rest of the series and the recording, each whole; the
    /// report is left for when the summary exists.
    ///
    /// # Errors
    /// A write, sync or rename failed.
    pub fn finish(self, last: &Snapshot) -> anyhow::Result<Finished> {
        if let Some(mut c) = self.csv {
            c.write(last).context("writing the CSV file")?;
            c.commit().context("writing the CSV file")?;
        }
        let report = match self.report {
            Some((file, path, mut kept)) => {
                kept.write(last)?;
                Some(PendingReport { file, path, series: kept.text() })
            }
            None => None,
        };
        let Some((mut r, mut file, path, name)) = self.recording else {
            return Ok(Finished { recorded: None, report });
        };
        r.observe(last);
        let p = r.profile(&name, "Recorded with pooltune run --record; replay with pooltune run FILE.", last.elapsed);
        file.write_all(to_toml(&p).as_bytes()).context("writing the recording")?;
        file.commit().context("writing the recording")?;
        Ok(Finished { recorded: Some(path), report })
    }

    /// The run replays this trace: a recording names it in `[arrivals]`.
    pub fn record_arrivals(&mut self, a: Option<crate::profile::arrivals::ProfileArrivals>) {
        if let Some((r, ..)) = self.recording.as_mut() {
            r.set_arrivals(a);
        }
    }

    /// The run draws from this sample: a recording names it in `[service_sample]`.
    pub fn record_service_sample(&mut self, s: Option<crate::profile::sample::ProfileSample>) {
        if let Some((r, ..)) = self.recording.as_mut() {
            r.set_service_sample(s);
        }
    }

    pub fn missed_ticks(&self) -> u64 {
        self.csv.as_ref().map(|c| c.missed).or_else(|| self.report.as_ref().map(|r| r.2.missed)).unwrap_or(0)
    }
}

/// What [`Driver::finish`] leaves: where the recording went, and the report still to write.
pub struct Finished {
    pub recorded: Option<PathBuf>,
    pub report: Option<PendingReport>,
}
