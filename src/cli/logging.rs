//! Logs go to a file (`--log FILE`), never to the screen: the dashboard owns the terminal and a
//! headless run's stdout belongs to its JSON. Without `--log` nothing is logged.

use std::fs::File;
use std::path::Path;
use std::sync::Mutex;

use super::BadInput;

/// Keeps the subscriber installed for the run.
pub struct LogGuard;

/// Sends `tracing` events at INFO and above to `path`, if given.
///
/// # Errors
/// [`BadInput`] when the file cannot be created.
pub fn init(path: Option<&Path>) -> Result<LogGuard, BadInput> {
    if let Some(path) = path {
        let file =
            File::create(path).map_err(|e| BadInput(format!("cannot write the log file '{}': {e}", path.display())))?;
        let _ = tracing_subscriber::fmt()
            .with_writer(Mutex::new(file))
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .try_init();
    }
    Ok(LogGuard)
}
