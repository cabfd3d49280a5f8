//! The command line. The workload flags come from the knob table ([`KNOBS`]): one flag per
//! knob, parsed by [`Knob::parse`], the same parser the dashboard's `:` line and profiles use, so
//! a value is accepted or refused with the same words everywhere.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Arg, ArgAction, ArgMatches, Args, FromArgMatches, Parser, Subcommand};

use crate::duration;
use crate::settings::{ArrivalKind, KNOBS, Knob, KnobError, KnobSpec, KnobValue, Rate, ServiceDist};

fn knob(name: &'static str) -> impl Fn(&str) -> Result<Knob, KnobError> + Clone + Send + Sync + 'static {
    move |s| Knob::parse(name, s)
}

/// `--service-kind`: a synthetic kind, or `http` (the jobs are requests to `--target`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum KindFlag {
    Synthetic(Knob),
    Http,
}

impl KindFlag {
    #[must_use]
    pub fn knob(self) -> Option<Knob> {
        match self {
            KindFlag::Synthetic(k) => Some(k),
            KindFlag::Http => None,
        }
    }
}

fn service_kind(s: &str) -> Result<KindFlag, String> {
    if s.trim().eq_ignore_ascii_case("http") {
        return Ok(KindFlag::Http);
    }
    match Knob::parse("service_kind", s) {
        Ok(k) => Ok(KindFlag::Synthetic(k)),
        // Not a synthetic kind at all: http is the other thing this flag accepts.
        Err(KnobError::Malformed(m)) => Err(format!("{m}, or http (with --target URL)")),
        Err(e) => Err(e.to_string()),
    }
}

/// A knob's value for `pooltune model`, parsed and checked by the knob table.
fn model_knob<T: KnobValue + Clone + Send + Sync + 'static>(
    key: &'static str,
) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync + 'static {
    move |s| {
        Knob::parse(key, s)
            .map_err(|e| e.to_string())?
            .value::<T>()
            .ok_or_else(|| format!("{key} takes no such value here"))
    }
}

/// A shared knob's help for `pooltune model`: the model's words for it (with its symbol), then
/// what the knob table accepts (the model has no `max` rate). No default: the model's inputs are
/// required, or absent means unbounded.
fn model_help(key: &str, what: &str) -> String {
    let spec = KnobSpec::find(key).expect("a key of the knob table");
    spec.help_with(what, false).replace(", or max]", "]")
}

/// As [`model_help`], with the table's default (a distribution or process left unset).
fn model_default_help(key: &str, what: &str) -> String {
    KnobSpec::find(key).expect("a key of the knob table").help_with(what, true)
}

/// `--rate` for the model: as `run` takes it, except `max`, which has no model.
fn model_rate(s: &str) -> Result<f64, String> {
    match model_knob::<Rate>("rate")(s).map_err(|e| e.replace(" or 'max'", ""))? {
        Rate::PerSec(r) => Ok(r),
        Rate::Max => Err("rate max has no model (the arrival rate is the model's input); give jobs per second".into()),
    }
}

fn dur(s: &str) -> Result<Duration, String> {
    duration::parse(s)
}

fn interval(s: &str) -> Result<Duration, String> {
    let d = duration::parse(s)?;
    crate::engine::check_interval("interval", d)?;
    Ok(d)
}

/// A number within `range`, or the one line saying `expected`.
fn number_in(s: &str, range: std::ops::RangeInclusive<f64>, expected: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && range.contains(&v) => Ok(v),
        _ => Err(format!("'{s}' is not accepted; expected {expected}")),
    }
}

fn speed(s: &str) -> Result<f64, String> {
    number_in(s, 0.01..=1000.0, "a factor from 0.01 to 1000")
}

fn key_skew(s: &str) -> Result<f64, String> {
    number_in(s, 0.0..=10.0, "a Zipf exponent from 0 (all keys alike) to 10")
}

fn socket(s: &str) -> Result<std::net::SocketAddr, String> {
    s.parse().map_err(|_| format!("'{s}' is not an address; expected IP:PORT, e.g. 127.0.0.1:6669"))
}

/// Size a worker pool by watching it: a live dashboard over a producer → bounded queue → worker
/// pool on tokio, with queueing theory beside the measurements.
#[derive(Debug, Parser)]
#[command(name = "pooltune", version = super::version::short(), long_version = super::version::long(), about, long_about = None, args_conflicts_with_subcommands = true, allow_negative_numbers = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Cmd>,
    /// Without a subcommand: `run` on the built-in default workload.
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Run a workload: the dashboard, or `--headless` for scripts and CI.
    Run(Box<RunCmd>),
    /// List the shipped profiles.
    Profiles,
    /// Check profile files; exit status 0 when all are valid.
    Validate {
        /// Profile files
        #[arg(required = true, value_name = "FILE")]
        files: Vec<std::path::PathBuf>,
    },
    /// Print what queueing theory predicts for a pool, and what meets a latency target.
    Model(Box<ModelArgs>),
    /// Step a knob through a range and measure each step: the knee, and the highest value that meets a p99 target.
    Sweep(Box<SweepArgs>),
    /// Serve a broker run's jobs from this process (this machine or another): a worker node.
    Worker(WorkerArgs),
    /// Make an HTML report from a run's JSON (and its CSV series) or a sweep's JSON.
    Report(ReportArgs),
    /// Print a shell's completion script for pooltune (see the README for where to put it).
    Completions {
        /// The shell
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print pooltune's man page (roff), every subcommand in it: `pooltune man | man -l -`.
    Man,
}

/// `pooltune report`'s arguments (run by `cli::report_cmd`).
#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    /// A run's JSON summary (`run --json`) or a sweep's JSON (`sweep --json`)
    #[arg(value_name = "RUN.json")]
    pub json: PathBuf,
    /// The run's per-tick series (`run --csv`), for the time-series charts
    #[arg(value_name = "SERIES.csv")]
    pub csv: Option<PathBuf>,
    /// The HTML file to write
    #[arg(short = 'o', long = "output", value_name = "FILE.html")]
    pub output: PathBuf,
}

/// `pooltune worker`'s arguments (run by `cli::worker_cmd`).
#[derive(Debug, Clone, Args)]
pub struct WorkerArgs {
    /// The run's broker, e.g. `nats://10.0.0.5:4222`
    #[arg(long, value_name = "URL")]
    pub broker: String,
    /// The run to join (the controller prints it)
    #[arg(long, value_name = "NAME")]
    pub run_name: String,
    #[command(flatten)]
    pub security: BrokerSecurityArgs,
    /// Worker tasks on this node, until the controller sets them [default 4]
    #[arg(long, value_name = "N", value_parser = model_knob::<usize>("workers"))]
    pub workers: Option<usize>,
    /// This node's name in the controller's table [default: the host name and process id]
    #[arg(long, value_name = "NODE")]
    pub name: Option<String>,
    /// Threads of this node's workload runtime [default 0: one per core, one less when timed]
    #[arg(long, value_name = "N", value_parser = model_knob::<usize>("threads"))]
    pub threads: Option<usize>,
    /// Write this node's log (its warnings and the broker's events) to this file [default: none]
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    #[command(flatten)]
    pub metrics: MetricsArgs,
}

/// `--metrics-addr`, which `run`, `sweep` and `worker` share.
#[derive(Debug, Clone, Copy, Default, Args)]
pub struct MetricsArgs {
    /// Serve Prometheus metrics at http://HOST:PORT/metrics while running; a port alone is
    /// 127.0.0.1 (loopback), a host beyond it is yours to give (no authentication)
    #[arg(long, value_name = "HOST:PORT", value_parser = super::prometheus::addr)]
    pub metrics_addr: Option<std::net::SocketAddr>,
}

/// `--color`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorWhen {
    #[default]
    Auto,
    Always,
    Never,
}

impl ColorWhen {
    /// Whether the dashboard draws in colour, given the environment's `NO_COLOR` and `TERM`.
    pub fn colour(self, no_color: Option<&std::ffi::OsStr>, term: Option<&std::ffi::OsStr>) -> bool {
        match self {
            ColorWhen::Always => true,
            ColorWhen::Never => false,
            // no-color.org: set and not empty.
            ColorWhen::Auto => no_color.is_none_or(std::ffi::OsStr::is_empty) && term.is_none_or(|t| t != "dumb"),
        }
    }
}

/// How to reach a secured broker (`run --broker` and `worker`).
#[derive(Debug, Clone, Default, Args)]
pub struct BrokerSecurityArgs {
    /// Trust the broker's certificate if it chains to this CA (PEM); implies TLS
    #[arg(long, value_name = "FILE", requires = "broker")]
    pub broker_ca: Option<PathBuf>,
    /// A client certificate (PEM) for a broker that asks for one; needs --broker-key
    #[arg(long, value_name = "FILE", requires = "broker", requires = "broker_key")]
    pub broker_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM); needs --broker-cert
    #[arg(long, value_name = "FILE", requires = "broker_cert")]
    pub broker_key: Option<PathBuf>,
    /// NATS: a credentials file (`.creds`: JWT and nkey seed) or an nkey seed file
    #[arg(long, value_name = "FILE", requires = "broker")]
    pub broker_creds: Option<PathBuf>,
}

impl BrokerSecurityArgs {
    /// The files as the engine takes them.
    #[cfg(feature = "broker")]
    pub fn security(&self) -> crate::engine::broker::Security {
        crate::engine::broker::Security {
            ca: self.broker_ca.clone(),
            cert: self.broker_cert.clone(),
            key: self.broker_key.clone(),
            creds: self.broker_creds.clone(),
        }
    }
}

/// The workload's knobs, each overriding the default (or the profile's starting value): one
/// flag per row of the knob table ([`KNOBS`]), its help and limits taken from there.
#[derive(Debug, Clone, Default)]
pub struct WorkloadArgs {
    /// The knobs given, in table order.
    given: Vec<Knob>,
    /// `--service-kind`, which also takes `http`.
    pub service_kind: Option<KindFlag>,
}

impl WorkloadArgs {
    /// The knobs given, in table order, where each is checked against those before it.
    #[must_use]
    pub fn knobs(&self) -> Vec<Knob> {
        self.given.clone()
    }
}

/// The flag of one row of the knob table.
fn knob_arg(spec: &'static KnobSpec) -> Arg {
    let arg = Arg::new(spec.key).long(spec.flag).value_name(spec.value_name).action(ArgAction::Set);
    if spec.key == "service_kind" {
        arg.value_parser(service_kind).help(spec.help_line().replacen(" [", ", or http (a request to --target) [", 1))
    } else {
        arg.value_parser(knob(spec.key)).help(spec.help_line())
    }
}

impl FromArgMatches for WorkloadArgs {
    fn from_arg_matches(m: &ArgMatches) -> Result<Self, clap::Error> {
        let mut out = Self::default();
        out.update_from_arg_matches(m)?;
        Ok(out)
    }

    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
        for spec in KNOBS {
            if spec.key == "service_kind" {
                if let Some(flag) = m.get_one::<KindFlag>(spec.key) {
                    self.service_kind = Some(*flag);
                }
                let synthetic = self.service_kind.and_then(KindFlag::knob);
                self.set(spec, synthetic);
            } else if let Some(k) = m.get_one::<Knob>(spec.key) {
                self.set(spec, Some(*k));
            }
        }
        Ok(())
    }
}

impl WorkloadArgs {
    fn set(&mut self, spec: &KnobSpec, knob: Option<Knob>) {
        self.given.retain(|k| k.name() != spec.key);
        self.given.extend(knob);
        self.given.sort_by_key(|k| KNOBS.iter().position(|s| s.key == k.name()));
    }
}

impl Args for WorkloadArgs {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        KNOBS.iter().fold(cmd.allow_negative_numbers(true), |cmd, spec| cmd.arg(knob_arg(spec)))
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

#[derive(Debug, Clone, Args)]
pub struct RunCmd {
    /// A profile to replay: a file, or the name of a shipped one (`pooltune profiles`)
    #[arg(value_name = "PROFILE")]
    pub profile: Option<String>,
    #[command(flatten)]
    pub args: RunArgs,
}

#[derive(Debug, Clone, Default, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub workload: WorkloadArgs,
    #[command(flatten)]
    pub trace: super::arrivals::ArrivalsArgs,
    #[command(flatten)]
    pub sample: super::sample::SampleArgs,
    /// Run without the dashboard; print a summary at the end
    #[arg(long)]
    pub headless: bool,
    /// End the run after this long [headless default 10s, or a trace's last arrival served; the dashboard runs until you quit]
    #[arg(long, value_name = "DUR", value_parser = dur)]
    pub duration: Option<Duration>,
    /// Leave this first stretch out of the statistics [default 0s]
    #[arg(long, value_name = "DUR", value_parser = dur)]
    pub warmup: Option<Duration>,
    /// Snapshot (tick) period, 10ms to 60s [default 250ms]
    #[arg(long, value_name = "DUR", value_parser = interval)]
    pub interval: Option<Duration>,
    /// Write the JSON summary here (`-` for stdout)
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write the per-tick series here as CSV
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
    /// Write an HTML report here (charts and tables, one self-contained file)
    #[arg(long, value_name = "FILE.html")]
    pub report: Option<PathBuf>,
    /// Replay a profile's timeline, or a trace (--arrivals), this many times faster (its phases
    /// and run length, the trace's arrival instants; service times are not touched), 0.01 to
    /// 1000 [default 1]
    #[arg(long, value_name = "X", value_parser = speed)]
    pub speed: Option<f64>,
    /// HTTP service: each job sends a request to this URL (http:// or https://); 2xx is success
    #[arg(long, value_name = "URL")]
    pub target: Option<String>,
    /// HTTP method for --target [default GET]
    #[arg(long, value_name = "METHOD", requires = "target")]
    pub method: Option<String>,
    /// A request header for --target, 'Name: value' (repeatable)
    #[arg(long, value_name = "HEADER", requires = "target")]
    pub header: Vec<String>,
    /// The request body for --target
    #[arg(long, value_name = "TEXT", requires = "target", conflicts_with = "body_file")]
    pub body: Option<String>,
    /// The request body for --target, read from a file
    #[arg(long, value_name = "FILE", requires = "target")]
    pub body_file: Option<PathBuf>,
    /// For an https --target: also trust the CA certificates in this PEM file (besides Mozilla's roots)
    #[arg(long, value_name = "FILE", requires = "target")]
    pub ca_cert: Option<PathBuf>,
    /// For an https --target: accept any server certificate (self-signed, expired, other name), like curl -k
    #[arg(long, requires = "target", conflicts_with = "ca_cert")]
    pub insecure: bool,
    /// Use a message broker as the queue: `nats://HOST:PORT` (or `tls://`) or RabbitMQ's
    /// `amqp://HOST:PORT[/VHOST]` (or `amqps://`), credentials as `USER:PASSWORD@HOST` (the bound
    /// and the policy become the run's queue's)
    #[arg(long, value_name = "URL")]
    pub broker: Option<String>,
    /// The run's name on the broker: letters, digits, '-' and '_' [default: a unique one, printed]
    #[arg(long, value_name = "NAME", requires = "broker")]
    pub run_name: Option<String>,
    #[command(flatten)]
    pub broker_security: BrokerSecurityArgs,
    #[command(flatten)]
    pub metrics: MetricsArgs,
    /// Serve tokio-console on ADDR (needs a build with --features console)
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "127.0.0.1:6669", value_parser = socket)]
    pub console: Option<std::net::SocketAddr>,
    /// Record the session (starting settings and every knob change) as a profile
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,
    /// Write logs to this file [default: none]
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Colour on the dashboard: `auto` is colour unless `NO_COLOR` is set (no-color.org) or
    /// `TERM=dumb`; `never` draws in bold, dim, underline and reverse video, with a marker per
    /// chart series (headless output never has escape codes)
    #[arg(long, value_name = "WHEN", value_enum, default_value_t = ColorWhen::Auto)]
    pub color: ColorWhen,
}

/// `pooltune model` takes the knobs it shares with `run` through the same table parsers, so a
/// value accepted or refused by one is accepted or refused by the other.
#[derive(Debug, Clone, Args)]
#[command(allow_negative_numbers = true)]
pub struct ModelArgs {
    #[arg(long, value_name = "R", value_parser = model_rate, help = model_help("rate", "Arrival rate λ, jobs per second (open-loop and bursty arrivals)"))]
    pub rate: Option<f64>,
    #[arg(long, value_name = "DUR", value_parser = model_knob::<Duration>("service"), help = model_help("service", "Mean service time E[S], e.g. 5ms (with --arrivals: drawn for each arrival, or the mean the trace's own times are scaled to)"))]
    pub service: Option<Duration>,
    #[arg(long, value_name = "N", required_unless_present = "fit", value_parser = model_knob::<usize>("workers"), help = model_help("workers", "Workers c"))]
    pub workers: Option<usize>,
    /// Fit the downstream's scalability law (σ, κ, the peak N*) to what a run saw: its CSV
    /// series (run --csv) or a workers sweep's JSON (sweep --json)
    #[arg(long, value_name = "FILE")]
    pub fit: Option<PathBuf>,
    #[arg(long, value_name = "K", value_parser = model_knob::<usize>("queue"), help = model_help("queue", "Queue bound K (waiting places); without it the queue is unbounded"))]
    pub queue: Option<usize>,
    #[arg(long, value_name = "DIST", conflicts_with = "service_cv", value_parser = model_knob::<ServiceDist>("service_dist"), help = model_default_help("service_dist", "Service distribution"))]
    pub service_dist: Option<ServiceDist>,
    #[arg(long, value_name = "X", value_parser = model_knob::<f64>("service_cv"), help = model_help("service_cv", "Coefficient of variation of service times (instead of a named distribution)"))]
    pub service_cv: Option<f64>,
    #[arg(long, value_name = "PROCESS", value_parser = model_knob::<ArrivalKind>("arrival"), help = model_default_help("arrival", "Arrival process"))]
    pub arrival: Option<ArrivalKind>,
    /// Coefficient of variation of inter-arrival times (instead of a named process)
    #[arg(long, value_name = "X", conflicts_with = "arrival")]
    pub arrival_cv: Option<f64>,
    #[arg(long, value_name = "N", value_parser = model_knob::<usize>("clients"), help = model_help("clients", "Closed loop (--arrival closed): number of clients N"))]
    pub clients: Option<usize>,
    #[arg(long, value_name = "DUR", value_parser = model_knob::<Duration>("think"), help = model_default_help("think", "Closed loop: mean think time Z"))]
    pub think: Option<Duration>,
    #[arg(long, value_name = "N", value_parser = model_knob::<u64>("jobs"), help = model_help("jobs", "Batch (--arrival batch): the number of jobs N, all arriving at once"))]
    pub jobs: Option<u64>,
    #[arg(long, value_name = "DUR", value_parser = model_knob::<Duration>("burst_on"), help = model_default_help("burst_on", "Bursty: length of an on-period"))]
    pub burst_on: Option<Duration>,
    #[arg(long, value_name = "DUR", value_parser = model_knob::<Duration>("burst_off"), help = model_default_help("burst_off", "Bursty: length of an off-period"))]
    pub burst_off: Option<Duration>,
    #[arg(long, value_name = "SIGMA", value_parser = model_knob::<f64>("contention"), help = model_help("contention", "Downstream: contention σ (Universal Scalability Law)"))]
    pub contention: Option<f64>,
    #[arg(long, value_name = "KAPPA", value_parser = model_knob::<f64>("coherency"), help = model_help("coherency", "Downstream: coherency κ; throughput peaks at N* = √((1−σ)/κ)"))]
    pub coherency: Option<f64>,
    #[arg(long, value_name = "N", value_parser = model_knob::<usize>("capacity"), help = model_help("capacity", "Downstream: jobs it serves at once [default no limit]"))]
    pub capacity: Option<usize>,
    /// A p99 response-time target: also print the smallest pool and the highest rate meeting it
    #[arg(long, value_name = "DUR", value_parser = dur, conflicts_with = "slo_mean")]
    pub slo_p99: Option<Duration>,
    /// A mean response-time target
    #[arg(long, value_name = "DUR", value_parser = dur)]
    pub slo_mean: Option<Duration>,
    /// Print one JSON object instead of text
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub trace: super::arrivals::ArrivalsArgs,
    #[command(flatten)]
    pub sample: super::sample::SampleArgs,
    /// With --arrivals: replay the trace this many times faster (or give --rate, its mean rate)
    #[arg(long, value_name = "X", value_parser = speed, requires = "arrivals", conflicts_with = "rate")]
    pub speed: Option<f64>,
    /// A partitioned topic (Kafka's) of P partitions: each partition consumed in order, beside a
    /// pool per consumer and one shared pool, and what ordering costs in p99
    #[arg(long, value_name = "P", value_parser = clap::value_parser!(u32).range(1..=100_000), conflicts_with_all = ["fit", "arrivals", "slo_p99", "slo_mean"])]
    pub partitions: Option<u32>,
    /// With --partitions: consumers in the group, each with --workers workers [default 1]
    #[arg(long, value_name = "C", requires = "partitions", value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub consumers: Option<u32>,
    /// With --partitions: distinct message keys, placed by Kafka's default partitioner [default 1000]
    #[arg(long, value_name = "K", requires = "partitions", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub keys: Option<u32>,
    /// With --partitions: how much hotter the first keys are, Zipf's exponent s [default 0: all alike]
    #[arg(long, value_name = "S", requires = "partitions", value_parser = key_skew)]
    pub key_skew: Option<f64>,
}

/// `pooltune sweep`'s arguments (run by `cli::sweep_cmd`).
#[derive(Debug, Clone, Args)]
#[command(mut_arg("looped", |a| a.help("Always on in a sweep: the trace starts again after its last arrival (one mean gap later), so a long sweep never runs out of arrivals")))]
pub struct SweepArgs {
    /// The knob to step: one of the table's numeric knobs (workers, queue, rate, clients, think, burst-on, burst-off, service, service-cv, contention, coherency, capacity)
    #[arg(value_name = "KNOB")]
    pub knob: String,
    /// The range, FROM..TO in the knob's own units (200..2000, 1ms..10ms)
    #[arg(value_name = "FROM..TO")]
    pub range: String,
    /// How many values, FROM and TO included [2 to 1000; default 10]
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub steps: usize,
    /// How the values are spaced [default lin]
    #[arg(long, value_enum, default_value_t = crate::sweep::Scale::Lin)]
    pub scale: crate::sweep::Scale,
    /// How long each step is measured [default 10s]
    #[arg(long, value_name = "DUR", value_parser = crate::duration::parse, default_value = "10s")]
    pub per_step: Duration,
    /// How long each step runs before it is measured (left out of its statistics) [default 2s]
    #[arg(long, value_name = "DUR", value_parser = crate::duration::parse, default_value = "2s")]
    pub settle: Duration,
    /// Stop at the first step that saturates the pool (queue at its bound, jobs refused, arrivals behind) [default true]
    #[arg(long, value_name = "BOOL", action = ArgAction::Set, default_value_t = true)]
    pub stop_on_saturation: bool,
    /// Write the sweep as JSON here (`-` for stdout)
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write one CSV row per step here
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
    /// Write an HTML report here: the latency–throughput curve with the model, the target and the knee
    #[arg(long, value_name = "FILE.html")]
    pub report: Option<PathBuf>,
    #[command(flatten)]
    pub metrics: MetricsArgs,
    #[command(flatten)]
    pub workload: WorkloadArgs,
    /// A trace to step the knob over (--arrivals FILE and its flags, as `run` takes them); a sweep
    /// always replays it looped, so a long sweep never runs out of arrivals
    #[command(flatten)]
    pub trace: super::arrivals::ArrivalsArgs,
    /// A sample to draw service times from (--service-sample FILE and its flags, as `run` takes
    /// them)
    #[command(flatten)]
    pub sample: super::sample::SampleArgs,
    /// With --arrivals: replay the trace this many times faster, 0.01 to 1000 [default 1]; a
    /// `rate` sweep steps the speed itself (rate ÷ the trace's mean rate)
    #[arg(long, value_name = "X", value_parser = speed, requires = "arrivals")]
    pub speed: Option<f64>,
}
