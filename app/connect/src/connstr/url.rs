//! Database URLs: `postgres://`, `mysql://`, `mariadb://`, `mssql://`,
//! `sqlserver://`, `oracle://` and `sqlite:`.

use super::authority::{
    first_of_list, non_empty, parse_host_port, parse_query, parse_userinfo, percent_decode,
};
use super::fields::Draft;
use super::{ConnectionParams, ParseError, quoted, reconcile_kind};
use crate::kind::DbKind;

const ACCEPTED_SCHEMES: &str = "postgres://, postgresql://, mysql://, mariadb://, mssql://, \
                                sqlserver://, oracle://, sqlite:, or a jdbc: URL";

pub(super) fn parse(
    scheme: &str,
    rest: &str,
    kind_hint: Option<DbKind>,
) -> Result<ConnectionParams, ParseError> {
    let kind = reconcile_kind(kind_for_scheme(scheme)?, kind_hint);
    let mut draft = Draft::new(kind);
    if kind == DbKind::Sqlite {
        apply_sqlite(&mut draft, rest)?;
        return draft.finish("path");
    }
    let Some(hierarchical) = rest.strip_prefix("//") else {
        return Err(ParseError::new(
            "host",
            format!(
                "expected \"//\" and a host after {}",
                quoted(&format!("{scheme}:"))
            ),
        ));
    };
    apply_hierarchical(&mut draft, hierarchical)?;
    draft.finish("host")
}

fn kind_for_scheme(scheme: &str) -> Result<DbKind, ParseError> {
    // SQLAlchemy names the client library after a `+`: postgresql+psycopg://.
    let base = scheme.split('+').next().unwrap_or(scheme);
    let kind = match base.to_ascii_lowercase().as_str() {
        "postgres" | "postgresql" => DbKind::Postgres,
        "mysql" => DbKind::Mysql,
        "mariadb" => DbKind::Mariadb,
        "mssql" | "sqlserver" => DbKind::Sqlserver,
        "oracle" => DbKind::Oracle,
        "sqlite" | "sqlite3" => DbKind::Sqlite,
        _ => {
            return Err(ParseError::new(
                "scheme",
                format!(
                    "{} is not supported; use {ACCEPTED_SCHEMES}",
                    quoted(scheme)
                ),
            ));
        }
    };
    Ok(kind)
}

/// What follows `//`: `[user[:password]@]host[:port][,host2…][/database][?k=v&…]`.
/// Shared with the JDBC URLs of MySQL, MariaDB and PostgreSQL, which have the same shape.
pub(super) fn apply_hierarchical(draft: &mut Draft, text: &str) -> Result<(), ParseError> {
    let (before_query, query) = match text.split_once('?') {
        Some((before, query)) => (before, query),
        None => (text, ""),
    };
    // Credentials end at the last `@` before the query, not at the first `/`:
    // passwords with an unencoded `@` or `/` are common, `@` in a database name is not.
    let (userinfo, after_userinfo) = match before_query.rsplit_once('@') {
        Some((userinfo, rest)) => (Some(userinfo), rest),
        None => (None, before_query),
    };
    let (hosts, path) = after_userinfo
        .split_once('/')
        .unwrap_or((after_userinfo, ""));
    if let Some(userinfo) = userinfo {
        let (username, password) = parse_userinfo(userinfo)?;
        draft.params.username = username;
        draft.params.password = password;
    }
    let host = first_of_list(hosts);
    if draft.params.kind == DbKind::Sqlserver && !host.is_empty() {
        // Keeps SQL Server's `host\instance` meaningful in URLs too.
        draft.apply_server("host", host)?;
    } else if !host.is_empty() {
        let (host, port) = parse_host_port(host)?;
        draft.set_host_port(host, port);
    }
    draft.set_database(&percent_decode(path, "database")?);
    apply_query(draft, query)
}

pub(super) fn apply_query(draft: &mut Draft, query: &str) -> Result<(), ParseError> {
    for (key, value) in parse_query(query)? {
        draft.apply(&key, &value)?;
    }
    Ok(())
}

/// `sqlite:path`, `sqlite://path` (relative), `sqlite:///abs/path`, `sqlite::memory:`.
pub(super) fn apply_sqlite(draft: &mut Draft, rest: &str) -> Result<(), ParseError> {
    let body = rest.strip_prefix("//").unwrap_or(rest);
    let (path, query) = body.split_once('?').unwrap_or((body, ""));
    draft.params.path = non_empty(percent_decode(path, "path")?);
    apply_query(draft, query)
}
