//! The environment (`prod`, `staging`, …) a store belongs to. The first process that names
//! one binds the store to it; a process of another environment is then refused before it
//! reads a flow or sends a packet, so a staging configuration pointed at the production
//! store (or the reverse) cannot emit into the wrong world.

use super::StoreError;
use jiff::Timestamp;
use std::future::Future;

/// The store's one environment binding.
pub trait EnvironmentStore: Send + Sync {
    /// Binds the store to `environment` on first use; the environment it is bound to
    /// otherwise (the caller compares and refuses).
    fn bind_environment(
        &self,
        environment: &str,
        now: Timestamp,
    ) -> impl Future<Output = Result<String, StoreError>> + Send;

    /// The environment the store is bound to, if any.
    fn bound_environment(&self) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;
}

/// Why a process may not use a store.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "this store belongs to environment {bound:?}, and this process is configured for {configured:?}: nothing was read or sent. Point the process at the store of its own environment (or set ODOO_BRIDGE_ENVIRONMENT / `environment:` to {bound:?} if that is really meant)"
)]
pub struct EnvironmentMismatch {
    pub bound: String,
    pub configured: String,
}

/// Binds `store` to `environment`, or says why it belongs to another one.
pub async fn bind<S: EnvironmentStore>(
    store: &S,
    environment: &str,
    now: Timestamp,
) -> Result<Result<(), EnvironmentMismatch>, StoreError> {
    let bound = store.bind_environment(environment, now).await?;
    Ok(if bound == environment {
        Ok(())
    } else {
        Err(EnvironmentMismatch {
            bound,
            configured: environment.to_owned(),
        })
    })
}
