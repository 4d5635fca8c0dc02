//! Login throttling: after too many failures for one key (an email, or a client
//! address) within a window, further attempts are refused until the lock ends.

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::schema::login_failures;
use crate::{Store, StoreError, now, with_conn};

#[derive(Debug, Clone, Copy)]
pub struct ThrottlePolicy {
    pub max_failures: i64,
    pub window: Duration,
    pub lockout: Duration,
}

impl ThrottlePolicy {
    pub const PER_EMAIL: Self = Self {
        max_failures: 5,
        window: Duration::minutes(15),
        lockout: Duration::minutes(15),
    };
    pub const PER_ADDRESS: Self = Self {
        max_failures: 20,
        window: Duration::minutes(15),
        lockout: Duration::minutes(15),
    };
}

impl Store {
    /// When `key` is locked out, the time the lock ends.
    pub async fn login_locked_until(&self, key: &str) -> Result<Option<NaiveDateTime>, StoreError> {
        let mut conn = self.read().await?;
        let locked: Option<Option<NaiveDateTime>> = with_conn!(&mut conn, c => login_failures::table
            .find(key)
            .select(login_failures::locked_until)
            .first(c)
            .await
            .optional())?;
        Ok(locked.flatten().filter(|until| *until > now()))
    }

    /// Counts a failure against `key`, locking it once the policy's limit is reached.
    pub async fn record_login_failure(
        &self,
        key: &str,
        policy: ThrottlePolicy,
    ) -> Result<(), StoreError> {
        let at = now();
        let mut conn = self.write().await?;
        let current: Option<(i64, NaiveDateTime)> = with_conn!(&mut conn, c => login_failures::table
            .find(key)
            .select((login_failures::failures, login_failures::window_start))
            .first(c)
            .await
            .optional())?;
        let (failures, window_start) = match current {
            Some((n, start)) if at - start < policy.window => (n + 1, start),
            _ => (1, at),
        };
        let locked_until = (failures >= policy.max_failures).then(|| at + policy.lockout);
        with_conn!(&mut conn, c => diesel::insert_into(login_failures::table)
            .values((
                login_failures::throttle_key.eq(key),
                login_failures::failures.eq(failures),
                login_failures::window_start.eq(window_start),
                login_failures::locked_until.eq(locked_until),
            ))
            .on_conflict(login_failures::throttle_key)
            .do_update()
            .set((
                login_failures::failures.eq(failures),
                login_failures::window_start.eq(window_start),
                login_failures::locked_until.eq(locked_until),
            ))
            .execute(c)
            .await)?;
        Ok(())
    }

    pub async fn clear_login_failures(&self, key: &str) -> Result<(), StoreError> {
        let mut conn = self.write().await?;
        with_conn!(&mut conn, c => diesel::delete(login_failures::table.find(key)).execute(c).await)?;
        Ok(())
    }
}
