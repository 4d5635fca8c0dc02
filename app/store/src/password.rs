//! Password hashing with argon2id (the crate's defaults: m=19 MiB, t=2, p=1), run on
//! the blocking pool so a login never stalls the async workers.

use argon2::Argon2;
use argon2::password_hash::{
    PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng,
};

use crate::StoreError;

pub async fn hash_password(password: &str) -> Result<String, StoreError> {
    let password = password.to_string();
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| StoreError::Secret(format!("password hashing failed: {e}")))
    })
    .await
    .map_err(|e| StoreError::Secret(format!("password hashing task failed: {e}")))?
}

pub async fn verify_password(stored_hash: &str, password: &str) -> bool {
    let (stored_hash, password) = (stored_hash.to_string(), password.to_string());
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&stored_hash)
            .map(|parsed| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}

/// A hash that verifies no password, used to spend the same time on unknown emails.
pub async fn burn_verification_time(password: &str) {
    const DUMMY: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2x1aWNlc2x1aWNlc2x1aQ$tnqnuhaDO4kkN7O0mbQ2N0IiLA8QdpJGJH5xa3btKPU";
    let _ = verify_password(DUMMY, password).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_are_argon2id_and_verify() {
        let hash = hash_password("correct horse battery").await.unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password(&hash, "correct horse battery").await);
        assert!(!verify_password(&hash, "wrong").await);
        assert!(!verify_password("garbage", "wrong").await);
    }
}
