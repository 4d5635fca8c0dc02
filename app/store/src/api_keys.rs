//! Tenant API keys: shown once at creation, stored as a SHA-256 hash, revocable.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::error::OptionalExt;
use crate::ids::{ApiKeyId, TenantId};
use crate::schema::api_keys;
use crate::secret::{hash_token, random_token};
use crate::{Store, StoreError, now, with_conn};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = api_keys)]
struct ApiKeyRow {
    id: String,
    tenant_id: String,
    name: String,
    prefix: String,
    created_by: String,
    created_at: NaiveDateTime,
    last_used_at: Option<NaiveDateTime>,
    revoked_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub tenant_id: TenantId,
    pub name: String,
    /// The first characters of the key, enough to recognise it in a list.
    pub prefix: String,
    pub created_by: String,
    pub created_at: NaiveDateTime,
    pub last_used_at: Option<NaiveDateTime>,
    pub revoked_at: Option<NaiveDateTime>,
}

impl From<ApiKeyRow> for ApiKey {
    fn from(r: ApiKeyRow) -> Self {
        Self {
            id: ApiKeyId::from_stored(r.id),
            tenant_id: TenantId::from_stored(r.tenant_id),
            name: r.name,
            prefix: r.prefix,
            created_by: r.created_by,
            created_at: r.created_at,
            last_used_at: r.last_used_at,
            revoked_at: r.revoked_at,
        }
    }
}

const KEY_PREFIX: &str = "sk";

impl Store {
    /// Creates a key; the returned secret is the only time it exists in clear.
    pub async fn create_api_key(
        &self,
        tenant: &TenantId,
        name: &str,
        created_by: &str,
    ) -> Result<(ApiKey, String), StoreError> {
        let secret = random_token(KEY_PREFIX);
        let id = ApiKeyId::generate();
        let prefix: String = secret.chars().take(10).collect();
        let mut conn = self.conn().await?;
        with_conn!(&mut conn, c => diesel::insert_into(api_keys::table)
            .values((
                api_keys::id.eq(id.as_str()),
                api_keys::tenant_id.eq(tenant.as_str()),
                api_keys::name.eq(name),
                api_keys::prefix.eq(&prefix),
                api_keys::key_hash.eq(hash_token(&secret)),
                api_keys::created_by.eq(created_by),
                api_keys::created_at.eq(now()),
            ))
            .execute(c)
            .await)?;
        Ok((self.api_key(tenant, &id).await?, secret))
    }

    pub async fn api_key(&self, tenant: &TenantId, id: &ApiKeyId) -> Result<ApiKey, StoreError> {
        let mut conn = self.conn().await?;
        let row: ApiKeyRow = with_conn!(&mut conn, c => api_keys::table
            .filter(api_keys::tenant_id.eq(tenant.as_str()))
            .filter(api_keys::id.eq(id.as_str()))
            .select(ApiKeyRow::as_select())
            .first(c)
            .await)
        .or_not_found("api key")?;
        Ok(row.into())
    }

    pub async fn api_keys(&self, tenant: &TenantId) -> Result<Vec<ApiKey>, StoreError> {
        let mut conn = self.conn().await?;
        let rows: Vec<ApiKeyRow> = with_conn!(&mut conn, c => api_keys::table
            .filter(api_keys::tenant_id.eq(tenant.as_str()))
            .order(api_keys::created_at.desc())
            .select(ApiKeyRow::as_select())
            .load(c)
            .await)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// The live key behind a bearer secret; records its use.
    pub async fn authenticate_api_key(&self, secret: &str) -> Result<Option<ApiKey>, StoreError> {
        let mut conn = self.conn().await?;
        let row: Option<ApiKeyRow> = with_conn!(&mut conn, c => api_keys::table
            .filter(api_keys::key_hash.eq(hash_token(secret)))
            .filter(api_keys::revoked_at.is_null())
            .select(ApiKeyRow::as_select())
            .first(c)
            .await
            .optional())?;
        if let Some(row) = &row {
            with_conn!(&mut conn, c => diesel::update(api_keys::table.find(&row.id))
                .set(api_keys::last_used_at.eq(now()))
                .execute(c)
                .await)?;
        }
        Ok(row.map(Into::into))
    }

    pub async fn revoke_api_key(
        &self,
        tenant: &TenantId,
        id: &ApiKeyId,
    ) -> Result<ApiKey, StoreError> {
        let mut conn = self.conn().await?;
        let changed = with_conn!(&mut conn, c => diesel::update(
                api_keys::table
                    .filter(api_keys::tenant_id.eq(tenant.as_str()))
                    .filter(api_keys::id.eq(id.as_str()))
                    .filter(api_keys::revoked_at.is_null()),
            )
            .set(api_keys::revoked_at.eq(now()))
            .execute(c)
            .await)?;
        let key = self.api_key(tenant, id).await?;
        if changed == 0 && key.revoked_at.is_none() {
            return Err(StoreError::not_found("api key"));
        }
        Ok(key)
    }
}
