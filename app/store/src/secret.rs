//! The instance secret: signs CSRF tokens, hashes nothing reversible, and (through a
//! derived key) encrypts stored credentials with AES-256-GCM.

use aes_gcm::aead::{Aead, KeyInit};
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
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

const KEY_FILE: &str = "secret.key";
const CIPHER_PREFIX: &str = "v1:";

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
        }
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

    /// Encrypts a credential for storage: `v1:` + base64(nonce ‖ ciphertext).
    pub fn encrypt(&self, plaintext: &str) -> String {
        let cipher = Aes256Gcm::new_from_slice(&self.derive("credentials")).expect("32-byte key");
        let mut nonce = [0u8; 12];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = cipher
            .encrypt(Nonce::from_slice(&nonce), plaintext.as_bytes())
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        format!("{CIPHER_PREFIX}{}", STANDARD.encode(out))
    }

    pub fn decrypt(&self, stored: &str) -> Result<String, StoreError> {
        let bad = || {
            StoreError::Secret("stored credential cannot be decrypted with this secret key".into())
        };
        let raw = stored.strip_prefix(CIPHER_PREFIX).ok_or_else(bad)?;
        let bytes = STANDARD.decode(raw).map_err(|_| bad())?;
        if bytes.len() < 12 {
            return Err(bad());
        }
        let (nonce, sealed) = bytes.split_at(12);
        let cipher = Aes256Gcm::new_from_slice(&self.derive("credentials")).expect("32-byte key");
        let plain = cipher
            .decrypt(Nonce::from_slice(nonce), sealed)
            .map_err(|_| bad())?;
        String::from_utf8(plain).map_err(|_| bad())
    }
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

    #[test]
    fn encryption_round_trips_and_hides_plaintext() {
        let key = SecretKey::from_material(b"0123456789abcdef0123456789abcdef");
        let sealed = key.encrypt("hunter2-password");
        assert!(!sealed.contains("hunter2"));
        assert_ne!(
            sealed,
            key.encrypt("hunter2-password"),
            "nonce must differ per call"
        );
        assert_eq!(key.decrypt(&sealed).unwrap(), "hunter2-password");
        let other = SecretKey::from_material(b"another key another key another!");
        assert!(other.decrypt(&sealed).is_err());
        assert!(key.decrypt("v1:AAAA").is_err());
    }
}
