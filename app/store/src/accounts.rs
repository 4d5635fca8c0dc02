//! Tenants and their users: sign-up, lookup by email, roles, removal. An email is
//! unique within a tenant only: one person may own or join several workspaces, and
//! nothing here ever tells a caller that an email has an account in another one.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::domain::{Email, NewPassword, PersonName, Role, TenantName};
use crate::error::OptionalExt;
use crate::ids::{TenantId, UserId};
use crate::schema::{api_keys, tenants, users};
use crate::{Store, StoreError, in_transaction, lock_tenant, now, password, with_conn};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = tenants)]
struct TenantRow {
    id: String,
    name: String,
    created_at: NaiveDateTime,
}

#[derive(Debug, Clone)]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
    pub created_at: NaiveDateTime,
}

impl From<TenantRow> for Tenant {
    fn from(r: TenantRow) -> Self {
        Self {
            id: TenantId::from_stored(r.id),
            name: r.name,
            created_at: r.created_at,
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
pub(crate) struct UserRow {
    id: String,
    tenant_id: String,
    email: String,
    name: String,
    password_hash: String,
    role: String,
    created_at: NaiveDateTime,
}

#[derive(Debug, Clone)]
pub struct User {
    pub id: UserId,
    pub tenant_id: TenantId,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub created_at: NaiveDateTime,
    password_hash: String,
}

impl User {
    pub async fn password_matches(&self, candidate: &str) -> bool {
        password::verify_password(&self.password_hash, candidate).await
    }
}

impl From<UserRow> for User {
    fn from(r: UserRow) -> Self {
        Self {
            id: UserId::from_stored(r.id),
            tenant_id: TenantId::from_stored(r.tenant_id),
            email: r.email,
            name: r.name,
            // Only the store writes roles, always from `Role::as_str`.
            role: Role::parse(&r.role).unwrap_or(Role::Viewer),
            created_at: r.created_at,
            password_hash: r.password_hash,
        }
    }
}

#[derive(Insertable)]
#[diesel(table_name = users)]
pub(crate) struct NewUserRow<'a> {
    id: &'a str,
    tenant_id: &'a str,
    email: &'a str,
    name: &'a str,
    password_hash: &'a str,
    role: &'a str,
    created_at: NaiveDateTime,
}

/// Everything needed to add a user (the owner at sign-up, or an invitee).
pub struct NewUser {
    pub email: Email,
    pub name: PersonName,
    pub password: NewPassword,
    pub role: Role,
}

/// Adding a user whose email is already a member of the same tenant (which the
/// tenant's owners can see anyway).
pub const ALREADY_A_MEMBER: &str = "is already a member of this workspace";

/// How many accounts of one email a sign-in tries, newest first: each costs an
/// argon2 verification.
pub const MAX_ACCOUNTS_PER_EMAIL_TRIED: i64 = 10;

impl NewUser {
    /// The row to insert, once the password has been hashed (never while holding
    /// a store connection: hashing takes a while by design).
    pub(crate) fn row<'a>(
        &'a self,
        id: &'a UserId,
        tenant: &'a TenantId,
        password_hash: &'a str,
    ) -> NewUserRow<'a> {
        NewUserRow {
            id: id.as_str(),
            tenant_id: tenant.as_str(),
            email: self.email.as_str(),
            name: self.name.as_str(),
            password_hash,
            role: self.role.as_str(),
            created_at: now(),
        }
    }
}

/// The user is not an owner, or another owner remains: checked in the very statement
/// that demotes or removes them, so the check cannot go stale before the change.
macro_rules! keeps_an_owner {
    ($tenant:expr, $id:expr) => {{
        let others = diesel::alias!(users as other_users);
        users::role.ne(Role::Owner.as_str()).or(diesel::dsl::exists(
            others
                .filter(others.field(users::tenant_id).eq($tenant.as_str()))
                .filter(others.field(users::role).eq(Role::Owner.as_str()))
                .filter(others.field(users::id).ne($id.as_str())),
        ))
    }};
}

/// Why a guarded change of a user touched no row: no such user, or the last owner.
macro_rules! unchanged_user_error {
    ($c:expr, $tenant:expr, $id:expr, $field:expr) => {{
        let exists = users::table
            .filter(users::tenant_id.eq($tenant.as_str()))
            .filter(users::id.eq($id.as_str()))
            .count()
            .get_result::<i64>($c)
            .await?
            > 0;
        if exists {
            StoreError::Conflict {
                field: $field,
                message: LAST_OWNER.into(),
            }
        } else {
            StoreError::not_found("user")
        }
    }};
}

pub const LAST_OWNER: &str = "a tenant needs at least one owner";

impl Store {
    /// Sign-up: creates a tenant and its owner in one transaction.
    pub async fn create_tenant_with_owner(
        &self,
        tenant_name: &TenantName,
        owner: NewUser,
    ) -> Result<(Tenant, User), StoreError> {
        let owner = NewUser {
            role: Role::Owner,
            ..owner
        };
        let password_hash = password::hash_password(owner.password.expose()).await?;
        let tenant_id = TenantId::generate();
        let user_id = UserId::generate();
        let created_at = now();
        let name = tenant_name.as_str().to_string();
        let mut conn = self.write().await?;
        let (tenant, user): (TenantRow, UserRow) = in_transaction!(&mut conn, c => {
            let tenant = diesel::insert_into(tenants::table)
                .values((
                    tenants::id.eq(tenant_id.as_str()),
                    tenants::name.eq(&name),
                    tenants::created_at.eq(created_at),
                ))
                .returning(TenantRow::as_returning())
                .get_result(c)
                .await
                .map_err(StoreError::unique("tenant_name", "is already taken"))?;
            let user = diesel::insert_into(users::table)
                .values(owner.row(&user_id, &tenant_id, &password_hash))
                .returning(UserRow::as_returning())
                .get_result(c)
                .await?;
            Ok((tenant, user))
        })?;
        Ok((tenant.into(), user.into()))
    }

    pub async fn tenant(&self, id: &TenantId) -> Result<Tenant, StoreError> {
        let mut conn = self.read().await?;
        let row: TenantRow = with_conn!(&mut conn, c => tenants::table
            .find(id.as_str())
            .select(TenantRow::as_select())
            .first(c)
            .await)
        .or_not_found("tenant")?;
        Ok(row.into())
    }

    pub async fn tenant_by_name(&self, name: &str) -> Result<Tenant, StoreError> {
        let mut conn = self.read().await?;
        let row: TenantRow = with_conn!(&mut conn, c => tenants::table
            .filter(tenants::name.eq(name.trim()))
            .select(TenantRow::as_select())
            .first(c)
            .await)
        .or_not_found("tenant")?;
        Ok(row.into())
    }

    /// Adds a user to an existing tenant.
    pub async fn create_user(&self, tenant: &TenantId, new: NewUser) -> Result<User, StoreError> {
        let password_hash = password::hash_password(new.password.expose()).await?;
        let user_id = UserId::generate();
        let mut conn = self.write().await?;
        let row: UserRow = with_conn!(&mut conn, c => diesel::insert_into(users::table)
            .values(new.row(&user_id, tenant, &password_hash))
            .returning(UserRow::as_returning())
            .get_result(c)
            .await)
        .map_err(StoreError::unique("email", ALREADY_A_MEMBER))?;
        Ok(row.into())
    }

    /// Sign-in lookup, the only user query not scoped by tenant: every account of
    /// `email` (at most [`MAX_ACCOUNTS_PER_EMAIL_TRIED`]), newest first. The
    /// caller checks the password against each and may show only the tenants of
    /// those it matched.
    pub async fn users_by_email(&self, email: &Email) -> Result<Vec<User>, StoreError> {
        let mut conn = self.read().await?;
        let rows: Vec<UserRow> = with_conn!(&mut conn, c => users::table
            .filter(users::email.eq(email.as_str()))
            .order((users::created_at.desc(), users::id.desc()))
            .limit(MAX_ACCOUNTS_PER_EMAIL_TRIED)
            .select(UserRow::as_select())
            .load(c)
            .await)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// The member of `tenant` with `email`, if any.
    pub async fn user_by_email(
        &self,
        tenant: &TenantId,
        email: &Email,
    ) -> Result<Option<User>, StoreError> {
        let mut conn = self.read().await?;
        let row: Option<UserRow> = with_conn!(&mut conn, c => users::table
            .filter(users::tenant_id.eq(tenant.as_str()))
            .filter(users::email.eq(email.as_str()))
            .select(UserRow::as_select())
            .first(c)
            .await
            .optional())?;
        Ok(row.map(Into::into))
    }

    pub async fn user(&self, tenant: &TenantId, id: &UserId) -> Result<User, StoreError> {
        let mut conn = self.read().await?;
        let row: UserRow = with_conn!(&mut conn, c => users::table
            .filter(users::tenant_id.eq(tenant.as_str()))
            .filter(users::id.eq(id.as_str()))
            .select(UserRow::as_select())
            .first(c)
            .await)
        .or_not_found("user")?;
        Ok(row.into())
    }

    pub async fn count_users(&self, tenant: &TenantId) -> Result<i64, StoreError> {
        let mut conn = self.read().await?;
        Ok(with_conn!(&mut conn, c => users::table
            .filter(users::tenant_id.eq(tenant.as_str()))
            .count()
            .get_result::<i64>(c)
            .await)?)
    }

    pub async fn users(&self, tenant: &TenantId) -> Result<Vec<User>, StoreError> {
        let mut conn = self.read().await?;
        let rows: Vec<UserRow> = with_conn!(&mut conn, c => users::table
            .filter(users::tenant_id.eq(tenant.as_str()))
            .order(users::created_at.asc())
            .select(UserRow::as_select())
            .load(c)
            .await)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    pub async fn set_password(
        &self,
        tenant: &TenantId,
        id: &UserId,
        password: &NewPassword,
    ) -> Result<(), StoreError> {
        let hash = password::hash_password(password.expose()).await?;
        let mut conn = self.write().await?;
        let changed = with_conn!(&mut conn, c => diesel::update(
                users::table.filter(users::tenant_id.eq(tenant.as_str())).filter(users::id.eq(id.as_str())),
            )
            .set(users::password_hash.eq(&hash))
            .execute(c)
            .await)?;
        if changed == 0 {
            return Err(StoreError::not_found("user"));
        }
        Ok(())
    }

    /// Changes a user's role; refuses (409 on `role`) to demote the tenant's last owner.
    pub async fn set_role(
        &self,
        tenant: &TenantId,
        id: &UserId,
        role: Role,
    ) -> Result<(), StoreError> {
        let mut conn = self.write().await?;
        in_transaction!(&mut conn, c => {
            lock_tenant!(c, tenant)?;
            let user = users::table
                .filter(users::tenant_id.eq(tenant.as_str()))
                .filter(users::id.eq(id.as_str()));
            let changed = if role == Role::Owner {
                diesel::update(user).set(users::role.eq(role.as_str())).execute(c).await?
            } else {
                diesel::update(user.filter(keeps_an_owner!(tenant, id)))
                    .set(users::role.eq(role.as_str()))
                    .execute(c)
                    .await?
            };
            if changed == 0 {
                return Err(unchanged_user_error!(c, tenant, id, "role"));
            }
            Ok(())
        })
    }

    /// Removes a user (their sessions go with them by cascade) and revokes the API
    /// keys they created; refuses (409 on `user`) to remove the tenant's last owner.
    pub async fn delete_user(&self, tenant: &TenantId, id: &UserId) -> Result<(), StoreError> {
        let mut conn = self.write().await?;
        in_transaction!(&mut conn, c => {
            lock_tenant!(c, tenant)?;
            let removed = diesel::delete(
                users::table
                    .filter(users::tenant_id.eq(tenant.as_str()))
                    .filter(users::id.eq(id.as_str()))
                    .filter(keeps_an_owner!(tenant, id)),
            )
            .execute(c)
            .await?;
            if removed == 0 {
                return Err(unchanged_user_error!(c, tenant, id, "user"));
            }
            diesel::update(
                api_keys::table
                    .filter(api_keys::tenant_id.eq(tenant.as_str()))
                    .filter(api_keys::created_by_user_id.eq(id.as_str()))
                    .filter(api_keys::revoked_at.is_null()),
            )
            .set(api_keys::revoked_at.eq(now()))
            .execute(c)
            .await?;
            Ok(())
        })
    }
}
