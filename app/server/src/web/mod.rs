//! Server-rendered pages (askama). Every page extends `base.html`, which takes a
//! [`Layout`] for the header (tenant name, user, navigation, CSRF token).

pub mod accounts;
pub mod areas;
pub mod audit;
pub mod commands;
pub mod connectors;
pub mod dashboard;
pub mod inboxes;
pub mod settings;

use actix_web::HttpResponse;
use actix_web::http::header;
use askama::Template;

use crate::auth::CurrentUser;
use crate::error::AppError;

/// The navigation: every area of the product, in the order users meet them.
/// Rows one page of a list shows; a full page links to the next.
pub const PAGE: i64 = 100;

pub const NAV: &[(&str, &str, &str)] = &[
    ("dashboard", "/", "Dashboard"),
    ("connectors", "/connectors", "Connectors"),
    ("inboxes", "/inboxes", "Inboxes"),
    ("profiles", "/profiles", "Profiles"),
    ("segments", "/segments", "Segments"),
    ("segment-syncs", "/segment-syncs", "Segment syncs"),
    ("triggers", "/triggers", "Triggers"),
    ("audit", "/audit", "Audit log"),
    ("settings", "/settings", "Settings"),
];

/// What the page header needs; `None` on pages shown before sign-in.
pub struct Layout {
    pub tenant_name: String,
    pub user_name: String,
    pub user_email: String,
    pub role: &'static str,
    pub csrf: String,
    pub active: &'static str,
    pub can_write: bool,
    pub is_owner: bool,
}

impl Layout {
    pub fn new(current: &CurrentUser, active: &'static str) -> Self {
        let user = current.user();
        Self {
            tenant_name: current.tenant.name.clone(),
            user_name: user.name.clone(),
            user_email: user.email.clone(),
            role: user.role.as_str(),
            csrf: current.csrf.clone(),
            active,
            can_write: user.role.can_write(),
            is_owner: user.role.can_manage_users(),
        }
    }

    pub fn nav(&self) -> &'static [(&'static str, &'static str, &'static str)] {
        NAV
    }

    pub fn is_active(&self, key: &str) -> bool {
        self.active == key
    }
}

/// Field-level validation messages for a re-rendered form.
#[derive(Debug, Default)]
pub struct FormErrors(Vec<(&'static str, String)>);

impl From<Vec<sluice_store::domain::Invalid>> for FormErrors {
    fn from(invalid: Vec<sluice_store::domain::Invalid>) -> Self {
        let mut errors = Self::default();
        for e in invalid {
            errors.add(e.field, e.message);
        }
        errors
    }
}

impl FormErrors {
    pub fn add(&mut self, field: &'static str, message: impl Into<String>) {
        self.0.push((field, message.into()));
    }

    pub fn get(&self, field: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, m)| m.as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn messages(&self) -> impl Iterator<Item = &(&'static str, String)> {
        self.0.iter()
    }

    /// Records a validation failure, returning the value when it parsed.
    pub fn check<T>(&mut self, parsed: Result<T, sluice_store::domain::Invalid>) -> Option<T> {
        match parsed {
            Ok(v) => Some(v),
            Err(invalid) => {
                self.add(invalid.field, invalid.message);
                None
            }
        }
    }
}

pub fn render(template: &impl Template) -> Result<HttpResponse, AppError> {
    render_with_status(template, actix_web::http::StatusCode::OK)
}

pub fn render_with_status(
    template: &impl Template,
    status: actix_web::http::StatusCode,
) -> Result<HttpResponse, AppError> {
    let html = template.render().map_err(AppError::internal)?;
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(html))
}

/// Marks a page that shows a one-time secret, so no browser or proxy keeps a copy.
pub fn no_store(response: &mut HttpResponse) {
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("private, no-store"),
    );
}

/// Post/redirect/get: a 303 to `location`.
pub fn redirect(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish()
}

/// Formats a stored UTC time for tables.
pub fn when(t: &chrono::NaiveDateTime) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}
