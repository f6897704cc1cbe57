//! `odoo-bridge secrets …`: the key that seals the stored secrets (the tenants' Odoo API
//! keys, the flows' webhook secrets and tokens; see `engine::store::secrets_at_rest`).

use super::delivery_store::{Access, StoreLocation, StoreTask, with_store};
use crate::exit::{Exit, Failure};
use clap::{Args, Subcommand};
use engine::store::secrets_at_rest::{KEY_ENV, NEW_KEY_ENV};
use engine::store::{EncryptionKey, Reseal, Store};
use serde_json::json;

#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Print a new random key (base64), to give as ODOO_BRIDGE_ENCRYPTION_KEY (or as
    /// ODOO_BRIDGE_NEW_ENCRYPTION_KEY to rotate-key).
    GenerateKey,
    /// Re-encrypt every stored secret under a new key, in one transaction. With a key file
    /// (the default), a new key is generated and replaces the file; with
    /// ODOO_BRIDGE_ENCRYPTION_KEY, give the new key as ODOO_BRIDGE_NEW_ENCRYPTION_KEY. Stop the
    /// daemons first: they keep the old key until restarted.
    RotateKey(RotateArgs),
}

#[derive(Debug, Args)]
pub struct RotateArgs {
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

pub async fn run(command: SecretsCommand) -> Result<Exit, Failure> {
    match command {
        SecretsCommand::GenerateKey => {
            let key =
                EncryptionKey::generate().map_err(|error| Failure::new(Exit::Failure, error))?;
            println!("{}", key.expose_text());
            Ok(Exit::Success)
        }
        SecretsCommand::RotateKey(args) => with_store(Access::Existing, Rotate(args)).await,
    }
}

struct Rotate(RotateArgs);

impl StoreTask for Rotate {
    type Output = Exit;

    async fn run<S: Store>(self, store: &S, location: &StoreLocation) -> Result<Exit, Failure> {
        let keyring = store.keyring();
        let previous = keyring.primary().map_err(|e| location.failure(e))?;
        let new_key = keyring.rotation_key().map_err(|e| location.failure(e))?;
        let rewritten = store
            .reseal_secrets(&Reseal::AllUnder(new_key.clone()))
            .await
            .map_err(|e| location.failure(e))?;
        keyring.finish_rotation().map_err(|e| location.failure(e))?;
        let next_step = if keyring.key_from_environment() {
            format!("give the new key as {KEY_ENV} from now on, and unset {NEW_KEY_ENV}")
        } else {
            format!(
                "{} now holds it: back it up with the store",
                keyring.key_file().display()
            )
        };
        if self.0.json {
            println!(
                "{}",
                json!({
                    "rewritten": rewritten,
                    "key_id": new_key.id(),
                    "previous_key_id": previous.id(),
                    "key_from_environment": keyring.key_from_environment(),
                })
            );
        } else {
            println!(
                "Re-encrypted {rewritten} stored secret(s) under key {} (was {}); {next_step}.",
                new_key.id(),
                previous.id()
            );
        }
        Ok(Exit::Success)
    }
}
