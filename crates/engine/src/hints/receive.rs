//! `POST /hooks/odoo/{connection_id}/{token}` on the listener of `odoo-bridge run`.
//!
//! In order, each a refusal with nothing triggered:
//! 1. the sender's address is within [`HintLimits::per_peer`], else **429** (checked before
//!    the store is read, so guessing tokens costs the guesser, not the store);
//! 2. the connection exists, has hints enabled and the token is its token (compared in
//!    constant time), else **404**, the same answer for each, so a wrong token tells nothing;
//! 3. the connection is within [`HintLimits::per_connection`], else **429** (the hints already
//!    taken poll for every change anyway);
//!
//! then the hint is handed to the flow's task and answered **202** at once: Odoo waits one
//! second at most, inside the transaction it is committing. The body is read for `_model`
//! and `_id` only; an unreadable body is still a hint, without a record to look for.

use super::HintToken;
use crate::clock::Clock;
use crate::runtime::FlowSignals;
use crate::runtime::hints::HintedRecord;
use crate::store::Store;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, PoisonError};

use crate::clock::later;
use jiff::Timestamp;

/// The largest hint body read: Odoo's is a `read()` of a few chosen fields.
pub const MAX_BODY: usize = 64 * 1024;
/// Longest connection id looked up (ids are 16 hex characters).
const MAX_ID_LEN: usize = 64;
/// How often a flow's hint activity is written to the store at most (`connections show` and
/// the TUI read it there): hints between two writes are added up.
pub const RECORD_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// How many hints are taken, per connection and per sender address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HintLimits {
    pub per_connection: Quota,
    pub per_peer: Quota,
}

/// 10 hints a second per connection with bursts of 200 (a batch of confirmations each posts
/// one), and 50 a second per sender address with bursts of 500 (one Odoo server may host
/// many databases).
impl Default for HintLimits {
    fn default() -> HintLimits {
        HintLimits {
            per_connection: quota(10, 200),
            per_peer: quota(50, 500),
        }
    }
}

/// `per_second` hints a second, `burst` at once.
pub fn quota(per_second: u32, burst: u32) -> Quota {
    let one = NonZeroU32::MIN;
    Quota::per_second(NonZeroU32::new(per_second).unwrap_or(one))
        .allow_burst(NonZeroU32::new(burst).unwrap_or(one))
}

/// Why a hint was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HintRefusal {
    #[error("not found")]
    NotFound,
    #[error("too many hints; retry in {retry_after_seconds} s")]
    RateLimited { retry_after_seconds: u64 },
    #[error("the hint cannot be checked right now")]
    Unavailable,
}

impl IntoResponse for HintRefusal {
    fn into_response(self) -> Response {
        let status = match self {
            HintRefusal::NotFound => StatusCode::NOT_FOUND,
            HintRefusal::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            HintRefusal::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        };
        let mut response =
            (status, axum::Json(json!({ "error": self.to_string() }))).into_response();
        if let HintRefusal::RateLimited {
            retry_after_seconds,
        } = self
            && let Ok(value) = HeaderValue::from_str(&retry_after_seconds.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

/// The rate limits every hint route applies: per sender address first, then per target
/// (a connection, or a mirrored model). Cheap to clone: clones share the counts.
#[derive(Clone)]
pub struct HintGate {
    per_target: Arc<DefaultKeyedRateLimiter<String>>,
    per_peer: Arc<DefaultKeyedRateLimiter<IpAddr>>,
}

impl HintGate {
    /// `limits.per_connection` applies to each target.
    pub fn new(limits: HintLimits) -> HintGate {
        HintGate {
            per_target: Arc::new(RateLimiter::keyed(limits.per_connection)),
            per_peer: Arc::new(RateLimiter::keyed(limits.per_peer)),
        }
    }

    /// Takes one hint from `peer`, before anything is looked up.
    pub fn admit_peer(&self, peer: IpAddr) -> Result<IpAddr, HintRefusal> {
        let peer = canonical(peer);
        self.per_peer.check_key(&peer).map_err(refused)?;
        Ok(peer)
    }

    /// Takes one hint for `target`, once it is known to be a real one.
    pub fn admit_target(&self, target: &str) -> Result<(), HintRefusal> {
        self.per_target
            .check_key(&target.to_owned())
            .map_err(refused)
    }
}

impl std::fmt::Debug for HintGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HintGate").finish_non_exhaustive()
    }
}

/// Checks hints and hands them to the flows' tasks. Cheap to clone.
#[derive(Clone)]
pub struct HintReceiver<S> {
    store: S,
    clock: Clock,
    signals: FlowSignals,
    gate: HintGate,
    book: Arc<Mutex<HashMap<String, Unrecorded>>>,
}

/// A flow's hints not written to the store yet.
#[derive(Debug, Default)]
struct Unrecorded {
    count: u64,
    last_at: Option<Timestamp>,
    written_at: Option<Timestamp>,
    write_scheduled: bool,
}

impl<S> std::fmt::Debug for HintReceiver<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HintReceiver").finish_non_exhaustive()
    }
}

impl<S: Store> HintReceiver<S> {
    pub fn new(store: S, clock: Clock, signals: FlowSignals, limits: HintLimits) -> Self {
        HintReceiver {
            store,
            clock,
            signals,
            gate: HintGate::new(limits),
            book: Arc::default(),
        }
    }

    /// Runs the checks of the module's documentation, then hands the hint over. `Ok(true)`
    /// when this process runs the flow (else the regular poll of the replica running it
    /// finds the change).
    pub async fn receive(
        &self,
        connection_id: &str,
        token: &str,
        peer: IpAddr,
        body: &[u8],
    ) -> Result<bool, HintRefusal> {
        let peer = self.gate.admit_peer(peer)?;
        if connection_id.is_empty() || connection_id.len() > MAX_ID_LEN {
            return Err(HintRefusal::NotFound);
        }
        let flow = match self.store.flow(None, connection_id).await {
            Ok(Some(flow)) if flow.id == connection_id => flow,
            Ok(_) => return Err(HintRefusal::NotFound),
            Err(error) => {
                tracing::error!(connection_id, error = %error, "cannot read the flow of a hint");
                return Err(HintRefusal::Unavailable);
            }
        };
        if !HintToken::of(&flow).is_some_and(|expected| expected.matches(token)) {
            tracing::warn!(connection_id, %peer, "hint refused: hints are off or the token is wrong");
            return Err(HintRefusal::NotFound);
        }
        self.gate.admit_target(&flow.id).inspect_err(|_| {
            tracing::debug!(connection_id, "hint refused: rate limit");
        })?;
        let record = hinted_record(body);
        let now = self.clock.now();
        let taken = self.signals.hint(&flow.id, record.clone(), now);
        self.note(&flow.id, now);
        tracing::debug!(
            connection_id,
            model = record.as_ref().map_or("", |r| r.model.as_str()),
            id = record.as_ref().map_or(0, |r| r.id),
            taken,
            "hint received"
        );
        Ok(taken)
    }
}

impl<S: Store> HintReceiver<S> {
    /// Counts a hint for the store's hint activity, written at most every [`RECORD_EVERY`]
    /// per flow, off the request's path.
    fn note(&self, flow_id: &str, now: Timestamp) {
        let due = {
            let mut book = self.book.lock().unwrap_or_else(PoisonError::into_inner);
            let entry = book.entry(flow_id.to_owned()).or_default();
            entry.count += 1;
            entry.last_at = Some(now);
            if entry.write_scheduled {
                return;
            }
            entry.write_scheduled = true;
            entry
                .written_at
                .map_or(now, |written| later(written, RECORD_EVERY))
                .max(now)
        };
        let receiver = self.clone();
        let flow_id = flow_id.to_owned();
        tokio::spawn(async move {
            receiver.clock.sleep_until(due).await;
            let taken = {
                let mut book = receiver.book.lock().unwrap_or_else(PoisonError::into_inner);
                let entry = book.entry(flow_id.clone()).or_default();
                entry.write_scheduled = false;
                entry.written_at = Some(receiver.clock.now());
                let count = std::mem::take(&mut entry.count);
                entry.last_at.take().map(|last| (count, last))
            };
            if let Some((count, last)) = taken
                && let Err(error) = receiver.store.record_hints(&flow_id, count, last).await
            {
                tracing::warn!(connection_id = %flow_id, error = %error, "cannot record the hint activity");
            }
        });
    }
}

fn refused(not_until: governor::NotUntil<governor::clock::QuantaInstant>) -> HintRefusal {
    let wait = not_until.wait_time_from(governor::clock::Clock::now(
        &governor::clock::DefaultClock::default(),
    ));
    HintRefusal::RateLimited {
        retry_after_seconds: wait.as_secs().max(1),
    }
}

/// An IPv4 peer seen through an IPv6 socket as the IPv4 address it is.
fn canonical(peer: IpAddr) -> IpAddr {
    match peer {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(peer, IpAddr::V4),
        IpAddr::V4(_) => peer,
    }
}

/// The `write_date` of Odoo's body, when it has one: `str()` of a UTC datetime
/// (`2026-12-07 03:34:01.269912`, no fraction when it has none).
pub fn hinted_write_date(body: &[u8]) -> Option<Timestamp> {
    let body: Value = serde_json::from_slice(body).ok()?;
    let text = body.get("write_date")?.as_str()?;
    if text.len() > 32 {
        return None;
    }
    let civil: jiff::civil::DateTime = text.replacen(' ', "T", 1).parse().ok()?;
    civil
        .to_zoned(jiff::tz::TimeZone::UTC)
        .ok()
        .map(|at| at.timestamp())
}

/// `_model` and `_id` of Odoo's body, when both are there and sane.
pub fn hinted_record(body: &[u8]) -> Option<HintedRecord> {
    let body: Value = serde_json::from_slice(body).ok()?;
    let model = body.get("_model")?.as_str()?;
    let id = body.get("_id")?.as_i64()?;
    let model_ok = !model.is_empty()
        && model.len() <= 128
        && model
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'_');
    (model_ok && id > 0).then(|| HintedRecord {
        model: model.to_owned(),
        id,
    })
}

/// `POST /hooks/odoo/{connection_id}/{token}`, with [`MAX_BODY`] as its body limit. Merge it
/// into the daemon's router before [`crate::http::layers`].
pub fn routes<S: Store>(receiver: HintReceiver<S>) -> Router {
    Router::new()
        .route(
            "/hooks/odoo/{connection_id}/{token}",
            post(receive_hint::<S>),
        )
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(receiver)
}

async fn receive_hint<S: Store>(
    State(receiver): State<HintReceiver<S>>,
    Path((connection_id, token)): Path<(String, String)>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: Bytes,
) -> Response {
    answer(
        receiver
            .receive(&connection_id, &token, peer.ip(), &body)
            .await
            .map(|_| ()),
    )
}

/// The HTTP answer to a hint: 202 once it is taken, the refusal's status otherwise.
pub fn answer(taken: Result<(), HintRefusal>) -> Response {
    match taken {
        Ok(()) => (
            StatusCode::ACCEPTED,
            axum::Json(json!({ "status": "accepted" })),
        )
            .into_response(),
        Err(refusal) => refusal.into_response(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn only_model_and_id_are_read_from_the_body() {
        let body = br#"{"_action": "Send Webhook Notification(#494)", "_id": 1, "_model": "sale.order", "id": 1, "name": "S00001", "state": "sale", "write_date": "2026-12-07 03:34:01.269912"}"#;
        assert_eq!(
            hinted_record(body),
            Some(HintedRecord {
                model: "sale.order".into(),
                id: 1
            })
        );
        for bad in [
            &b"not json"[..],
            br#"{"_model": "sale.order"}"#,
            br#"{"_model": "sale.order", "_id": -3}"#,
            br#"{"_model": "sale.order", "_id": "7"}"#,
            br#"{"_model": "Robert'); DROP TABLE", "_id": 7}"#,
            br#"[1, 2]"#,
        ] {
            assert_eq!(hinted_record(bad), None, "{}", String::from_utf8_lossy(bad));
        }
        assert_eq!(
            hinted_write_date(body),
            Some("2026-12-07T03:34:01.269912Z".parse().unwrap())
        );
        assert_eq!(
            hinted_write_date(br#"{"write_date": "2026-12-07 03:34:01"}"#),
            Some("2026-12-07T03:34:01Z".parse().unwrap())
        );
        for bad in [
            &br#"{"write_date": false}"#[..],
            br#"{"write_date": "yesterday"}"#,
            b"{}",
        ] {
            assert_eq!(hinted_write_date(bad), None);
        }
    }
}
