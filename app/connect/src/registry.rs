//! One bounded connection pool per connector, shared by the web handlers and the
//! job workers. A pool is keyed by connector id and replaced when the connector's
//! stored version changes (an edit), so no request uses stale credentials, and
//! closed when nobody used it for a while ([`Registry::evict_idle`]), so a
//! process does not keep connections open to every database it ever touched.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

use crate::address::{AddressPolicy, vet};
use crate::{ConnectError, ConnectionParams, Database, Limits};

/// A connector's open pool: the connector version it was opened for, and when
/// it was last handed out.
struct Cached {
    version: i64,
    database: Arc<Database>,
    last_used: Instant,
}

/// A connector's slot: locked while its pool is being opened, so a slow or
/// unreachable database delays only the callers that need it.
type Slot = Arc<Mutex<Option<Cached>>>;

#[derive(Clone, Default)]
pub struct Registry {
    slots: Arc<std::sync::Mutex<HashMap<String, Slot>>>,
    limits: Arc<Limits>,
    /// `None`: every address may be reached (library use and its tests).
    addresses: Option<AddressPolicy>,
}

impl Registry {
    pub fn new(limits: Limits) -> Self {
        Self {
            slots: Arc::default(),
            limits: Arc::new(limits),
            addresses: None,
        }
    }

    /// Every pool is opened only after the server's addresses pass `policy`.
    pub fn with_address_policy(mut self, policy: AddressPolicy) -> Self {
        self.addresses = Some(policy);
        self
    }

    fn slot(&self, connector_id: &str) -> Slot {
        let mut slots = self
            .slots
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        slots.entry(connector_id.to_string()).or_default().clone()
    }

    /// The pool for `connector_id` at `version`, opening it (with `params`) when
    /// there is none or the cached one belongs to an older version.
    pub async fn database(
        &self,
        connector_id: &str,
        version: i64,
        params: impl FnOnce() -> Result<ConnectionParams, ConnectError>,
    ) -> Result<Arc<Database>, ConnectError> {
        let slot = self.slot(connector_id);
        let mut current = slot.lock().await;
        if let Some(cached) = current.as_mut()
            && cached.version == version
        {
            cached.last_used = Instant::now();
            return Ok(cached.database.clone());
        }
        let mut params = params()?;
        if let Some(policy) = &self.addresses {
            params = vet(&params, policy).await?;
        }
        let database = Arc::new(Database::connect(&params, &self.limits).await?);
        let fresh = Cached {
            version,
            database: database.clone(),
            last_used: Instant::now(),
        };
        if let Some(stale) = current.replace(fresh) {
            stale.database.close().await;
        }
        Ok(database)
    }

    /// Closes and forgets a connector's pool (after it was deleted).
    pub async fn forget(&self, connector_id: &str) {
        let slot = {
            let mut slots = self
                .slots
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            slots.remove(connector_id)
        };
        if let Some(slot) = slot
            && let Some(cached) = slot.lock().await.take()
        {
            cached.database.close().await;
        }
    }

    /// Closes the pools nobody asked for in `idle` and nobody is using now;
    /// returns how many. A later request opens its pool again.
    pub async fn evict_idle(&self, idle: Duration) -> usize {
        let slots: Vec<(String, Slot)> = {
            let slots = self
                .slots
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            slots
                .iter()
                .map(|(id, slot)| (id.clone(), slot.clone()))
                .collect()
        };
        let mut evicted = 0;
        for (id, slot) in slots {
            // A slot being opened or used right now is not idle.
            let Ok(mut current) = slot.try_lock() else {
                continue;
            };
            let unused = current.as_ref().is_some_and(|cached| {
                cached.last_used.elapsed() >= idle && Arc::strong_count(&cached.database) == 1
            });
            if !unused {
                continue;
            }
            if let Some(cached) = current.take() {
                cached.database.close().await;
                evicted += 1;
            }
            drop(current);
            let mut slots = self
                .slots
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if slots.get(&id).is_some_and(|kept| Arc::ptr_eq(kept, &slot)) {
                slots.remove(&id);
            }
        }
        evicted
    }

    /// Every `every`, closes the pools idle for `idle` (see [`Registry::evict_idle`])
    /// until the registry is dropped. Each process evicts its own pools.
    pub fn spawn_idle_eviction(&self, every: Duration, idle: Duration) {
        let weak = Arc::downgrade(&self.slots);
        let (limits, addresses) = (self.limits.clone(), self.addresses.clone());
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                let Some(slots) = weak.upgrade() else { return };
                let registry = Registry {
                    slots,
                    limits: limits.clone(),
                    addresses: addresses.clone(),
                };
                let evicted = registry.evict_idle(idle).await;
                if evicted > 0 {
                    tracing::debug!(evicted, "closed idle connector pools");
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DbKind;

    #[tokio::test]
    async fn idle_pools_are_closed_unless_in_use_and_reopen_on_demand() {
        let dir = tempfile::tempdir().unwrap();
        let registry = Registry::new(Limits::default());
        std::fs::write(dir.path().join("a.db"), b"").unwrap();
        let params = || {
            let mut params = ConnectionParams::new(DbKind::Sqlite);
            params.path = Some(dir.path().join("a.db").display().to_string());
            Ok(params)
        };
        let held = registry.database("c1", 1, params).await.unwrap();
        assert_eq!(registry.evict_idle(Duration::ZERO).await, 0, "in use");
        drop(held);
        assert_eq!(
            registry.evict_idle(Duration::from_secs(3600)).await,
            0,
            "used a moment ago"
        );
        assert_eq!(registry.evict_idle(Duration::ZERO).await, 1);
        assert_eq!(
            registry.evict_idle(Duration::ZERO).await,
            0,
            "already closed"
        );
        let again = registry.database("c1", 1, params).await.unwrap();
        assert!(again.tables().await.is_ok(), "reopened on demand");
    }
}
