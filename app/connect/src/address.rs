//! Which database servers Sluice may connect to. A connector's server is a host
//! name or an IP literal, checked strictly when it is saved and again before every
//! pool is opened (no socket paths, no option smuggling), and every address it
//! resolves to must pass the operator's [`AddressPolicy`]: by default loopback,
//! private, link-local and metadata addresses are refused, so a tenant cannot use
//! Sluice to reach the server's own network (or "Test connection" as a port scanner).

use std::net::IpAddr;
use std::sync::Arc;

use crate::{ConnectError, ConnectionParams, DbKind, TlsMode};

/// Decides whether an address may be contacted; `Err` says why not, in words
/// shown to the user.
pub type AddressPolicy = Arc<dyn Fn(IpAddr) -> Result<(), String> + Send + Sync>;

/// The longest host name DNS allows.
const MAX_HOST_LEN: usize = 253;

/// A host name (letters, digits, `-`, `_`, `.`) or an IP literal (IPv6 with or
/// without brackets). Anything else — a socket path, `?key=value`, `;`, `@`,
/// white space — is refused with the reason.
pub fn check_host_syntax(host: &str) -> Result<(), String> {
    if host.is_empty() {
        return Err("is required".into());
    }
    if host.len() > MAX_HOST_LEN {
        return Err(format!("must be at most {MAX_HOST_LEN} characters"));
    }
    let unbracketed = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if unbracketed.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    if host.starts_with('/') || host.contains('/') {
        return Err("must be a host name or IP address, not a socket path".into());
    }
    if let Some(bad) = host
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(format!(
            "must be a host name or IP address; {bad:?} is not allowed"
        ));
    }
    if host
        .split('.')
        .any(|label| label.is_empty() || label.len() > 63)
    {
        return Err("must be a host name or IP address (empty or overlong label)".into());
    }
    Ok(())
}

/// Checks `params`' server against the syntax rules and `policy`, after DNS
/// resolution. Returns the parameters to connect with: where TLS does not verify
/// the host name, the server is pinned to the address that was checked, so a
/// name that resolves elsewhere a moment later (DNS rebinding) reaches nothing new.
pub(crate) async fn vet(
    params: &ConnectionParams,
    policy: &AddressPolicy,
) -> Result<ConnectionParams, ConnectError> {
    if params.kind == DbKind::Sqlite {
        return Ok(params.clone());
    }
    let host = params.host.as_deref().unwrap_or_default().trim();
    check_host_syntax(host).map_err(|message| ConnectError::config("server", message))?;
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let port = params.port.or(params.kind.default_port()).unwrap_or(0);
    let addresses: Vec<IpAddr> = tokio::net::lookup_host((bare, port))
        .await
        .map_err(|e| ConnectError::Unreachable(format!("cannot resolve {host}: {e}")))?
        .map(|socket| socket.ip())
        .collect();
    let Some(first) = addresses.first().copied() else {
        return Err(ConnectError::Unreachable(format!(
            "{host} resolves to no address"
        )));
    };
    for address in &addresses {
        policy(*address).map_err(|why| ConnectError::Forbidden(format!("server {host}: {why}")))?;
    }
    let mut vetted = params.clone();
    if pins_address(params.kind, params.tls) {
        vetted.host = Some(first.to_string());
    }
    Ok(vetted)
}

/// Whether the connection may go to the checked IP instead of the name: only
/// where the name plays no part in TLS (the drivers Sluice knows how to point at
/// an address).
fn pins_address(kind: DbKind, tls: TlsMode) -> bool {
    matches!(kind, DbKind::Postgres | DbKind::Mysql | DbKind::Mariadb)
        && matches!(tls, TlsMode::Disabled | TlsMode::Required)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_and_ip_literals_pass() {
        for host in [
            "db.example.com",
            "db-1_internal.example",
            "localhost",
            "10.0.0.5",
            "::1",
            "[2001:db8::1]",
        ] {
            assert_eq!(check_host_syntax(host), Ok(()), "{host}");
        }
    }

    #[test]
    fn socket_paths_and_smuggled_options_are_refused() {
        for host in [
            "/var/run/postgresql",
            "tmp/socket",
            "db.example.com?sslmode=disable",
            "db;Database=master",
            "user@db.example.com",
            "db example.com",
            "db.example.com\n",
            "(DESCRIPTION=(ADDRESS=(HOST=x)))",
            "db..example.com",
            "",
        ] {
            assert!(check_host_syntax(host).is_err(), "{host:?}");
        }
    }

    fn refuse_loopback() -> AddressPolicy {
        Arc::new(|ip: IpAddr| {
            if ip.is_loopback() {
                Err(format!("address {ip} is loopback and not allowed"))
            } else {
                Ok(())
            }
        })
    }

    fn params(kind: DbKind, host: &str, tls: TlsMode) -> ConnectionParams {
        let mut params = ConnectionParams::new(kind);
        params.host = Some(host.into());
        params.tls = tls;
        params
    }

    #[tokio::test]
    async fn every_resolved_address_is_checked() {
        let refused = vet(
            &params(DbKind::Postgres, "localhost", TlsMode::Disabled),
            &refuse_loopback(),
        )
        .await
        .expect_err("localhost resolves to loopback");
        assert_eq!(refused.category(), "forbidden");
        assert!(refused.to_string().contains("loopback"), "{refused}");
    }

    #[tokio::test]
    async fn the_checked_address_is_pinned_only_where_tls_ignores_the_name() {
        let allow_all: AddressPolicy = Arc::new(|_| Ok(()));
        let pinned = vet(
            &params(DbKind::Postgres, "localhost", TlsMode::Required),
            &allow_all,
        )
        .await
        .unwrap();
        let host = pinned.host.unwrap();
        assert!(host.parse::<IpAddr>().is_ok(), "{host}");
        let named = vet(
            &params(DbKind::Postgres, "localhost", TlsMode::VerifyFull),
            &allow_all,
        )
        .await
        .unwrap();
        assert_eq!(named.host.as_deref(), Some("localhost"));
    }
}
