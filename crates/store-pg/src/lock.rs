//! The run lock: a session-level advisory lock held on one dedicated connection.

use sqlx::pool::PoolConnection;
use sqlx::postgres::Postgres;

/// The advisory-lock key every odoo-bridge mirror takes: FNV-1a (64 bit) of the text
/// `odoo-bridge mirror`, computed at compile time so it is fixed across versions and
/// platforms (PostgreSQL's `hashtext` is not guaranteed stable across major versions).
pub const LOCK_KEY: i64 = fnv1a_64(b"odoo-bridge mirror");

const fn fnv1a_64(bytes: &[u8]) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut index = 0;
    while index < bytes.len() {
        hash ^= bytes[index] as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        index += 1;
    }
    // Reinterpreting the bits is the point: PostgreSQL's key is a signed bigint.
    i64::from_ne_bytes(hash.to_ne_bytes())
}

/// Proof that this process holds the mirror's advisory lock.
///
/// A session-level advisory lock belongs to the connection that took it, so the lock owns
/// that connection. Give it back with `MirrorStore::unlock`. If it is dropped instead, the
/// connection is detached from the pool and closed, which makes PostgreSQL release the lock:
/// returning it to the pool would leave the lock held by an idle pooled connection for as long
/// as the pool lives.
#[derive(Debug)]
pub struct PgLock {
    pub(crate) connection: Option<PoolConnection<Postgres>>,
}

impl Drop for PgLock {
    fn drop(&mut self) {
        if let Some(connection) = self.connection.take() {
            tracing::warn!("run lock dropped without unlock; closing its connection to release it");
            // `detach` takes the connection out of the pool's accounting without spawning a
            // task (so this works outside a runtime too); dropping the raw connection closes
            // its socket, and the server ends the session and its locks.
            drop(connection.detach());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_fixed() {
        // FNV-1a test vector: the empty input hashes to the offset basis.
        assert_eq!(fnv1a_64(b""), 0xcbf2_9ce4_8422_2325_u64 as i64);
        assert_eq!(LOCK_KEY, fnv1a_64(b"odoo-bridge mirror"));
        assert_ne!(LOCK_KEY, 0);
    }
}
