//! Sluice's control-plane store on diesel-async: embedded SQLite by default, PostgreSQL
//! when configured. Every tenant-owned read and write takes the tenant id, so another
//! tenant's object is simply "not found".
//!
//! Two rules keep concurrent callers from blocking each other for good:
//! - a task holds at most one connection at a time ([`db`]'s `one_per_task`);
//! - a transaction that writes several of runs, commands and connectors locks them
//!   in that order, children first (deletes remove runs before their command), so
//!   two transactions never wait on each other's rows on PostgreSQL.

pub mod accounts;
pub mod api_keys;
pub mod audit;
pub mod commands;
pub mod connectors;
pub mod db;
pub mod domain;
mod error;
pub mod history;
pub mod ids;
pub mod inboxes;
pub mod integrations;
pub mod invitations;
pub mod leases;
mod maintenance;
pub mod outbox;
pub mod password;
pub mod quotas;
pub mod runs;
pub mod schema;
pub mod secret;
pub mod sessions;
pub mod throttle;

pub use db::{Access, Conn, DatabaseLocation, DbPool};
pub use error::StoreError;
pub use secret::SecretKey;

use chrono::{NaiveDateTime, Timelike, Utc};

/// Handle to the control plane, cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: DbPool,
    location: DatabaseLocation,
    secret: SecretKey,
    run_lease: chrono::Duration,
    inbox_limits: inboxes::InboxLimits,
    quotas: quotas::TenantQuotas,
    outbox_signals: outbox::OutboxSignals,
}

impl Store {
    /// Connects (creating an embedded database file if needed) and applies migrations.
    pub async fn open(
        location: DatabaseLocation,
        secret: SecretKey,
        max_connections: usize,
    ) -> Result<Self, StoreError> {
        let pool = DbPool::connect(&location, max_connections).await?;
        let ran = pool.migrate().await?;
        if ran > 0 {
            tracing::info!(
                backend = location.backend_name(),
                migrations = ran,
                "applied control-plane migrations"
            );
        }
        let store = Self {
            pool,
            location,
            secret,
            run_lease: commands::DEFAULT_RUN_LEASE,
            inbox_limits: inboxes::InboxLimits::default(),
            quotas: quotas::TenantQuotas::default(),
            outbox_signals: Default::default(),
        };
        let sealed = store.reseal_secrets().await?;
        if sealed.resealed > 0 {
            tracing::info!(
                connectors = sealed.resealed,
                "re-sealed connector secrets with the current key"
            );
        }
        if sealed.unreadable > 0 {
            tracing::warn!(
                connectors = sealed.unreadable,
                "connector secrets sealed with an unknown key: add it to SLUICE_PREVIOUS_SECRET_KEYS"
            );
        }
        Ok(store)
    }

    /// How long a claimed command or run may go without a sign of life before it
    /// is handed to another worker.
    pub fn with_run_lease(mut self, lease: chrono::Duration) -> Self {
        self.run_lease = lease;
        self
    }

    pub fn run_lease(&self) -> chrono::Duration {
        self.run_lease
    }

    /// What every inbox accepts and keeps (see [`inboxes::InboxLimits`]).
    pub fn with_inbox_limits(mut self, limits: inboxes::InboxLimits) -> Self {
        self.inbox_limits = limits;
        self
    }

    pub fn inbox_limits(&self) -> &inboxes::InboxLimits {
        &self.inbox_limits
    }

    /// What one tenant may hold or run at once (see [`quotas::TenantQuotas`]).
    pub fn with_quotas(mut self, quotas: quotas::TenantQuotas) -> Self {
        self.quotas = quotas;
        self
    }

    pub fn quotas(&self) -> &quotas::TenantQuotas {
        &self.quotas
    }

    /// How long a caller waits for a store connection before getting
    /// [`StoreError::Unavailable`] (default [`db::DEFAULT_ACQUIRE_TIMEOUT`]).
    pub fn with_acquire_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.pool = self.pool.with_acquire_timeout(timeout);
        self
    }

    /// A connection for reading. Hold it only for this function's queries: never
    /// call another `Store` method that acquires while holding it (pass `&mut Conn`
    /// to a composable helper instead).
    #[track_caller]
    pub(crate) fn read(
        &self,
    ) -> impl std::future::Future<Output = Result<Conn, StoreError>> + Send + '_ {
        self.pool.get(Access::Read)
    }

    /// A connection for writing (on SQLite, the single writer): keep its use short.
    #[track_caller]
    pub(crate) fn write(
        &self,
    ) -> impl std::future::Future<Output = Result<Conn, StoreError>> + Send + '_ {
        self.pool.get(Access::Write)
    }

    pub fn location(&self) -> &DatabaseLocation {
        &self.location
    }

    pub fn secret(&self) -> &SecretKey {
        &self.secret
    }

    /// The key a tenant's callbacks and webhooks are signed with (Standard Webhooks).
    pub fn callback_signing_key(&self, tenant: &ids::TenantId) -> Vec<u8> {
        self.secret
            .sign_bytes("callback-signing", tenant.as_str())
            .to_vec()
    }

    /// The same key as receivers configure it: `whsec_` + base64.
    pub fn callback_signing_secret(&self, tenant: &ids::TenantId) -> String {
        use base64::Engine;
        format!(
            "whsec_{}",
            base64::engine::general_purpose::STANDARD.encode(self.callback_signing_key(tenant))
        )
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        self.pool.ping().await
    }
}

/// The current UTC time at the precision both backends store (microseconds).
pub fn now() -> NaiveDateTime {
    let t = Utc::now().naive_utc();
    t.with_nanosecond(t.nanosecond() / 1_000 * 1_000)
        .unwrap_or(t)
}
