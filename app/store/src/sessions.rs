//! Browser sessions: the cookie holds a random token, the store only its hash.

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::accounts::{User, UserRow};
use crate::ids::{SessionId, TenantId, UserId};
use crate::schema::{sessions, users};
use crate::secret::{hash_token, random_token};
use crate::{Store, StoreError, now, with_conn};

pub const SESSION_LIFETIME: Duration = Duration::days(14);

/// A signed-in browser: the session, its user and the user's tenant.
#[derive(Debug, Clone)]
pub struct Session {
    pub id: SessionId,
    pub expires_at: NaiveDateTime,
    pub user: User,
}

impl Store {
    /// Starts a session for `user`; returns it with the token for the cookie.
    pub async fn create_session(&self, user: &User) -> Result<(Session, String), StoreError> {
        let token = random_token("sess");
        let id = SessionId::generate();
        let created_at = now();
        let expires_at = created_at + SESSION_LIFETIME;
        let mut conn = self.write().await?;
        with_conn!(&mut conn, c => diesel::insert_into(sessions::table)
            .values((
                sessions::id.eq(id.as_str()),
                sessions::token_hash.eq(hash_token(&token)),
                sessions::user_id.eq(user.id.as_str()),
                sessions::tenant_id.eq(user.tenant_id.as_str()),
                sessions::created_at.eq(created_at),
                sessions::expires_at.eq(expires_at),
            ))
            .execute(c)
            .await)?;
        Ok((
            Session {
                id,
                expires_at,
                user: user.clone(),
            },
            token,
        ))
    }

    /// The live session behind a cookie token, if any.
    pub async fn session_by_token(&self, token: &str) -> Result<Option<Session>, StoreError> {
        let mut conn = self.read().await?;
        let found: Option<(String, NaiveDateTime, UserRow)> = with_conn!(&mut conn, c => sessions::table
            .inner_join(users::table)
            .filter(sessions::token_hash.eq(hash_token(token)))
            .filter(sessions::expires_at.gt(now()))
            .select((sessions::id, sessions::expires_at, UserRow::as_select()))
            .first(c)
            .await
            .optional())?;
        Ok(found.map(|(id, expires_at, user)| Session {
            id: SessionId::from_stored(id),
            expires_at,
            user: user.into(),
        }))
    }

    pub async fn delete_session(&self, id: &SessionId) -> Result<(), StoreError> {
        let mut conn = self.write().await?;
        with_conn!(&mut conn, c => diesel::delete(sessions::table.find(id.as_str())).execute(c).await)?;
        Ok(())
    }

    /// Signs a user out everywhere but `keep` (after a password change).
    pub async fn delete_other_sessions(
        &self,
        tenant: &TenantId,
        user: &UserId,
        keep: &SessionId,
    ) -> Result<usize, StoreError> {
        let mut conn = self.write().await?;
        Ok(with_conn!(&mut conn, c => diesel::delete(
                sessions::table
                    .filter(sessions::tenant_id.eq(tenant.as_str()))
                    .filter(sessions::user_id.eq(user.as_str()))
                    .filter(sessions::id.ne(keep.as_str())),
            )
            .execute(c)
            .await)?)
    }

    /// Housekeeping: drops sessions past their expiry; returns how many.
    pub async fn delete_expired_sessions(&self) -> Result<usize, StoreError> {
        let mut conn = self.write().await?;
        Ok(
            with_conn!(&mut conn, c => diesel::delete(sessions::table.filter(sessions::expires_at.le(now())))
            .execute(c)
            .await)?,
        )
    }

    pub async fn count_sessions(&self) -> Result<i64, StoreError> {
        let mut conn = self.read().await?;
        Ok(with_conn!(&mut conn, c => sessions::table.count().get_result::<i64>(c).await)?)
    }

    /// Test and operator hook: moves a session's expiry (used to prove cleanup works).
    pub async fn set_session_expiry(
        &self,
        id: &SessionId,
        expires_at: NaiveDateTime,
    ) -> Result<(), StoreError> {
        let mut conn = self.write().await?;
        with_conn!(&mut conn, c => diesel::update(sessions::table.find(id.as_str()))
            .set(sessions::expires_at.eq(expires_at))
            .execute(c)
            .await)?;
        Ok(())
    }
}
