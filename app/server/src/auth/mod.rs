//! Who is calling: browser sessions ([`CurrentUser`]), CSRF-checked forms
//! ([`CsrfForm`]) and API keys ([`ApiCaller`]).

mod api_key;
mod csrf;
mod roles;
mod session;
mod throttle;
pub mod workspace_choice;

pub use api_key::ApiCaller;
pub use csrf::{AnonCsrf, AnonCsrfForm, CsrfForm};
pub use roles::{Caller, Owner, Writer};
pub use session::{CurrentUser, expired_session_cookie, session_cookie, session_cookie_name};
pub use throttle::{Throttle, Throttled, email_key};

use actix_web::{HttpRequest, web};
use sluice_store::audit::AuditEvent;
use sluice_store::ids::TenantId;

use crate::error::AppError;
use crate::state::AppState;

/// The client's address: the socket peer, or what a trusted proxy forwarded
/// (`SLUICE_TRUSTED_PROXIES`; from anyone else forwarding headers can be forged).
pub fn client_ip(req: &HttpRequest) -> Option<String> {
    match req.app_data::<web::Data<AppState>>() {
        Some(state) => state.throttle.client_address(req).map(|a| a.to_string()),
        None => req.peer_addr().map(|a| a.ip().to_string()),
    }
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

impl CurrentUser {
    /// Checks the signed-in user's password (confirming a deletion or a password
    /// change), throttled per user. Failures are counted after the check, so the
    /// user's own concurrent confirmations (several tabs) never lock each other out;
    /// a guesser needs this user's session already.
    pub async fn confirm_password(
        &self,
        state: &AppState,
        candidate: &str,
    ) -> Result<bool, AppError> {
        let key = format!("confirm:{}", self.user().id);
        let throttle = &state.throttle;
        throttle
            .refuse_if_locked(&state.store, &key, Throttled::PasswordConfirmation)
            .await?;
        let confirmed = self.user().password_matches(candidate).await;
        if confirmed {
            state.store.clear_attempts(&key).await?;
        } else {
            state
                .store
                .begin_attempt(&key, throttle.password_confirmation())
                .await?;
        }
        Ok(confirmed)
    }
}
