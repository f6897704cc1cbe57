//! `odoo-bridge logs`: the sync log of order delivery, one row per polling cycle.

use super::connections::Store;
use super::delivery_store::{
    Access, StoreLocation, StoreTask, cut, table, time_json, time_text, with_store,
};
use crate::exit::{Exit, Failure};
use clap::Args;
use serde_json::{Value, json};

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Only this connection's cycles (its id or name).
    #[arg(long, value_name = "ID|NAME")]
    connection: Option<String>,
    /// At most this many cycles, newest first (0: all).
    #[arg(long, default_value_t = 50)]
    limit: u32,
    /// Print a JSON array instead of a table.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: LogsArgs) -> Result<Exit, Failure> {
    with_store(Access::Existing, Task(args)).await
}

struct Task(LogsArgs);

impl StoreTask for Task {
    type Output = Exit;

    async fn run<S: engine::store::Store>(
        self,
        store: &S,
        location: &StoreLocation,
    ) -> Result<Exit, Failure> {
        logs(&Store { store, location }, self.0).await
    }
}

/// `850 ms`, `12.3 s`.
fn duration_text(ms: u64) -> String {
    if ms < 1_000 {
        format!("{ms} ms")
    } else {
        format!("{}.{} s", ms / 1_000, (ms % 1_000) / 100)
    }
}

async fn logs<S: engine::store::Store>(
    store: &Store<'_, S>,
    args: LogsArgs,
) -> Result<Exit, Failure> {
    let connection_id = match &args.connection {
        Some(wanted) => Some(store.find(wanted).await?.id),
        None => None,
    };
    let cycles = store
        .store
        .cycles(connection_id.as_deref(), args.limit)
        .await
        .map_err(|e| store.failed(e))?;
    let names = store.names().await?;
    let name_of = |id: &str| names.get(id).cloned();
    if args.json {
        let rows: Vec<Value> = cycles
            .iter()
            .map(|entry| {
                let log = &entry.log;
                json!({
                    "id": entry.id,
                    "started_at": time_json(log.started_at),
                    "connection_id": log.flow_id,
                    "connection_name": name_of(&log.flow_id),
                    "orders_found": log.found,
                    "orders_sent": log.sent,
                    "orders_failed": log.failed,
                    "held_back": log.held_back,
                    "duration_ms": log.duration_ms,
                    "error": log.error_message,
                })
            })
            .collect();
        say!("{}", Value::Array(rows));
        return Ok(Exit::Success);
    }
    if cycles.is_empty() {
        say!("No polling cycles logged yet.");
        return Ok(Exit::Success);
    }
    let rows: Vec<Vec<String>> = cycles
        .iter()
        .map(|entry| {
            let log = &entry.log;
            vec![
                time_text(log.started_at),
                name_of(&log.flow_id).unwrap_or_else(|| log.flow_id.clone()),
                log.found.to_string(),
                log.sent.to_string(),
                log.failed.to_string(),
                log.held_back.to_string(),
                duration_text(log.duration_ms),
                log.error_message
                    .as_deref()
                    .map(|error| cut(error, 100))
                    .unwrap_or_default(),
            ]
        })
        .collect();
    say!(
        "{}",
        table(
            &[
                "TIME",
                "CONNECTION",
                "FOUND",
                "SENT",
                "FAILED",
                "HELD BACK",
                "DURATION",
                "ERROR"
            ],
            &rows
        )
    );
    Ok(Exit::Success)
}

#[cfg(test)]
mod tests {
    use super::duration_text;

    #[test]
    fn durations_read_well() {
        assert_eq!(duration_text(850), "850 ms");
        assert_eq!(duration_text(12_345), "12.3 s");
    }
}
