//! Prometheus metrics, served at `/metrics`.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};
use std::time::Instant;

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    http_requests: IntCounterVec,
    http_latency: HistogramVec,
    password_hashes: PasswordHashGauges,
}

/// The argon2 line (`sluice_store::password`), read when scraped: a sign-in flood
/// shows as `waiting`, and `running_peak` never passing the cap shows it holds.
#[derive(Clone)]
struct PasswordHashGauges {
    running: IntGauge,
    waiting: IntGauge,
    running_peak: IntGauge,
}

impl PasswordHashGauges {
    fn register(registry: &Registry) -> Self {
        let gauge = |name: &str, help: &str| {
            let gauge = IntGauge::new(name, help).expect("valid metric");
            registry
                .register(Box::new(gauge.clone()))
                .expect("registered once");
            gauge
        };
        Self {
            running: gauge(
                "password_hashes_running",
                "Argon2 hashes and verifications running now",
            ),
            waiting: gauge(
                "password_hashes_waiting",
                "Argon2 hashes and verifications waiting for a slot",
            ),
            running_peak: gauge(
                "password_hashes_running_peak",
                "The most argon2 computations ever running at once in this process",
            ),
        }
    }

    fn update(&self) {
        let load = sluice_store::password::hash_load();
        let as_i64 = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        self.running.set(as_i64(load.running));
        self.waiting.set(as_i64(load.waiting));
        self.running_peak.set(as_i64(load.peak_running));
    }
}

impl Metrics {
    pub fn new() -> Self {
        let registry =
            Registry::new_custom(Some("sluice".into()), None).expect("valid metric prefix");
        let http_requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests by route pattern, method and status",
            ),
            &["method", "route", "status"],
        )
        .expect("valid metric");
        let http_latency = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "HTTP request latency by route pattern",
            ),
            &["method", "route"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(http_requests.clone()))
            .expect("registered once");
        registry
            .register(Box::new(http_latency.clone()))
            .expect("registered once");
        let password_hashes = PasswordHashGauges::register(&registry);
        Self {
            registry,
            http_requests,
            http_latency,
            password_hashes,
        }
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub fn render(&self) -> String {
        self.password_hashes.update();
        let mut buffer = Vec::new();
        // Encoding our own registry into memory cannot fail.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buffer);
        String::from_utf8(buffer).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Middleware recording every request under its route pattern (never the raw path,
/// which would carry ids and tokens).
pub async fn record(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let metrics = req
        .app_data::<actix_web::web::Data<crate::state::AppState>>()
        .map(|s| s.metrics.clone());
    let method = req.method().to_string();
    let response = next.call(req).await?;
    // Routing has happened by now, so the pattern is known.
    let route = response
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".into());
    if let Some(metrics) = metrics {
        let status = response.status().as_u16().to_string();
        metrics
            .http_requests
            .with_label_values(&[method.as_str(), route.as_str(), status.as_str()])
            .inc();
        metrics
            .http_latency
            .with_label_values(&[method.as_str(), route.as_str()])
            .observe(started.elapsed().as_secs_f64());
    }
    Ok(response)
}
