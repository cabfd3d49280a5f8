//! What a run leaves behind: the JSON summary, the CSV series, and writing them so that a file
//! the user owns is never half-written.
//!
//! [`AtomicFile`] writes to a temporary file beside the target and renames it into place only
//! on [`AtomicFile::commit`]; dropped uncommitted (an error, a panic), it removes the temporary
//! file and leaves any earlier version of the target untouched. Depends on no UI crate.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

pub mod account;
pub mod compare;
#[cfg(feature = "report")]
pub mod html;
pub mod slo;
pub mod trace_model;

pub use compare::{ModelReport, model_report};

use crate::engine::RunOptions;
use crate::metrics::{Counters, Distribution, Latency, ResponseSplit, Snapshot};
use crate::settings::{ArrivalKind, Rate, Settings};

/// A file written in full or not at all.
pub struct AtomicFile {
    target: PathBuf,
    temp: PathBuf,
    out: Option<BufWriter<File>>,
}

impl AtomicFile {
    /// Creates the temporary file next to `target` (same directory, so the rename is atomic).
    ///
    /// # Errors
    /// The directory does not exist or cannot be written.
    pub fn create(target: &Path) -> io::Result<AtomicFile> {
        let name = target.file_name().ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, format!("'{}' is not a file name", target.display()))
        })?;
        let dir = target.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let temp = dir.join(format!(".{}.tmp-{}", name.to_string_lossy(), std::process::id()));
        let file = File::create(&temp)?;
        Ok(AtomicFile { target: target.to_path_buf(), temp, out: Some(BufWriter::new(file)) })
    }

    /// Flushes, syncs and renames the file into place.
    ///
    /// # Errors
    /// Any write, sync or rename failure (the target is then left as it was).
    pub fn commit(mut self) -> io::Result<()> {
        let out = self.out.take().ok_or_else(|| io::Error::other("already committed"))?;
        let file = out.into_inner().map_err(io::IntoInnerError::into_error)?;
        file.sync_all()?;
        fs::rename(&self.temp, &self.target)
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.as_mut().ok_or_else(|| io::Error::other("already committed"))?.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.out.as_mut().map_or(Ok(()), Write::flush)
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.out.take().is_some() {
            let _ = fs::remove_file(&self.temp);
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EndedBy {
    Duration,
    Jobs,
    /// A trace's last arrival was offered and served.
    Trace,
    Interrupt,
    Terminate,
    Quit,
}

impl EndedBy {
    /// Why the engine ended a run that no signal or key ended: its job count (every job of a
    /// `jobs`-limited run accounted for before the duration), a trace's end (its last arrival
    /// served, in a run without a duration), or else its duration.
    #[must_use]
    pub fn by_engine(last: &Snapshot, duration: Option<std::time::Duration>) -> EndedBy {
        let empty = last.totals.in_system() == 0 && duration.is_none_or(|d| last.elapsed < d);
        match last.settings.jobs {
            Some(_) if empty => EndedBy::Jobs,
            None if empty && duration.is_none() && last.settings.arrival == ArrivalKind::Trace => EndedBy::Trace,
            _ => EndedBy::Duration,
        }
    }
}

/// The settings and timing a run used.
#[derive(Debug, Clone, Serialize)]
pub struct RunConfig {
    #[serde(flatten)]
    pub settings: Settings,
    pub duration_s: Option<f64>,
    pub warmup_s: f64,
    pub interval_s: f64,
    /// The sample `service_dist = empirical` draws from: its file and its own mean, CV and p99
    /// (filled in from the run's snapshots by [`RunSummary::new`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_sample: Option<std::sync::Arc<crate::model::sample::ServiceSample>>,
}

impl RunConfig {
    #[must_use]
    pub fn new(settings: &Settings, opts: &RunOptions) -> Self {
        Self {
            // What the run starts with: an automatic thread count as the engine makes it.
            settings: settings.clone().resolved(),
            duration_s: opts.duration.map(|d| d.as_secs_f64()),
            warmup_s: opts.warmup.as_secs_f64(),
            interval_s: opts.interval.as_secs_f64(),
            service_sample: None,
        }
    }
}

/// The queue over the measured window: the mean and most of the depth `queue` bounds (over a
/// broker the jobs the stream holds, see [`crate::metrics::QueueView`]), the mean number of jobs
/// waiting for a worker wherever they wait (the model's and Little's queue length), and over a
/// broker where they waited (means).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct DepthSummary {
    pub mean: f64,
    pub max: usize,
    pub waiting_mean: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parts_mean: Option<crate::metrics::QueueParts>,
}

/// The JSON summary of a run. Statistics cover the measured window (after the warm-up); `jobs`
/// counts the whole run so every job is accounted for.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    /// The command line that ran it (empty when the engine ran as a library).
    pub command: Vec<String>,
    /// Length of the measured window, seconds.
    pub duration_s: f64,
    /// Whole run, warm-up included.
    pub elapsed_s: f64,
    pub ended_by: EndedBy,
    pub config: RunConfig,
    /// Settings at the end (they may have changed during the run).
    pub final_settings: Settings,
    pub jobs: Counters,
    pub measured_jobs: Counters,
    pub offered_per_s: f64,
    pub throughput_per_s: f64,
    #[serde(flatten)]
    pub latency: Latency,
    /// The response time's percentile distribution over the measured window.
    pub latency_distribution_ms: Distribution,
    /// Where the mean response time went.
    pub response_split_ms: ResponseSplit,
    /// The mean response split exactly into theory at the configured inputs, randomness,
    /// lateness, inflation and the pool's overhead ([`account`]); absent when there is none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<account::Account>,
    /// Latency of the jobs that failed (error, timeout, panic), apart from the successes'.
    pub failed_latency_ms: crate::metrics::Summary,
    /// The latest failure messages.
    pub recent_errors: Vec<String>,
    /// The workers ran your own job (the service knobs did not apply).
    pub custom_work: bool,
    /// With `--target`: responses by status and errors.
    #[cfg(feature = "http")]
    pub http: Option<crate::http::HttpReport>,
    pub queue_depth: DepthSummary,
    /// Mean time in the queue itself (start − enqueue).
    pub queued_ms_mean: f64,
    pub utilisation: f64,
    pub service_cv: f64,
    pub arrival_cv: f64,
    /// Coefficient of variation of the gaps between enqueues (the arrivals as the queue saw them).
    pub enqueue_cv: f64,
    /// How late jobs entered the queue (enqueued − intended), in µs.
    pub lag_us: crate::metrics::Micros,
    /// How long a job and a free worker both existed before they met, in µs: the engine's
    /// hand-off, which an ideal queue does not have.
    pub handoff_us: crate::metrics::Micros,
    /// The workload runtime over the measured window (tokio-metrics).
    pub runtime: crate::metrics::RuntimeStats,
    /// Snapshot ticks the writer could not keep up with (0 in a healthy run).
    pub missed_ticks: u64,
    pub model: Option<ModelReport>,
    /// A broker run: the broker and what it did (absent otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broker: Option<crate::metrics::BrokerView>,
    /// A broker run's worker nodes (absent on a run without a broker).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nodes: Option<Vec<crate::metrics::NodeView>>,
    /// Who set the worker count, and what the pool spent over the measured window.
    pub adapt: AdaptSummary,
}

/// The worker count over the measured window: set by an adaptive controller (`algorithm`, the
/// one at the end) or by hand (`off`), its least, most and time-weighted mean, the ticks at which
/// it changed, and the worker-seconds spent (a static pool spends workers × duration). With a
/// p99 target, the attainment and the static and hindsight references ([`slo`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AdaptSummary {
    pub algorithm: crate::settings::Adapt,
    pub limit_min: usize,
    pub limit_max: usize,
    pub limit_mean: f64,
    pub changes: u64,
    pub worker_seconds: f64,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub references: Option<slo::References>,
}

impl AdaptSummary {
    #[must_use]
    pub fn of(last: &Snapshot) -> AdaptSummary {
        let w = &last.measured.workers;
        AdaptSummary {
            algorithm: last.settings.adapt,
            limit_min: w.min,
            limit_max: w.max,
            limit_mean: w.mean,
            changes: w.changes,
            worker_seconds: w.worker_seconds,
            references: None,
        }
    }
}

impl RunSummary {
    #[must_use]
    pub fn new(last: &Snapshot, mut config: RunConfig, ended_by: EndedBy, missed_ticks: u64) -> Self {
        let m = &last.measured;
        config.service_sample.clone_from(&last.service_sample);
        Self {
            command: Vec::new(),
            duration_s: m.duration_s,
            elapsed_s: last.elapsed.as_secs_f64(),
            ended_by,
            config,
            final_settings: last.settings.clone(),
            jobs: last.totals,
            measured_jobs: m.jobs,
            offered_per_s: m.offered_per_s,
            throughput_per_s: m.throughput_per_s,
            latency: m.latency,
            latency_distribution_ms: m.latency_distribution,
            response_split_ms: ResponseSplit::of(m, last.broker.as_ref()),
            account: account::of(last),
            failed_latency_ms: m.failed_latency,
            recent_errors: last.recent_errors.clone(),
            custom_work: last.custom_work,
            #[cfg(feature = "http")]
            http: None,
            queue_depth: DepthSummary {
                mean: m.queue_depth_mean,
                max: m.queue_depth_max,
                waiting_mean: m.queue_waiting_mean,
                parts_mean: m.queue_parts_mean,
            },
            queued_ms_mean: m.queued_ms_mean,
            utilisation: m.utilisation,
            service_cv: m.service_cv,
            arrival_cv: m.arrival_cv,
            enqueue_cv: m.enqueue_cv,
            lag_us: m.lag_us,
            handoff_us: m.handoff_us,
            runtime: m.runtime,
            missed_ticks,
            model: None,
            nodes: last.broker.is_some().then(|| last.nodes.clone()),
            broker: last.broker.clone(),
            adapt: AdaptSummary::of(last),
        }
    }
}

/// The per-tick CSV series, streamed as snapshots arrive to an [`AtomicFile`] (memory does not
/// grow with the run) or kept in memory for a report, counting ticks the writer never saw.
pub struct SeriesWriter<W: Write = AtomicFile> {
    out: W,
    last_tick: u64,
    /// Ticks that were published but never reached the writer (latest-wins snapshots).
    pub missed: u64,
}

impl SeriesWriter<AtomicFile> {
    /// Opens the file and writes the header.
    ///
    /// # Errors
    /// The file cannot be created or written.
    pub fn create(path: &Path) -> io::Result<Self> {
        Self::on(AtomicFile::create(path)?)
    }

    /// Renames the finished series into place.
    ///
    /// # Errors
    /// The flush, sync or rename failed.
    pub fn commit(self) -> io::Result<()> {
        self.out.commit()
    }
}

impl SeriesWriter<Vec<u8>> {
    /// A series kept in memory (for `--report`).
    #[must_use]
    pub fn in_memory() -> Self {
        Self::on(Vec::new()).expect("writing to memory does not fail")
    }

    /// The CSV text.
    #[must_use]
    pub fn text(self) -> String {
        String::from_utf8_lossy(&self.out).into_owned()
    }
}

impl<W: Write> SeriesWriter<W> {
    fn on(mut out: W) -> io::Result<Self> {
        writeln!(out, "{CSV_HEADER}")?;
        Ok(Self { out, last_tick: 0, missed: 0 })
    }

    /// Writes the row for a snapshot (once per tick; a repeated tick is skipped).
    ///
    /// # Errors
    /// The write failed.
    pub fn write(&mut self, s: &Snapshot) -> io::Result<()> {
        if s.tick <= self.last_tick {
            return Ok(());
        }
        self.missed += s.tick.saturating_sub(self.last_tick + 1);
        self.last_tick = s.tick;
        writeln!(self.out, "{}", csv_row(s))
    }
}

/// The CSV header; the first fifteen columns are the documented minimum, the rest extend it.
/// Over a broker `queue_depth` is the jobs the stream holds (what `queue_bound` bounds) and
/// `queue_outbox`, `queue_stream`, `queue_held` are where the jobs waiting for a worker are (0
/// without a broker).
pub const CSV_HEADER: &str = "t_s,offered_per_s,completed_per_s,rejected_per_s,dropped_per_s,queue_depth,in_flight,busy_workers,workers,queue_bound,rate,service_mean_ms,latency_p50_ms,latency_p99_ms,latency_max_ms,failed_per_s,queue_depth_mean,queue_depth_max,utilisation,wait_p50_ms,wait_p99_ms,service_p50_ms,service_p99_ms,live_workers,producer_lag_ms,paused,policy,arrival,service_kind,rt_workers,rt_busy_ratio,rt_global_queue_depth,rt_live_tasks,rt_park_count,rt_mean_scheduled_delay_us,rt_mean_poll_us,rt_slow_poll_ratio,node_workers,nodes_live,nodes_lost,redelivered,duplicates,publish_retries,ack_pending_max,adapt,limit,broker_down_s,queue_outbox,queue_stream,queue_held";

/// One CSV row for one tick.
#[must_use]
pub fn csv_row(s: &Snapshot) -> String {
    let st = &s.settings;
    let rate = match st.rate {
        Rate::Max => "max".to_string(),
        Rate::PerSec(r) => format!("{r}"),
    };
    let l = &s.latency;
    // A broker run's columns (0 on a run without one, so the header never changes).
    let b = s.broker.as_ref();
    let parts = s.queue.parts.unwrap_or_default();
    format!(
        "{:.3},{:.1},{:.1},{:.1},{:.1},{},{},{},{},{},{},{:.3},{:.3},{:.3},{:.3},{:.1},{:.2},{},{:.4},{:.3},{:.3},{:.3},{:.3},{},{:.3},{},{},{},{},{},{:.4},{},{},{},{:.1},{:.1},{:.4},{},{},{},{},{},{},{},{},{},{:.1},{},{},{}",
        s.elapsed.as_secs_f64(),
        s.rates.offered,
        s.rates.completed,
        s.rates.rejected,
        s.rates.dropped,
        s.queue.depth,
        s.in_flight,
        s.busy_workers,
        st.workers,
        st.queue,
        rate,
        st.service.as_secs_f64() * 1e3,
        l.response.p50,
        l.response.p99,
        l.response.max,
        s.rates.failed,
        s.queue.mean,
        s.queue.max,
        s.utilisation,
        l.wait.p50,
        l.wait.p99,
        l.service.p50,
        l.service.p99,
        s.live_workers,
        s.producer_lag.as_secs_f64() * 1e3,
        u8::from(s.paused),
        st.policy,
        st.arrival,
        st.service_kind,
        s.runtime.workers,
        s.runtime.busy_ratio,
        s.runtime.global_queue_depth,
        s.runtime.live_tasks,
        s.runtime.park_count,
        s.runtime.mean_scheduled_delay_us,
        s.runtime.mean_poll_us,
        s.runtime.slow_poll_ratio,
        s.remote_workers,
        s.nodes.iter().filter(|n| !n.lost && !n.finished).count(),
        s.nodes.iter().filter(|n| n.lost).count(),
        b.map_or(0, |b| b.redelivered),
        b.map_or(0, |b| b.duplicates),
        b.map_or(0, |b| b.publish_retries),
        b.map_or(0, |b| b.ack_pending_max),
        st.adapt,
        s.adapt.map_or_else(String::new, |a| format!("{:.2}", a.limit)),
        b.filter(|b| !b.link.connected).map_or(0.0, |b| b.link.outage_ms / 1e3),
        parts.outbox,
        parts.stream,
        parts.held,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_ends_by_its_jobs_only_when_they_finished_it() {
        use std::time::Duration;
        let mut last = Snapshot::initial(Settings { jobs: Some(10), ..Settings::default() });
        last.totals.offered = 10;
        last.totals.completed = 10;
        last.elapsed = Duration::from_secs(3);
        assert_eq!(EndedBy::by_engine(&last, Some(Duration::from_secs(5))), EndedBy::Jobs);
        assert_eq!(EndedBy::by_engine(&last, None), EndedBy::Jobs);
        // The duration ran out first (or as the last job ended): the duration ended it.
        last.elapsed = Duration::from_secs(5);
        assert_eq!(EndedBy::by_engine(&last, Some(Duration::from_secs(5))), EndedBy::Duration);
        // Jobs still in the system when the engine stopped: not ended by the job count.
        last.elapsed = Duration::from_secs(3);
        last.totals.offered = 12;
        assert_eq!(EndedBy::by_engine(&last, Some(Duration::from_secs(5))), EndedBy::Duration);
        last.settings.jobs = None;
        assert_eq!(EndedBy::by_engine(&last, None), EndedBy::Duration);
    }

    #[test]
    fn atomic_file_replaces_whole_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.json");
        fs::write(&path, "old").unwrap();
        {
            let mut f = AtomicFile::create(&path).unwrap();
            f.write_all(b"half").unwrap();
            // Dropped without commit: the old file stays and no temporary is left.
        }
        assert_eq!(fs::read_to_string(&path).unwrap(), "old");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        let mut f = AtomicFile::create(&path).unwrap();
        f.write_all(b"new").unwrap();
        f.commit().unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    /// Each column is checked by name against a snapshot whose every field holds a different
    /// value, so two columns swapped (or one dropped) fail here.
    #[test]
    fn every_csv_column_holds_its_own_field() {
        use std::time::Duration;

        use crate::metrics::{QueueView, Rates, RuntimeStats, Summary};
        use crate::settings::{ArrivalKind, Policy, ServiceKind};
        let settings = Settings {
            workers: 7,
            queue: 11,
            rate: Rate::PerSec(13.0),
            service: Duration::from_millis(17),
            policy: Policy::Reject,
            arrival: ArrivalKind::Bursty,
            service_kind: ServiceKind::Spin,
            adapt: crate::settings::Adapt::Gradient2,
            ..Settings::default()
        };
        let mut s = Snapshot::initial(settings);
        s.adapt = Some(crate::adapt::AdaptView {
            algorithm: crate::settings::Adapt::Gradient2,
            limit: 179.25,
            windows: 0,
            state: crate::adapt::State::Starting,
        });
        s.elapsed = Duration::from_millis(1500);
        s.rates = Rates { offered: 19.0, started: 0.0, completed: 23.0, failed: 29.0, rejected: 31.0, dropped: 37.0 };
        let parts = Some(crate::metrics::QueueParts { outbox: 191.0, stream: 193.0, held: 197.0 });
        s.queue = QueueView { depth: 41, mean: 43.0, max: 47, bound: 11, parts };
        (s.in_flight, s.busy_workers, s.live_workers, s.utilisation) = (53, 59, 61, 0.67);
        let summary = |p50: f64, p99: f64, max: f64| Summary { p50, p99, max, ..Summary::default() };
        s.latency.response = summary(71.0, 73.0, 79.0);
        s.latency.wait = summary(83.0, 89.0, 0.0);
        s.latency.service = summary(97.0, 101.0, 0.0);
        s.producer_lag = Duration::from_millis(103);
        s.paused = true;
        s.runtime = RuntimeStats {
            workers: 107,
            busy_ratio: 0.109,
            global_queue_depth: 113,
            live_tasks: 127,
            park_count: 131,
            mean_scheduled_delay_us: 137.0,
            mean_poll_us: 139.0,
            slow_poll_ratio: 0.149,
            ..RuntimeStats::default()
        };
        s.remote_workers = 151;
        let node = |lost| crate::metrics::NodeView { lost, ..Default::default() };
        s.nodes = vec![node(false), node(true), node(true)];
        s.broker = Some(crate::metrics::BrokerView {
            redelivered: 157,
            duplicates: 163,
            publish_retries: 167,
            ack_pending_max: 173,
            link: crate::metrics::LinkView { connected: false, outage_ms: 181_000.0, ..Default::default() },
            ..Default::default()
        });
        let want = [
            ("t_s", "1.500"),
            ("offered_per_s", "19.0"),
            ("completed_per_s", "23.0"),
            ("rejected_per_s", "31.0"),
            ("dropped_per_s", "37.0"),
            ("queue_depth", "41"),
            ("in_flight", "53"),
            ("busy_workers", "59"),
            ("workers", "7"),
            ("queue_bound", "11"),
            ("rate", "13"),
            ("service_mean_ms", "17.000"),
            ("latency_p50_ms", "71.000"),
            ("latency_p99_ms", "73.000"),
            ("latency_max_ms", "79.000"),
            ("failed_per_s", "29.0"),
            ("queue_depth_mean", "43.00"),
            ("queue_depth_max", "47"),
            ("utilisation", "0.6700"),
            ("wait_p50_ms", "83.000"),
            ("wait_p99_ms", "89.000"),
            ("service_p50_ms", "97.000"),
            ("service_p99_ms", "101.000"),
            ("live_workers", "61"),
            ("producer_lag_ms", "103.000"),
            ("paused", "1"),
            ("policy", "reject"),
            ("arrival", "bursty"),
            ("service_kind", "spin"),
            ("rt_workers", "107"),
            ("rt_busy_ratio", "0.1090"),
            ("rt_global_queue_depth", "113"),
            ("rt_live_tasks", "127"),
            ("rt_park_count", "131"),
            ("rt_mean_scheduled_delay_us", "137.0"),
            ("rt_mean_poll_us", "139.0"),
            ("rt_slow_poll_ratio", "0.1490"),
            ("node_workers", "151"),
            ("nodes_live", "1"),
            ("nodes_lost", "2"),
            ("redelivered", "157"),
            ("duplicates", "163"),
            ("publish_retries", "167"),
            ("ack_pending_max", "173"),
            ("adapt", "gradient2"),
            ("limit", "179.25"),
            ("broker_down_s", "181.0"),
            ("queue_outbox", "191"),
            ("queue_stream", "193"),
            ("queue_held", "197"),
        ];
        let header: Vec<&str> = CSV_HEADER.split(',').collect();
        let row = csv_row(&s);
        let cells: Vec<&str> = row.split(',').collect();
        assert_eq!(header.len(), want.len(), "a column without a check here");
        assert_eq!(cells.len(), header.len(), "{row}");
        for (name, value) in want {
            let i = header.iter().position(|h| *h == name).unwrap_or_else(|| panic!("no column {name}"));
            assert_eq!(cells[i], value, "column {name}");
        }
    }
}
