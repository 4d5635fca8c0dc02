//! ODBC / ADO.NET strings: `Driver={…};Server=…;Database=…;UID=…;PWD=…`.

use super::fields::{Draft, is_driver_key};
use super::{ConnectionParams, ParseError, quoted, reconcile_kind};
use crate::kind::DbKind;

pub(super) fn parse(text: &str, kind_hint: Option<DbKind>) -> Result<ConnectionParams, ParseError> {
    let pairs = tokenize(text)?;
    let kind = choose_kind(&pairs, kind_hint)?;
    let mut draft = Draft::new(kind);
    for (key, value) in &pairs {
        draft.apply(key, value)?;
    }
    draft.finish("Server")
}

/// The kind named by `Driver=`, else the hint.
fn choose_kind(
    pairs: &[(String, String)],
    kind_hint: Option<DbKind>,
) -> Result<DbKind, ParseError> {
    let driver = pairs
        .iter()
        .rev()
        .find(|(key, _)| is_driver_key(key))
        .map(|(_, name)| name.as_str());
    match (driver.and_then(kind_from_driver_name), kind_hint) {
        (Some(kind), hint) => Ok(reconcile_kind(kind, hint)),
        (None, Some(hint)) => Ok(hint),
        (None, None) => Err(ParseError::new(
            "kind",
            match driver {
                Some(name) => format!(
                    "the driver {} is not one Sluice recognises; choose the database kind",
                    quoted(name)
                ),
                None => "the string has no Driver=…; choose the database kind".to_owned(),
            },
        )),
    }
}

/// Driver names as installed, e.g. `ODBC Driver 18 for SQL Server`,
/// `PostgreSQL Unicode`, `MySQL ODBC 8.0 Unicode Driver`, `MariaDB ODBC 3.1 Driver`.
fn kind_from_driver_name(name: &str) -> Option<DbKind> {
    let name = name.to_ascii_lowercase();
    // MariaDB before MySQL: MariaDB driver names may mention MySQL compatibility.
    let by_fragment = [
        ("mariadb", DbKind::Mariadb),
        ("mysql", DbKind::Mysql),
        ("postgres", DbKind::Postgres),
        ("sql server", DbKind::Sqlserver),
        ("sqlserver", DbKind::Sqlserver),
        ("oracle", DbKind::Oracle),
        ("sqlite", DbKind::Sqlite),
    ];
    by_fragment
        .iter()
        .find(|(fragment, _)| name.contains(fragment))
        .map(|(_, kind)| *kind)
}

/// Splits `key=value;…` into pairs, keys and values trimmed. Values may be
/// wrapped in `{…}` (with `}}` for a literal `}`) or in `"…"`/`'…'` (with the
/// quote doubled) to contain `;`.
pub(super) fn tokenize(text: &str) -> Result<Vec<(String, String)>, ParseError> {
    let mut pairs = Vec::new();
    let mut rest = text;
    loop {
        rest = rest.trim_start_matches(|c: char| c == ';' || c.is_whitespace());
        if rest.is_empty() {
            return Ok(pairs);
        }
        let previous_key = pairs.last().map(|(key, _): &(String, String)| key.as_str());
        let (key, after_key) = split_key(rest, previous_key)?;
        let (value, after_value) = split_value(key, after_key.trim_start())?;
        pairs.push((key.to_owned(), value));
        rest = after_value;
    }
}

fn split_key<'a>(
    text: &'a str,
    previous_key: Option<&str>,
) -> Result<(&'a str, &'a str), ParseError> {
    let segment_end = text.find(';').unwrap_or(text.len());
    let Some(equals) = text[..segment_end].find('=') else {
        return Err(not_a_pair(text[..segment_end].trim(), previous_key));
    };
    let key = text[..equals].trim();
    if key.is_empty() {
        return Err(ParseError::new(
            "connection string",
            "a value has no key before its \"=\"",
        ));
    }
    Ok((key, &text[equals + 1..]))
}

/// Text without `=` usually is the tail of a value cut at an unquoted `;`,
/// often a password, so it is only echoed when it opens the string.
fn not_a_pair(segment: &str, previous_key: Option<&str>) -> ParseError {
    let message = match previous_key {
        Some(key) => format!(
            "the text after the {key} value is not a KEY=VALUE pair; \
             wrap a value that contains \";\" in {{braces}}"
        ),
        None => format!("{} is not a KEY=VALUE pair", quoted(segment)),
    };
    ParseError::new("connection string", message)
}

/// Returns the value and the text after it.
fn split_value<'a>(key: &str, text: &'a str) -> Result<(String, &'a str), ParseError> {
    let (value, after) = match text.chars().next() {
        Some('{') => split_enclosed(key, &text[1..], '}')?,
        Some(quote @ ('"' | '\'')) => split_enclosed(key, &text[1..], quote)?,
        _ => {
            let end = text.find(';').unwrap_or(text.len());
            return Ok((text[..end].trim().to_owned(), &text[end..]));
        }
    };
    let after = after.trim_start();
    if !after.is_empty() && !after.starts_with(';') {
        return Err(ParseError::new(
            key,
            format!(
                "unexpected text after the closing {}",
                quoted(&close_of(text))
            ),
        ));
    }
    Ok((value, after))
}

fn close_of(text: &str) -> String {
    match text.chars().next() {
        Some('{') => "}".to_owned(),
        Some(quote) => quote.to_string(),
        None => String::new(),
    }
}

/// Reads up to the unescaped `close`, where a doubled `close` is a literal one.
fn split_enclosed<'a>(
    key: &str,
    text: &'a str,
    close: char,
) -> Result<(String, &'a str), ParseError> {
    let mut value = String::new();
    let mut chars = text.char_indices().peekable();
    while let Some((index, c)) = chars.next() {
        if c != close {
            value.push(c);
            continue;
        }
        if chars.peek().is_some_and(|(_, next)| *next == close) {
            value.push(close);
            chars.next();
            continue;
        }
        return Ok((value, &text[index + c.len_utf8()..]));
    }
    Err(ParseError::new(
        key,
        format!("the value has no closing {}", quoted(&close.to_string())),
    ))
}
