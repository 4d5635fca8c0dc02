//! Fenced leases: the one way a piece of work claims a resource for a while —
//! a run, and next a gateway hand-out, a capture loop or a singleton.
//!
//! A lease is a row (resource, owner, epoch, expiry). Each acquisition has an
//! owner token of its own, and taking over an expired lease bumps the epoch, so
//! a holder that stalled past its expiry can never pass for the new one. Every
//! transaction that writes under a lease starts with [`hold_lease!`]: it checks
//! owner, epoch and expiry and locks the lease row in one statement, so until
//! that transaction commits no one can take the lease over (PostgreSQL waits on
//! the row; SQLite has one writer). A lost lease is [`StoreError::LeaseLost`],
//! and the work stops at once.

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::schema::leases;
use crate::{Store, StoreError, in_transaction, now, with_conn};

/// A held lease; pass it to every store write made under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub resource: String,
    pub owner: String,
    pub epoch: i64,
    pub expires_at: NaiveDateTime,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = leases)]
struct LeaseRow {
    resource: String,
    owner: String,
    epoch: i64,
    expires_at: NaiveDateTime,
}

impl From<LeaseRow> for Lease {
    fn from(r: LeaseRow) -> Self {
        Self {
            resource: r.resource,
            owner: r.owner,
            epoch: r.epoch,
            expires_at: r.expires_at,
        }
    }
}

/// An owner token unique to one acquisition: `<who>/<random>`.
pub fn owner_token(who: &str) -> String {
    format!("{who}/{}", uuid::Uuid::new_v4().simple())
}

/// Proves, inside a transaction on connection `$c`, that `$lease` is still held,
/// and locks its row until the transaction ends; otherwise returns
/// `Err(StoreError::LeaseLost)` from the enclosing closure.
#[macro_export]
macro_rules! hold_lease {
    ($c:expr, $lease:expr) => {{
        use $crate::schema::leases;
        let lease: &$crate::leases::Lease = $lease;
        let held = ::diesel::update(
            leases::table
                .filter(leases::resource.eq(&lease.resource))
                .filter(leases::owner.eq(&lease.owner))
                .filter(leases::epoch.eq(lease.epoch))
                .filter(leases::expires_at.ge($crate::now())),
        )
        .set(leases::expires_at.eq(leases::expires_at))
        .execute(&mut *$c)
        .await?;
        if held == 0 {
            return Err($crate::StoreError::LeaseLost {
                resource: lease.resource.clone(),
            });
        }
    }};
}

/// Inside an open transaction on `$c` (after [`hold_lease!`]): gives the lease
/// up together with the work's last writes.
#[macro_export]
macro_rules! release_lease_in {
    ($c:expr, $lease:expr) => {{
        use $crate::schema::leases;
        let lease: &$crate::leases::Lease = $lease;
        ::diesel::delete(
            leases::table
                .filter(leases::resource.eq(&lease.resource))
                .filter(leases::owner.eq(&lease.owner))
                .filter(leases::epoch.eq(lease.epoch)),
        )
        .execute(&mut *$c)
        .await?;
    }};
}

/// Inside an open transaction on `$c`: takes the lease on `$resource` for
/// `$owner` until `$ttl` from now — a new one (epoch 1) or an expired one taken
/// over (epoch + 1). Evaluates to `Option<Lease>`: `None` while someone else
/// holds it.
#[macro_export]
macro_rules! acquire_lease {
    ($c:expr, $resource:expr, $owner:expr, $ttl:expr) => {{
        use $crate::schema::leases;
        let (resource, owner): (&str, &str) = ($resource, $owner);
        let at = $crate::now();
        let until = at + $ttl;
        let taken: Option<i64> = ::diesel::update(
            leases::table
                .filter(leases::resource.eq(resource))
                .filter(leases::expires_at.lt(at)),
        )
        .set((
            leases::owner.eq(owner),
            leases::epoch.eq(leases::epoch + 1i64),
            leases::acquired_at.eq(at),
            leases::expires_at.eq(until),
        ))
        .returning(leases::epoch)
        .get_result(&mut *$c)
        .await
        .optional()?;
        let epoch = match taken {
            Some(epoch) => Some(epoch),
            None => {
                let inserted = ::diesel::insert_into(leases::table)
                    .values((
                        leases::resource.eq(resource),
                        leases::owner.eq(owner),
                        leases::epoch.eq(1i64),
                        leases::acquired_at.eq(at),
                        leases::expires_at.eq(until),
                    ))
                    .on_conflict_do_nothing()
                    .execute(&mut *$c)
                    .await?;
                (inserted == 1).then_some(1i64)
            }
        };
        epoch.map(|epoch| $crate::leases::Lease {
            resource: resource.to_string(),
            owner: owner.to_string(),
            epoch,
            expires_at: until,
        })
    }};
}

impl Store {
    /// Takes the lease on `resource` for `ttl`: a new one (epoch 1), or an expired
    /// one taken over (epoch + 1). `None` while another owner holds it.
    pub async fn acquire_lease(
        &self,
        resource: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<Option<Lease>, StoreError> {
        let mut conn = self.write().await?;
        in_transaction!(&mut conn, c => Ok(acquire_lease!(c, resource, owner, ttl)))
    }

    /// Extends a held lease to `ttl` from now; [`StoreError::LeaseLost`] when it
    /// expired or was taken over.
    pub async fn renew_lease(&self, lease: &Lease, ttl: Duration) -> Result<Lease, StoreError> {
        let until = now() + ttl;
        let mut conn = self.write().await?;
        let renewed: Option<LeaseRow> = with_conn!(&mut conn, c => diesel::update(
                leases::table
                    .filter(leases::resource.eq(&lease.resource))
                    .filter(leases::owner.eq(&lease.owner))
                    .filter(leases::epoch.eq(lease.epoch))
                    .filter(leases::expires_at.ge(now())),
            )
            .set(leases::expires_at.eq(until))
            .returning(LeaseRow::as_returning())
            .get_result(c)
            .await
            .optional())?;
        renewed
            .map(Lease::from)
            .ok_or_else(|| StoreError::LeaseLost {
                resource: lease.resource.clone(),
            })
    }

    /// Gives a lease up (a no-op when it was already lost).
    pub async fn release_lease(&self, lease: &Lease) -> Result<(), StoreError> {
        let mut conn = self.write().await?;
        with_conn!(&mut conn, c => diesel::delete(
                leases::table
                    .filter(leases::resource.eq(&lease.resource))
                    .filter(leases::owner.eq(&lease.owner))
                    .filter(leases::epoch.eq(lease.epoch)),
            )
            .execute(c)
            .await)?;
        Ok(())
    }

    /// Removes leases expired for longer than `grace`: no holder can write under
    /// an expired lease, so they only take room.
    pub async fn remove_stale_leases(&self, grace: Duration) -> Result<usize, StoreError> {
        let mut conn = self.write().await?;
        Ok(with_conn!(&mut conn, c => diesel::delete(
                leases::table.filter(leases::expires_at.lt(now() - grace)),
            )
            .execute(c)
            .await)?)
    }
}
