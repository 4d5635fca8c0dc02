//! The tenant's audit log.

use actix_web::{HttpResponse, web};
use askama::Template;

use crate::auth::CurrentUser;
use crate::error::AppError;
use crate::state::AppState;
use crate::web::{Layout, render, when};

struct EntryRow {
    at: String,
    actor: String,
    action: String,
    target: String,
    detail: String,
    ip: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    layout: Layout,
    entries: Vec<EntryRow>,
}

pub const PAGE_SIZE: i64 = 200;

pub async fn show(
    state: web::Data<AppState>,
    current: CurrentUser,
) -> Result<HttpResponse, AppError> {
    let entries = state
        .store
        .audit_entries(&current.tenant.id, PAGE_SIZE)
        .await?
        .into_iter()
        .map(|e| EntryRow {
            at: when(&e.at),
            actor: e.actor,
            action: e.action,
            target: e.target,
            detail: e.detail,
            ip: e.ip.unwrap_or_default(),
        })
        .collect();
    render(&AuditPage {
        layout: Layout::new(&current, "audit"),
        entries,
    })
}
