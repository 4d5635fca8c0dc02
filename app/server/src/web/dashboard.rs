//! The dashboard: failing items first, then recent runs. Until the first connector
//! exists it is a getting-started guide.

use actix_web::{HttpResponse, web};
use askama::Template;

use crate::auth::CurrentUser;
use crate::error::AppError;
use crate::state::AppState;
use crate::web::{Layout, render};

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    layout: Layout,
    user_count: usize,
}

pub async fn show(
    state: web::Data<AppState>,
    current: CurrentUser,
) -> Result<HttpResponse, AppError> {
    let user_count = state.store.users(&current.tenant.id).await?.len();
    render(&DashboardPage {
        layout: Layout::new(&current, "dashboard"),
        user_count,
    })
}
