//! The one place errors become responses: [`AppError`] renders an HTML page for the
//! UI, and [`ApiError`] (the same error) renders SPEC's JSON shape for the API.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpResponse, ResponseError};
use askama::Template;
use serde::Serialize;
use sluice_store::StoreError;
use sluice_store::domain::Invalid;
use sluice_store::inboxes::InboxRefusal;

/// How long a client should wait after a 503 before trying again.
/// Runs take seconds to minutes; a client polling faster only adds load.
const RUNS_IN_FLIGHT_RETRY_AFTER_SECS: i64 = 5;

const UNAVAILABLE_RETRY_AFTER_SECS: i64 = 1;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("not found")]
    NotFound,
    /// Not found, saying what was looked for (e.g. a table in a tenant's database).
    #[error("{0}")]
    NoSuch(String),
    /// The path exists but not with this method; `allow` lists the methods it has.
    #[error("this URL answers {allow} only")]
    MethodNotAllowed { allow: String },
    #[error("the request body must be JSON (Content-Type: application/json)")]
    UnsupportedMediaType,
    #[error("sign in required")]
    Unauthenticated,
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0}")]
    Invalid(#[from] Invalid),
    /// Invalid, about a part of the request named at run time (a key of a JSON
    /// object, e.g. `auth.params.options.applicationName`).
    #[error("{path}: {message}")]
    InvalidAt { path: String, message: String },
    #[error("{field}: {message}")]
    Conflict {
        field: &'static str,
        message: String,
    },
    #[error("too many {}; try again in {}", what.describe(), wait_text(*retry_after_secs))]
    Throttled {
        what: crate::auth::Throttled,
        retry_after_secs: u64,
    },
    #[error("the form was stale or came from another site; reload the page and try again")]
    Csrf,
    #[error("{0}")]
    BadRequest(String),
    #[error("payload too large")]
    PayloadTooLarge,
    /// Too many requests to one public URL; `retry_after_secs` until the next is allowed.
    #[error(
        "too many requests to this URL: at most {per_minute} a minute; try again in {retry_after_secs} s"
    )]
    RateLimited {
        per_minute: u32,
        retry_after_secs: u64,
    },
    #[error("{0}")]
    InboxRefused(InboxRefusal),
    /// The tenant already has as many runs in flight as the operator allows.
    #[error(
        "this organisation already has {max_runs_in_flight} runs in progress, the most this instance allows; try again when one finishes"
    )]
    RunsInFlight { max_runs_in_flight: i64 },
    /// A tenant's database (or other remote system) could not be used.
    #[error("{0}")]
    Upstream(String),
    /// Our own store (or job queue) is overloaded or unreachable right now.
    #[error("Sluice is busy right now; try again in a moment")]
    Unavailable,
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

/// "N second(s)" under two minutes, else "N minute(s)" (rounded up).
fn wait_text(secs: u64) -> String {
    if secs < 120 {
        format!("{secs} second(s)")
    } else {
        format!("{} minute(s)", secs.div_ceil(60))
    }
}

impl AppError {
    pub fn internal(err: impl Into<anyhow::Error>) -> Self {
        Self::Internal(err.into())
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::NotFound | Self::NoSuch(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unauthenticated => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) | Self::Csrf => StatusCode::FORBIDDEN,
            Self::Invalid(_) | Self::InvalidAt { .. } | Self::BadRequest(_) => {
                StatusCode::BAD_REQUEST
            }
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RateLimited { .. } | Self::RunsInFlight { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::InboxRefused(InboxRefusal::TooDeep { .. }) => StatusCode::BAD_REQUEST,
            // A full inbox is a 413 rather than a 429: waiting does not help until
            // messages are deleted or retention removes them.
            Self::InboxRefused(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Upstream(_) => StatusCode::BAD_GATEWAY,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::NotFound | Self::NoSuch(_) => "not_found",
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::Unauthenticated => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::Csrf => "csrf",
            Self::Invalid(_) | Self::InvalidAt { .. } => "invalid",
            Self::BadRequest(_) => "bad_request",
            Self::Conflict { .. } => "conflict",
            Self::Throttled { .. } => "rate_limited",
            Self::PayloadTooLarge => "payload_too_large",
            Self::RateLimited { .. } => "rate_limited",
            Self::RunsInFlight { .. } => "runs_in_flight",
            Self::InboxRefused(InboxRefusal::BodyTooLarge { .. }) => "payload_too_large",
            Self::InboxRefused(InboxRefusal::TooDeep { .. }) => "too_deep",
            Self::InboxRefused(_) => "inbox_full",
            Self::Upstream(_) => "connection_failed",
            Self::Unavailable => "unavailable",
            Self::Internal(_) => "internal",
        }
    }

    fn field(&self) -> Option<&str> {
        match self {
            Self::Invalid(invalid) => Some(invalid.field),
            Self::InvalidAt { path, .. } => Some(path),
            Self::Conflict { field, .. } => Some(field),
            Self::InboxRefused(refusal) if refusal.is_about_the_body() => Some("body"),
            _ => None,
        }
    }

    /// The name of the limit a request ran into, for the errors that have one.
    fn limit(&self) -> Option<&'static str> {
        match self {
            Self::RateLimited { .. } => Some("rate_per_minute"),
            Self::RunsInFlight { .. } => Some("max_runs_in_flight"),
            Self::InboxRefused(refusal) => Some(refusal.limit()),
            _ => None,
        }
    }

    /// The message shown to people; internal details stay in the log.
    fn public_message(&self) -> String {
        match self {
            Self::Internal(_) => "Something went wrong on our side; it has been logged.".into(),
            Self::Invalid(invalid) => format!("{}: {}", invalid.field, invalid.message),
            Self::InboxRefused(refusal) if refusal.is_about_the_body() => {
                format!("body: {refusal}")
            }
            other => other.to_string(),
        }
    }

    fn log(&self) {
        if let Self::Internal(err) = self {
            tracing::error!(error = ?err, "request failed");
        }
    }

    /// Headers the status calls for: `Retry-After` on the errors worth retrying,
    /// `Allow` on a 405.
    fn headers(&self, response: &mut actix_web::HttpResponseBuilder) {
        if let Some(seconds) = self.retry_after() {
            response.insert_header((header::RETRY_AFTER, seconds.to_string()));
        }
        if let Self::MethodNotAllowed { allow } = self {
            response.insert_header((header::ALLOW, allow.as_str()));
        }
    }

    /// `Retry-After` seconds, for the errors that are worth retrying.
    fn retry_after(&self) -> Option<i64> {
        match self {
            Self::Throttled {
                retry_after_secs, ..
            } => i64::try_from(*retry_after_secs).ok(),
            Self::Unavailable => Some(UNAVAILABLE_RETRY_AFTER_SECS),
            Self::RunsInFlight { .. } => Some(RUNS_IN_FLIGHT_RETRY_AFTER_SECS),
            Self::RateLimited {
                retry_after_secs, ..
            } => i64::try_from(*retry_after_secs).ok(),
            _ => None,
        }
    }
}

impl From<StoreError> for AppError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound { .. } => Self::NotFound,
            StoreError::Conflict { field, message } => Self::Conflict { field, message },
            StoreError::Unavailable(_) => Self::Unavailable,
            StoreError::InboxRefused(refusal) => Self::InboxRefused(refusal),
            other => Self::Internal(other.into()),
        }
    }
}

impl From<sluice_jobs::JobError> for AppError {
    fn from(err: sluice_jobs::JobError) -> Self {
        match err {
            sluice_jobs::JobError::Store(e) => e.into(),
            sluice_jobs::JobError::Queue(e) => {
                tracing::warn!(error = %e, "job queue unavailable");
                Self::Unavailable
            }
            other => Self::Internal(other.into()),
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    status: u16,
    title: &'static str,
    message: String,
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        self.status()
    }

    fn error_response(&self) -> HttpResponse {
        self.log();
        if matches!(self, Self::Unauthenticated) {
            return HttpResponse::SeeOther()
                .insert_header((header::LOCATION, "/login"))
                .finish();
        }
        let status = self.status();
        let page = ErrorPage {
            status: status.as_u16(),
            title: status.canonical_reason().unwrap_or("Error"),
            message: self.public_message(),
        };
        let mut response = HttpResponse::build(status);
        self.headers(&mut response);
        match page.render() {
            Ok(html) => response.content_type("text/html; charset=utf-8").body(html),
            Err(_) => response
                .content_type("text/plain; charset=utf-8")
                .body(page.message),
        }
    }
}

/// The same errors, for the JSON API: `{"error": {"code", "message", "field"?}}`.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct ApiError(#[from] pub AppError);

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        Self(err.into())
    }
}

/// The first of several validation failures (the API names one field at a time).
impl From<Vec<Invalid>> for ApiError {
    fn from(invalid: Vec<Invalid>) -> Self {
        match invalid.into_iter().next() {
            Some(first) => Self(AppError::Invalid(first)),
            None => Self(AppError::BadRequest("invalid request".into())),
        }
    }
}

impl From<Invalid> for ApiError {
    fn from(err: Invalid) -> Self {
        Self(err.into())
    }
}

/// A JSON body the API could not read: too large (413), not JSON by its
/// Content-Type (415), or not the expected shape (400, with serde's position).
pub fn api_json_error(err: actix_web::error::JsonPayloadError) -> ApiError {
    use actix_web::error::{JsonPayloadError, PayloadError};
    ApiError(match err {
        JsonPayloadError::OverflowKnownLength { .. }
        | JsonPayloadError::Overflow { .. }
        | JsonPayloadError::Payload(PayloadError::Overflow) => AppError::PayloadTooLarge,
        JsonPayloadError::ContentType => AppError::UnsupportedMediaType,
        other => AppError::BadRequest(format!("request body: {other}")),
    })
}

/// A body read as bytes that failed: too large (413) or cut short (400).
pub fn api_payload_error(err: &actix_web::Error) -> ApiError {
    use actix_web::error::PayloadError;
    ApiError(match err.as_error::<PayloadError>() {
        Some(PayloadError::Overflow) => AppError::PayloadTooLarge,
        _ => AppError::BadRequest(format!("request body: {err}")),
    })
}

/// A query string the API could not read (a bad `?limit=` and the like).
pub fn api_query_error(err: actix_web::error::QueryPayloadError) -> ApiError {
    ApiError(AppError::BadRequest(format!("query string: {err}")))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `not_found`, `invalid`.
    pub code: &'static str,
    pub message: String,
    /// The request field the error is about, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The limit the request ran into, e.g. `max_messages`, `rate_per_minute`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<&'static str>,
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.0.status()
    }

    fn error_response(&self) -> HttpResponse {
        self.0.log();
        let mut response = HttpResponse::build(self.0.status());
        self.0.headers(&mut response);
        if matches!(self.0, AppError::Unauthenticated) {
            response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
        }
        response.json(ErrorBody {
            error: ErrorDetail {
                code: self.0.code(),
                message: self.0.public_message(),
                field: self.0.field().map(str::to_string),
                limit: self.0.limit(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_store_answers_503_with_retry_after_on_pages_and_api() {
        let busy = || AppError::from(StoreError::Unavailable("sqlite writer: timeout".into()));
        for response in [busy().error_response(), ApiError(busy()).error_response()] {
            assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(
                response.headers().get(header::RETRY_AFTER).unwrap(),
                &UNAVAILABLE_RETRY_AFTER_SECS.to_string()
            );
        }
    }
}
