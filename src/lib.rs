//! pooltune: size a worker pool by watching it, with queueing theory beside the measurements.
//!
//! # Layout
//! - [`settings`]: every knob, its name, limits and parsing ([`settings::Knob`] is the unit of
//!   change everywhere: engine commands, the `:` command line, profile phases, recordings).
//! - [`engine`]: the producer → bounded queue → worker pool on its own multi-thread runtime,
//!   driven by [`engine::Command`]s, observed through [`metrics::Snapshot`]s; its precise timer.
//! - [`metrics`]: sharded hot-path recording, HDR histograms, the per-tick aggregation and the
//!   snapshot types.
//! - [`model`]: queueing theory (Erlang C, M/M/c/K, Pollaczek–Khinchine, Allen–Cunneen), pure
//!   maths with no tokio.
//! - [`report`]: the JSON summary and CSV series written by headless runs, written atomically.
//! - [`sweep`]: capacity sweeps, a client of the engine that steps a knob and finds the knee.
//! - [`work`]: your own async job, run by the engine in place of the synthetic service.
//! - [`profile`]: saved timelines (TOML), their replay and the recorder.
//! - [`trace`]: a user's own arrival trace (CSV, TSV, JSON lines or one time per line) read
//!   into sorted offsets and service times, for replay, and a sample of service times read the
//!   same way (or from a run's JSON); formats and rules in its doc.
//! - [`duration`], [`suggest`]: human durations and "did you mean" suggestions.
//! - `http` (feature `http`, part of `cli`): the built-in HTTP service, a [`work::Work`] that
//!   sends each job as a request (https through rustls).
//! - `cli` (feature `cli`, on by default): the command line, the headless runner and the
//!   dashboard: clients of the engine like any other.
//! - `tui` (feature `cli`): the dashboard's state, key table, actions and rendering (a pure
//!   function of the state), and its trailing distribution windows.
//! - `panic_hook` (feature `cli`): the hook both clients install for a run.
//!
//! # Data flow
//! ```text
//! keys → Action → update → Command ─▶ engine (control thread) ─▶ workload runtime
//! engine ─▶ Snapshot (watch, latest wins) ─▶ dashboard, headless printer, recorder, /metrics
//! ```
//! The engine, metrics, model and report parts build with `--no-default-features` (no
//! ratatui, crossterm or clap).

// The console needs tokio's task instrumentation, which exists only under this cfg; without it
// console-subscriber would panic at start. Fail here, at compile time, with the fix.
#[cfg(all(feature = "console", not(tokio_unstable)))]
compile_error!(
    "the `console` feature needs `--cfg tokio_unstable`. It is set in .cargo/config.toml, but a RUSTFLAGS \
     variable in the environment replaces that: unset RUSTFLAGS, or add `--cfg tokio_unstable` to it."
);

pub mod adapt;
pub mod duration;
pub mod engine;
pub mod metrics;
pub mod model;
pub mod profile;
pub mod report;
pub mod settings;
pub mod suggest;
pub mod sweep;
pub mod trace;
pub mod work;

#[cfg(feature = "cli")]
pub mod cli;
#[cfg(feature = "http")]
pub mod http;
#[cfg(feature = "cli")]
pub mod panic_hook;
#[cfg(feature = "cli")]
pub mod tui;

#[cfg(feature = "cli")]
pub use cli::app::App;
