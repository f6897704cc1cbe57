//! The run lock: an exclusive `flock` on `<database>.lock`.
//!
//! An OS lock rather than a row in the database because the kernel releases it when the
//! process dies, even by `kill -9`, so a crashed daemon never leaves a stale lock behind. The
//! standard library's `File::try_lock` (`flock(LOCK_EX | LOCK_NB)` on Unix) does this without
//! another dependency. `flock` locks belong to the open file, so two opens in one process
//! exclude each other too.

use std::fs::{File, OpenOptions, TryLockError};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use engine::mirror_store::StoreError;

/// Holds the run lock until dropped or given back with
/// [`MirrorStore::unlock`](engine::mirror_store::MirrorStore::unlock).
#[derive(Debug)]
pub struct SqliteLock {
    file: File,
}

impl SqliteLock {
    pub(crate) fn try_acquire(path: &Path) -> Result<Option<SqliteLock>, StoreError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(|e| {
                StoreError::unavailable(format!("cannot open lock file {}: {e}", path.display()))
            })?;
        match file.try_lock() {
            Ok(()) => Ok(Some(SqliteLock { file })),
            Err(TryLockError::WouldBlock) => Ok(None),
            Err(TryLockError::Error(e)) => Err(StoreError::unavailable(format!(
                "cannot lock {}: {e}",
                path.display()
            ))),
        }
    }

    pub(crate) fn release(self) -> Result<(), StoreError> {
        // Closing the file would release it too; unlocking first reports a failure.
        self.file
            .unlock()
            .map_err(|e| StoreError::unavailable(format!("cannot release the run lock: {e}")))
    }
}
