//! One bounded connection pool per connector, shared by the web handlers and the
//! job workers. A pool is keyed by connector id and replaced when the connector's
//! stored version changes (an edit), so no request uses stale credentials.

use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::Mutex;

use crate::address::{AddressPolicy, vet};
use crate::{ConnectError, ConnectionParams, Database, Limits};

/// A connector's slot: locked while its pool is being opened, so a slow or
/// unreachable database delays only the callers that need it.
type Slot = Arc<Mutex<Option<(i64, Arc<Database>)>>>;

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
        if let Some((cached_version, database)) = current.as_ref()
            && *cached_version == version
        {
            return Ok(database.clone());
        }
        let mut params = params()?;
        if let Some(policy) = &self.addresses {
            params = vet(&params, policy).await?;
        }
        let database = Arc::new(Database::connect(&params, &self.limits).await?);
        if let Some((_, stale)) = current.replace((version, database.clone())) {
            stale.close().await;
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
            && let Some((_, database)) = slot.lock().await.take()
        {
            database.close().await;
        }
    }
}
