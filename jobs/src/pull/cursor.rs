//! The Last Field cursor: the largest value of one column among the rows a run
//! delivered, which becomes the command's `@last_value@`.
//!
//! Values are ordered by what they mean, not by their text: numbers (JSON numbers
//! and decimals the drivers emit as strings, so `"100" > "99"`) as exact decimals,
//! timestamps (ISO 8601 with any offset or precision, or without a zone, read as
//! UTC) as instants, dates as dates; anything else, or two values of different
//! sorts, by text.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use rust_decimal::Decimal;
use serde_json::{Map, Value};
use std::cmp::Ordering;
use std::str::FromStr;

/// Tracks the largest value of the Last Field among delivered rows.
pub(crate) struct Cursor<'a> {
    field: Option<&'a str>,
    max: Option<Value>,
    /// What sort of value the field holds, from the first one seen.
    sort: Option<Sort>,
}

/// The sorts of cursor values that order among themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sort {
    Number,
    Instant,
    Date,
    Text,
}

impl Sort {
    fn of(value: &Value) -> Sort {
        match key(value) {
            Some(Key::Number(_) | Key::Float(_)) => Sort::Number,
            Some(Key::Instant(_)) => Sort::Instant,
            Some(Key::Date(_)) => Sort::Date,
            None => Sort::Text,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Sort::Number => "numbers",
            Sort::Instant => "timestamps",
            Sort::Date => "dates",
            Sort::Text => "text",
        }
    }
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(field: Option<&'a str>) -> Self {
        Self {
            field: field.map(str::trim).filter(|f| !f.is_empty()),
            max: None,
            sort: None,
        }
    }

    /// Takes the rows' Last Field values into account. Values of different sorts
    /// (numbers and other text, timestamps and dates) have no order that is
    /// surely the database's: that is an error naming the value, never a guess.
    pub(crate) fn observe(&mut self, rows: &[Map<String, Value>]) -> Result<(), String> {
        let Some(field) = self.field else {
            return Ok(());
        };
        for row in rows {
            let Some(value) = lookup(row, field).filter(|v| !v.is_null()) else {
                continue;
            };
            let sort = Sort::of(value);
            match self.sort {
                None => self.sort = Some(sort),
                Some(seen) if seen != sort => {
                    return Err(format!(
                        "Last Field {field}: {value} cannot be ordered with the {} before it; \
                         the Last Field must hold one sort of value (numbers, timestamps, dates or text)",
                        seen.describe()
                    ));
                }
                Some(_) => {}
            }
            if self
                .max
                .as_ref()
                .is_none_or(|max| compare(value, max) == Ordering::Greater)
            {
                self.max = Some(value.clone());
            }
        }
        Ok(())
    }

    /// The new `@last_value@`, as the database wrote it (strings unquoted).
    pub(crate) fn into_value(self) -> Option<String> {
        self.max.map(|v| match v {
            Value::String(s) => s,
            other => other.to_string(),
        })
    }
}

/// A column by its alias; dotted aliases were nested, so follow the path too.
fn lookup<'v>(row: &'v Map<String, Value>, field: &str) -> Option<&'v Value> {
    if let Some(value) = row.get(field) {
        return Some(value);
    }
    let mut parts = field.split('.');
    let mut current = row.get(parts.next()?)?;
    for part in parts {
        current = current.as_object()?.get(part)?;
    }
    Some(current)
}

/// What a cursor value means, for ordering.
#[derive(Debug, PartialEq, PartialOrd)]
enum Key {
    Number(Decimal),
    /// A number beyond a decimal's 28 digits.
    Float(f64),
    Instant(DateTime<Utc>),
    Date(NaiveDate),
}

fn key(value: &Value) -> Option<Key> {
    match value {
        Value::Number(n) => {
            let text = n.to_string();
            Some(
                Decimal::from_str(&text)
                    .or_else(|_| Decimal::from_scientific(&text))
                    .map(Key::Number)
                    .unwrap_or_else(|_| Key::Float(n.as_f64().unwrap_or(f64::NAN))),
            )
        }
        Value::String(s) => {
            let s = s.trim();
            number_text(s)
                .then(|| Decimal::from_str(s).ok().map(Key::Number))
                .flatten()
                .or_else(|| instant(s).map(Key::Instant))
                .or_else(|| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().map(Key::Date))
        }
        _ => None,
    }
}

/// Plain decimal notation: an optional sign, digits, an optional fraction.
fn number_text(s: &str) -> bool {
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    !whole.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && fraction.bytes().all(|b| b.is_ascii_digit())
}

/// ISO 8601 / RFC 3339 with an offset, or a date and time without a zone (UTC).
fn instant(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f%#z", "%Y-%m-%dT%H:%M:%S%.f%#z"] {
        if let Ok(t) = DateTime::parse_from_str(s, format) {
            return Some(t.with_timezone(&Utc));
        }
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, format) {
            return Some(t.and_utc());
        }
    }
    None
}

/// Orders two cursor values by meaning when both have the same sort, by text
/// otherwise.
fn compare(a: &Value, b: &Value) -> Ordering {
    let ordered = match (key(a), key(b)) {
        (Some(Key::Float(x)), Some(Key::Number(y))) => {
            x.partial_cmp(&f64::try_from(y).unwrap_or(f64::NAN))
        }
        (Some(Key::Number(x)), Some(Key::Float(y))) => {
            f64::try_from(x).unwrap_or(f64::NAN).partial_cmp(&y)
        }
        (Some(x), Some(y)) if std::mem::discriminant(&x) == std::mem::discriminant(&y) => {
            x.partial_cmp(&y)
        }
        _ => None,
    };
    ordered.unwrap_or_else(|| text(a).cmp(&text(b)))
}

fn text(value: &Value) -> std::borrow::Cow<'_, str> {
    match value {
        Value::String(s) => s.as_str().into(),
        other => other.to_string().into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn largest(field: &str, values: Value) -> Option<String> {
        let rows: Vec<Map<String, Value>> = values
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_object().unwrap().clone())
            .collect();
        let mut cursor = Cursor::new(Some(field));
        for row in rows.chunks(2) {
            cursor.observe(row).unwrap();
        }
        cursor.into_value()
    }

    #[test]
    fn numbers_compare_as_numbers_whether_json_numbers_or_decimal_strings() {
        assert_eq!(
            largest(
                "id",
                json!([{"id": 9}, {"id": 10}, {"id": null}, {"id": 2}])
            )
            .as_deref(),
            Some("10")
        );
        assert_eq!(
            largest("n", json!([{"n": "99"}, {"n": "100"}, {"n": "-5"}])).as_deref(),
            Some("100")
        );
        assert_eq!(
            largest(
                "n",
                json!([{"n": "99.99"}, {"n": "100.5"}, {"n": "100.49"}])
            )
            .as_deref(),
            Some("100.5")
        );
        assert_eq!(
            largest(
                "n",
                json!([{"n": "12345678901234567890123.5"}, {"n": "12345678901234567890123.25"}])
            )
            .as_deref(),
            Some("12345678901234567890123.5"),
        );
        assert_eq!(
            largest("n", json!([{"n": 1.5}, {"n": 2}, {"n": 1e300}])).as_deref(),
            Some("1e+300")
        );
    }

    #[test]
    fn timestamps_compare_as_instants_whatever_their_offset_or_precision() {
        // 10:00+02:00 is 08:00 UTC, earlier than 09:00Z.
        assert_eq!(
            largest(
                "t",
                json!([{"t": "2026-01-10T10:00:00+02:00"}, {"t": "2026-01-10T09:00:00Z"}])
            )
            .as_deref(),
            Some("2026-01-10T09:00:00Z"),
        );
        assert_eq!(
            largest("t", json!([{"t": "2026-01-10T09:00:00.5"}, {"t": "2026-01-10T09:00:00.25"}, {"t": "2026-01-10 09:00:00"}])).as_deref(),
            Some("2026-01-10T09:00:00.5"),
        );
        assert_eq!(
            largest("d", json!([{"d": "2026-01-09"}, {"d": "2026-01-10"}])).as_deref(),
            Some("2026-01-10")
        );
    }

    #[test]
    fn dotted_aliases_are_followed_and_other_text_compares_as_text() {
        assert_eq!(
            largest("invoice.date_paid", json!([{"invoice": {"date_paid": "2026-01-02T00:00:00"}}, {"invoice": {"date_paid": "2026-01-10T00:00:00"}}])).as_deref(),
            Some("2026-01-10T00:00:00"),
        );
        assert_eq!(
            largest("code", json!([{"code": "b"}, {"code": "a10"}])).as_deref(),
            Some("b")
        );
        let mut none = Cursor::new(None);
        none.observe(&[json!({"id": 1}).as_object().unwrap().clone()])
            .unwrap();
        assert_eq!(none.into_value(), None);
    }

    #[test]
    fn values_of_different_sorts_are_an_error_not_a_guess() {
        let row = |v: Value| json!({"k": v}).as_object().unwrap().clone();
        let mut cursor = Cursor::new(Some("k"));
        cursor
            .observe(&[row(json!("99")), row(json!(100))])
            .unwrap();
        let error = cursor.observe(&[row(json!("abc"))]).unwrap_err();
        assert!(
            error.contains("Last Field k") && error.contains("numbers"),
            "{error}"
        );
        let mut dates = Cursor::new(Some("k"));
        dates.observe(&[row(json!("2026-01-01"))]).unwrap();
        assert!(
            dates
                .observe(&[row(json!("2026-01-01T10:00:00Z"))])
                .is_err()
        );
    }
}
