//! Every route of the application, in one table.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header;
use actix_web::middleware::{DefaultHeaders, Next, from_fn};
use actix_web::{FromRequest, Handler, HttpResponse, Responder, web};

use crate::error::{ApiError, AppError, api_json_error, api_query_error};
use crate::{api, metrics, ops, web as pages};

/// Largest form or JSON body accepted by the UI and API.
const BODY_LIMIT: usize = 1024 * 1024;

/// Largest body of the calls that take up to 10,000 profiles or profile ids.
const BATCH_BODY_LIMIT: usize = 32 * 1024 * 1024;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::FormConfig::default().limit(BODY_LIMIT))
        .app_data(web::PayloadConfig::default().limit(BODY_LIMIT))
        .app_data(
            web::JsonConfig::default()
                .limit(BODY_LIMIT)
                .error_handler(|err, _| api_json_error(err).into()),
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
                .service(api_scope())
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

/// `/api/v1`: every resource answers 405 with `Allow` for a method it does not
/// have, an unknown path 404, and every extractor failure SPEC's JSON error shape.
fn api_scope() -> actix_web::Scope {
    use api::{
        audit, commands, connections, inboxes, openapi, profiles, segment_syncs, segments, tenant,
        users,
    };
    web::scope("/api/v1")
        .app_data(
            web::JsonConfig::default()
                .limit(BODY_LIMIT)
                .error_handler(|err, _| api_json_error(err).into()),
        )
        .app_data(web::QueryConfig::default().error_handler(|err, _| api_query_error(err).into()))
        .app_data(
            web::PathConfig::default().error_handler(|_, _| ApiError(AppError::NotFound).into()),
        )
        .service(
            ApiResource::new("/openapi.json")
                .get(openapi::document)
                .finish(),
        )
        .service(ApiResource::new("/tenant").get(tenant::show).finish())
        .service(ApiResource::new("/users").get(users::list).finish())
        .service(ApiResource::new("/users/{id}").get(users::show).finish())
        .service(ApiResource::new("/audit").get(audit::list).finish())
        .service(
            ApiResource::new("/commands")
                .post(commands::create)
                .get(commands::list)
                .finish(),
        )
        .service(
            ApiResource::new("/commands/{id}")
                .get(commands::show)
                .delete(commands::delete)
                .finish(),
        )
        .service(
            ApiResource::new("/commands/{id}/run")
                .post(commands::run)
                .finish(),
        )
        .service(
            ApiResource::new("/commands/{id}/pause")
                .post(commands::pause)
                .finish(),
        )
        .service(
            ApiResource::new("/commands/{id}/resume")
                .post(commands::resume)
                .finish(),
        )
        .service(
            ApiResource::new("/commands/{id}/runs")
                .get(commands::runs)
                .finish(),
        )
        .service(
            ApiResource::new("/inboxes")
                .post(inboxes::create)
                .get(inboxes::list)
                .finish(),
        )
        .service(
            ApiResource::new("/inboxes/{id}")
                .get(inboxes::show)
                .delete(inboxes::delete)
                .finish(),
        )
        .service(
            ApiResource::new("/inboxes/{id}/messages")
                .get(inboxes::messages)
                .finish(),
        )
        .service(
            ApiResource::new("/connectionSpecs")
                .get(connections::specs)
                .finish(),
        )
        .service(
            ApiResource::new("/connections")
                .post(connections::create)
                .get(connections::list)
                .finish(),
        )
        .service(
            ApiResource::new("/connections/{id}")
                .get(connections::show)
                .patch(connections::update)
                .delete(connections::delete)
                .finish(),
        )
        .service(
            ApiResource::new("/connections/{id}/test")
                .post(connections::test)
                .finish(),
        )
        .service(
            ApiResource::new("/connections/{id}/tables")
                .get(connections::tables)
                .finish(),
        )
        .service(
            ApiResource::new("/connections/{id}/tables/{name}/columns")
                .get(connections::columns)
                .finish(),
        )
        .service(
            ApiResource::new("/connections/{id}/tables/{name}/preview")
                .get(connections::preview)
                .finish(),
        )
        .service(ApiResource::new("/profiles").get(profiles::list).finish())
        .service(
            ApiResource::new("/profiles:batch")
                .app_data(
                    web::JsonConfig::default()
                        .limit(BATCH_BODY_LIMIT)
                        .error_handler(|err, _| api_json_error(err).into()),
                )
                .post(profiles::batch)
                .finish(),
        )
        .service(
            ApiResource::new("/profiles/{id}")
                .get(profiles::show)
                .put(profiles::put)
                .delete(profiles::delete)
                .finish(),
        )
        .service(
            ApiResource::new("/segments")
                .post(segments::create)
                .get(segments::list)
                .finish(),
        )
        .service(
            ApiResource::new("/segments/{id}")
                .get(segments::show)
                .patch(segments::rename)
                .delete(segments::delete)
                .finish(),
        )
        .service(
            ApiResource::new("/segments/{id}/members")
                .app_data(
                    web::JsonConfig::default()
                        .limit(BATCH_BODY_LIMIT)
                        .error_handler(|err, _| api_json_error(err).into()),
                )
                .get(segments::members)
                .post(segments::add_members)
                .delete(segments::remove_members)
                .finish(),
        )
        .service(
            ApiResource::new("/segments/{id}/clear")
                .post(segments::clear)
                .finish(),
        )
        .service(
            ApiResource::new("/segment-syncs")
                .post(segment_syncs::create)
                .get(segment_syncs::list)
                .finish(),
        )
        .service(
            ApiResource::new("/segment-syncs/{id}")
                .get(segment_syncs::show)
                .patch(segment_syncs::update)
                .delete(segment_syncs::delete)
                .finish(),
        )
        .service(
            ApiResource::new("/segment-syncs/{id}/stats")
                .get(segment_syncs::stats)
                .finish(),
        )
        .service(
            ApiResource::new("/segment-syncs/{id}/resync")
                .post(segment_syncs::resync)
                .finish(),
        )
        .default_service(web::to(api_not_found))
}

/// One API path with its methods; [`ApiResource::finish`] answers any other
/// method with 405 and the `Allow` header listing these.
struct ApiResource {
    resource: actix_web::Resource,
    allow: Vec<Method>,
}

impl ApiResource {
    fn new(path: &str) -> Self {
        Self {
            resource: web::resource(path),
            allow: Vec::new(),
        }
    }

    fn on<F, Args>(mut self, method: Method, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.resource = self.resource.route(web::method(method.clone()).to(handler));
        self.allow.push(method);
        self
    }

    fn get<F, Args>(self, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.on(Method::GET, handler)
    }

    /// Configuration for this path only (a larger body limit).
    fn app_data<U: 'static>(mut self, data: U) -> Self {
        self.resource = self.resource.app_data(data);
        self
    }

    fn put<F, Args>(self, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.on(Method::PUT, handler)
    }

    fn post<F, Args>(self, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.on(Method::POST, handler)
    }

    fn patch<F, Args>(self, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.on(Method::PATCH, handler)
    }

    fn delete<F, Args>(self, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.on(Method::DELETE, handler)
    }

    fn finish(self) -> actix_web::Resource {
        let allow = self
            .allow
            .iter()
            .map(Method::as_str)
            .collect::<Vec<_>>()
            .join(", ");
        self.resource.default_service(web::to(move || {
            let allow = allow.clone();
            async move { Err::<HttpResponse, _>(ApiError(AppError::MethodNotAllowed { allow })) }
        }))
    }
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
