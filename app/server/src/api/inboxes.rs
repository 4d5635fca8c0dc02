//! `/api/v1/inboxes…`.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sluice_store::ids::MessageId;
use sluice_store::inboxes::Inbox;
use utoipa::{IntoParams, ToSchema};

use crate::api::{iso, page};
use crate::auth::{ApiCaller, Writer};
use crate::error::ApiError;
use crate::hooks::urls::hook_url;
use crate::service::inboxes::{self, InboxName};
use crate::state::AppState;

#[derive(Deserialize, ToSchema)]
pub struct InboxRequest {
    /// 1 to 80 printable characters.
    #[schema(min_length = 1, max_length = 80)]
    pub name: String,
}

#[derive(Serialize, ToSchema)]
pub struct InboxBody {
    pub id: String,
    pub name: String,
    /// The public URL that accepts JSON POSTs; absent for a key whose creator is a
    /// viewer, since anyone holding it can post.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
}

fn body(state: &AppState, caller: &ApiCaller, inbox: &Inbox) -> InboxBody {
    InboxBody {
        id: inbox.id.to_string(),
        name: inbox.name.clone(),
        url: caller
            .can_write()
            .then(|| hook_url(&state.public_url, &inbox.token)),
        created_at: iso(&inbox.created_at),
    }
}

/// Creates an inbox and returns its public URL.
#[utoipa::path(post, path = "/api/v1/inboxes", tag = "inboxes", operation_id = "createInbox", security(("bearer" = [])), request_body = InboxRequest,
    responses((status = 201, body = InboxBody), (status = 400, body = crate::error::ErrorBody),
        (status = 409, description = "Another inbox has this name, or the tenant has as many inboxes as allowed", body = crate::error::ErrorBody)))]
pub async fn create(
    state: web::Data<AppState>,
    caller: Writer<ApiCaller>,
    request: web::Json<InboxRequest>,
) -> Result<HttpResponse, ApiError> {
    let name = InboxName::parse(&request.name)?;
    let inbox = inboxes::create(&state, caller.actor(), &name).await?;
    Ok(HttpResponse::Created().json(body(&state, &caller, &inbox)))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Page size, 1 to 500 (default 100).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 500)]
    limit: Option<String>,
    /// Cursor: inboxes whose name sorts after this one (the `Link: rel="next"`
    /// header of the previous page carries it).
    after: Option<String>,
}

/// The tenant's inboxes by name, a page at a time: a full page carries
/// `Link: <…?after=…>; rel="next"`.
#[utoipa::path(get, path = "/api/v1/inboxes", tag = "inboxes", operation_id = "listInboxes", security(("bearer" = [])), params(ListQuery), responses((status = 200, body = [InboxBody])))]
pub async fn list(
    state: web::Data<AppState>,
    caller: ApiCaller,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = page::limit(query.limit.as_deref())?;
    let inboxes = state
        .store
        .inboxes(caller.tenant(), query.after.as_deref(), limit)
        .await?;
    let mut response = HttpResponse::Ok();
    if let Some(last) = inboxes.last().filter(|_| inboxes.len() as i64 == limit) {
        let after: String = url::form_urlencoded::byte_serialize(last.name.as_bytes()).collect();
        page::link_next(
            &mut response,
            &format!("/api/v1/inboxes?limit={limit}&after={after}"),
        );
    }
    Ok(response.json(
        inboxes
            .iter()
            .map(|i| body(&state, &caller, i))
            .collect::<Vec<_>>(),
    ))
}

async fn load(state: &AppState, caller: &ApiCaller, raw: &str) -> Result<Inbox, ApiError> {
    Ok(inboxes::find(state, caller.tenant(), raw).await?)
}

/// One inbox; another tenant's id answers 404. A viewer's key gets no `url`.
#[utoipa::path(get, path = "/api/v1/inboxes/{id}", tag = "inboxes", operation_id = "getInbox", security(("bearer" = [])),
    params(("id" = String, Path, description = "Inbox id")),
    responses((status = 200, body = InboxBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn show(
    state: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let inbox = load(&state, &caller, &id).await?;
    Ok(HttpResponse::Ok().json(body(&state, &caller, &inbox)))
}

/// Deletes an inbox with all its messages.
#[utoipa::path(delete, path = "/api/v1/inboxes/{id}", tag = "inboxes", operation_id = "deleteInbox", security(("bearer" = [])),
    params(("id" = String, Path, description = "Inbox id")),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody)))]
pub async fn delete(
    state: web::Data<AppState>,
    caller: Writer<ApiCaller>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let inbox = load(&state, &caller, &id).await?;
    inboxes::delete(&state, caller.actor(), &inbox).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Serialize, ToSchema)]
pub struct MessageBody {
    pub id: String,
    #[schema(format = DateTime)]
    pub received_at: String,
    /// `http` or `command:<id>`.
    pub source: String,
    /// The stored JSON as is: never parsed into a tree, so a large nested body
    /// costs its size and no more.
    #[schema(value_type = Value)]
    pub body: Box<RawValue>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MessagesQuery {
    /// Page size, 1 to 500 (default 100).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 500)]
    limit: Option<String>,
    /// Cursor: messages received before this message id (the `Link: rel="next"`
    /// header of the previous page carries it).
    before: Option<String>,
}

/// A page stops early once its bodies pass this size (always one message at least).
const PAGE_BYTES: usize = 8 * 1024 * 1024;

/// Messages received, newest first, a page at a time: a page that is full (by
/// count, or by [`PAGE_BYTES`] of bodies) carries `Link: <…?before=…>; rel="next"`.
#[utoipa::path(get, path = "/api/v1/inboxes/{id}/messages", tag = "inboxes", operation_id = "listMessages", security(("bearer" = [])), params(("id" = String, Path), MessagesQuery),
    responses((status = 200, body = [MessageBody]), (status = 404, body = crate::error::ErrorBody)))]
pub async fn messages(
    state: web::Data<AppState>,
    caller: ApiCaller,
    id: web::Path<String>,
    query: web::Query<MessagesQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = page::limit(query.limit.as_deref())?;
    let before = page::cursor(query.before.as_deref(), MessageId::parse, "a message id")?;
    let inbox = load(&state, &caller, &id).await?;
    let messages = state
        .store
        .inbox_messages(caller.tenant(), &inbox.id, before.as_ref(), limit)
        .await?;
    let fetched = messages.len();
    let (mut page, mut bytes) = (Vec::new(), 0usize);
    for message in messages {
        if !page.is_empty() && bytes + message.body.len() > PAGE_BYTES {
            break;
        }
        bytes += message.body.len();
        page.push(message);
    }
    let mut response = HttpResponse::Ok();
    let more = page.len() < fetched || fetched as i64 == limit;
    if let Some(last) = page.last().filter(|_| more) {
        let next = format!(
            "/api/v1/inboxes/{}/messages?limit={limit}&before={}",
            inbox.id, last.id
        );
        page::link_next(&mut response, &next);
    }
    let body: Vec<MessageBody> = page
        .into_iter()
        .map(|m| MessageBody {
            id: m.id,
            received_at: iso(&m.received_at),
            source: m.source,
            body: stored_json(m.body),
        })
        .collect();
    Ok(response.json(body))
}

/// A stored body as raw JSON; one that is not JSON (never stored by Sluice itself)
/// comes back as a JSON string.
fn stored_json(body: String) -> Box<RawValue> {
    let json = if serde_json::from_str::<&RawValue>(&body).is_ok() {
        body
    } else {
        serde_json::Value::String(body).to_string()
    };
    RawValue::from_string(json).unwrap_or_else(|_| RawValue::NULL.to_owned())
}
