//! Why talking to a tenant's database failed, in categories the UI can act on
//! ("wrong password" is not "host unreachable"). Messages never carry the password.

use crate::value::ConvertError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectError {
    #[error("cannot reach the database server: {0}")]
    Unreachable(String),
    #[error("the server refused the login: {0}")]
    Authentication(String),
    #[error("the database does not exist: {0}")]
    UnknownDatabase(String),
    #[error("TLS failed: {0}")]
    Tls(String),
    #[error("timed out: {0}")]
    Timeout(String),
    #[error("query failed: {0}")]
    Query(String),
    /// The table or view asked for is not one the connector's user can see.
    #[error("{0}")]
    NoSuchTable(String),
    #[error("not supported: {0}")]
    Unsupported(String),
    #[error("{field}: {message}")]
    Config { field: String, message: String },
    /// The server's address is one the operator does not let connectors reach.
    #[error("not allowed: {0}")]
    Forbidden(String),
    #[error("database driver error: {0}")]
    Driver(String),
}

impl ConnectError {
    /// A stable, machine-readable name for the kind of failure.
    pub fn category(&self) -> &'static str {
        match self {
            ConnectError::Unreachable(_) => "unreachable",
            ConnectError::Authentication(_) => "authentication",
            ConnectError::UnknownDatabase(_) => "unknown_database",
            ConnectError::Tls(_) => "tls",
            ConnectError::Timeout(_) => "timeout",
            ConnectError::Query(_) => "query",
            ConnectError::NoSuchTable(_) => "no_such_table",
            ConnectError::Unsupported(_) => "unsupported",
            ConnectError::Config { .. } => "config",
            ConnectError::Forbidden(_) => "forbidden",
            ConnectError::Driver(_) => "driver",
        }
    }

    pub(crate) fn config(field: impl Into<String>, message: impl Into<String>) -> Self {
        ConnectError::Config {
            field: field.into(),
            message: message.into(),
        }
    }

    /// Removes `secret` from the message, in case a driver echoed it.
    pub(crate) fn redacted(self, secret: Option<&str>) -> Self {
        match secret.filter(|s| !s.is_empty()) {
            Some(secret) => self.replaced(secret, "***"),
            None => self,
        }
    }

    /// Replaces every occurrence of `from` in the message with `to`.
    pub(crate) fn replaced(self, from: &str, to: &str) -> Self {
        if from.is_empty() {
            return self;
        }
        let scrub = |text: String| text.replace(from, to);
        match self {
            ConnectError::Unreachable(m) => ConnectError::Unreachable(scrub(m)),
            ConnectError::Authentication(m) => ConnectError::Authentication(scrub(m)),
            ConnectError::UnknownDatabase(m) => ConnectError::UnknownDatabase(scrub(m)),
            ConnectError::Tls(m) => ConnectError::Tls(scrub(m)),
            ConnectError::Timeout(m) => ConnectError::Timeout(scrub(m)),
            ConnectError::Query(m) => ConnectError::Query(scrub(m)),
            ConnectError::NoSuchTable(m) => ConnectError::NoSuchTable(scrub(m)),
            ConnectError::Unsupported(m) => ConnectError::Unsupported(scrub(m)),
            ConnectError::Config { field, message } => ConnectError::Config {
                field,
                message: scrub(message),
            },
            ConnectError::Driver(m) => ConnectError::Driver(scrub(m)),
            ConnectError::Forbidden(m) => ConnectError::Forbidden(scrub(m)),
        }
    }
}

impl From<ConvertError> for ConnectError {
    fn from(error: ConvertError) -> Self {
        ConnectError::Unsupported(error.to_string())
    }
}

/// Classifies an I/O failure while connecting to `address`.
pub(crate) fn io_error(address: &str, error: &std::io::Error) -> ConnectError {
    use std::io::ErrorKind;
    match error.kind() {
        ErrorKind::TimedOut => {
            ConnectError::Unreachable(format!("{address}: connection timed out"))
        }
        ErrorKind::ConnectionRefused => {
            ConnectError::Unreachable(format!("{address}: connection refused"))
        }
        _ => ConnectError::Unreachable(format!("{address}: {error}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_are_stable_names() {
        let cases = [
            (ConnectError::Unreachable(String::new()), "unreachable"),
            (
                ConnectError::Authentication(String::new()),
                "authentication",
            ),
            (
                ConnectError::UnknownDatabase(String::new()),
                "unknown_database",
            ),
            (ConnectError::Tls(String::new()), "tls"),
            (ConnectError::Timeout(String::new()), "timeout"),
            (ConnectError::Query(String::new()), "query"),
            (ConnectError::NoSuchTable(String::new()), "no_such_table"),
            (ConnectError::Unsupported(String::new()), "unsupported"),
            (ConnectError::config("path", "x"), "config"),
            (ConnectError::Driver(String::new()), "driver"),
        ];
        for (error, category) in cases {
            assert_eq!(error.category(), category);
        }
    }

    #[test]
    fn redaction_removes_the_password_from_every_message() {
        let error = ConnectError::Authentication("user x with password hunter2".into());
        let text = error.redacted(Some("hunter2")).to_string();
        assert!(!text.contains("hunter2"), "{text}");
        let error = ConnectError::config("password", "hunter2 is bad");
        assert!(
            !error
                .redacted(Some("hunter2"))
                .to_string()
                .contains("hunter2")
        );
    }
}
