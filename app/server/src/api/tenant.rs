use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::api::iso;
use crate::auth::ApiCaller;
use crate::error::ApiError;
use crate::state::AppState;

#[derive(Serialize, ToSchema)]
pub struct TenantBody {
    pub id: String,
    pub name: String,
    #[schema(format = DateTime)]
    pub created_at: String,
}

/// The tenant the API key belongs to.
#[utoipa::path(get, path = "/api/v1/tenant", tag = "tenant", operation_id = "getTenant", security(("bearer" = [])),
    responses((status = 200, body = TenantBody), (status = 401, body = crate::error::ErrorBody)))]
pub async fn show(state: web::Data<AppState>, caller: ApiCaller) -> Result<HttpResponse, ApiError> {
    let tenant = state.store.tenant(caller.tenant()).await?;
    Ok(HttpResponse::Ok().json(TenantBody {
        id: tenant.id.to_string(),
        name: tenant.name,
        created_at: iso(&tenant.created_at),
    }))
}
