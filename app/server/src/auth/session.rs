use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use futures::future::LocalBoxFuture;
use sluice_store::accounts::Tenant;
use sluice_store::sessions::{SESSION_LIFETIME, Session};

use crate::auth::csrf;
use crate::error::AppError;
use crate::state::AppState;

/// The session cookie's name. Under HTTPS it carries the `__Host-` prefix: browsers
/// then refuse a cookie of that name set by a sibling subdomain or over plain HTTP,
/// so nobody can plant a session of their choosing (cookie tossing).
pub fn session_cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-sluice_session"
    } else {
        "sluice_session"
    }
}

/// A signed-in user, their tenant and session. Extracting it on a route makes the
/// route require sign-in (anonymous visitors are sent to `/login`).
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub session: Session,
    pub tenant: Tenant,
    /// The CSRF token for forms rendered to this user.
    pub csrf: String,
}

impl CurrentUser {
    pub fn user(&self) -> &sluice_store::accounts::User {
        &self.session.user
    }

    /// `user:<email>`, as recorded in the audit log.
    pub fn actor(&self) -> String {
        format!("user:{}", self.session.user.email)
    }
}

impl FromRequest for CurrentUser {
    type Error = AppError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = req
                .app_data::<web::Data<AppState>>()
                .ok_or_else(|| AppError::internal(anyhow::anyhow!("no app state")))?;
            let token = req
                .cookie(session_cookie_name(state.secure_cookies))
                .ok_or(AppError::Unauthenticated)?;
            let session = state
                .store
                .session_by_token(token.value())
                .await?
                .ok_or(AppError::Unauthenticated)?;
            let tenant = state.store.tenant(&session.user.tenant_id).await?;
            let csrf = csrf::session_token(&state.store, token.value());
            Ok(CurrentUser {
                session,
                tenant,
                csrf,
            })
        })
    }
}

pub fn session_cookie(token: &str, secure: bool) -> Cookie<'static> {
    Cookie::build(session_cookie_name(secure), token.to_string())
        .path("/")
        .http_only(true)
        .secure(secure)
        .same_site(SameSite::Lax)
        .max_age(CookieDuration::seconds(SESSION_LIFETIME.num_seconds()))
        .finish()
}

pub fn expired_session_cookie(secure: bool) -> Cookie<'static> {
    let mut cookie = session_cookie("", secure);
    cookie.make_removal();
    cookie
}
