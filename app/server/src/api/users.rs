use actix_web::{HttpResponse, web};
use serde::Serialize;
use sluice_store::accounts::User;
use sluice_store::ids::UserId;
use utoipa::ToSchema;

use crate::api::iso;
use crate::auth::ApiCaller;
use crate::error::{ApiError, AppError};
use crate::state::AppState;

#[derive(Serialize, ToSchema)]
pub struct UserBody {
    pub id: String,
    pub email: String,
    pub name: String,
    /// `owner`, `admin` or `viewer`.
    pub role: String,
    #[schema(format = DateTime)]
    pub created_at: String,
}

impl From<User> for UserBody {
    fn from(u: User) -> Self {
        Self {
            id: u.id.to_string(),
            email: u.email,
            name: u.name,
            role: u.role.as_str().into(),
            created_at: iso(&u.created_at),
        }
    }
}

/// The tenant's users.
#[utoipa::path(get, path = "/api/v1/users", tag = "users", operation_id = "listUsers", security(("bearer" = [])),
    responses((status = 200, body = [UserBody]), (status = 401, body = crate::error::ErrorBody)))]
pub async fn list(state: web::Data<AppState>, caller: ApiCaller) -> Result<HttpResponse, ApiError> {
    let users: Vec<UserBody> = state
        .store
        .users(caller.tenant())
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    Ok(HttpResponse::Ok().json(users))
}

/// One user; another tenant's user id answers 404.
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users", operation_id = "getUser", security(("bearer" = [])),
    params(("id" = String, Path, description = "User id")),
    responses((status = 200, body = UserBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn show(
    state: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = UserId::parse(&id).ok_or(AppError::NotFound)?;
    let user = state.store.user(caller.tenant(), &id).await?;
    Ok(HttpResponse::Ok().json(UserBody::from(user)))
}
