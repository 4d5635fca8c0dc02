//! `/api/v1/openapi.json`, generated from the handlers' annotations.

use actix_web::HttpResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::api::{audit, commands, connections, inboxes, tenant, users};
use crate::error::{ErrorBody, ErrorDetail};

#[derive(OpenApi)]
#[openapi(
    info(title = "Sluice API", version = "1", description = "Authenticate with `Authorization: Bearer <API key>` (Settings → API keys). Errors are `{\"error\": {\"code\", \"message\", \"field\"?}}`; another tenant's id answers 404."),
    paths(
        tenant::show, users::list, users::show, audit::list,
        connections::specs, connections::create, connections::list, connections::show, connections::update,
        connections::delete, connections::test, connections::tables, connections::columns, connections::preview,
        commands::create, commands::list, commands::show, commands::run, commands::pause, commands::resume,
        commands::delete, commands::runs, inboxes::create, inboxes::list, inboxes::messages,
    ),
    components(schemas(
        ErrorBody, ErrorDetail, tenant::TenantBody, users::UserBody, audit::AuditEntryBody,
        connections::ConnectionSpecBody, connections::ParamSpecBody, connections::ConnectionRequest, connections::Auth,
        connections::AuthParams, connections::ConnectionBody, connections::ConnectionParamsBody, connections::CreatedConnection,
        connections::DeleteRequest, connections::TestBody, connections::TableBody, connections::ColumnBody, connections::PreviewBody,
        commands::CommandRequest, commands::CallbackRequest, commands::CreatedCommand, commands::CommandBody, commands::RunBody,
        commands::RunRequest, commands::RunStarted, inboxes::InboxRequest, inboxes::InboxBody, inboxes::MessageBody,
    )),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

pub async fn document() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}
