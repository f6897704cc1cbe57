//! The supervisor: every reload it reads what the store says (tenants, flows, live replicas,
//! leases, due times), decides which flows this process should run, takes or gives back their
//! leases, and starts, restarts or stops their tasks.

use super::assign::assign;
use super::guard::TaskGuard;
use super::task::{self, CycleBook, DueTimes, TaskContext};
use super::{FlowOptions, FlowSetup, Runtime};
use crate::inbox::InboxWorker;
use crate::outbox::Dispatcher;
use crate::store::{Flow, Store, Tenant};
use jiff::Timestamp;
use odoo_rpc::OdooClient;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use tokio::sync::watch;

/// Tenants and active flows as the store had them at `version` (see
/// [`TenantStore::catalog_version`](crate::store::TenantStore::catalog_version)): read again
/// only when the version moves, so an idle reload of 1,000 connections reads one number
/// instead of 2,000 rows and their sealed secrets.
struct Catalog {
    version: i64,
    tenants: HashMap<String, Tenant>,
    active: Vec<Flow>,
}

/// A flow task this process runs.
struct Running {
    /// The flow and its tenant's `updated_at` as the task was started with them: an edit of
    /// either restarts the task.
    flow: Flow,
    tenant_updated_at: Timestamp,
    stop: watch::Sender<bool>,
    task: TaskGuard,
}

pub(super) struct Supervisor<S> {
    runtime: Runtime<S>,
    dispatcher: Dispatcher,
    inbox: InboxWorker,
    tasks: HashMap<String, Running>,
    /// One client per tenant, shared by its flows, rebuilt when the tenant is edited.
    clients: HashMap<String, (Timestamp, OdooClient)>,
    /// Flows whose handler could not be built, with the `updated_at` that failed: not retried
    /// until the flow is edited.
    broken: HashMap<String, Timestamp>,
    due: watch::Sender<DueTimes>,
    book: CycleBook,
    /// When this process's leases were last renewed: its tasks stop if renewal keeps failing
    /// until the leases run out.
    renewed_at: Option<Timestamp>,
    catalog: Option<Arc<Catalog>>,
}

impl<S: Store> Supervisor<S> {
    pub(super) fn new(runtime: Runtime<S>, dispatcher: Dispatcher, inbox: InboxWorker) -> Self {
        let (due, _) = watch::channel(DueTimes::default());
        Supervisor {
            runtime,
            dispatcher,
            inbox,
            tasks: HashMap::new(),
            clients: HashMap::new(),
            broken: HashMap::new(),
            due,
            book: CycleBook::default(),
            renewed_at: None,
            catalog: None,
        }
    }

    pub(super) async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let me = self.runtime.config.worker_id.clone();
        // A process restarted with its previous worker id takes the packets it had in flight
        // back at once, instead of waiting for its old leases to run out.
        match self
            .runtime
            .store
            .release_leases_of(&me, self.runtime.clock.now())
            .await
        {
            Ok(0) => {}
            Ok(freed) => tracing::info!(freed, "took back the packets this worker had in flight"),
            Err(error) => tracing::warn!(error = %error, "cannot free this worker's old leases"),
        }
        // The same for the inbound events it was applying: their leases are 5 minutes long.
        match self
            .runtime
            .store
            .release_inbound_leases_of(&me, self.runtime.clock.now())
            .await
        {
            Ok(0) => {}
            Ok(freed) => tracing::info!(
                freed,
                "took back the inbound events this worker had in hand"
            ),
            Err(error) => {
                tracing::warn!(error = %error, "cannot free this worker's old inbound leases")
            }
        }
        tracing::info!(worker_id = %me, "runtime started");
        loop {
            // Fixed rate from the tick's start: a slow tick does not push every later one back.
            let next = self.runtime.clock.after(self.runtime.config.reload_every);
            self.tick().await;
            tokio::select! {
                _ = self.runtime.clock.sleep_until(next) => {}
                _ = shutdown.wait_for(|stop| *stop) => break,
            }
        }
        self.shutdown().await;
    }

    async fn tick(&mut self) {
        let store = self.runtime.store.clone();
        let clock = self.runtime.clock.clone();
        let config = self.runtime.config.clone();
        let now = clock.now();

        self.refresh_due().await;
        self.book.flush(&store).await;

        let live = match store.heartbeats().await {
            Ok(beats) => {
                let stale = jiff::SignedDuration::try_from(config.stale_after)
                    .unwrap_or(jiff::SignedDuration::from_secs(15));
                let mut live: Vec<String> = beats
                    .into_iter()
                    .filter(|beat| now.duration_since(beat.beat_at) <= stale)
                    .map(|beat| beat.worker_id)
                    .collect();
                live.push(config.worker_id.clone());
                live
            }
            Err(error) => {
                tracing::error!(error = %error, "cannot read the heartbeats");
                vec![config.worker_id.clone()]
            }
        };
        let Some(catalog) = self.catalog().await else {
            self.stop_unleased(now).await;
            return;
        };
        let (tenants, active) = (&catalog.tenants, &catalog.active);

        let until = clock.after(config.lease_ttl);
        let mut held: HashSet<String> =
            match store.renew_flow_leases(&config.worker_id, until).await {
                Ok(held) => {
                    self.renewed_at = Some(now);
                    held.into_iter().collect()
                }
                Err(error) => {
                    tracing::error!(error = %error, "cannot renew the flow leases");
                    self.stop_unleased(now).await;
                    return;
                }
            };

        let tenant_ids: Vec<&str> = active.iter().map(|flow| flow.tenant_id.as_str()).collect();
        let workers: Vec<&str> = live.iter().map(String::as_str).collect();
        let assignment = assign(&tenant_ids, &workers);
        let mine = |flow: &Flow| {
            assignment.get(flow.tenant_id.as_str()).copied() == Some(config.worker_id.as_str())
        };
        for flow in active {
            let held_now = held.contains(&flow.id);
            if mine(flow) && !held_now {
                match store
                    .acquire_flow_lease(&flow.id, &config.worker_id, now, until)
                    .await
                {
                    Ok(true) => {
                        tracing::info!(connection_id = %flow.id, name = %flow.name, "took the flow's lease");
                        held.insert(flow.id.clone());
                    }
                    Ok(false) => {}
                    Err(error) => {
                        tracing::warn!(connection_id = %flow.id, error = %error, "cannot take the flow's lease");
                    }
                }
            } else if !mine(flow) && held_now {
                // Another replica should run it: step back so that it can take it.
                tracing::info!(connection_id = %flow.id, "handing the flow over to another replica");
                self.stop_task(&flow.id).await;
                held.remove(&flow.id);
                self.release(&flow.id).await;
            }
        }
        // Leases of flows paused or removed meanwhile go back too.
        let active_ids: HashSet<&str> = active.iter().map(|flow| flow.id.as_str()).collect();
        for flow_id in held.iter().filter(|id| !active_ids.contains(id.as_str())) {
            self.release(flow_id).await;
        }
        held.retain(|id| active_ids.contains(id.as_str()));

        self.reconcile(active, tenants, &held).await;
    }

    /// The tenants and active flows, re-read only when the store's catalog version moved
    /// (or could not be read); `None` when they cannot be read.
    async fn catalog(&mut self) -> Option<Arc<Catalog>> {
        let store = &self.runtime.store;
        // Read before the rows: a change made after this point moves the version again, so
        // the next reload sees it.
        let version = match store.catalog_version().await {
            Ok(version) => Some(version),
            Err(error) => {
                tracing::warn!(error = %error, "cannot read the catalog version: reading every tenant and flow");
                None
            }
        };
        if let (Some(version), Some(known)) = (version, &self.catalog)
            && known.version == version
        {
            return Some(known.clone());
        }
        let (tenants, flows) = match (store.tenants().await, store.flows(None).await) {
            (Ok(tenants), Ok(flows)) => (tenants, flows),
            (Err(error), _) | (_, Err(error)) => {
                tracing::error!(error = %error, "cannot read the tenants and flows");
                return None;
            }
        };
        let tenants: HashMap<String, Tenant> = tenants
            .into_iter()
            .map(|tenant| (tenant.id.clone(), tenant))
            .collect();
        let active: Vec<Flow> = flows
            .into_iter()
            .filter(|flow| flow.is_active && tenants.contains_key(&flow.tenant_id))
            .collect();
        let catalog = Arc::new(Catalog {
            // An unreadable version is never equal to a later one: read again next time.
            version: version.unwrap_or(i64::MIN),
            tenants,
            active,
        });
        self.catalog = version.map(|_| catalog.clone());
        Some(catalog)
    }

    /// Stops tasks that run a flow not held (anymore), edited, or whose task ended; starts
    /// the held flows that have no task.
    async fn reconcile(
        &mut self,
        active: &[Flow],
        tenants: &HashMap<String, Tenant>,
        held: &HashSet<String>,
    ) {
        let wanted: HashMap<&str, &Flow> = active
            .iter()
            .filter(|flow| held.contains(&flow.id))
            .map(|flow| (flow.id.as_str(), flow))
            .collect();
        let stale: Vec<String> = self
            .tasks
            .iter()
            .filter(|(id, task)| {
                let same = wanted.get(id.as_str()).is_some_and(|flow| {
                    flow.updated_at == task.flow.updated_at
                        && tenants
                            .get(&flow.tenant_id)
                            .is_some_and(|tenant| tenant.updated_at == task.tenant_updated_at)
                });
                !same || task.task.is_finished()
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in stale {
            tracing::info!(connection_id = %id, "flow removed, paused, edited or handed over: stopping its task");
            self.stop_task(&id).await;
        }
        for (id, flow) in wanted {
            if self.tasks.contains_key(id) {
                continue;
            }
            if self.broken.get(id) == Some(&flow.updated_at) {
                continue;
            }
            let Some(tenant) = tenants.get(&flow.tenant_id) else {
                continue;
            };
            self.start_task(tenant, flow);
        }
        // Clients no task uses any more.
        let used: HashSet<&str> = self
            .tasks
            .values()
            .map(|task| task.flow.tenant_id.as_str())
            .collect();
        self.clients
            .retain(|tenant_id, _| used.contains(tenant_id.as_str()));
    }

    fn client_for(&mut self, tenant: &Tenant) -> Result<OdooClient, odoo_rpc::Error> {
        if let Some((updated_at, client)) = self.clients.get(&tenant.id)
            && *updated_at == tenant.updated_at
        {
            return Ok(client.clone());
        }
        let mut config = tenant.odoo_client_config();
        config.http_pool = Some(self.runtime.odoo_pool.clone());
        let client = OdooClient::new(config)?;
        self.clients
            .insert(tenant.id.clone(), (tenant.updated_at, client.clone()));
        Ok(client)
    }

    fn start_task(&mut self, tenant: &Tenant, flow: &Flow) {
        let odoo = match self.client_for(tenant) {
            Ok(client) => client,
            Err(error) => {
                tracing::error!(connection_id = %flow.id, error = %error, "cannot build the tenant's Odoo client");
                self.broken.insert(flow.id.clone(), flow.updated_at);
                return;
            }
        };
        let setup = FlowSetup {
            tenant: tenant.clone(),
            flow: flow.clone(),
            odoo,
            webhooks: self.runtime.webhooks.clone(),
            clock: self.runtime.clock.clone(),
            options: FlowOptions {
                ..self.runtime.config.flows
            },
            worker_id: self.runtime.config.worker_id.clone(),
        };
        let handler = match self.runtime.factory.build(setup, &self.runtime.store) {
            Ok(handler) => handler,
            Err(error) => {
                tracing::error!(connection_id = %flow.id, kind = %flow.kind, error = %error, "cannot run the flow");
                self.broken.insert(flow.id.clone(), flow.updated_at);
                return;
            }
        };
        self.broken.remove(&flow.id);
        tracing::info!(connection_id = %flow.id, kind = %flow.kind, name = %flow.name, "starting the flow's task");
        let wake = self.runtime.signals.register(&flow.id);
        let (stop, stopped) = watch::channel(false);
        let context = TaskContext {
            store: self.runtime.store.clone(),
            clock: self.runtime.clock.clone(),
            dispatcher: self.dispatcher.clone(),
            inbox: self.inbox.clone(),
            config: self.runtime.config.clone(),
            due: self.due.subscribe(),
            book: self.book.clone(),
        };
        let handle = TaskGuard::spawn(task::run(
            context,
            Arc::from(handler),
            flow.clone(),
            wake,
            stopped,
        ));
        self.tasks.insert(
            flow.id.clone(),
            Running {
                flow: flow.clone(),
                tenant_updated_at: tenant.updated_at,
                stop,
                task: handle,
            },
        );
    }

    async fn stop_task(&mut self, flow_id: &str) {
        if let Some(task) = self.tasks.remove(flow_id) {
            let _ = task.stop.send(true);
            let deadline = self.runtime.config.shutdown_deadline;
            if !task.task.join_within(deadline).await {
                tracing::warn!(
                    connection_id = flow_id,
                    "the flow's task did not stop within the deadline; abandoned"
                );
            }
            self.runtime.signals.forget(flow_id);
        }
    }

    async fn release(&self, flow_id: &str) {
        if let Err(error) = self
            .runtime
            .store
            .release_flow_lease(flow_id, &self.runtime.config.worker_id)
            .await
        {
            tracing::warn!(connection_id = flow_id, error = %error, "cannot give the flow's lease back");
        }
    }

    /// The store cannot be read: keep running while the leases last, then stop everything
    /// (another replica may take the flows once the leases run out).
    async fn stop_unleased(&mut self, now: Timestamp) {
        let ttl = jiff::SignedDuration::try_from(self.runtime.config.lease_ttl)
            .unwrap_or(jiff::SignedDuration::from_secs(20));
        let expired = self
            .renewed_at
            .is_none_or(|renewed| now.duration_since(renewed) >= ttl);
        if expired && !self.tasks.is_empty() {
            tracing::warn!("the flow leases could not be renewed in time: stopping every flow");
            let ids: Vec<String> = self.tasks.keys().cloned().collect();
            for id in ids {
                self.stop_task(&id).await;
            }
        }
    }

    async fn refresh_due(&mut self) {
        let store = &self.runtime.store;
        match (
            store.next_due_by_flow().await,
            store.next_inbound_due_by_flow().await,
        ) {
            (Ok(outbox), Ok(inbox)) => {
                self.due.send_if_modified(|known| {
                    let fresh = DueTimes { outbox, inbox };
                    let changed = *known != fresh;
                    *known = fresh;
                    changed
                });
            }
            (Err(error), _) | (_, Err(error)) => {
                tracing::error!(error = %error, "cannot read the due times");
            }
        }
    }

    async fn shutdown(mut self) {
        tracing::info!(
            tasks = self.tasks.len(),
            "shutting down: finishing in-flight cycles"
        );
        let tasks: Vec<(String, Running)> = self.tasks.drain().collect();
        for (_, task) in &tasks {
            let _ = task.stop.send(true);
        }
        let all = async {
            for (_, running) in tasks {
                running.task.join().await;
            }
        };
        if tokio::time::timeout(self.runtime.config.shutdown_deadline, all)
            .await
            .is_err()
        {
            tracing::warn!(
                "shutdown deadline passed with cycles still running; they are abandoned (their packets stay in the outbox)"
            );
        }
        self.book.flush(&self.runtime.store).await;
        match self
            .runtime
            .store
            .release_flow_leases(&self.runtime.config.worker_id)
            .await
        {
            Ok(_) => {}
            Err(error) => tracing::warn!(error = %error, "cannot give the flow leases back"),
        }
    }
}
