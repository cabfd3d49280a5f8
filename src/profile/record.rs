//! Recording a session as a profile: the starting settings, then one phase per knob change,
//! whether it came from a timeline or from the operator.
//!
//! Changes are seen in snapshots. A change that first shows in the snapshot of tick N happened
//! during the interval that ended there, so it is recorded at the offset of tick N − 1: replayed,
//! it is sent at that tick and shows again at tick N. Record → replay → record is then stable,
//! within one tick.

use std::fmt::Write as _;
use std::time::Duration;

use super::{Phase, Profile, RunSpec};
use crate::duration;
use crate::metrics::Snapshot;
use crate::settings::{Knob, Settings};

pub struct Recorder {
    start: Settings,
    last: Settings,
    last_elapsed: Duration,
    run: RunSpec,
    phases: Vec<Phase>,
}

impl Recorder {
    #[must_use]
    pub fn new(start: &Settings, run: RunSpec) -> Self {
        Self { start: start.clone(), last: start.clone(), last_elapsed: Duration::ZERO, run, phases: Vec::new() }
    }

    /// Notes the knobs that changed since the previous snapshot.
    pub fn observe(&mut self, s: &Snapshot) {
        if s.settings != self.last {
            let changed = Knob::changed(&self.last, &s.settings);
            if !changed.is_empty() {
                self.phases.push(Phase { at: self.last_elapsed, ramp: None, knobs: changed });
            }
            self.last = s.settings.clone();
        }
        // Offsets to the millisecond: files stay readable, and replay fires on the nearest tick.
        self.last_elapsed = Duration::from_millis(s.elapsed.as_millis() as u64);
    }

    /// The session as a profile lasting `duration`.
    #[must_use]
    pub fn profile(&self, name: &str, description: &str, duration: Duration) -> Profile {
        Profile {
            name: name.to_string(),
            description: description.to_string(),
            workload: Knob::all_of(&self.start),
            run: RunSpec { duration: Some(duration.max(Duration::from_millis(1))), ..self.run },
            phases: self.phases.clone(),
        }
    }
}

fn quote(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// A knob as a TOML `key = value` line.
fn line(k: &Knob) -> String {
    // Numbers bare, everything else (durations, names, a rate of "max") as strings.
    let text = k.value_text();
    let v = if k.spec().kind.bare_in_toml() && text.parse::<f64>().is_ok() { text } else { quote(&text) };
    format!("{} = {v}\n", k.name())
}

/// Writes a profile as TOML that [`super::parse::parse`] reads back to the same profile.
#[must_use]
pub fn to_toml(p: &Profile) -> String {
    let mut out = format!("name = {}\ndescription = {}\n\n[workload]\n", quote(&p.name), quote(&p.description));
    for k in &p.workload {
        out.push_str(&line(k));
    }
    out.push_str("\n[run]\n");
    for (key, d) in [("duration", p.run.duration), ("warmup", p.run.warmup), ("tick", p.run.tick)] {
        if let Some(d) = d {
            let _ = writeln!(out, "{key} = {}", quote(&duration::format(d)));
        }
    }
    for ph in &p.phases {
        let _ = write!(out, "\n[[phase]]\nat = {}\n", quote(&duration::format(ph.at)));
        if let Some(r) = ph.ramp {
            let _ = writeln!(out, "ramp = {}", quote(&duration::format(r)));
        }
        for k in &ph.knobs {
            out.push_str(&line(k));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::parse::parse;
    use crate::settings::Rate;

    #[test]
    fn a_recording_reads_back_as_the_same_profile() {
        let start = Settings { threads: 2, ..Settings::default() };
        let mut r = Recorder::new(&start, RunSpec { tick: Some(Duration::from_millis(250)), ..RunSpec::default() });
        let mut snap = Snapshot::initial(start.clone());
        for i in 1..=20u64 {
            snap.elapsed = Duration::from_millis(250 * i);
            if i == 5 {
                snap.settings.workers = 7;
            }
            if i == 12 {
                snap.settings.rate = Rate::PerSec(1234.5);
                snap.settings.service = Duration::from_micros(1500);
            }
            r.observe(&snap);
        }
        let p = r.profile("rec", "a \"quoted\" description", Duration::from_secs(5));
        assert_eq!(p.phases.len(), 2);
        assert_eq!(p.phases[0].at, Duration::from_millis(1000), "recorded at the tick before it showed");
        assert!(to_toml(&p).contains("at = \"1s\""));
        let text = to_toml(&p);
        let back = parse("rec.toml", &text).unwrap();
        assert_eq!(back, p, "{text}");
    }
}
