//! The one place a node's background tasks are spawned: [`Tasks`] tracks
//! them and cancels them all on shutdown. It sits below every layer that
//! spawns (`cluster`, `mcp`, `node`), so none of them depends on `node`.

use std::future::Future;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Background tasks of one node, cancelled together.
#[derive(Clone, Default)]
pub struct Tasks {
    tracker: TaskTracker,
    cancel: CancellationToken,
}

impl Tasks {
    /// Spawns the future `f` makes from the node's cancellation token.
    pub fn spawn<F>(&self, f: impl FnOnce(CancellationToken) -> F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.tracker.spawn(f(self.cancel.clone()));
    }

    /// Cancels every task and waits for them to finish.
    pub async fn shutdown(&self) {
        self.cancel.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }
}
