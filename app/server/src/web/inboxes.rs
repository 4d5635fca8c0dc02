//! Inbox pages: list and create, one inbox with its public URL and messages, and a
//! password-confirmed delete; each message shown as a bounded preview with a
//! download of its exact body.

mod preview;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, ContentDisposition, DispositionParam, DispositionType};
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use sluice_store::inboxes::Inbox;

use crate::auth::{CsrfForm, CurrentUser, Writer};
use crate::error::AppError;
use crate::hooks::urls::hook_url;
use crate::service::inboxes::{self, InboxName};
use crate::state::AppState;
use crate::web::{FormErrors, Layout, PAGE, redirect, render, render_with_status, when};
use preview::{PREVIEW_CHARS, preview};

pub const MESSAGES_SHOWN: i64 = 100;

struct InboxView {
    id: String,
    name: String,
    /// The public URL, for those who may change state (it lets anyone post).
    url: Option<String>,
    created: String,
}

fn view(state: &AppState, current: &CurrentUser, inbox: &Inbox) -> InboxView {
    InboxView {
        id: inbox.id.to_string(),
        name: inbox.name.clone(),
        url: current
            .user()
            .role
            .can_write()
            .then(|| hook_url(&state.public_url, &inbox.token)),
        created: when(&inbox.created_at),
    }
}

#[derive(Template)]
#[template(path = "inboxes/list.html")]
struct ListPage {
    layout: Layout,
    inboxes: Vec<InboxView>,
    /// The next page's URL when this one is full.
    next: Option<String>,
    errors: FormErrors,
    name: String,
}

async fn list_page(
    state: &AppState,
    current: &CurrentUser,
    after: Option<&str>,
    errors: FormErrors,
    name: String,
) -> Result<ListPage, AppError> {
    let inboxes = state.store.inboxes(&current.tenant.id, after, PAGE).await?;
    let next = inboxes
        .last()
        .filter(|_| inboxes.len() as i64 == PAGE)
        .map(|last| {
            let after: String =
                url::form_urlencoded::byte_serialize(last.name.as_bytes()).collect();
            format!("/inboxes?after={after}")
        });
    Ok(ListPage {
        layout: Layout::new(current, "inboxes"),
        inboxes: inboxes.iter().map(|i| view(state, current, i)).collect(),
        next,
        errors,
        name,
    })
}

#[derive(Deserialize)]
pub struct ListQuery {
    after: Option<String>,
}

pub async fn list(
    state: web::Data<AppState>,
    current: CurrentUser,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, AppError> {
    let page = list_page(
        &state,
        &current,
        query.after.as_deref(),
        FormErrors::default(),
        String::new(),
    );
    render(&page.await?)
}

#[derive(Deserialize)]
pub struct NewInbox {
    #[serde(default)]
    name: String,
}

pub async fn create(
    state: web::Data<AppState>,
    current: Writer<CurrentUser>,
    CsrfForm(form): CsrfForm<NewInbox>,
) -> Result<HttpResponse, AppError> {
    let mut errors = FormErrors::default();
    let Some(name) = errors.check(InboxName::parse(&form.name)) else {
        return render_with_status(
            &list_page(&state, &current, None, errors, form.name).await?,
            StatusCode::BAD_REQUEST,
        );
    };
    match inboxes::create(&state, current.actor(), &name).await {
        Ok(inbox) => Ok(redirect(&format!("/inboxes/{}", inbox.id))),
        Err(AppError::Conflict { field, message }) => {
            errors.add(field, message);
            render_with_status(
                &list_page(&state, &current, None, errors, form.name).await?,
                StatusCode::CONFLICT,
            )
        }
        Err(other) => Err(other),
    }
}

struct MessageView {
    id: String,
    received: String,
    source: String,
    size: i64,
    /// The start of the body (see [`preview`]); the whole of it is a download.
    body: String,
    truncated: bool,
}

#[derive(Template)]
#[template(path = "inboxes/show.html")]
struct ShowPage {
    layout: Layout,
    inbox: InboxView,
    total: i64,
    messages: Vec<MessageView>,
    preview_bytes: usize,
}

async fn load(state: &AppState, current: &CurrentUser, raw: &str) -> Result<Inbox, AppError> {
    inboxes::find(state, &current.tenant.id, raw).await
}

pub async fn show(
    state: web::Data<AppState>,
    current: CurrentUser,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let inbox = load(&state, &current, &id).await?;
    let total = state
        .store
        .count_inbox_messages(&current.tenant.id, &inbox.id)
        .await?;
    let messages = state
        .store
        .inbox_message_previews(&current.tenant.id, &inbox.id, MESSAGES_SHOWN, PREVIEW_CHARS)
        .await?
        .into_iter()
        .map(|m| {
            let shown = preview(&m.head, m.is_complete());
            MessageView {
                received: when(&m.received_at),
                source: m.source,
                size: m.size,
                body: shown.text,
                truncated: shown.truncated,
                id: m.id,
            }
        })
        .collect();
    render(&ShowPage {
        layout: Layout::new(&current, "inboxes"),
        inbox: view(&state, &current, &inbox),
        total,
        messages,
        preview_bytes: preview::PREVIEW_BYTES,
    })
}

/// One message's exact body, as a JSON file to save rather than a page to open.
pub async fn download_message(
    state: web::Data<AppState>,
    current: CurrentUser,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AppError> {
    let (inbox_id, message_id) = path.into_inner();
    let inbox = load(&state, &current, &inbox_id).await?;
    let message = state
        .store
        .inbox_message(&current.tenant.id, &inbox.id, &message_id)
        .await?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .insert_header(ContentDisposition {
            disposition: DispositionType::Attachment,
            parameters: vec![DispositionParam::Filename(format!("{}.json", message.id))],
        })
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::CACHE_CONTROL, "private, no-store"))
        .body(message.body))
}

#[derive(Template)]
#[template(path = "inboxes/delete.html")]
struct DeletePage {
    layout: Layout,
    inbox: InboxView,
    total: i64,
    errors: FormErrors,
}

pub async fn delete_form(
    state: web::Data<AppState>,
    current: Writer<CurrentUser>,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let inbox = load(&state, &current, &id).await?;
    let total = state
        .store
        .count_inbox_messages(&current.tenant.id, &inbox.id)
        .await?;
    render(&DeletePage {
        layout: Layout::new(&current, "inboxes"),
        inbox: view(&state, &current, &inbox),
        total,
        errors: FormErrors::default(),
    })
}

#[derive(Deserialize)]
pub struct ConfirmForm {
    #[serde(default)]
    password: String,
}

pub async fn delete(
    state: web::Data<AppState>,
    current: Writer<CurrentUser>,
    id: web::Path<String>,
    CsrfForm(form): CsrfForm<ConfirmForm>,
) -> Result<HttpResponse, AppError> {
    let inbox = load(&state, &current, &id).await?;
    if !current.confirm_password(&state, &form.password).await? {
        let total = state
            .store
            .count_inbox_messages(&current.tenant.id, &inbox.id)
            .await?;
        let mut errors = FormErrors::default();
        errors.add("password", "is not your password; nothing was deleted");
        return render_with_status(
            &DeletePage {
                layout: Layout::new(&current, "inboxes"),
                inbox: view(&state, &current, &inbox),
                total,
                errors,
            },
            StatusCode::FORBIDDEN,
        );
    }
    inboxes::delete(&state, current.actor(), &inbox).await?;
    Ok(redirect("/inboxes"))
}
