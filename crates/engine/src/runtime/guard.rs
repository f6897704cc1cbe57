//! Tasks that die with their owner: a runtime stopped abruptly (its own task aborted, as a
//! `kill -9` would stop the process) leaves none of its tasks behind, neither polling a flow
//! nor beating a heartbeat that would make it look alive.

use std::future::Future;
use std::time::Duration;
use tokio::task::JoinHandle;

/// A spawned task, aborted when this guard is dropped unless it was joined.
#[derive(Debug)]
pub(crate) struct TaskGuard(Option<JoinHandle<()>>);

impl TaskGuard {
    pub(crate) fn spawn(task: impl Future<Output = ()> + Send + 'static) -> TaskGuard {
        TaskGuard(Some(tokio::spawn(task)))
    }

    pub(crate) fn is_finished(&self) -> bool {
        self.0.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Waits for the task; `false` (and the task aborted) when it did not end within
    /// `deadline`.
    pub(crate) async fn join_within(mut self, deadline: Duration) -> bool {
        let Some(mut handle) = self.0.take() else {
            return true;
        };
        match tokio::time::timeout(deadline, &mut handle).await {
            Ok(_) => true,
            Err(_) => {
                handle.abort();
                false
            }
        }
    }

    /// Waits for the task to end.
    pub(crate) async fn join(mut self) {
        if let Some(handle) = self.0.take() {
            let _ = handle.await;
        }
    }
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        if let Some(handle) = &self.0 {
            handle.abort();
        }
    }
}
