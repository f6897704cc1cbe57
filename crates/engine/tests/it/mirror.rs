//! The mirror runner against the simulator and the embedded SQLite store: what
//! reconciliation does to deleted, archived and filtered-out records.

use engine::config::ModelConfig;
use engine::mirror::{self, NoProgress, RunOptions};
use engine::mirror_store::MirrorStore;
use odoo_rpc::{ClientConfig, Context, OdooClient, SearchReadOptions, field};
use odoo_sim::{DataSpec, OdooSim, OdooVersion, SimConfig};
use serde_json::{Map, json};
use store_sqlite::SqliteStore;

fn orders_model() -> ModelConfig {
    ModelConfig {
        name: "sale.order".into(),
        fields: vec!["name".into(), "state".into(), "write_date".into()],
        domain: field("state").is_in(["sale", "done"]),
        cursor_field: "write_date".into(),
        overlap_seconds: 120,
        page_size: 7,
        reconcile_deletions: true,
        reconcile_every_runs: 1,
        parallelism: 2,
    }
}

fn partners_model() -> ModelConfig {
    ModelConfig {
        name: "res.partner".into(),
        fields: vec!["name".into(), "active".into(), "write_date".into()],
        domain: odoo_rpc::Domain::all(),
        cursor_field: "write_date".into(),
        overlap_seconds: 120,
        page_size: 50,
        reconcile_deletions: true,
        reconcile_every_runs: 1,
        parallelism: 2,
    }
}

fn options() -> RunOptions {
    RunOptions {
        use_lock: true,
        retention_days: 90,
        ..RunOptions::default()
    }
}

#[tokio::test]
async fn reconciliation_stamps_deletions_spares_archived_records_and_refreshes_filtered_out_ones() {
    let sim = OdooSim::with_data(
        SimConfig::default(),
        &DataSpec {
            orders: 60,
            partners: 40,
            products: 10,
            seed: 7,
        },
    );
    let running = sim.clone().serve_on_loopback().await.unwrap();
    let config = sim.config().clone();
    let client = OdooClient::new(ClientConfig::new(
        running.url(),
        config.database,
        config.admin_login,
        config.admin_api_key,
    ))
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("mirror.db"))
        .await
        .unwrap();
    let models = [orders_model(), partners_model()];

    let first = mirror::run(&client, &store, &models, &options(), &NoProgress)
        .await
        .unwrap();
    assert!(
        first.models.iter().all(|model| model.error.is_none()),
        "{first:?}"
    );
    let confirmed = client
        .search(
            "sale.order",
            &SearchReadOptions::new(field("state").is_in(["sale", "done"])).order("id asc"),
        )
        .await
        .unwrap();
    assert_eq!(
        store.count("sale.order").await.unwrap(),
        (confirmed.len() as u64, 0)
    );

    // A partner nobody references is deleted, another is archived; a confirmed order is
    // cancelled, which takes it out of the model's domain.
    let everything = Context::new().active_test(false);
    let (deleted_partner, archived_partner) = {
        let fresh = client
            .create(
                "res.partner",
                vec![
                    json!({"name": "Gone Ltd"}).as_object().cloned().unwrap(),
                    json!({"name": "Asleep Ltd"}).as_object().cloned().unwrap(),
                ],
                None,
            )
            .await
            .unwrap();
        (fresh[0], fresh[1])
    };
    mirror::run(&client, &store, &models, &options(), &NoProgress)
        .await
        .unwrap();
    client
        .unlink("res.partner", &[deleted_partner], None)
        .await
        .unwrap();
    let mut archive = Map::new();
    archive.insert("active".into(), json!(false));
    client
        .write("res.partner", &[archived_partner], archive, None)
        .await
        .unwrap();
    let cancelled = confirmed[0];
    let mut kwargs = Map::new();
    kwargs.insert("context".into(), json!({"disable_cancel_warning": true}));
    client
        .call_method(
            "sale.order",
            "action_cancel",
            Some(&[cancelled]),
            kwargs,
            Some(&everything),
        )
        .await
        .unwrap();

    let third = mirror::run(&client, &store, &models, &options(), &NoProgress)
        .await
        .unwrap();
    let partners = third
        .models
        .iter()
        .find(|m| m.model == "res.partner")
        .unwrap();
    assert_eq!(
        (partners.deleted, partners.restored),
        (1, 0),
        "{partners:?}"
    );
    let gone = store
        .record("res.partner", deleted_partner)
        .await
        .unwrap()
        .unwrap();
    assert!(gone.deleted_at.is_some(), "the row stays, stamped");
    let asleep = store
        .record("res.partner", archived_partner)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(asleep.deleted_at, None, "archived is not deleted");
    assert_eq!(asleep.payload["active"], json!(false));

    let orders = third
        .models
        .iter()
        .find(|m| m.model == "sale.order")
        .unwrap();
    assert_eq!(orders.deleted, 0, "a cancelled order is not a deleted one");
    assert_eq!(orders.left_filter, 1, "{orders:?}");
    let row = store
        .record("sale.order", cancelled)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        row.payload["state"],
        json!("cancel"),
        "the mirror no longer shows it confirmed"
    );
    assert_eq!(row.deleted_at, None);

    // Nothing changed since: a fourth run stamps, restores and rewrites nothing (the
    // cancelled order is read again and found unchanged).
    let fourth = mirror::run(&client, &store, &models, &options(), &NoProgress)
        .await
        .unwrap();
    for model in &fourth.models {
        assert_eq!(
            (model.deleted, model.restored, model.updated),
            (0, 0, 0),
            "{model:?}"
        );
    }
    running.shutdown().await;
}

// ----- backfill by id, parallel readers, and crashes ------------------------------------------

use engine::change_feed::Checkpoint;
use engine::mirror::RunReport;
use engine::mirror_store::{
    MirrorRow, PageCounts, ReconcileCounts, RunRecord, RunStatus, StoreError, StoredRecord,
};
use jiff::Timestamp;
use odoo_sim::RunningSim;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// A store that dies like a process killed with `kill -9` after `budget` committed pages:
/// the next write fails before it commits, and so does every later one. `after_commit` runs
/// after each committed page (someone editing Odoo while the run goes on).
struct Crashing<'a> {
    inner: &'a SqliteStore,
    budget: AtomicU64,
    commits: AtomicU64,
    after_commit: Box<dyn Fn(u64) + Send + Sync + 'a>,
}

impl<'a> Crashing<'a> {
    fn new(
        inner: &'a SqliteStore,
        budget: u64,
        after_commit: impl Fn(u64) + Send + Sync + 'a,
    ) -> Self {
        Crashing {
            inner,
            budget: AtomicU64::new(budget),
            commits: AtomicU64::new(0),
            after_commit: Box::new(after_commit),
        }
    }

    fn spend(&self) -> Result<(), StoreError> {
        self.budget
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                left.checked_sub(1)
            })
            .map(|_| ())
            .map_err(|_| StoreError::unavailable("killed"))
    }

    fn committed(&self) {
        let number = self.commits.fetch_add(1, Ordering::SeqCst) + 1;
        (self.after_commit)(number);
    }
}

impl MirrorStore for Crashing<'_> {
    type Lock = <SqliteStore as MirrorStore>::Lock;

    async fn migrate(&self) -> Result<(), StoreError> {
        self.inner.migrate().await
    }
    async fn try_lock(&self) -> Result<Option<Self::Lock>, StoreError> {
        self.inner.try_lock().await
    }
    async fn unlock(&self, lock: Self::Lock) -> Result<(), StoreError> {
        self.inner.unlock(lock).await
    }
    async fn start_run(&self, started_at: Timestamp, holds_lock: bool) -> Result<i64, StoreError> {
        self.inner.start_run(started_at, holds_lock).await
    }
    async fn beat_run(&self, run: i64, at: Timestamp) -> Result<(), StoreError> {
        self.inner.beat_run(run, at).await
    }
    async fn interrupt_abandoned_runs(
        &self,
        lock_held: bool,
        stale_before: Timestamp,
    ) -> Result<Vec<i64>, StoreError> {
        self.inner
            .interrupt_abandoned_runs(lock_held, stale_before)
            .await
    }
    async fn checkpoint(&self, model: &str) -> Result<Option<Checkpoint>, StoreError> {
        self.inner.checkpoint(model).await
    }
    async fn reset_checkpoint(&self, model: &str) -> Result<(), StoreError> {
        self.inner.reset_checkpoint(model).await
    }
    async fn apply_page(
        &self,
        run: i64,
        model: &str,
        rows: &[MirrorRow],
        checkpoint: Checkpoint,
        synced_at: Timestamp,
    ) -> Result<PageCounts, StoreError> {
        self.spend()?;
        let counts = self
            .inner
            .apply_page(run, model, rows, checkpoint, synced_at)
            .await?;
        self.committed();
        Ok(counts)
    }
    async fn save_checkpoint(&self, model: &str, checkpoint: Checkpoint) -> Result<(), StoreError> {
        self.spend()?;
        self.inner.save_checkpoint(model, checkpoint).await?;
        self.committed();
        Ok(())
    }
    async fn reconcile(
        &self,
        run: i64,
        model: &str,
        odoo_ids: &[i64],
        at: Timestamp,
    ) -> Result<ReconcileCounts, StoreError> {
        self.inner.reconcile(run, model, odoo_ids, at).await
    }
    async fn finish_run(
        &self,
        run: i64,
        status: RunStatus,
        error: Option<&str>,
        finished_at: Timestamp,
    ) -> Result<(), StoreError> {
        // A killed process writes nothing more.
        if self.budget.load(Ordering::SeqCst) == 0 && self.commits.load(Ordering::SeqCst) > 0 {
            return Err(StoreError::unavailable("killed"));
        }
        self.inner.finish_run(run, status, error, finished_at).await
    }
    async fn prune_runs(&self, before: Timestamp) -> Result<u64, StoreError> {
        self.inner.prune_runs(before).await
    }
    async fn runs(&self, limit: u32) -> Result<Vec<RunRecord>, StoreError> {
        self.inner.runs(limit).await
    }
    async fn record(&self, model: &str, odoo_id: i64) -> Result<Option<StoredRecord>, StoreError> {
        self.inner.record(model, odoo_id).await
    }
    async fn count(&self, model: &str) -> Result<(u64, u64), StoreError> {
        self.inner.count(model).await
    }
    async fn live_ids(&self, model: &str) -> Result<Vec<i64>, StoreError> {
        self.inner.live_ids(model).await
    }
}

/// Microseconds since the epoch, `seconds` from now: the simulator's own records (the
/// administrator's partner…) are stamped with the real time, and a test's writes must come
/// after them, as they would on a live server.
fn from_now(seconds: i64) -> i64 {
    Timestamp::now().as_microsecond() + seconds * 1_000_000
}

async fn serve(sim: &OdooSim) -> (RunningSim, OdooClient) {
    let running = sim.clone().serve_on_loopback().await.unwrap();
    let config = sim.config().clone();
    let client = OdooClient::new(ClientConfig::new(
        running.url(),
        config.database,
        config.admin_login,
        config.admin_api_key,
    ))
    .unwrap();
    (running, client)
}

/// `count` partners in one `create`: one transaction, one `write_date` for all.
fn import_partners(sim: &OdooSim, at: i64, prefix: &str, count: usize) -> Vec<i64> {
    sim.clock().freeze_at(at);
    let list: Vec<Map<String, serde_json::Value>> = (0..count)
        .map(|i| {
            json!({"name": format!("{prefix} {i}"), "email": format!("{prefix}{i}@example.com")})
                .as_object()
                .cloned()
                .unwrap()
        })
        .collect();
    sim.with_database(|database, env| database.create(env, "res.partner", &list).unwrap())
}

fn bulk_model(page_size: usize, parallelism: usize) -> ModelConfig {
    ModelConfig {
        name: "res.partner".into(),
        fields: vec![
            "name".into(),
            "email".into(),
            "active".into(),
            "write_date".into(),
        ],
        domain: odoo_rpc::Domain::all(),
        cursor_field: "write_date".into(),
        overlap_seconds: 0,
        page_size,
        reconcile_deletions: false,
        reconcile_every_runs: 1,
        parallelism,
    }
}

/// The mirror holds exactly the records Odoo has, as Odoo reads them now.
async fn assert_exact(client: &OdooClient, store: &SqliteStore, model: &ModelConfig) {
    let options = SearchReadOptions::new(model.domain.clone())
        .fields(model.fields.iter().map(String::as_str))
        .order("id asc")
        .context(Context::new().active_test(false));
    let records = client.search_read(&model.name, &options).await.unwrap();
    let (stored, deleted) = store.count(&model.name).await.unwrap();
    assert_eq!((stored, deleted), (records.len() as u64, 0), "row count");
    for record in records {
        let id = record.id().unwrap();
        let row = store
            .record(&model.name, id)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{} {id} is not mirrored", model.name));
        let expected = serde_json::Value::Object(record.into_map());
        assert_eq!(row.payload, expected, "{} {id} is stale", model.name);
    }
}

fn fetched(report: &RunReport) -> u64 {
    report.models.iter().map(|model| model.fetched).sum()
}

fn partner_count(sim: &OdooSim) -> u64 {
    sim.with_database(|database, _| database.count("res.partner")) as u64
}

#[tokio::test]
async fn a_first_run_backfills_by_id_reading_each_record_once_then_follows_changes() {
    for parallelism in [1, 2, 3] {
        let sim = OdooSim::new(SimConfig::default());
        import_partners(&sim, from_now(10), "bulk", 1_234);
        let (running, client) = serve(&sim).await;
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("mirror.db"))
            .await
            .unwrap();
        let model = bulk_model(100, parallelism);
        let models = [model.clone()];

        let first = mirror::run(&client, &store, &models, &options(), &NoProgress)
            .await
            .unwrap();
        assert_eq!(first.status, RunStatus::Success, "{first:?}");
        assert_eq!(
            fetched(&first),
            partner_count(&sim),
            "parallelism {parallelism}"
        );
        assert_exact(&client, &store, &model).await;
        let checkpoint = store.checkpoint("res.partner").await.unwrap().unwrap();
        assert!(checkpoint.is_second_done(), "{checkpoint:?}");

        // One more import of the same size in one second, larger than a page: read once.
        let imported = import_partners(&sim, from_now(20), "second", 730);
        let second = mirror::run(&client, &store, &models, &options(), &NoProgress)
            .await
            .unwrap();
        assert_eq!(fetched(&second), imported.len() as u64, "{second:?}");
        assert_exact(&client, &store, &model).await;
        // Nothing new: nothing read (the feed's place was saved after its last page).
        let third = mirror::run(&client, &store, &models, &options(), &NoProgress)
            .await
            .unwrap();
        assert_eq!(fetched(&third), 0, "{third:?}");
        running.shutdown().await;
    }
}

#[tokio::test]
async fn a_crash_after_any_page_of_a_parallel_backfill_loses_nothing() {
    let sim = OdooSim::new(SimConfig::default());
    let bulk = import_partners(&sim, from_now(10), "bulk", 1_100);
    let (running, client) = serve(&sim).await;
    let model = bulk_model(100, 3);
    let models = [model.clone()];
    let mut crashed_once = false;
    for budget in 0.. {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("mirror.db"))
            .await
            .unwrap();
        // While the killed run goes on, someone edits a record with a low id (read early by
        // one reader), one with a high id, and creates another.
        let edits = Arc::new(AtomicU64::new(0));
        let (sim_edit, bulk_edit, edits_seen) = (sim.clone(), bulk.clone(), edits.clone());
        let crashing = Crashing::new(&store, budget, move |commit| {
            if commit != 1 {
                return;
            }
            let round = edits_seen.fetch_add(1, Ordering::SeqCst);
            sim_edit.clock().freeze_at(from_now(30 + round as i64));
            sim_edit.with_database(|database, env| {
                let name = json!({"name": format!("edited {round}")});
                let vals = name.as_object().cloned().unwrap();
                let touched = [
                    bulk_edit[round as usize % 50],
                    bulk_edit[1_099 - round as usize % 50],
                ];
                database.write(env, "res.partner", &touched, &vals).unwrap();
                let new = json!({"name": format!("new {round}")});
                database
                    .create(env, "res.partner", &[new.as_object().cloned().unwrap()])
                    .unwrap();
            });
        });
        let killed = mirror::run(&client, &crashing, &models, &options(), &NoProgress).await;
        drop(crashing);
        let resumed = mirror::run(&client, &store, &models, &options(), &NoProgress)
            .await
            .unwrap();
        assert_eq!(resumed.status, RunStatus::Success, "{resumed:?}");
        assert_exact(&client, &store, &model).await;
        if killed.is_ok() {
            break;
        }
        crashed_once = true;
        assert!(budget < 100, "the backfill does not end");
    }
    assert!(crashed_once);
    running.shutdown().await;
}

#[tokio::test]
async fn a_crash_after_any_page_of_an_incremental_run_after_a_bulk_import_loses_nothing() {
    let sim = OdooSim::new(SimConfig::default());
    import_partners(&sim, from_now(10), "first", 150);
    let (running, client) = serve(&sim).await;
    let model = bulk_model(100, 2);
    let models = [model.clone()];
    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("template.db");
    {
        let store = SqliteStore::open(&template).await.unwrap();
        mirror::run(&client, &store, &models, &options(), &NoProgress)
            .await
            .unwrap();
        store.close().await;
    }
    // A second import of 450 in one second, at microseconds shared by all: five pages.
    import_partners(&sim, from_now(20), "second", 450);
    for budget in 0..8 {
        let path = dir.path().join(format!("mirror-{budget}.db"));
        std::fs::copy(&template, &path).unwrap();
        let store = SqliteStore::open(&path).await.unwrap();
        let crashing = Crashing::new(&store, budget, |_| {});
        let killed = mirror::run(&client, &crashing, &models, &options(), &NoProgress).await;
        drop(crashing);
        mirror::run(&client, &store, &models, &options(), &NoProgress)
            .await
            .unwrap();
        assert_exact(&client, &store, &model).await;
        if killed.is_ok() {
            assert!(budget >= 5, "{budget}");
        }
        store.close().await;
    }
    running.shutdown().await;
}

#[tokio::test]
async fn records_changed_during_a_backfill_come_through_the_feed_after_it() {
    let sim = OdooSim::new(SimConfig::default());
    let bulk = import_partners(&sim, from_now(10), "bulk", 600);
    let (running, client) = serve(&sim).await;
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("mirror.db"))
        .await
        .unwrap();
    let model = bulk_model(50, 2);
    // After the third page: the first record (surely read already) is renamed, in the same
    // second as the high-water mark and in a later one, and records are created.
    let (sim_edit, first) = (sim.clone(), bulk[0]);
    let editing = Crashing::new(&store, u64::MAX, move |commit| {
        if commit != 3 {
            return;
        }
        sim_edit.with_database(|database, env| {
            let vals = json!({"name": "renamed in the bulk's second"});
            database
                .write(env, "res.partner", &[first], vals.as_object().unwrap())
                .unwrap();
            let new = json!({"name": "created in the bulk's second"});
            database
                .create(env, "res.partner", &[new.as_object().cloned().unwrap()])
                .unwrap();
        });
        sim_edit.clock().freeze_at(from_now(40));
        sim_edit.with_database(|database, env| {
            let vals = json!({"email": "later@example.com"});
            database
                .write(env, "res.partner", &[first], vals.as_object().unwrap())
                .unwrap();
        });
    });
    let report = mirror::run(
        &client,
        &editing,
        std::slice::from_ref(&model),
        &options(),
        &NoProgress,
    )
    .await
    .unwrap();
    assert_eq!(report.status, RunStatus::Success);
    assert_exact(&client, &store, &model).await;
    // Each record once, plus the edited one and the new one read again by the feed.
    let total = partner_count(&sim);
    assert!(
        fetched(&report) <= total + 2,
        "{} for {total}",
        fetched(&report)
    );
    let ids: BTreeSet<i64> = store
        .live_ids("res.partner")
        .await
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(ids.len() as u64, total);
    running.shutdown().await;
}

#[test]
fn parallelism_is_an_optional_key_from_1_to_16() {
    let base = "odoo:\n  base_url: http://odoo\n  database: db\n  username: u\nmodels:\n  - name: res.partner\n";
    let parse =
        |text: &str| engine::config::MirrorConfig::parse(std::path::Path::new("mirror.yml"), text);
    assert_eq!(parse(base).unwrap().models[0].parallelism, 2);
    let four = parse(&format!("{base}    parallelism: 4\n")).unwrap();
    assert_eq!(four.models[0].parallelism, 4);
    for wrong in ["0", "17"] {
        let error = parse(&format!("{base}    parallelism: {wrong}\n")).unwrap_err();
        assert_eq!(error.line, Some(7), "{error}");
        assert!(error.message.contains("between 1 and 16"), "{error}");
    }
}

/// `count` partners created by one `create` call on a real Odoo: one transaction, so one
/// `write_date` (microseconds included) for all of them. (`OdooClient::create` sends the list
/// positionally over JSON-RPC, as Odoo's `call_kw` reads it from `args[0]`.)
async fn create_on_odoo(client: &OdooClient, prefix: &str, count: usize) -> Vec<i64> {
    let list: Vec<Map<String, serde_json::Value>> = (0..count)
        .map(|i| {
            json!({"name": format!("{prefix} {i}"), "email": format!("{prefix}{i}@example.com")})
                .as_object()
                .cloned()
                .unwrap()
        })
        .collect();
    let ids = client.create("res.partner", list, None).await.unwrap();
    assert_eq!(ids.len(), count);
    let stamps: BTreeSet<String> = client
        .read("res.partner", &ids, &["write_date"], None)
        .await
        .unwrap()
        .iter()
        .map(|record| record.raw("write_date").unwrap().to_string())
        .collect();
    assert_eq!(stamps.len(), 1, "one create, one write_date: {stamps:?}");
    ids
}

/// Waits for the next whole second: with `overlap_seconds: 0`, a run's checkpoint says its
/// last second is done, so a test writing again must do it in a later second (a real
/// configuration keeps the default overlap of 120 s for that).
async fn next_second() {
    let now = Timestamp::now();
    let into = now.subsec_microsecond().max(0) as u64;
    tokio::time::sleep(std::time::Duration::from_micros(1_000_000 - into + 50_000)).await;
}

#[tokio::test]
async fn real_odoo_18_same_second_bulk_imports_are_mirrored_exactly_each_record_read_once() {
    let Some(odoo) = odoo_sim::real_odoo::RealOdoo::from_env(
        "mirror exact after same-second bulk imports, each record fetched once",
    ) else {
        return;
    };
    let db = odoo.fresh_db("mirror_bulk").unwrap();
    let client = OdooClient::new(ClientConfig::new(
        odoo.url.clone(),
        db.name(),
        odoo.login.clone(),
        odoo.api_key.clone(),
    ))
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("mirror.db"))
        .await
        .unwrap();
    let model = bulk_model(500, 2);
    let models = [model.clone()];
    let everything = Context::new().active_test(false);
    let count = || async {
        client
            .search_count("res.partner", &odoo_rpc::Domain::all(), Some(&everything))
            .await
            .unwrap()
    };

    // A first backfill over the demo partners and 1,200 more from one create: more than two
    // pages stamped with one write_date, the newest second of the model.
    create_on_odoo(&client, "first import", 1_200).await;
    let first = mirror::run(&client, &store, &models, &options(), &NoProgress)
        .await
        .unwrap();
    assert_eq!(first.status, RunStatus::Success, "{first:?}");
    assert_eq!(fetched(&first), count().await, "{first:?}");
    assert_exact(&client, &store, &model).await;

    // An incremental run after another same-second import of 1,100: each read once.
    next_second().await;
    let imported = create_on_odoo(&client, "second import", 1_100).await;
    let second = mirror::run(&client, &store, &models, &options(), &NoProgress)
        .await
        .unwrap();
    assert_eq!(second.status, RunStatus::Success, "{second:?}");
    assert_eq!(fetched(&second), imported.len() as u64, "{second:?}");
    assert_exact(&client, &store, &model).await;

    // And nothing twice when nothing changed.
    let third = mirror::run(&client, &store, &models, &options(), &NoProgress)
        .await
        .unwrap();
    assert_eq!(fetched(&third), 0, "{third:?}");
    store.close().await;
}

// ----- the check before a run ---------------------------------------------------------------

fn partners_with(fields: &[&str]) -> ModelConfig {
    ModelConfig {
        fields: fields.iter().map(|field| (*field).to_owned()).collect(),
        reconcile_deletions: false,
        ..partners_model()
    }
}

#[tokio::test]
async fn a_misspelt_field_stops_the_run_before_the_store_is_touched() {
    let sim = OdooSim::new(SimConfig::default());
    let (_running, client) = serve(&sim).await;
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("mirror.db"))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let good = partners_with(&["name", "write_date"]);
    mirror::run(
        &client,
        &store,
        std::slice::from_ref(&good),
        &options(),
        &NoProgress,
    )
    .await
    .unwrap();
    let before = store.record("res.partner", 1).await.unwrap().unwrap();
    assert!(before.payload.get("name").is_some(), "{before:?}");

    let typo = partners_with(&["nmae", "write_date"]);
    let error = mirror::run(&client, &store, &[typo], &options(), &NoProgress)
        .await
        .unwrap_err();
    let mirror::MirrorError::Configuration(problems) = &error else {
        panic!("{error:?}")
    };
    assert_eq!(
        problems,
        &[mirror::ConfigProblem::UnknownField {
            model: "res.partner".into(),
            field: "nmae".into(),
            suggestion: Some("name".into()),
        }]
    );
    assert_eq!(
        store.record("res.partner", 1).await.unwrap().unwrap(),
        before,
        "the stored row keeps its name"
    );
    assert_eq!(store.runs(10).await.unwrap().len(), 1, "no run was started");
}

#[tokio::test]
async fn a_field_odoo_removed_is_left_out_on_the_releases_without_it_and_read_on_the_others() {
    for version in OdooVersion::ALL {
        let sim = OdooSim::with_data(
            SimConfig {
                version,
                ..SimConfig::default()
            },
            &DataSpec {
                orders: 0,
                partners: 5,
                products: 0,
                seed: 3,
            },
        );
        let (_running, client) = serve(&sim).await;
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("mirror.db"))
            .await
            .unwrap();
        let model = partners_with(&["name", "mobile", "write_date"]);
        let plans = mirror::plan(
            &client,
            std::slice::from_ref(&model),
            &options(),
            &Default::default(),
        )
        .await
        .unwrap();
        let report = mirror::run(&client, &store, &[model], &options(), &NoProgress)
            .await
            .unwrap();
        let partners = &report.models[0];
        assert_eq!(partners.error, None, "{version}");
        assert_eq!(
            partners.left_out, plans[0].left_out,
            "{version}: same verdict"
        );
        assert!(plans[0].problems.is_empty(), "{version}");
        let row = store.record("res.partner", 1).await.unwrap().unwrap();
        if version.has_partner_mobile() {
            assert!(partners.left_out.is_empty(), "{version}");
            assert!(row.payload.get("mobile").is_some(), "{version}: {row:?}");
        } else {
            let [left_out] = partners.left_out.as_slice() else {
                panic!("{version}: {partners:?}")
            };
            assert_eq!(
                left_out.to_string(),
                format!(
                    "res.partner.mobile is left out: Odoo removed it in saas~18.2 and this server runs {} (its data is in `phone` there)",
                    version.server_version()
                )
            );
            assert!(row.payload.get("mobile").is_none(), "{version}: {row:?}");
        }
    }
}

#[tokio::test]
async fn a_first_run_over_records_stamped_alike_counts_each_record_once() {
    let sim = OdooSim::new(SimConfig::default());
    // 45 partners written in one second, read in pages of 10: every full page ends inside
    // that second, which the feed then reads again by id.
    sim.clock()
        .freeze_at(odoo_sim::values::parse_datetime("2024-03-01 10:00:00").unwrap());
    let list: Vec<Map<String, serde_json::Value>> = (0..45)
        .map(|n| {
            json!({"name": format!("Bulk {n}")})
                .as_object()
                .cloned()
                .unwrap()
        })
        .collect();
    let created =
        sim.with_database(|database, env| database.create(env, "res.partner", &list).unwrap());
    let (_running, client) = serve(&sim).await;
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("mirror.db"))
        .await
        .unwrap();
    let model = ModelConfig {
        domain: field("create_date").lt("2025-01-01 00:00:00"),
        page_size: 10,
        ..partners_with(&["name", "write_date"])
    };
    let first = mirror::run(
        &client,
        &store,
        std::slice::from_ref(&model),
        &options(),
        &NoProgress,
    )
    .await
    .unwrap();
    let partners = &first.models[0];
    assert_eq!(
        (
            partners.fetched,
            partners.inserted,
            partners.updated,
            partners.unchanged
        ),
        (created.len() as u64, created.len() as u64, 0, 0),
        "{partners:?}"
    );
    let stored = store.runs(1).await.unwrap();
    assert_eq!(stored[0].fetched, created.len() as u64, "{stored:?}");
    assert_eq!(stored[0].unchanged, 0, "{stored:?}");
}

#[tokio::test]
async fn a_shared_error_is_recorded_once_with_the_models_it_hit() {
    let sim = OdooSim::new(SimConfig::default());
    let (running, client) = serve(&sim).await;
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("mirror.db"))
        .await
        .unwrap();
    let models = [
        partners_with(&["name", "write_date"]),
        ModelConfig {
            reconcile_deletions: false,
            ..orders_model()
        },
    ];
    // Both models are checked, then Odoo goes away before their pages are read.
    let mut client_config = ClientConfig::new(
        running.url(),
        sim.config().database.clone(),
        sim.config().admin_login.clone(),
        sim.config().admin_api_key.clone(),
    );
    client_config.retry.max_retries = 0;
    let quick = OdooClient::new(client_config).unwrap();
    for model in &models {
        mirror::check_model(&quick, model).await.unwrap();
    }
    drop(client);
    running.shutdown().await;
    let report = mirror::run(&quick, &store, &models, &options(), &NoProgress)
        .await
        .unwrap();
    assert!(
        report.models.iter().all(|model| model.error.is_some()),
        "{report:?}"
    );
    let error = store.runs(1).await.unwrap()[0].error.clone().unwrap();
    let lines: Vec<&str> = error.lines().collect();
    assert_eq!(lines.len(), 1, "{error}");
    assert!(lines[0].starts_with("res.partner, sale.order: "), "{error}");
}

/// Runs are stamped by the run's clock, and the runs older than `retention_days` on that
/// clock are deleted at the end of a run: a manual clock walks three months in a test.
#[tokio::test]
async fn runs_older_than_the_retention_are_deleted_by_the_runs_clock() {
    let sim = OdooSim::new(SimConfig::default());
    let (running, client) = serve(&sim).await;
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("mirror.db"))
        .await
        .unwrap();
    let start: Timestamp = "2026-03-01T08:00:00Z".parse().unwrap();
    let clock = engine::clock::Clock::manual(start);
    let options = RunOptions {
        clock: clock.clone(),
        ..options()
    };
    let model = partners_with(&["name", "write_date"]);
    for _ in 0..2 {
        mirror::run(
            &client,
            &store,
            std::slice::from_ref(&model),
            &options,
            &NoProgress,
        )
        .await
        .unwrap();
        clock.advance(jiff::SignedDuration::from_hours(24));
    }
    let runs = store.runs(10).await.unwrap();
    let started: Vec<Timestamp> = runs.iter().map(|run| run.started_at).collect();
    assert_eq!(
        started,
        [start + jiff::SignedDuration::from_hours(24), start],
        "stamped by the clock, newest first"
    );
    // 90 days of retention: half a day past 90 days after the first run, it goes; the second
    // (a day later) stays.
    let later = start + jiff::SignedDuration::from_hours(24 * 90 + 12);
    clock.set(later);
    mirror::run(
        &client,
        &store,
        std::slice::from_ref(&model),
        &options,
        &NoProgress,
    )
    .await
    .unwrap();
    let left: Vec<Timestamp> = store
        .runs(10)
        .await
        .unwrap()
        .iter()
        .map(|run| run.started_at)
        .collect();
    assert_eq!(left, [later, start + jiff::SignedDuration::from_hours(24)]);
    running.shutdown().await;
}

/// A run writes its heartbeat on the run's clock while it waits on Odoo, so that a run
/// without the lock (`lock_strategy: none`) is never taken for dead while it is alive; the
/// next run marks only runs whose heartbeat stopped.
#[tokio::test]
async fn a_run_beats_while_it_waits_on_odoo_and_only_a_silent_one_is_interrupted() {
    let sim = OdooSim::new(SimConfig::default());
    // The run's first read of the partners hangs far longer than the test lasts.
    sim.inject(
        odoo_sim::FaultRule::new(odoo_sim::Fault::Delay(std::time::Duration::from_secs(3600)))
            .on("res.partner", Some("search_read")),
    );
    let (_running, client) = serve(&sim).await;
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("mirror.db"))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let start: Timestamp = "2026-03-01T08:00:00Z".parse().unwrap();
    let clock = engine::clock::Clock::manual(start);
    let options = RunOptions {
        clock: clock.clone(),
        use_lock: false,
        ..options()
    };
    let model = partners_with(&["name", "write_date"]);
    let run = {
        let (client, store, options, model) = (
            client.clone(),
            store.clone(),
            options.clone(),
            model.clone(),
        );
        tokio::spawn(async move {
            mirror::run(
                &client,
                &store,
                std::slice::from_ref(&model),
                &options,
                &NoProgress,
            )
            .await
        })
    };
    // The run's row appears, beating at its start.
    let heartbeat = |store: SqliteStore| async move {
        store
            .runs(1)
            .await
            .unwrap()
            .first()
            .and_then(|run| run.heartbeat_at)
    };
    wait_for("the run's row", || async {
        heartbeat(store.clone()).await == Some(start)
    })
    .await;
    // Ten minutes pass on the run's clock, a beat every 30 s: the heartbeat follows.
    for beat in 1..=20 {
        clock.advance(jiff::SignedDuration::from_secs(30));
        let expected = start + jiff::SignedDuration::from_secs(30 * beat);
        wait_for("the next beat", || async {
            heartbeat(store.clone()).await == Some(expected)
        })
        .await;
    }
    // Another run, on the same clock, leaves the live one alone: its heartbeat is fresh.
    let now = clock.now();
    let stale_before = now - engine::mirror::RUN_STALE_AFTER;
    assert!(
        store
            .interrupt_abandoned_runs(false, stale_before)
            .await
            .unwrap()
            .is_empty()
    );
    // The run dies (its task is aborted, as kill -9 would stop it): the beats stop, and once
    // they are older than RUN_STALE_AFTER the run is taken for dead, its end its last beat.
    run.abort();
    let _ = run.await;
    clock.advance(engine::mirror::RUN_STALE_AFTER + jiff::SignedDuration::from_secs(1));
    let marked = store
        .interrupt_abandoned_runs(false, clock.now() - engine::mirror::RUN_STALE_AFTER)
        .await
        .unwrap();
    assert_eq!(marked.len(), 1);
    let runs = store.runs(1).await.unwrap();
    assert_eq!(runs[0].status, RunStatus::Interrupted);
    assert_eq!(runs[0].finished_at, Some(now));
}

/// Polls `check` until it holds (the run works on its own task), failing after 10 s.
async fn wait_for<F, Fut>(what: &str, check: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}
