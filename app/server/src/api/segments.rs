//! `/api/v1/segments…`.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sluice_store::integrations::Segment;
use utoipa::{IntoParams, ToSchema};

use crate::api::{iso, page};
use crate::auth::{ApiCaller, Writer};
use crate::error::ApiError;
use crate::service::profiles::parse_ids;
use crate::service::segments::{self, SegmentName};
use crate::state::AppState;

#[derive(Deserialize, ToSchema)]
pub struct SegmentRequest {
    /// 1 to 255 printable characters, unique in the tenant.
    #[schema(min_length = 1, max_length = 255)]
    pub name: String,
}

#[derive(Serialize, ToSchema)]
pub struct SegmentBody {
    pub id: String,
    /// The segment's number in the tenant (from 1): what sync templates render
    /// as `{segment_id}`.
    pub number: i64,
    pub name: String,
    pub members: i64,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

fn body(segment: &Segment) -> SegmentBody {
    SegmentBody {
        id: segment.id.to_string(),
        number: segment.number,
        name: segment.name.clone(),
        members: segment.members,
        created_at: iso(&segment.created_at),
        updated_at: iso(&segment.updated_at),
    }
}

async fn load(state: &AppState, caller: &ApiCaller, raw: &str) -> Result<Segment, ApiError> {
    Ok(segments::find(state, caller.tenant(), raw).await?)
}

/// Creates a segment; the tenant's next number is its `number`.
#[utoipa::path(post, path = "/api/v1/segments", tag = "segments", operation_id = "createSegment", security(("bearer" = [])), request_body = SegmentRequest,
    responses((status = 201, body = SegmentBody), (status = 400, body = crate::error::ErrorBody),
        (status = 409, description = "Another segment has this name", body = crate::error::ErrorBody)))]
pub async fn create(
    state: web::Data<AppState>,
    caller: Writer<ApiCaller>,
    request: web::Json<SegmentRequest>,
) -> Result<HttpResponse, ApiError> {
    let name = SegmentName::parse(&request.name)?;
    let segment = segments::create(&state, caller.actor(), &name).await?;
    Ok(HttpResponse::Created().json(body(&segment)))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Page size, 1 to 500 (default 100).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 500)]
    limit: Option<String>,
    /// Cursor: segments whose number is above this one (the `Link: rel="next"`
    /// header of the previous page carries it).
    #[param(value_type = Option<i64>, minimum = 1)]
    after: Option<String>,
}

/// The tenant's segments by number, with their member counts, a page at a time.
#[utoipa::path(get, path = "/api/v1/segments", tag = "segments", operation_id = "listSegments", security(("bearer" = [])), params(ListQuery),
    responses((status = 200, body = [SegmentBody])))]
pub async fn list(
    state: web::Data<AppState>,
    caller: ApiCaller,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = page::limit(query.limit.as_deref())?;
    let after = page::given(query.after.as_deref())
        .map(|raw| page::bounded("after", Some(raw), 0, i64::MAX))
        .transpose()?;
    let found = state.store.segments(caller.tenant(), after, limit).await?;
    let mut response = HttpResponse::Ok();
    if let Some(last) = found.last().filter(|_| found.len() as i64 == limit) {
        page::link_next(
            &mut response,
            &format!("/api/v1/segments?limit={limit}&after={}", last.number),
        );
    }
    Ok(response.json(found.iter().map(body).collect::<Vec<_>>()))
}

#[utoipa::path(get, path = "/api/v1/segments/{id}", tag = "segments", operation_id = "getSegment", security(("bearer" = [])),
    params(("id" = String, Path, description = "Segment id")),
    responses((status = 200, body = SegmentBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn show(
    state: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let segment = load(&state, &caller, &id).await?;
    Ok(HttpResponse::Ok().json(body(&segment)))
}

/// Renames a segment (syncs export it as a segment update).
#[utoipa::path(patch, path = "/api/v1/segments/{id}", tag = "segments", operation_id = "renameSegment", security(("bearer" = [])),
    params(("id" = String, Path, description = "Segment id")), request_body = SegmentRequest,
    responses((status = 200, body = SegmentBody), (status = 400, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody),
        (status = 409, description = "Another segment has this name", body = crate::error::ErrorBody)))]
pub async fn rename(
    state: web::Data<AppState>,
    caller: Writer<ApiCaller>,
    id: web::Path<String>,
    request: web::Json<SegmentRequest>,
) -> Result<HttpResponse, ApiError> {
    let segment = load(&state, &caller, &id).await?;
    let name = SegmentName::parse(&request.name)?;
    segments::rename(&state, caller.actor(), &segment, &name).await?;
    let segment = load(&state, &caller, &id).await?;
    Ok(HttpResponse::Ok().json(body(&segment)))
}

/// Deletes a segment and its members (syncs export the deletion).
#[utoipa::path(delete, path = "/api/v1/segments/{id}", tag = "segments", operation_id = "deleteSegment", security(("bearer" = [])),
    params(("id" = String, Path, description = "Segment id")),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody)))]
pub async fn delete(
    state: web::Data<AppState>,
    caller: Writer<ApiCaller>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let segment = load(&state, &caller, &id).await?;
    segments::delete(&state, caller.actor(), &segment).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize, ToSchema)]
pub struct MembersRequest {
    /// 1 to 10,000 profile ids, all of them the tenant's profiles.
    #[schema(value_type = Vec<String>)]
    pub profile_ids: Vec<Value>,
}

#[derive(Serialize, ToSchema)]
pub struct MembersChanged {
    /// How many profiles joined or left (those already in, or not in, count 0).
    pub changed: usize,
}

/// Adds profiles to a segment; unknown profile ids are a 400 listing them, and
/// nothing changes.
#[utoipa::path(post, path = "/api/v1/segments/{id}/members", tag = "segments", operation_id = "addSegmentMembers", security(("bearer" = [])),
    params(("id" = String, Path, description = "Segment id")), request_body = MembersRequest,
    responses((status = 200, body = MembersChanged), (status = 400, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn add_members(
    state: web::Data<AppState>,
    caller: Writer<ApiCaller>,
    id: web::Path<String>,
    request: web::Json<MembersRequest>,
) -> Result<HttpResponse, ApiError> {
    let segment = load(&state, &caller, &id).await?;
    let ids = parse_ids(&request.profile_ids, "profile_ids")?;
    let changed =
        segments::add_members(&state, caller.actor(), &segment, &ids, "profile_ids").await?;
    Ok(HttpResponse::Ok().json(MembersChanged { changed }))
}

/// Removes profiles from a segment; unknown profile ids are a 400 listing them.
#[utoipa::path(delete, path = "/api/v1/segments/{id}/members", tag = "segments", operation_id = "removeSegmentMembers", security(("bearer" = [])),
    params(("id" = String, Path, description = "Segment id")), request_body = MembersRequest,
    responses((status = 200, body = MembersChanged), (status = 400, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn remove_members(
    state: web::Data<AppState>,
    caller: Writer<ApiCaller>,
    id: web::Path<String>,
    request: web::Json<MembersRequest>,
) -> Result<HttpResponse, ApiError> {
    let segment = load(&state, &caller, &id).await?;
    let ids = parse_ids(&request.profile_ids, "profile_ids")?;
    let changed =
        segments::remove_members(&state, caller.actor(), &segment, &ids, "profile_ids").await?;
    Ok(HttpResponse::Ok().json(MembersChanged { changed }))
}

/// Removes every member of a segment.
#[utoipa::path(post, path = "/api/v1/segments/{id}/clear", tag = "segments", operation_id = "clearSegment", security(("bearer" = [])),
    params(("id" = String, Path, description = "Segment id")),
    responses((status = 200, body = MembersChanged), (status = 404, body = crate::error::ErrorBody)))]
pub async fn clear(
    state: web::Data<AppState>,
    caller: Writer<ApiCaller>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let segment = load(&state, &caller, &id).await?;
    let changed = segments::clear(&state, caller.actor(), &segment).await?;
    Ok(HttpResponse::Ok().json(MembersChanged { changed }))
}

#[derive(Serialize, ToSchema)]
pub struct MemberBody {
    pub profile_id: String,
    #[schema(format = DateTime)]
    pub added_at: String,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MembersQuery {
    /// Page size, 1 to 500 (default 100).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 500)]
    limit: Option<String>,
    /// Cursor: members whose profile id sorts after this one.
    after: Option<String>,
}

/// A segment's members by profile id, a page at a time.
#[utoipa::path(get, path = "/api/v1/segments/{id}/members", tag = "segments", operation_id = "listSegmentMembers", security(("bearer" = [])),
    params(("id" = String, Path, description = "Segment id"), MembersQuery),
    responses((status = 200, body = [MemberBody]), (status = 404, body = crate::error::ErrorBody)))]
pub async fn members(
    state: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
    query: web::Query<MembersQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = page::limit(query.limit.as_deref())?;
    let segment = load(&state, &caller, &id).await?;
    let found = state
        .store
        .segment_members(
            caller.tenant(),
            &segment.id,
            page::given(query.after.as_deref()),
            limit,
        )
        .await?;
    let mut response = HttpResponse::Ok();
    if let Some(last) = found.last().filter(|_| found.len() as i64 == limit) {
        let after: String =
            url::form_urlencoded::byte_serialize(last.profile_id.as_bytes()).collect();
        page::link_next(
            &mut response,
            &format!(
                "/api/v1/segments/{}/members?limit={limit}&after={after}",
                segment.id
            ),
        );
    }
    Ok(response.json(
        found
            .into_iter()
            .map(|m| MemberBody {
                added_at: iso(&m.added_at),
                profile_id: m.profile_id,
            })
            .collect::<Vec<_>>(),
    ))
}
