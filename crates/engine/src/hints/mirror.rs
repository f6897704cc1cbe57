//! `POST /hooks/odoo-mirror/{model}/{token}` on the listener of `odoo-bridge run --config FILE`:
//! Odoo's push hints for the mirror's models with `hint: true`.
//!
//! The same checks, answers and limits as a connection's hints ([`super::receive`]): the
//! sender within its rate, else **429**; the model takes hints and the token is the file's
//! (`hints.token_env`, compared in constant time), else **404** with nothing triggered, the
//! same answer for each; the model within its rate, else **429**; then **202** at once and
//! the model's sync is due now ([`crate::mirror_schedule`]). The body is read for `_model`,
//! `_id` and `write_date` only; a body naming another model, or none, still syncs the model.
//!
//! Its own prefix, not `/hooks/odoo/mirror/…`: the connections' route takes any first
//! segment as a connection id, and no id can reach this one.

use super::HintToken;
use super::receive::{
    HintGate, HintLimits, HintRefusal, MAX_BODY, answer, hinted_record, hinted_write_date,
};
use crate::clock::Clock;
use crate::mirror_schedule::MirrorSignals;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, State};
use axum::response::Response;
use axum::routing::post;
use std::net::{IpAddr, SocketAddr};

/// The route, under the daemon's base URL.
pub const ROUTE: &str = "/hooks/odoo-mirror/{model}/{token}";

/// Checks the mirror's hints and hands them to its schedule. Cheap to clone.
#[derive(Debug, Clone)]
pub struct MirrorHintReceiver {
    token: HintToken,
    signals: MirrorSignals,
    clock: Clock,
    gate: HintGate,
}

impl MirrorHintReceiver {
    /// `limits.per_connection` applies per model.
    pub fn new(
        token: HintToken,
        signals: MirrorSignals,
        clock: Clock,
        limits: HintLimits,
    ) -> MirrorHintReceiver {
        MirrorHintReceiver {
            token,
            signals,
            clock,
            gate: HintGate::new(limits),
        }
    }

    /// Runs the checks of the module's documentation, then makes the model's sync due.
    pub fn receive(
        &self,
        model: &str,
        token: &str,
        peer: IpAddr,
        body: &[u8],
    ) -> Result<(), HintRefusal> {
        let peer = self.gate.admit_peer(peer)?;
        // The token first, whatever the model, so that the time taken tells nothing.
        let token_ok = self.token.matches(token);
        if !token_ok || !self.signals.takes(model) {
            tracing::warn!(%peer, token_ok, "mirror hint refused: the model takes no hints or the token is wrong");
            return Err(HintRefusal::NotFound);
        }
        self.gate.admit_target(model).inspect_err(|_| {
            tracing::debug!(model, "mirror hint refused: rate limit");
        })?;
        let record = hinted_record(body).filter(|record| record.model == model);
        let written_at = record.as_ref().and_then(|_| hinted_write_date(body));
        self.signals
            .hint(model, record.clone(), written_at, self.clock.now());
        tracing::debug!(
            model,
            id = record.as_ref().map_or(0, |record| record.id),
            "mirror hint received"
        );
        Ok(())
    }
}

/// [`ROUTE`], with [`MAX_BODY`] as its body limit. Merge it into the daemon's router before
/// [`crate::http::layers`].
pub fn routes(receiver: MirrorHintReceiver) -> Router {
    Router::new()
        .route(ROUTE, post(receive_hint))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(receiver)
}

async fn receive_hint(
    State(receiver): State<MirrorHintReceiver>,
    Path((model, token)): Path<(String, String)>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: Bytes,
) -> Response {
    answer(receiver.receive(&model, &token, peer.ip(), &body))
}
