//! Segment syncs: settings checked at the edge (templates parsed for the
//! connector's dialect at save time), consumers kept in line by the store, and
//! every change audited.

use serde_json::{Map, json};
use sluice_connect::DbKind;
use sluice_sqltpl::{SegmentDialect, SegmentInfo, parse_segment_template};
use sluice_store::domain::Invalid;
use sluice_store::ids::{ConnectorId, SegmentId, SegmentSyncId, TenantId};
use sluice_store::integrations::{SegmentSync, SyncScope, SyncSettings, SyncTemplates};

use crate::error::AppError;
use crate::service::{Actor, found_or};
use crate::state::AppState;

pub const DEFAULT_BATCH_SIZE: i64 = 100;
pub const MAX_BATCH_SIZE: i64 = 10_000;
pub const DEFAULT_BATCH_TIMEOUT_MS: i64 = 5_000;
pub const MIN_BATCH_TIMEOUT_MS: i64 = 100;
pub const MAX_BATCH_TIMEOUT_MS: i64 = 3_600_000;
const MAX_TEMPLATE_BYTES: usize = 64 * 1024;
const MAX_DESCRIPTION_CHARS: usize = 2_000;

/// Templates as sent (an empty optional one is none).
#[derive(Debug, Clone, Default)]
pub struct TemplatesDraft {
    pub add: String,
    pub remove: String,
    pub clear: Option<String>,
    pub upsert_segment: Option<String>,
    pub delete_segment: Option<String>,
}

/// A sync's settings as sent, before they are checked.
#[derive(Debug, Clone)]
pub struct SyncDraft {
    pub name: String,
    pub description: String,
    pub active: bool,
    pub connection_id: String,
    /// `None`: every segment.
    pub segment_ids: Option<Vec<String>>,
    pub templates: TemplatesDraft,
    pub batch_size: i64,
    pub batch_timeout_ms: i64,
}

impl SyncDraft {
    /// The settings of an existing sync, to apply a partial change to.
    pub fn of(sync: &SegmentSync) -> Self {
        let s = &sync.settings;
        Self {
            name: s.name.clone(),
            description: s.description.clone(),
            active: s.active,
            connection_id: s.connector_id.to_string(),
            segment_ids: match &s.scope {
                SyncScope::All => None,
                SyncScope::Chosen(ids) => Some(ids.iter().map(ToString::to_string).collect()),
            },
            templates: TemplatesDraft {
                add: s.templates.add.clone(),
                remove: s.templates.remove.clone(),
                clear: s.templates.clear.clone(),
                upsert_segment: s.templates.upsert_segment.clone(),
                delete_segment: s.templates.delete_segment.clone(),
            },
            batch_size: s.batch_size,
            batch_timeout_ms: s.batch_timeout_ms,
        }
    }
}

fn invalid_at(path: impl Into<String>, message: impl Into<String>) -> AppError {
    AppError::InvalidAt {
        path: path.into(),
        message: message.into(),
    }
}

/// Checks a template's syntax, and that it renders for `dialect`; errors name
/// `path` and give the line and column.
fn check_template(path: &str, source: &str, dialect: SegmentDialect) -> Result<String, AppError> {
    if source.len() > MAX_TEMPLATE_BYTES {
        return Err(invalid_at(
            path,
            format!("is longer than {MAX_TEMPLATE_BYTES} bytes"),
        ));
    }
    let template = parse_segment_template(source).map_err(|e| invalid_at(path, e.to_string()))?;
    let sample = SegmentInfo {
        id: json!(1),
        name: "segment".into(),
    };
    template
        .render(dialect, &sample, &[Map::new()])
        .map_err(|e| invalid_at(path, e.to_string()))?;
    Ok(source.to_string())
}

fn optional_template(
    path: &str,
    source: &Option<String>,
    dialect: SegmentDialect,
) -> Result<Option<String>, AppError> {
    match source.as_deref().filter(|s| !s.trim().is_empty()) {
        Some(source) => check_template(path, source, dialect).map(Some),
        None => Ok(None),
    }
}

fn required_template(
    path: &str,
    source: &str,
    dialect: SegmentDialect,
) -> Result<String, AppError> {
    if source.trim().is_empty() {
        return Err(invalid_at(path, "is required"));
    }
    check_template(path, source, dialect)
}

/// Checks a draft: its connection and segments must be the tenant's, its
/// templates must parse for the connection's dialect, its numbers in range.
pub async fn check(
    state: &AppState,
    tenant: &TenantId,
    draft: &SyncDraft,
) -> Result<SyncSettings, AppError> {
    let name = draft.name.trim();
    if name.is_empty() || name.chars().count() > 255 || name.chars().any(char::is_control) {
        return Err(Invalid::new("name", "is required: 1 to 255 printable characters").into());
    }
    if draft.description.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(Invalid::new(
            "description",
            format!("is longer than {MAX_DESCRIPTION_CHARS} characters"),
        )
        .into());
    }
    if !(1..=MAX_BATCH_SIZE).contains(&draft.batch_size) {
        return Err(Invalid::new(
            "batch_size",
            format!("must be a whole number from 1 to {MAX_BATCH_SIZE}"),
        )
        .into());
    }
    if !(MIN_BATCH_TIMEOUT_MS..=MAX_BATCH_TIMEOUT_MS).contains(&draft.batch_timeout_ms) {
        return Err(Invalid::new(
            "batch_timeout_ms",
            format!("must be from {MIN_BATCH_TIMEOUT_MS} to {MAX_BATCH_TIMEOUT_MS} milliseconds"),
        )
        .into());
    }
    let not_yours = || Invalid::new("connection_id", "choose one of your connections");
    let connector_id = ConnectorId::parse(draft.connection_id.trim()).ok_or_else(not_yours)?;
    let connector = found_or(
        state.store.connector(tenant, &connector_id).await,
        not_yours,
    )??;
    let kind = DbKind::parse(&connector.settings.kind).ok_or_else(|| {
        AppError::internal(anyhow::anyhow!(
            "connector {} has unknown kind {:?}",
            connector.id,
            connector.settings.kind
        ))
    })?;
    let scope = match &draft.segment_ids {
        None => SyncScope::All,
        Some(ids) => {
            let mut chosen: Vec<SegmentId> = Vec::with_capacity(ids.len());
            for (i, raw) in ids.iter().enumerate() {
                let path = format!("segment_ids[{i}]");
                let unknown = || invalid_at(path.clone(), "is not one of your segments");
                let id = SegmentId::parse(raw.trim()).ok_or_else(unknown)?;
                match state.store.segment(tenant, &id).await {
                    Ok(_) => {}
                    Err(sluice_store::StoreError::NotFound { .. }) => return Err(unknown()),
                    Err(other) => return Err(other.into()),
                }
                if !chosen.contains(&id) {
                    chosen.push(id);
                }
            }
            SyncScope::Chosen(chosen)
        }
    };
    let dialect = kind.segment_dialect();
    let t = &draft.templates;
    let templates = SyncTemplates {
        add: required_template("templates.add", &t.add, dialect)?,
        remove: required_template("templates.remove", &t.remove, dialect)?,
        clear: optional_template("templates.clear", &t.clear, dialect)?,
        upsert_segment: optional_template("templates.upsert_segment", &t.upsert_segment, dialect)?,
        delete_segment: optional_template("templates.delete_segment", &t.delete_segment, dialect)?,
    };
    Ok(SyncSettings {
        name: name.to_string(),
        description: draft.description.trim().to_string(),
        active: draft.active,
        connector_id,
        scope,
        templates,
        batch_size: draft.batch_size,
        batch_timeout_ms: draft.batch_timeout_ms,
    })
}

/// A sync of `tenant`; an id that does not parse is as unknown as another
/// tenant's.
pub async fn find(
    state: &AppState,
    tenant: &TenantId,
    raw_id: &str,
) -> Result<SegmentSync, AppError> {
    let id = SegmentSyncId::parse(raw_id).ok_or(AppError::NotFound)?;
    Ok(state.store.segment_sync(tenant, &id).await?)
}

pub async fn create(
    state: &AppState,
    actor: &Actor,
    draft: &SyncDraft,
) -> Result<SegmentSyncId, AppError> {
    let settings = check(state, &actor.tenant, draft).await?;
    let event = actor.event("segment_sync.create", &settings.name, "");
    Ok(state
        .store
        .create_segment_sync_audited(&actor.tenant, &settings, Some(&event))
        .await?)
}

pub async fn update(
    state: &AppState,
    actor: &Actor,
    sync: &SegmentSync,
    draft: &SyncDraft,
) -> Result<(), AppError> {
    let settings = check(state, &actor.tenant, draft).await?;
    let event = actor.event("segment_sync.update", &settings.name, "");
    Ok(state
        .store
        .update_segment_sync_audited(&actor.tenant, &sync.id, &settings, Some(&event))
        .await?)
}

/// Deletes a sync with its consumers and statistics (the caller confirmed).
pub async fn delete(state: &AppState, actor: &Actor, sync: &SegmentSync) -> Result<(), AppError> {
    let event = actor.event("segment_sync.delete", &sync.settings.name, "");
    Ok(state
        .store
        .delete_segment_sync_audited(&actor.tenant, &sync.id, Some(&event))
        .await?)
}

/// Asks for a resync; the executor starts it.
pub async fn request_resync(
    state: &AppState,
    actor: &Actor,
    sync: &SegmentSync,
) -> Result<chrono::NaiveDateTime, AppError> {
    let event = actor.event("segment_sync.resync", &sync.settings.name, "");
    Ok(state
        .store
        .request_resync_audited(&actor.tenant, &sync.id, Some(&event))
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_template_error_names_the_template_with_line_and_column() {
        let err = check_template(
            "templates.add",
            "INSERT INTO t VALUES\n({segment_id}, {$lead.id)",
            SegmentDialect::Mysql,
        )
        .unwrap_err();
        match err {
            AppError::InvalidAt { path, message } => {
                assert_eq!(path, "templates.add");
                assert!(message.contains("line 2"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        assert!(
            check_template(
                "templates.add",
                "DELETE FROM t WHERE id = {segment_id}",
                SegmentDialect::Postgres
            )
            .is_ok()
        );
    }
}
