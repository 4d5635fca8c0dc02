//! The public `/hooks/{token}` endpoint: an inbox stores the JSON body; a direct URL
//! starts a one-off run of its command with the body as parameters. Unknown tokens
//! answer 404; each token may be used [`HookRateLimit`] times a minute (429 with
//! Retry-After); bodies are limited in size and nesting by the store's
//! [`InboxLimits`](sluice_store::inboxes::InboxLimits), checked before parsing.

mod rate_limit;
pub mod urls;

pub use rate_limit::HookRateLimit;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use futures::StreamExt;
use serde::de::IgnoredAny;
use serde_json::{Value, json};
use sluice_store::commands::CommandKind;
use sluice_store::domain::Invalid;
use sluice_store::inboxes::HookTarget;

use crate::error::{ApiError, AppError};
use crate::service::commands::{room_for_a_command, run_dynamic};
use crate::state::AppState;

/// Reads the body, refusing more than `max` bytes before reading them.
async fn read_limited(
    req: &HttpRequest,
    mut payload: web::Payload,
    max: usize,
) -> Result<web::BytesMut, AppError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > max) {
        return Err(AppError::PayloadTooLarge);
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| AppError::BadRequest(format!("body: {e}")))?;
        if body.len() + chunk.len() > max {
            return Err(AppError::PayloadTooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

pub async fn receive(
    req: HttpRequest,
    state: web::Data<AppState>,
    token: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let target = state
        .store
        .hook_target(&token)
        .await?
        .ok_or(AppError::NotFound)?;
    state
        .hook_rate_limit
        .check(&token)
        .map_err(|wait| AppError::RateLimited {
            per_minute: state.hook_rate_limit.allowance(),
            retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
        })?;
    let limits = *state.store.inbox_limits();
    let body = read_limited(&req, payload, limits.max_body_bytes).await?;
    limits.check_body(&body).map_err(AppError::InboxRefused)?;
    let not_json = |e: serde_json::Error| {
        AppError::Invalid(Invalid::new("body", format!("is not valid JSON: {e}")))
    };
    match target {
        HookTarget::Inbox(inbox) => {
            // Validated without building it (a nested body's tree is many times its
            // size) and kept exactly as sent; valid JSON is valid UTF-8.
            serde_json::from_slice::<IgnoredAny>(&body).map_err(not_json)?;
            let text = String::from_utf8(body.to_vec())
                .map_err(|_| AppError::Invalid(Invalid::new("body", "is not UTF-8")))?;
            let id = state
                .store
                .add_inbox_message(&inbox.tenant_id, &inbox.id, "http", &text, None)
                .await?;
            Ok(HttpResponse::Accepted().json(json!({"id": id.to_string()})))
        }
        HookTarget::Command {
            tenant_id,
            command_id,
        } => {
            let document: Value = serde_json::from_slice(&body).map_err(not_json)?;
            let Value::Object(_) = &document else {
                return Err(AppError::Invalid(Invalid::new(
                    "body",
                    "must be a JSON object (it becomes the run's params)",
                ))
                .into());
            };
            let bound = state.store.command(&tenant_id, &command_id).await?;
            let mut settings = bound.settings.clone();
            settings.kind = CommandKind::Dynamic;
            settings.schedule = None;
            settings.params = Some(document.to_string());
            room_for_a_command(&state, &tenant_id).await?;
            let dynamic = state
                .store
                .create_command(&tenant_id, &settings, bound.last_value.as_deref(), None)
                .await?;
            // A tenant with no room for another run gets its call queued, not refused:
            // the scheduler starts it when a run ends.
            let run = run_dynamic(&state, &dynamic, "direct").await?;
            Ok(HttpResponse::Accepted().json(json!({
                "command_id": dynamic.id.to_string(),
                "run_id": run.map(|run| run.id.to_string()),
            })))
        }
    }
}
