//! Pacing: with `min_call_interval`, requests of one client (and its clones) are spaced by at
//! least that interval. Measured on tokio's paused clock, so no real time passes.

use crate::support::Sim;
use odoo_rpc::{Domain, TransportChoice};
use odoo_sim::OdooVersion;
use std::time::Duration;
use tokio::time::Instant;

const INTERVAL: Duration = Duration::from_millis(750);
const CALLS: u32 = 6;

#[tokio::test(start_paused = true)]
async fn sequential_calls_are_spaced_by_the_interval() {
    for (version, transport) in [
        (OdooVersion::V18, TransportChoice::JsonRpc),
        (OdooVersion::V19, TransportChoice::Json2),
    ] {
        let sim = Sim::start(version).await;
        let mut config = sim.config(transport);
        config.min_call_interval = Some(INTERVAL);
        let client = crate::support::client(config);
        let started = Instant::now();
        for _ in 0..CALLS {
            client
                .search_count("res.partner", &Domain::all(), None)
                .await
                .unwrap();
        }
        let elapsed = started.elapsed();
        assert_eq!(
            sim.sim.call_count("res.partner", "search_count"),
            u64::from(CALLS)
        );
        assert!(
            elapsed >= INTERVAL * (CALLS - 1),
            "{transport:?}: {CALLS} calls in {elapsed:?}"
        );
        // JSON-RPC logs in first, and that request is paced like the others.
        if transport == TransportChoice::JsonRpc {
            assert!(elapsed >= INTERVAL * CALLS, "{elapsed:?}");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn concurrent_calls_from_clones_share_the_pace() {
    let sim = Sim::start(OdooVersion::V18).await;
    let mut config = sim.config(TransportChoice::JsonRpc);
    config.min_call_interval = Some(INTERVAL);
    let client = crate::support::client(config);
    client.uid().await.unwrap();
    let started = Instant::now();
    let tasks: Vec<_> = (0..CALLS)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move {
                client
                    .search_count("res.partner", &Domain::all(), None)
                    .await
            })
        })
        .collect();
    for task in tasks {
        assert!(task.await.unwrap().unwrap() >= 1);
    }
    let elapsed = started.elapsed();
    assert_eq!(
        sim.sim.call_count("res.partner", "search_count"),
        u64::from(CALLS)
    );
    // The login consumed the first slot; every call then waits its turn.
    assert!(elapsed >= INTERVAL * CALLS, "{elapsed:?}");
}

#[tokio::test(start_paused = true)]
async fn retries_are_paced_too() {
    let sim = Sim::start(OdooVersion::V18).await;
    let mut config = sim.config(TransportChoice::JsonRpc);
    config.min_call_interval = Some(INTERVAL);
    let client = crate::support::client(config);
    client.uid().await.unwrap();
    sim.sim.inject(
        odoo_sim::FaultRule::new(odoo_sim::Fault::Status {
            status: 503,
            retry_after: None,
        })
        .times(3)
        .on("res.partner", Some("search_count")),
    );
    let started = Instant::now();
    client
        .search_count("res.partner", &Domain::all(), None)
        .await
        .unwrap();
    assert_eq!(sim.sim.call_count("res.partner", "search_count"), 4);
    assert!(started.elapsed() >= INTERVAL * 4, "{:?}", started.elapsed());
}

/// Version discovery falls back from `/jsonrpc` (404) to `/web/version`: two requests, and
/// the second one must wait its turn like any other.
#[tokio::test(start_paused = true)]
async fn the_version_fallback_request_is_paced_too() {
    let sim = Sim::start(OdooVersion::V19).await;
    sim.sim.inject(
        odoo_sim::FaultRule::new(odoo_sim::Fault::Status {
            status: 404,
            retry_after: None,
        })
        .on("common", Some("version")),
    );
    let mut config = sim.config(TransportChoice::Auto);
    config.min_call_interval = Some(INTERVAL);
    let client = crate::support::client(config);
    let started = Instant::now();
    client
        .search_count("res.partner", &Domain::all(), None)
        .await
        .unwrap();
    // POST /jsonrpc (404), GET /web/version, POST /json/2/res.partner/search_count.
    let requests = sim.sim.total_calls();
    assert_eq!(requests, 3, "{:?}", sim.sim.calls());
    let elapsed = started.elapsed();
    assert!(
        elapsed >= INTERVAL * 2,
        "3 requests in {elapsed:?}, less than 2 intervals of {INTERVAL:?}"
    );
}
