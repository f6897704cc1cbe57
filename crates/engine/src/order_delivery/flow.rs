//! Order delivery as a flow of the runtime: its feed is [`poll`](super::poll::poll), its
//! packets go to the connection's webhook, signed per Standard Webhooks with the seed's
//! headers. It takes no events in.

use super::connection::{DeliverySettings, WEBHOOK_TARGET};
use super::poll::{PollTarget, poll};
use crate::change_feed::Checkpoint;
use crate::clock::Clock;
use crate::inbox::InboundApplier;
use crate::order_payload::Source;
use crate::outbox::{BoxFuture, PacketSender, Target};
use crate::runtime::{FlowError, FlowHandler, FlowOptions, FlowSetup, PollReport};
use crate::store::{Flow, Packet, Store};
use crate::webhook::{Delivered, DeliveryError, WebhookSecret, WebhookSender, target_key};
use odoo_rpc::OdooClient;
use std::sync::{Mutex, PoisonError};

/// One connection's order delivery, as the runtime runs it.
#[derive(Debug)]
pub struct OrderDeliveryFlow {
    flow: Flow,
    odoo_db: String,
    settings: DeliverySettings,
    secret: WebhookSecret,
    source: Source,
    odoo: OdooClient,
    webhooks: WebhookSender,
    clock: Clock,
    options: FlowOptions,
    /// Where the order feed resumes: read from the store at the first poll, then kept here.
    /// While the runtime holds the flow's lease, only this task moves it.
    cursor: Mutex<Option<Option<Checkpoint>>>,
}

impl OrderDeliveryFlow {
    pub fn new(setup: FlowSetup) -> Result<OrderDeliveryFlow, String> {
        let (settings, secret) =
            DeliverySettings::of(&setup.flow).map_err(|error| error.to_string())?;
        let source = Source::odoo(
            setup.flow.id.clone(),
            settings.store_id.clone(),
            settings.client_id.clone(),
        );
        Ok(OrderDeliveryFlow {
            odoo_db: setup.tenant.odoo_db.clone(),
            flow: setup.flow,
            settings,
            secret,
            source,
            odoo: setup.odoo,
            webhooks: setup.webhooks,
            clock: setup.clock,
            options: setup.options,
            cursor: Mutex::new(None),
        })
    }

    fn cached_cursor(&self) -> Option<Option<Checkpoint>> {
        *self.cursor.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn keep_cursor(&self, cursor: Option<Checkpoint>) {
        *self.cursor.lock().unwrap_or_else(PoisonError::into_inner) = Some(cursor);
    }

    async fn poll_orders<S: Store>(&self, store: &S) -> Result<PollReport, FlowError> {
        let mut cursor = match self.cached_cursor() {
            Some(cursor) => cursor,
            None => store
                .cursors(Some(&self.flow.id))
                .await
                .map_err(super::poll::PollError::from)?
                .into_iter()
                .find(|cursor| cursor.feed == super::connection::ORDER_FEED)
                .map(|cursor| cursor.checkpoint),
        };
        let target = PollTarget {
            flow_id: &self.flow.id,
            odoo_db: &self.odoo_db,
            source: &self.source,
            events: self.settings.events,
            overlap: self.options.overlap,
            max_attempts: self.options.max_attempts,
        };
        let outcome = poll(&self.odoo, store, &target, &mut cursor, &self.clock).await;
        // Pages written before a failure moved the cursor: keep what was saved.
        self.keep_cursor(cursor);
        Ok(outcome?)
    }
}

impl<S: Store> FlowHandler<S> for OrderDeliveryFlow {
    fn poll<'a>(&'a self, store: &'a S) -> BoxFuture<'a, Result<PollReport, FlowError>> {
        Box::pin(self.poll_orders(store))
    }

    fn sender(&self) -> Option<&dyn PacketSender> {
        Some(self)
    }

    fn applier(&self) -> Option<&dyn InboundApplier> {
        None
    }
}

impl PacketSender for OrderDeliveryFlow {
    fn targets(&self) -> Vec<Target> {
        vec![Target {
            name: WEBHOOK_TARGET.to_owned(),
            key: target_key(&self.settings.webhook_url),
        }]
    }

    fn target_key(&self, _packet: &Packet) -> String {
        target_key(&self.settings.webhook_url)
    }

    fn send<'a>(&'a self, packet: &'a Packet) -> BoxFuture<'a, Result<Delivered, DeliveryError>> {
        Box::pin(async move {
            let outgoing = crate::webhook::Packet {
                id: packet.id.clone(),
                connection_id: packet.flow_id.clone(),
                body: bytes::Bytes::from(packet.payload.clone()),
            };
            self.webhooks
                .send(&self.settings.webhook_url, &self.secret, &outgoing)
                .await
        })
    }
}
