//! `odoo-bridge-bench receiver` (a helper process): the webhook target of the delivery
//! benchmarks, an axum server on loopback that answers 200 to every request and notes when
//! each `webhook-id` first arrived (wall clock, µs). It prints its URL as one JSON line, then
//! answers commands on standard input and stops when its input reaches its end:
//! - `count`: requests received, distinct `webhook-id`s, malformed requests (no `webhook-id`,
//!   or not a POST), the last arrival;
//! - `dump`: every `webhook-id` with its first arrival.

use crate::child::stdin_lines;
use crate::exit::{Failure, failure};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, Method, StatusCode};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

/// Order payloads are a few KiB; this only keeps a runaway sender from exhausting memory.
const MAX_BODY: usize = 16 * 1024 * 1024;

/// Every delivery the receiver saw.
#[derive(Debug, Default)]
struct Book {
    /// First arrival (µs since the epoch) of each `webhook-id`.
    first: HashMap<String, i64>,
    received: u64,
    last_micros: i64,
    /// Requests without a `webhook-id`, or that were not POSTs.
    malformed: u64,
}

impl Book {
    fn record(&mut self, id: Option<String>, at: i64) {
        self.received += 1;
        self.last_micros = self.last_micros.max(at);
        match id {
            Some(id) => {
                self.first.entry(id).or_insert(at);
            }
            None => self.malformed += 1,
        }
    }
}

type Shared = Arc<Mutex<Book>>;

fn lock(book: &Mutex<Book>) -> MutexGuard<'_, Book> {
    book.lock().unwrap_or_else(PoisonError::into_inner)
}

fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_micros()).unwrap_or(i64::MAX)
        })
}

/// Any request: noted once its body has arrived whole, then answered 200.
async fn receive(
    State(book): State<Shared>,
    method: Method,
    headers: HeaderMap,
    _body: Bytes,
) -> StatusCode {
    let at = now_micros();
    let id = headers
        .get("webhook-id")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
        .filter(|_| method == Method::POST);
    lock(&book).record(id, at);
    StatusCode::OK
}

fn reply(book: &Mutex<Book>, command: &str) -> Value {
    let book = lock(book);
    match command {
        "count" => json!({
            "received": book.received,
            "distinct": book.first.len(),
            "malformed": book.malformed,
            "last_micros": book.last_micros,
        }),
        "dump" => {
            let arrivals: Vec<Value> = book.first.iter().map(|(id, at)| json!([id, at])).collect();
            json!({"arrivals": arrivals})
        }
        other => json!({"error": format!("unknown command {other:?}")}),
    }
}

pub async fn serve() -> Result<(), Failure> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(failure)?;
    let address = listener.local_addr().map_err(failure)?;
    let book = Shared::default();
    let app = Router::new()
        .fallback(receive)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(Arc::clone(&book));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await
    });
    say!("{}", json!({"url": format!("http://{address}/hook")}));
    let mut commands = stdin_lines();
    while let Some(command) = commands.recv().await {
        say!("{}", reply(&book, command.trim()));
    }
    let _ = stop.send(());
    server.abort();
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_book_keeps_first_arrivals_and_counts_the_malformed() {
        let book = Mutex::new(Book::default());
        lock(&book).record(Some("a".into()), 10);
        lock(&book).record(Some("a".into()), 20);
        lock(&book).record(None, 30);
        let count = reply(&book, "count");
        assert_eq!(count["received"], 3);
        assert_eq!(count["distinct"], 1);
        assert_eq!(count["malformed"], 1);
        assert_eq!(count["last_micros"], 30);
        assert_eq!(reply(&book, "dump")["arrivals"], json!([["a", 10]]));
        assert!(reply(&book, "other").get("error").is_some());
    }
}
