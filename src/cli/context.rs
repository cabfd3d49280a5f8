//! [`RunContext`]: what a run carries besides its settings and timing, built once in
//! `cli::run` and passed down to the headless runner or the dashboard: the work the workers do
//! (your own job, or the HTTP service), the HTTP target whose status counts the summary shows,
//! the trace it replays and the sample it draws service times from.
//! Nothing of it lives in a global or a thread-local, so two runs in one process (a library user,
//! a test) never see each other's.

use std::sync::Arc;

use super::BadInput;
use super::args::{KindFlag, RunArgs};
use crate::engine::{QueueChoice, Supplied};
use crate::http::{HttpStats, HttpWork, Target, Trust};

/// Your work, shared by every engine this process starts.
pub type Work = Arc<dyn crate::work::Work>;

/// The HTTP target and its status counts, when the run sends requests (`--target`).
#[derive(Clone)]
pub struct Http {
    pub target: Arc<Target>,
    pub stats: Arc<HttpStats>,
}

/// The run's work and what reports on it.
#[derive(Clone, Default)]
pub struct RunContext {
    /// The job the workers run instead of the synthetic service (`None`: the synthetic service).
    pub work: Option<Work>,
    /// Set when the work is the built-in HTTP service.
    pub http: Option<Http>,
    /// Where the queue lives (`--broker`).
    pub queue: QueueChoice,
    /// Said on stderr once the run has started: the name given to a broker run that had none.
    pub announce: Option<String>,
    /// The command line, as the run's JSON and report show it.
    pub command: Vec<String>,
    /// The trace replayed when `arrival = trace` (`--arrivals FILE`).
    pub arrivals: Option<crate::engine::replay::Arrivals>,
    /// The sample drawn from when `service_dist = empirical` (`--service-sample FILE`).
    pub service_sample: Option<Arc<crate::model::sample::ServiceSample>>,
    /// `/metrics` for Prometheus (`--metrics-addr`), serving from before the run until dropped.
    pub metrics: Option<Arc<super::prometheus::Exporter>>,
}

impl RunContext {
    /// The context for `args`: `work` (a library user's own job) or, with `--target`, the HTTP
    /// service.
    ///
    /// # Errors
    /// [`BadInput`] for a target that cannot be used, or one given beside your own job or a
    /// synthetic `--service-kind`.
    pub fn new(
        work: Option<Work>,
        args: &RunArgs,
        profile: Option<&crate::profile::Profile>,
    ) -> Result<RunContext, BadInput> {
        let (queue, announce) = queue_choice(args)?;
        let (work, http) = Self::work(work, args)?;
        let arrivals = args.trace.load(profile.and_then(|p| p.arrivals.as_ref()))?;
        let service_sample = args.sample.load(profile.and_then(|p| p.service_sample.as_ref()))?;
        Ok(RunContext {
            work,
            http,
            queue,
            announce,
            command: crate::engine::broker::redact_args(std::env::args()),
            arrivals,
            service_sample,
            metrics: None,
        })
    }

    /// What the engine is given besides the settings: the work, the trace, the sample.
    #[must_use]
    pub fn supplied(&self) -> Supplied {
        Supplied {
            work: self.work.clone(),
            arrivals: self.arrivals.clone(),
            service_sample: self.service_sample.clone(),
        }
    }

    fn work(work: Option<Work>, args: &RunArgs) -> Result<(Option<Work>, Option<Http>), BadInput> {
        let kind = args.workload.service_kind;
        let Some(url) = &args.target else {
            return match kind {
                Some(KindFlag::Http) => Err(BadInput(
                    "--service-kind http sends each job as a request: give its URL with --target URL".into(),
                )),
                _ => Ok((work, None)),
            };
        };
        if let Some(KindFlag::Synthetic(k)) = kind {
            return Err(BadInput(format!(
                "--target makes each job an HTTP request, so --service-kind {} does not apply; use --service-kind http or leave it out",
                k.value_text()
            )));
        }
        if work.is_some() {
            return Err(BadInput("--target and your own job were both given; a run has one kind of work".into()));
        }
        let target = Target::new(
            url,
            args.method.as_deref().unwrap_or("GET"),
            &args.header,
            args.body.as_deref(),
            args.body_file.as_deref(),
        )
        .map_err(|e| BadInput(e.to_string()))?;
        let trust = Trust { ca_cert: args.ca_cert.as_deref(), insecure: args.insecure };
        let w = HttpWork::new(target, &trust).map_err(|e| BadInput(e.to_string()))?;
        let http = Http { target: Arc::clone(&w.target), stats: Arc::clone(&w.stats) };
        Ok((Some(Arc::new(w)), Some(http)))
    }
}

/// The queue `--broker` and `--run-name` ask for. A run without a name gets a unique one, to be
/// said once the run has started (other processes join a run by its name).
fn queue_choice(args: &RunArgs) -> Result<(QueueChoice, Option<String>), BadInput> {
    let Some(url) = &args.broker else {
        return Ok((QueueChoice::InProcess, None));
    };
    let name = args.run_name.clone().unwrap_or_else(crate::engine::broker::unique_run_name);
    let spec = crate::engine::broker::BrokerSpec::new(url, &name)
        .map_err(|e| BadInput(e.to_string()))?
        .with_security(args.broker_security.security());
    let announce = args.run_name.is_none().then(|| format!("run {name} on {}", spec.shown()));
    Ok((QueueChoice::Broker(spec), announce))
}
