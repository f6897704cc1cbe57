//! The sync log: one row per cycle, written in batches, moving each flow's last sync.

use super::{at, with_flows};
use crate::store::{CycleLog, Store};

fn cycle(flow_id: &str, second: i64) -> CycleLog {
    CycleLog {
        flow_id: flow_id.to_owned(),
        started_at: at(second),
        found: 3,
        sent: 2,
        failed: 1,
        held_back: 4,
        error_message: None,
        duration_ms: 1_234,
    }
}

pub async fn cycles_are_recorded_listed_pruned_and_move_the_last_sync<S: Store>(store: &S) {
    with_flows(store).await;
    let mut failed = cycle("f2", 1);
    failed.error_message = Some("Odoo unreachable".to_owned());
    failed.sent = 0;
    store
        .record_cycles(&[cycle("f1", 0), failed.clone(), cycle("ghost", 1)])
        .await
        .unwrap();
    store.record_cycles(&[cycle("f1", 2)]).await.unwrap();
    store.record_cycles(&[]).await.unwrap();
    let all = store.cycles(None, 10).await.unwrap();
    // Newest first; the removed flow's cycle was dropped.
    assert_eq!(
        all.iter().map(|c| c.log.clone()).collect::<Vec<_>>(),
        [cycle("f1", 2), failed, cycle("f1", 0)]
    );
    assert!(all[0].id > all[1].id && all[1].id > all[2].id);
    let ones = store.cycles(Some("f1"), 1).await.unwrap();
    assert_eq!(ones.len(), 1);
    assert_eq!(ones[0].log, cycle("f1", 2));
    assert_eq!(store.cycles(Some("f1"), 0).await.unwrap().len(), 2);
    // A successful cycle moves the flow's last sync to its end; a failed one does not, and an
    // older success never moves it back.
    let last_sync = |flow: &'static str| async move {
        store.flow(None, flow).await.unwrap().unwrap().last_sync_at
    };
    let end_of_second_cycle = at(2) + jiff::SignedDuration::from_millis(1_234);
    assert_eq!(last_sync("f1").await, Some(end_of_second_cycle));
    assert_eq!(last_sync("f2").await, None);
    store.record_cycles(&[cycle("f1", 1)]).await.unwrap();
    assert_eq!(last_sync("f1").await, Some(end_of_second_cycle));
    assert_eq!(store.prune_cycles(at(2)).await.unwrap(), 3);
    assert_eq!(store.cycles(None, 0).await.unwrap().len(), 1);
}
