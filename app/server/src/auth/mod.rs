//! Who is calling: browser sessions ([`CurrentUser`]), CSRF-checked forms
//! ([`CsrfForm`]) and API keys ([`ApiCaller`]).

mod api_key;
mod csrf;
mod session;

pub use api_key::ApiCaller;
pub use csrf::{AnonCsrf, CsrfForm};
pub use session::{CurrentUser, SESSION_COOKIE, expired_session_cookie, session_cookie};

use actix_web::HttpRequest;
use sluice_store::audit::AuditEvent;
use sluice_store::ids::TenantId;

use crate::error::{ApiError, AppError};
use crate::state::AppState;

/// The client's address as seen on the socket (forwarding headers can be forged,
/// so they are not trusted for throttling or the audit log).
pub fn client_ip(req: &HttpRequest) -> Option<String> {
    req.peer_addr().map(|a| a.ip().to_string())
}

/// Records a change in the tenant's audit log, with the caller's address.
async fn record(
    state: &AppState,
    req: &HttpRequest,
    tenant: &TenantId,
    actor: &str,
    action: &str,
    target: &str,
    detail: &str,
) -> Result<(), sluice_store::StoreError> {
    let ip = client_ip(req);
    state
        .store
        .audit(
            tenant,
            AuditEvent {
                actor,
                action,
                target,
                detail,
                ip: ip.as_deref(),
            },
        )
        .await
}

impl CurrentUser {
    /// Audits a change made in the UI.
    pub async fn audit(
        &self,
        state: &AppState,
        req: &HttpRequest,
        action: &str,
        target: &str,
        detail: &str,
    ) -> Result<(), AppError> {
        Ok(record(
            state,
            req,
            &self.tenant.id,
            &self.actor(),
            action,
            target,
            detail,
        )
        .await?)
    }
}

impl ApiCaller {
    /// Audits a change made through the API.
    pub async fn audit(
        &self,
        state: &AppState,
        req: &HttpRequest,
        action: &str,
        target: &str,
    ) -> Result<(), ApiError> {
        Ok(record(
            state,
            req,
            self.tenant(),
            &self.actor(),
            action,
            target,
            "via API",
        )
        .await?)
    }
}
