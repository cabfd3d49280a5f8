//! What the operator means (an [`Action`]) and what it does to the dashboard's state
//! ([`update`]): pure functions, tested without a terminal or an engine.

use std::time::Duration;

use super::cmdline::{self, Line};
use super::state::State;
use crate::engine::Command;
use crate::settings::{ArrivalKind, Knob, Rate, ServiceDist};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Quit,
    Help,
    CommandLine,
    WorkersUp,
    WorkersDown,
    RateUp,
    RateDown,
    ServiceUp,
    ServiceDown,
    QueueUp,
    QueueDown,
    CyclePolicy,
    CycleArrival,
    CycleDist,
    CycleKind,
    Pause,
    Reset,
    ZoomIn,
    ZoomOut,
}

/// What the run loop must do after an update.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    None,
    Send(Command),
    Quit,
}

/// Rates and times move by this factor a key press: five presses roughly triple them.
const STEP: f64 = 1.25;

fn scaled(d: Duration, up: bool) -> Duration {
    if d.is_zero() {
        return if up { Duration::from_micros(100) } else { Duration::ZERO };
    }
    let s = if up { d.as_secs_f64() * STEP } else { d.as_secs_f64() / STEP };
    Duration::from_secs_f64(s.min(3600.0))
}

fn knob_for(state: &State, a: Action) -> Result<Knob, String> {
    let s = &state.desired;
    Ok(match a {
        Action::WorkersUp => Knob::Workers(s.workers + 1),
        Action::WorkersDown if s.workers == 0 => return Err("workers is already 0".into()),
        Action::WorkersDown => Knob::Workers(s.workers - 1),
        Action::RateUp | Action::RateDown => match s.rate {
            Rate::Max if a == Action::RateUp => return Err("the rate is already max".into()),
            Rate::Max => Knob::Rate(Rate::PerSec((state.snap.rates.completed / STEP).round().max(1.0))),
            Rate::PerSec(r) if r == 0.0 && a == Action::RateUp => Knob::Rate(Rate::PerSec(10.0)),
            Rate::PerSec(r) => {
                let v = if a == Action::RateUp { r * STEP } else { r / STEP };
                Knob::Rate(Rate::PerSec((v * 100.0).round() / 100.0))
            }
        },
        Action::ServiceUp => Knob::Service(scaled(s.service, true)),
        Action::ServiceDown => Knob::Service(scaled(s.service, false)),
        Action::QueueUp => Knob::Queue(s.queue.saturating_mul(2)),
        Action::QueueDown => Knob::Queue((s.queue / 2).max(1)),
        Action::CyclePolicy => Knob::Policy(s.policy.next()),
        Action::CycleArrival => {
            // `trace` only where a trace was given to replay.
            let next = s.arrival.next();
            let skip = next == ArrivalKind::Trace && state.arrivals.is_none();
            Knob::Arrival(if skip { next.next() } else { next })
        }
        Action::CycleDist => {
            // `empirical` only where a sample was given to draw from.
            let next = s.service_dist.next();
            let skip = next == ServiceDist::Empirical && state.snap.service_sample.is_none();
            Knob::ServiceDist(if skip { next.next() } else { next })
        }
        Action::CycleKind => Knob::ServiceKind(s.service_kind.next()),
        _ => return Err(String::new()),
    })
}

/// Applies an action to the state and says what the loop must do.
pub fn update(state: &mut State, a: Action) -> Effect {
    state.dirty = true;
    match a {
        Action::Quit => Effect::Quit,
        Action::Help => {
            state.help = !state.help;
            Effect::None
        }
        Action::CommandLine => {
            state.input = Some(String::new());
            Effect::None
        }
        Action::Pause => {
            Effect::Send(if state.snap.paused || state.paused_sent { Command::Resume } else { Command::Pause })
        }
        Action::Reset => Effect::Send(Command::ResetStats),
        Action::ZoomIn => {
            state.set_window(state.window.saturating_sub(1));
            Effect::None
        }
        Action::ZoomOut => {
            state.set_window(state.window + 1);
            Effect::None
        }
        knob => match knob_for(state, knob) {
            Ok(k) => Effect::Send(Command::Set(k)),
            Err(e) => {
                state.error(e);
                Effect::None
            }
        },
    }
}

/// Applies a submitted command line.
pub fn submit(state: &mut State, text: &str) -> Effect {
    state.dirty = true;
    match cmdline::parse(text) {
        Ok(Line::Engine(cmd)) => Effect::Send(cmd),
        Ok(Line::Quit) => Effect::Quit,
        Ok(Line::Help) => {
            state.help = true;
            Effect::None
        }
        Ok(Line::Window(i)) => {
            state.set_window(i);
            Effect::None
        }
        Ok(Line::Slo(t)) => {
            state.slo = t;
            state.refresh_model();
            state.info(
                t.map_or_else(|| "latency target cleared".to_string(), |t| format!("latency target {}", t.describe())),
            );
            Effect::None
        }
        Ok(Line::Sweep { knob, range, steps, per_step }) => {
            if let Err(e) = super::sweep::start(state, &knob, &range, steps, per_step) {
                state.error(e);
            }
            Effect::None
        }
        Ok(Line::SweepOff) => {
            super::sweep::close(state);
            Effect::None
        }
        Ok(Line::Empty) => Effect::None,
        Err(e) => {
            state.error(e);
            Effect::None
        }
    }
}
