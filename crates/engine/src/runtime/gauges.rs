//! Keeps the outbox and flow gauges of `/metrics` current.

use crate::clock::Clock;
use crate::http::metrics as m;
use crate::store::{FlowKind, Store};
use jiff::SignedDuration;
use std::time::Duration;
use tokio::sync::watch;

pub(super) async fn refresh<S: Store>(
    store: S,
    clock: Clock,
    every: Duration,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        let since = clock
            .now()
            .checked_sub(SignedDuration::from_hours(24))
            .unwrap_or_else(|_| clock.now());
        if let Ok(stats) = store.flow_stats(since).await {
            for stat in stats {
                ::metrics::gauge!(m::OUTBOX_PENDING, m::LABEL_CONNECTION => stat.flow_id.clone())
                    .set(stat.pending as f64);
                ::metrics::gauge!(m::OUTBOX_FAILED, m::LABEL_CONNECTION => stat.flow_id)
                    .set(stat.failed as f64);
            }
        }
        if let Ok(flows) = store.flows(None).await {
            let connections = flows.iter().filter(|f| f.kind == FlowKind::OrderDelivery);
            let (active, paused) = connections.fold((0u32, 0u32), |(a, p), flow| {
                if flow.is_active {
                    (a + 1, p)
                } else {
                    (a, p + 1)
                }
            });
            ::metrics::gauge!(m::CONNECTIONS, m::LABEL_STATE => m::ConnectionState::Active.as_str())
                .set(f64::from(active));
            ::metrics::gauge!(m::CONNECTIONS, m::LABEL_STATE => m::ConnectionState::Paused.as_str())
                .set(f64::from(paused));
            for kind in FlowKind::ALL {
                let of_kind = flows.iter().filter(|f| f.kind == kind);
                let (active, paused) = of_kind.fold((0u32, 0u32), |(a, p), flow| {
                    if flow.is_active {
                        (a + 1, p)
                    } else {
                        (a, p + 1)
                    }
                });
                for (state, count) in [
                    (m::ConnectionState::Active, active),
                    (m::ConnectionState::Paused, paused),
                ] {
                    ::metrics::gauge!(m::FLOWS, m::LABEL_KIND => kind.as_str(), m::LABEL_STATE => state.as_str())
                        .set(f64::from(count));
                }
            }
        }
        tokio::select! {
            _ = clock.sleep(every) => {}
            _ = stopped.wait_for(|stop| *stop) => return,
        }
    }
}
