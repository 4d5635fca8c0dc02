//! One module per database driver, behind [`crate::database::Database`], plus
//! what they share: timeouts, error classification and TLS option checks.

pub mod mysql;
pub mod oracle;
pub mod postgres;
pub mod sqlite;
pub mod sqlserver;

use std::future::Future;
use std::time::Duration;

use crate::connstr::ConnectionParams;
use crate::error::{ConnectError, io_error};

/// Runs `work` for at most `limit`; past it the work is dropped (cancelled).
pub(crate) async fn within<T>(
    limit: Duration,
    what: &str,
    work: impl Future<Output = Result<T, ConnectError>>,
) -> Result<T, ConnectError> {
    match tokio::time::timeout(limit, work).await {
        Ok(result) => result,
        Err(_) => Err(ConnectError::Timeout(format!(
            "{what} took longer than {}",
            seconds(limit)
        ))),
    }
}

/// Like [`within`], for opening a connection: no answer in time means the
/// server cannot be reached.
pub(crate) async fn connect_within<T>(
    limit: Duration,
    address: &str,
    work: impl Future<Output = Result<T, ConnectError>>,
) -> Result<T, ConnectError> {
    match tokio::time::timeout(limit, work).await {
        Ok(result) => result,
        Err(_) => Err(ConnectError::Unreachable(format!(
            "{address}: no answer within {}",
            seconds(limit)
        ))),
    }
}

/// The connect timeout passed without an answer.
pub(crate) fn no_answer(address: &str, limits: crate::database::Limits) -> ConnectError {
    ConnectError::Unreachable(format!(
        "{address}: no answer within {}",
        seconds(limits.connect_timeout)
    ))
}

/// sqlx's error when TLS was asked for and the server has none (PostgreSQL
/// answered 'N' to SSLRequest; MySQL lacks the SSL capability). It is the only
/// failure after which a "preferred" connection may go on without TLS.
pub(crate) fn server_refused_tls(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Tls(message) if message.to_string() == "server does not support TLS")
}

/// The error for a server without TLS when the connector requires it: says
/// which settings would connect and what each risks.
pub(crate) fn tls_not_offered(params: &ConnectionParams, address: &str) -> ConnectError {
    ConnectError::Tls(format!(
        "{address} does not offer TLS, and this connector's TLS mode \"{}\" requires it: turn \
         TLS on at the server, or choose \"disabled\" if this network is trusted (the password \
         then crosses it unencrypted)",
        params.tls
    ))
}

/// Whether a "preferred" connection may go on without TLS after the server
/// refused it: only when no password would then cross the network in clear.
pub(crate) fn plaintext_fallback(
    params: &ConnectionParams,
    address: &str,
) -> Result<(), ConnectError> {
    match params.password.as_deref() {
        Some(password) if !password.is_empty() => Err(ConnectError::Tls(format!(
            "{address} does not offer TLS, and with TLS mode \"preferred\" Sluice does not send \
             a password unencrypted; choose \"disabled\" if that is acceptable on this network"
        ))),
        _ => Ok(()),
    }
}

fn seconds(duration: Duration) -> String {
    format!("{}s", duration.as_secs_f64())
}

/// `host:port` for messages.
pub(crate) fn address(params: &ConnectionParams) -> String {
    let host = params.host.as_deref().unwrap_or("?");
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    match params.effective_port() {
        Some(port) => format!("{host}:{port}"),
        None => host,
    }
}

pub(crate) fn required<'a>(value: Option<&'a str>, field: &str) -> Result<&'a str, ConnectError> {
    value
        .filter(|value| !value.is_empty())
        .ok_or_else(|| ConnectError::config(field, "is required"))
}

/// Option keys compared ignoring case, `-`, `_` and spaces.
fn normalized(key: &str) -> String {
    key.chars()
        .filter(|c| !matches!(c, '-' | '_' | ' '))
        .flat_map(char::to_lowercase)
        .collect()
}

fn option<'a>(params: &'a ConnectionParams, names: &[&str]) -> Option<&'a str> {
    params
        .options
        .iter()
        .find(|(key, _)| names.contains(&normalized(key).as_str()))
        .map(|(_, value)| value.as_str())
        .filter(|value| !value.is_empty())
}

/// The CA certificate file (PEM) the user trusts for this server, if any.
pub(crate) fn ca_file(params: &ConnectionParams) -> Option<&str> {
    option(
        params,
        &["sslrootcert", "sslca", "trustservercertificateca"],
    )
}

/// Sluice never connects with certificate checks switched off.
pub(crate) fn refuse_disabled_certificate_checks(
    params: &ConnectionParams,
) -> Result<(), ConnectError> {
    let waived = option(params, &["trustservercertificate"]).is_some_and(|value| {
        matches!(
            value.trim().to_ascii_lowercase().as_str(),
            "true" | "yes" | "1"
        )
    });
    if waived {
        return Err(ConnectError::Tls(
            "certificate checks cannot be disabled (trustServerCertificate=true); \
             give the server's CA certificate instead with the ssl_ca option"
                .to_owned(),
        ));
    }
    Ok(())
}

/// Classifies a sqlx failure. `address` names the server in network errors.
pub(crate) fn sqlx_error(error: sqlx::Error, address: &str) -> ConnectError {
    match error {
        sqlx::Error::Io(io) => match tls_cause(&io) {
            Some(message) => ConnectError::Tls(message),
            None => io_error(address, &io),
        },
        sqlx::Error::Tls(tls) => ConnectError::Tls(tls.to_string()),
        sqlx::Error::PoolTimedOut => {
            ConnectError::Timeout("waiting for a free connection to the database".to_owned())
        }
        sqlx::Error::Database(db) => database_error(db.as_ref()),
        sqlx::Error::Configuration(message) => {
            ConnectError::config("connection", message.to_string())
        }
        other => ConnectError::Driver(other.to_string()),
    }
}

/// rustls reports certificate failures through an I/O error.
fn tls_cause(io: &std::io::Error) -> Option<String> {
    let inner = io.get_ref()?;
    if inner.downcast_ref::<rustls::Error>().is_some() {
        return Some(inner.to_string());
    }
    let text = inner.to_string();
    text.contains("certificate").then_some(text)
}

fn database_error(db: &dyn sqlx::error::DatabaseError) -> ConnectError {
    let message = db.message().to_owned();
    if let Some(mysql) = db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
        return mysql_error(mysql.number(), message);
    }
    match db.code().as_deref() {
        Some("28P01" | "28000") => ConnectError::Authentication(message),
        Some("3D000") => ConnectError::UnknownDatabase(message),
        // query_canceled: statement_timeout fired on the server.
        Some("57014") => ConnectError::Timeout(message),
        // SQLITE_CANTOPEN and SQLITE_NOTADB.
        Some("14" | "26") => ConnectError::UnknownDatabase(message),
        _ => ConnectError::Query(message),
    }
}

fn mysql_error(number: u16, message: String) -> ConnectError {
    match number {
        // Access denied (password, host, plugin).
        1045 | 1698 | 1044 => ConnectError::Authentication(message),
        1049 => ConnectError::UnknownDatabase(message),
        // max_statement_time (MariaDB) / max_execution_time (MySQL) exceeded.
        1969 | 3024 => ConnectError::Timeout(message),
        _ => ConnectError::Query(message),
    }
}

/// Row counts come in as `u32`; zero would make "preview" pointless.
pub(crate) fn clamp_preview_limit(limit: u32) -> u32 {
    limit.clamp(1, 1000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kind::DbKind;

    #[test]
    fn preview_limits_are_clamped() {
        assert_eq!(clamp_preview_limit(0), 1);
        assert_eq!(clamp_preview_limit(50), 50);
        assert_eq!(clamp_preview_limit(u32::MAX), 1000);
    }

    #[test]
    fn trust_server_certificate_is_refused() {
        let mut params = ConnectionParams::new(DbKind::Sqlserver);
        params
            .options
            .insert("TrustServerCertificate".into(), "True".into());
        let error = refuse_disabled_certificate_checks(&params).expect_err("refused");
        assert_eq!(error.category(), "tls");
        assert!(error.to_string().contains("ssl_ca"), "{error}");
        params
            .options
            .insert("TrustServerCertificate".into(), "false".into());
        assert!(refuse_disabled_certificate_checks(&params).is_ok());
    }

    #[test]
    fn ca_file_accepts_postgres_and_mysql_spellings() {
        let mut params = ConnectionParams::new(DbKind::Postgres);
        assert_eq!(ca_file(&params), None);
        params
            .options
            .insert("sslrootcert".into(), "/ca.pem".into());
        assert_eq!(ca_file(&params), Some("/ca.pem"));
        let mut params = ConnectionParams::new(DbKind::Mysql);
        params.options.insert("ssl-ca".into(), "/m.pem".into());
        assert_eq!(ca_file(&params), Some("/m.pem"));
    }

    #[test]
    fn mysql_error_numbers_are_classified() {
        assert_eq!(
            mysql_error(1045, String::new()).category(),
            "authentication"
        );
        assert_eq!(
            mysql_error(1049, String::new()).category(),
            "unknown_database"
        );
        assert_eq!(mysql_error(1064, String::new()).category(), "query");
    }

    #[test]
    fn addresses_bracket_ipv6() {
        let mut params = ConnectionParams::new(DbKind::Postgres);
        params.host = Some("::1".into());
        assert_eq!(address(&params), "[::1]:5432");
    }
}
