//! Cursor pagination shared by the API's lists: `?limit=` (1 to [`MAX_PAGE`],
//! default [`DEFAULT_PAGE`]) and `?before=<id>`, and a `Link: rel="next"` header on
//! every page that may have a successor.

use actix_web::HttpResponseBuilder;
use actix_web::http::header;
use sluice_store::domain::Invalid;

pub const DEFAULT_PAGE: i64 = 100;
pub const MAX_PAGE: i64 = 500;

/// The page size asked for, checked. It arrives as text so that `?limit=abc`
/// is refused naming `limit`, like `?limit=0`.
pub fn limit(asked: Option<&str>) -> Result<i64, Invalid> {
    bounded("limit", asked, DEFAULT_PAGE, MAX_PAGE)
}

/// A whole number from 1 to `max` in the query string (`default` when absent).
pub fn bounded(
    name: &'static str,
    asked: Option<&str>,
    default: i64,
    max: i64,
) -> Result<i64, Invalid> {
    // `?limit=` is not a number, so it is refused like `?limit=abc`.
    let Some(raw) = asked else {
        return Ok(default);
    };
    raw.trim()
        .parse::<i64>()
        .ok()
        .filter(|n| (1..=max).contains(n))
        .ok_or_else(|| Invalid::new(name, format!("must be a whole number from 1 to {max}")))
}

/// The `before` cursor, parsed as an id of the listed kind (`what` names it);
/// `?before=` with nothing after it is no cursor, as a blank form field would be.
pub fn cursor<T>(
    raw: Option<&str>,
    parse: impl FnOnce(&str) -> Option<T>,
    what: &str,
) -> Result<Option<T>, Invalid> {
    given(raw)
        .map(|raw| parse(raw).ok_or_else(|| Invalid::new("before", format!("is not {what}"))))
        .transpose()
}

/// A query parameter that was given a value (`?name=` alone counts as absent).
pub fn given(raw: Option<&str>) -> Option<&str> {
    raw.filter(|s| !s.is_empty())
}

/// Points at the next page: `next` is the path and query of its first request.
pub fn link_next(response: &mut HttpResponseBuilder, next: &str) {
    response.insert_header((header::LINK, format!("<{next}>; rel=\"next\"")));
}
