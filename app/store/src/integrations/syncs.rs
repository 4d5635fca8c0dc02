//! Segment syncs: which segments' changes run which SQL templates on which
//! connector, and the outbox consumers that follow their scope and active flag.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use std::collections::BTreeSet;

use super::{segment_stream, sync_consumer};
use crate::audit::AuditEvent;
use crate::error::OptionalExt;
use crate::ids::{ConnectorId, SegmentId, SegmentSyncId, TenantId};
use crate::outbox::{StartAt, ensure_outbox_consumer};
use crate::schema::{connectors, outbox_consumers, segment_sync_segments, segment_syncs, segments};
use crate::{Store, StoreError, in_transaction, insert_audit, lock_tenant, now, with_conn};

const NAME_TAKEN: &str = "is already used by another segment sync";

/// Which segments a sync exports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncScope {
    /// Every segment, those created later too.
    All,
    Chosen(Vec<SegmentId>),
}

/// The SQL run for each kind of event; `None`: the event is not exported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncTemplates {
    pub add: String,
    pub remove: String,
    pub clear: Option<String>,
    pub upsert_segment: Option<String>,
    pub delete_segment: Option<String>,
}

/// Everything about a sync that is edited, already checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncSettings {
    pub name: String,
    pub description: String,
    pub active: bool,
    pub connector_id: ConnectorId,
    pub scope: SyncScope,
    pub templates: SyncTemplates,
    pub batch_size: i64,
    pub batch_timeout_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentSync {
    pub id: SegmentSyncId,
    pub settings: SyncSettings,
    /// When "Start resync" was asked for and not yet started.
    pub resync_requested_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = segment_syncs)]
struct SyncRow {
    id: String,
    name: String,
    description: String,
    active: bool,
    connector_id: String,
    all_segments: bool,
    add_template: String,
    remove_template: String,
    clear_template: Option<String>,
    upsert_segment_template: Option<String>,
    delete_segment_template: Option<String>,
    batch_size: i64,
    batch_timeout_ms: i64,
    resync_requested_at: Option<NaiveDateTime>,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
}

impl SyncRow {
    fn into_sync(self, chosen: Vec<SegmentId>) -> SegmentSync {
        SegmentSync {
            id: SegmentSyncId::from_stored(self.id),
            settings: SyncSettings {
                name: self.name,
                description: self.description,
                active: self.active,
                connector_id: ConnectorId::from_stored(self.connector_id),
                scope: if self.all_segments {
                    SyncScope::All
                } else {
                    SyncScope::Chosen(chosen)
                },
                templates: SyncTemplates {
                    add: self.add_template,
                    remove: self.remove_template,
                    clear: self.clear_template,
                    upsert_segment: self.upsert_segment_template,
                    delete_segment: self.delete_segment_template,
                },
                batch_size: self.batch_size,
                batch_timeout_ms: self.batch_timeout_ms,
            },
            resync_requested_at: self.resync_requested_at,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

/// Checks the connector and the chosen segments belong to the tenant, writes the
/// scope rows, and brings the sync's consumers in line with its scope and
/// active flag: new streams are read from their current end (a resync exports
/// the members already there), streams left are dropped (but not those of
/// deleted segments, whose `delete_segment` entry is still to apply).
/// Evaluates to `Result<Vec<String>, StoreError>`: the streams of the sync.
macro_rules! apply_scope {
    ($c:expr, $tenant:expr, $sync:expr, $settings:expr) => {
        async {
            let tenant: &TenantId = $tenant;
            let sync: &SegmentSyncId = $sync;
            let settings: &SyncSettings = $settings;
            connectors::table
                .filter(connectors::tenant_id.eq(tenant.as_str()))
                .filter(connectors::id.eq(settings.connector_id.as_str()))
                .select(connectors::id)
                .first::<String>(&mut *$c)
                .await
                .or_not_found("connector")?;
            diesel::delete(
                segment_sync_segments::table
                    .filter(segment_sync_segments::sync_id.eq(sync.as_str())),
            )
            .execute(&mut *$c)
            .await?;
            let mut scope: Vec<String> = segments::table
                .filter(segments::tenant_id.eq(tenant.as_str()))
                .select(segments::id)
                .load(&mut *$c)
                .await?;
            let existing: BTreeSet<String> = scope.iter().cloned().collect();
            if let SyncScope::Chosen(chosen) = &settings.scope {
                let chosen: BTreeSet<&str> = chosen.iter().map(SegmentId::as_str).collect();
                if chosen.iter().any(|id| !existing.contains(*id)) {
                    return Err(StoreError::not_found("segment"));
                }
                scope.retain(|id| chosen.contains(id.as_str()));
                for segment in &scope {
                    diesel::insert_into(segment_sync_segments::table)
                        .values((
                            segment_sync_segments::sync_id.eq(sync.as_str()),
                            segment_sync_segments::segment_id.eq(segment),
                        ))
                        .execute(&mut *$c)
                        .await?;
                }
            }
            let consumer = sync_consumer(sync);
            let wanted: BTreeSet<String> = scope
                .into_iter()
                .map(|id| segment_stream(&SegmentId::from_stored(id)))
                .collect();
            let live: BTreeSet<String> = existing
                .into_iter()
                .map(|id| segment_stream(&SegmentId::from_stored(id)))
                .collect();
            let held: Vec<String> = outbox_consumers::table
                .filter(outbox_consumers::tenant_id.eq(tenant.as_str()))
                .filter(outbox_consumers::consumer.eq(&consumer))
                .select(outbox_consumers::stream)
                .load(&mut *$c)
                .await?;
            let dropped: Vec<&String> = held
                .iter()
                .filter(|s| !wanted.contains(*s) && live.contains(*s))
                .collect();
            diesel::delete(
                outbox_consumers::table
                    .filter(outbox_consumers::tenant_id.eq(tenant.as_str()))
                    .filter(outbox_consumers::consumer.eq(&consumer))
                    .filter(outbox_consumers::stream.eq_any(dropped)),
            )
            .execute(&mut *$c)
            .await?;
            for stream in &wanted {
                ensure_outbox_consumer!(
                    $c,
                    tenant,
                    &consumer,
                    stream,
                    StartAt::End,
                    !settings.active
                )?;
            }
            diesel::update(
                outbox_consumers::table
                    .filter(outbox_consumers::tenant_id.eq(tenant.as_str()))
                    .filter(outbox_consumers::consumer.eq(&consumer))
                    .filter(outbox_consumers::paused.eq(settings.active)),
            )
            .set((
                outbox_consumers::paused.eq(!settings.active),
                outbox_consumers::updated_at.eq(now()),
            ))
            .execute(&mut *$c)
            .await?;
            Ok::<Vec<String>, StoreError>(wanted.into_iter().collect())
        }
        .await
    };
}

impl Store {
    /// Creates a sync and its consumers (paused when it is not active). The
    /// connector or a chosen segment of another tenant is not found.
    pub async fn create_segment_sync_audited(
        &self,
        tenant: &TenantId,
        settings: &SyncSettings,
        audit: Option<&AuditEvent<'_>>,
    ) -> Result<SegmentSyncId, StoreError> {
        let id = SegmentSyncId::generate();
        let at = now();
        let mut conn = self.write().await?;
        in_transaction!(&mut conn, c => {
            // Segments are listed under the tenant's lock, which creating a
            // segment takes too: no pair of them is missed.
            lock_tenant!(c, tenant)?;
            let t = &settings.templates;
            diesel::insert_into(segment_syncs::table)
                .values((
                    segment_syncs::id.eq(id.as_str()),
                    segment_syncs::tenant_id.eq(tenant.as_str()),
                    segment_syncs::name.eq(&settings.name),
                    segment_syncs::description.eq(&settings.description),
                    segment_syncs::active.eq(settings.active),
                    segment_syncs::connector_id.eq(settings.connector_id.as_str()),
                    segment_syncs::all_segments.eq(settings.scope == SyncScope::All),
                    segment_syncs::add_template.eq(&t.add),
                    segment_syncs::remove_template.eq(&t.remove),
                    segment_syncs::clear_template.eq(&t.clear),
                    segment_syncs::upsert_segment_template.eq(&t.upsert_segment),
                    segment_syncs::delete_segment_template.eq(&t.delete_segment),
                    segment_syncs::batch_size.eq(settings.batch_size),
                    segment_syncs::batch_timeout_ms.eq(settings.batch_timeout_ms),
                    segment_syncs::created_at.eq(at),
                    segment_syncs::updated_at.eq(at),
                ))
                .execute(c)
                .await
                .map_err(StoreError::unique("name", NAME_TAKEN))?;
            apply_scope!(c, tenant, &id, settings)?;
            if let Some(event) = audit {
                insert_audit!(c, tenant, event)?;
            }
            Ok(())
        })?;
        Ok(id)
    }

    pub async fn segment_sync(
        &self,
        tenant: &TenantId,
        id: &SegmentSyncId,
    ) -> Result<SegmentSync, StoreError> {
        let mut conn = self.read().await?;
        let (row, chosen) = with_conn!(&mut conn, c => async {
            let row: SyncRow = segment_syncs::table
                .filter(segment_syncs::tenant_id.eq(tenant.as_str()))
                .filter(segment_syncs::id.eq(id.as_str()))
                .select(SyncRow::as_select())
                .first(&mut *c)
                .await
                .or_not_found("segment sync")?;
            let chosen: Vec<String> = segment_sync_segments::table
                .filter(segment_sync_segments::sync_id.eq(id.as_str()))
                .order(segment_sync_segments::segment_id.asc())
                .select(segment_sync_segments::segment_id)
                .load(&mut *c)
                .await?;
            Ok::<_, StoreError>((row, chosen))
        }
        .await)?;
        Ok(row.into_sync(chosen.into_iter().map(SegmentId::from_stored).collect()))
    }

    /// The tenant's syncs by name.
    pub async fn segment_syncs(&self, tenant: &TenantId) -> Result<Vec<SegmentSync>, StoreError> {
        let mut conn = self.read().await?;
        let (rows, chosen) = with_conn!(&mut conn, c => async {
            let rows: Vec<SyncRow> = segment_syncs::table
                .filter(segment_syncs::tenant_id.eq(tenant.as_str()))
                .order(segment_syncs::name.asc())
                .select(SyncRow::as_select())
                .load(&mut *c)
                .await?;
            let its_syncs = segment_syncs::table
                .filter(segment_syncs::tenant_id.eq(tenant.as_str()))
                .select(segment_syncs::id);
            let chosen: Vec<(String, String)> = segment_sync_segments::table
                .filter(segment_sync_segments::sync_id.eq_any(its_syncs))
                .order((segment_sync_segments::sync_id, segment_sync_segments::segment_id))
                .select((segment_sync_segments::sync_id, segment_sync_segments::segment_id))
                .load(&mut *c)
                .await?;
            Ok::<_, StoreError>((rows, chosen))
        }
        .await)?;
        Ok(rows
            .into_iter()
            .map(|row| {
                let mine = chosen
                    .iter()
                    .filter(|(sync, _)| *sync == row.id)
                    .map(|(_, segment)| SegmentId::from_stored(segment.clone()))
                    .collect();
                row.into_sync(mine)
            })
            .collect())
    }

    /// Replaces a sync's settings; its consumers follow the new scope and active
    /// flag (resumed ones keep their place).
    pub async fn update_segment_sync_audited(
        &self,
        tenant: &TenantId,
        id: &SegmentSyncId,
        settings: &SyncSettings,
        audit: Option<&AuditEvent<'_>>,
    ) -> Result<(), StoreError> {
        let mut conn = self.write().await?;
        let streams = in_transaction!(&mut conn, c => {
            lock_tenant!(c, tenant)?;
            let t = &settings.templates;
            let changed = diesel::update(
                segment_syncs::table
                    .filter(segment_syncs::tenant_id.eq(tenant.as_str()))
                    .filter(segment_syncs::id.eq(id.as_str())),
            )
            .set((
                segment_syncs::name.eq(&settings.name),
                segment_syncs::description.eq(&settings.description),
                segment_syncs::active.eq(settings.active),
                segment_syncs::connector_id.eq(settings.connector_id.as_str()),
                segment_syncs::all_segments.eq(settings.scope == SyncScope::All),
                segment_syncs::add_template.eq(&t.add),
                segment_syncs::remove_template.eq(&t.remove),
                segment_syncs::clear_template.eq(&t.clear),
                segment_syncs::upsert_segment_template.eq(&t.upsert_segment),
                segment_syncs::delete_segment_template.eq(&t.delete_segment),
                segment_syncs::batch_size.eq(settings.batch_size),
                segment_syncs::batch_timeout_ms.eq(settings.batch_timeout_ms),
                segment_syncs::updated_at.eq(now()),
            ))
            .execute(c)
            .await
            .map_err(StoreError::unique("name", NAME_TAKEN))?;
            if changed == 0 {
                return Err(StoreError::not_found("segment sync"));
            }
            let streams = apply_scope!(c, tenant, id, settings)?;
            if let Some(event) = audit {
                insert_audit!(c, tenant, event)?;
            }
            Ok(streams)
        })?;
        drop(conn);
        if settings.active {
            for stream in &streams {
                self.outbox_appended(tenant, stream);
            }
        }
        Ok(())
    }

    /// Deletes a sync with its consumers and statistics.
    pub async fn delete_segment_sync_audited(
        &self,
        tenant: &TenantId,
        id: &SegmentSyncId,
        audit: Option<&AuditEvent<'_>>,
    ) -> Result<(), StoreError> {
        let consumer = sync_consumer(id);
        let mut conn = self.write().await?;
        in_transaction!(&mut conn, c => {
            let removed = diesel::delete(
                segment_syncs::table
                    .filter(segment_syncs::tenant_id.eq(tenant.as_str()))
                    .filter(segment_syncs::id.eq(id.as_str())),
            )
            .execute(c)
            .await?;
            if removed == 0 {
                return Err(StoreError::not_found("segment sync"));
            }
            diesel::delete(
                outbox_consumers::table
                    .filter(outbox_consumers::tenant_id.eq(tenant.as_str()))
                    .filter(outbox_consumers::consumer.eq(&consumer)),
            )
            .execute(c)
            .await?;
            if let Some(event) = audit {
                insert_audit!(c, tenant, event)?;
            }
            Ok(())
        })
    }

    /// Asks for a resync ("Start resync"): the executor clears the segments'
    /// exported rows and adds every member again, then clears the request.
    pub async fn request_resync_audited(
        &self,
        tenant: &TenantId,
        id: &SegmentSyncId,
        audit: Option<&AuditEvent<'_>>,
    ) -> Result<NaiveDateTime, StoreError> {
        let at = now();
        let mut conn = self.write().await?;
        in_transaction!(&mut conn, c => {
            let changed = diesel::update(
                segment_syncs::table
                    .filter(segment_syncs::tenant_id.eq(tenant.as_str()))
                    .filter(segment_syncs::id.eq(id.as_str())),
            )
            .set(segment_syncs::resync_requested_at.eq(Some(at)))
            .execute(c)
            .await?;
            if changed == 0 {
                return Err(StoreError::not_found("segment sync"));
            }
            if let Some(event) = audit {
                insert_audit!(c, tenant, event)?;
            }
            Ok(at)
        })
    }
}
