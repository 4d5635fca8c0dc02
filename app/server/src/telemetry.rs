//! Structured logs via `tracing`; `RUST_LOG` filters (default `info`).

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Uri;
use actix_web::{Error, HttpMessage};
use tracing::Span;
use tracing_actix_web::{RequestId, RootSpanBuilder};
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,apalis=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second init (tests start several apps in one process) is harmless.
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
}

/// The request log: one span per request whose target has secrets taken out (the
/// token of `/hooks/{token}` and `/invite/{token}`, secret-looking query values),
/// and one "request finished" line with the status. Error messages stay out of it:
/// a validation message may quote what was typed, such as a connection string;
/// internal errors are logged where they are turned into responses.
pub struct RedactedRequestSpan;

impl RootSpanBuilder for RedactedRequestSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let request_id = request
            .extensions()
            .get::<RequestId>()
            .map(ToString::to_string)
            .unwrap_or_default();
        tracing::info_span!(
            "HTTP request",
            http.method = %request.method(),
            http.route = %request.match_pattern().unwrap_or_else(|| "default".into()),
            http.target = %redacted_target(request.uri()),
            http.status_code = tracing::field::Empty,
            request_id = %request_id,
        )
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        let status = match outcome {
            Ok(response) => response.status(),
            Err(error) => error.as_response_error().status_code(),
        };
        span.record("http.status_code", status.as_u16());
        span.in_scope(|| tracing::info!(status = status.as_u16(), "request finished"));
    }
}

/// Path segments that are bearer secrets: the segment after each of these.
const SECRET_PATH_PREFIXES: [&str; 2] = ["hooks", "invite"];
/// Query parameters whose names contain one of these have their values hidden.
const SECRET_QUERY_WORDS: [&str; 6] = ["password", "token", "key", "secret", "csrf", "sig"];
const REDACTED: &str = "[redacted]";

pub fn redacted_target(uri: &Uri) -> String {
    let mut segments: Vec<&str> = uri.path().split('/').collect();
    for i in 1..segments.len() {
        if SECRET_PATH_PREFIXES.contains(&segments[i - 1]) && !segments[i].is_empty() {
            segments[i] = REDACTED;
        }
    }
    let path = segments.join("/");
    match uri.query() {
        None => path,
        Some(query) => {
            let pairs: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((name, _)) if is_secret_name(name) => format!("{name}={REDACTED}"),
                    _ => pair.to_string(),
                })
                .collect();
            format!("{path}?{}", pairs.join("&"))
        }
    }
}

fn is_secret_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SECRET_QUERY_WORDS.iter().any(|word| name.contains(word))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redact(target: &str) -> String {
        redacted_target(&target.parse().unwrap())
    }

    #[test]
    fn tokens_in_paths_and_secret_query_values_are_hidden() {
        assert_eq!(redact("/hooks/hk_abc123"), "/hooks/[redacted]");
        assert_eq!(redact("/invite/inv_xyz?x=1"), "/invite/[redacted]?x=1");
        assert_eq!(
            redact("/login?password=p&api_key=k&Token=t&page=2"),
            "/login?password=[redacted]&api_key=[redacted]&Token=[redacted]&page=2"
        );
        assert_eq!(redact("/connectors/c_1/explore"), "/connectors/c_1/explore");
    }
}
