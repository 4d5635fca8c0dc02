//! Static segments: create, rename, delete, and their members listed.

use chrono::NaiveDateTime;
use diesel::dsl::count_star;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use std::collections::HashMap;

use super::{events, segment_stream, sync_consumer};
use crate::audit::AuditEvent;
use crate::error::OptionalExt;
use crate::ids::{SegmentId, SegmentSyncId, TenantId};
use crate::outbox::{StartAt, append_outbox, ensure_outbox_consumer};
use crate::schema::{segment_members, segment_numbers, segment_syncs, segments};
use crate::{Store, StoreError, in_transaction, insert_audit, lock_tenant, now, with_conn};

const NAME_TAKEN: &str = "is already used by another segment";

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = segments)]
struct SegmentRow {
    id: String,
    number: i64,
    name: String,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub id: SegmentId,
    /// Per tenant, from 1: what templates render as `{segment_id}`.
    pub number: i64,
    pub name: String,
    pub members: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

impl Segment {
    fn from_row(r: SegmentRow, members: i64) -> Self {
        Self {
            id: SegmentId::from_stored(r.id),
            number: r.number,
            name: r.name,
            members,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct Member {
    pub profile_id: String,
    pub added_at: NaiveDateTime,
}

impl Store {
    /// Creates a segment with the tenant's next number; every sync of "all
    /// segments" starts consuming its stream, from its `upsert_segment` entry.
    pub async fn create_segment_audited(
        &self,
        tenant: &TenantId,
        name: &str,
        audit: Option<&AuditEvent<'_>>,
    ) -> Result<Segment, StoreError> {
        let id = SegmentId::generate();
        let stream = segment_stream(&id);
        let at = now();
        let mut conn = self.write().await?;
        let row: SegmentRow = in_transaction!(&mut conn, c => {
            // Syncs of "all segments" are read under the tenant's lock, which
            // creating a sync takes too: no pair of them is missed.
            lock_tenant!(c, tenant)?;
            let number: i64 = diesel::insert_into(segment_numbers::table)
                .values((
                    segment_numbers::tenant_id.eq(tenant.as_str()),
                    segment_numbers::last_number.eq(1),
                ))
                .on_conflict(segment_numbers::tenant_id)
                .do_update()
                .set(segment_numbers::last_number.eq(segment_numbers::last_number + 1))
                .returning(segment_numbers::last_number)
                .get_result(c)
                .await
                .map_err(StoreError::parent_gone("tenant"))?;
            let row = diesel::insert_into(segments::table)
                .values((
                    segments::id.eq(id.as_str()),
                    segments::tenant_id.eq(tenant.as_str()),
                    segments::number.eq(number),
                    segments::name.eq(name),
                    segments::created_at.eq(at),
                    segments::updated_at.eq(at),
                ))
                .returning(SegmentRow::as_returning())
                .get_result(c)
                .await
                .map_err(StoreError::unique("name", NAME_TAKEN))?;
            let syncs: Vec<(String, bool)> = segment_syncs::table
                .filter(segment_syncs::tenant_id.eq(tenant.as_str()))
                .filter(segment_syncs::all_segments.eq(true))
                .select((segment_syncs::id, segment_syncs::active))
                .load(c)
                .await?;
            for (sync, active) in syncs {
                let consumer = sync_consumer(&SegmentSyncId::from_stored(sync));
                ensure_outbox_consumer!(c, tenant, &consumer, &stream, StartAt::End, !active)?;
            }
            if let Some(event) = audit {
                insert_audit!(c, tenant, event)?;
            }
            let entry = events::about_segment("upsert_segment", row.number, &row.name);
            append_outbox!(c, tenant, &stream, &[entry])?;
            Ok(row)
        })?;
        drop(conn);
        self.outbox_appended(tenant, &stream);
        Ok(Segment::from_row(row, 0))
    }

    pub async fn segment(&self, tenant: &TenantId, id: &SegmentId) -> Result<Segment, StoreError> {
        let mut conn = self.read().await?;
        let (row, members) = with_conn!(&mut conn, c => async {
            let row: SegmentRow = segments::table
                .filter(segments::tenant_id.eq(tenant.as_str()))
                .filter(segments::id.eq(id.as_str()))
                .select(SegmentRow::as_select())
                .first(&mut *c)
                .await
                .or_not_found("segment")?;
            let members: i64 = segment_members::table
                .filter(segment_members::segment_id.eq(id.as_str()))
                .count()
                .get_result(&mut *c)
                .await?;
            Ok::<_, StoreError>((row, members))
        }
        .await)?;
        Ok(Segment::from_row(row, members))
    }

    /// One page of the tenant's segments by number: those after `after`, at most
    /// `limit`, each with its member count.
    pub async fn segments(
        &self,
        tenant: &TenantId,
        after: Option<i64>,
        limit: i64,
    ) -> Result<Vec<Segment>, StoreError> {
        let mut conn = self.read().await?;
        let (rows, counts) = with_conn!(&mut conn, c => async {
            let rows: Vec<SegmentRow> = segments::table
                .filter(segments::tenant_id.eq(tenant.as_str()))
                .filter(segments::number.gt(after.unwrap_or(0)))
                .order(segments::number.asc())
                .limit(limit)
                .select(SegmentRow::as_select())
                .load(&mut *c)
                .await?;
            let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
            let counts: Vec<(String, i64)> = segment_members::table
                .filter(segment_members::segment_id.eq_any(&ids))
                .group_by(segment_members::segment_id)
                .select((segment_members::segment_id, count_star()))
                .load(&mut *c)
                .await?;
            Ok::<_, StoreError>((rows, counts))
        }
        .await)?;
        let counts: HashMap<String, i64> = counts.into_iter().collect();
        Ok(rows
            .into_iter()
            .map(|r| {
                let members = counts.get(&r.id).copied().unwrap_or(0);
                Segment::from_row(r, members)
            })
            .collect())
    }

    /// Renames a segment (`upsert_segment` on its stream; nothing when the name
    /// is the same).
    pub async fn rename_segment_audited(
        &self,
        tenant: &TenantId,
        id: &SegmentId,
        name: &str,
        audit: Option<&AuditEvent<'_>>,
    ) -> Result<(), StoreError> {
        let stream = segment_stream(id);
        let mut conn = self.write().await?;
        let renamed = in_transaction!(&mut conn, c => {
            let current: String = segments::table
                .filter(segments::tenant_id.eq(tenant.as_str()))
                .filter(segments::id.eq(id.as_str()))
                .select(segments::name)
                .first(c)
                .await
                .or_not_found("segment")?;
            if current == name {
                return Ok(false);
            }
            let number: i64 = diesel::update(
                segments::table
                    .filter(segments::tenant_id.eq(tenant.as_str()))
                    .filter(segments::id.eq(id.as_str())),
            )
            .set((segments::name.eq(name), segments::updated_at.eq(now())))
            .returning(segments::number)
            .get_result(c)
            .await
            .map_err(StoreError::unique("name", NAME_TAKEN))?;
            if let Some(event) = audit {
                insert_audit!(c, tenant, event)?;
            }
            let entry = events::about_segment("upsert_segment", number, name);
            append_outbox!(c, tenant, &stream, &[entry])?;
            Ok(true)
        })?;
        drop(conn);
        if renamed {
            self.outbox_appended(tenant, &stream);
        }
        Ok(())
    }

    /// Deletes a segment and its members (`delete_segment` on its stream). The
    /// syncs' consumers of the stream stay, to apply that entry: the executor
    /// removes them once it has.
    pub async fn delete_segment_audited(
        &self,
        tenant: &TenantId,
        id: &SegmentId,
        audit: Option<&AuditEvent<'_>>,
    ) -> Result<(), StoreError> {
        let stream = segment_stream(id);
        let mut conn = self.write().await?;
        in_transaction!(&mut conn, c => {
            let (number, name): (i64, String) = diesel::update(
                segments::table
                    .filter(segments::tenant_id.eq(tenant.as_str()))
                    .filter(segments::id.eq(id.as_str())),
            )
            .set(segments::updated_at.eq(segments::updated_at))
            .returning((segments::number, segments::name))
            .get_result(c)
            .await
            .or_not_found("segment")?;
            diesel::delete(segment_members::table.filter(segment_members::segment_id.eq(id.as_str())))
                .execute(c)
                .await?;
            diesel::delete(segments::table.filter(segments::id.eq(id.as_str())))
                .execute(c)
                .await?;
            if let Some(event) = audit {
                insert_audit!(c, tenant, event)?;
            }
            let entry = events::about_segment("delete_segment", number, &name);
            append_outbox!(c, tenant, &stream, &[entry])?;
            Ok(())
        })?;
        drop(conn);
        self.outbox_appended(tenant, &stream);
        Ok(())
    }

    /// One page of a segment's members by profile id: those after `after`, at
    /// most `limit`.
    pub async fn segment_members(
        &self,
        tenant: &TenantId,
        id: &SegmentId,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Member>, StoreError> {
        let mut conn = self.read().await?;
        with_conn!(&mut conn, c => async {
            segments::table
                .filter(segments::tenant_id.eq(tenant.as_str()))
                .filter(segments::id.eq(id.as_str()))
                .select(segments::id)
                .first::<String>(&mut *c)
                .await
                .or_not_found("segment")?;
            Ok(segment_members::table
                .filter(segment_members::segment_id.eq(id.as_str()))
                .filter(segment_members::profile_id.gt(after.unwrap_or("")))
                .order(segment_members::profile_id.asc())
                .limit(limit)
                .select((segment_members::profile_id, segment_members::added_at))
                .load::<Member>(&mut *c)
                .await?)
        }
        .await)
    }
}
