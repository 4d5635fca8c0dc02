//! `/api/v1/segment-syncs…`.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use sluice_store::domain::Invalid;
use sluice_store::integrations::{SegmentSync, SyncScope};
use utoipa::{IntoParams, ToSchema};

use crate::api::iso;
use crate::auth::{ApiCaller, Writer};
use crate::error::{ApiError, AppError};
use crate::service::segment_syncs::{
    self, DEFAULT_BATCH_SIZE, DEFAULT_BATCH_TIMEOUT_MS, SyncDraft, TemplatesDraft,
};
use crate::state::AppState;

/// The longest statistics range.
const MAX_STATS_DAYS: i64 = 366;

#[derive(Deserialize, Serialize, ToSchema)]
pub struct TemplatesRequest {
    /// Adds a batch of profiles (mandatory).
    pub add: String,
    /// Removes a batch of profiles (mandatory).
    pub remove: String,
    /// Clears a segment; absent, null or empty: not exported.
    pub clear: Option<String>,
    /// Creates or renames a segment.
    pub upsert_segment: Option<String>,
    /// Deletes a segment.
    pub delete_segment: Option<String>,
}

#[derive(Deserialize, ToSchema)]
pub struct SyncRequest {
    /// 1 to 255 printable characters, unique in the tenant.
    pub name: String,
    pub description: Option<String>,
    /// Paused when false (default true).
    pub active: Option<bool>,
    pub connection_id: String,
    /// The segments exported; absent or null: all of them, those created later too.
    pub segment_ids: Option<Vec<String>>,
    pub templates: TemplatesRequest,
    /// 1 to 10,000 (default 100).
    #[schema(minimum = 1, maximum = 10000)]
    pub batch_size: Option<i64>,
    /// 100 to 3,600,000 (default 5000).
    #[schema(minimum = 100, maximum = 3600000)]
    pub batch_timeout_ms: Option<i64>,
}

/// `Some(None)` for an explicit null, `None` when absent.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Deserialize, ToSchema)]
pub struct TemplatesPatch {
    pub add: Option<String>,
    pub remove: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub clear: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub upsert_segment: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub delete_segment: Option<Option<String>>,
}

/// Only the fields given change; `segment_ids: null` means all segments, and a
/// template set to null is no longer exported.
#[derive(Deserialize, ToSchema)]
pub struct SyncPatch {
    pub name: Option<String>,
    pub description: Option<String>,
    pub active: Option<bool>,
    pub connection_id: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Vec<String>>)]
    pub segment_ids: Option<Option<Vec<String>>>,
    pub templates: Option<TemplatesPatch>,
    #[schema(minimum = 1, maximum = 10000)]
    pub batch_size: Option<i64>,
    #[schema(minimum = 100, maximum = 3600000)]
    pub batch_timeout_ms: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct SyncBody {
    pub id: String,
    pub name: String,
    pub description: String,
    pub active: bool,
    pub connection_id: String,
    /// Null: every segment.
    pub segment_ids: Option<Vec<String>>,
    pub templates: TemplatesRequest,
    pub batch_size: i64,
    pub batch_timeout_ms: i64,
    /// When a resync was asked for and not yet started.
    #[schema(format = DateTime)]
    pub resync_requested_at: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

#[derive(Serialize, ToSchema)]
pub struct CreatedSync {
    pub id: String,
}

fn body(sync: &SegmentSync) -> SyncBody {
    let s = &sync.settings;
    SyncBody {
        id: sync.id.to_string(),
        name: s.name.clone(),
        description: s.description.clone(),
        active: s.active,
        connection_id: s.connector_id.to_string(),
        segment_ids: match &s.scope {
            SyncScope::All => None,
            SyncScope::Chosen(ids) => Some(ids.iter().map(ToString::to_string).collect()),
        },
        templates: TemplatesRequest {
            add: s.templates.add.clone(),
            remove: s.templates.remove.clone(),
            clear: s.templates.clear.clone(),
            upsert_segment: s.templates.upsert_segment.clone(),
            delete_segment: s.templates.delete_segment.clone(),
        },
        batch_size: s.batch_size,
        batch_timeout_ms: s.batch_timeout_ms,
        resync_requested_at: sync.resync_requested_at.as_ref().map(iso),
        created_at: iso(&sync.created_at),
        updated_at: iso(&sync.updated_at),
    }
}

async fn load(state: &AppState, caller: &ApiCaller, raw: &str) -> Result<SegmentSync, ApiError> {
    Ok(segment_syncs::find(state, caller.tenant(), raw).await?)
}

/// Creates a segment sync. Templates are checked for the connection's dialect:
/// an error is a 400 naming the template (`templates.add`) with its line and column.
#[utoipa::path(post, path = "/api/v1/segment-syncs", tag = "segment-syncs", operation_id = "createSegmentSync", security(("bearer" = [])), request_body = SyncRequest,
    responses((status = 201, body = CreatedSync), (status = 400, body = crate::error::ErrorBody),
        (status = 409, description = "Another segment sync has this name", body = crate::error::ErrorBody)))]
pub async fn create(
    state: web::Data<AppState>,
    caller: Writer<ApiCaller>,
    request: web::Json<SyncRequest>,
) -> Result<HttpResponse, ApiError> {
    let r = request.into_inner();
    let draft = SyncDraft {
        name: r.name,
        description: r.description.unwrap_or_default(),
        active: r.active.unwrap_or(true),
        connection_id: r.connection_id,
        segment_ids: r.segment_ids,
        templates: TemplatesDraft {
            add: r.templates.add,
            remove: r.templates.remove,
            clear: r.templates.clear,
            upsert_segment: r.templates.upsert_segment,
            delete_segment: r.templates.delete_segment,
        },
        batch_size: r.batch_size.unwrap_or(DEFAULT_BATCH_SIZE),
        batch_timeout_ms: r.batch_timeout_ms.unwrap_or(DEFAULT_BATCH_TIMEOUT_MS),
    };
    let id = segment_syncs::create(&state, caller.actor(), &draft).await?;
    Ok(HttpResponse::Created().json(CreatedSync { id: id.to_string() }))
}

/// The tenant's segment syncs by name.
#[utoipa::path(get, path = "/api/v1/segment-syncs", tag = "segment-syncs", operation_id = "listSegmentSyncs", security(("bearer" = [])),
    responses((status = 200, body = [SyncBody])))]
pub async fn list(state: web::Data<AppState>, caller: ApiCaller) -> Result<HttpResponse, ApiError> {
    let syncs = state.store.segment_syncs(caller.tenant()).await?;
    Ok(HttpResponse::Ok().json(syncs.iter().map(body).collect::<Vec<_>>()))
}

#[utoipa::path(get, path = "/api/v1/segment-syncs/{id}", tag = "segment-syncs", operation_id = "getSegmentSync", security(("bearer" = [])),
    params(("id" = String, Path, description = "Segment sync id")),
    responses((status = 200, body = SyncBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn show(
    state: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let sync = load(&state, &caller, &id).await?;
    Ok(HttpResponse::Ok().json(body(&sync)))
}

/// Changes the fields given. Pausing (`active: false`) pauses its exports;
/// resuming continues from where they stopped.
#[utoipa::path(patch, path = "/api/v1/segment-syncs/{id}", tag = "segment-syncs", operation_id = "updateSegmentSync", security(("bearer" = [])),
    params(("id" = String, Path, description = "Segment sync id")), request_body = SyncPatch,
    responses((status = 200, body = SyncBody), (status = 400, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody),
        (status = 409, description = "Another segment sync has this name", body = crate::error::ErrorBody)))]
pub async fn update(
    state: web::Data<AppState>,
    caller: Writer<ApiCaller>,
    id: web::Path<String>,
    request: web::Json<SyncPatch>,
) -> Result<HttpResponse, ApiError> {
    let sync = load(&state, &caller, &id).await?;
    let patch = request.into_inner();
    let mut draft = SyncDraft::of(&sync);
    if let Some(name) = patch.name {
        draft.name = name;
    }
    if let Some(description) = patch.description {
        draft.description = description;
    }
    if let Some(active) = patch.active {
        draft.active = active;
    }
    if let Some(connection_id) = patch.connection_id {
        draft.connection_id = connection_id;
    }
    if let Some(segment_ids) = patch.segment_ids {
        draft.segment_ids = segment_ids;
    }
    if let Some(t) = patch.templates {
        let d = &mut draft.templates;
        if let Some(add) = t.add {
            d.add = add;
        }
        if let Some(remove) = t.remove {
            d.remove = remove;
        }
        if let Some(clear) = t.clear {
            d.clear = clear;
        }
        if let Some(upsert) = t.upsert_segment {
            d.upsert_segment = upsert;
        }
        if let Some(delete) = t.delete_segment {
            d.delete_segment = delete;
        }
    }
    if let Some(batch_size) = patch.batch_size {
        draft.batch_size = batch_size;
    }
    if let Some(timeout) = patch.batch_timeout_ms {
        draft.batch_timeout_ms = timeout;
    }
    segment_syncs::update(&state, caller.actor(), &sync, &draft).await?;
    let sync = load(&state, &caller, &id).await?;
    Ok(HttpResponse::Ok().json(body(&sync)))
}

#[derive(Deserialize, ToSchema)]
pub struct DeleteRequest {
    /// The segment sync's name, to confirm.
    pub confirm: Option<String>,
}

/// Deletes a segment sync with its statistics; `confirm` must repeat its name.
#[utoipa::path(delete, path = "/api/v1/segment-syncs/{id}", tag = "segment-syncs", operation_id = "deleteSegmentSync", security(("bearer" = [])),
    params(("id" = String, Path, description = "Segment sync id")),
    request_body(content = DeleteRequest, description = "`confirm` must repeat the segment sync's name"),
    responses((status = 204), (status = 400, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn delete(
    state: web::Data<AppState>,
    caller: Writer<ApiCaller>,
    id: web::Path<String>,
    body: Option<web::Json<DeleteRequest>>,
) -> Result<HttpResponse, ApiError> {
    let sync = load(&state, &caller, &id).await?;
    let confirm = body
        .and_then(|b| b.into_inner().confirm)
        .unwrap_or_default();
    if confirm != sync.settings.name {
        return Err(ApiError(AppError::Invalid(Invalid::new(
            "confirm",
            "must be the segment sync's name",
        ))));
    }
    segment_syncs::delete(&state, caller.actor(), &sync).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Serialize, ToSchema)]
pub struct ResyncStarted {
    #[schema(format = DateTime)]
    pub resync_requested_at: String,
}

/// Asks for a resync: the sync's exported rows are cleared, then every member is
/// added again in batches. Answers at once; the resync runs in the background.
#[utoipa::path(post, path = "/api/v1/segment-syncs/{id}/resync", tag = "segment-syncs", operation_id = "resyncSegmentSync", security(("bearer" = [])),
    params(("id" = String, Path, description = "Segment sync id")),
    responses((status = 202, body = ResyncStarted), (status = 404, body = crate::error::ErrorBody)))]
pub async fn resync(
    state: web::Data<AppState>,
    caller: Writer<ApiCaller>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let sync = load(&state, &caller, &id).await?;
    let at = segment_syncs::request_resync(&state, caller.actor(), &sync).await?;
    Ok(HttpResponse::Accepted().json(ResyncStarted {
        resync_requested_at: iso(&at),
    }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatsQuery {
    /// Start of the range, ISO 8601 (default: 24 hours before `to`).
    #[param(format = DateTime)]
    from: Option<String>,
    /// End of the range, ISO 8601 (default: now); at most 366 days after `from`.
    #[param(format = DateTime)]
    to: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct StatsError {
    #[schema(format = DateTime)]
    pub at: String,
    pub message: String,
    /// The statement that failed.
    pub sql: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct StatsPoint {
    #[schema(format = DateTime)]
    pub start: String,
    pub succeeded: i64,
    pub failed: i64,
}

#[derive(Serialize, ToSchema)]
pub struct StatsBody {
    /// Statements that succeeded in the range.
    pub succeeded: i64,
    pub failed: i64,
    pub rows_affected: i64,
    /// The newest failures first (at most 20).
    pub recent_errors: Vec<StatsError>,
    /// The range in buckets of `bucket_seconds`, oldest first.
    pub series: Vec<StatsPoint>,
    pub bucket_seconds: i64,
}

fn parse_time(field: &'static str, raw: &str) -> Result<NaiveDateTime, Invalid> {
    DateTime::parse_from_rfc3339(raw.trim())
        .map(|t| t.with_timezone(&Utc).naive_utc())
        .map_err(|_| {
            Invalid::new(
                field,
                "is not an ISO 8601 time such as 2026-01-31T00:00:00Z",
            )
        })
}

/// Statements run from `from` to `to`: successes, failures, rows affected, the
/// recent errors with their SQL, and a series for a chart.
#[utoipa::path(get, path = "/api/v1/segment-syncs/{id}/stats", tag = "segment-syncs", operation_id = "segmentSyncStats", security(("bearer" = [])),
    params(("id" = String, Path, description = "Segment sync id"), StatsQuery),
    responses((status = 200, body = StatsBody), (status = 400, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn stats(
    state: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
    query: web::Query<StatsQuery>,
) -> Result<HttpResponse, ApiError> {
    let to = match crate::api::page::given(query.to.as_deref()) {
        Some(raw) => parse_time("to", raw)?,
        None => sluice_store::now(),
    };
    let from = match crate::api::page::given(query.from.as_deref()) {
        Some(raw) => parse_time("from", raw)?,
        None => to - Duration::hours(24),
    };
    if from >= to {
        return Err(Invalid::new("from", "must be before `to`").into());
    }
    if to - from > Duration::days(MAX_STATS_DAYS) {
        return Err(Invalid::new(
            "to",
            format!("must be at most {MAX_STATS_DAYS} days after `from`"),
        )
        .into());
    }
    let sync = load(&state, &caller, &id).await?;
    let stats = state
        .store
        .sync_stats(caller.tenant(), &sync.id, from, to)
        .await?;
    Ok(HttpResponse::Ok().json(StatsBody {
        succeeded: stats.succeeded,
        failed: stats.failed,
        rows_affected: stats.rows_affected,
        recent_errors: stats
            .recent_errors
            .into_iter()
            .map(|e| StatsError {
                at: iso(&e.at),
                message: e.message,
                sql: e.sql,
            })
            .collect(),
        series: stats
            .series
            .into_iter()
            .map(|b| StatsPoint {
                start: iso(&b.start),
                succeeded: b.succeeded,
                failed: b.failed,
            })
            .collect(),
        bucket_seconds: stats.bucket.num_seconds(),
    }))
}
