//! Adding, removing and clearing a segment's members, each change with its
//! outbox entries.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde_json::Value;
use std::collections::{HashMap, HashSet};

use super::{CHUNK, ProfileId, events, segment_stream};
use crate::audit::AuditEvent;
use crate::error::OptionalExt;
use crate::ids::{SegmentId, TenantId};
use crate::outbox::append_outbox;
use crate::schema::{profiles, segment_members, segments};
use crate::{Store, StoreError, in_transaction, insert_audit, now};

#[derive(Insertable)]
#[diesel(table_name = segment_members, treat_none_as_default_value = false)]
pub(crate) struct NewMember<'a> {
    tenant_id: &'a str,
    segment_id: &'a str,
    profile_id: &'a str,
    added_at: NaiveDateTime,
}

/// Inserts members that are not members yet; returns the profile ids inserted.
pub(crate) trait InsertMembers {
    fn insert_members(
        &mut self,
        rows: &[NewMember<'_>],
    ) -> impl std::future::Future<Output = QueryResult<Vec<String>>> + Send;
}

impl InsertMembers for diesel_async::AsyncPgConnection {
    async fn insert_members(&mut self, rows: &[NewMember<'_>]) -> QueryResult<Vec<String>> {
        diesel::insert_into(segment_members::table)
            .values(rows)
            .on_conflict_do_nothing()
            .returning(segment_members::profile_id)
            .get_results(self)
            .await
    }
}

impl InsertMembers for crate::db::SqliteConn {
    async fn insert_members(&mut self, rows: &[NewMember<'_>]) -> QueryResult<Vec<String>> {
        let mut inserted = Vec::new();
        for row in rows {
            let added = diesel::insert_into(segment_members::table)
                .values(row)
                .on_conflict_do_nothing()
                .execute(self)
                .await?;
            if added > 0 {
                inserted.push(row.profile_id.to_string());
            }
        }
        Ok(inserted)
    }
}

/// Locks the segment's row (membership changes of one segment take turns, so
/// their entries carry its current name) and returns its number and name.
macro_rules! lock_segment {
    ($c:expr, $tenant:expr, $id:expr) => {
        diesel::update(
            segments::table
                .filter(segments::tenant_id.eq($tenant.as_str()))
                .filter(segments::id.eq($id.as_str())),
        )
        .set(segments::updated_at.eq(segments::updated_at))
        .returning((segments::number, segments::name))
        .get_result::<(i64, String)>($c)
        .await
        .or_not_found("segment")
    };
}

/// The distinct ids, in the order first given.
fn distinct(ids: &[ProfileId]) -> Vec<&str> {
    let mut seen = HashSet::new();
    ids.iter()
        .map(ProfileId::as_str)
        .filter(|id| seen.insert(*id))
        .collect()
}

impl Store {
    /// Adds profiles to a segment (an `add` entry for each that was not a member
    /// yet, in the order given); returns how many joined. A profile that does
    /// not exist fails the whole call (not found): check with
    /// [`Store::missing_profiles`] first to name them.
    pub async fn add_segment_members_audited(
        &self,
        tenant: &TenantId,
        id: &SegmentId,
        profile_ids: &[ProfileId],
        audit: Option<&AuditEvent<'_>>,
    ) -> Result<usize, StoreError> {
        let ids = distinct(profile_ids);
        let stream = segment_stream(id);
        let at = now();
        let mut conn = self.write().await?;
        let added = in_transaction!(&mut conn, c => {
            let (number, name) = lock_segment!(c, tenant, id)?;
            let mut fields: HashMap<String, String> = HashMap::with_capacity(ids.len());
            let mut joined: HashSet<String> = HashSet::new();
            for chunk in ids.chunks(CHUNK) {
                let found: Vec<(String, String)> = profiles::table
                    .filter(profiles::tenant_id.eq(tenant.as_str()))
                    .filter(profiles::id.eq_any(chunk))
                    .select((profiles::id, profiles::fields))
                    .load(c)
                    .await?;
                if found.len() < chunk.len() {
                    return Err(StoreError::not_found("profile"));
                }
                fields.extend(found);
                let rows: Vec<NewMember<'_>> = chunk
                    .iter()
                    .map(|profile| NewMember {
                        tenant_id: tenant.as_str(),
                        segment_id: id.as_str(),
                        profile_id: profile,
                        added_at: at,
                    })
                    .collect();
                joined.extend(c.insert_members(&rows).await?);
            }
            let entries = ids
                .iter()
                .filter(|profile| joined.contains(**profile))
                .map(|profile| events::membership("add", number, &name, profile, &fields[*profile]))
                .collect::<Result<Vec<Value>, _>>()?;
            if !entries.is_empty() {
                if let Some(event) = audit {
                    insert_audit!(c, tenant, event)?;
                }
                append_outbox!(c, tenant, &stream, &entries)?;
            }
            Ok(entries.len())
        })?;
        drop(conn);
        if added > 0 {
            self.outbox_appended(tenant, &stream);
        }
        Ok(added)
    }

    /// Removes profiles from a segment (a `remove` entry for each that was a
    /// member, in the order given); returns how many left.
    pub async fn remove_segment_members_audited(
        &self,
        tenant: &TenantId,
        id: &SegmentId,
        profile_ids: &[ProfileId],
        audit: Option<&AuditEvent<'_>>,
    ) -> Result<usize, StoreError> {
        let ids = distinct(profile_ids);
        let stream = segment_stream(id);
        let mut conn = self.write().await?;
        let removed = in_transaction!(&mut conn, c => {
            let (number, name) = lock_segment!(c, tenant, id)?;
            let mut left: HashMap<String, String> = HashMap::new();
            for chunk in ids.chunks(CHUNK) {
                let members = segment_members::table
                    .filter(segment_members::segment_id.eq(id.as_str()))
                    .filter(segment_members::profile_id.eq_any(chunk))
                    .select(segment_members::profile_id);
                let found: Vec<(String, String)> = profiles::table
                    .filter(profiles::tenant_id.eq(tenant.as_str()))
                    .filter(profiles::id.eq_any(members))
                    .select((profiles::id, profiles::fields))
                    .load(c)
                    .await?;
                diesel::delete(
                    segment_members::table
                        .filter(segment_members::segment_id.eq(id.as_str()))
                        .filter(segment_members::profile_id.eq_any(chunk)),
                )
                .execute(c)
                .await?;
                left.extend(found);
            }
            let entries = ids
                .iter()
                .filter_map(|profile| left.get(*profile).map(|fields| (profile, fields)))
                .map(|(profile, fields)| events::membership("remove", number, &name, profile, fields))
                .collect::<Result<Vec<Value>, _>>()?;
            if !entries.is_empty() {
                if let Some(event) = audit {
                    insert_audit!(c, tenant, event)?;
                }
                append_outbox!(c, tenant, &stream, &entries)?;
            }
            Ok(entries.len())
        })?;
        drop(conn);
        if removed > 0 {
            self.outbox_appended(tenant, &stream);
        }
        Ok(removed)
    }

    /// Removes every member of a segment (one `clear` entry; nothing when it had
    /// none); returns how many left.
    pub async fn clear_segment_audited(
        &self,
        tenant: &TenantId,
        id: &SegmentId,
        audit: Option<&AuditEvent<'_>>,
    ) -> Result<usize, StoreError> {
        let stream = segment_stream(id);
        let mut conn = self.write().await?;
        let removed = in_transaction!(&mut conn, c => {
            let (number, name) = lock_segment!(c, tenant, id)?;
            let removed = diesel::delete(segment_members::table.filter(segment_members::segment_id.eq(id.as_str())))
                .execute(c)
                .await?;
            if removed > 0 {
                if let Some(event) = audit {
                    insert_audit!(c, tenant, event)?;
                }
                let entry = events::about_segment("clear", number, &name);
                append_outbox!(c, tenant, &stream, &[entry])?;
            }
            Ok(removed)
        })?;
        drop(conn);
        if removed > 0 {
            self.outbox_appended(tenant, &stream);
        }
        Ok(removed)
    }
}
