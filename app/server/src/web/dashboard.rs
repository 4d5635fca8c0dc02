//! The dashboard: failing commands first, then the latest runs, and a
//! getting-started guide until the first connector exists.

use actix_web::{HttpResponse, web};
use askama::Template;

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
    user_count: i64,
    connector_count: i64,
    failing: Vec<Failing>,
    /// How many commands fail in all (`failing` shows the latest few).
    failing_count: i64,
    recent: Vec<RecentRun>,
}

pub const RECENT_RUNS: i64 = 15;

/// Failing commands the dashboard lists; the count says how many more there are.
pub const FAILING_SHOWN: i64 = 20;

pub async fn show(
    state: web::Data<AppState>,
    current: CurrentUser,
) -> Result<HttpResponse, AppError> {
    let tenant = &current.tenant.id;
    let user_count = state.store.count_users(tenant).await?;
    let connector_count = state.store.count_connectors(tenant).await?;
    let (failing, failing_count) = state.store.failing_commands(tenant, FAILING_SHOWN).await?;
    let runs = state.store.recent_runs(tenant, RECENT_RUNS).await?;
    let ids: Vec<_> = runs.iter().map(|r| r.command_id.clone()).collect();
    let names = state.store.command_names(tenant, &ids).await?;
    let recent = runs
        .into_iter()
        .map(|r| RecentRun {
            command: names.get(&r.command_id).cloned().unwrap_or_default(),
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
        failing: failing
            .iter()
            .map(|c| Failing {
                id: c.id.to_string(),
                name: c.settings.name.clone(),
                error: c.error.clone().unwrap_or_default(),
                since: when(&c.updated_at),
            })
            .collect(),
        failing_count,
        recent,
    })
}
