//! Cursor pagination shared by the API's lists: `?limit=` (1 to [`MAX_PAGE`],
//! default [`DEFAULT_PAGE`]) and `?before=<id>`, and a `Link: rel="next"` header on
//! every page that may have a successor.

use actix_web::HttpResponseBuilder;
use actix_web::http::header;
use sluice_store::domain::Invalid;

pub const DEFAULT_PAGE: i64 = 100;
pub const MAX_PAGE: i64 = 500;

/// The page size asked for, checked.
pub fn limit(asked: Option<i64>) -> Result<i64, Invalid> {
    let limit = asked.unwrap_or(DEFAULT_PAGE);
    if (1..=MAX_PAGE).contains(&limit) {
        Ok(limit)
    } else {
        Err(Invalid::new(
            "limit",
            format!("must be from 1 to {MAX_PAGE}"),
        ))
    }
}

/// The `before` cursor, parsed as an id of the listed kind (`what` names it).
pub fn cursor<T>(
    raw: Option<&str>,
    parse: impl FnOnce(&str) -> Option<T>,
    what: &str,
) -> Result<Option<T>, Invalid> {
    raw.map(|raw| parse(raw).ok_or_else(|| Invalid::new("before", format!("is not {what}"))))
        .transpose()
}

/// Points at the next page: `next` is the path and query of its first request.
pub fn link_next(response: &mut HttpResponseBuilder, next: &str) {
    response.insert_header((header::LINK, format!("<{next}>; rel=\"next\"")));
}
