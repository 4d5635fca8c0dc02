//! Row → JSON conversion, shared by Explore previews and pull syncs.
//!
//! One function per driver turns a row into a JSON object keyed by column alias,
//! in column order. The rules are the same for every database:
//!
//! - integers of any width (signed or unsigned) become JSON numbers, exactly;
//! - floats become numbers, except NaN and ±infinity, which become the strings
//!   `"NaN"`, `"Infinity"` and `"-Infinity"`;
//! - NUMERIC/DECIMAL becomes a number only when its value survives a round trip
//!   through `f64` ([`decimal_text_to_json`]), otherwise the exact decimal text;
//! - dates are `YYYY-MM-DD`, times `HH:MM:SS[.ffffff]`, timestamps without a zone
//!   `YYYY-MM-DDTHH:MM:SS[.ffffff]`, timestamps with a zone RFC 3339 in UTC with
//!   `Z`; fractions appear only when non-zero, with 6 digits (9 when the value
//!   has sub-microsecond precision);
//! - intervals are ISO 8601 durations; JSON columns are embedded as JSON; UUIDs
//!   are hyphenated strings; binary data is standard base64; NULL is null.
//!
//! A column alias with dots is kept flat here; [`nest_dotted`] nests it when the
//! caller wants nesting.
//!
//! Pulls from PostgreSQL write most types straight into the batch's JSON text
//! (`postgres::PgRowWriter`), without a JSON object per row; that text is exactly
//! what serialising these values gives (tested type by type), and results with
//! dotted or repeated aliases still go through the objects.

mod mysql;
mod oracle;
pub(crate) mod postgres;
mod sqlite;
mod sqlserver;

use std::collections::{HashMap, HashSet};
use std::fmt;

use base64::Engine;
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Timelike, Utc};
use serde_json::{Map, Number, Value};

pub use mysql::{mysql_row_to_json, mysql_row_to_json_with_hints};
pub use oracle::{OracleDatum, oracle_datum_to_json, oracle_row_to_json};
pub use postgres::pg_row_to_json;
pub use sqlite::{sqlite_row_to_json, sqlite_row_to_json_with_hints};
pub use sqlserver::{column_data_to_json, tiberius_row_to_json};

/// A value that has no faithful JSON form (or could not be decoded).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConvertError {
    pub column: String,
    pub type_name: String,
    pub message: String,
}

impl ConvertError {
    pub(crate) fn new(
        column: impl Into<String>,
        type_name: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        ConvertError {
            column: column.into(),
            type_name: type_name.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConvertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "column {:?}: type {} cannot be converted to JSON",
            self.column, self.type_name
        )?;
        if !self.message.is_empty() {
            write!(f, " ({})", self.message)?;
        }
        Ok(())
    }
}

/// What the result metadata of some drivers cannot say about a column: MariaDB
/// reports JSON columns as LONGTEXT and SQLite only has declared types, so the
/// caller (which read the table's columns) passes the names along.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ColumnHints {
    pub json: HashSet<String>,
    pub boolean: HashSet<String>,
}

impl ColumnHints {
    /// Hints from declared column types: `json` and `bool`/`boolean`.
    pub fn from_declared_types<'a>(columns: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut hints = ColumnHints::default();
        for (name, declared) in columns {
            let declared = declared.trim().to_ascii_lowercase();
            if declared == "json" || declared == "jsonb" {
                hints.json.insert(name.to_owned());
            } else if declared == "boolean" || declared == "bool" {
                hints.boolean.insert(name.to_owned());
            }
        }
        hints
    }
}

// ---- numbers ---------------------------------------------------------------

pub(crate) fn float_to_json(value: f64) -> Value {
    if value.is_nan() {
        Value::String("NaN".to_owned())
    } else if value.is_infinite() {
        let text = if value > 0.0 { "Infinity" } else { "-Infinity" };
        Value::String(text.to_owned())
    } else {
        Number::from_f64(value).map_or(Value::Null, Value::Number)
    }
}

/// An `f32` widened through its shortest text, so `0.1f32` becomes `0.1`
/// rather than `0.10000000149011612`.
pub(crate) fn f32_to_json(value: f32) -> Value {
    if !value.is_finite() {
        return float_to_json(f64::from(value));
    }
    let widened = value.to_string().parse::<f64>().unwrap_or(f64::from(value));
    float_to_json(widened)
}

/// A decimal written as text (`-12.3400`, `NaN`, `Infinity`): a JSON number when
/// the value survives `f64` exactly (integers as JSON integers), otherwise the
/// original text, so no digit is ever lost.
pub fn decimal_text_to_json(text: &str) -> Value {
    match text {
        "NaN" | "nan" => return Value::String("NaN".to_owned()),
        "Infinity" | "+Infinity" | "inf" => return Value::String("Infinity".to_owned()),
        "-Infinity" | "-inf" => return Value::String("-Infinity".to_owned()),
        _ => {}
    }
    let Some(canonical) = canonical_decimal(text) else {
        return Value::String(text.to_owned());
    };
    if !canonical.contains('.') {
        if let Ok(int) = canonical.parse::<i64>() {
            return Value::Number(int.into());
        }
        if let Ok(int) = canonical.parse::<u64>() {
            return Value::Number(int.into());
        }
    }
    match canonical.parse::<f64>() {
        Ok(float)
            if float.is_finite() && canonical_decimal(&float.to_string()) == Some(canonical) =>
        {
            float_to_json(float)
        }
        _ => Value::String(text.to_owned()),
    }
}

/// `+007.2500` → `7.25`, `-0.0` → `0`; `None` unless the text is a plain
/// decimal (digits, one optional point, optional sign; no exponent).
fn canonical_decimal(text: &str) -> Option<String> {
    let (negative, digits) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let (int_part, frac_part) = digits.split_once('.').unwrap_or((digits, ""));
    let plain = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    if (int_part.is_empty() && frac_part.is_empty()) || !plain(int_part) || !plain(frac_part) {
        return None;
    }
    let int_part = int_part.trim_start_matches('0');
    let frac_part = frac_part.trim_end_matches('0');
    let int_part = if int_part.is_empty() { "0" } else { int_part };
    let is_zero = int_part == "0" && frac_part.is_empty();
    let mut out = String::with_capacity(text.len());
    if negative && !is_zero {
        out.push('-');
    }
    out.push_str(int_part);
    if !frac_part.is_empty() {
        out.push('.');
        out.push_str(frac_part);
    }
    Some(out)
}

/// A scaled integer (`value × 10^-scale`), as SQL Server sends NUMERIC.
pub(crate) fn scaled_integer_to_text(value: i128, scale: u8) -> String {
    let digits = value.unsigned_abs().to_string();
    let scale = usize::from(scale);
    let sign = if value < 0 { "-" } else { "" };
    if scale == 0 {
        return format!("{sign}{digits}");
    }
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (int_part, frac_part) = padded.split_at(padded.len() - scale);
    format!("{sign}{int_part}.{frac_part}")
}

// ---- text and bytes ----------------------------------------------------------

pub(crate) fn base64_json(bytes: &[u8]) -> Value {
    Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// Embeds JSON text; text that is not valid JSON stays a string rather than
/// failing the row.
pub(crate) fn embedded_json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

// ---- dates and times --------------------------------------------------------------

pub(crate) fn format_date(date: NaiveDate) -> String {
    date.format("%Y-%m-%d").to_string()
}

pub(crate) fn format_time(time: NaiveTime) -> String {
    format!("{}{}", time.format("%H:%M:%S"), fraction(time.nanosecond()))
}

pub(crate) fn format_naive_datetime(value: NaiveDateTime) -> String {
    format!(
        "{}T{}",
        format_date(value.date()),
        format_time(value.time())
    )
}

pub(crate) fn format_utc(value: DateTime<Utc>) -> String {
    format!("{}Z", format_naive_datetime(value.naive_utc()))
}

/// `.ffffff` (or `.fffffffff` below a microsecond); nothing for whole seconds.
fn fraction(nanos: u32) -> String {
    // Leap seconds are carried as nanos ≥ 1e9; show them as :59.999….
    let nanos = nanos.min(999_999_999);
    match nanos {
        0 => String::new(),
        n if n % 1000 == 0 => format!(".{:06}", n / 1000),
        n => format!(".{n:09}"),
    }
}

/// An ISO 8601 duration as PostgreSQL's `intervalstyle = iso_8601` writes it:
/// `P1Y2M3DT4H5M6.5S`, `PT0S`, with signs on the parts that are negative.
pub(crate) fn iso_duration(months: i64, days: i64, microseconds: i64) -> String {
    let mut out = String::from("P");
    let (years, months) = (months / 12, months % 12);
    for (amount, unit) in [(years, 'Y'), (months, 'M'), (days, 'D')] {
        if amount != 0 {
            out.push_str(&format!("{amount}{unit}"));
        }
    }
    let hours = microseconds / 3_600_000_000;
    let minutes = (microseconds % 3_600_000_000) / 60_000_000;
    let micros = microseconds % 60_000_000;
    if hours != 0 || minutes != 0 || micros != 0 {
        out.push('T');
        if hours != 0 {
            out.push_str(&format!("{hours}H"));
        }
        if minutes != 0 {
            out.push_str(&format!("{minutes}M"));
        }
        if micros != 0 {
            out.push_str(&seconds_text(micros));
            out.push('S');
        }
    }
    if out == "P" {
        out.push_str("T0S");
    }
    out
}

fn seconds_text(micros: i64) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    let micros = micros.unsigned_abs();
    let (seconds, fraction) = (micros / 1_000_000, micros % 1_000_000);
    if fraction == 0 {
        format!("{sign}{seconds}")
    } else {
        let fraction = format!("{fraction:06}");
        format!("{sign}{seconds}.{}", fraction.trim_end_matches('0'))
    }
}

// ---- nesting --------------------------------------------------------------------------

/// Nests `a.b.c` keys into objects: `{"address.city": "Oslo"}` becomes
/// `{"address": {"city": "Oslo"}}`.
///
/// Conflict rule: a dotted key nests only through objects. It stays flat (as
/// written) when a key on its path already holds a non-object value (a scalar
/// column `a` beside `a.b` keeps `a` and leaves `"a.b"` flat), when its leaf is
/// already taken, or when it has an empty segment (`a..b`, `.a`, `a.`). A plain
/// column `a` holding an object takes nested keys alongside its own.
/// Order is kept: a nested object sits where its first key (or its own column) was.
pub fn nest_dotted(map: Map<String, Value>) -> Map<String, Value> {
    // Runs for every row: most results have no dotted alias, and then there is
    // nothing to rebuild.
    if !map.keys().any(|key| key.contains('.')) {
        return map;
    }
    let mut plain: HashMap<String, Value> = HashMap::new();
    let mut order: Vec<(String, Option<Value>)> = Vec::with_capacity(map.len());
    for (key, value) in map {
        if key.contains('.') {
            order.push((key, Some(value)));
        } else {
            plain.insert(key.clone(), value);
            order.push((key, None));
        }
    }
    let mut out = Map::new();
    for (key, dotted_value) in order {
        match dotted_value {
            None => {
                if let Some(value) = plain.remove(&key) {
                    out.insert(key, value);
                }
            }
            Some(value) => {
                if let Some(root) = key.split('.').next() {
                    // A plain column that this key nests into moves up to here.
                    if let Some(root_value) = plain.remove(root) {
                        out.insert(root.to_owned(), root_value);
                    }
                }
                if let Err(value) = insert_nested(&mut out, &key, value) {
                    out.insert(key, value);
                }
            }
        }
    }
    out
}

/// Inserts `value` at the dotted `path`; gives the value back on a conflict.
fn insert_nested(out: &mut Map<String, Value>, path: &str, value: Value) -> Result<(), Value> {
    let segments: Vec<&str> = path.split('.').collect();
    if segments.iter().any(|segment| segment.is_empty()) {
        return Err(value);
    }
    let Some((leaf, parents)) = segments.split_last() else {
        return Err(value);
    };
    if !path_is_free(out, parents, leaf) {
        return Err(value);
    }
    let mut current = out;
    for parent in parents {
        let entry = current
            .entry((*parent).to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        let Value::Object(next) = entry else {
            return Err(value);
        };
        current = next;
    }
    current.insert((*leaf).to_owned(), value);
    Ok(())
}

/// Checked before creating anything, so a conflict leaves no empty objects behind.
fn path_is_free(out: &Map<String, Value>, parents: &[&str], leaf: &str) -> bool {
    let mut current = out;
    for parent in parents {
        match current.get(*parent) {
            None => return true,
            Some(Value::Object(next)) => current = next,
            Some(_) => return false,
        }
    }
    !current.contains_key(leaf)
}

#[cfg(test)]
mod tests;
