//! Spawning the workload's tasks, named where tokio can name them.

use tokio::runtime::Handle;
use tokio_util::task::TaskTracker;

/// Spawns a task on the workload runtime under `tracker`, named (`producer`, `worker-7`) where
/// tokio can name tasks (`--cfg tokio_unstable` and the `console` feature, which turns on tokio's
/// `tracing`), so tokio-console's task list matches the dashboard. `#[track_caller]` keeps the
/// spawn location the console shows at the caller.
#[track_caller]
pub(super) fn spawn_named<F>(tracker: &TaskTracker, handle: &Handle, name: &str, fut: F)
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    #[cfg(all(tokio_unstable, feature = "console"))]
    {
        let fut = tracker.track_future(fut);
        if let Err(e) = tokio::task::Builder::new().name(name).spawn_on(fut, handle) {
            tracing::error!("could not spawn {name}: {e}");
        }
    }
    #[cfg(not(all(tokio_unstable, feature = "console")))]
    {
        let _ = name;
        tracker.spawn_on(fut, handle);
    }
}
