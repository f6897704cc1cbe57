//! `odoo-bridge enrich`: enrichment jobs (seed 000) from a YAML configuration. `run` makes one
//! pass of every job (cron-friendly), `status` shows each record's emission, `replay` emits
//! one record again (a second emission only with `--force`, logged as a replay, with drift).

use crate::commands::delivery_store::{table, time_json};
use crate::commands::target::{self, Loaded, Opening, StoreTask};
use crate::exit::{Exit, Failure, exit_for};
use clap::{Args, Subcommand};
use engine::clock::Clock;
use engine::enrich::register::{self, JobEntry, OdooAccess};
use engine::enrich::{
    EnrichError, EnrichJob, EnrichmentFlow, JobReport, RecordState, ReplayOutcome, health,
    job_secret,
};
use engine::outbox::Dispatcher;
use engine::runtime::heartbeat;
use engine::store::{Flow, Store};
use engine::webhook::{SenderConfig, WebhookSender};
use odoo_rpc::{ApiKey, OdooClient};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Subcommand)]
pub enum EnrichCommand {
    /// One pass: emit every record that is due, apply the answers. Cron-friendly.
    Run(RunArgs),
    /// Per record: packet id, version, hash, state, failure class, failures, health score,
    /// disabled; per job: its health score.
    Status(StatusArgs),
    /// Emit one record now. A record emitted before is refused unless --force, which sends a
    /// new packet (re-enabling a disabled record), logs it as a replay and reports drift.
    Replay(ReplayArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The configuration file (see examples/enrich.yml).
    #[arg(long, short)]
    config: PathBuf,
    /// Run only this job.
    #[arg(long)]
    job: Option<String>,
    /// This process's name in the outbox's leases; unique among the processes sharing the
    /// store. A process restarted with the same id resends its unfinished packets at once.
    #[arg(long, env = "ODOO_BRIDGE_WORKER_ID")]
    worker_id: Option<String>,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[arg(long, short)]
    config: PathBuf,
    /// Only this job.
    #[arg(long)]
    job: Option<String>,
    /// JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    #[arg(long, short)]
    config: PathBuf,
    #[arg(long)]
    job: String,
    /// The Odoo record id.
    #[arg(long)]
    record: i64,
    /// Emit it again even though it was emitted before.
    #[arg(long)]
    force: bool,
    #[arg(long, env = "ODOO_BRIDGE_WORKER_ID")]
    worker_id: Option<String>,
}

pub async fn run(command: EnrichCommand) -> Result<Exit, Failure> {
    match command {
        EnrichCommand::Run(args) => run_jobs(args).await,
        EnrichCommand::Status(args) => status(args).await,
        EnrichCommand::Replay(args) => replay(args).await,
    }
}

/// The configuration's jobs, `only` alone when given (a job it does not have: exit 2).
fn jobs<'a>(loaded: &'a Loaded, only: Option<&str>) -> Result<Vec<&'a EnrichJob>, Failure> {
    let config = &loaded.config;
    if config.enrich.is_empty() {
        return Err(Failure::new(
            Exit::Config,
            anyhow::anyhow!(
                "{} has no `enrich` jobs: add one (see the README's Enrichment section)",
                config.path.display()
            ),
        ));
    }
    match only {
        None => Ok(config.enrich.iter().collect()),
        Some(name) => match config.enrich.iter().find(|job| job.name == name) {
            Some(job) => Ok(vec![job]),
            None => Err(Failure::new(
                Exit::Usage,
                anyhow::anyhow!(
                    "--job {name}: no such job in {} (configured: {})",
                    config.path.display(),
                    config
                        .enrich
                        .iter()
                        .map(|job| job.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
        },
    }
}

fn environment(loaded: &Loaded) -> String {
    // `parse` refuses jobs without an environment.
    loaded.config.environment.clone().unwrap_or_default()
}

/// The exit code and message of an enrichment error.
pub fn failure(loaded: &Loaded, error: EnrichError) -> Failure {
    match error {
        EnrichError::Fields { job, problems } => {
            let lines: Vec<String> = problems
                .into_iter()
                .map(|problem| {
                    loaded
                        .config
                        .error_at(Some(problem.location), problem.message)
                        .to_string()
                })
                .collect();
            Failure::new(
                Exit::Config,
                anyhow::anyhow!(
                    "job {job} does not match this Odoo; nothing was emitted:\n  {}",
                    lines.join("\n  ")
                ),
            )
        }
        EnrichError::Environment(_)
        | EnrichError::Secret { .. }
        | EnrichError::Registration { .. } => Failure::new(Exit::Config, error),
        EnrichError::NoSuchRecord { .. } => Failure::new(Exit::NotFound, error),
        EnrichError::HeldElsewhere { .. } => Failure::new(Exit::LockBusy, error),
        EnrichError::AlreadyEmitted {
            job,
            record,
            current_hash,
        } => {
            let drift = if record.payload_hash == current_hash {
                format!("no drift since (payload hash {current_hash})")
            } else {
                format!(
                    "drift: the record changed since (payload hash then {}, now {current_hash})",
                    record.payload_hash
                )
            };
            Failure::new(
                Exit::Refused,
                anyhow::anyhow!(
                    "record {} of job {job} was already emitted at packet version {} (packet {}, {}); {drift}. A second emission needs --force (it is logged as a replay)",
                    record.record_id,
                    record.packet_version,
                    record.packet_id,
                    record.state,
                ),
            )
        }
        EnrichError::Odoo(odoo) => Failure::new(exit_for(&odoo), odoo),
        EnrichError::Store(_) | EnrichError::Client(_) => Failure::new(Exit::Failure, error),
    }
}

/// The file's jobs with their signing secrets (a `secret_env` not set: exit 3).
fn entries(loaded: &Loaded, jobs: &[&EnrichJob]) -> Result<Vec<JobEntry>, Failure> {
    jobs.iter()
        .map(|job| {
            job_secret(job, |name| std::env::var(name).ok())
                .map(|secret| JobEntry {
                    job: (*job).clone(),
                    secret,
                })
                .map_err(|error| failure(loaded, error))
        })
        .collect()
}

fn access(loaded: &Loaded, api_key: ApiKey) -> OdooAccess {
    let odoo = &loaded.config.odoo;
    OdooAccess {
        base_url: odoo.base_url.clone(),
        database: odoo.database.clone(),
        username: odoo.username.clone(),
        api_key,
    }
}

/// The jobs as flows of `store` (registered, or updated, first) and the dispatcher that
/// sends their packets as this process.
struct Prepared {
    dispatcher: Dispatcher,
    flows: Vec<EnrichmentFlow>,
}

async fn prepare<S: Store>(
    store: &S,
    loaded: &Loaded,
    odoo: &OdooAccess,
    client: &OdooClient,
    entries: &[JobEntry],
    owner: String,
    clock: Clock,
) -> Result<Prepared, EnrichError> {
    let environment = environment(loaded);
    if let Some(process) = engine::webhook::sender::process_environment()
        && process != environment
    {
        return Err(EnrichError::Registration {
            message: format!(
                "ODOO_BRIDGE_ENVIRONMENT is {process:?} but {} says `environment: {environment}`: a process has one environment; unset one or make them agree",
                loaded.config.path.display()
            ),
        });
    }
    let (_, flows) = register::register(store, odoo, &environment, entries, clock.now()).await?;
    let http = WebhookSender::new(SenderConfig::default())?;
    let timeout = entries
        .iter()
        .map(|entry| entry.job.timeout)
        .max()
        .unwrap_or(Duration::from_secs(30));
    let dispatcher = Dispatcher::new(owner, timeout, clock.clone());
    // A process restarted under its own name sends what it had in hand at once.
    store
        .release_leases_of(&dispatcher.owner, clock.now())
        .await?;
    let mut built = Vec::with_capacity(entries.len());
    for (entry, flow) in entries.iter().zip(flows) {
        built.push(flow_for(
            &flow,
            entry,
            &environment,
            client,
            &http,
            clock.clone(),
        )?);
    }
    Ok(Prepared {
        dispatcher,
        flows: built,
    })
}

/// A file's jobs as one command runs them: their Odoo, its client, their secrets, and this
/// process's name in the outbox's leases.
struct FileJobs<'a> {
    loaded: &'a Loaded,
    odoo: OdooAccess,
    client: OdooClient,
    entries: Vec<JobEntry>,
    owner: String,
}

impl<'a> FileJobs<'a> {
    /// The jobs of `loaded` (`only` alone when given), checked now: a missing secret or a
    /// bad Odoo setting stops the command before the store is opened.
    fn new(
        loaded: &'a Loaded,
        api_key: ApiKey,
        only: Option<&str>,
        owner: String,
    ) -> Result<FileJobs<'a>, Failure> {
        let jobs = jobs(loaded, only)?;
        let entries = entries(loaded, &jobs)?;
        let client = target::client(loaded, api_key.clone())?;
        Ok(FileJobs {
            loaded,
            odoo: access(loaded, api_key),
            client,
            entries,
            owner,
        })
    }

    async fn prepare<S: Store>(&self, store: &S, clock: Clock) -> Result<Prepared, Failure> {
        prepare(
            store,
            self.loaded,
            &self.odoo,
            &self.client,
            &self.entries,
            self.owner.clone(),
            clock,
        )
        .await
        .map_err(|error| failure(self.loaded, error))
    }
}

fn flow_for(
    flow: &Flow,
    entry: &JobEntry,
    environment: &str,
    client: &OdooClient,
    http: &WebhookSender,
    clock: Clock,
) -> Result<EnrichmentFlow, EnrichError> {
    EnrichmentFlow::for_job(
        flow,
        entry.job.clone(),
        environment.to_owned(),
        entry.secret.clone(),
        client.clone(),
        http.http_client().clone(),
        clock,
    )
}

async fn run_jobs(args: RunArgs) -> Result<Exit, Failure> {
    let (loaded, api_key) = target::load(&args.config)?;
    let task = RunJobs(FileJobs::new(
        &loaded,
        api_key,
        args.job.as_deref(),
        args.worker_id.unwrap_or_else(heartbeat::worker_id),
    )?);
    target::with_store(&loaded, Opening::Migrated, task)
        .await?
        .unwrap_or(Ok(Exit::Failure))
}

struct RunJobs<'a>(FileJobs<'a>);

impl StoreTask for RunJobs<'_> {
    type Output = Result<Exit, Failure>;

    async fn run<S: Store>(self, store: &S, _: bool) -> Result<Self::Output, Failure> {
        let jobs = self.0;
        let prepared = jobs.prepare(store, Clock::system()).await?;
        let mut exit = Exit::Success;
        let mut fatal = None;
        for flow in &prepared.flows {
            match engine::enrich::run_pass(store, flow, &prepared.dispatcher).await {
                Ok(report) => {
                    say!("{}", summary(&report));
                    if report.failed > 0 {
                        exit = Exit::PartialFailure;
                    }
                }
                Err(error) => {
                    let name = flow.job().name.clone();
                    let failure = failure(jobs.loaded, error);
                    eprintln!("error: job {name}: {:#}", failure.error);
                    tracing::error!(job = %name, error = %failure.error, "enrichment job failed");
                    fatal.get_or_insert(failure.exit);
                }
            }
        }
        Ok(Ok(fatal.unwrap_or(exit)))
    }
}

fn summary(report: &JobReport) -> String {
    let classes: Vec<String> = report
        .failures_by_class
        .iter()
        .map(|(class, count)| format!("{class} {count}"))
        .collect();
    let mut line = format!(
        "{}: {} matching, {} applied, {} failed",
        report.job, report.matching, report.applied, report.failed
    );
    if !classes.is_empty() {
        line.push_str(&format!(" ({})", classes.join(", ")));
    }
    line.push_str(&format!(
        ", {} already applied, {} disabled",
        report.already_applied,
        report.disabled + report.disabled_now
    ));
    if report.held_elsewhere > 0 {
        line.push_str(&format!(
            ", {} held by another process",
            report.held_elsewhere
        ));
    }
    if report.held_back > 0 {
        line.push_str(", the endpoint's circuit breaker is open: the rest waits for the next run");
    }
    line
}

async fn status(args: StatusArgs) -> Result<Exit, Failure> {
    let loaded = target::load_for_store(&args.config)?;
    let jobs = jobs(&loaded, args.job.as_deref())?;
    let task = Statuses {
        loaded: &loaded,
        jobs: &jobs,
    };
    let by_job = target::with_store(&loaded, Opening::IfPresent, task)
        .await?
        .unwrap_or_else(|| {
            jobs.iter()
                .map(|job| (job.name.clone(), Vec::new()))
                .collect()
        });
    let environment = environment(&loaded);
    if args.json {
        let jobs: Vec<Value> = by_job
            .iter()
            .map(|(name, records)| {
                json!({
                    "job": name,
                    "health_score": health::job_score(records.iter()),
                    "records": records.iter().map(|record| record_json(record, &environment)).collect::<Vec<_>>(),
                })
            })
            .collect();
        say!(
            "{}",
            serde_json::to_string_pretty(&json!({ "jobs": jobs })).unwrap_or_default()
        );
        return Ok(Exit::Success);
    }
    for (name, records) in &by_job {
        say!(
            "job {name}: health {:.2}, {} record(s) emitted",
            health::job_score(records.iter()),
            records.len()
        );
        if records.is_empty() {
            continue;
        }
        let rows: Vec<Vec<String>> = records
            .iter()
            .map(|record| {
                vec![
                    record.record_id.to_string(),
                    record.packet_version.clone(),
                    record.packet_id.clone(),
                    record.payload_hash.chars().take(12).collect(),
                    record.state.to_string(),
                    record
                        .failure_class
                        .map_or_else(|| "-".to_owned(), |class| class.to_string()),
                    record.failures.to_string(),
                    format!("{:.2}", health::record_score(record)),
                    if record.disabled() { "yes" } else { "no" }.to_owned(),
                ]
            })
            .collect();
        say!(
            "{}",
            table(
                &[
                    "RECORD", "VERSION", "PACKET", "HASH", "STATE", "FAILURE", "FAILURES",
                    "HEALTH", "DISABLED"
                ],
                &rows
            )
        );
    }
    Ok(Exit::Success)
}

fn record_json(record: &RecordState, environment: &str) -> Value {
    json!({
        "environment": environment,
        "record_id": record.record_id,
        "model": record.model,
        "packet_version": record.packet_version,
        "packet_id": record.packet_id,
        "payload_hash": record.payload_hash,
        "state": record.state.as_str(),
        "failure_class": record.failure_class.map(|class| class.as_str()),
        "last_error": record.last_error,
        "failures": record.failures,
        "health_score": health::record_score(record),
        "disabled": record.disabled(),
        "replays": record.replays,
        "emitted_at": time_json(record.emitted_at),
        "applied_at": record.applied_at.map(time_json),
    })
}

/// Each job's records, read from its flow's packets (none before its first run).
struct Statuses<'a> {
    loaded: &'a Loaded,
    jobs: &'a [&'a EnrichJob],
}

impl StoreTask for Statuses<'_> {
    type Output = BTreeMap<String, Vec<RecordState>>;

    async fn run<S: Store>(self, store: &S, _: bool) -> Result<Self::Output, Failure> {
        let odoo = &self.loaded.config.odoo;
        let tenant = register::tenant_id(&odoo.base_url, &odoo.database, &odoo.username);
        let mut by_job = BTreeMap::new();
        for job in self.jobs {
            let flow_id = register::flow_id(&tenant, &job.name);
            let packets = engine::enrich::pass::packets(store, &flow_id)
                .await
                .map_err(|error| Failure::new(Exit::Failure, error))?;
            by_job.insert(
                job.name.clone(),
                engine::enrich::record::records(&packets, &job.packet_version),
            );
        }
        Ok(by_job)
    }
}

async fn replay(args: ReplayArgs) -> Result<Exit, Failure> {
    let (loaded, api_key) = target::load(&args.config)?;
    let task = Replay {
        jobs: FileJobs::new(
            &loaded,
            api_key,
            Some(&args.job),
            args.worker_id.unwrap_or_else(heartbeat::worker_id),
        )?,
        record: args.record,
        force: args.force,
    };
    target::with_store(&loaded, Opening::Migrated, task)
        .await?
        .unwrap_or(Ok(Exit::Failure))
}

struct Replay<'a> {
    jobs: FileJobs<'a>,
    record: i64,
    force: bool,
}

impl StoreTask for Replay<'_> {
    type Output = Result<Exit, Failure>;

    async fn run<S: Store>(self, store: &S, _: bool) -> Result<Self::Output, Failure> {
        let prepared = self.jobs.prepare(store, Clock::system()).await?;
        let Some(flow) = prepared.flows.first() else {
            return Ok(Err(Failure::new(
                Exit::Usage,
                anyhow::anyhow!("no job to replay"),
            )));
        };
        let report = match engine::enrich::replay(
            store,
            flow,
            &prepared.dispatcher,
            self.record,
            self.force,
        )
        .await
        {
            Ok(report) => report,
            Err(error) => return Ok(Err(failure(self.jobs.loaded, error))),
        };
        match &report.previous {
            Some((previous_id, previous_hash)) => {
                say!(
                    "replay of record {} (job {}, packet version {}): packet {previous_id} replaced by {}",
                    report.record_id,
                    report.job,
                    report.packet_version,
                    report.packet_id
                );
                if report.drift() {
                    say!(
                        "drift: the payload changed since the last emission (payload hash {previous_hash} → {})",
                        report.payload_hash
                    );
                } else {
                    say!("no drift (payload hash {})", report.payload_hash);
                }
            }
            None => say!(
                "record {} (job {}, packet version {}): emitted as packet {} (payload hash {})",
                report.record_id,
                report.job,
                report.packet_version,
                report.packet_id,
                report.payload_hash
            ),
        }
        Ok(Ok(match &report.outcome {
            ReplayOutcome::Applied => {
                say!("applied: the answer passed its schema and was written back");
                Exit::Success
            }
            ReplayOutcome::Failed {
                class,
                error,
                failures,
                disabled,
            } => {
                eprintln!(
                    "error: {class}: {error} ({failures} failure(s){})",
                    if *disabled {
                        ", the record is now disabled"
                    } else {
                        ""
                    }
                );
                Exit::PartialFailure
            }
            ReplayOutcome::HeldBack => {
                eprintln!("error: the endpoint's circuit breaker is open: nothing was sent");
                Exit::Unreachable
            }
            ReplayOutcome::HeldElsewhere => {
                eprintln!("error: another process is sending the record's packet right now");
                Exit::LockBusy
            }
        }))
    }
}

/// For `odoo-bridge run --config FILE`: checks the file's jobs, their secrets and the Odoo
/// settings now (a mistake stops the daemon at start, exit 3), then registers them as flows
/// of the file's store and runs a pass of each every `interval_seconds` until `stop`. When
/// the file's store is the daemon's own (`also_run_by_daemon`), its runtime runs them: they
/// are only registered here.
pub fn start_schedule(
    path: &std::path::Path,
    owner: String,
    also_run_by_daemon: impl Fn(&Loaded) -> bool,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<()>, Failure> {
    let (loaded, api_key) = target::load(path)?;
    // A name of its own in the outbox's leases: taking back "its" leases at start must not
    // free packets the daemon's runtime, under `owner`, is sending from the same store.
    let checked = FileJobs::new(&loaded, api_key, None, format!("{owner}-enrich"))?;
    let (odoo, client, entries, owner) =
        (checked.odoo, checked.client, checked.entries, checked.owner);
    let register_only = also_run_by_daemon(&loaded);
    Ok(tokio::spawn(async move {
        let task = Schedule {
            jobs: FileJobs {
                loaded: &loaded,
                odoo,
                client,
                entries,
                owner,
            },
            register_only,
            stop,
        };
        match target::with_store(&loaded, Opening::Migrated, task).await {
            Ok(_) => {}
            Err(failure) => {
                tracing::error!(error = %format!("{:#}", failure.error), "the enrichment jobs stopped");
            }
        }
    }))
}

struct Schedule<'a> {
    jobs: FileJobs<'a>,
    register_only: bool,
    stop: tokio::sync::watch::Receiver<bool>,
}

impl StoreTask for Schedule<'_> {
    type Output = ();

    async fn run<S: Store>(mut self, store: &S, _: bool) -> Result<(), Failure> {
        let clock = Clock::system();
        let prepared = self.jobs.prepare(store, clock.clone()).await?;
        if self.register_only {
            tracing::info!(
                "enrichment jobs registered in the daemon's store: its runtime runs them"
            );
            return Ok(());
        }
        let mut next: Vec<jiff::Timestamp> = vec![clock.now(); prepared.flows.len()];
        loop {
            for (flow, due) in prepared.flows.iter().zip(next.iter_mut()) {
                if *self.stop.borrow() {
                    return Ok(());
                }
                if *due > clock.now() {
                    continue;
                }
                if let Err(error) =
                    engine::enrich::run_pass(store, flow, &prepared.dispatcher).await
                {
                    tracing::warn!(job = %flow.job().name, error = %error, "enrichment pass failed");
                }
                *due = clock.after(flow.job().interval);
            }
            let wake = next.iter().min().copied().unwrap_or_else(|| clock.now());
            let wait = Duration::try_from(clock.now().duration_until(wake))
                .unwrap_or(Duration::ZERO)
                .max(Duration::from_millis(100));
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.stop.wait_for(|stop| *stop) => return Ok(()),
            }
        }
    }
}

/// `odoo-bridge demo`'s enrichment step: two `x_` fields created on `crm.lead` over the API
/// (as Studio does), a matching service on loopback that ranks buyers by expected revenue, a
/// job over the opportunities, then a second emission refused. Returns the records applied.
pub async fn demo(
    dir: &std::path::Path,
    url: &str,
    sim: &odoo_sim::SimConfig,
) -> Result<u64, Failure> {
    let failed =
        |error: &dyn std::fmt::Display| Failure::new(Exit::Failure, anyhow::anyhow!("{error}"));
    let client = OdooClient::new(odoo_rpc::ClientConfig::new(
        url,
        sim.database.clone(),
        sim.admin_login.clone(),
        odoo_rpc::ApiKey::new(sim.admin_api_key.clone()),
    ))
    .map_err(|error| Failure::new(exit_for(&error), error))?;
    let odoo_failed = |error: odoo_rpc::Error| Failure::new(exit_for(&error), error);
    let model = client
        .search(
            "ir.model",
            &odoo_rpc::SearchReadOptions::new(odoo_rpc::field("model").eq("crm.lead")),
        )
        .await
        .map_err(odoo_failed)?;
    let model_id = model.first().copied().unwrap_or_default();
    let field = |name: &str, ttype: &str, label: &str| {
        json!({"name": name, "model_id": model_id, "ttype": ttype, "field_description": label})
            .as_object()
            .cloned()
            .unwrap_or_default()
    };
    client
        .create(
            "ir.model.fields",
            vec![
                field("x_match_status", "char", "Match status"),
                field("x_match_response", "text", "Match response"),
            ],
            None,
        )
        .await
        .map_err(odoo_failed)?;
    let (endpoint, server) = start_matcher().await?;
    let database = dir.join("enrich.db");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", database.display()));
    }
    let config_path = dir.join("enrich.yml");
    let text = format!(
        "odoo: {{base_url: {url:?}, database: {:?}, username: {:?}}}\nenvironment: demo\nsqlite: {{path: {:?}}}\nenrich:\n  - name: buyer-match\n    model: crm.lead\n    domain: [[\"type\", \"=\", \"opportunity\"]]\n    fields: [name, partner_id, expected_revenue]\n    endpoint: {endpoint:?}\n    packet_version: \"1\"\n    response_schema: {{type: object, required: [ranked_buyers, status], properties: {{ranked_buyers: {{type: array}}, status: {{type: string}}}}}}\n    writeback:\n      x_match_status: /status\n      x_match_response: \"\"\n",
        sim.database,
        sim.admin_login,
        database.display().to_string()
    );
    std::fs::write(&config_path, text).map_err(|error| failed(&error))?;
    let config = engine::config::MirrorConfig::load(&config_path)
        .map_err(|error| Failure::new(Exit::Config, error))?;
    let store = store_sqlite::SqliteStore::open(&database)
        .await
        .map_err(|error| failed(&error))?;
    engine::mirror_store::MirrorStore::migrate(&store)
        .await
        .map_err(|error| failed(&error))?;
    let Some(job) = config.enrich.first() else {
        return Err(failed(&"the demo's job did not load"));
    };
    let loaded = Loaded {
        store_secrets: config
            .store_secrets(|_| None)
            .map_err(|error| Failure::new(Exit::Config, error))?,
        config: config.clone(),
    };
    let entries = [JobEntry {
        job: job.clone(),
        secret: None,
    }];
    let odoo = access(&loaded, odoo_rpc::ApiKey::new(sim.admin_api_key.clone()));
    let prepared = prepare(
        &store,
        &loaded,
        &odoo,
        &client,
        &entries,
        format!("demo-{}", std::process::id()),
        Clock::system(),
    )
    .await
    .map_err(|error| failed(&error))?;
    let Some(flow) = prepared.flows.first() else {
        return Err(failed(&"the demo's job did not register"));
    };
    say!(
        "\nEnrichment: job {:?} over crm.lead opportunities → {endpoint}",
        job.name
    );
    let report = engine::enrich::run_pass(&store, flow, &prepared.dispatcher)
        .await
        .map_err(|error| failed(&error))?;
    say!("  {}", summary(&report));
    let again = engine::enrich::run_pass(&store, flow, &prepared.dispatcher)
        .await
        .map_err(|error| failed(&error))?;
    say!("  a second pass: {}", summary(&again));
    let records = engine::enrich::pass::records(&store, flow)
        .await
        .map_err(|error| failed(&error))?;
    if let Some(first) = records.first() {
        match engine::enrich::replay(&store, flow, &prepared.dispatcher, first.record_id, false)
            .await
        {
            Err(EnrichError::AlreadyEmitted { .. }) => say!(
                "  `enrich replay --record {}` without --force is refused: one emission per record and packet version",
                first.record_id
            ),
            Ok(_) => say!("  the replay went out: unexpected"),
            Err(error) => return Err(failed(&error)),
        }
    }
    say!(
        "  look inside: odoo-bridge enrich status --config {}",
        config_path.display()
    );
    store.close().await;
    server.abort();
    Ok(report.applied)
}

/// A matching service for the demo: ranks two buyers by the packet's expected revenue.
async fn start_matcher() -> Result<(String, tokio::task::JoinHandle<()>), Failure> {
    let app = axum::Router::new().route(
        "/match",
        axum::routing::post(|axum::Json(packet): axum::Json<Value>| async move {
            let revenue = packet["payload"]["expected_revenue"].as_f64().unwrap_or(0.0);
            let score = (revenue / 100_000.0).clamp(0.0, 1.0);
            axum::Json(json!({
                "status": if score > 0.0 { "matched" } else { "no_match" },
                "ranked_buyers": [{"partner_id": 7, "score": score}, {"partner_id": 3, "score": score / 2.0}],
            }))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|error| Failure::new(Exit::Failure, error))?;
    let address = listener
        .local_addr()
        .map_err(|error| Failure::new(Exit::Failure, error))?;
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((format!("http://{address}/match"), server))
}
