//! Health, readiness, metrics and the embedded static assets.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use subtle::ConstantTimeEq;

use crate::error::AppError;
use crate::state::AppState;

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok")
}

/// Ready when the control-plane store answers.
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    match state.store.ping().await {
        Ok(()) => HttpResponse::Ok().content_type("text/plain").body("ready"),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            HttpResponse::ServiceUnavailable()
                .content_type("text/plain")
                .body("store unavailable")
        }
    }
}

/// Prometheus metrics, for a scraper holding `SLUICE_METRICS_TOKEN`, or (without
/// a token configured) for the machine itself: they show the instance's activity.
pub async fn metrics(state: web::Data<AppState>, request: HttpRequest) -> HttpResponse {
    let allowed = match &state.metrics_token {
        Some(token) => request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|given| bool::from(given.as_bytes().ct_eq(token.as_bytes()))),
        None => request
            .peer_addr()
            .is_some_and(|peer| peer.ip().is_loopback()),
    };
    if !allowed {
        return HttpResponse::NotFound().finish();
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(state.metrics.render())
}

/// Assets are compiled into the binary, so `sluice` runs from any directory.
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "app.css",
        "text/css",
        include_bytes!("../../../static/app.css"),
    ),
    (
        "app.js",
        "text/javascript",
        include_bytes!("../../../static/app.js"),
    ),
    (
        "vendor/pico/pico.min.css",
        "text/css",
        include_bytes!("../../../static/vendor/pico/pico.min.css"),
    ),
    (
        "vendor/chartjs/chart.umd.min.js",
        "text/javascript",
        include_bytes!("../../../static/vendor/chartjs/chart.umd.min.js"),
    ),
    (
        "charts.js",
        "text/javascript",
        include_bytes!("../../../static/charts.js"),
    ),
    (
        "vendor/htmx/htmx.min.js",
        "text/javascript",
        include_bytes!("../../../static/vendor/htmx/htmx.min.js"),
    ),
];

pub async fn static_asset(file: web::Path<String>) -> Result<HttpResponse, AppError> {
    let (_, content_type, bytes) = ASSETS
        .iter()
        .find(|(name, _, _)| *name == file.as_str())
        .ok_or(AppError::NotFound)?;
    Ok(HttpResponse::Ok()
        .content_type(*content_type)
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(*bytes))
}
