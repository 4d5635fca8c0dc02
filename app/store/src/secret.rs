//! The instance secret: signs CSRF tokens, hashes nothing reversible, and (through a
//! derived key) encrypts stored credentials with AES-256-GCM.
//!
//! Sealed values name the key that sealed them (`v2:<key id>:…`) and are bound to
//! what they belong to (AEAD associated data: purpose and owner, e.g. a tenant's
//! connector), so a ciphertext copied to another row, tenant or use does not open.
//! Previous keys (`SLUICE_PREVIOUS_SECRET_KEYS`) still open values sealed with
//! them until `sluice admin rotate-key` (also run on start) re-seals everything.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::path::Path;

use crate::StoreError;

type HmacSha256 = Hmac<Sha256>;

#[derive(Clone)]
pub struct SecretKey {
    master: [u8; 32],
    /// Keys that sealed values may still be under, until they are re-sealed.
    previous: Vec<[u8; 32]>,
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

const KEY_FILE: &str = "secret.key";
/// Unbound values, sealed before key ids and associated data existed.
const LEGACY_PREFIX: &str = "v1:";
const SEALED_PREFIX: &str = "v2:";
const NONCE_LEN: usize = 12;

impl SecretKey {
    /// Uses `configured` (`SLUICE_SECRET_KEY`) when given; otherwise reads
    /// `data_dir/secret.key`, generating it (mode 0600) on first start.
    pub fn load_or_generate(configured: Option<&str>, data_dir: &Path) -> Result<Self, StoreError> {
        if let Some(raw) = configured.map(str::trim).filter(|s| !s.is_empty()) {
            if raw.len() < 32 {
                return Err(StoreError::Secret(
                    "SLUICE_SECRET_KEY must be at least 32 characters".into(),
                ));
            }
            return Ok(Self::from_material(raw.as_bytes()));
        }
        let path = data_dir.join(KEY_FILE);
        match std::fs::read_to_string(&path) {
            Ok(existing) => {
                let material = existing.trim();
                if material.len() < 32 {
                    return Err(StoreError::Secret(format!(
                        "{} is shorter than 32 characters",
                        path.display()
                    )));
                }
                Ok(Self::from_material(material.as_bytes()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(data_dir).map_err(|e| {
                    StoreError::Secret(format!("cannot create {}: {e}", data_dir.display()))
                })?;
                let mut bytes = [0u8; 32];
                rand::rng().fill_bytes(&mut bytes);
                let material = hex::encode(bytes);
                write_private(&path, &material)?;
                tracing::info!(path = %path.display(), "generated a new secret key");
                Ok(Self::from_material(material.as_bytes()))
            }
            Err(e) => Err(StoreError::Secret(format!(
                "cannot read {}: {e}",
                path.display()
            ))),
        }
    }

    pub fn from_material(material: &[u8]) -> Self {
        Self {
            master: Sha256::digest(material).into(),
            previous: Vec::new(),
        }
    }

    /// Adds keys that values may still be sealed under (comma-separated, each at
    /// least 32 characters), e.g. the key in use before a rotation.
    pub fn with_previous(mut self, materials: &str) -> Result<Self, StoreError> {
        for material in materials
            .split(',')
            .map(str::trim)
            .filter(|m| !m.is_empty())
        {
            if material.len() < 32 {
                return Err(StoreError::Secret(
                    "SLUICE_PREVIOUS_SECRET_KEYS: every key must be at least 32 characters".into(),
                ));
            }
            self.previous
                .push(Sha256::digest(material.as_bytes()).into());
        }
        Ok(self)
    }

    /// A short public name of the current key, written beside what it seals.
    pub fn key_id(&self) -> String {
        key_id(&self.master)
    }

    /// A key for one purpose, so no two uses of the secret share key material.
    fn derive(&self, purpose: &str) -> [u8; 32] {
        let mut mac = keyed_mac(&self.master);
        mac.update(purpose.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// An HMAC-SHA256 tag of `message` under the key for `purpose`, URL-safe base64.
    pub fn sign(&self, purpose: &str, message: &str) -> String {
        URL_SAFE_NO_PAD.encode(self.sign_bytes(purpose, message))
    }

    /// The raw HMAC-SHA256 tag, e.g. to serve as a derived key.
    pub fn sign_bytes(&self, purpose: &str, message: &str) -> [u8; 32] {
        let mut mac = keyed_mac(&self.derive(purpose));
        mac.update(message.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// Constant-time check of a tag made by [`SecretKey::sign`].
    pub fn verify(&self, purpose: &str, message: &str, tag: &str) -> bool {
        let Ok(tag) = URL_SAFE_NO_PAD.decode(tag) else {
            return false;
        };
        let mut mac = keyed_mac(&self.derive(purpose));
        mac.update(message.as_bytes());
        mac.verify_slice(&tag).is_ok()
    }

    /// Encrypts `plaintext` for `purpose`, bound to `owner` (e.g. `tenant/connector`):
    /// `v2:<key id>:` + base64(nonce ‖ ciphertext).
    pub fn seal(&self, purpose: &str, owner: &str, plaintext: &str) -> String {
        let cipher = cipher_for(&self.master, purpose);
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: &associated_data(purpose, owner),
                },
            )
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        format!("{SEALED_PREFIX}{}:{}", self.key_id(), STANDARD.encode(out))
    }

    /// Opens a value sealed by [`SecretKey::seal`] for the same purpose and owner,
    /// with the current key or a previous one.
    pub fn open(&self, purpose: &str, owner: &str, stored: &str) -> Result<String, StoreError> {
        let unreadable =
            || StoreError::Secret(format!("a sealed {purpose} value cannot be opened here"));
        let rest = stored.strip_prefix(SEALED_PREFIX).ok_or_else(unreadable)?;
        let (kid, encoded) = rest.split_once(':').ok_or_else(unreadable)?;
        let master = self
            .keys()
            .find(|k| key_id(k) == kid)
            .ok_or_else(|| StoreError::Secret(format!("sealed with key {kid}, which this instance does not have (SLUICE_PREVIOUS_SECRET_KEYS)")))?;
        let bytes = STANDARD.decode(encoded).map_err(|_| unreadable())?;
        if bytes.len() < NONCE_LEN {
            return Err(unreadable());
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let plain = cipher_for(master, purpose)
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: &associated_data(purpose, owner),
                },
            )
            .map_err(|_| unreadable())?;
        String::from_utf8(plain).map_err(|_| unreadable())
    }

    /// Whether `stored` is sealed with the current key (else it needs re-sealing).
    pub fn is_current(&self, stored: &str) -> bool {
        stored
            .strip_prefix(SEALED_PREFIX)
            .and_then(|rest| rest.split_once(':'))
            .is_some_and(|(kid, _)| kid == self.key_id())
    }

    /// Opens a legacy (`v1:`, unbound) credential, only to re-seal it bound.
    pub(crate) fn open_legacy(&self, stored: &str) -> Result<String, StoreError> {
        let unreadable =
            || StoreError::Secret("a legacy sealed value cannot be opened here".into());
        let encoded = stored.strip_prefix(LEGACY_PREFIX).ok_or_else(unreadable)?;
        let bytes = STANDARD.decode(encoded).map_err(|_| unreadable())?;
        if bytes.len() < NONCE_LEN {
            return Err(unreadable());
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        self.keys()
            .find_map(|master| {
                cipher_for(master, "credentials")
                    .decrypt(Nonce::from_slice(nonce), sealed)
                    .ok()
            })
            .and_then(|plain| String::from_utf8(plain).ok())
            .ok_or_else(unreadable)
    }

    fn keys(&self) -> impl Iterator<Item = &[u8; 32]> {
        std::iter::once(&self.master).chain(&self.previous)
    }
}

fn key_id(master: &[u8; 32]) -> String {
    let mut mac = keyed_mac(master);
    mac.update(b"key-id");
    hex::encode(&mac.finalize().into_bytes()[..4])
}

fn cipher_for(master: &[u8; 32], purpose: &str) -> Aes256Gcm {
    let mut mac = keyed_mac(master);
    mac.update(purpose.as_bytes());
    let key: [u8; 32] = mac.finalize().into_bytes().into();
    Aes256Gcm::new_from_slice(&key).expect("32-byte key")
}

fn associated_data(purpose: &str, owner: &str) -> Vec<u8> {
    format!("sluice/{purpose}/{owner}").into_bytes()
}

fn keyed_mac(key: &[u8]) -> HmacSha256 {
    <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC accepts keys of any length")
}

fn write_private(path: &Path, contents: &str) -> Result<(), StoreError> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .map_err(|e| StoreError::Secret(format!("cannot create {}: {e}", path.display())))?;
    file.write_all(contents.as_bytes())
        .map_err(|e| StoreError::Secret(format!("cannot write {}: {e}", path.display())))
}

/// A new random bearer token (`prefix_` + 32 random bytes, URL-safe).
pub fn random_token(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{prefix}_{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// How bearer tokens are stored: SHA-256, hex. Tokens carry 256 random bits, so a
/// fast hash is enough (unlike passwords).
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_key_file_is_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let a = SecretKey::load_or_generate(None, dir.path()).unwrap();
        let b = SecretKey::load_or_generate(None, dir.path()).unwrap();
        assert_eq!(a.sign("p", "m"), b.sign("p", "m"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn short_configured_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = SecretKey::load_or_generate(Some("short"), dir.path()).unwrap_err();
        assert!(err.to_string().contains("SLUICE_SECRET_KEY"));
    }

    #[test]
    fn signatures_depend_on_purpose_and_message() {
        let key = SecretKey::from_material(b"0123456789abcdef0123456789abcdef");
        let tag = key.sign("csrf", "session-1");
        assert!(key.verify("csrf", "session-1", &tag));
        assert!(!key.verify("csrf", "session-2", &tag));
        assert!(!key.verify("other", "session-1", &tag));
        assert!(!key.verify("csrf", "session-1", "not base64!"));
    }

    const MATERIAL: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn sealing_round_trips_and_hides_plaintext() {
        let key = SecretKey::from_material(MATERIAL);
        let sealed = key.seal("credentials", "t1/c1", "hunter2-password");
        assert!(!sealed.contains("hunter2"));
        assert_ne!(
            sealed,
            key.seal("credentials", "t1/c1", "hunter2-password"),
            "nonce must differ per call"
        );
        assert_eq!(
            key.open("credentials", "t1/c1", &sealed).unwrap(),
            "hunter2-password"
        );
        let other = SecretKey::from_material(b"another key another key another!");
        assert!(other.open("credentials", "t1/c1", &sealed).is_err());
        assert!(key.open("credentials", "t1/c1", "v2:AAAA").is_err());
    }

    #[test]
    fn a_sealed_value_opens_only_for_its_owner_and_purpose() {
        let key = SecretKey::from_material(MATERIAL);
        let sealed = key.seal("credentials", "t1/c1", "pw");
        assert!(
            key.open("credentials", "t1/c2", &sealed).is_err(),
            "another connector"
        );
        assert!(
            key.open("credentials", "t2/c1", &sealed).is_err(),
            "another tenant"
        );
        assert!(
            key.open("connector-form", "t1/c1", &sealed).is_err(),
            "another use"
        );
    }

    #[test]
    fn previous_keys_open_old_values_until_they_are_resealed() {
        let old = SecretKey::from_material(MATERIAL);
        let sealed = old.seal("credentials", "t/c", "pw");
        let new = SecretKey::from_material(b"the replacement key, 32 chars ++")
            .with_previous(std::str::from_utf8(MATERIAL).unwrap())
            .unwrap();
        assert!(!new.is_current(&sealed));
        assert_eq!(new.open("credentials", "t/c", &sealed).unwrap(), "pw");
        let resealed = new.seal("credentials", "t/c", "pw");
        assert!(new.is_current(&resealed));
        assert!(old.open("credentials", "t/c", &resealed).is_err());
    }
}
