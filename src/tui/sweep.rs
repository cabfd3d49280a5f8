//! The dashboard's live sweep (`:sweep rate 200..2000 10`): the same [`Sweeper`] as
//! `pooltune sweep`, fed with the dashboard's snapshots, its commands sent like a profile's
//! timeline. The operator keeps the keys: any command of theirs that changes the workload or the
//! statistics (a knob, pause, resume, reset) stops the sweep and says so; its steps so far stay
//! on screen until `:sweep off`.

use std::time::Duration;

use super::state::State;
use crate::engine::{Command, EngineHandle};
use crate::metrics::Snapshot;
use crate::model::advisor::Target;
use crate::sweep::{Plan, Scale, Sweeper};

/// The most a step settles: `pooltune sweep`'s default. A shorter step settles as long as it
/// measures.
pub const SETTLE: Duration = Duration::from_secs(2);

/// Starts a sweep from the running settings (replacing any earlier one).
///
/// # Errors
/// The plan's refusal, as `pooltune sweep` words it.
pub fn start(state: &mut State, knob: &str, range: &str, steps: usize, per_step: Duration) -> Result<(), String> {
    if let Some(progress) = &state.timeline_running {
        return Err(format!(
            "the profile's timeline is still changing knobs ({progress}) and a sweep would fight it: \
             :sweep once the timeline is done, or run without a profile"
        ));
    }
    let (key, values) = Plan::values_of(knob, range, steps, Scale::Lin).map_err(|e| e.to_string())?;
    if per_step < Duration::from_millis(100) {
        return Err(format!(
            "sweep per-step {} is too short to measure; expected 100ms or more",
            crate::duration::format(per_step)
        ));
    }
    if let Some(old) = state.sweep.as_mut() {
        old.stop("a new sweep replaced it");
    }
    let n = values.len();
    let settle = SETTLE.min(per_step);
    let plan = Plan { knob: key, values, settle, per_step, stop_on_saturation: true };
    // The sweep judges a p99 target; a mean target is the advisor's alone.
    let slo = match state.slo {
        Some(Target::P99(s)) => Some(Duration::from_secs_f64(s)),
        _ => None,
    };
    state.sweep = Some(Sweeper::new(plan, state.snap.settings.clone(), slo, state.arrivals.as_ref()));
    let total = (settle + per_step) * u32::try_from(n).unwrap_or(u32::MAX);
    state
        .info(format!("sweep {key} {range}: {n} steps, about {}; a knob key stops it", crate::duration::format(total)));
    Ok(())
}

/// Feeds a snapshot to a running sweep and sends what it asks for.
pub fn drive(state: &mut State, engine: &EngineHandle, snap: &Snapshot) {
    let Some(sweeper) = state.sweep.as_mut().filter(|s| !s.done()) else { return };
    let mut failed = None;
    for cmd in sweeper.on_snapshot(snap) {
        if let Err(e) = engine.try_send(cmd) {
            failed = Some(format!("sweep stopped: the engine refused a step ({e})"));
            sweeper.stop(format!("the engine refused a step: {e}"));
            break;
        }
    }
    let finished = sweeper.done().then(|| sweeper.report().verdict.clone());
    state.dirty = true;
    if let Some(e) = failed {
        state.error(e);
    } else if let Some(verdict) = finished {
        state.info(format!("sweep done: {verdict} (:sweep off closes it)"));
    }
}

/// Stops a running sweep when the operator's own command would change what it measures.
pub fn interrupted_by(state: &mut State, cmd: &Command) {
    let what = match cmd {
        Command::Set(k) => format!("you changed {}", k.name().replace('_', " ")),
        Command::SetNodeWorkers { node, .. } => format!("you changed node {node}'s workers"),
        Command::Pause | Command::Resume => "you paused or resumed arrivals".into(),
        Command::ResetStats => "you reset the statistics".into(),
        Command::Shutdown => return,
    };
    if let Some(s) = state.sweep.as_mut().filter(|s| !s.done()) {
        let measured = s.steps().len();
        s.stop(what.clone());
        state.error(format!("sweep stopped: {what} ({measured} steps measured; :sweep off closes it)"));
    }
}

/// `:sweep off`: stops a running sweep and closes the view.
pub fn close(state: &mut State) {
    match state.sweep.take() {
        Some(s) if !s.done() => state.info("sweep stopped and closed"),
        Some(_) => state.info("sweep closed"),
        None => state.info("no sweep to close"),
    }
}
