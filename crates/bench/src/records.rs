//! `odoo-bridge-bench sim-records` (a helper process): a simulated Odoo 18 holding the mirror
//! benchmark's model, `x_bench.record` (`odoo_sim::bench_model`), filled directly. It prints
//! its connection details as one JSON line, then answers commands on standard input, one JSON
//! line each, and stops when its input reaches its end:
//! - `import N`: a bulk import, N more records in one transaction (one `write_date`);
//! - `remove`: deletes every record imported so far, so that the model is as filled again;
//! - `calls`: the server's call counters per `model/method`.

use crate::child::stdin_lines;
use crate::exit::{Exit, Failure, failure};
use clap::Args;
use odoo_sim::bench_model::{self, BenchSpec};
use odoo_sim::{OdooSim, SimConfig};
use serde_json::json;
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};

#[derive(Debug, Args)]
pub struct RecordsArgs {
    #[arg(long)]
    pub records: usize,
    #[arg(long)]
    pub fields: usize,
    #[arg(long)]
    pub per_second: usize,
}

pub async fn serve(args: RecordsArgs) -> Result<(), Failure> {
    let config = SimConfig::default();
    let sim = OdooSim::new(config.clone());
    let spec = BenchSpec::new(args.records, args.fields, args.per_second);
    sim.with_database(|database, _| spec.fill(database))
        .map_err(|error| failure(format!("cannot fill the benchmark model: {error}")))?;
    let listener = tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .await
        .map_err(|e| Failure::new(Exit::Config, anyhow::anyhow!("cannot listen: {e}")))?;
    let address = listener.local_addr().map_err(failure)?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(sim.clone().serve(listener, async move {
        let _ = stopped.await;
    }));
    say!(
        "{}",
        json!({
            "url": format!("http://{address}"),
            "database": config.database,
            "login": config.admin_login,
            "api_key": config.admin_api_key,
        })
    );
    let mut imported: Vec<i64> = Vec::new();
    let mut commands = stdin_lines();
    while let Some(command) = commands.recv().await {
        let words: Vec<&str> = command.split_whitespace().collect();
        let reply = match words.as_slice() {
            ["import", count] => match count.parse::<usize>() {
                Ok(count) => {
                    match sim.with_database(|database, env| spec.import(database, env, count)) {
                        Ok(ids) => {
                            imported.extend(&ids);
                            json!({"count": ids.len(), "first": ids.first(), "last": ids.last()})
                        }
                        Err(error) => json!({"error": error.to_string()}),
                    }
                }
                Err(_) => json!({"error": "usage: import N"}),
            },
            ["remove"] => {
                let removed = std::mem::take(&mut imported);
                match sim.with_database(|database, env| {
                    database.unlink(env, bench_model::MODEL, &removed)
                }) {
                    Ok(()) => json!({"removed": removed.len()}),
                    Err(error) => json!({"error": error.to_string()}),
                }
            }
            ["calls"] => {
                let calls: BTreeMap<String, u64> = sim
                    .calls()
                    .into_iter()
                    .map(|((model, method), count)| (format!("{model}/{method}"), count))
                    .collect();
                json!({"calls": calls})
            }
            _ => json!({"error": format!("unknown command {command:?}")}),
        };
        say!("{reply}");
    }
    let _ = stop.send(());
    let _ = server.await;
    Ok(())
}
