//! The flow kinds this version runs, by [`FlowKind`]: the runtime's standard factory.

use crate::runtime::{FlowHandler, FlowSetup};
use crate::store::{FlowKind, Store};

/// The handler of `setup`'s flow, or why it cannot run here.
pub fn build<S: Store>(setup: FlowSetup, store: &S) -> Result<Box<dyn FlowHandler<S>>, String> {
    match setup.flow.kind {
        FlowKind::OrderDelivery => Ok(Box::new(crate::order_delivery::OrderDeliveryFlow::new(
            setup,
        )?)),
        FlowKind::Marketplace => Ok(Box::new(crate::marketplace::MarketplaceFlow::new(
            setup,
            store.clone(),
        )?)),
        FlowKind::Enrichment => Ok(Box::new(crate::enrich::EnrichmentFlow::new(setup)?)),
    }
}

/// What an inbound event of a flow of `kind` is, read from its body: a marketplace's events
/// are Cartona statuses (an unknown status or a missing order is refused before it is
/// stored), any other flow's the generic `type` and `subject`.
pub fn event_shape(
    kind: FlowKind,
    body: &serde_json::Value,
) -> Result<crate::inbox::receive::EventShape, String> {
    match kind {
        FlowKind::Marketplace => crate::marketplace::inbound::status_shape(body),
        FlowKind::OrderDelivery | FlowKind::Enrichment => {
            crate::inbox::receive::generic_shape(body)
        }
    }
}
