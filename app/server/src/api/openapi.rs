//! `/api/v1/openapi.json`, generated from the handlers' annotations, then completed
//! with what every operation shares (its error answers) and the values that the
//! handlers keep as strings (so a bad one is a 400 naming the field) but accept
//! only from a fixed list.

use actix_web::HttpResponse;
use serde_json::Value;
use sluice_connect::{DbKind, TlsMode};
use sluice_store::commands::{CommandKind, CommandStatus};
use sluice_store::runs::RunStatus;
use utoipa::openapi::path::{HttpMethod, Operation, ParameterIn};
use utoipa::openapi::schema::{Schema, SchemaType, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Required, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use crate::api::{
    audit, commands, connections, inboxes, profiles, segment_syncs, segments, tenant, users,
};
use crate::error::{ErrorBody, ErrorDetail};

#[derive(OpenApi)]
#[openapi(
    info(title = "Sluice API", version = "1", description = "Authenticate with `Authorization: Bearer <API key>` (Settings → API keys). Errors are `{\"error\": {\"code\", \"message\", \"field\"?}}`; another tenant's id answers 404; a method a path does not have answers 405 with `Allow`."),
    paths(
        tenant::show, users::list, users::show, audit::list,
        connections::specs, connections::create, connections::list, connections::show, connections::update,
        connections::delete, connections::test, connections::tables, connections::columns, connections::preview,
        commands::create, commands::list, commands::show, commands::run, commands::pause, commands::resume,
        commands::delete, commands::runs, inboxes::create, inboxes::list, inboxes::show, inboxes::delete,
        inboxes::messages, profiles::put, profiles::batch, profiles::list, profiles::show, profiles::delete,
        segments::create, segments::list, segments::show, segments::rename, segments::delete, segments::add_members,
        segments::remove_members, segments::clear, segments::members, segment_syncs::create, segment_syncs::list,
        segment_syncs::show, segment_syncs::update, segment_syncs::delete, segment_syncs::resync, segment_syncs::stats,
    ),
    components(schemas(
        ErrorBody, ErrorDetail, tenant::TenantBody, users::UserBody, audit::AuditEntryBody,
        connections::ConnectionSpecBody, connections::ParamSpecBody, connections::ConnectionRequest, connections::Auth,
        connections::AuthParams, connections::ConnectionBody, connections::ConnectionParamsBody, connections::CreatedConnection,
        connections::DeleteRequest, connections::TestBody, connections::TableBody, connections::ColumnBody, connections::PreviewBody,
        commands::CommandRequest, commands::CallbackRequest, commands::CreatedCommand, commands::CommandBody, commands::RunBody,
        commands::RunRequest, commands::RunStarted, inboxes::InboxRequest, inboxes::InboxBody, inboxes::MessageBody,
        profiles::ProfileRequest, profiles::ProfileBody, profiles::BatchRequest, profiles::BatchProfile, profiles::BatchBody,
        segments::SegmentRequest, segments::SegmentBody, segments::MembersRequest, segments::MembersChanged, segments::MemberBody,
        segment_syncs::TemplatesRequest, segment_syncs::SyncRequest, segment_syncs::TemplatesPatch, segment_syncs::SyncPatch,
        segment_syncs::SyncBody, segment_syncs::CreatedSync, segment_syncs::DeleteRequest, segment_syncs::ResyncStarted,
        segment_syncs::StatsError, segment_syncs::StatsPoint, segment_syncs::StatsBody,
    )),
    modifiers(&BearerAuth, &OptionalBodies, &ErrorAnswers, &Enums)
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

/// Bodies a call may leave out: an empty run body means the default window, and a
/// delete without `confirm` is refused with a 400 naming it, not a parse error.
struct OptionalBodies;

const OPTIONAL_BODIES: &[&str] = &["runCommand", "deleteConnection", "deleteSegmentSync"];

impl Modify for OptionalBodies {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            for operation in [&mut item.post, &mut item.delete].into_iter().flatten() {
                let optional = OPTIONAL_BODIES
                    .contains(&operation.operation_id.as_deref().unwrap_or_default());
                if let Some(body) = operation.request_body.as_mut().filter(|_| optional) {
                    body.required = Some(Required::False);
                }
            }
        }
    }
}

/// The error answers every operation can give, added where an annotation does not
/// already name them: 401 (every call needs a key), 403 (a viewer's key changing
/// something), 404 (an id in the path), 400 (a query string or body that does not
/// read), 413 and 415 (a body too large or not JSON).
struct ErrorAnswers;

impl Modify for ErrorAnswers {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            let has_path_params = path.contains('{');
            for (method, operation) in [
                (HttpMethod::Get, &mut item.get),
                (HttpMethod::Post, &mut item.post),
                (HttpMethod::Patch, &mut item.patch),
                (HttpMethod::Put, &mut item.put),
                (HttpMethod::Delete, &mut item.delete),
            ] {
                let Some(operation) = operation else { continue };
                let has_query = operation
                    .parameters
                    .iter()
                    .flatten()
                    .any(|p| matches!(p.parameter_in, ParameterIn::Query));
                let has_body = operation.request_body.is_some();
                error_answer(
                    operation,
                    "401",
                    "No API key, or one that is unknown or revoked",
                );
                let changes_state =
                    !READ_ONLY.contains(&operation.operation_id.as_deref().unwrap_or_default());
                if method != HttpMethod::Get && changes_state {
                    error_answer(operation, "403", "The key's creator is a viewer");
                }
                if has_path_params {
                    error_answer(operation, "404", "No such object in this tenant");
                }
                if has_query || has_body {
                    error_answer(operation, "400", "A query parameter or the body is invalid");
                }
                if has_body {
                    error_answer(
                        operation,
                        "413",
                        "The body is larger than 1 MiB (32 MiB for the calls that take up to 10,000 profiles or profile ids)",
                    );
                    error_answer(operation, "415", "The body is not JSON");
                }
            }
        }
    }
}

/// Operations that are not GETs but that a viewer's key may call.
const READ_ONLY: &[&str] = &["testConnection"];

fn error_answer(operation: &mut Operation, status: &str, description: &str) {
    if operation.responses.responses.contains_key(status) {
        return;
    }
    let response = ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build();
    operation
        .responses
        .responses
        .insert(status.to_string(), RefOr::T(response));
}

/// `(schema, property, accepted values)`.
fn enums() -> Vec<(&'static str, &'static str, Vec<&'static str>)> {
    let kinds: Vec<&str> = DbKind::ALL.iter().map(|k| k.as_str()).collect();
    let tls: Vec<&str> = TlsMode::ALL.iter().map(|t| t.as_str()).collect();
    let command_kinds: Vec<&str> = CommandKind::ALL.iter().map(|k| k.as_str()).collect();
    let command_statuses: Vec<&str> = CommandStatus::ALL.iter().map(|s| s.as_str()).collect();
    let run_statuses: Vec<&str> = RunStatus::ALL.iter().map(|s| s.as_str()).collect();
    let reach = vec!["direct", "gateway"];
    vec![
        ("CommandRequest", "kind", command_kinds.clone()),
        ("CommandBody", "kind", command_kinds),
        ("CommandBody", "status", command_statuses.clone()),
        ("CreatedCommand", "status", command_statuses),
        ("RunBody", "status", run_statuses),
        ("ConnectionRequest", "kind", kinds.clone()),
        ("ConnectionRequest", "reach", reach.clone()),
        ("ConnectionBody", "kind", kinds.clone()),
        ("ConnectionBody", "reach", reach),
        ("ConnectionSpecBody", "kind", kinds),
        ("AuthParams", "sslMode", tls.clone()),
        ("ConnectionParamsBody", "sslMode", tls),
        (
            "ParamSpecBody",
            "type",
            vec!["string", "integer", "password", "enum"],
        ),
        ("TableBody", "kind", vec!["table", "view"]),
        ("UserBody", "role", vec!["owner", "admin", "viewer"]),
    ]
}

struct Enums;

impl Modify for Enums {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        for (schema, property, values) in enums() {
            let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(schema) else {
                continue;
            };
            if let Some(RefOr::T(Schema::Object(property))) = object.properties.get_mut(property) {
                let mut values: Vec<Value> = values.into_iter().map(Value::from).collect();
                // An optional field may also be sent as null.
                if nullable(&property.schema_type) {
                    values.push(Value::Null);
                }
                property.enum_values = Some(values);
            }
        }
    }
}

fn nullable(schema_type: &SchemaType) -> bool {
    match schema_type {
        SchemaType::Type(t) => *t == Type::Null,
        SchemaType::Array(types) => types.contains(&Type::Null),
        SchemaType::AnyValue => true,
    }
}

pub async fn document() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_value_is_one_the_server_accepts() {
        use sluice_store::commands::CommandKind;
        for (schema, property, values) in enums() {
            for value in values {
                let accepted = match property {
                    "kind" if schema.starts_with("Command") => CommandKind::parse(value).is_some(),
                    "kind" if schema == "TableBody" => true,
                    "kind" => DbKind::parse(value).is_some(),
                    "sslMode" => TlsMode::parse(value).is_some(),
                    "reach" => sluice_store::domain::Reach::parse(value).is_ok(),
                    // Statuses, roles and parameter types are only ever answered.
                    _ => true,
                };
                assert!(accepted, "{schema}.{property}: {value}");
            }
        }
    }

    #[test]
    fn every_enum_lands_on_a_property_of_the_document() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        for (schema, property, values) in enums() {
            let listed = &doc["components"]["schemas"][schema]["properties"][property]["enum"];
            let listed = listed.as_array().expect("an enum");
            let strings: Vec<&str> = listed.iter().filter_map(Value::as_str).collect();
            assert_eq!(strings, values, "{schema}.{property}");
        }
    }
}
