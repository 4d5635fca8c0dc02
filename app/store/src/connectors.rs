//! SQL connectors: where a tenant's database is and how to reach it. The password
//! and secret-like options are sealed in `secrets_enc` and only ever decrypted to
//! open a connection.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::audit::AuditEvent;
use crate::domain::{ConnectorName, Reach};
use crate::error::OptionalExt;
use crate::ids::{ConnectorId, TenantId};
use crate::schema::{command_runs, commands, connectors, outbox_consumers, segment_syncs};
use crate::secret::{hash_token, random_token};
use crate::{Store, StoreError, in_transaction, insert_audit, now, with_conn};

/// Everything about a connector except its secrets, as edited in forms and the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectorSettings {
    pub name: ConnectorName,
    pub description: String,
    /// `postgres`, `mysql`, `mariadb`, `sqlserver`, `oracle` or `sqlite`.
    pub kind: String,
    pub reach: Reach,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub database: Option<String>,
    pub username: Option<String>,
    /// `disabled`, `preferred`, `required` or `verify-full`.
    pub tls_mode: String,
    /// Non-secret driver options.
    pub options: BTreeMap<String, String>,
    /// SQLite database file.
    pub path: Option<String>,
}

/// The sealed part of a connector.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectorSecrets {
    pub password: Option<String>,
    /// Driver options whose values are secret (e.g. a key passphrase).
    #[serde(default)]
    pub options: BTreeMap<String, String>,
}

/// What an edit does to the stored secrets.
#[derive(Debug, Clone)]
pub enum SecretsChange {
    /// A blank password field: keep what is stored.
    Keep,
    Replace(ConnectorSecrets),
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = connectors)]
struct ConnectorRow {
    id: String,
    tenant_id: String,
    name: String,
    description: String,
    kind: String,
    reach: String,
    host: Option<String>,
    port: Option<i64>,
    database_name: Option<String>,
    username: Option<String>,
    tls_mode: String,
    options: String,
    path: Option<String>,
    secrets_enc: Option<String>,
    gateway_key_prefix: Option<String>,
    version: i64,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
}

#[derive(Debug, Clone)]
pub struct Connector {
    pub id: ConnectorId,
    pub tenant_id: TenantId,
    pub settings: ConnectorSettings,
    pub has_password: bool,
    /// The first characters of the gateway key, for recognising it.
    pub gateway_key_prefix: Option<String>,
    /// Increases with every change; a cached connection pool of an older version is stale.
    pub version: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    secrets_enc: Option<String>,
}

impl Connector {
    /// Decrypts the secrets, for opening a connection.
    pub fn secrets(&self, store: &Store) -> Result<ConnectorSecrets, StoreError> {
        match &self.secrets_enc {
            None => Ok(ConnectorSecrets::default()),
            Some(sealed) => {
                let json = store.secret().open(
                    SECRETS_PURPOSE,
                    &secrets_owner(&self.tenant_id, &self.id),
                    sealed,
                )?;
                serde_json::from_str(&json)
                    .map_err(|e| StoreError::Secret(format!("connector secrets: {e}")))
            }
        }
    }
}

impl TryFrom<ConnectorRow> for Connector {
    type Error = StoreError;

    fn try_from(r: ConnectorRow) -> Result<Self, StoreError> {
        let corrupt = |what: &str| {
            StoreError::Secret(format!("connector {}: stored {what} is invalid", r.id))
        };
        let options: BTreeMap<String, String> =
            serde_json::from_str(&r.options).map_err(|_| corrupt("options"))?;
        let settings = ConnectorSettings {
            name: ConnectorName::parse(&r.name).map_err(|_| corrupt("name"))?,
            description: r.description,
            kind: r.kind,
            reach: Reach::parse(&r.reach).map_err(|_| corrupt("reach"))?,
            host: r.host,
            port: r.port.and_then(|p| u16::try_from(p).ok()),
            database: r.database_name,
            username: r.username,
            tls_mode: r.tls_mode,
            options,
            path: r.path,
        };
        Ok(Self {
            id: ConnectorId::from_stored(r.id),
            tenant_id: TenantId::from_stored(r.tenant_id),
            has_password: r.secrets_enc.is_some(),
            settings,
            gateway_key_prefix: r.gateway_key_prefix,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
            secrets_enc: r.secrets_enc,
        })
    }
}

const NAME_TAKEN: &str = "is already used by another connector";
const GATEWAY_KEY_PREFIX: &str = "gw";

/// What connector secrets are sealed for, and whose they are: a sealed value opens
/// only on its own connector of its own tenant.
const SECRETS_PURPOSE: &str = "credentials";

fn secrets_owner(tenant: &TenantId, connector: &ConnectorId) -> String {
    format!("{}/{}", tenant.as_str(), connector.as_str())
}

fn seal(
    store: &Store,
    tenant: &TenantId,
    connector: &ConnectorId,
    secrets: &ConnectorSecrets,
) -> Result<Option<String>, StoreError> {
    if secrets.password.is_none() && secrets.options.is_empty() {
        return Ok(None);
    }
    let json = serde_json::to_string(secrets).map_err(|e| StoreError::Secret(e.to_string()))?;
    Ok(Some(store.secret().seal(
        SECRETS_PURPOSE,
        &secrets_owner(tenant, connector),
        &json,
    )))
}

fn options_json(options: &BTreeMap<String, String>) -> String {
    serde_json::to_string(options).unwrap_or_else(|_| "{}".into())
}

/// A new gateway key: (secret shown once, its hash, its display prefix).
fn new_gateway_key() -> (String, String, String) {
    let key = random_token(GATEWAY_KEY_PREFIX);
    let hash = hash_token(&key);
    let prefix = key.chars().take(10).collect();
    (key, hash, prefix)
}

impl Store {
    /// Creates a connector; a gateway connector also gets its key, returned once.
    pub async fn create_connector(
        &self,
        tenant: &TenantId,
        settings: &ConnectorSettings,
        secrets: &ConnectorSecrets,
    ) -> Result<(Connector, Option<String>), StoreError> {
        self.create_connector_audited(tenant, settings, secrets, None)
            .await
    }

    /// [`Store::create_connector`], recording `audit` (when given) in the same
    /// transaction.
    pub async fn create_connector_audited(
        &self,
        tenant: &TenantId,
        settings: &ConnectorSettings,
        secrets: &ConnectorSecrets,
        audit: Option<&AuditEvent<'_>>,
    ) -> Result<(Connector, Option<String>), StoreError> {
        let id = ConnectorId::generate();
        let sealed = seal(self, tenant, &id, secrets)?;
        let gateway = (settings.reach == Reach::Gateway).then(new_gateway_key);
        let at = now();
        let mut conn = self.write().await?;
        let row: ConnectorRow = in_transaction!(&mut conn, c => {
            let row = diesel::insert_into(connectors::table)
            .values((
                connectors::id.eq(id.as_str()),
                connectors::tenant_id.eq(tenant.as_str()),
                connectors::name.eq(settings.name.as_str()),
                connectors::description.eq(&settings.description),
                connectors::kind.eq(&settings.kind),
                connectors::reach.eq(settings.reach.as_str()),
                connectors::host.eq(&settings.host),
                connectors::port.eq(settings.port.map(i64::from)),
                connectors::database_name.eq(&settings.database),
                connectors::username.eq(&settings.username),
                connectors::tls_mode.eq(&settings.tls_mode),
                connectors::options.eq(options_json(&settings.options)),
                connectors::path.eq(&settings.path),
                connectors::secrets_enc.eq(&sealed),
                connectors::gateway_key_hash.eq(gateway.as_ref().map(|g| &g.1)),
                connectors::gateway_key_prefix.eq(gateway.as_ref().map(|g| &g.2)),
                connectors::version.eq(1i64),
                connectors::created_at.eq(at),
                connectors::updated_at.eq(at),
            ))
            .returning(ConnectorRow::as_returning())
            .get_result(c)
            .await
            .map_err(StoreError::unique("name", NAME_TAKEN))?;
            if let Some(event) = audit {
                insert_audit!(c, tenant, event)?;
            }
            Ok(row)
        })?;
        Ok((row.try_into()?, gateway.map(|g| g.0)))
    }

    pub async fn connector(
        &self,
        tenant: &TenantId,
        id: &ConnectorId,
    ) -> Result<Connector, StoreError> {
        let mut conn = self.read().await?;
        let row: ConnectorRow = with_conn!(&mut conn, c => connectors::table
            .filter(connectors::tenant_id.eq(tenant.as_str()))
            .filter(connectors::id.eq(id.as_str()))
            .select(ConnectorRow::as_select())
            .first(c)
            .await)
        .or_not_found("connector")?;
        row.try_into()
    }

    pub async fn count_connectors(&self, tenant: &TenantId) -> Result<i64, StoreError> {
        let mut conn = self.read().await?;
        Ok(with_conn!(&mut conn, c => connectors::table
            .filter(connectors::tenant_id.eq(tenant.as_str()))
            .count()
            .get_result::<i64>(c)
            .await)?)
    }

    pub async fn connectors(&self, tenant: &TenantId) -> Result<Vec<Connector>, StoreError> {
        let mut conn = self.read().await?;
        let rows: Vec<ConnectorRow> = with_conn!(&mut conn, c => connectors::table
            .filter(connectors::tenant_id.eq(tenant.as_str()))
            .order(connectors::name.asc())
            .select(ConnectorRow::as_select())
            .load(c)
            .await)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    /// Every tenant's connectors of `kind`, for maintenance at startup (moving
    /// SQLite files into their tenant's directory); never for a request.
    pub async fn connectors_of_kind_in_every_tenant(
        &self,
        kind: &str,
    ) -> Result<Vec<Connector>, StoreError> {
        let mut conn = self.read().await?;
        let rows: Vec<ConnectorRow> = with_conn!(&mut conn, c => connectors::table
            .filter(connectors::kind.eq(kind))
            .order((connectors::tenant_id.asc(), connectors::name.asc()))
            .select(ConnectorRow::as_select())
            .load(c)
            .await)?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    /// Replaces the settings (and, unless `Keep`, the secrets) of a connector.
    /// Switching to gateway reach issues a key, returned once.
    pub async fn update_connector(
        &self,
        tenant: &TenantId,
        id: &ConnectorId,
        settings: &ConnectorSettings,
        secrets: SecretsChange,
    ) -> Result<(Connector, Option<String>), StoreError> {
        self.update_connector_audited(tenant, id, settings, secrets, None)
            .await
    }

    /// [`Store::update_connector`], recording `audit` (when given) in the same
    /// transaction.
    pub async fn update_connector_audited(
        &self,
        tenant: &TenantId,
        id: &ConnectorId,
        settings: &ConnectorSettings,
        secrets: SecretsChange,
        audit: Option<&AuditEvent<'_>>,
    ) -> Result<(Connector, Option<String>), StoreError> {
        let current = self.connector(tenant, id).await?;
        let sealed = match secrets {
            SecretsChange::Keep => current.secrets_enc.clone(),
            SecretsChange::Replace(new) => seal(self, tenant, id, &new)?,
        };
        let issue_key = settings.reach == Reach::Gateway && current.gateway_key_prefix.is_none();
        let gateway = issue_key.then(new_gateway_key);
        let keep_key = settings.reach == Reach::Gateway;
        let mut conn = self.write().await?;
        let row: ConnectorRow = in_transaction!(&mut conn, c => {
            let target = connectors::table
                .filter(connectors::tenant_id.eq(tenant.as_str()))
                .filter(connectors::id.eq(id.as_str()));
            let common = (
                connectors::name.eq(settings.name.as_str()),
                connectors::description.eq(&settings.description),
                connectors::kind.eq(&settings.kind),
                connectors::reach.eq(settings.reach.as_str()),
                connectors::host.eq(&settings.host),
                connectors::port.eq(settings.port.map(i64::from)),
                connectors::database_name.eq(&settings.database),
                connectors::username.eq(&settings.username),
                connectors::tls_mode.eq(&settings.tls_mode),
                connectors::options.eq(options_json(&settings.options)),
                connectors::path.eq(&settings.path),
                connectors::secrets_enc.eq(&sealed),
                connectors::version.eq(connectors::version + 1i64),
                connectors::updated_at.eq(now()),
            );
            let updated = match (&gateway, keep_key) {
                (Some((_, hash, prefix)), _) => diesel::update(target)
                    .set((common, connectors::gateway_key_hash.eq(Some(hash)), connectors::gateway_key_prefix.eq(Some(prefix))))
                    .returning(ConnectorRow::as_returning())
                    .get_result(c)
                    .await,
                (None, true) => diesel::update(target)
                    .set(common)
                    .returning(ConnectorRow::as_returning())
                    .get_result(c)
                    .await,
                (None, false) => diesel::update(target)
                    .set((
                        common,
                        connectors::gateway_key_hash.eq(None::<String>),
                        connectors::gateway_key_prefix.eq(None::<String>),
                    ))
                    .returning(ConnectorRow::as_returning())
                    .get_result(c)
                    .await,
            };
            let row = updated
                .optional()
                .map_err(StoreError::unique("name", NAME_TAKEN))?
                .ok_or_else(|| StoreError::not_found("connector"))?;
            if let Some(event) = audit {
                insert_audit!(c, tenant, event)?;
            }
            Ok(row)
        })?;
        Ok((row.try_into()?, gateway.map(|g| g.0)))
    }

    /// Issues a new gateway key (the old one stops working); returned once.
    pub async fn rotate_gateway_key(
        &self,
        tenant: &TenantId,
        id: &ConnectorId,
    ) -> Result<String, StoreError> {
        let (key, hash, prefix) = new_gateway_key();
        let mut conn = self.write().await?;
        let changed = with_conn!(&mut conn, c => diesel::update(
                connectors::table
                    .filter(connectors::tenant_id.eq(tenant.as_str()))
                    .filter(connectors::id.eq(id.as_str()))
                    .filter(connectors::reach.eq(Reach::Gateway.as_str())),
            )
            .set((connectors::gateway_key_hash.eq(hash), connectors::gateway_key_prefix.eq(prefix)))
            .execute(c)
            .await)?;
        if changed == 0 {
            return Err(StoreError::not_found("gateway connector"));
        }
        Ok(key)
    }

    /// Deletes a connector and, by cascade, everything that belongs to it.
    pub async fn delete_connector(
        &self,
        tenant: &TenantId,
        id: &ConnectorId,
    ) -> Result<(), StoreError> {
        self.delete_connector_audited(tenant, id, None).await
    }

    /// [`Store::delete_connector`], recording `audit` (when given) in the same
    /// transaction.
    pub async fn delete_connector_audited(
        &self,
        tenant: &TenantId,
        id: &ConnectorId,
        audit: Option<&AuditEvent<'_>>,
    ) -> Result<(), StoreError> {
        let mut conn = self.write().await?;
        in_transaction!(&mut conn, c => {
            // Its segment syncs' outbox consumers (the syncs go by cascade).
            let its_syncs: Vec<String> = segment_syncs::table
                .filter(segment_syncs::tenant_id.eq(tenant.as_str()))
                .filter(segment_syncs::connector_id.eq(id.as_str()))
                .select(segment_syncs::id)
                .load(c)
                .await?;
            let consumers: Vec<String> = its_syncs
                .into_iter()
                .map(|sync| crate::integrations::sync_consumer(&crate::ids::SegmentSyncId::from_stored(sync)))
                .collect();
            diesel::delete(
                outbox_consumers::table
                    .filter(outbox_consumers::tenant_id.eq(tenant.as_str()))
                    .filter(outbox_consumers::consumer.eq_any(&consumers)),
            )
            .execute(c)
            .await?;
            // Children first, in the lock order every run update uses (see the
            // crate docs): its commands' runs, its commands, then the connector.
            let its_commands = commands::table
                .filter(commands::tenant_id.eq(tenant.as_str()))
                .filter(commands::connector_id.eq(id.as_str()))
                .select(commands::id);
            diesel::delete(command_runs::table.filter(command_runs::command_id.eq_any(its_commands)))
                .execute(c)
                .await?;
            diesel::delete(
                commands::table
                    .filter(commands::tenant_id.eq(tenant.as_str()))
                    .filter(commands::connector_id.eq(id.as_str())),
            )
            .execute(c)
            .await?;
            let removed = diesel::delete(
                connectors::table
                    .filter(connectors::tenant_id.eq(tenant.as_str()))
                    .filter(connectors::id.eq(id.as_str())),
            )
            .execute(c)
            .await?;
            if removed == 0 {
                return Err(StoreError::not_found("connector"));
            }
            if let Some(event) = audit {
                insert_audit!(c, tenant, event)?;
            }
            Ok(())
        })
    }

    /// The raw stored secrets column, for tests proving nothing is stored in clear.
    pub async fn connector_sealed_secrets(
        &self,
        id: &ConnectorId,
    ) -> Result<Option<String>, StoreError> {
        let mut conn = self.read().await?;
        with_conn!(&mut conn, c => connectors::table
            .find(id.as_str())
            .select(connectors::secrets_enc)
            .first::<Option<String>>(c)
            .await)
        .or_not_found("connector")
    }

    /// Re-seals every connector secret not sealed with the current key (legacy
    /// unbound values, values under a previous key), bound to its connector.
    /// Run on start and by `sluice admin rotate-key`.
    pub async fn reseal_secrets(&self) -> Result<Resealed, StoreError> {
        let rows: Vec<(String, String, String)> = {
            let mut conn = self.read().await?;
            with_conn!(&mut conn, c => connectors::table
                .filter(connectors::secrets_enc.is_not_null())
                .select((connectors::id, connectors::tenant_id, connectors::secrets_enc.assume_not_null()))
                .load(c)
                .await)?
        };
        let mut outcome = Resealed::default();
        for (id, tenant, sealed) in rows {
            if self.secret().is_current(&sealed) {
                continue;
            }
            let (id, tenant) = (ConnectorId::from_stored(id), TenantId::from_stored(tenant));
            let owner = secrets_owner(&tenant, &id);
            let opened = if sealed.starts_with("v1:") {
                self.secret().open_legacy(&sealed)
            } else {
                self.secret().open(SECRETS_PURPOSE, &owner, &sealed)
            };
            let Ok(plain) = opened else {
                tracing::warn!(connector = %id, "connector secrets cannot be opened with the configured keys");
                outcome.unreadable += 1;
                continue;
            };
            let fresh = self.secret().seal(SECRETS_PURPOSE, &owner, &plain);
            let mut conn = self.write().await?;
            // Only if unchanged meanwhile: an edit may have sealed new secrets.
            outcome.resealed += with_conn!(&mut conn, c => diesel::update(
                    connectors::table
                        .filter(connectors::id.eq(id.as_str()))
                        .filter(connectors::secrets_enc.eq(&sealed)),
                )
                .set(connectors::secrets_enc.eq(&fresh))
                .execute(c)
                .await)?;
        }
        Ok(outcome)
    }
}

/// What [`Store::reseal_secrets`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Resealed {
    pub resealed: usize,
    /// Sealed with a key this instance does not have: left as they are.
    pub unreadable: usize,
}
