//! Host names, ports, credentials and percent-encoding, shared by all formats.

use std::net::Ipv6Addr;

use percent_encoding::percent_decode_str;

use super::{ParseError, quoted};

/// Accepts `1..=65535` written in decimal digits only.
pub(super) fn parse_port(text: &str) -> Result<u16, ParseError> {
    let digits_only = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    let port = digits_only
        .then(|| text.parse::<u16>().ok())
        .flatten()
        .filter(|port| *port != 0);
    port.ok_or_else(|| {
        ParseError::new(
            "port",
            format!("{} is not a number between 1 and 65535", quoted(text)),
        )
    })
}

/// An empty port (`host:`) means "the default", as in URLs.
pub(super) fn parse_optional_port(text: &str) -> Result<Option<u16>, ParseError> {
    if text.is_empty() {
        Ok(None)
    } else {
        parse_port(text).map(Some)
    }
}

/// Validates a host name or IP address and returns its canonical spelling:
/// lower-case name, or an IP address without brackets.
pub(super) fn parse_host(text: &str) -> Result<String, ParseError> {
    if text.is_empty() {
        return Err(ParseError::new("host", "is missing"));
    }
    if let Some(inner) = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
        return parse_ipv6(inner);
    }
    if let Ok(address) = text.parse::<Ipv6Addr>() {
        return Ok(address.to_string());
    }
    let invalid = || {
        ParseError::new(
            "host",
            format!("{} is not a valid host name or IP address", quoted(text)),
        )
    };
    match ::url::Host::parse(text).map_err(|_| invalid())? {
        ::url::Host::Domain(name) if is_plain_host_name(&name) => Ok(name),
        ::url::Host::Domain(_) => Err(invalid()),
        ::url::Host::Ipv4(address) => Ok(address.to_string()),
        ::url::Host::Ipv6(address) => Ok(address.to_string()),
    }
}

/// The URL standard lets many punctuation characters into a host; DNS names
/// (after IDNA, which `Host::parse` applied) only use these.
fn is_plain_host_name(name: &str) -> bool {
    name.chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
}

fn parse_ipv6(text: &str) -> Result<String, ParseError> {
    text.parse::<Ipv6Addr>()
        .map(|address| address.to_string())
        .map_err(|_| {
            ParseError::new(
                "host",
                format!("{} is not a valid IPv6 address", quoted(text)),
            )
        })
}

/// `host`, `host:port`, `[v6]`, `[v6]:port`, or a bare IPv6 address.
pub(super) fn parse_host_port(text: &str) -> Result<(String, Option<u16>), ParseError> {
    if let Some(bracketed) = text.strip_prefix('[') {
        let Some((inner, after)) = bracketed.split_once(']') else {
            return Err(ParseError::new(
                "host",
                format!("{} opens \"[\" without a closing \"]\"", quoted(text)),
            ));
        };
        let host = parse_ipv6(inner)?;
        let port = match after.strip_prefix(':') {
            Some(port) => parse_optional_port(port)?,
            None if after.is_empty() => None,
            None => {
                return Err(ParseError::new(
                    "host",
                    format!("unexpected {} after the IPv6 address", quoted(after)),
                ));
            }
        };
        return Ok((host, port));
    }
    if text.matches(':').count() > 1 {
        return match text.parse::<Ipv6Addr>() {
            Ok(address) => Ok((address.to_string(), None)),
            Err(_) => Err(ParseError::new(
                "host",
                format!(
                    "{} has more than one \":\"; write IPv6 addresses in brackets, e.g. [::1]:5432",
                    quoted(text)
                ),
            )),
        };
    }
    match text.split_once(':') {
        Some((host, port)) => Ok((parse_host(host)?, parse_optional_port(port)?)),
        None => Ok((parse_host(text)?, None)),
    }
}

/// The first entry of a comma-separated host list (`h1:5432,h2:5432`): Sluice
/// connects to one server, and failover lists start with the primary.
pub(super) fn first_of_list(text: &str) -> &str {
    split_first_top_level(text, ',').0
}

/// Splits at the first `separator` that is not inside `[…]`.
pub(super) fn split_first_top_level(text: &str, separator: char) -> (&str, Option<&str>) {
    let mut in_brackets = false;
    for (index, c) in text.char_indices() {
        match c {
            '[' => in_brackets = true,
            ']' => in_brackets = false,
            c if c == separator && !in_brackets => {
                return (&text[..index], Some(&text[index + c.len_utf8()..]));
            }
            _ => {}
        }
    }
    (text, None)
}

/// `user:password` from a URL, percent-decoded. Empty parts count as absent.
pub(super) fn parse_userinfo(
    userinfo: &str,
) -> Result<(Option<String>, Option<String>), ParseError> {
    let (user, password) = match userinfo.split_once(':') {
        Some((user, password)) => (user, Some(password)),
        None => (userinfo, None),
    };
    let user = percent_decode(user, "user/password")?;
    let password = password
        .map(|p| percent_decode(p, "user/password"))
        .transpose()?;
    Ok((non_empty(user), password.and_then(non_empty)))
}

/// Percent-decodes without turning `+` into a space: libpq does the same, and
/// a literal `+` in a password is far more common than a form-encoded space.
pub(super) fn percent_decode(text: &str, part: &str) -> Result<String, ParseError> {
    percent_decode_str(text)
        .decode_utf8()
        .map(|decoded| decoded.into_owned())
        .map_err(|_| ParseError::new(part, "is not valid UTF-8 once percent-decoded"))
}

/// `a=1&b=2` query pairs, percent-decoded, in order. A key without `=` has an
/// empty value.
pub(super) fn parse_query(query: &str) -> Result<Vec<(String, String)>, ParseError> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let key = percent_decode(key, "query")?;
            let value = percent_decode(value, &key)?;
            Ok((key, value))
        })
        .collect()
}

pub(super) fn non_empty(text: String) -> Option<String> {
    (!text.is_empty()).then_some(text)
}
