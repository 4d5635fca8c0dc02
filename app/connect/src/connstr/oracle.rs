//! Oracle connect targets as written after `jdbc:oracle:thin:…@`, in ODP.NET's
//! `Data Source=` or ODBC's `DBQ=`: `host:port:SID`, `//host:port/service`,
//! `host:port/service`, optionally behind `tcp://` or `tcps://`.

use super::authority::{parse_host, parse_host_port, parse_optional_port, parse_query};
use super::fields::Draft;
use super::{OracleTarget, ParseError, strip_prefix_ignore_case};

pub(super) fn apply_target(draft: &mut Draft, text: &str) -> Result<(), ParseError> {
    let text = text.trim();
    if text.starts_with('(') {
        return Err(ParseError::new(
            "TNS descriptor",
            "(DESCRIPTION=…) connect descriptors are not supported; \
             write the target as host:port:SID or //host:port/service",
        ));
    }
    let text = strip_protocol(draft, text);
    let (target, query) = match text.split_once('?') {
        Some((target, query)) => (target, Some(query)),
        None => (text, None),
    };
    match target.strip_prefix("//") {
        Some(easy_connect) => apply_service_form(draft, easy_connect)?,
        None if target.contains('/') => apply_service_form(draft, target)?,
        None => apply_sid_form(draft, target)?,
    }
    for (key, value) in parse_query(query.unwrap_or_default())? {
        draft.apply(&key, &value)?;
    }
    Ok(())
}

/// `tcp://` and `tcps://` prefix an EZConnect target; `tcps` means TLS.
fn strip_protocol<'a>(draft: &mut Draft, text: &'a str) -> &'a str {
    if let Some(rest) = strip_prefix_ignore_case(text, "tcps://") {
        draft.tls.require_by_default();
        return rest;
    }
    strip_prefix_ignore_case(text, "tcp://").unwrap_or(text)
}

/// `host[:port][/service]`.
fn apply_service_form(draft: &mut Draft, text: &str) -> Result<(), ParseError> {
    let (address, service) = match text.split_once('/') {
        Some((address, service)) => (address, service),
        None => (text, ""),
    };
    let (host, port) = parse_host_port(address)?;
    draft.set_host_port(host, port);
    draft.set_oracle_target(OracleTarget::ServiceName(service.to_owned()));
    Ok(())
}

/// `host[:port[:SID]]`, where the host may be a bracketed IPv6 address.
fn apply_sid_form(draft: &mut Draft, text: &str) -> Result<(), ParseError> {
    let (host, rest) = split_host(text)?;
    let (port, sid) = match rest {
        Some(rest) => match rest.split_once(':') {
            Some((port, sid)) => (parse_optional_port(port)?, Some(sid)),
            None => (parse_optional_port(rest)?, None),
        },
        None => (None, None),
    };
    draft.set_host_port(parse_host(host)?, port);
    if let Some(sid) = sid {
        draft.set_oracle_target(OracleTarget::Sid(sid.to_owned()));
    }
    Ok(())
}

/// Splits `host` from what follows its `:`, keeping `[v6]` whole.
fn split_host(text: &str) -> Result<(&str, Option<&str>), ParseError> {
    if text.starts_with('[') {
        let Some(end) = text.find(']') else {
            return Err(ParseError::new(
                "host",
                "opens \"[\" without a closing \"]\"",
            ));
        };
        let (host, after) = text.split_at(end + 1);
        return match after.strip_prefix(':') {
            Some(rest) => Ok((host, Some(rest))),
            None if after.is_empty() => Ok((host, None)),
            None => Err(ParseError::new(
                "host",
                "expected \":\" after the IPv6 address",
            )),
        };
    }
    Ok(match text.split_once(':') {
        Some((host, rest)) => (host, Some(rest)),
        None => (text, None),
    })
}
