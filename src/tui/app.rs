//! The run loop, generic over the terminal backend and the event source, so tests drive the real
//! loop with a `TestBackend` and scripted keys.
//!
//! Input → action → update → effect; snapshots → state. Redraws happen only when something
//! changed, at most [`FPS`] times a second.

use std::io;
use std::time::Duration;

use crossterm::event::{Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use futures_util::{Stream, StreamExt};
use ratatui::Terminal;
use ratatui::backend::Backend;

use super::action::{self, Effect};
use super::keys;
use super::state::State;
use crate::engine::{Command, EngineHandle};
use crate::metrics::Snapshot;
use crate::report::EndedBy;

/// The redraw cap.
pub const FPS: u64 = 30;

/// Called with every snapshot after the state has taken it: the CSV series, a profile's
/// timeline (which sends knob changes), the recorder.
pub type Sink<'a> = dyn FnMut(&Snapshot, &EngineHandle, &mut State) -> io::Result<()> + 'a;

/// What the loop consumes: terminal events and, from the real binary, signals.
#[derive(Debug, Clone)]
pub enum UiEvent {
    Term(Event),
    Signal(EndedBy),
}

fn draw<B: Backend>(terminal: &mut Terminal<B>, state: &State) -> io::Result<()> {
    terminal.draw(|f| f.render_widget(state, f.area())).map(|_| ()).map_err(|e| io::Error::other(e.to_string()))
}

/// Runs until the operator quits, a signal arrives, the events end, or the engine finishes.
/// Every snapshot seen also goes to `sink` (the CSV series, the recorder).
///
/// # Errors
/// The terminal could not be drawn or read.
pub async fn run_loop<B, S>(
    terminal: &mut Terminal<B>,
    engine: &EngineHandle,
    mut events: S,
    state: &mut State,
    sink: &mut Sink<'_>,
) -> io::Result<EndedBy>
where
    B: Backend,
    S: Stream<Item = io::Result<UiEvent>> + Unpin,
{
    let mut snapshots = engine.subscribe();
    let mut frames = tokio::time::interval(Duration::from_millis(1000 / FPS));
    frames.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    draw(terminal, state)?;
    loop {
        tokio::select! {
            ev = events.next() => match ev {
                None => return Ok(EndedBy::Quit),
                Some(Err(e)) => return Err(e),
                Some(Ok(UiEvent::Signal(sig))) => return Ok(sig),
                Some(Ok(UiEvent::Term(Event::Key(key)))) => {
                    if on_key(state, engine, key) {
                        return Ok(EndedBy::Quit);
                    }
                }
                Some(Ok(UiEvent::Term(Event::Resize(..)))) => state.dirty = true,
                Some(Ok(UiEvent::Term(_))) => {}
            },
            changed = snapshots.changed() => {
                if changed.is_err() {
                    return Ok(EndedBy::Duration);
                }
                let snap = snapshots.borrow_and_update().clone();
                let finished = snap.finished;
                state.on_snapshot(snap.clone());
                super::sweep::drive(state, engine, &snap);
                sink(&snap, engine, state)?;
                if finished {
                    draw(terminal, state)?;
                    // The engine ended the run; the caller says why (`EndedBy::by_engine`).
                    return Ok(EndedBy::Duration);
                }
            }
            _ = frames.tick() => {
                if std::mem::take(&mut state.dirty) {
                    draw(terminal, state)?;
                }
            }
        }
    }
}

/// Handles one key; true when the operator asked to quit.
fn on_key(state: &mut State, engine: &EngineHandle, key: KeyEvent) -> bool {
    if key.kind != KeyEventKind::Press {
        return false;
    }
    state.dirty = true;
    let ctrl_c = key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL);
    if let Some(input) = state.input.as_mut() {
        match key.code {
            _ if ctrl_c => return true,
            KeyCode::Esc => state.input = None,
            // Backspace on an empty line leaves the command line, as in vim.
            KeyCode::Backspace if input.pop().is_none() => state.input = None,
            KeyCode::Enter => {
                let text = state.input.take().unwrap_or_default();
                let effect = action::submit(state, &text);
                return apply(state, engine, effect);
            }
            KeyCode::Char(c) => input.push(c),
            _ => {}
        }
        return false;
    }
    if state.help && matches!(key.code, KeyCode::Esc) {
        state.help = false;
        return false;
    }
    match keys::action_for(&key) {
        Some(a) => {
            let effect = action::update(state, a);
            apply(state, engine, effect)
        }
        None => false,
    }
}

/// Carries out an effect; true when it is to quit.
fn apply(state: &mut State, engine: &EngineHandle, effect: Effect) -> bool {
    match effect {
        Effect::None => false,
        Effect::Quit => true,
        Effect::Send(cmd) => {
            match engine.try_send(cmd.clone()) {
                Ok(()) => {
                    on_sent(state, &cmd);
                    // Said last, so it is the message left on screen.
                    super::sweep::interrupted_by(state, &cmd);
                }
                Err(e) => state.error(e.to_string()),
            }
            false
        }
    }
}

/// The engine took the operator's command: the dashboard's own bookkeeping.
fn on_sent(state: &mut State, cmd: &Command) {
    match *cmd {
        Command::Set(k) => {
            state.manual.push(k.name());
            state.sent(Some(k));
        }
        Command::Pause => {
            state.paused_sent = true;
            state.sent(None);
            state.info("arrivals paused");
        }
        Command::Resume => {
            state.paused_sent = false;
            state.sent(None);
            state.info("arrivals resumed");
        }
        Command::ResetStats => {
            state.sent(None);
            state.reset_distribution();
            state.info("statistics reset");
        }
        Command::SetNodeWorkers { ref node, workers } => {
            state.sent(None);
            state.info(format!("workers on node {node} → {workers}"));
        }
        Command::Shutdown => state.sent(None),
    }
}
