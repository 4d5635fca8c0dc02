//! The dashboard: failing commands first, then the latest runs, and a
//! getting-started guide until the first connector exists.

use actix_web::{HttpResponse, web};
use askama::Template;
use sluice_store::commands::CommandStatus;

use crate::auth::CurrentUser;
use crate::error::AppError;
use crate::state::AppState;
use crate::web::{Layout, render, when};

struct Failing {
    id: String,
    name: String,
    error: String,
    since: String,
}

struct RecentRun {
    command_id: String,
    command: String,
    status: &'static str,
    rows: i64,
    at: String,
    error: String,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    layout: Layout,
    user_count: usize,
    connector_count: usize,
    failing: Vec<Failing>,
    recent: Vec<RecentRun>,
}

pub const RECENT_RUNS: i64 = 15;

pub async fn show(
    state: web::Data<AppState>,
    current: CurrentUser,
) -> Result<HttpResponse, AppError> {
    let tenant = &current.tenant.id;
    let user_count = state.store.users(tenant).await?.len();
    let connector_count = state.store.connectors(tenant).await?.len();
    let commands = state.store.tenant_commands(tenant).await?;
    let failing = commands
        .iter()
        .filter(|c| c.status == CommandStatus::Error)
        .map(|c| Failing {
            id: c.id.to_string(),
            name: c.settings.name.clone(),
            error: c.error.clone().unwrap_or_default(),
            since: when(&c.updated_at),
        })
        .collect();
    let recent = state
        .store
        .recent_runs(tenant, RECENT_RUNS)
        .await?
        .into_iter()
        .map(|r| RecentRun {
            command: commands
                .iter()
                .find(|c| c.id == r.command_id)
                .map(|c| c.settings.name.clone())
                .unwrap_or_default(),
            command_id: r.command_id.to_string(),
            status: r.status.as_str(),
            rows: r.rows,
            at: when(&r.created_at),
            error: r.error.unwrap_or_default(),
        })
        .collect();
    render(&DashboardPage {
        layout: Layout::new(&current, "dashboard"),
        user_count,
        connector_count,
        failing,
        recent,
    })
}
