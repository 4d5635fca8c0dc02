//! Tenant API keys: shown once at creation, stored as a SHA-256 hash, revocable.
//! A key acts for the user who created it, with that user's current role (at most
//! admin), and stops working when they are removed; system keys (made by
//! `sluice admin apikey-create`) have no creator and act as admin.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::accounts::User;
use crate::domain::Role;
use crate::error::OptionalExt;
use crate::ids::{ApiKeyId, TenantId, UserId};
use crate::schema::{api_keys, users};
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
    created_by_user_id: Option<String>,
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
    /// The user the key acts for; `None` for a system key.
    pub created_by_user_id: Option<UserId>,
}

impl ApiKey {
    pub fn is_system(&self) -> bool {
        self.created_by_user_id.is_none()
    }
}

/// Who a new key acts for.
#[derive(Debug, Clone, Copy)]
pub enum KeyCreator<'a> {
    User(&'a User),
    /// The operator, from the command line: the key belongs to no user.
    System,
}

impl KeyCreator<'_> {
    /// How the creator is named in the key list and the audit log.
    pub fn label(&self) -> String {
        match self {
            KeyCreator::User(user) => format!("user:{}", user.email),
            KeyCreator::System => SYSTEM_CREATOR.to_string(),
        }
    }
}

pub const SYSTEM_CREATOR: &str = "system";

/// The most a key may do, whoever created it: keys never manage users.
pub const KEY_ROLE_CEILING: Role = Role::Admin;

/// A key presented with a request, and the role it acts with right now.
#[derive(Debug, Clone)]
pub struct AuthenticatedKey {
    pub key: ApiKey,
    pub role: Role,
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
            created_by_user_id: r.created_by_user_id.map(UserId::from_stored),
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
        creator: KeyCreator<'_>,
    ) -> Result<(ApiKey, String), StoreError> {
        let created_by = creator.label();
        let created_by_user_id = match creator {
            KeyCreator::User(user) => Some(user.id.as_str()),
            KeyCreator::System => None,
        };
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
                api_keys::created_by.eq(&created_by),
                api_keys::created_by_user_id.eq(created_by_user_id),
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

    /// The live key behind a bearer secret and the role it acts with: its creator's
    /// current role capped at [`KEY_ROLE_CEILING`], or the ceiling for a system key.
    /// A key whose creator was removed finds no row. Records the key's use (to the
    /// minute, so a busy client does not turn every request into a write).
    pub async fn authenticate_api_key(
        &self,
        secret: &str,
    ) -> Result<Option<AuthenticatedKey>, StoreError> {
        let found: Option<(ApiKeyRow, Option<String>)> = {
            let mut conn = self.read().await?;
            with_conn!(&mut conn, c => api_keys::table
                .left_join(
                    users::table.on(users::id
                        .nullable()
                        .eq(api_keys::created_by_user_id)
                        .and(users::tenant_id.eq(api_keys::tenant_id))),
                )
                .filter(api_keys::key_hash.eq(hash_token(secret)))
                .filter(api_keys::revoked_at.is_null())
                .filter(api_keys::created_by_user_id.is_null().or(users::id.is_not_null()))
                .select((ApiKeyRow::as_select(), users::role.nullable()))
                .first(c)
                .await
                .optional())?
        };
        let Some((mut row, creator_role)) = found else {
            return Ok(None);
        };
        let role = match creator_role {
            // Only the store writes roles; an unreadable one grants the least.
            Some(raw) => Role::parse(&raw)
                .unwrap_or(Role::Viewer)
                .min(KEY_ROLE_CEILING),
            None => KEY_ROLE_CEILING,
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
        Ok(Some(AuthenticatedKey {
            key: row.into(),
            role,
        }))
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
