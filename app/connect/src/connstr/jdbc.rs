//! JDBC URLs: `jdbc:mysql:`, `jdbc:mariadb:`, `jdbc:postgresql:`,
//! `jdbc:sqlserver:`, `jdbc:oracle:thin:` and `jdbc:sqlite:`.

use super::authority::non_empty;
use super::fields::Draft;
use super::{ConnectionParams, ParseError, odbc, oracle, quoted, reconcile_kind, url};
use crate::kind::DbKind;

const ACCEPTED_SUBPROTOCOLS: &str = "mysql, mariadb, postgresql, sqlserver, oracle:thin, sqlite";

/// `rest` is what follows `jdbc:`.
pub(super) fn parse(rest: &str, kind_hint: Option<DbKind>) -> Result<ConnectionParams, ParseError> {
    let (subprotocol, after) = rest.split_once(':').unwrap_or((rest, ""));
    match subprotocol.to_ascii_lowercase().as_str() {
        "mysql" => parse_mysql_family(reconcile_kind(DbKind::Mysql, kind_hint), after),
        "mariadb" => parse_mysql_family(DbKind::Mariadb, after),
        "postgresql" | "postgres" => parse_postgres(after),
        "sqlserver" => parse_sqlserver(after),
        "oracle" => parse_oracle(after),
        "sqlite" => {
            let mut draft = Draft::new(DbKind::Sqlite);
            url::apply_sqlite(&mut draft, after)?;
            draft.finish("path")
        }
        _ => Err(ParseError::new(
            "jdbc subprotocol",
            format!(
                "{} is not supported; use one of {ACCEPTED_SUBPROTOCOLS}",
                quoted(subprotocol)
            ),
        )),
    }
}

fn missing_slashes(prefix: &str) -> ParseError {
    ParseError::new(
        "host",
        format!("expected \"//\" and a host after \"jdbc:{prefix}:\""),
    )
}

/// `//host:port/db?k=v`, optionally with a high-availability mode
/// (`jdbc:mysql:replication://…`, `jdbc:mariadb:failover://…`).
fn parse_mysql_family(kind: DbKind, after: &str) -> Result<ConnectionParams, ParseError> {
    let mut draft = Draft::new(kind);
    let hierarchical = match after.strip_prefix("//") {
        Some(hierarchical) => hierarchical,
        None => {
            let (mode, rest) = after.split_once(':').unwrap_or((after, ""));
            let is_mode_name =
                !mode.is_empty() && mode.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
            match rest.strip_prefix("//") {
                Some(hierarchical) if is_mode_name => {
                    draft
                        .params
                        .options
                        .insert("haMode".to_owned(), mode.to_owned());
                    hierarchical
                }
                _ => return Err(missing_slashes(kind.as_str())),
            }
        }
    };
    url::apply_hierarchical(&mut draft, hierarchical)?;
    draft.finish("host")
}

/// `//host:port/db?k=v`, or pgjdbc's short form `db?k=v` meaning localhost.
fn parse_postgres(after: &str) -> Result<ConnectionParams, ParseError> {
    let mut draft = Draft::new(DbKind::Postgres);
    match after.strip_prefix("//") {
        Some(hierarchical) => url::apply_hierarchical(&mut draft, hierarchical)?,
        None => {
            draft.set_host_port("localhost".to_owned(), None);
            let short = after.strip_prefix('/').unwrap_or(after);
            url::apply_hierarchical(&mut draft, &format!("/{short}"))?;
        }
    }
    draft.finish("host")
}

/// `//host[\instance][:port][;key=value…]`, properties as in ODBC strings.
fn parse_sqlserver(after: &str) -> Result<ConnectionParams, ParseError> {
    let Some(hierarchical) = after.strip_prefix("//") else {
        return Err(missing_slashes("sqlserver"));
    };
    let mut draft = Draft::new(DbKind::Sqlserver);
    let (server, properties) = hierarchical.split_once(';').unwrap_or((hierarchical, ""));
    if !server.trim().is_empty() {
        draft.apply_server("host", server)?;
    }
    for (key, value) in odbc::tokenize(properties)? {
        draft.apply(&key, &value)?;
    }
    draft.finish("host")
}

/// `thin:[user[/password]]@target`; see [`oracle::apply_target`] for targets.
fn parse_oracle(after: &str) -> Result<ConnectionParams, ParseError> {
    let (driver_type, rest) = after.split_once(':').unwrap_or((after, ""));
    if !driver_type.eq_ignore_ascii_case("thin") {
        return Err(ParseError::new(
            "jdbc subprotocol",
            format!(
                "oracle:{} is not supported; use jdbc:oracle:thin:…",
                driver_type.trim()
            ),
        ));
    }
    let Some((credentials, target)) = rest.rsplit_once('@') else {
        return Err(ParseError::new(
            "host",
            "expected \"@\" before the server, e.g. jdbc:oracle:thin:@host:1521:SID",
        ));
    };
    let mut draft = Draft::new(DbKind::Oracle);
    apply_oracle_credentials(&mut draft, credentials);
    oracle::apply_target(&mut draft, target)?;
    draft.finish("host")
}

/// `user/password`; Oracle lets either be double-quoted to hold special characters.
fn apply_oracle_credentials(draft: &mut Draft, credentials: &str) {
    let (user, password) = match credentials.split_once('/') {
        Some((user, password)) => (user, Some(password)),
        None => (credentials, None),
    };
    draft.params.username = non_empty(unquote(user.trim()).to_owned());
    if let Some(password) = password {
        draft.params.password = non_empty(unquote(password).to_owned());
    }
}

fn unquote(text: &str) -> &str {
    text.strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(text)
}
