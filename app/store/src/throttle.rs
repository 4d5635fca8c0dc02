//! Throttling of password guesses and sign-ups: each attempt on a key (an email, a
//! client network, a user's password confirmations) is counted *before* it is
//! checked, in one statement that also refuses it once the window's limit is
//! reached, so parallel attempts cannot slip past. Reaching the limit locks the
//! key; each lock since the key's last success lasts twice as long as the one
//! before, up to a cap.

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text, Timestamp};
use diesel_async::RunQueryDsl;

use crate::db::Pooled;
use crate::schema::login_failures;
use crate::{Store, StoreError, now, with_conn};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottlePolicy {
    /// Attempts allowed in one window; the last of them locks the key.
    pub max_attempts: i64,
    pub window: Duration,
    /// The first lock's length; each further lock doubles it.
    pub lock_base: Duration,
    /// Doublings at most, so no lock outlasts `lock_base * 2^max_doublings`.
    pub max_doublings: u32,
}

impl ThrottlePolicy {
    pub const PER_EMAIL: Self = Self {
        max_attempts: 5,
        window: Duration::minutes(15),
        lock_base: Duration::minutes(15),
        max_doublings: 4,
    };
    pub const PER_ADDRESS: Self = Self {
        max_attempts: 20,
        window: Duration::minutes(15),
        lock_base: Duration::minutes(15),
        max_doublings: 4,
    };
    pub const SIGNUP_PER_ADDRESS: Self = Self {
        max_attempts: 10,
        window: Duration::hours(1),
        lock_base: Duration::hours(1),
        max_doublings: 0,
    };
    pub const PASSWORD_CONFIRMATION: Self = Self {
        max_attempts: 5,
        window: Duration::minutes(15),
        lock_base: Duration::minutes(15),
        max_doublings: 4,
    };

    pub fn with_lock_base(self, lock_base: Duration) -> Self {
        Self { lock_base, ..self }
    }

    pub fn with_max_attempts(self, max_attempts: i64) -> Self {
        Self {
            max_attempts,
            ..self
        }
    }

    /// How long the lock after `earlier_locks` previous ones lasts.
    pub fn lock_length(&self, earlier_locks: i64) -> Duration {
        let doublings = u32::try_from(earlier_locks.max(0))
            .unwrap_or(u32::MAX)
            .min(self.max_doublings);
        self.lock_base * 2_i32.saturating_pow(doublings)
    }
}

/// Whether an attempt may go ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    Allowed,
    Locked { until: NaiveDateTime },
}

#[derive(QueryableByName)]
struct Counted {
    #[diesel(sql_type = BigInt)]
    failures: i64,
    #[diesel(sql_type = BigInt)]
    locks: i64,
}

/// Counts an attempt unless the key is locked or its window is used up. A window
/// starts afresh once it is over or the key's lock has ended.
fn count_attempt_sql(pooled: &Pooled) -> String {
    let p: Vec<String> = match pooled {
        Pooled::Pg(_) => (1..=5).map(|i| format!("${i}")).collect(),
        Pooled::Sqlite(_) => (1..=5).map(|i| format!("?{i}")).collect(),
    };
    let (key, at, window_ended, max, at_again) = (&p[0], &p[1], &p[2], &p[3], &p[4]);
    let fresh = format!(
        "((login_failures.locked_until IS NULL AND login_failures.window_start <= {window_ended}) \
         OR login_failures.locked_until <= {at_again})"
    );
    format!(
        "INSERT INTO login_failures (throttle_key, failures, window_start, locked_until, locks) \
         VALUES ({key}, 1, {at}, NULL, 0) \
         ON CONFLICT (throttle_key) DO UPDATE SET \
           failures = CASE WHEN {fresh} THEN 1 ELSE login_failures.failures + 1 END, \
           window_start = CASE WHEN {fresh} THEN excluded.window_start ELSE login_failures.window_start END, \
           locked_until = CASE WHEN {fresh} THEN NULL ELSE login_failures.locked_until END \
         WHERE {fresh} OR (login_failures.locked_until IS NULL AND login_failures.failures < {max}) \
         RETURNING failures, locks"
    )
}

impl Store {
    /// Counts one attempt on `key` and says whether it may go ahead. The attempt
    /// that reaches the policy's limit is allowed and locks the key.
    pub async fn begin_attempt(
        &self,
        key: &str,
        policy: ThrottlePolicy,
    ) -> Result<Attempt, StoreError> {
        let at = now();
        let mut conn = self.write().await?;
        let sql = count_attempt_sql(&conn.pooled);
        let counted: Option<Counted> = with_conn!(&mut conn, c => diesel::sql_query(sql.as_str())
            .bind::<Text, _>(key)
            .bind::<Timestamp, _>(at)
            .bind::<Timestamp, _>(at - policy.window)
            .bind::<BigInt, _>(policy.max_attempts)
            .bind::<Timestamp, _>(at)
            .get_result(c)
            .await
            .optional())?;
        match counted {
            Some(Counted { failures, locks }) if failures >= policy.max_attempts => {
                // No other attempt can pass in between: the window is used up.
                let until = at + policy.lock_length(locks);
                with_conn!(&mut conn, c => diesel::update(login_failures::table.find(key))
                    .set((
                        login_failures::locked_until.eq(Some(until)),
                        login_failures::locks.eq(login_failures::locks + 1),
                    ))
                    .execute(c)
                    .await)?;
                Ok(Attempt::Allowed)
            }
            Some(_) => Ok(Attempt::Allowed),
            None => {
                let locked: Option<Option<NaiveDateTime>> = with_conn!(&mut conn, c => login_failures::table
                    .find(key)
                    .select(login_failures::locked_until)
                    .first(c)
                    .await
                    .optional())?;
                let until = locked
                    .flatten()
                    .filter(|until| *until > at)
                    .unwrap_or(at + policy.lock_base);
                Ok(Attempt::Locked { until })
            }
        }
    }

    /// When `key` is locked, the time the lock ends.
    pub async fn attempts_locked_until(
        &self,
        key: &str,
    ) -> Result<Option<NaiveDateTime>, StoreError> {
        let mut conn = self.read().await?;
        let locked: Option<Option<NaiveDateTime>> = with_conn!(&mut conn, c => login_failures::table
            .find(key)
            .select(login_failures::locked_until)
            .first(c)
            .await
            .optional())?;
        Ok(locked.flatten().filter(|until| *until > now()))
    }

    /// Takes back a counted attempt that turned out legitimate (a shared address
    /// should not run out of attempts through successful sign-ins).
    pub async fn forgive_attempt(&self, key: &str) -> Result<(), StoreError> {
        let mut conn = self.write().await?;
        with_conn!(&mut conn, c => diesel::update(
            login_failures::table
                .find(key)
                .filter(login_failures::failures.gt(0)),
        )
        .set(login_failures::failures.eq(login_failures::failures - 1))
        .execute(c)
        .await)?;
        Ok(())
    }

    /// Forgets `key`'s attempts, lock and backoff: after a success or a reset.
    pub async fn clear_attempts(&self, key: &str) -> Result<(), StoreError> {
        let mut conn = self.write().await?;
        with_conn!(&mut conn, c => diesel::delete(login_failures::table.find(key)).execute(c).await)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_double_up_to_the_cap() {
        let policy = ThrottlePolicy::PER_EMAIL.with_lock_base(Duration::seconds(10));
        let lengths: Vec<i64> = (0..7)
            .map(|n| policy.lock_length(n).num_seconds())
            .collect();
        assert_eq!(lengths, [10, 20, 40, 80, 160, 160, 160]);
    }
}
