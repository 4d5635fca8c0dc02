//! Turns a pasted connection string into [`ConnectionParams`].
//!
//! Three families are understood, told apart by their first characters:
//! - JDBC URLs (`jdbc:mysql://…`, `jdbc:sqlserver://…;k=v`, `jdbc:oracle:thin:…`),
//! - database URLs (`postgres://…`, `mysql://…`, `sqlite:…`),
//! - ODBC/ADO key-value strings (`Server=…;Database=…;UID=…`).
//!
//! Parsing is pure: no DNS, no files, no network. Every failure is a
//! [`ParseError`] naming the part of the string that is wrong; no input panics.

mod authority;
mod fields;
mod jdbc;
mod odbc;
mod oracle;
mod tls;
mod url;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::{Deserialize, Serialize};

use crate::kind::{DbKind, TlsMode};

/// Everything Sluice needs to reach a database, as read from a connection string.
#[derive(Clone, PartialEq, Eq)]
pub struct ConnectionParams {
    pub kind: DbKind,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub database: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub tls: TlsMode,
    /// Every other key the string carried (e.g. `applicationName`, `connectTimeout`,
    /// `instanceName`, `trustServerCertificate`), under the key as written.
    pub options: BTreeMap<String, String>,
    /// SQLite database file (or `:memory:`).
    pub path: Option<String>,
    /// How messages name the SQLite file instead of `path`: the connector's own,
    /// tenant-relative path, so no error shows where the server keeps files.
    pub path_label: Option<String>,
    /// How an Oracle database is addressed; its name is also in `database`.
    pub oracle_service: Option<OracleTarget>,
}

/// Oracle databases are named either by SID (`host:port:SID`) or by service
/// name (`//host:port/service`); the two are not interchangeable on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type", content = "name")]
pub enum OracleTarget {
    Sid(String),
    ServiceName(String),
}

impl OracleTarget {
    pub fn name(&self) -> &str {
        match self {
            OracleTarget::Sid(name) | OracleTarget::ServiceName(name) => name,
        }
    }
}

/// Why a connection string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{part}: {message}")]
pub struct ParseError {
    /// The part of the string that is wrong: `"port"`, `"host"`, `"scheme"`,
    /// `"user/password"`, `"database"`, or a key as written such as `"Server"`.
    pub part: String,
    pub message: String,
}

impl ParseError {
    pub(crate) fn new(part: impl Into<String>, message: impl Into<String>) -> Self {
        ParseError {
            part: part.into(),
            message: message.into(),
        }
    }
}

/// Parses any supported connection string.
///
/// `kind_hint` is the database kind the user picked, if any: it is needed for
/// ODBC strings without a recognisable `Driver=`, and it lets a MariaDB choice
/// survive a `mysql://` URL. Otherwise the string's own kind wins.
pub fn parse_connection_string(
    input: &str,
    kind_hint: Option<DbKind>,
) -> Result<ConnectionParams, ParseError> {
    let input = input.trim();
    if input.is_empty() {
        return Err(ParseError::new(
            "connection string",
            "is empty; paste a JDBC URL (jdbc:…), a URL (postgres://…) \
             or KEY=VALUE pairs (Server=…;Database=…)",
        ));
    }
    if let Some(rest) = strip_prefix_ignore_case(input, "jdbc:") {
        return jdbc::parse(rest, kind_hint);
    }
    if let Some((scheme, rest)) = split_url_scheme(input) {
        return url::parse(scheme, rest, kind_hint);
    }
    if input.contains('=') {
        return odbc::parse(input, kind_hint);
    }
    Err(ParseError::new(
        "connection string",
        format!(
            "{} is not a JDBC URL (jdbc:…), a URL (postgres://…) \
             or KEY=VALUE pairs (Server=…;Database=…)",
            quoted(input)
        ),
    ))
}

impl ConnectionParams {
    /// Empty parameters for `kind`, with the TLS mode a bare string implies.
    pub fn new(kind: DbKind) -> Self {
        ConnectionParams {
            kind,
            host: None,
            port: None,
            database: None,
            username: None,
            password: None,
            tls: kind.default_tls(),
            options: BTreeMap::new(),
            path: None,
            path_label: None,
            oracle_service: None,
        }
    }

    /// The explicit port, else the kind's usual one.
    pub fn effective_port(&self) -> Option<u16> {
        self.port.or(self.kind.default_port())
    }

    /// A canonical URL for display: the password (and any secret-looking
    /// option) is shown as `***`. Parsing it back gives the same parameters,
    /// apart from those secrets.
    pub fn to_url_redacted(&self) -> String {
        if self.kind == DbKind::Sqlite {
            let path = self.path.as_deref().unwrap_or_default();
            let mut url = format!("sqlite:{}", utf8_percent_encode(path, PATH_CHARS_TO_ENCODE));
            append_query(&mut url, self.option_pairs_redacted());
            return url;
        }
        let mut url = format!("{}://", self.kind.as_str());
        url.push_str(&self.userinfo_redacted());
        url.push_str(&self.host_for_url());
        if let Some(port) = self.port {
            url.push_str(&format!(":{port}"));
        }
        let mut query = vec![("sslmode".to_owned(), self.tls.as_str().to_owned())];
        match (&self.oracle_service, &self.database) {
            (Some(OracleTarget::Sid(sid)), _) => query.push(("sid".to_owned(), sid.clone())),
            (Some(OracleTarget::ServiceName(name)), _) | (None, Some(name)) => {
                url.push('/');
                url.push_str(&encode_component(name));
            }
            (None, None) => {}
        }
        query.extend(self.option_pairs_redacted());
        append_query(&mut url, query);
        url
    }

    fn userinfo_redacted(&self) -> String {
        let user = self.username.as_deref().map(encode_component);
        match (user, &self.password) {
            (Some(user), Some(_)) => format!("{user}:***@"),
            (Some(user), None) => format!("{user}@"),
            (None, Some(_)) => ":***@".to_owned(),
            (None, None) => String::new(),
        }
    }

    fn host_for_url(&self) -> String {
        match self.host.as_deref() {
            Some(host) if host.contains(':') => format!("[{host}]"),
            Some(host) => encode_component(host),
            None => String::new(),
        }
    }

    fn option_pairs_redacted(&self) -> Vec<(String, String)> {
        self.options
            .iter()
            .map(|(key, value)| (key.clone(), redact_option(key, value).to_owned()))
            .collect()
    }
}

impl fmt::Debug for ConnectionParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionParams")
            .field("kind", &self.kind)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("database", &self.database)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("tls", &self.tls)
            .field("options", &RedactedOptions(&self.options))
            .field("path", &self.path)
            .field("path_label", &self.path_label)
            .field("oracle_service", &self.oracle_service)
            .finish()
    }
}

struct RedactedOptions<'a>(&'a BTreeMap<String, String>);

impl fmt::Debug for RedactedOptions<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(k, v)| (k, redact_option(k, v))))
            .finish()
    }
}

/// Options such as `sslpassword` or `keyStoreSecret` are as secret as the password.
fn redact_option<'a>(key: &str, value: &'a str) -> &'a str {
    let key = key.to_ascii_lowercase();
    let secret = ["password", "pwd", "secret", "token", "passphrase"]
        .iter()
        .any(|word| key.contains(word));
    if secret { "***" } else { value }
}

/// Everything but unreserved characters (and `*`, so a redacted `***` stays
/// readable), so any text is safe in any URL part.
const COMPONENT_CHARS_TO_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'*')
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Like a component, but a file path keeps its separators readable.
const PATH_CHARS_TO_ENCODE: &AsciiSet = &COMPONENT_CHARS_TO_ENCODE.remove(b'/').remove(b':');

fn encode_component(text: &str) -> String {
    utf8_percent_encode(text, COMPONENT_CHARS_TO_ENCODE).to_string()
}

fn append_query(url: &mut String, pairs: Vec<(String, String)>) {
    for (index, (key, value)) in pairs.iter().enumerate() {
        url.push(if index == 0 { '?' } else { '&' });
        url.push_str(&encode_component(key));
        url.push('=');
        url.push_str(&encode_component(value));
    }
}

/// Echoes (a bounded prefix of) user input inside an error message.
pub(crate) fn quoted(text: &str) -> String {
    const MAX_CHARS: usize = 60;
    match text.char_indices().nth(MAX_CHARS) {
        Some((cut, _)) => format!("{:?}…", &text[..cut]),
        None => format!("{text:?}"),
    }
}

pub(crate) fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix) {
        text.get(prefix.len()..)
    } else {
        None
    }
}

/// `scheme:rest` when `input` starts with an RFC 3986 scheme. ODBC strings never
/// do: their first `:` (as in `Server=tcp:host`) comes after an `=`.
fn split_url_scheme(input: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = input.split_once(':')?;
    let mut chars = scheme.chars();
    let starts_with_letter = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    let scheme_chars_only =
        chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    (starts_with_letter && scheme_chars_only).then_some((scheme, rest))
}

/// MariaDB speaks the MySQL protocol and is often given `mysql://` or
/// `jdbc:mysql:` strings; a user who picked MariaDB meant MariaDB. Otherwise
/// the string names its database more precisely than the hint.
fn reconcile_kind(from_string: DbKind, hint: Option<DbKind>) -> DbKind {
    match (from_string, hint) {
        (DbKind::Mysql, Some(DbKind::Mariadb)) => DbKind::Mariadb,
        _ => from_string,
    }
}
