use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::api::iso;
use crate::auth::ApiCaller;
use crate::error::ApiError;
use crate::state::AppState;

#[derive(Serialize, ToSchema)]
pub struct AuditEntryBody {
    pub id: String,
    #[schema(format = DateTime)]
    pub at: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: String,
    pub ip: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// At most this many entries, newest first (1–1000, default 100; larger
    /// values are read as 1000, smaller as 1).
    limit: Option<i64>,
}

/// The tenant's audit log, newest first.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", operation_id = "listAuditEntries", security(("bearer" = [])), params(AuditQuery),
    responses((status = 200, body = [AuditEntryBody]), (status = 401, body = crate::error::ErrorBody)))]
pub async fn list(
    state: web::Data<AppState>,
    caller: ApiCaller,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let entries: Vec<AuditEntryBody> = state
        .store
        .audit_entries(caller.tenant(), limit)
        .await?
        .into_iter()
        .map(|e| AuditEntryBody {
            id: e.id,
            at: iso(&e.at),
            actor: e.actor,
            action: e.action,
            target: e.target,
            detail: e.detail,
            ip: e.ip,
        })
        .collect();
    Ok(HttpResponse::Ok().json(entries))
}
