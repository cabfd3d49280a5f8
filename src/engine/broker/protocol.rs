//! What the controller and the worker nodes of a run say to each other on the run's
//! [`Topic`](super::adapter::Topic)s beside its queue, over the same broker (each adapter says
//! how it carries them):
//!
//! | topic | from → to | what |
//! |---|---|---|
//! | `pooltune.NAME.control` | controller → nodes | [`Control`] every tick: the knobs, pause, the end |
//! | `pooltune.NAME.report` | nodes → controller, request/reply | a node's tick ([`crate::metrics::node`]), sent until answered |
//! | `pooltune.NAME.clock` | node → controller, request/reply | [`ClockReply`]: the controller's clocks |
//!
//! Knobs travel as the knob table prints and parses them, so a node reads them exactly as the
//! `:` line would.

use serde::{Deserialize, Serialize};

use crate::settings::{Knob, Settings};

/// The protocol version; a node of another version is refused with a message.
/// Version 2: reports are requests the controller answers.
pub const VERSION: u32 = 2;

/// The controller's word to the nodes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Control {
    pub version: u32,
    /// The live knobs as `(key, value)`, printed by the knob table.
    pub knobs: Vec<(String, String)>,
    /// Workers for every node, once the operator has set them during the run (`:workers N`);
    /// until then each node keeps its own `--workers`.
    pub all_workers: Option<usize>,
    /// Worker counts set for one node (`:workers NODE N`), over `all_workers`.
    pub node_workers: Vec<(String, usize)>,
    /// The run is over: finish the jobs in hand, report, and exit.
    pub end: bool,
}

impl Control {
    /// The word for `s`: its live knobs but `workers`, which is each node's own until
    /// `all_workers` says otherwise.
    #[must_use]
    pub fn of(s: &Settings, all_workers: Option<usize>, end: bool) -> Control {
        let knobs = Knob::all_of(s)
            .into_iter()
            .filter(|k| k.spec().live && !matches!(k, Knob::Workers(_)))
            .map(|k| (k.name().to_string(), k.value_text()))
            .collect();
        Control { version: VERSION, knobs, all_workers, node_workers: Vec::new(), end }
    }

    /// The knobs as a node applies them: every live knob the controller has, with `workers`
    /// as set for `node`. Values this build cannot read are left out (and named in the error).
    ///
    /// # Errors
    /// The keys or values refused, for the node to log.
    pub fn knobs_for(&self, node: &str) -> (Vec<Knob>, Vec<String>) {
        let mut out = Vec::new();
        let mut bad = Vec::new();
        for (k, v) in &self.knobs {
            match Knob::parse(k, v) {
                Ok(knob) => out.push(knob),
                Err(e) => bad.push(e.to_string()),
            }
        }
        let mine = self.node_workers.iter().find(|(name, _)| name == node).map(|(_, n)| *n);
        if let Some(n) = mine.or(self.all_workers) {
            out.push(Knob::Workers(n));
        }
        (out, bad)
    }
}

/// The controller's clocks when it answered a node's clock request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockReply {
    pub version: u32,
    /// Nanoseconds since the run's epoch (the controller's monotonic clock).
    pub run_ns: u64,
    /// Nanoseconds since 1970 (the controller's wall clock).
    pub wall_ns: u64,
}

/// Nanoseconds since 1970 on this machine's wall clock.
#[must_use]
pub fn wall_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_reads_the_knobs_as_the_controller_printed_them() {
        let s = Settings {
            workers: 3,
            queue: 77,
            timeout: Some(std::time::Duration::from_millis(5)),
            ..Settings::default()
        };
        let mut c = Control::of(&s, None, false);
        let (knobs, bad) = c.knobs_for("a");
        assert!(bad.is_empty(), "{bad:?}");
        let mut applied = Settings { workers: 2, ..Settings::default() };
        for k in knobs {
            k.apply(&mut applied);
        }
        assert_eq!((applied.workers, applied.queue, applied.timeout), (2, 77, s.timeout), "a node keeps its workers");
        assert!(!c.knobs.iter().any(|(k, _)| k == "threads" || k == "seed"), "fixed knobs stay the node's own");
        c.all_workers = Some(3);
        c.node_workers.push(("b".into(), 9));
        assert!(c.knobs_for("b").0.contains(&Knob::Workers(9)));
        assert!(c.knobs_for("a").0.contains(&Knob::Workers(3)));
        c.knobs.push(("wokers".into(), "1".into()));
        assert_eq!(c.knobs_for("a").1.len(), 1);
    }
}
