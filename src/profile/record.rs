//! Recording a session as a profile: the starting settings as the user gave them, then the
//! changes of live knobs, whether they came from a timeline, a controller or the operator.
//!
//! Changes are seen in snapshots. A change that first shows in the snapshot of tick N happened
//! during the interval that ended there, so it is recorded at the offset of tick N − 1: replayed,
//! it is sent at that tick and shows again at tick N. Record → replay → record is then stable,
//! within one tick.
//!
//! - **Only live knobs make phases.** A knob fixed for a run that differs between the settings
//!   given and the first snapshot was resolved when the engine started (`threads = 0` becomes a
//!   count): that is not a change, and a profile's phase may not name it anyway. `[workload]`
//!   keeps the value as given, so a replay resolves it the same way.
//! - **A ramp is one phase.** Per-tick changes of one knob on consecutive ticks that follow a
//!   straight line (a timeline's ramp, replayed or live) are written back as the one phase with
//!   `ramp` that makes them, not as a phase per tick. A controller's worker counts (`--adapt`)
//!   stay discrete: they are decisions, not a line.

use std::fmt::Write as _;
use std::time::Duration;

use super::arrivals::ProfileArrivals;
use super::sample::ProfileSample;
use super::{Phase, Profile, RunSpec};
use crate::duration;
use crate::metrics::Snapshot;
use crate::settings::{Adapt, Knob, Settings};

/// One knob's change as a snapshot showed it.
#[derive(Debug, Clone, Copy)]
struct Change {
    at: Duration,
    from: Knob,
    to: Knob,
    /// A controller's decision: never part of a ramp.
    discrete: bool,
}

pub struct Recorder {
    start: Settings,
    last: Settings,
    last_elapsed: Duration,
    run: RunSpec,
    tick: Duration,
    changes: Vec<Change>,
    /// The trace the run replays, written back as `[arrivals]`.
    arrivals: Option<ProfileArrivals>,
    /// The run's service sample, written back as `[service_sample]`.
    service_sample: Option<ProfileSample>,
}

impl Recorder {
    /// A recorder for a run that starts with `start` (as the user gave it, before the engine
    /// resolves anything) and takes a snapshot every `tick`.
    #[must_use]
    pub fn new(start: &Settings, run: RunSpec, tick: Duration) -> Self {
        Self {
            start: start.clone(),
            last: start.clone(),
            last_elapsed: Duration::ZERO,
            run,
            tick,
            changes: Vec::new(),
            arrivals: None,
            service_sample: None,
        }
    }

    /// The run replays this trace: the recording names it (by an absolute path, so it replays
    /// from wherever it is saved).
    pub fn set_arrivals(&mut self, a: Option<ProfileArrivals>) {
        self.arrivals = a.map(|mut a| {
            if a.embedded.is_none()
                && let Ok(abs) = std::path::absolute(&a.spec.path)
            {
                a.spec.path = abs;
            }
            a
        });
    }

    /// The run draws from this sample: the recording names it by an absolute path.
    pub fn set_service_sample(&mut self, s: Option<ProfileSample>) {
        self.service_sample = s.map(|mut s| {
            if let Ok(abs) = std::path::absolute(&s.spec.path) {
                s.spec.path = abs;
            }
            s
        });
    }

    /// Notes the live knobs that changed since the previous snapshot.
    pub fn observe(&mut self, s: &Snapshot) {
        if s.settings != self.last {
            let before = Knob::all_of(&self.last);
            let controlled = self.last.adapt != Adapt::Off || s.settings.adapt != Adapt::Off;
            for to in Knob::changed(&self.last, &s.settings).into_iter().filter(|k| k.spec().live) {
                // Every knob holds a value in both (only optional ones such as `jobs` may not).
                let from = before.iter().find(|b| b.name() == to.name()).copied().unwrap_or(to);
                let discrete = controlled && matches!(to, Knob::Workers(_));
                self.changes.push(Change { at: self.last_elapsed, from, to, discrete });
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
            run: RunSpec { duration: Some(Duration::from_millis(duration.as_millis().max(1) as u64)), ..self.run },
            phases: phases(&self.changes, self.tick),
            arrivals: self.arrivals.clone(),
            service_sample: self.service_sample.clone(),
        }
    }
}

/// The changes as phases: each straight run of per-tick changes of one knob as one ramped
/// phase, every other change at its offset, changes at the same offset (and ramp) together.
fn phases(changes: &[Change], tick: Duration) -> Vec<Phase> {
    let mut out: Vec<Phase> = Vec::new();
    let mut push =
        |at: Duration, ramp: Option<Duration>, k: Knob| match out.iter_mut().find(|p| p.at == at && p.ramp == ramp) {
            Some(p) => p.knobs.push(k),
            None => out.push(Phase { at, ramp, knobs: vec![k] }),
        };
    let mut names: Vec<&str> = changes.iter().map(|c| c.to.name()).collect();
    names.dedup();
    names.sort_unstable();
    names.dedup();
    let mut singles: Vec<(Duration, Knob)> = Vec::new();
    for name in names {
        let of: Vec<Change> = changes.iter().filter(|c| c.to.name() == name).copied().collect();
        let mut i = 0;
        while i < of.len() {
            let prev_at = i.checked_sub(1).map(|j| of[j].at);
            if let Some((n, at, ramp)) = straight_run(&of[i..], tick, prev_at) {
                push(at, Some(ramp), of[i + n - 1].to);
                i += n;
            } else {
                singles.push((of[i].at, of[i].to));
                i += 1;
            }
        }
    }
    for (at, k) in singles {
        push(at, None, k);
    }
    // By offset; at one offset, the set knobs before a ramp that starts there.
    out.sort_by_key(|p| (p.at, p.ramp.is_some()));
    for p in &mut out {
        p.knobs.sort_by_key(|k| crate::settings::KNOB_NAMES.iter().position(|n| *n == k.name()));
    }
    out
}

/// The fewest per-tick changes a ramp is made of.
const MIN_RAMP_STEPS: usize = 3;

/// If `run` starts with at least [`MIN_RAMP_STEPS`] changes of one knob on consecutive ticks
/// that lie on a line, starting from the value before them, how many, and the ramp's start and
/// length (the phase that replays them). The first step may be short (a ramp that starts between
/// ticks) and so may the last (a ramp ends on its target).
///
/// Ticks jitter by microseconds and offsets are kept to the millisecond, so each step is judged
/// against the slope of the run so far, within 5% of a step (plus half a unit for knobs that
/// take whole numbers), not against a line fixed by the first steps.
fn straight_run(run: &[Change], tick: Duration, prev_at: Option<Duration>) -> Option<(usize, Duration, Duration)> {
    let value = |c: &Change| c.to.ramp_value().filter(|_| !c.discrete);
    let first = run.first()?;
    let (v0, v1) = (first.from.ramp_value()?, value(first)?);
    let t = tick.as_secs_f64();
    let since = |c: &Change| c.at.saturating_sub(first.at).as_secs_f64();
    // Integer knobs round each step to a whole number: allow that much off the line.
    let quantum = if first.to.with_ramp_value(v1 + 0.3).ramp_value() == Some(v1) { 0.5 } else { 0.0 };
    let (mut n, mut last, mut slope) = (1, v1, None::<f64>);
    while let Some(c) = run.get(n) {
        let gap = c.at.saturating_sub(run[n - 1].at).as_secs_f64();
        let Some(v) = value(c).filter(|_| gap > 0.5 * t && gap <= 1.5 * t) else { break };
        let step = v - last;
        let s = slope.unwrap_or(step / gap);
        if s == 0.0 || step * s < 0.0 {
            break;
        }
        if (step - s * gap).abs() <= quantum + 0.05 * (s * t).abs() {
            n += 1;
            last = v;
            slope = Some((v - v1) / since(c));
        } else if step.abs() < (s * gap).abs() && n >= MIN_RAMP_STEPS {
            // A ramp's last step lands on its target, however short.
            n += 1;
            last = v;
            break;
        } else {
            break;
        }
    }
    let slope = slope.filter(|_| n >= MIN_RAMP_STEPS)?;
    // The first step, from the value before the ramp, may be shorter than a tick, not longer.
    let lead = (v1 - v0) / slope;
    if !(lead > 0.0 && lead <= 1.5 * t) {
        return None;
    }
    let start = first.at.saturating_sub(Duration::from_secs_f64(lead));
    // A ramp replayed starts from the value in force when it starts: not before an earlier
    // change of the same knob has shown.
    if prev_at.is_some_and(|p| start <= p) {
        return None;
    }
    let len = Duration::from_secs_f64((last - v0) / slope);
    // The estimate is good to about a millisecond (offsets are kept to the millisecond, and a
    // tick comes up to a millisecond late). To 10 ms the file reads as a person writes it, and a
    // replay moves by at most 5 ms, far inside a tick; with ticks under 100 ms, to 1 ms.
    let grain = if tick >= Duration::from_millis(100) { 10.0 } else { 1.0 };
    let round = |d: Duration| Duration::from_millis(((d.as_secs_f64() * 1000.0 / grain).round() * grain) as u64);
    Some((n, round(start), round(len).max(Duration::from_millis(1))))
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
    if let Some(a) = &p.arrivals {
        out.push_str(&super::arrivals::to_toml(a));
    }
    if let Some(s) = &p.service_sample {
        out.push_str(&super::sample::to_toml(s));
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
    use crate::profile::timeline::Timeline;
    use crate::settings::Rate;

    const TICK: Duration = Duration::from_millis(250);

    fn recorder(start: &Settings) -> Recorder {
        Recorder::new(start, RunSpec { tick: Some(TICK), ..RunSpec::default() }, TICK)
    }

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn a_recording_reads_back_as_the_same_profile() {
        let start = Settings { threads: 2, ..Settings::default() };
        let mut r = recorder(&start);
        let mut snap = Snapshot::initial(start.clone());
        for i in 1..=20u64 {
            snap.elapsed = ms(250 * i);
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
        assert_eq!(p.phases[0].at, ms(1000), "recorded at the tick before it showed");
        assert!(to_toml(&p).contains("at = \"1s\""));
        let text = to_toml(&p);
        let back = parse("rec.toml", &text).unwrap();
        assert_eq!(back, p, "{text}");
    }

    #[test]
    fn a_knob_resolved_at_start_is_not_a_change() {
        // `threads = 0` as given; the engine's first snapshot shows the count it chose.
        let start = Settings::default();
        let mut r = recorder(&start);
        let mut snap = Snapshot::initial(Settings { threads: 3, ..start.clone() });
        snap.elapsed = TICK;
        r.observe(&snap);
        let p = r.profile("rec", "", Duration::from_secs(1));
        assert!(p.phases.is_empty(), "{p:?}");
        assert!(p.workload.contains(&Knob::Threads(0)), "the setting as the user gave it: {p:?}");
        parse("rec.toml", &to_toml(&p)).unwrap();
    }

    /// Replays `phases` from `start` tick by tick, as the driver does (a change sent at a tick
    /// shows in the next snapshot), and records what it sees.
    fn replay_and_record(start: &Settings, phases: Vec<Phase>, ticks: u64, jitter_us: u64) -> Profile {
        let mut t = Timeline::new(phases, TICK);
        let mut r = recorder(start);
        let mut snap = Snapshot::initial(start.clone());
        for i in 0..=ticks {
            // Real ticks are a little late, never exactly on time.
            snap.elapsed = TICK * i as u32 + Duration::from_micros(i * 7919 % jitter_us.max(1));
            r.observe(&snap);
            for k in t.due(snap.elapsed, &snap.settings) {
                k.apply(&mut snap.settings);
            }
        }
        r.profile("rec", "", TICK * ticks as u32)
    }

    #[test]
    fn a_ramp_is_recorded_as_the_one_phase_that_makes_it() {
        // knee: 400/s, at 10 s ramp over 40 s to 1,000/s; and a step of the workers mid-ramp.
        let start = Settings { rate: Rate::PerSec(400.0), ..Settings::default() };
        let phases = vec![
            Phase { at: ms(10_000), ramp: Some(ms(40_000)), knobs: vec![Knob::Rate(Rate::PerSec(1000.0))] },
            Phase { at: ms(20_000), ramp: None, knobs: vec![Knob::Workers(8)] },
            // A ramp whose length is not a whole number of ticks, of a duration knob.
            Phase { at: ms(30_100), ramp: Some(ms(2_600)), knobs: vec![Knob::Service(Duration::from_millis(8))] },
        ];
        let p = replay_and_record(&start, phases.clone(), 240, 900);
        let text = to_toml(&p);
        assert_eq!(p.phases.len(), 3, "{text}");
        let rate = p.phases.iter().find(|ph| ph.knobs == [Knob::Rate(Rate::PerSec(1000.0))]).expect(&text);
        assert_eq!((rate.at, rate.ramp), (ms(10_000), Some(ms(40_000))), "{text}");
        let service = p.phases.iter().find(|ph| ph.knobs == [Knob::Service(Duration::from_millis(8))]).expect(&text);
        // The ramp starts at 30.1 s, between ticks: its first step is shorter than a tick.
        assert_eq!((service.at, service.ramp), (ms(30_100), Some(ms(2_600))), "{text}");
        assert!(p.phases.iter().any(|ph| ph.ramp.is_none() && ph.knobs == [Knob::Workers(8)]), "{text}");
        // Replayed, the recording records as itself, and reads back.
        let again = replay_and_record(&start, p.phases.clone(), 240, 900);
        assert_eq!(again.phases.len(), 3, "{}", to_toml(&again));
        assert_eq!(parse("rec.toml", &text).unwrap(), p);
    }

    #[test]
    fn a_controllers_counts_stay_discrete() {
        // Hill climbing adds a worker every tick: a straight line, but decisions, not a ramp.
        let start = Settings { adapt: Adapt::HillClimb, ..Settings::default() };
        let mut r = recorder(&start);
        let mut snap = Snapshot::initial(start.clone());
        for i in 1..=6u32 {
            snap.elapsed = TICK * i;
            snap.settings.workers = 4 + i as usize;
            r.observe(&snap);
        }
        let p = r.profile("rec", "", Duration::from_secs(2));
        assert_eq!(p.phases.len(), 6, "{}", to_toml(&p));
        assert!(p.phases.iter().all(|ph| ph.ramp.is_none()));
    }

    #[test]
    fn steps_that_are_not_a_line_stay_steps() {
        let start = Settings::default();
        let mut r = recorder(&start);
        let mut snap = Snapshot::initial(start.clone());
        for (i, w) in [6, 7, 10, 11].into_iter().enumerate() {
            snap.elapsed = TICK * (i as u32 + 1);
            snap.settings.workers = w;
            r.observe(&snap);
        }
        let p = r.profile("rec", "", Duration::from_secs(2));
        assert_eq!(p.phases.len(), 4, "{}", to_toml(&p));
    }
}
