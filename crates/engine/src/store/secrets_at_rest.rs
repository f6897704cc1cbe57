//! Secrets at rest: the tenants' Odoo API keys and the flows' secrets (webhook secrets,
//! marketplace tokens) are stored sealed with AES-256-GCM, so that the store alone — a copied
//! SQLite file, its WAL, a backup, a PostgreSQL dump — reveals none of them.
//!
//! The key comes from `ODOO_BRIDGE_ENCRYPTION_KEY` (32 bytes in base64 or hex) or, when that
//! is unset, from a key file beside the store, generated on first use with mode 0600 (as n8n
//! does). A sealed value names the key that sealed it (`enc:v1:<key id>:<nonce+ciphertext>`),
//! so a missing or different key is reported as such, never as garbage; the associated data
//! binds each value to its row and field, so a value copied into another row does not open.
//!
//! Values written by a release that stored them in clear are read as they are until
//! [`Reseal::PlaintextOnly`] seals them in place, which every store does when it migrates.

use super::StoreError;
use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha2::{Digest, Sha256};
use std::fmt;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The key that seals the store's secrets (32 bytes, base64 or hex).
pub const KEY_ENV: &str = "ODOO_BRIDGE_ENCRYPTION_KEY";
/// During `secrets rotate-key`: the key to re-encrypt under, when the current one is given by
/// [`KEY_ENV`]. Also accepted for reading, so a process started mid-rotation reads both.
pub const NEW_KEY_ENV: &str = "ODOO_BRIDGE_NEW_ENCRYPTION_KEY";
/// Where the generated key file is, instead of the store's default place.
pub const KEY_FILE_ENV: &str = "ODOO_BRIDGE_ENCRYPTION_KEY_FILE";

const SEALED_PREFIX: &str = "enc:v1:";
const KEY_LEN: usize = 32;
const TAG_LEN: usize = 16;

/// One AES-256-GCM key and its id (the first 4 bytes of a SHA-256 of it, in hex): the id is
/// stored with every value it seals and names the key in errors, and gives nothing away.
pub struct EncryptionKey {
    id: String,
    bytes: Box<[u8; KEY_LEN]>,
    aead: RandomizedNonceKey,
}

impl fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EncryptionKey({})", self.id)
    }
}

impl EncryptionKey {
    /// A new random key.
    pub fn generate() -> Result<EncryptionKey, StoreError> {
        let mut bytes = [0_u8; KEY_LEN];
        aws_lc_rs::rand::fill(&mut bytes)
            .map_err(|_| StoreError::secret_key("the system's random generator failed"))?;
        EncryptionKey::from_bytes(bytes)
    }

    /// From its text: 32 bytes in standard base64 (44 characters) or in hex (64).
    /// `origin` names where the text came from, for the error.
    pub fn parse(text: &str, origin: &str) -> Result<EncryptionKey, StoreError> {
        let text = text.trim();
        let decoded = if text.len() == 2 * KEY_LEN && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode(text).ok()
        } else {
            BASE64.decode(text).ok()
        };
        match decoded.and_then(|bytes| <[u8; KEY_LEN]>::try_from(bytes).ok()) {
            Some(bytes) => EncryptionKey::from_bytes(bytes),
            None => Err(StoreError::secret_key(format!(
                "{origin} is not an encryption key: expected 32 bytes in base64 (44 characters) \
                 or hex (64 characters); `odoo-bridge secrets generate-key` makes one"
            ))),
        }
    }

    fn from_bytes(bytes: [u8; KEY_LEN]) -> Result<EncryptionKey, StoreError> {
        let aead = RandomizedNonceKey::new(&AES_256_GCM, &bytes)
            .map_err(|_| StoreError::secret_key("the encryption key cannot be used"))?;
        let digest = Sha256::new()
            .chain_update(b"odoo-bridge key id\0")
            .chain_update(bytes)
            .finalize();
        Ok(EncryptionKey {
            id: hex::encode(&digest[..4]),
            bytes: Box::new(bytes),
            aead,
        })
    }

    /// The key's id, safe to show.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The key as text (base64), to hand to the user once or to write to its file.
    pub fn expose_text(&self) -> String {
        BASE64.encode(self.bytes.as_slice())
    }

    /// `plain` sealed for the field `context` (e.g. `tenant/<id>/odoo_api_key`).
    pub fn seal(&self, plain: &str, context: &str) -> Result<String, StoreError> {
        let mut in_out = plain.as_bytes().to_vec();
        let nonce = self
            .aead
            .seal_in_place_append_tag(Aad::from(context.as_bytes()), &mut in_out)
            .map_err(|_| StoreError::secret_key("a secret could not be encrypted"))?;
        let mut sealed = nonce.as_ref().to_vec();
        sealed.extend_from_slice(&in_out);
        Ok(format!(
            "{SEALED_PREFIX}{}:{}",
            self.id,
            BASE64.encode(&sealed)
        ))
    }

    fn open(&self, body: &str, context: &str) -> Result<String, StoreError> {
        let damaged = || {
            StoreError::secret_key(format!(
                "the stored secret {context} does not decrypt under key {}: it was damaged or \
                 copied from another row",
                self.id
            ))
        };
        let mut bytes = BASE64.decode(body).map_err(|_| damaged())?;
        if bytes.len() < NONCE_LEN + TAG_LEN {
            return Err(damaged());
        }
        let mut in_out = bytes.split_off(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(&bytes).map_err(|_| damaged())?;
        let plain = self
            .aead
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut in_out)
            .map_err(|_| damaged())?;
        String::from_utf8(plain.to_vec()).map_err(|_| damaged())
    }
}

/// A stored value split into the id of the key that sealed it and its body; `None` for a
/// value stored in clear (by release 0.1).
fn sealed_parts(stored: &str) -> Option<(&str, &str)> {
    stored.strip_prefix(SEALED_PREFIX)?.split_once(':')
}

/// Whether a stored value is sealed (rather than in clear).
pub fn is_sealed(stored: &str) -> bool {
    sealed_parts(stored).is_some()
}

/// Where the keys come from.
#[derive(Clone)]
pub struct KeySource {
    /// [`KEY_ENV`]'s value.
    key_text: Option<String>,
    /// [`NEW_KEY_ENV`]'s value.
    new_key_text: Option<String>,
    /// The generated key's file (used when `key_text` is unset).
    file: PathBuf,
    /// A key given in code (tests, the benchmarks): it alone is used.
    given: Option<Arc<EncryptionKey>>,
}

impl fmt::Debug for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySource")
            .field("key_set", &self.key_text.is_some())
            .field("new_key_set", &self.new_key_text.is_some())
            .field("file", &self.file)
            .finish_non_exhaustive()
    }
}

impl KeySource {
    /// [`KEY_ENV`] and [`NEW_KEY_ENV`] when set (blank counts as unset), else the key file at
    /// [`KEY_FILE_ENV`] or, when that is unset too, at `default_file`.
    pub fn from_environment(default_file: PathBuf) -> KeySource {
        let var = |name: &str| {
            std::env::var(name)
                .ok()
                .filter(|value| !value.trim().is_empty())
        };
        KeySource {
            key_text: var(KEY_ENV),
            new_key_text: var(NEW_KEY_ENV),
            file: var(KEY_FILE_ENV).map_or(default_file, PathBuf::from),
            given: None,
        }
    }

    /// Only the key file at `file` (generated on first use).
    pub fn file(file: PathBuf) -> KeySource {
        KeySource {
            key_text: None,
            new_key_text: None,
            file,
            given: None,
        }
    }

    /// Only `key`.
    pub fn key(key: EncryptionKey) -> KeySource {
        KeySource {
            key_text: None,
            new_key_text: None,
            file: PathBuf::new(),
            given: Some(Arc::new(key)),
        }
    }

    /// The key file that a rotation writes its new key beside.
    fn pending_file(&self) -> PathBuf {
        let mut name = self.file.clone().into_os_string();
        name.push(".new");
        PathBuf::from(name)
    }
}

/// The keys loaded from a [`KeySource`].
#[derive(Debug)]
struct Keys {
    /// What seals new values; `None` until a key file is generated.
    primary: Option<Arc<EncryptionKey>>,
    /// Every key that may open a stored value: the primary, and during a rotation the other.
    all: Vec<Arc<EncryptionKey>>,
}

impl Keys {
    fn by_id(&self, id: &str) -> Option<&Arc<EncryptionKey>> {
        self.all.iter().find(|key| key.id == id)
    }
}

/// Seals and opens the store's secrets; loads its keys on first use, and generates the key
/// file only when a secret is first written. Clones share the loaded keys.
#[derive(Debug, Clone)]
pub struct Keyring {
    source: Arc<KeySource>,
    loaded: Arc<Mutex<Option<Arc<Keys>>>>,
}

/// Which stored secrets [`reseal`](Keyring::reseal) rewrites.
#[derive(Debug, Clone)]
pub enum Reseal {
    /// Values stored in clear (by release 0.1) are sealed under the primary key; sealed ones
    /// stay as they are.
    PlaintextOnly,
    /// Every value not sealed under this key is opened and sealed under it (key rotation).
    AllUnder(Arc<EncryptionKey>),
}

impl Keyring {
    pub fn new(source: KeySource) -> Keyring {
        Keyring {
            source: Arc::new(source),
            loaded: Arc::new(Mutex::new(None)),
        }
    }

    /// Where the primary key comes from, for messages (never the key).
    pub fn origin(&self) -> String {
        if self.source.given.is_some() {
            "the key given in code".to_owned()
        } else if self.source.key_text.is_some() {
            KEY_ENV.to_owned()
        } else {
            format!("the key file {}", self.source.file.display())
        }
    }

    /// Whether the primary key comes from [`KEY_ENV`].
    pub fn key_from_environment(&self) -> bool {
        self.source.given.is_none() && self.source.key_text.is_some()
    }

    /// The generated key's file.
    pub fn key_file(&self) -> &Path {
        &self.source.file
    }

    /// `plain` sealed under the primary key (the key file is generated if there is none).
    pub fn seal(&self, plain: &str, context: &str) -> Result<String, StoreError> {
        self.primary()?.seal(plain, context)
    }

    /// The value of a stored secret: opened when sealed, as it is when stored in clear.
    pub fn open(&self, stored: &str, context: &str) -> Result<String, StoreError> {
        let Some((id, body)) = sealed_parts(stored) else {
            return Ok(stored.to_owned());
        };
        self.key_by_id(id, context)?.open(body, context)
    }

    /// What a stored secret becomes under `how`, or `None` when it stays as it is.
    pub fn reseal(
        &self,
        stored: &str,
        context: &str,
        how: &Reseal,
    ) -> Result<Option<String>, StoreError> {
        match (how, sealed_parts(stored)) {
            (Reseal::PlaintextOnly, Some(_)) => Ok(None),
            (Reseal::PlaintextOnly, None) => self.seal(stored, context).map(Some),
            (Reseal::AllUnder(key), Some((id, _))) if id == key.id => Ok(None),
            (Reseal::AllUnder(key), _) => {
                let plain = self.open(stored, context)?;
                key.seal(&plain, context).map(Some)
            }
        }
    }

    /// The key new values are sealed under, generated into the key file if there is none.
    pub fn primary(&self) -> Result<Arc<EncryptionKey>, StoreError> {
        if let Some(key) = self.keys()?.primary.clone() {
            return Ok(key);
        }
        let mut loaded = self.lock();
        let key = generate_key_file(&self.source.file)?;
        *loaded = None;
        drop(loaded);
        tracing::info!(
            key_file = %self.source.file.display(),
            key_id = key.id(),
            "generated the key that encrypts the store's secrets; back it up with the store, \
             or set ODOO_BRIDGE_ENCRYPTION_KEY"
        );
        Ok(Arc::new(key))
    }

    /// The rotation's new key: [`NEW_KEY_ENV`] when set; otherwise, for a key file, a new
    /// key written beside it (`<file>.new`, which [`finish_rotation`](Self::finish_rotation)
    /// moves into place once every value is sealed under it). A key given by [`KEY_ENV`]
    /// cannot be replaced by this process: the user must give the new one.
    pub fn rotation_key(&self) -> Result<Arc<EncryptionKey>, StoreError> {
        if let Some(text) = &self.source.new_key_text {
            return EncryptionKey::parse(text, NEW_KEY_ENV).map(Arc::new);
        }
        if self.source.given.is_some() || self.source.key_text.is_some() {
            return Err(StoreError::secret_key(format!(
                "the key comes from {KEY_ENV}: set {NEW_KEY_ENV} to the new key (`odoo-bridge \
                 secrets generate-key` makes one), run this again, then give the new key as \
                 {KEY_ENV}"
            )));
        }
        let pending = self.source.pending_file();
        // A new key left by an interrupted rotation may already seal some values: reuse it.
        let key = match read_key_file(&pending)? {
            Some(key) => key,
            None => generate_key_file(&pending)?,
        };
        *self.lock() = None;
        Ok(Arc::new(key))
    }

    /// After a rotation under a key-file key: the new key file replaces the old one.
    pub fn finish_rotation(&self) -> Result<(), StoreError> {
        if self.key_from_environment() || self.source.given.is_some() {
            return Ok(());
        }
        let pending = self.source.pending_file();
        if pending.exists() {
            std::fs::rename(&pending, &self.source.file).map_err(|error| {
                StoreError::secret_key(format!(
                    "cannot move {} to {}: {error}",
                    pending.display(),
                    self.source.file.display()
                ))
            })?;
            sync_parent(&self.source.file);
        }
        *self.lock() = None;
        Ok(())
    }

    fn key_by_id(&self, id: &str, context: &str) -> Result<Arc<EncryptionKey>, StoreError> {
        if let Some(key) = self.keys()?.by_id(id) {
            return Ok(key.clone());
        }
        // Another process may have generated or rotated the key file since we read it.
        *self.lock() = None;
        let keys = self.keys()?;
        if let Some(key) = keys.by_id(id) {
            return Ok(key.clone());
        }
        let what = match &keys.primary {
            Some(primary) => format!(
                "the stored secret {context} was encrypted with key {id}, but {} holds key {}: \
                 set {KEY_ENV} to the key the store was encrypted with",
                self.origin(),
                primary.id
            ),
            None => format!(
                "the stored secret {context} was encrypted with key {id}, and no key was found \
                 ({KEY_ENV} is unset and {} does not exist): set {KEY_ENV} to that key, or \
                 put its key file back",
                self.source.file.display()
            ),
        };
        Err(StoreError::secret_key(what))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Arc<Keys>>> {
        // A panic elsewhere while holding the lock leaves nothing half-done: the cache is
        // either filled or not.
        self.loaded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn keys(&self) -> Result<Arc<Keys>, StoreError> {
        let mut loaded = self.lock();
        if let Some(keys) = loaded.as_ref() {
            return Ok(keys.clone());
        }
        let keys = Arc::new(self.load()?);
        *loaded = Some(keys.clone());
        Ok(keys)
    }

    fn load(&self) -> Result<Keys, StoreError> {
        let source = &self.source;
        if let Some(key) = &source.given {
            return Ok(Keys {
                primary: Some(key.clone()),
                all: vec![key.clone()],
            });
        }
        // A key given by the variable is the only one: a key file left from before would
        // otherwise keep opening values the user meant to lock with another key.
        let mut all = Vec::new();
        let primary = match &source.key_text {
            Some(text) => Some(Arc::new(EncryptionKey::parse(text, KEY_ENV)?)),
            None => {
                let from_file = read_key_file(&source.file)?.map(Arc::new);
                all.extend(read_key_file(&source.pending_file())?.map(Arc::new));
                from_file
            }
        };
        all.extend(primary.clone());
        if let Some(text) = &source.new_key_text {
            all.push(Arc::new(EncryptionKey::parse(text, NEW_KEY_ENV)?));
        }
        Ok(Keys { primary, all })
    }
}

fn read_key_file(path: &Path) -> Result<Option<EncryptionKey>, StoreError> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            EncryptionKey::parse(&text, &format!("the key file {}", path.display())).map(Some)
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(StoreError::secret_key(format!(
            "cannot read the key file {}: {error}",
            path.display()
        ))),
    }
}

/// A new key in a new file at `path` (mode 0600). Written to a temporary file first and
/// linked into place, so that no reader sees a half-written key; if another process linked
/// its key first, that key is used.
fn generate_key_file(path: &Path) -> Result<EncryptionKey, StoreError> {
    let failed = |what: &str, error: std::io::Error| {
        StoreError::secret_key(format!(
            "cannot write the key file {} ({what}: {error}); set {KEY_ENV} instead",
            path.display()
        ))
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .create(parent)
            .map_err(|e| failed("its directory", e))?;
    }
    let key = EncryptionKey::generate()?;
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(format!(".{}.tmp", std::process::id()));
    let temporary = PathBuf::from(temporary);
    let written = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temporary)?;
        file.write_all(format!("{}\n", key.expose_text()).as_bytes())?;
        file.sync_all()
    })();
    if let Err(error) = written {
        let _ = std::fs::remove_file(&temporary);
        return Err(failed("writing", error));
    }
    let linked = std::fs::hard_link(&temporary, path);
    let _ = std::fs::remove_file(&temporary);
    match linked {
        Ok(()) => {
            sync_parent(path);
            Ok(key)
        }
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => read_key_file(path)?
            .ok_or_else(|| failed("reading", std::io::Error::other("it vanished"))),
        Err(error) => Err(failed("linking", error)),
    }
}

/// Makes a new directory entry durable; a failure only weakens durability, so it is ignored.
fn sync_parent(path: &Path) {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
        && let Ok(directory) = std::fs::File::open(parent)
    {
        let _ = directory.sync_all();
    }
}

/// The associated data of a tenant's Odoo API key.
pub fn api_key_context(tenant_id: &str) -> String {
    format!("tenant/{tenant_id}/odoo_api_key")
}

/// The associated data of one of a flow's secrets.
pub fn flow_secret_context(flow_id: &str, name: &str) -> String {
    format!("flow/{flow_id}/secrets/{name}")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn keyring_in(dir: &Path) -> Keyring {
        Keyring::new(KeySource::file(dir.join("store.db.key")))
    }

    #[test]
    fn a_sealed_value_opens_only_for_its_own_field_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let keyring = keyring_in(dir.path());
        let sealed = keyring
            .seal("s3cret-api-key", "tenant/a/odoo_api_key")
            .unwrap();
        assert!(is_sealed(&sealed));
        assert!(!sealed.contains("s3cret"));
        assert_eq!(
            keyring.open(&sealed, "tenant/a/odoo_api_key").unwrap(),
            "s3cret-api-key"
        );
        let elsewhere = keyring.open(&sealed, "tenant/b/odoo_api_key").unwrap_err();
        assert!(
            elsewhere.to_string().contains("damaged or copied"),
            "{elsewhere}"
        );
        // Two seals of one value differ (a fresh nonce each time).
        assert_ne!(
            sealed,
            keyring
                .seal("s3cret-api-key", "tenant/a/odoo_api_key")
                .unwrap()
        );
    }

    #[test]
    fn the_key_file_is_generated_once_with_mode_0600_and_reused() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let keyring = keyring_in(dir.path());
        assert!(
            !dir.path().join("store.db.key").exists(),
            "not before a secret is written"
        );
        assert_eq!(keyring.open("in clear", "x").unwrap(), "in clear");
        assert!(
            !dir.path().join("store.db.key").exists(),
            "reading clear values needs no key"
        );
        let sealed = keyring.seal("v", "x").unwrap();
        let mode = std::fs::metadata(dir.path().join("store.db.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let other_process = keyring_in(dir.path());
        assert_eq!(other_process.open(&sealed, "x").unwrap(), "v");
        assert_eq!(
            other_process.primary().unwrap().id(),
            keyring.primary().unwrap().id()
        );
    }

    #[test]
    fn a_missing_or_different_key_is_named_never_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let sealed = keyring_in(dir.path()).seal("v", "x").unwrap();
        let id = sealed_parts(&sealed).unwrap().0.to_owned();

        let elsewhere = tempfile::tempdir().unwrap();
        let missing = keyring_in(elsewhere.path()).open(&sealed, "x").unwrap_err();
        let text = missing.to_string();
        assert!(
            text.contains(&id) && text.contains(KEY_ENV) && text.contains("no key"),
            "{text}"
        );

        let other = EncryptionKey::generate().unwrap();
        let other_id = other.id().to_owned();
        let wrong = Keyring::new(KeySource::key(other))
            .open(&sealed, "x")
            .unwrap_err();
        let text = wrong.to_string();
        assert!(text.contains(&id) && text.contains(&other_id), "{text}");
        assert!(matches!(wrong, StoreError::SecretKey { .. }));
    }

    #[test]
    fn keys_parse_from_base64_or_hex_and_bad_text_says_how_to_make_one() {
        let key = EncryptionKey::generate().unwrap();
        let text = key.expose_text();
        assert_eq!(EncryptionKey::parse(&text, "k").unwrap().id(), key.id());
        let hex_text = hex::encode(BASE64.decode(&text).unwrap());
        assert_eq!(EncryptionKey::parse(&hex_text, "k").unwrap().id(), key.id());
        let bad = EncryptionKey::parse("too-short", KEY_ENV)
            .unwrap_err()
            .to_string();
        assert!(
            bad.contains(KEY_ENV) && bad.contains("generate-key"),
            "{bad}"
        );
        assert!(!format!("{key:?}").contains(&text));
    }

    #[test]
    fn a_rotation_reseals_under_the_new_key_and_an_interrupted_one_still_reads() {
        let dir = tempfile::tempdir().unwrap();
        let keyring = keyring_in(dir.path());
        let old = keyring.seal("v", "x").unwrap();
        let new_key = keyring.rotation_key().unwrap();
        let resealed = keyring
            .reseal(&old, "x", &Reseal::AllUnder(new_key.clone()))
            .unwrap()
            .unwrap();
        // Interrupted here: both files exist, and both values open in a fresh process.
        let fresh = keyring_in(dir.path());
        assert_eq!(fresh.open(&old, "x").unwrap(), "v");
        assert_eq!(fresh.open(&resealed, "x").unwrap(), "v");
        assert_eq!(
            keyring
                .reseal(&resealed, "x", &Reseal::AllUnder(new_key.clone()))
                .unwrap(),
            None
        );
        keyring.finish_rotation().unwrap();
        let after = keyring_in(dir.path());
        assert_eq!(after.primary().unwrap().id(), new_key.id());
        assert_eq!(after.open(&resealed, "x").unwrap(), "v");
        assert!(after.open(&old, "x").is_err(), "the old key is gone");
    }

    #[test]
    fn only_clear_values_are_sealed_by_plaintext_only() {
        let dir = tempfile::tempdir().unwrap();
        let keyring = keyring_in(dir.path());
        let sealed = keyring
            .reseal("clear", "x", &Reseal::PlaintextOnly)
            .unwrap()
            .unwrap();
        assert_eq!(keyring.open(&sealed, "x").unwrap(), "clear");
        assert_eq!(
            keyring
                .reseal(&sealed, "x", &Reseal::PlaintextOnly)
                .unwrap(),
            None
        );
    }
}
