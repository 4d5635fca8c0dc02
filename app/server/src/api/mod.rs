//! The JSON API (v1): bearer API keys, SPEC's error shape, and an OpenAPI document
//! generated from these handlers.

pub mod audit;
pub mod commands;
pub mod connections;
pub mod fields;
pub mod inboxes;
pub mod openapi;
pub mod page;
pub mod profiles;
pub mod segment_syncs;
pub mod segments;
pub mod tenant;
pub mod users;

/// Timestamps in the API: ISO 8601 in UTC.
pub fn iso(t: &chrono::NaiveDateTime) -> String {
    t.and_utc()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
