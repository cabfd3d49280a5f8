//! The process's panic hook while a client runs: the dashboard and the headless runner install
//! it for the length of a run, and dropping the guard puts the previous hook back.
//!
//! A panic on the installing thread (the UI or the runner) prints as usual, after `on_own` has
//! run (the dashboard restores the terminal there). A panic on any other thread is a workload
//! task's, which the engine catches at its `JoinHandle` and counts as the job's failure: it goes
//! to the log, never over the screen.

use std::sync::Arc;

type Hook = Box<dyn Fn(&std::panic::PanicHookInfo<'_>) + Sync + Send + 'static>;

/// Puts the previous hook back when dropped.
pub struct PanicHookGuard(Option<Arc<Hook>>);

/// Installs the hook for this thread's client; `on_own` runs before a panic of this thread is
/// printed.
pub fn install(on_own: Option<fn()>) -> PanicHookGuard {
    let own = std::thread::current().id();
    let previous: Arc<Hook> = Arc::new(std::panic::take_hook());
    let prev = Arc::clone(&previous);
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().id() == own {
            if let Some(f) = on_own {
                f();
            }
            prev(info);
        } else {
            tracing::error!("panic on thread {:?}: {info}", std::thread::current().name());
        }
    }));
    PanicHookGuard(Some(previous))
}

impl Drop for PanicHookGuard {
    fn drop(&mut self) {
        let _ = std::panic::take_hook();
        if let Some(prev) = self.0.take() {
            std::panic::set_hook(Box::new(move |info| prev(info)));
        }
    }
}
