//! Tracing: logs go to a file (`--log FILE`), never to the screen (the dashboard owns the
//! terminal; a headless run's stdout belongs to its JSON). With the `console` feature,
//! `--console ADDR` adds console-subscriber's layer to the same subscriber (its own `init()`
//! would log to stdout and scribble over the dashboard). Without `--log` nothing is logged.

use std::fs::File;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Mutex;

use super::BadInput;

/// Keeps the subscriber installed for the run, and says how the console was set up.
pub struct LogGuard {
    /// A line for the status bar or stderr: the attach command, or why the console is off.
    pub console_note: Option<String>,
}

fn log_file(path: &Path) -> Result<Mutex<File>, BadInput> {
    File::create(path)
        .map(Mutex::new)
        .map_err(|e| BadInput(format!("cannot write the log file '{}': {e}", path.display())))
}

/// Installs the subscriber for the run.
///
/// # Errors
/// [`BadInput`] when the log file cannot be created, or `--console` was asked of a build
/// without the `console` feature.
#[cfg(not(feature = "console"))]
pub fn init(path: Option<&Path>, console: Option<SocketAddr>) -> Result<LogGuard, BadInput> {
    if let Some(addr) = console {
        return Err(BadInput(format!(
            "--console {addr}: this pooltune was built without tokio-console support; build it with: cargo build --release --features console"
        )));
    }
    if let Some(path) = path {
        let file = log_file(path)?;
        let _ = tracing_subscriber::fmt()
            .with_writer(file)
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .try_init();
    }
    Ok(LogGuard { console_note: None })
}

/// Installs the subscriber for the run.
///
/// # Errors
/// [`BadInput`] when the log file cannot be created.
#[cfg(feature = "console")]
pub fn init(path: Option<&Path>, console: Option<SocketAddr>) -> Result<LogGuard, BadInput> {
    use tracing_subscriber::filter::LevelFilter;
    use tracing_subscriber::prelude::*;

    let fmt = path
        .map(log_file)
        .transpose()?
        .map(|f| tracing_subscriber::fmt::layer().with_writer(f).with_ansi(false).with_filter(LevelFilter::INFO));
    let mut note = None;
    // The console's server binds on its own thread and panics there if the port is taken: try
    // the port first, and carry on without the console if it is not free.
    let console_layer = console.and_then(|addr| match std::net::TcpListener::bind(addr) {
        Ok(probe) => {
            drop(probe);
            note = Some(format!("attach with: tokio-console http://{addr}"));
            Some(console_subscriber::ConsoleLayer::builder().server_addr(addr).spawn())
        }
        Err(e) => {
            note = Some(format!("console: cannot serve on {addr} ({e}); running without it"));
            None
        }
    });
    let _ = tracing_subscriber::registry().with(console_layer).with(fmt).try_init();
    Ok(LogGuard { console_note: note })
}
