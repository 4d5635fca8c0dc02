//! What a sync's executor ran, for its statistics: successes and failures over
//! time, and the recent errors with the SQL that failed.

use chrono::{Duration, NaiveDateTime};
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use diesel_async::RunQueryDsl;

use crate::error::OptionalExt;
use crate::ids::{SegmentId, SegmentSyncId, SyncBatchId, TenantId};
use crate::schema::{segment_sync_batches, segment_syncs};
use crate::{Store, StoreError, with_conn};

/// How many failures [`SyncStats::recent_errors`] lists.
const RECENT_ERRORS: i64 = 20;

/// The kind of event a batch exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncEvent {
    Add,
    Remove,
    Clear,
    UpsertSegment,
    DeleteSegment,
    Resync,
}

impl SyncEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Add => "add",
            Self::Remove => "remove",
            Self::Clear => "clear",
            Self::UpsertSegment => "upsert_segment",
            Self::DeleteSegment => "delete_segment",
            Self::Resync => "resync",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncOutcome {
    Succeeded,
    Failed,
}

impl SyncOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }
}

/// One statement a sync ran.
#[derive(Debug, Clone)]
pub struct SyncBatch<'a> {
    pub sync_id: &'a SegmentSyncId,
    pub segment_id: Option<&'a SegmentId>,
    pub event: SyncEvent,
    /// Outbox entries the statement covered.
    pub entries: i64,
    pub rows_affected: i64,
    pub duration_ms: i64,
    pub outcome: SyncOutcome,
    pub error: Option<&'a str>,
    pub failed_sql: Option<&'a str>,
    pub at: NaiveDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncError {
    pub at: NaiveDateTime,
    pub message: String,
    pub sql: Option<String>,
}

/// Successes and failures from `start` for one bucket's length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsBucket {
    pub start: NaiveDateTime,
    pub succeeded: i64,
    pub failed: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncStats {
    pub succeeded: i64,
    pub failed: i64,
    pub rows_affected: i64,
    /// Newest first.
    pub recent_errors: Vec<SyncError>,
    /// The range cut into buckets of [`SyncStats::bucket`], oldest first.
    pub series: Vec<StatsBucket>,
    pub bucket: Duration,
}

/// A bucket length that cuts `span` into at most about 60 buckets.
fn bucket_for(span: Duration) -> Duration {
    [
        Duration::minutes(1),
        Duration::minutes(5),
        Duration::minutes(15),
        Duration::hours(1),
        Duration::hours(6),
        Duration::days(1),
        Duration::days(7),
    ]
    .into_iter()
    .find(|step| span <= *step * 60)
    .unwrap_or(Duration::days(30))
}

impl Store {
    /// Records one statement a sync ran (its executor calls this).
    pub async fn record_sync_batch(
        &self,
        tenant: &TenantId,
        batch: &SyncBatch<'_>,
    ) -> Result<(), StoreError> {
        let mut conn = self.write().await?;
        with_conn!(&mut conn, c => diesel::insert_into(segment_sync_batches::table)
            .values((
                segment_sync_batches::id.eq(SyncBatchId::generate().as_str()),
                segment_sync_batches::tenant_id.eq(tenant.as_str()),
                segment_sync_batches::sync_id.eq(batch.sync_id.as_str()),
                segment_sync_batches::segment_id.eq(batch.segment_id.map(SegmentId::as_str)),
                segment_sync_batches::event.eq(batch.event.as_str()),
                segment_sync_batches::entries.eq(batch.entries),
                segment_sync_batches::rows_affected.eq(batch.rows_affected),
                segment_sync_batches::duration_ms.eq(batch.duration_ms),
                segment_sync_batches::outcome.eq(batch.outcome.as_str()),
                segment_sync_batches::error.eq(batch.error),
                segment_sync_batches::failed_sql.eq(batch.failed_sql),
                segment_sync_batches::at.eq(batch.at),
            ))
            .execute(c)
            .await)
        .map_err(StoreError::parent_gone("segment sync"))?;
        Ok(())
    }

    /// A sync's statements from `from` (inclusive) to `to` (exclusive).
    pub async fn sync_stats(
        &self,
        tenant: &TenantId,
        sync: &SegmentSyncId,
        from: NaiveDateTime,
        to: NaiveDateTime,
    ) -> Result<SyncStats, StoreError> {
        let bucket = bucket_for(to - from);
        let mut conn = self.read().await?;
        let (totals, errors, points) = with_conn!(&mut conn, c => async {
            segment_syncs::table
                .filter(segment_syncs::tenant_id.eq(tenant.as_str()))
                .filter(segment_syncs::id.eq(sync.as_str()))
                .select(segment_syncs::id)
                .first::<String>(&mut *c)
                .await
                .or_not_found("segment sync")?;
            let in_range = segment_sync_batches::table
                .filter(segment_sync_batches::sync_id.eq(sync.as_str()))
                .filter(segment_sync_batches::at.ge(from))
                .filter(segment_sync_batches::at.lt(to));
            let totals: Vec<(String, i64, i64)> = in_range
                .group_by(segment_sync_batches::outcome)
                .select((
                    segment_sync_batches::outcome,
                    sql::<BigInt>("CAST(COUNT(*) AS BIGINT)"),
                    // PostgreSQL sums BIGINT into NUMERIC; both read back as BIGINT.
                    sql::<BigInt>("CAST(COALESCE(SUM(rows_affected), 0) AS BIGINT)"),
                ))
                .load(&mut *c)
                .await?;
            let errors: Vec<(NaiveDateTime, Option<String>, Option<String>)> = in_range
                .filter(segment_sync_batches::outcome.eq(SyncOutcome::Failed.as_str()))
                .order((segment_sync_batches::at.desc(), segment_sync_batches::id.desc()))
                .limit(RECENT_ERRORS)
                .select((
                    segment_sync_batches::at,
                    segment_sync_batches::error,
                    segment_sync_batches::failed_sql,
                ))
                .load(&mut *c)
                .await?;
            let points: Vec<(NaiveDateTime, String)> = in_range
                .select((segment_sync_batches::at, segment_sync_batches::outcome))
                .load(&mut *c)
                .await?;
            Ok::<_, StoreError>((totals, errors, points))
        }
        .await)?;
        let count = |outcome: SyncOutcome| {
            totals
                .iter()
                .filter(|(o, _, _)| o == outcome.as_str())
                .map(|(_, n, _)| *n)
                .sum::<i64>()
        };
        let buckets = ((to - from).num_seconds().max(0) / bucket.num_seconds().max(1) + 1) as usize;
        let mut series: Vec<StatsBucket> = (0..buckets)
            .map(|i| StatsBucket {
                start: from + bucket * i as i32,
                succeeded: 0,
                failed: 0,
            })
            .filter(|b| b.start < to)
            .collect();
        for (at, outcome) in points {
            let index = ((at - from).num_seconds() / bucket.num_seconds().max(1)) as usize;
            if let Some(b) = series.get_mut(index) {
                if outcome == SyncOutcome::Failed.as_str() {
                    b.failed += 1;
                } else {
                    b.succeeded += 1;
                }
            }
        }
        Ok(SyncStats {
            succeeded: count(SyncOutcome::Succeeded),
            failed: count(SyncOutcome::Failed),
            rows_affected: totals
                .iter()
                .filter(|(o, _, _)| o == SyncOutcome::Succeeded.as_str())
                .map(|(_, _, rows)| *rows)
                .sum(),
            recent_errors: errors
                .into_iter()
                .map(|(at, message, sql)| SyncError {
                    at,
                    message: message.unwrap_or_default(),
                    sql,
                })
                .collect(),
            series,
            bucket,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cut_a_range_into_at_most_about_sixty() {
        assert_eq!(bucket_for(Duration::hours(1)), Duration::minutes(1));
        assert_eq!(bucket_for(Duration::hours(24)), Duration::hours(1));
        assert_eq!(bucket_for(Duration::days(30)), Duration::days(1));
    }
}
