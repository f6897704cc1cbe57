//! Waking a flow's task in this process: an inbound event was stored, or something asked the
//! flow to poll now. A flow run by another replica is not woken; it finds its work at its own
//! next look at the store, within the reload interval.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::Notify;

use super::hints::{self, HintCounts, HintQueue, HintedRecord};
use jiff::Timestamp;

/// What a woken flow task should do.
#[derive(Debug, Default)]
pub(crate) struct Wake {
    pub(crate) notify: Notify,
    pub(crate) poll_now: std::sync::atomic::AtomicBool,
    pub(crate) hints: Mutex<HintQueue>,
}

/// The flows of this process that can be woken. Cheap to clone: clones share the registry.
#[derive(Debug, Clone, Default)]
pub struct FlowSignals {
    flows: Arc<Mutex<HashMap<String, Arc<Wake>>>>,
}

impl FlowSignals {
    /// Wakes the flow's task to look at its inbox (and outbox) now; `false` when this process
    /// does not run the flow.
    pub fn wake(&self, flow_id: &str) -> bool {
        match self.get(flow_id) {
            Some(wake) => {
                wake.notify.notify_one();
                true
            }
            None => false,
        }
    }

    /// Wakes the flow's task to poll its feeds now, ahead of its interval; `false` when this
    /// process does not run the flow.
    pub fn poll_now(&self, flow_id: &str) -> bool {
        match self.get(flow_id) {
            Some(wake) => {
                wake.poll_now
                    .store(true, std::sync::atomic::Ordering::SeqCst);
                wake.notify.notify_one();
                true
            }
            None => false,
        }
    }

    /// An Odoo webhook hinted at a change (of `record`, when it named one) at `now`: the flow
    /// polls now and again on the hint schedule ([`super::hints`]); `false` when this process
    /// does not run the flow.
    pub fn hint(&self, flow_id: &str, record: Option<HintedRecord>, now: Timestamp) -> bool {
        match self.get(flow_id) {
            Some(wake) => {
                hints::lock(&wake.hints).add(record, now);
                wake.notify.notify_one();
                true
            }
            None => false,
        }
    }

    /// What became of the flow's hints in this process; `None` when it does not run the flow.
    pub fn hint_counts(&self, flow_id: &str) -> Option<HintCounts> {
        self.get(flow_id)
            .map(|wake| hints::lock(&wake.hints).counts())
    }

    /// Whether this process runs the flow.
    pub fn runs(&self, flow_id: &str) -> bool {
        self.get(flow_id).is_some()
    }

    fn get(&self, flow_id: &str) -> Option<Arc<Wake>> {
        self.lock().get(flow_id).cloned()
    }

    pub(crate) fn register(&self, flow_id: &str) -> Arc<Wake> {
        self.lock().entry(flow_id.to_owned()).or_default().clone()
    }

    pub(crate) fn forget(&self, flow_id: &str) {
        self.lock().remove(flow_id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Wake>>> {
        self.flows.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
