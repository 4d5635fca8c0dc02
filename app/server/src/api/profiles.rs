//! `/api/v1/profiles…`.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sluice_store::integrations::Profile;
use utoipa::{IntoParams, ToSchema};

use crate::api::{iso, page};
use crate::auth::{ApiCaller, Writer};
use crate::error::{ApiError, AppError};
use crate::service::profiles;
use crate::state::AppState;

#[derive(Deserialize, ToSchema)]
pub struct ProfileRequest {
    /// A JSON object of at most 64 KiB nesting at most 16 levels.
    #[schema(value_type = Object)]
    pub fields: Value,
}

#[derive(Serialize, ToSchema)]
pub struct ProfileBody {
    pub id: String,
    #[schema(value_type = Object)]
    pub fields: Map<String, Value>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

fn body(profile: Profile) -> ProfileBody {
    ProfileBody {
        created_at: iso(&profile.created_at),
        updated_at: iso(&profile.updated_at),
        id: profile.id,
        fields: profile.fields,
    }
}

/// Creates or replaces a profile's fields (201 when created, 200 when replaced).
#[utoipa::path(put, path = "/api/v1/profiles/{id}", tag = "profiles", operation_id = "putProfile", security(("bearer" = [])),
    params(("id" = String, Path, description = "Profile id: 1 to 255 characters, no control characters")),
    request_body = ProfileRequest,
    responses((status = 200, body = ProfileBody), (status = 201, body = ProfileBody), (status = 400, body = crate::error::ErrorBody)))]
pub async fn put(
    state: web::Data<AppState>,
    caller: Writer<ApiCaller>,
    id: web::Path<String>,
    request: web::Json<ProfileRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = profiles::parse_id(&id, "id")?;
    let fields = profiles::parse_fields(&request.fields, "fields")?;
    let (profile, created) = profiles::upsert(&state, caller.actor(), &id, &fields).await?;
    let mut response = if created {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    };
    Ok(response.json(body(profile)))
}

#[derive(Deserialize, ToSchema)]
pub struct BatchRequest {
    /// At most 10,000 profiles with distinct ids; all are saved or none.
    #[schema(value_type = Vec<BatchProfile>)]
    pub profiles: Vec<Value>,
}

#[derive(ToSchema)]
#[allow(dead_code)] // describes the items of `BatchRequest.profiles`
pub struct BatchProfile {
    pub id: String,
    #[schema(value_type = Option<Object>)]
    pub fields: Option<Value>,
}

#[derive(Serialize, ToSchema)]
pub struct BatchBody {
    pub created: usize,
    pub updated: usize,
}

/// Creates or replaces up to 10,000 profiles in one call, all or none; a bad
/// one is a 400 naming it (`profiles[N].id`).
#[utoipa::path(post, path = "/api/v1/profiles:batch", tag = "profiles", operation_id = "batchProfiles", security(("bearer" = [])),
    request_body = BatchRequest,
    responses((status = 200, body = BatchBody), (status = 400, body = crate::error::ErrorBody)))]
pub async fn batch(
    state: web::Data<AppState>,
    caller: Writer<ApiCaller>,
    request: web::Json<BatchRequest>,
) -> Result<HttpResponse, ApiError> {
    let batch = profiles::parse_batch(&request.profiles)?;
    let outcome = profiles::upsert_batch(&state, caller.actor(), &batch).await?;
    Ok(HttpResponse::Ok().json(BatchBody {
        created: outcome.created,
        updated: outcome.updated,
    }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Page size, 1 to 500 (default 100).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 500)]
    limit: Option<String>,
    /// Cursor: profiles whose id sorts after this one (the `Link: rel="next"`
    /// header of the previous page carries it).
    after: Option<String>,
    /// Only profiles whose id starts with this.
    q: Option<String>,
}

fn encoded(raw: &str) -> String {
    url::form_urlencoded::byte_serialize(raw.as_bytes()).collect()
}

/// The tenant's profiles by id, a page at a time (optionally those whose id
/// starts with `q`): a full page carries `Link: <…?after=…>; rel="next"`.
#[utoipa::path(get, path = "/api/v1/profiles", tag = "profiles", operation_id = "listProfiles", security(("bearer" = [])), params(ListQuery),
    responses((status = 200, body = [ProfileBody])))]
pub async fn list(
    state: web::Data<AppState>,
    caller: ApiCaller,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = page::limit(query.limit.as_deref())?;
    let q = page::given(query.q.as_deref());
    let after = page::given(query.after.as_deref());
    let found = state
        .store
        .profiles(caller.tenant(), q, after, limit)
        .await?;
    let mut response = HttpResponse::Ok();
    if let Some(last) = found.last().filter(|_| found.len() as i64 == limit) {
        let mut next = format!("/api/v1/profiles?limit={limit}&after={}", encoded(&last.id));
        if let Some(q) = q {
            next.push_str(&format!("&q={}", encoded(q)));
        }
        page::link_next(&mut response, &next);
    }
    Ok(response.json(found.into_iter().map(body).collect::<Vec<_>>()))
}

/// A profile id from the path: one that cannot be a profile's is not found.
fn path_id(raw: &str) -> Result<sluice_store::integrations::ProfileId, ApiError> {
    sluice_store::integrations::ProfileId::parse(raw).map_err(|_| ApiError(AppError::NotFound))
}

#[utoipa::path(get, path = "/api/v1/profiles/{id}", tag = "profiles", operation_id = "getProfile", security(("bearer" = [])),
    params(("id" = String, Path, description = "Profile id")),
    responses((status = 200, body = ProfileBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn show(
    state: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let profile = state.store.profile(caller.tenant(), &path_id(&id)?).await?;
    Ok(HttpResponse::Ok().json(body(profile)))
}

/// Deletes a profile, removing it from its segments (each sync exports the removal).
#[utoipa::path(delete, path = "/api/v1/profiles/{id}", tag = "profiles", operation_id = "deleteProfile", security(("bearer" = [])),
    params(("id" = String, Path, description = "Profile id")),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody)))]
pub async fn delete(
    state: web::Data<AppState>,
    caller: Writer<ApiCaller>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    profiles::delete(&state, caller.actor(), &path_id(&id)?).await?;
    Ok(HttpResponse::NoContent().finish())
}
