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
const LAST_USED_PRECISION: chrono::Duration = chrono::Duration::seconds(60);

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
        let mut conn = self.write().await?;
        let row: ApiKeyRow = with_conn!(&mut conn, c => diesel::insert_into(api_keys::table)
            .values((
                api_keys::id.eq(id.as_str()),
                api_keys::tenant_id.eq(tenant.as_str()),
                api_keys::name.eq(name),
                api_keys::prefix.eq(&prefix),
                api_keys::key_hash.eq(hash_token(&secret)),
                api_keys::created_by.eq(created_by),
                api_keys::created_at.eq(now()),
            ))
            .returning(ApiKeyRow::as_returning())
            .get_result(c)
            .await)?;
        Ok((row.into(), secret))
    }

    pub async fn api_key(&self, tenant: &TenantId, id: &ApiKeyId) -> Result<ApiKey, StoreError> {
        let mut conn = self.read().await?;
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
        let mut conn = self.read().await?;
        let rows: Vec<ApiKeyRow> = with_conn!(&mut conn, c => api_keys::table
            .filter(api_keys::tenant_id.eq(tenant.as_str()))
            .order(api_keys::created_at.desc())
            .select(ApiKeyRow::as_select())
            .load(c)
            .await)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// The live key behind a bearer secret; records its use (to the minute, so a
    /// busy client does not turn every request into a write).
    pub async fn authenticate_api_key(&self, secret: &str) -> Result<Option<ApiKey>, StoreError> {
        let row: Option<ApiKeyRow> = {
            let mut conn = self.read().await?;
            with_conn!(&mut conn, c => api_keys::table
                .filter(api_keys::key_hash.eq(hash_token(secret)))
                .filter(api_keys::revoked_at.is_null())
                .select(ApiKeyRow::as_select())
                .first(c)
                .await
                .optional())?
        };
        let Some(mut row) = row else {
            return Ok(None);
        };
        let at = now();
        if row
            .last_used_at
            .is_none_or(|last| at - last >= LAST_USED_PRECISION)
        {
            let mut conn = self.write().await?;
            with_conn!(&mut conn, c => diesel::update(api_keys::table.find(&row.id))
                .set(api_keys::last_used_at.eq(at))
                .execute(c)
                .await)?;
            row.last_used_at = Some(at);
        }
        Ok(Some(row.into()))
    }

    pub async fn revoke_api_key(
        &self,
        tenant: &TenantId,
        id: &ApiKeyId,
    ) -> Result<ApiKey, StoreError> {
        let mut conn = self.write().await?;
        // Revoking a revoked key keeps its first revocation time.
        let row: ApiKeyRow = with_conn!(&mut conn, c => {
            let key = api_keys::table
                .filter(api_keys::tenant_id.eq(tenant.as_str()))
                .filter(api_keys::id.eq(id.as_str()));
            diesel::update(key.filter(api_keys::revoked_at.is_null()))
                .set(api_keys::revoked_at.eq(now()))
                .execute(c)
                .await?;
            key.select(ApiKeyRow::as_select()).first(c).await
        })
        .or_not_found("api key")?;
        Ok(row.into())
    }
}
