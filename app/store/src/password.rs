//! Password hashing with argon2id (the crate's defaults: m=19 MiB, t=2, p=1), run on
//! the blocking pool so a login never stalls the async workers. At most
//! [`MAX_CONCURRENT_HASHES`] run at once: each takes 19 MiB, so a flood of sign-ins
//! waits in line instead of exhausting memory. [`hash_load`] shows the line and
//! the work in progress (exported as Prometheus gauges).

use argon2::Argon2;
use argon2::password_hash::{
    PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng,
};

use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::Semaphore;

use crate::StoreError;

pub const MAX_CONCURRENT_HASHES: usize = 4;

static HASH_SLOTS: Semaphore = Semaphore::const_new(MAX_CONCURRENT_HASHES);

static RUNNING: AtomicUsize = AtomicUsize::new(0);
static WAITING: AtomicUsize = AtomicUsize::new(0);
static PEAK_RUNNING: AtomicUsize = AtomicUsize::new(0);

/// Argon2 computations of this process right now, and the most ever run at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashLoad {
    pub running: usize,
    pub waiting: usize,
    pub peak_running: usize,
}

pub fn hash_load() -> HashLoad {
    HashLoad {
        running: RUNNING.load(Ordering::SeqCst),
        waiting: WAITING.load(Ordering::SeqCst),
        peak_running: PEAK_RUNNING.load(Ordering::SeqCst),
    }
}

/// Counts one computation in a gauge while alive (also when its future is dropped).
struct Counted(&'static AtomicUsize);

impl Counted {
    fn waiting() -> Self {
        WAITING.fetch_add(1, Ordering::SeqCst);
        Counted(&WAITING)
    }

    fn running() -> Self {
        let now = RUNNING.fetch_add(1, Ordering::SeqCst) + 1;
        PEAK_RUNNING.fetch_max(now, Ordering::SeqCst);
        Counted(&RUNNING)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Runs one argon2 computation on the blocking pool once a slot is free. The slot
/// goes with the computation, not the caller: a caller that goes away (a client
/// disconnecting mid sign-in) cannot free its slot while argon2 still runs.
async fn in_hash_slot<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, tokio::task::JoinError> {
    let waiting = Counted::waiting();
    let slot = HASH_SLOTS
        .acquire()
        .await
        .expect("the hash semaphore is never closed");
    drop(waiting);
    tokio::task::spawn_blocking(move || {
        let _slot = slot;
        let _running = Counted::running();
        work()
    })
    .await
}

pub async fn hash_password(password: &str) -> Result<String, StoreError> {
    let password = password.to_string();
    in_hash_slot(move || {
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
    in_hash_slot(move || {
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_flood_of_verifications_runs_at_most_the_cap_at_once() {
        let hash = hash_password("flood").await.unwrap();
        let checks = (0..24).map(|_| {
            let hash = hash.clone();
            tokio::spawn(async move { verify_password(&hash, "wrong").await })
        });
        for check in join_all(checks).await {
            assert!(!check);
        }
        let peak = hash_load().peak_running;
        assert!(
            (1..=MAX_CONCURRENT_HASHES).contains(&peak),
            "{peak} hashes ran at once"
        );
    }

    /// Callers that go away (a client disconnecting) leave their argon2 running;
    /// their slots stay taken until it ends, so new callers still wait their turn.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn abandoned_verifications_keep_their_slots() {
        let hash = hash_password("abandoned").await.unwrap();
        let spawn_checks = |n: usize| {
            (0..n)
                .map(|_| {
                    let hash = hash.clone();
                    tokio::spawn(async move { verify_password(&hash, "wrong").await })
                })
                .collect::<Vec<_>>()
        };
        let abandoned = spawn_checks(2 * MAX_CONCURRENT_HASHES);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while hash_load().running < MAX_CONCURRENT_HASHES {
            assert!(
                std::time::Instant::now() < deadline,
                "the slots never filled"
            );
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        for task in &abandoned {
            task.abort();
        }
        for check in join_all(spawn_checks(2 * MAX_CONCURRENT_HASHES).into_iter()).await {
            assert!(!check);
        }
        let peak = hash_load().peak_running;
        assert!(peak <= MAX_CONCURRENT_HASHES, "{peak} hashes ran at once");
    }

    async fn join_all(tasks: impl Iterator<Item = tokio::task::JoinHandle<bool>>) -> Vec<bool> {
        let mut results = Vec::new();
        for task in tasks.collect::<Vec<_>>() {
            results.push(task.await.unwrap());
        }
        results
    }

    #[tokio::test]
    async fn hashes_are_argon2id_and_verify() {
        let hash = hash_password("correct horse battery").await.unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password(&hash, "correct horse battery").await);
        assert!(!verify_password(&hash, "wrong").await);
        assert!(!verify_password("garbage", "wrong").await);
    }
}
