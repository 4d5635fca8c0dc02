//! Pull-sync placeholders: `@last_value@`, `@object.params.NAME@` (NAME may be
//! a dotted path into nested objects), `${startTime}` and `${endTime}`.
//!
//! Rendering rules (see the crate documentation for the full table):
//!
//! - A placeholder bare in SQL, or making up the whole of a `'…'`, `"…"` or
//!   PostgreSQL `$$…$$` literal (the quotes are replaced too), becomes ONE value:
//!   on PostgreSQL a literal (so the server infers its type from context; text
//!   is dollar-quoted with a tag absent from the value); elsewhere a bind
//!   parameter (`?` for MySQL/MariaDB and SQLite, `@P1…` for SQL Server,
//!   `:1…` for Oracle) pushed to [`Rendered::binds`] in order.
//! - A placeholder that is only part of a string literal (`'%@last_value@%'`)
//!   has its value's text spliced into that literal, escaped for the dialect;
//!   on PostgreSQL the whole literal is re-quoted with dollars instead.
//! - Placeholders inside comments are left untouched.
//! - Placeholders inside quoted identifiers (`` `…` ``, `[…]`, and `"…"` when
//!   it is not the whole content, outside MySQL) are refused.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::engine::{BindStyle, Engine, Occurrence, OutputMode, Resolved};
use crate::error::{Position, TemplateError};
use crate::lexer::{Flavor, Recognizer};
pub use crate::value::BindValue;

/// The SQL dialect of the connector a command runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    Postgres,
    /// MySQL and MariaDB.
    Mysql,
    Sqlite,
    Sqlserver,
    Oracle,
}

impl Dialect {
    pub const ALL: [Dialect; 5] = [
        Dialect::Postgres,
        Dialect::Mysql,
        Dialect::Sqlite,
        Dialect::Sqlserver,
        Dialect::Oracle,
    ];

    pub(crate) fn flavor(self) -> Flavor {
        match self {
            Dialect::Postgres => Flavor::Postgres,
            Dialect::Mysql => Flavor::Mysql,
            Dialect::Sqlite => Flavor::Sqlite,
            Dialect::Sqlserver => Flavor::Sqlserver,
            Dialect::Oracle => Flavor::Oracle,
        }
    }

    fn output_mode(self) -> OutputMode {
        match self {
            Dialect::Postgres => OutputMode::Literals,
            Dialect::Mysql | Dialect::Sqlite => OutputMode::Binds(BindStyle::QuestionMark),
            Dialect::Sqlserver => OutputMode::Binds(BindStyle::AtP),
            Dialect::Oracle => OutputMode::Binds(BindStyle::ColonNumber),
        }
    }

    /// How `${startTime}` / `${endTime}` are written (always UTC, fixed width so
    /// that renderings compare correctly as text too):
    ///
    /// | dialect    | format                          | example                        |
    /// |------------|---------------------------------|--------------------------------|
    /// | PostgreSQL | `YYYY-MM-DD HH:MM:SS.ffffff+00` | `2024-03-01 12:00:00.000000+00` |
    /// | MySQL      | `YYYY-MM-DD HH:MM:SS.ffffff`    | `2024-03-01 12:00:00.000000`    |
    /// | SQLite     | `YYYY-MM-DDTHH:MM:SS.ffffffZ`   | `2024-03-01T12:00:00.000000Z`   |
    /// | SQL Server | `YYYY-MM-DDTHH:MM:SS.fff`       | `2024-03-01T12:00:00.000`       |
    /// | Oracle     | `YYYY-MM-DD HH:MM:SS.ffffff`    | `2024-03-01 12:00:00.000000`    |
    ///
    /// SQL Server gets milliseconds because `datetime` columns refuse longer
    /// fractions; the ISO `T` form is read the same under every DATEFORMAT.
    pub fn format_time(self, time: &DateTime<Utc>) -> String {
        let pattern = match self {
            Dialect::Postgres => "%Y-%m-%d %H:%M:%S%.6f+00",
            Dialect::Mysql | Dialect::Oracle => "%Y-%m-%d %H:%M:%S%.6f",
            Dialect::Sqlite => "%Y-%m-%dT%H:%M:%S%.6fZ",
            Dialect::Sqlserver => "%Y-%m-%dT%H:%M:%S%.3f",
        };
        time.format(pattern).to_string()
    }
}

/// A statement ready to run: SQL text and, for bind dialects, the parameter
/// values in the order of their markers.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub sql: String,
    pub binds: Vec<BindValue>,
}

/// The values available to a run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlaceholderValues {
    /// `@last_value@`; `None` renders as NULL.
    pub last_value: Option<String>,
    /// `@object.params.NAME@`.
    pub params: Map<String, Value>,
    pub start_time: Option<DateTime<Utc>>,
    pub end_time: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Placeholder {
    LastValue,
    /// The dotted path after `@object.params.`, e.g. `customer_id` or `address.city`.
    Param(String),
    StartTime,
    EndTime,
}

impl std::fmt::Display for Placeholder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Placeholder::LastValue => f.write_str("@last_value@"),
            Placeholder::Param(path) => write!(f, "@object.params.{path}@"),
            Placeholder::StartTime => f.write_str("${startTime}"),
            Placeholder::EndTime => f.write_str("${endTime}"),
        }
    }
}

/// Renders `template` for `dialect` with `values`.
pub fn render_placeholders(
    template: &str,
    dialect: Dialect,
    values: &PlaceholderValues,
) -> Result<Rendered, TemplateError> {
    let locate = |offset| Position::at(template, offset);
    let engine = Engine {
        src: template,
        flavor: dialect.flavor(),
        mode: dialect.output_mode(),
        recognizer: &PlaceholderSyntax,
        locate: &locate,
    };
    let mut resolve = |occurrence: Occurrence<'_, Placeholder>| {
        resolve_value(template, dialect, values, &occurrence).map(Resolved::One)
    };
    let substituted = engine.substitute(&mut resolve)?;
    Ok(Rendered {
        sql: substituted.sql,
        binds: substituted.binds,
    })
}

/// The placeholders a template uses outside comments, each once, in order of
/// first use; checks the template's syntax on the way. Without a dialect the
/// template is read with the common rules (`'…'` with `''`, `"…"`, `` `…` ``,
/// `[…]`, `--` and `/* */` comments) and where each placeholder stands is not
/// judged; prefer [`referenced_placeholders_in`] when the connector's dialect
/// is known.
pub fn referenced_placeholders(template: &str) -> Result<Vec<Placeholder>, TemplateError> {
    referenced_in_flavor(template, Flavor::Sqlite, false)
}

/// [`referenced_placeholders`] with `dialect`'s quoting and comment rules, also
/// refusing placeholders in places no value can go (quoted identifiers…).
pub fn referenced_placeholders_in(
    template: &str,
    dialect: Dialect,
) -> Result<Vec<Placeholder>, TemplateError> {
    referenced_in_flavor(template, dialect.flavor(), true)
}

fn referenced_in_flavor(
    template: &str,
    flavor: Flavor,
    judge_places: bool,
) -> Result<Vec<Placeholder>, TemplateError> {
    let locate = |offset| Position::at(template, offset);
    let engine = Engine {
        src: template,
        flavor,
        mode: OutputMode::Literals,
        recognizer: &PlaceholderSyntax,
        locate: &locate,
    };
    let mut unique: Vec<Placeholder> = Vec::new();
    for placeholder in engine.occurrences(judge_places)? {
        if !unique.contains(&placeholder) {
            unique.push(placeholder);
        }
    }
    Ok(unique)
}

fn resolve_value(
    template: &str,
    dialect: Dialect,
    values: &PlaceholderValues,
    occurrence: &Occurrence<'_, Placeholder>,
) -> Result<BindValue, TemplateError> {
    let missing = || TemplateError::Missing {
        placeholder: occurrence.text.to_string(),
        position: Position::at(template, occurrence.start),
    };
    let time = |time: Option<DateTime<Utc>>| {
        time.map(|time| BindValue::Text(dialect.format_time(&time)))
            .ok_or_else(missing)
    };
    match occurrence.item {
        Placeholder::LastValue => Ok(values
            .last_value
            .clone()
            .map_or(BindValue::Null, BindValue::Text)),
        Placeholder::Param(path) => lookup_param(&values.params, path)
            .map(BindValue::from_json)
            .ok_or_else(missing),
        Placeholder::StartTime => time(values.start_time),
        Placeholder::EndTime => time(values.end_time),
    }
}

fn lookup_param<'v>(params: &'v Map<String, Value>, path: &str) -> Option<&'v Value> {
    let mut segments = path.split('.');
    let mut current = params.get(segments.next()?)?;
    for segment in segments {
        current = current.as_object()?.get(segment)?;
    }
    Some(current)
}

/// Recognises the placeholder syntax at a position of a template.
struct PlaceholderSyntax;

const LAST_VALUE: &str = "@last_value@";
const PARAMS_PREFIX: &str = "@object.params.";

impl Recognizer for PlaceholderSyntax {
    type Item = Placeholder;

    fn recognize(
        &self,
        src: &str,
        at: usize,
    ) -> Result<Option<(usize, Placeholder)>, TemplateError> {
        let Some(rest) = src.get(at..) else {
            return Ok(None);
        };
        if rest.starts_with(LAST_VALUE) {
            return Ok(Some((LAST_VALUE.len(), Placeholder::LastValue)));
        }
        if rest.starts_with(PARAMS_PREFIX) {
            return param_placeholder(src, at).map(Some);
        }
        if rest.starts_with("${") {
            return time_placeholder(src, at);
        }
        Ok(None)
    }
}

fn param_placeholder(src: &str, at: usize) -> Result<(usize, Placeholder), TemplateError> {
    let after_prefix = &src[at + PARAMS_PREFIX.len()..];
    let path_len = dotted_path_len(after_prefix);
    if path_len > 0 && after_prefix[path_len..].starts_with('@') {
        let path = after_prefix[..path_len].to_string();
        return Ok((PARAMS_PREFIX.len() + path_len + 1, Placeholder::Param(path)));
    }
    Err(unknown_placeholder(src, at))
}

/// The length of `name(.name)*` at the start of `text`, where a name is
/// `[A-Za-z_][A-Za-z0-9_]*`; 0 if there is none or it ends with a dot.
fn dotted_path_len(text: &str) -> usize {
    let mut len = 0;
    loop {
        let name_len = identifier_len(&text[len..]);
        if name_len == 0 {
            return 0;
        }
        len += name_len;
        if !text[len..].starts_with('.') {
            return len;
        }
        len += 1;
    }
}

fn identifier_len(text: &str) -> usize {
    let bytes = text.as_bytes();
    let starts_well = bytes
        .first()
        .is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_');
    if !starts_well {
        return 0;
    }
    bytes
        .iter()
        .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_')
        .count()
}

/// `${startTime}` and `${endTime}`; any other `${name}` is refused as a likely
/// typo (`${starttime}`), while `$` and `{` used otherwise pass as SQL.
fn time_placeholder(src: &str, at: usize) -> Result<Option<(usize, Placeholder)>, TemplateError> {
    let after_brace = &src[at + 2..];
    let name_len = identifier_len(after_brace);
    if name_len == 0 || !after_brace[name_len..].starts_with('}') {
        return Ok(None);
    }
    let placeholder = match &after_brace[..name_len] {
        "startTime" => Placeholder::StartTime,
        "endTime" => Placeholder::EndTime,
        _ => return Err(unknown_placeholder(src, at)),
    };
    Ok(Some((name_len + 3, placeholder)))
}

/// The offending text: up to the placeholder's closing `@`/`}` if it is near,
/// else a short excerpt.
fn unknown_placeholder(src: &str, at: usize) -> TemplateError {
    let rest = &src[at..];
    let close = rest
        .char_indices()
        .skip(1)
        .take(64)
        .find(|(_, c)| matches!(c, '@' | '}') || c.is_whitespace());
    let end = match close {
        Some((index, c)) if !c.is_whitespace() => index + c.len_utf8(),
        Some((index, _)) => index,
        None => rest.char_indices().nth(64).map_or(rest.len(), |(i, _)| i),
    };
    TemplateError::UnknownPlaceholder {
        text: rest[..end].to_string(),
        position: Position::at(src, at),
    }
}

#[cfg(test)]
mod tests;
