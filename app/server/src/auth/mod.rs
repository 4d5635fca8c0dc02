//! Who is calling: browser sessions ([`CurrentUser`]), CSRF-checked forms
//! ([`CsrfForm`]) and API keys ([`ApiCaller`]).

mod api_key;
mod csrf;
mod session;

pub use api_key::ApiCaller;
pub use csrf::{AnonCsrf, CsrfForm};
pub use session::{CurrentUser, SESSION_COOKIE, expired_session_cookie, session_cookie};

use actix_web::HttpRequest;

/// The client's address as seen on the socket (forwarding headers can be forged,
/// so they are not trusted for throttling or the audit log).
pub fn client_ip(req: &HttpRequest) -> Option<String> {
    req.peer_addr().map(|a| a.ip().to_string())
}
