//! The live dashboard: a client of the engine like the headless runner, drawn with ratatui on
//! the main thread's own runtime, never on the workload's.
//!
//! - [`keys`]: the one key table (matching, help and hints).
//! - [`action`]: operator intent and its effect on [`state`]; [`cmdline`]: the `:` line.
//! - [`state`]: what is shown, fed by snapshots; [`render`]: `impl Widget for &State`.
//! - [`app`]: the run loop, generic over backend and events; [`sweep`]: the live `:sweep`.
//!
//! The terminal is restored on every exit: a `Drop` guard for normal ones, and the panic hook
//! ([`crate::panic_hook`]) restores it when the UI thread panics. A panic on any other thread (a
//! workload task) is logged to the log file, never printed over the screen.

pub mod action;
pub mod app;
pub mod cmdline;
pub mod keys;
pub mod render;
pub mod state;
pub mod sweep;
pub mod trail;

use std::io::{self, Write};
use std::time::Duration;

use crossterm::event::EventStream;
use crossterm::terminal::{EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode};
use crossterm::{cursor, execute};
use futures_util::StreamExt;
use futures_util::stream::{self, BoxStream};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;

use crate::report::EndedBy;
pub use app::{UiEvent, run_loop};
pub use state::{Palette, State};

/// Restores the terminal when dropped: raw mode off, main screen back, cursor shown.
pub struct TerminalGuard(());

impl TerminalGuard {
    /// Enters raw mode and the alternate screen.
    ///
    /// # Errors
    /// The terminal refused (not a terminal, or a broken one).
    pub fn enter() -> io::Result<Self> {
        enable_raw_mode()?;
        let guard = TerminalGuard(());
        execute!(io::stdout(), EnterAlternateScreen, cursor::Hide)?;
        Ok(guard)
    }
}

/// Puts the terminal back as the shell had it; safe to call twice.
pub fn restore() {
    let _ = disable_raw_mode();
    let _ = execute!(io::stdout(), LeaveAlternateScreen, cursor::Show);
    let _ = io::stdout().flush();
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore();
    }
}

/// Terminal events and SIGINT/SIGTERM as one stream for [`run_loop`].
///
/// # Errors
/// The signal handlers could not be installed.
pub fn live_events() -> io::Result<BoxStream<'static, io::Result<UiEvent>>> {
    use tokio::signal::unix::{SignalKind, signal};
    let term = EventStream::new().map(|r| r.map(UiEvent::Term));
    let sig = |kind: SignalKind, ended: EndedBy| -> io::Result<BoxStream<'static, io::Result<UiEvent>>> {
        let s = signal(kind)?;
        Ok(stream::unfold(s, move |mut s| async move { s.recv().await.map(|()| (Ok(UiEvent::Signal(ended)), s)) })
            .boxed())
    };
    let signals = stream::select(
        sig(SignalKind::terminate(), EndedBy::Terminate)?,
        sig(SignalKind::interrupt(), EndedBy::Interrupt)?,
    );
    Ok(stream::select(term, signals).boxed())
}

/// Runs the dashboard on this thread until the operator quits; the terminal is restored before
/// this returns, whatever happened.
///
/// # Errors
/// The terminal could not be set up, drawn or read.
pub fn run_live(
    engine: &crate::engine::EngineHandle,
    state: &mut State,
    sink: &mut app::Sink<'_>,
) -> io::Result<EndedBy> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let _hook = crate::panic_hook::install(Some(restore));
    let guard = TerminalGuard::enter()?;
    let ended = rt.block_on(async {
        let mut terminal = Terminal::new(CrosstermBackend::new(io::stdout()))?;
        terminal.clear()?;
        run_loop(&mut terminal, engine, live_events()?, state, sink).await
    });
    drop(guard);
    // Let a key-repeat or a paste that arrived while quitting not land in the shell.
    std::thread::sleep(Duration::from_millis(10));
    ended
}
