//! A marketplace as a flow of the runtime: its poll is an [import pass](super::import) then an
//! [outbound pass](super::outbound) (Odoo's statuses), its packets (acknowledgements and
//! statuses) are POSTed to the marketplace's API with the seed's retry pattern, and its
//! inbound events (statuses: webhooks, and the statuses the import finds) are applied to
//! Odoo by its [`StatusApplier`].

use super::apply::StatusApplier;
use super::cartona::CartonaClient;
use super::catalog::{CATALOG_EVENT, push_catalog};
use super::import::{ImportOptions, import_orders};
use super::outbound::{self, OutboundOptions, OutboundSettings, push_statuses};
use super::push_log::{PushLog, push_entry};
use super::settings::{MARKETPLACE_TARGET, MarketplaceSettings};
use crate::clock::Clock;
use crate::inbox::InboundApplier;
use crate::outbox::{BoxFuture, PacketSender, Target};
use crate::runtime::{FlowError, FlowHandler, FlowSetup, PollReport};
use crate::store::{Packet, Store};
use crate::webhook::{Delivered, DeliveryError, FailureClass, RetrySchedule, target_key};
use odoo_rpc::OdooClient;

/// One marketplace flow, as the runtime runs it.
#[derive(Debug)]
pub struct MarketplaceFlow<S> {
    settings: MarketplaceSettings,
    cartona: CartonaClient,
    odoo: OdooClient,
    clock: Clock,
    options: ImportOptions,
    applier: StatusApplier<S>,
    outbound: OutboundOptions,
    /// Where push log rows go at once; rows it fails to take wait in `push_log`.
    log_store: S,
    push_log: PushLog,
}

impl<S: Store> MarketplaceFlow<S> {
    pub fn new(setup: FlowSetup, store: S) -> Result<MarketplaceFlow<S>, String> {
        let (settings, secrets) =
            MarketplaceSettings::of(&setup.flow).map_err(|error| error.to_string())?;
        let cartona = CartonaClient::new(
            setup.webhooks.http_client().clone(),
            &settings.api_url,
            secrets.api_token,
            setup.webhooks.config().timeout,
        );
        let mut options =
            ImportOptions::new(&setup.flow.id, &setup.worker_id, &settings.reference_field);
        options.overlap = setup.options.overlap;
        options.max_attempts = setup.options.max_attempts;
        let log_store = store.clone();
        let applier = StatusApplier::new(
            store,
            setup.odoo.clone(),
            &setup.flow.id,
            setup.clock.clone(),
        );
        let outbound_settings =
            OutboundSettings::of(&setup.flow).map_err(|error| error.to_string())?;
        let mut outbound =
            OutboundOptions::new(&setup.flow.id, &settings.reference_field, outbound_settings);
        outbound.overlap = setup.options.overlap;
        Ok(MarketplaceFlow {
            settings,
            cartona,
            odoo: setup.odoo,
            clock: setup.clock,
            options,
            applier,
            outbound,
            log_store,
            push_log: PushLog::default(),
        })
    }

    /// The Cartona client (for `marketplace test`).
    pub fn cartona(&self) -> &CartonaClient {
        &self.cartona
    }

    /// The inbound applier (for `marketplace resolve --apply marketplace`).
    pub fn applier(&self) -> &StatusApplier<S> {
        &self.applier
    }

    /// The outbound pass's options (for `marketplace resolve --apply odoo`).
    pub fn outbound(&self) -> &OutboundOptions {
        &self.outbound
    }

    async fn import(&self, store: &S) -> Result<PollReport, FlowError> {
        if let Err(error) = self.push_log.flush(store).await {
            tracing::warn!(connection_id = %self.options.flow_id, error = %error,
                "marketplace push log not written; kept for the next poll");
        }
        let imported =
            import_orders(&self.cartona, &self.odoo, store, &self.options, &self.clock).await?;
        let mut report: PollReport = imported.into();
        let pushed = push_statuses(&self.odoo, store, &self.outbound, &self.clock).await?;
        pushed.add_to(&mut report);
        let catalog = push_catalog(
            &self.odoo,
            store,
            &self.options.flow_id,
            &self.outbound.settings.catalog,
            outbound::RETRY_PATTERN.len() as u32,
            &self.clock,
        )
        .await?;
        report.enqueued += catalog.packets;
        Ok(report)
    }
}

impl<S: Store> FlowHandler<S> for MarketplaceFlow<S> {
    fn poll<'a>(&'a self, store: &'a S) -> BoxFuture<'a, Result<PollReport, FlowError>> {
        Box::pin(self.import(store))
    }

    fn sender(&self) -> Option<&dyn PacketSender> {
        Some(self)
    }

    fn applier(&self) -> Option<&dyn InboundApplier> {
        Some(&self.applier)
    }
}

impl<S: Store> PacketSender for MarketplaceFlow<S> {
    fn targets(&self) -> Vec<Target> {
        vec![Target {
            name: MARKETPLACE_TARGET.to_owned(),
            key: target_key(&self.settings.api_url),
        }]
    }

    fn target_key(&self, _packet: &Packet) -> String {
        target_key(&self.settings.api_url)
    }

    fn send<'a>(&'a self, packet: &'a Packet) -> BoxFuture<'a, Result<Delivered, DeliveryError>> {
        Box::pin(async move {
            if packet.event == CATALOG_EVENT {
                return self.cartona.post_catalog(&packet.payload).await;
            }
            let Some(hashed_id) = packet.reference.as_deref() else {
                return Err(DeliveryError::before_sending(
                    FailureClass::SchemaError,
                    true,
                    "the packet names no marketplace order",
                ));
            };
            let started = std::time::Instant::now();
            let result = match outbound::check_before_sending(packet) {
                Ok(()) => self.cartona.post_status(hashed_id, &packet.payload).await,
                Err(refused) => Err(refused),
            };
            // Acknowledgements belong to their order's import row; statuses get their own.
            if packet.event == super::import::SYNCED_EVENT {
                return result;
            }
            let row = push_entry(packet, &result, started.elapsed(), self.clock.now());
            if let Err(error) = self.log_store.record_log(&row).await {
                tracing::warn!(connection_id = %self.options.flow_id, error = %error,
                    "marketplace push log row not written; kept for the next poll");
                self.push_log.push(row);
            }
            result
        })
    }

    fn retry_schedule(&self) -> Option<RetrySchedule> {
        Some(outbound::retry_schedule())
    }
}
