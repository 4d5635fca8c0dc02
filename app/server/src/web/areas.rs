//! Areas of the product that this build does not have yet. They answer with an
//! honest empty state naming what will live there, never with sample data.

use actix_web::{HttpResponse, web};
use askama::Template;

use crate::auth::CurrentUser;
use crate::error::AppError;
use crate::web::{Layout, render};

struct Area {
    key: &'static str,
    title: &'static str,
    purpose: &'static str,
}

const UPCOMING: &[Area] = &[
    Area {
        key: "profiles",
        title: "Profiles",
        purpose: "Profiles with custom fields, created through the API or a CSV import, that segments group together.",
    },
    Area {
        key: "segments",
        title: "Segments",
        purpose: "Static segments of profiles: add, remove, clear, rename and delete.",
    },
    Area {
        key: "segment-syncs",
        title: "Segment syncs",
        purpose: "SQL templates that run in your database, in batches, when profiles join or leave a segment — with statistics and Start resync.",
    },
    Area {
        key: "triggers",
        title: "Triggers",
        purpose: "INSERT, UPDATE and DELETE on chosen tables delivered as signed CloudEvents webhooks, with retries and event and invocation logs.",
    },
];

#[derive(Template)]
#[template(path = "area_empty.html")]
struct AreaPage {
    layout: Layout,
    title: &'static str,
    purpose: &'static str,
}

pub async fn show(current: CurrentUser, area: web::Path<String>) -> Result<HttpResponse, AppError> {
    let area = UPCOMING
        .iter()
        .find(|a| a.key == area.as_str())
        .ok_or(AppError::NotFound)?;
    render(&AreaPage {
        layout: Layout::new(&current, area.key),
        title: area.title,
        purpose: area.purpose,
    })
}
