//! A marketplace as a flow of the runtime: its poll is an [import pass](super::import), its
//! packets (acknowledgements, later statuses) are POSTed to the marketplace's API, and its
//! inbound events (statuses: webhooks, and the statuses the import finds) are applied to
//! Odoo by its [`StatusApplier`].

use super::apply::StatusApplier;
use super::cartona::CartonaClient;
use super::import::{ImportOptions, import_orders};
use super::settings::{MARKETPLACE_TARGET, MarketplaceSettings};
use crate::clock::Clock;
use crate::inbox::InboundApplier;
use crate::outbox::{BoxFuture, PacketSender, Target};
use crate::runtime::{FlowError, FlowHandler, FlowSetup, PollReport};
use crate::store::{Packet, Store};
use crate::webhook::{Delivered, DeliveryError, FailureClass, target_key};
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
        let applier = StatusApplier::new(
            store,
            setup.odoo.clone(),
            &setup.flow.id,
            setup.clock.clone(),
        );
        Ok(MarketplaceFlow {
            settings,
            cartona,
            odoo: setup.odoo,
            clock: setup.clock,
            options,
            applier,
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

    async fn import(&self, store: &S) -> Result<PollReport, FlowError> {
        let report =
            import_orders(&self.cartona, &self.odoo, store, &self.options, &self.clock).await?;
        Ok(report.into())
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
            let Some(hashed_id) = packet.reference.as_deref() else {
                return Err(DeliveryError::before_sending(
                    FailureClass::SchemaError,
                    true,
                    "the packet names no marketplace order",
                ));
            };
            self.cartona.post_status(hashed_id, &packet.payload).await
        })
    }
}
