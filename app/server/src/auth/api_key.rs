use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use futures::future::LocalBoxFuture;
use sluice_store::api_keys::{ApiKey, AuthenticatedKey};
use sluice_store::domain::Role;
use sluice_store::ids::TenantId;

use crate::error::{ApiError, AppError};
use crate::state::AppState;

/// A JSON API caller authenticated by `Authorization: Bearer <api key>`. A key acts
/// with its creator's current role, at most admin (system keys: admin).
#[derive(Debug, Clone)]
pub struct ApiCaller {
    pub key: ApiKey,
    pub role: Role,
}

impl ApiCaller {
    pub fn tenant(&self) -> &TenantId {
        &self.key.tenant_id
    }

    pub fn can_write(&self) -> bool {
        self.role.can_write()
    }

    pub fn actor(&self) -> String {
        format!("key:{}", self.key.name)
    }
}

impl FromRequest for ApiCaller {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = req
                .app_data::<web::Data<AppState>>()
                .ok_or_else(|| AppError::internal(anyhow::anyhow!("no app state")))?;
            let secret = req
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .ok_or(AppError::Unauthenticated)?;
            let AuthenticatedKey { key, role } = state
                .store
                .authenticate_api_key(secret)
                .await?
                .ok_or(AppError::Unauthenticated)?;
            Ok(ApiCaller { key, role })
        })
    }
}
