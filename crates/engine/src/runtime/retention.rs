//! Keeps the daemon's logs from growing without end: the per-cycle log and the marketplace
//! sync log lose their rows older than the retention, once an hour (every replica may do it:
//! a delete of what is already gone deletes nothing). Packets and inbound events are not
//! touched: they are the exactly-once bookkeeping, not a log.

use crate::clock::Clock;
use crate::store::Store;
use std::time::Duration;
use tokio::sync::watch;

/// How often old rows are looked for.
pub const PRUNE_EVERY: Duration = Duration::from_secs(3600);

pub(super) async fn prune<S: Store>(
    store: S,
    clock: Clock,
    keep: Duration,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        let before = clock.now() - jiff::SignedDuration::try_from(keep).unwrap_or_default();
        match store.prune_cycles(before).await {
            Ok(0) => {}
            Ok(pruned) => tracing::info!(pruned, %before, "cycle log rows past retention deleted"),
            Err(error) => tracing::warn!(error = %error, "cannot prune the cycle log"),
        }
        match store.prune_log(before).await {
            Ok(0) => {}
            Ok(pruned) => {
                tracing::info!(pruned, %before, "marketplace log rows past retention deleted");
            }
            Err(error) => tracing::warn!(error = %error, "cannot prune the marketplace log"),
        }
        tokio::select! {
            _ = clock.sleep(PRUNE_EVERY) => {}
            _ = stopped.wait_for(|stop| *stop) => return,
        }
    }
}
