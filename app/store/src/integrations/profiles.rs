//! Profiles: an id the tenant chooses (a CRM id) and custom fields (a JSON object).

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::upsert::excluded;
use diesel_async::RunQueryDsl;
use serde_json::{Map, Value};
use std::collections::HashSet;

use super::{CHUNK, events, segment_stream};
use crate::audit::AuditEvent;
use crate::error::OptionalExt;
use crate::ids::{SegmentId, TenantId};
use crate::outbox::append_outbox;
use crate::schema::{profiles, segment_members, segments};
use crate::{Store, StoreError, in_transaction, insert_audit, now, with_conn};

pub const MAX_PROFILE_ID_CHARS: usize = 255;

/// A profile id: 1 to [`MAX_PROFILE_ID_CHARS`] characters, none of them a
/// control character.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProfileId(String);

impl ProfileId {
    /// The id, or why it is not one.
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        if raw.is_empty() || raw.chars().count() > MAX_PROFILE_ID_CHARS {
            return Err("must be 1 to 255 characters");
        }
        if raw.chars().any(char::is_control) {
            return Err("must not contain control characters");
        }
        Ok(Self(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ProfileId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = profiles)]
struct ProfileRow {
    id: String,
    fields: String,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub id: String,
    pub fields: Map<String, Value>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

impl TryFrom<ProfileRow> for Profile {
    type Error = StoreError;

    fn try_from(r: ProfileRow) -> Result<Self, StoreError> {
        let fields = serde_json::from_str(&r.fields).map_err(|_| StoreError::Corrupt {
            what: "profile fields",
            value: r.id.clone(),
        })?;
        Ok(Self {
            id: r.id,
            fields,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

/// A profile to create or replace: its id and its fields.
pub type ProfileUpsert = (ProfileId, Map<String, Value>);

/// How a batch upsert went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpsertedProfiles {
    pub created: usize,
    pub updated: usize,
}

#[derive(Insertable)]
#[diesel(table_name = profiles, treat_none_as_default_value = false)]
pub(crate) struct NewProfile<'a> {
    tenant_id: &'a str,
    id: &'a str,
    fields: String,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
}

/// Creates or replaces profiles the way each backend does it fastest.
pub(crate) trait UpsertProfiles {
    fn upsert_profiles(
        &mut self,
        rows: &[NewProfile<'_>],
    ) -> impl std::future::Future<Output = QueryResult<()>> + Send;
}

impl UpsertProfiles for diesel_async::AsyncPgConnection {
    async fn upsert_profiles(&mut self, rows: &[NewProfile<'_>]) -> QueryResult<()> {
        diesel::insert_into(profiles::table)
            .values(rows)
            .on_conflict((profiles::tenant_id, profiles::id))
            .do_update()
            .set((
                profiles::fields.eq(excluded(profiles::fields)),
                profiles::updated_at.eq(excluded(profiles::updated_at)),
            ))
            .execute(self)
            .await
            .map(drop)
    }
}

impl UpsertProfiles for crate::db::SqliteConn {
    /// One at a time (see `outbox::InsertEntries`): in-process statements cost
    /// no round trip.
    async fn upsert_profiles(&mut self, rows: &[NewProfile<'_>]) -> QueryResult<()> {
        for row in rows {
            diesel::insert_into(profiles::table)
                .values(row)
                .on_conflict((profiles::tenant_id, profiles::id))
                .do_update()
                .set((
                    profiles::fields.eq(excluded(profiles::fields)),
                    profiles::updated_at.eq(excluded(profiles::updated_at)),
                ))
                .execute(self)
                .await?;
        }
        Ok(())
    }
}

/// The smallest text above every text that starts with `prefix` (in code point
/// order, which is byte order in UTF-8), if there is one.
fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = (last as u32 + 1..=char::MAX as u32).find_map(char::from_u32);
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

impl Store {
    /// Creates or replaces one profile's fields; `true` when it was created.
    pub async fn upsert_profile_audited(
        &self,
        tenant: &TenantId,
        id: &ProfileId,
        fields: &Map<String, Value>,
        audit: Option<&AuditEvent<'_>>,
    ) -> Result<(Profile, bool), StoreError> {
        let fields = Value::Object(fields.clone()).to_string();
        let at = now();
        let mut conn = self.write().await?;
        let (row, created): (ProfileRow, bool) = in_transaction!(&mut conn, c => {
            let existed: Option<String> = profiles::table
                .filter(profiles::tenant_id.eq(tenant.as_str()))
                .filter(profiles::id.eq(id.as_str()))
                .select(profiles::id)
                .first(c)
                .await
                .optional()?;
            let row = diesel::insert_into(profiles::table)
                .values(NewProfile {
                    tenant_id: tenant.as_str(),
                    id: id.as_str(),
                    fields,
                    created_at: at,
                    updated_at: at,
                })
                .on_conflict((profiles::tenant_id, profiles::id))
                .do_update()
                .set((
                    profiles::fields.eq(excluded(profiles::fields)),
                    profiles::updated_at.eq(excluded(profiles::updated_at)),
                ))
                .returning(ProfileRow::as_returning())
                .get_result(c)
                .await
                .map_err(StoreError::parent_gone("tenant"))?;
            if let Some(event) = audit {
                insert_audit!(c, tenant, event)?;
            }
            Ok((row, existed.is_none()))
        })?;
        Ok((row.try_into()?, created))
    }

    /// Creates or replaces many profiles (ids distinct), all or none.
    pub async fn upsert_profiles_audited(
        &self,
        tenant: &TenantId,
        batch: &[ProfileUpsert],
        audit: Option<&AuditEvent<'_>>,
    ) -> Result<UpsertedProfiles, StoreError> {
        let at = now();
        let mut conn = self.write().await?;
        in_transaction!(&mut conn, c => {
            let mut created = 0;
            for chunk in batch.chunks(CHUNK) {
                let ids: Vec<&str> = chunk.iter().map(|(id, _)| id.as_str()).collect();
                let existing: i64 = profiles::table
                    .filter(profiles::tenant_id.eq(tenant.as_str()))
                    .filter(profiles::id.eq_any(&ids))
                    .count()
                    .get_result(c)
                    .await?;
                created += chunk.len() - existing as usize;
                let rows: Vec<NewProfile<'_>> = chunk
                    .iter()
                    .map(|(id, fields)| NewProfile {
                        tenant_id: tenant.as_str(),
                        id: id.as_str(),
                        fields: Value::Object(fields.clone()).to_string(),
                        created_at: at,
                        updated_at: at,
                    })
                    .collect();
                c.upsert_profiles(&rows)
                    .await
                    .map_err(StoreError::parent_gone("tenant"))?;
            }
            if let Some(event) = audit {
                insert_audit!(c, tenant, event)?;
            }
            Ok(UpsertedProfiles { created, updated: batch.len() - created })
        })
    }

    pub async fn profile(&self, tenant: &TenantId, id: &ProfileId) -> Result<Profile, StoreError> {
        let mut conn = self.read().await?;
        let row: ProfileRow = with_conn!(&mut conn, c => profiles::table
            .filter(profiles::tenant_id.eq(tenant.as_str()))
            .filter(profiles::id.eq(id.as_str()))
            .select(ProfileRow::as_select())
            .first(c)
            .await)
        .or_not_found("profile")?;
        row.try_into()
    }

    /// One page of the tenant's profiles by id: those whose id starts with
    /// `prefix` (when given) and sorts after `after`, at most `limit`. One range
    /// of the primary key, however many profiles there are.
    pub async fn profiles(
        &self,
        tenant: &TenantId,
        prefix: Option<&str>,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Profile>, StoreError> {
        let prefix = prefix.unwrap_or("");
        let from = after.filter(|a| *a >= prefix);
        let below = prefix_end(prefix);
        let mut conn = self.read().await?;
        let rows: Vec<ProfileRow> = with_conn!(&mut conn, c => {
            let mut query = profiles::table
                .filter(profiles::tenant_id.eq(tenant.as_str()))
                .filter(profiles::id.ge(prefix))
                .into_boxed();
            if let Some(after) = from {
                query = query.filter(profiles::id.gt(after));
            }
            if let Some(below) = below.as_deref() {
                query = query.filter(profiles::id.lt(below));
            }
            query
                .order(profiles::id.asc())
                .limit(limit)
                .select(ProfileRow::as_select())
                .load(c)
                .await
        })?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    /// Those of `ids` that are not profiles of the tenant, in the order given.
    pub async fn missing_profiles(
        &self,
        tenant: &TenantId,
        ids: &[ProfileId],
    ) -> Result<Vec<ProfileId>, StoreError> {
        let mut found = HashSet::new();
        let mut conn = self.read().await?;
        for chunk in ids.chunks(CHUNK) {
            let keys: Vec<&str> = chunk.iter().map(ProfileId::as_str).collect();
            let present: Vec<String> = with_conn!(&mut conn, c => profiles::table
                .filter(profiles::tenant_id.eq(tenant.as_str()))
                .filter(profiles::id.eq_any(&keys))
                .select(profiles::id)
                .load(c)
                .await)?;
            found.extend(present);
        }
        Ok(ids
            .iter()
            .filter(|id| !found.contains(id.as_str()))
            .cloned()
            .collect())
    }

    /// Deletes a profile, first removing it from its segments (a `remove` entry
    /// on each segment's stream).
    pub async fn delete_profile_audited(
        &self,
        tenant: &TenantId,
        id: &ProfileId,
        audit: Option<&AuditEvent<'_>>,
    ) -> Result<(), StoreError> {
        let mut conn = self.write().await?;
        let streams: Vec<String> = in_transaction!(&mut conn, c => {
            let fields: String = profiles::table
                .filter(profiles::tenant_id.eq(tenant.as_str()))
                .filter(profiles::id.eq(id.as_str()))
                .select(profiles::fields)
                .first(c)
                .await
                .or_not_found("profile")?;
            let its_segments: Vec<String> = segment_members::table
                .filter(segment_members::tenant_id.eq(tenant.as_str()))
                .filter(segment_members::profile_id.eq(id.as_str()))
                .order(segment_members::segment_id.asc())
                .select(segment_members::segment_id)
                .load(c)
                .await?;
            // Segment rows are locked one at a time in id order, before the
            // streams, as every membership change does.
            let mut locked: Vec<(String, i64, String)> = Vec::with_capacity(its_segments.len());
            for segment in its_segments {
                let (number, name): (i64, String) = diesel::update(
                    segments::table
                        .filter(segments::tenant_id.eq(tenant.as_str()))
                        .filter(segments::id.eq(&segment)),
                )
                .set(segments::updated_at.eq(segments::updated_at))
                .returning((segments::number, segments::name))
                .get_result(c)
                .await?;
                locked.push((segment, number, name));
            }
            diesel::delete(
                segment_members::table
                    .filter(segment_members::tenant_id.eq(tenant.as_str()))
                    .filter(segment_members::profile_id.eq(id.as_str())),
            )
            .execute(c)
            .await?;
            diesel::delete(
                profiles::table
                    .filter(profiles::tenant_id.eq(tenant.as_str()))
                    .filter(profiles::id.eq(id.as_str())),
            )
            .execute(c)
            .await?;
            if let Some(event) = audit {
                insert_audit!(c, tenant, event)?;
            }
            let mut streams = Vec::with_capacity(locked.len());
            for (segment, number, name) in &locked {
                let stream = segment_stream(&SegmentId::from_stored(segment.clone()));
                let entry = events::membership("remove", *number, name, id.as_str(), &fields)?;
                append_outbox!(c, tenant, &stream, &[entry])?;
                streams.push(stream);
            }
            Ok(streams)
        })?;
        drop(conn);
        for stream in &streams {
            self.outbox_appended(tenant, stream);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_one_to_255_printable_characters() {
        assert!(ProfileId::parse("crm-42").is_ok());
        assert!(ProfileId::parse("with space/and:colon").is_ok());
        assert!(ProfileId::parse(&"é".repeat(255)).is_ok());
        assert!(ProfileId::parse("").is_err());
        assert!(ProfileId::parse(&"x".repeat(256)).is_err());
        assert!(ProfileId::parse("a\nb").is_err());
        assert!(ProfileId::parse("a\u{0}b").is_err());
    }

    #[test]
    fn a_prefix_range_ends_just_above_its_last_character() {
        assert_eq!(prefix_end("ab").as_deref(), Some("ac"));
        assert_eq!(prefix_end(""), None);
        assert_eq!(prefix_end("a\u{D7FF}").as_deref(), Some("a\u{E000}"));
        assert_eq!(prefix_end("a\u{10FFFF}").as_deref(), Some("b"));
    }
}
