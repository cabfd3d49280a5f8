//! Progress of long headless work on stderr — a run's elapsed time against its length, a
//! sweep's steps — drawn only when stderr is a terminal (indicatif hides it otherwise), so a
//! script's or CI's log gets nothing but the results.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::metrics::Snapshot;

/// A bar, or nothing when stderr is not a terminal.
pub struct Progress(Option<ProgressBar>);

impl Progress {
    /// A bar of `len` units (`None`: a spinner), labelled `what`.
    pub fn new(len: Option<u64>, what: &str) -> Progress {
        if !std::io::stderr().is_terminal() {
            return Progress(None);
        }
        let bar = match len {
            Some(n) => ProgressBar::with_draw_target(Some(n), ProgressDrawTarget::stderr()),
            None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()),
        };
        let template = if len.is_some() {
            "pooltune: {prefix} [{bar:30}] {pos}/{len}{msg}  ({elapsed} of about {duration})"
        } else {
            "pooltune: {prefix} {spinner} {pos}{msg}  ({elapsed})"
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(what.to_string());
        bar.enable_steady_tick(Duration::from_millis(200));
        Progress(Some(bar))
    }

    /// A headless run: its length in seconds when it has one.
    pub fn for_run(duration: Option<Duration>) -> Progress {
        Progress::new(duration.map(|d| d.as_secs().max(1)), "run, s")
    }

    /// A run's tick: the elapsed seconds, and what it has done so far.
    pub fn snapshot(&self, s: &Snapshot) {
        if let Some(b) = &self.0 {
            b.set_position(s.elapsed.as_secs());
            b.set_message(format!("  done {}  p99 {:.1} ms", s.totals.completed, s.latency.response.p99));
        }
    }

    /// Step `k` of `n` is under way.
    pub fn step(&self, k: usize, n: usize) {
        if let Some(b) = &self.0 {
            b.set_length(n as u64);
            b.set_position(k.saturating_sub(1) as u64);
        }
    }

    /// Clears the bar, leaving the line for what comes next.
    pub fn finish(&self) {
        if let Some(b) = &self.0 {
            b.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}
