//! [`App`]: your own async job with the whole tool around it (dashboard, headless runs,
//! profiles, JSON/CSV outputs, the model), driven by the same command line as `pooltune`.

use std::process::ExitCode;
use std::sync::Arc;

use crate::work::Work;

/// pooltune around your own job.
///
/// ```no_run
/// use pooltune::work::JobContext;
///
/// async fn call_service(ctx: JobContext) -> Result<(), std::io::Error> {
///     // ... your real work: a request, a query, a file ...
///     let _ = ctx.id;
///     Ok(())
/// }
///
/// fn main() -> std::process::ExitCode {
///     // Same flags as pooltune: `--headless --workers 16 --rate 800 --timeout 50ms ...`.
///     pooltune::App::new(call_service).run_from_args()
/// }
/// ```
///
/// The workers call the job instead of the synthetic service (the service knobs are then
/// ignored; the model uses the measured service time). Errors, timeouts (`--timeout`, live as
/// `:timeout 50ms`) and panics are counted apart from successes and shown with their messages.
pub struct App {
    work: Arc<dyn Work>,
}

impl App {
    pub fn new(work: impl Work) -> Self {
        Self { work: Arc::new(work) }
    }

    /// Parses the process's arguments like `pooltune` and runs.
    #[must_use]
    pub fn run_from_args(self) -> ExitCode {
        super::main_with(Some(self.work))
    }
}
