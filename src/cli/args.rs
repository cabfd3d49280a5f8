//! The command line. Every workload flag is parsed by [`Knob::parse`], the same parser the
//! dashboard's `:` line and profiles use, so a value is accepted or refused with the same words
//! everywhere.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::duration;
use crate::settings::{Knob, MAX_THREADS, ServiceDist};

fn knob(name: &'static str) -> impl Fn(&str) -> Result<Knob, String> + Clone + Send + Sync + 'static {
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
    Knob::parse("service_kind", s).map(KindFlag::Synthetic).map_err(|e| format!("{e}, or http (with --target URL)"))
}

fn dur(s: &str) -> Result<Duration, String> {
    duration::parse(s)
}

fn interval(s: &str) -> Result<Duration, String> {
    let d = duration::parse(s)?;
    if d < Duration::from_millis(10) || d > Duration::from_secs(60) {
        return Err(format!("'{s}' is not accepted; expected 10ms to 60s"));
    }
    Ok(d)
}

fn speed(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && (0.01..=1000.0).contains(&v) => Ok(v),
        _ => Err(format!("'{s}' is not accepted; expected a factor from 0.01 to 1000")),
    }
}

fn socket(s: &str) -> Result<std::net::SocketAddr, String> {
    s.parse().map_err(|_| format!("'{s}' is not an address; expected IP:PORT, e.g. 127.0.0.1:6669"))
}

fn threads(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (1..=MAX_THREADS).contains(&n) => Ok(n),
        _ => Err(format!("'{s}' is not accepted; expected a whole number from 1 to {MAX_THREADS}")),
    }
}

/// Size a worker pool by watching it: a live dashboard over a producer → bounded queue → worker
/// pool on tokio, with queueing theory beside the measurements.
#[derive(Debug, Parser)]
#[command(name = "pooltune", version, about, long_about = None, args_conflicts_with_subcommands = true, allow_negative_numbers = true)]
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
    Model(ModelArgs),
}

/// The workload's knobs, each overriding the default (or the profile's starting value).
#[derive(Debug, Clone, Default, Args)]
#[command(allow_negative_numbers = true)]
pub struct WorkloadArgs {
    /// Worker tasks [0 to 100000; default 4]
    #[arg(long, value_name = "N", value_parser = knob("workers"))]
    pub workers: Option<Knob>,
    /// Queue bound: waiting places [1 to 10000000; default 100]
    #[arg(long, value_name = "N", value_parser = knob("queue"))]
    pub queue: Option<Knob>,
    /// What a full queue does with an arrival: block | reject | drop-oldest [default block]
    #[arg(long, value_name = "POLICY", value_parser = knob("policy"))]
    pub policy: Option<Knob>,
    /// Arrival process: poisson | constant | bursty | closed | batch [default poisson]
    #[arg(long, value_name = "PROCESS", value_parser = knob("arrival"))]
    pub arrival: Option<Knob>,
    /// Arrival rate in jobs/s, or `max` (as fast as the queue accepts) [default 500]
    #[arg(long, value_name = "R", value_parser = knob("rate"))]
    pub rate: Option<Knob>,
    /// Closed loop: number of clients [default 8]
    #[arg(long, value_name = "N", value_parser = knob("clients"))]
    pub clients: Option<Knob>,
    /// Closed loop: mean think time between a client's jobs [default 10ms]
    #[arg(long, value_name = "DUR", value_parser = knob("think"))]
    pub think: Option<Knob>,
    /// Batch size for `batch`; otherwise end the run once this many jobs are done
    #[arg(long, value_name = "N", value_parser = knob("jobs"))]
    pub jobs: Option<Knob>,
    /// Bursty: length of an on-period [default 200ms]
    #[arg(long, value_name = "DUR", value_parser = knob("burst_on"))]
    pub burst_on: Option<Knob>,
    /// Bursty: length of an off-period [default 800ms]
    #[arg(long, value_name = "DUR", value_parser = knob("burst_off"))]
    pub burst_off: Option<Knob>,
    /// Mean service time, e.g. 250us, 5ms [default 5ms]
    #[arg(long, value_name = "DUR", value_parser = knob("service"))]
    pub service: Option<Knob>,
    /// Service distribution: constant | exponential | uniform | lognormal [default exponential]
    #[arg(long, value_name = "DIST", value_parser = knob("service_dist"))]
    pub service_dist: Option<Knob>,
    /// Coefficient of variation of service times (uniform, lognormal) [default 1]
    #[arg(long, value_name = "X", value_parser = knob("service_cv"))]
    pub service_cv: Option<Knob>,
    /// What a job does: sleep | spin | block | offload, or http (a request to --target) [default sleep]
    #[arg(long, value_name = "KIND", value_parser = service_kind)]
    pub service_kind: Option<KindFlag>,
    /// Cancel a job still running after this long, counting it as timed out; `off` for none
    #[arg(long, value_name = "DUR", value_parser = knob("timeout"))]
    pub timeout: Option<Knob>,
    /// Threads of the workload runtime [default: number of cores]
    #[arg(long, value_name = "N", value_parser = threads)]
    pub threads: Option<usize>,
    /// Seed of every random draw, so a run's random inputs repeat [default 1]
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
}

impl WorkloadArgs {
    /// The knobs given, in an order where each is checked against those before it.
    #[must_use]
    pub fn knobs(&self) -> Vec<Knob> {
        [
            self.workers,
            self.queue,
            self.policy,
            self.arrival,
            self.rate,
            self.clients,
            self.think,
            self.jobs,
            self.burst_on,
            self.burst_off,
            self.service,
            self.service_dist,
            self.service_cv,
            self.service_kind.and_then(KindFlag::knob),
            self.timeout,
        ]
        .into_iter()
        .flatten()
        .collect()
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
    /// Run without the dashboard; print a summary at the end
    #[arg(long)]
    pub headless: bool,
    /// End the run after this long [headless default 10s; the dashboard runs until you quit]
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
    /// A p99 response-time target for the advisor, e.g. 20ms
    #[arg(long, value_name = "DUR", value_parser = dur)]
    pub slo_p99: Option<Duration>,
    /// Replay a profile's timeline this many times faster (its phases and run length; service
    /// times are not touched), 0.01 to 1000 [default 1]
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
    /// Serve tokio-console on ADDR (needs a build with --features console)
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "127.0.0.1:6669", value_parser = socket)]
    pub console: Option<std::net::SocketAddr>,
    /// Record the session (starting settings and every knob change) as a profile
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,
    /// Write logs to this file [default: none]
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
#[command(allow_negative_numbers = true)]
pub struct ModelArgs {
    /// Arrival rate λ, jobs per second
    #[arg(long, value_name = "R")]
    pub rate: f64,
    // The help is an attribute, not a doc comment: rustdoc would read "E[S]" as a link.
    #[arg(long, value_name = "DUR", value_parser = dur, help = "Mean service time E[S], e.g. 5ms")]
    pub service: Duration,
    /// Workers c
    #[arg(long, value_name = "N")]
    pub workers: u32,
    /// Queue bound K (waiting places); without it the queue is unbounded
    #[arg(long, value_name = "K")]
    pub queue: Option<u64>,
    /// Service distribution: constant | exponential | uniform | lognormal [default exponential]
    #[arg(long, value_name = "DIST", conflicts_with = "service_cv")]
    pub service_dist: Option<ServiceDist>,
    /// Coefficient of variation of service times (instead of a named distribution)
    #[arg(long, value_name = "X")]
    pub service_cv: Option<f64>,
    /// Arrival process: poisson | constant [default poisson]
    #[arg(long, value_name = "PROCESS")]
    pub arrival: Option<crate::settings::ArrivalKind>,
    /// Coefficient of variation of inter-arrival times (instead of a named process)
    #[arg(long, value_name = "X", conflicts_with = "arrival")]
    pub arrival_cv: Option<f64>,
    /// A p99 response-time target: also print the smallest pool and the highest rate meeting it
    #[arg(long, value_name = "DUR", value_parser = dur, conflicts_with = "slo_mean")]
    pub slo_p99: Option<Duration>,
    /// A mean response-time target
    #[arg(long, value_name = "DUR", value_parser = dur)]
    pub slo_mean: Option<Duration>,
    /// Print one JSON object instead of text
    #[arg(long)]
    pub json: bool,
}
