//! Every route of the application, in one table.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::{DefaultHeaders, Next, from_fn};
use actix_web::{HttpResponse, web};

use crate::error::{ApiError, AppError};
use crate::{api, metrics, ops, web as pages};

/// Largest form or JSON body accepted by the UI and API.
const BODY_LIMIT: usize = 1024 * 1024;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::FormConfig::default().limit(BODY_LIMIT))
        .app_data(web::PayloadConfig::default().limit(BODY_LIMIT))
        .app_data(
            web::JsonConfig::default()
                .limit(BODY_LIMIT)
                .error_handler(|err, _| {
                    ApiError(AppError::BadRequest(format!("request body: {err}"))).into()
                }),
        )
        .app_data(web::PathConfig::default().error_handler(|_, _| AppError::NotFound.into()))
        .service(
            web::scope("")
                .wrap(from_fn(metrics::record))
                .wrap(tracing_actix_web::TracingLogger::<
                    crate::telemetry::RedactedRequestSpan,
                >::new())
                .wrap(security_headers())
                .wrap(from_fn(strict_transport_security))
                // Operations
                .route("/healthz", web::get().to(ops::healthz))
                .route("/readyz", web::get().to(ops::readyz))
                .route("/metrics", web::get().to(ops::metrics))
                .route("/static/{file:.*}", web::get().to(ops::static_asset))
                // JSON API
                .service(
                    web::scope("/api/v1")
                        .route("/openapi.json", web::get().to(api::openapi::document))
                        .route("/tenant", web::get().to(api::tenant::show))
                        .route("/users", web::get().to(api::users::list))
                        .route("/users/{id}", web::get().to(api::users::show))
                        .route("/audit", web::get().to(api::audit::list))
                        .route("/commands", web::post().to(api::commands::create))
                        .route("/commands", web::get().to(api::commands::list))
                        .route("/commands/{id}", web::get().to(api::commands::show))
                        .route("/commands/{id}", web::delete().to(api::commands::delete))
                        .route("/commands/{id}/run", web::post().to(api::commands::run))
                        .route("/commands/{id}/pause", web::post().to(api::commands::pause))
                        .route(
                            "/commands/{id}/resume",
                            web::post().to(api::commands::resume),
                        )
                        .route("/commands/{id}/runs", web::get().to(api::commands::runs))
                        .route("/inboxes", web::post().to(api::inboxes::create))
                        .route("/inboxes", web::get().to(api::inboxes::list))
                        .route(
                            "/inboxes/{id}/messages",
                            web::get().to(api::inboxes::messages),
                        )
                        .route("/connectionSpecs", web::get().to(api::connections::specs))
                        .route("/connections", web::post().to(api::connections::create))
                        .route("/connections", web::get().to(api::connections::list))
                        .route("/connections/{id}", web::get().to(api::connections::show))
                        .route(
                            "/connections/{id}",
                            web::patch().to(api::connections::update),
                        )
                        .route(
                            "/connections/{id}",
                            web::delete().to(api::connections::delete),
                        )
                        .route(
                            "/connections/{id}/test",
                            web::post().to(api::connections::test),
                        )
                        .route(
                            "/connections/{id}/tables",
                            web::get().to(api::connections::tables),
                        )
                        .route(
                            "/connections/{id}/tables/{name}/columns",
                            web::get().to(api::connections::columns),
                        )
                        .route(
                            "/connections/{id}/tables/{name}/preview",
                            web::get().to(api::connections::preview),
                        )
                        .default_service(web::to(api_not_found)),
                )
                // Public URLs
                .route("/hooks/{token}", web::post().to(crate::hooks::receive))
                // Accounts
                .route("/signup", web::get().to(pages::accounts::signup_form))
                .route("/signup", web::post().to(pages::accounts::signup))
                .route("/login", web::get().to(pages::accounts::login_form))
                .route("/login", web::post().to(pages::accounts::login))
                .route(
                    "/login/workspace",
                    web::post().to(pages::accounts::choose_workspace),
                )
                .route("/logout", web::post().to(pages::accounts::logout))
                .route(
                    "/invite/{token}",
                    web::get().to(pages::accounts::invitation_form),
                )
                .route(
                    "/invite/{token}",
                    web::post().to(pages::accounts::accept_invitation),
                )
                // Pages
                .route("/", web::get().to(pages::dashboard::show))
                .route("/settings", web::get().to(pages::settings::show))
                .route(
                    "/settings/password",
                    web::post().to(pages::settings::change_password),
                )
                .route(
                    "/settings/users/invite",
                    web::post().to(pages::settings::invite_user),
                )
                .route(
                    "/settings/users/{id}/role",
                    web::post().to(pages::settings::change_role),
                )
                .route(
                    "/settings/users/{id}/delete",
                    web::post().to(pages::settings::remove_user),
                )
                .route(
                    "/settings/invitations/{id}/revoke",
                    web::post().to(pages::settings::revoke_invitation),
                )
                .route(
                    "/settings/api-keys",
                    web::post().to(pages::settings::create_api_key),
                )
                .route(
                    "/settings/api-keys/{id}/revoke",
                    web::post().to(pages::settings::revoke_api_key),
                )
                .route("/audit", web::get().to(pages::audit::show))
                // Connectors
                .route("/connectors", web::get().to(pages::connectors::list))
                .route("/connectors", web::post().to(pages::connectors::create))
                .route(
                    "/connectors/new",
                    web::get().to(pages::connectors::new_form),
                )
                .route(
                    "/connectors/guide/{kind}",
                    web::get().to(pages::connectors::guide),
                )
                .route("/connectors/{id}", web::get().to(pages::connectors::show))
                .route(
                    "/connectors/{id}/edit",
                    web::get().to(pages::connectors::edit_form),
                )
                .route(
                    "/connectors/{id}/edit",
                    web::post().to(pages::connectors::update),
                )
                .route(
                    "/connectors/{id}/test",
                    web::post().to(pages::connectors::test),
                )
                .route(
                    "/connectors/{id}/rotate-key",
                    web::post().to(pages::connectors::rotate_key),
                )
                .route(
                    "/connectors/{id}/explore",
                    web::get().to(pages::connectors::explore),
                )
                .route(
                    "/connectors/{id}/explore/table",
                    web::get().to(pages::connectors::table),
                )
                .route(
                    "/connectors/{id}/delete",
                    web::get().to(pages::connectors::delete_form),
                )
                .route(
                    "/connectors/{id}/delete",
                    web::post().to(pages::connectors::delete),
                )
                .route(
                    "/connectors/{id}/commands/new",
                    web::get().to(pages::commands::new_form),
                )
                .route(
                    "/connectors/{id}/commands",
                    web::post().to(pages::commands::create),
                )
                // Commands
                .route("/commands/{id}", web::get().to(pages::commands::show))
                .route("/commands/{id}/live", web::get().to(pages::commands::live))
                .route(
                    "/commands/{id}/edit",
                    web::get().to(pages::commands::edit_form),
                )
                .route(
                    "/commands/{id}/edit",
                    web::post().to(pages::commands::update),
                )
                .route("/commands/{id}/run", web::post().to(pages::commands::run))
                .route(
                    "/commands/{id}/pause",
                    web::post().to(pages::commands::pause),
                )
                .route(
                    "/commands/{id}/resume",
                    web::post().to(pages::commands::resume),
                )
                .route(
                    "/commands/{id}/last-value",
                    web::post().to(pages::commands::set_last_value),
                )
                .route(
                    "/commands/{id}/direct-url",
                    web::post().to(pages::commands::create_direct_url),
                )
                .route(
                    "/commands/{id}/delete",
                    web::post().to(pages::commands::delete),
                )
                // Inboxes
                .route("/inboxes", web::get().to(pages::inboxes::list))
                .route("/inboxes", web::post().to(pages::inboxes::create))
                .route("/inboxes/{id}", web::get().to(pages::inboxes::show))
                .route(
                    "/inboxes/{id}/messages/{message_id}/body",
                    web::get().to(pages::inboxes::download_message),
                )
                .route(
                    "/inboxes/{id}/delete",
                    web::get().to(pages::inboxes::delete_form),
                )
                .route(
                    "/inboxes/{id}/delete",
                    web::post().to(pages::inboxes::delete),
                )
                .route("/{area}", web::get().to(pages::areas::show))
                .default_service(web::to(page_not_found)),
        );
}

fn security_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("X-Frame-Options", "DENY"))
        .add(("Referrer-Policy", "same-origin"))
        .add((
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'",
        ))
}

/// HSTS when Sluice is served over HTTPS (`SLUICE_PUBLIC_URL` is `https://…`).
async fn strict_transport_security(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let https = request
        .app_data::<web::Data<crate::state::AppState>>()
        .is_some_and(|state| state.secure_cookies);
    let mut response = next.call(request).await?;
    if https {
        response.headers_mut().insert(
            header::STRICT_TRANSPORT_SECURITY,
            header::HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
    Ok(response)
}

async fn api_not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError(AppError::NotFound))
}

async fn page_not_found() -> Result<HttpResponse, AppError> {
    Err(AppError::NotFound)
}
