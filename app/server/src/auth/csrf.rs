//! CSRF protection for every state-changing form. The token is an HMAC of the
//! caller's session cookie ([`CsrfForm`], every signed-in form) or, for the forms
//! shown before sign-in ([`AnonCsrfForm`]), of a random `sluice_anon` cookie. So
//! it needs no storage, a page on another site can never compute it, and a token
//! for the anonymous cookie (which a neighbouring site could plant) never passes
//! for a signed-in action.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use futures::future::LocalBoxFuture;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use sluice_store::Store;
use sluice_store::secret::random_token;

use crate::auth::session_cookie_name;
use crate::error::AppError;
use crate::state::AppState;

/// The anonymous cookie's name; `__Host-` under HTTPS, like the session's.
fn anon_cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-sluice_anon"
    } else {
        "sluice_anon"
    }
}
/// The anonymous cookie's value on `req`, when it has one worth binding to.
pub(crate) fn anon_cookie_value(req: &HttpRequest, state: &AppState) -> Option<String> {
    req.cookie(anon_cookie_name(state.secure_cookies))
        .map(|c| c.value().to_string())
        .filter(|v| v.len() >= 32)
}

const SESSION_PURPOSE: &str = "csrf:session";
const ANON_PURPOSE: &str = "csrf:anon";

pub(crate) fn session_token(store: &Store, session_cookie: &str) -> String {
    store.secret().sign(SESSION_PURPOSE, session_cookie)
}

/// A signed-in form body of type `T` whose `csrf` field matches the session.
pub struct CsrfForm<T>(pub T);

/// A form shown before sign-in (sign-up, sign-in, accepting an invitation) whose
/// `csrf` field matches the anonymous cookie.
pub struct AnonCsrfForm<T>(pub T);

/// What a token must be bound to.
#[derive(Clone, Copy)]
enum Binding {
    Session,
    Anonymous,
}

#[derive(Deserialize)]
struct CsrfField {
    #[serde(default)]
    csrf: String,
}

fn verify(
    req: &HttpRequest,
    state: &AppState,
    submitted: &str,
    binding: Binding,
) -> Result<(), AppError> {
    let (cookie, purpose) = match binding {
        Binding::Session => (session_cookie_name(state.secure_cookies), SESSION_PURPOSE),
        Binding::Anonymous => (anon_cookie_name(state.secure_cookies), ANON_PURPOSE),
    };
    let valid = !submitted.is_empty()
        && req
            .cookie(cookie)
            .is_some_and(|c| state.store.secret().verify(purpose, c.value(), submitted));
    if valid { Ok(()) } else { Err(AppError::Csrf) }
}

impl<T: DeserializeOwned + 'static> FromRequest for CsrfForm<T> {
    type Error = AppError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let form = checked_form(req, payload, Binding::Session);
        Box::pin(async move { form.await.map(CsrfForm) })
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for AnonCsrfForm<T> {
    type Error = AppError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let form = checked_form(req, payload, Binding::Anonymous);
        Box::pin(async move { form.await.map(AnonCsrfForm) })
    }
}

/// Reads the body, checks its `csrf` field against `binding`, then parses it as `T`.
fn checked_form<T: DeserializeOwned + 'static>(
    req: &HttpRequest,
    payload: &mut Payload,
    binding: Binding,
) -> LocalBoxFuture<'static, Result<T, AppError>> {
    let req = req.clone();
    let body = web::Bytes::from_request(&req, payload);
    Box::pin(async move {
        let body = body.await.map_err(|_| AppError::PayloadTooLarge)?;
        let state = req
            .app_data::<web::Data<AppState>>()
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("no app state")))?;
        let CsrfField { csrf } = serde_urlencoded::from_bytes(&body).map_err(|_| AppError::Csrf)?;
        verify(&req, state, &csrf, binding)?;
        serde_urlencoded::from_bytes::<T>(&body)
            .map_err(|e| AppError::BadRequest(format!("form: {e}")))
    })
}

/// CSRF token for pages shown before sign-in; set `cookie` on the response if any.
pub struct AnonCsrf {
    pub token: String,
    pub cookie: Option<Cookie<'static>>,
}

impl AnonCsrf {
    pub fn for_request(req: &HttpRequest, state: &AppState) -> Self {
        let name = anon_cookie_name(state.secure_cookies);
        let (value, cookie) = match req.cookie(name) {
            Some(existing) if existing.value().len() >= 32 => (existing.value().to_string(), None),
            _ => {
                let value = random_token("anon");
                let cookie = Cookie::build(name, value.clone())
                    .path("/")
                    .http_only(true)
                    .secure(state.secure_cookies)
                    .same_site(SameSite::Strict)
                    .finish();
                (value, Some(cookie))
            }
        };
        Self {
            token: state.store.secret().sign(ANON_PURPOSE, &value),
            cookie,
        }
    }
}
