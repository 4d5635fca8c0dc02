//! The API validates with the same validators as the forms, which name the forms'
//! fields (`callback_url`, `connection_string`). An API answer names the JSON path
//! the client sent instead (`callback.url`, `connectionString`): this is the one
//! table that translates them.

use sluice_store::domain::Invalid;

use crate::error::ApiError;

/// `POST /api/v1/commands`: the callback is an object; the rest keep their names.
pub fn command(field: &'static str) -> &'static str {
    match field {
        "callback_url" => "callback.url",
        "callback_inbox_id" => "callback.inbox_id",
        "callback_kind" => "callback",
        other => other,
    }
}

/// `POST`/`PATCH /api/v1/connections`: parameters live under `auth.params`, unless
/// they came from a `connectionString` (and not from `auth`), which is then the
/// part of the request to fix.
pub fn connection(field: &'static str, from_connection_string: bool) -> &'static str {
    let param = |path: &'static str| {
        if from_connection_string {
            "connectionString"
        } else {
            path
        }
    };
    match field {
        "connection_string" => "connectionString",
        "server" => param("auth.params.server"),
        "port" => param("auth.params.port"),
        "database" => param("auth.params.database"),
        "username" => param("auth.params.username"),
        "password" => param("auth.params.password"),
        "sslMode" | "ssl_mode" => param("auth.params.sslMode"),
        "path" => param("auth.params.path"),
        "options" => param("auth.params.options"),
        other => other,
    }
}

/// The first failure (the API names one field at a time), renamed by `rename`.
pub fn renamed(invalid: Vec<Invalid>, rename: impl Fn(&'static str) -> &'static str) -> ApiError {
    invalid
        .into_iter()
        .map(|i| Invalid::new(rename(i.field), i.message))
        .collect::<Vec<_>>()
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_names_become_json_paths() {
        assert_eq!(command("callback_url"), "callback.url");
        assert_eq!(command("batch_size"), "batch_size");
        assert_eq!(connection("connection_string", false), "connectionString");
        assert_eq!(connection("port", false), "auth.params.port");
        assert_eq!(connection("server", true), "connectionString");
        assert_eq!(connection("name", true), "name");
    }
}
