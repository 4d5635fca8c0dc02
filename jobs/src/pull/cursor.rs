//! The Last Field cursor: the largest value of one column among the rows a run
//! delivered, which becomes the command's `@last_value@`.
//!
//! Values are ordered the way the database orders the column, which the driver
//! reports from the column's type ([`CursorSort`]), never guessed from the
//! values: integers and decimals exactly by value (any number of digits; NaN
//! and infinities where PostgreSQL puts them), timestamps with a zone as
//! instants, timestamps without one and dates by their fields, text by code
//! point (so a VARCHAR of digits orders as text, as `col > '99'` does).
//!
//! A value that does not read as its column's sort, a Last Field that is no
//! column of the result or whose type has no order (JSON, bytes, …), and a
//! column whose sort differs from the one stored with the cursor are errors
//! naming the field: the run fails rather than move the cursor by a wrong order.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde_json::Value;
use sluice_connect::{CursorSort, ResultColumn};
use std::cmp::Ordering;

/// Tracks the largest value of the Last Field among delivered rows.
pub(crate) struct Cursor<'a> {
    field: Option<&'a str>,
    /// The sort stored with the command's `@last_value@` by an earlier run.
    stored: Option<CursorSort>,
    /// The Last Field column's sort in this run's result.
    sort: Option<CursorSort>,
    /// The largest value so far, read and as the row carried it.
    max: Option<(Key, Value)>,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(field: Option<&'a str>, stored: Option<CursorSort>) -> Self {
        Self {
            field: field.map(str::trim).filter(|f| !f.is_empty()),
            stored,
            sort: None,
            max: None,
        }
    }

    /// Takes a batch's Last Field values (one per row, as the driver found
    /// them) into account, ordered by the sort their column has in `columns`.
    pub(crate) fn observe(
        &mut self,
        columns: &[ResultColumn],
        values: &[Value],
    ) -> Result<(), String> {
        let Some(field) = self.field else {
            return Ok(());
        };
        let sort = self.column_sort(field, columns)?;
        for value in values {
            if value.is_null() {
                continue;
            }
            let key = Key::read(sort, value).ok_or_else(|| {
                format!(
                    "Last Field {field}: {value} cannot be read as one of the {} its column holds \
                     (type {sort}), so it has no place in the column's order",
                    sort.describe()
                )
            })?;
            if self.max.as_ref().is_none_or(|(max, _)| key > *max) {
                self.max = Some((key, value.clone()));
            }
        }
        Ok(())
    }

    /// The Last Field column's sort, checked against the stored one and the
    /// earlier batches'.
    fn column_sort(&mut self, field: &str, columns: &[ResultColumn]) -> Result<CursorSort, String> {
        // A repeated alias: the row keeps the last column's value.
        let Some(column) = columns.iter().rfind(|c| c.name == field) else {
            let names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
            return Err(format!(
                "Last Field {field}: the result has no column named {field} (its columns: {})",
                names.join(", ")
            ));
        };
        let sort = column.sort;
        if sort == CursorSort::Unordered {
            return Err(format!(
                "Last Field {field}: the column's type has no order a cursor can follow (JSON, \
                 bytes, booleans, times of day, intervals, …); choose a column of integers, \
                 decimals, timestamps, dates or text"
            ));
        }
        if let Some(stored) = self.stored
            && stored != sort
        {
            return Err(format!(
                "Last Field {field}: the stored @last_value@ was taken from {} ({stored}), but the \
                 column now holds {} ({sort}); check the stored value and save it again on the \
                 command (a value saved by hand takes the column's type at the next run)",
                stored.describe(),
                sort.describe()
            ));
        }
        if let Some(seen) = self.sort
            && seen != sort
        {
            return Err(format!(
                "Last Field {field}: the column holds {} ({sort}) in one result and {} ({seen}) in \
                 another",
                sort.describe(),
                seen.describe()
            ));
        }
        self.sort = Some(sort);
        Ok(sort)
    }

    /// The new `@last_value@`, as the database wrote it (strings unquoted), and
    /// the sort to store with it.
    pub(crate) fn into_value(self) -> Option<(String, CursorSort)> {
        let sort = self.sort?;
        self.max.map(|(_, v)| {
            let text = match v {
                Value::String(s) => s,
                other => other.to_string(),
            };
            (text, sort)
        })
    }
}

/// A cursor value read by its column's sort. Keys of one cursor all have the
/// same sort, so comparing keys of different variants never happens.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Key {
    Integer(i128),
    Decimal(Decimal),
    Instant(Bounded<DateTime<Utc>>),
    NaiveTimestamp(Bounded<NaiveDateTime>),
    Date(Bounded<NaiveDate>),
    Text(String),
}

/// PostgreSQL's `-infinity` and `infinity` around a type's values.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Bounded<T> {
    NegativeInfinity,
    Finite(T),
    Infinity,
}

impl Key {
    fn read(sort: CursorSort, value: &Value) -> Option<Key> {
        match (sort, value) {
            (CursorSort::Integer, Value::Number(n)) => n
                .as_i64()
                .map(i128::from)
                .or_else(|| n.as_u64().map(i128::from))
                .map(Key::Integer),
            // NUMBER(38) and wider integers arrive as text.
            (CursorSort::Integer, Value::String(s)) => s.trim().parse().ok().map(Key::Integer),
            (CursorSort::Decimal, Value::Number(n)) => Exact::parse(&n.to_string())
                .map(Decimal::Finite)
                .map(Key::Decimal),
            (CursorSort::Decimal, Value::String(s)) => Decimal::parse(s.trim()).map(Key::Decimal),
            (CursorSort::Instant, Value::String(s)) => bounded(s, instant).map(Key::Instant),
            (CursorSort::NaiveTimestamp, Value::String(s)) => {
                bounded(s, naive_timestamp).map(Key::NaiveTimestamp)
            }
            (CursorSort::Date, Value::String(s)) => {
                bounded(s, |s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()).map(Key::Date)
            }
            (CursorSort::Text, Value::String(s)) => Some(Key::Text(s.clone())),
            _ => None,
        }
    }
}

fn bounded<T>(text: &str, read: impl Fn(&str) -> Option<T>) -> Option<Bounded<T>> {
    match text.trim() {
        "infinity" => Some(Bounded::Infinity),
        "-infinity" => Some(Bounded::NegativeInfinity),
        other => read(other).map(Bounded::Finite),
    }
}

/// RFC 3339, as the drivers write instants (UTC with `Z`), or with a space.
fn instant(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .or_else(|_| DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f%#z"))
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn naive_timestamp(s: &str) -> Option<NaiveDateTime> {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f"))
        .ok()
}

/// A decimal or float as PostgreSQL orders them: −∞ < numbers < ∞ < NaN.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Decimal {
    NegativeInfinity,
    Finite(Exact),
    Infinity,
    NaN,
}

impl Decimal {
    fn parse(text: &str) -> Option<Decimal> {
        match text {
            "NaN" => Some(Decimal::NaN),
            "Infinity" => Some(Decimal::Infinity),
            "-Infinity" => Some(Decimal::NegativeInfinity),
            other => Exact::parse(other).map(Decimal::Finite),
        }
    }
}

/// An exact decimal of any length: `0.d₁d₂…dₙ × 10^exponent`, its digits
/// without leading or trailing zeros (none for zero). Hand-written because
/// `rust_decimal` stops at 28 digits and NUMERIC does not.
#[derive(Debug, PartialEq, Eq)]
struct Exact {
    negative: bool,
    digits: Vec<u8>,
    exponent: i64,
}

impl Exact {
    /// `-12.50`, `+7`, `.5`, `1e300`, `2.5E-7`.
    fn parse(text: &str) -> Option<Exact> {
        let (negative, rest) = match text.as_bytes().first()? {
            b'-' => (true, &text[1..]),
            b'+' => (false, &text[1..]),
            _ => (false, text),
        };
        let (mantissa, exponent) = match rest.split_once(['e', 'E']) {
            Some((mantissa, exponent)) => (mantissa, exponent.parse::<i64>().ok()?),
            None => (rest, 0),
        };
        let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let digits_only = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
        if (whole.is_empty() && fraction.is_empty())
            || !digits_only(whole)
            || !digits_only(fraction)
        {
            return None;
        }
        let all: Vec<u8> = whole
            .bytes()
            .chain(fraction.bytes())
            .map(|b| b - b'0')
            .collect();
        let leading = all.iter().take_while(|&&d| d == 0).count();
        let mut digits = all[leading..].to_vec();
        while digits.last() == Some(&0) {
            digits.pop();
        }
        let whole_len = i64::try_from(whole.len()).ok()?;
        let leading = i64::try_from(leading).ok()?;
        Some(Exact {
            negative: negative && !digits.is_empty(),
            exponent: if digits.is_empty() {
                0
            } else {
                whole_len - leading + exponent
            },
            digits,
        })
    }

    fn signum(&self) -> i8 {
        match (self.digits.is_empty(), self.negative) {
            (true, _) => 0,
            (false, true) => -1,
            (false, false) => 1,
        }
    }
}

impl Ord for Exact {
    fn cmp(&self, other: &Self) -> Ordering {
        let by_sign = self.signum().cmp(&other.signum());
        if by_sign != Ordering::Equal || self.signum() == 0 {
            return by_sign;
        }
        let magnitude = self
            .exponent
            .cmp(&other.exponent)
            .then_with(|| self.digits.cmp(&other.digits));
        if self.negative {
            magnitude.reverse()
        } else {
            magnitude
        }
    }
}

impl PartialOrd for Exact {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn column(name: &str, sort: CursorSort) -> Vec<ResultColumn> {
        vec![ResultColumn {
            name: name.into(),
            sort,
        }]
    }

    fn rows(_field: &str, values: Value) -> Vec<Value> {
        values.as_array().unwrap().clone()
    }

    fn largest_result(
        field: &str,
        sort: CursorSort,
        values: Value,
    ) -> Result<Option<String>, String> {
        let columns = column(field, sort);
        let mut cursor = Cursor::new(Some(field), None);
        for batch in rows(field, values).chunks(2) {
            cursor.observe(&columns, batch)?;
        }
        Ok(cursor.into_value().map(|(value, stored)| {
            assert_eq!(stored, sort);
            value
        }))
    }

    fn largest(field: &str, sort: CursorSort, values: Value) -> Option<String> {
        largest_result(field, sort, values).unwrap()
    }

    #[test]
    fn integers_compare_as_integers_whether_numbers_or_text() {
        let sort = CursorSort::Integer;
        assert_eq!(
            largest("id", sort, json!([9, 10, null, 2])).as_deref(),
            Some("10")
        );
        assert_eq!(
            largest("id", sort, json!([9007199254740993u64, 12, -5])).as_deref(),
            Some("9007199254740993")
        );
        assert_eq!(
            largest(
                "id",
                sort,
                json!(["99999999999999999999999999999999999", "100"])
            )
            .as_deref(),
            Some("99999999999999999999999999999999999")
        );
        assert_eq!(
            largest("id", sort, json!([18446744073709551615u64, -1])).as_deref(),
            Some("18446744073709551615")
        );
    }

    #[test]
    fn decimals_compare_exactly_at_any_length_and_floats_with_them() {
        let sort = CursorSort::Decimal;
        assert_eq!(
            largest("n", sort, json!(["99.99", 100.5, "100.49"])).as_deref(),
            Some("100.5")
        );
        assert_eq!(
            largest(
                "n",
                sort,
                json!([
                    "12345678901234567890123456789012.5",
                    "12345678901234567890123456789012.25"
                ])
            )
            .as_deref(),
            Some("12345678901234567890123456789012.5"),
        );
        assert_eq!(
            largest("n", sort, json!([1.5, 2, 1e300, -1e301])).as_deref(),
            Some("1e+300")
        );
        assert_eq!(
            largest("n", sort, json!([-0.5, -0.25, "-0.0"])).as_deref(),
            Some("-0.0")
        );
        assert_eq!(
            largest("n", sort, json!([-2.5e-7, -3, "-0.00000025"])).as_deref(),
            Some("-2.5e-7")
        );
        assert_eq!(
            largest("n", sort, json!(["Infinity", 5, "-Infinity"])).as_deref(),
            Some("Infinity")
        );
        assert_eq!(
            largest("n", sort, json!(["Infinity", "NaN", 5])).as_deref(),
            Some("NaN")
        );
        let exact = |s: &str| Exact::parse(s).unwrap();
        assert_eq!(exact("007.2500"), exact("7.25"));
        assert_eq!(exact("-0"), exact("0.000"));
        assert!(exact("0.1") < exact("0.11"));
        assert!(exact("-0.1") > exact("-0.11"));
        assert!(exact("10") > exact("9.999"));
        assert!(exact("1E2") == exact("100"));
        for bad in ["", ".", "1.2.3", "abc", "1e", "--1", "1,5"] {
            assert!(Exact::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn timestamps_with_a_zone_compare_as_instants() {
        // 10:00+02:00 is 08:00 UTC, earlier than 09:00Z.
        assert_eq!(
            largest(
                "t",
                CursorSort::Instant,
                json!([
                    "2026-01-10T10:00:00+02:00",
                    "2026-01-10T09:00:00Z",
                    "-infinity"
                ])
            )
            .as_deref(),
            Some("2026-01-10T09:00:00Z"),
        );
        assert_eq!(
            largest(
                "t",
                CursorSort::Instant,
                json!(["2026-01-10T09:00:00Z", "infinity"])
            )
            .as_deref(),
            Some("infinity"),
        );
    }

    #[test]
    fn timestamps_without_a_zone_and_dates_compare_by_their_fields() {
        assert_eq!(
            largest(
                "t",
                CursorSort::NaiveTimestamp,
                json!([
                    "2026-01-10T09:00:00.5",
                    "2026-01-10T09:00:00.250000",
                    "2026-01-10 09:00:00"
                ])
            )
            .as_deref(),
            Some("2026-01-10T09:00:00.5"),
        );
        assert_eq!(
            largest(
                "d",
                CursorSort::Date,
                json!(["2026-01-09", "2026-01-10", "2025-12-31"])
            )
            .as_deref(),
            Some("2026-01-10")
        );
    }

    #[test]
    fn text_compares_as_text_even_when_it_holds_digits() {
        assert_eq!(
            largest("code", CursorSort::Text, json!(["99", "100", "1000"])).as_deref(),
            Some("99")
        );
        assert_eq!(
            largest("code", CursorSort::Text, json!(["b", "a10", "B"])).as_deref(),
            Some("b")
        );
    }

    #[test]
    fn without_a_last_field_nothing_is_tracked() {
        let mut none = Cursor::new(None, None);
        none.observe(&column("id", CursorSort::Integer), &rows("id", json!([1])))
            .unwrap();
        assert_eq!(none.into_value(), None);
    }

    #[test]
    fn values_that_do_not_read_as_their_sort_are_errors_naming_the_field() {
        for (sort, bad) in [
            (CursorSort::Integer, json!("12a")),
            (CursorSort::Integer, json!(1.5)),
            (CursorSort::Decimal, json!("ten")),
            (CursorSort::Instant, json!("2026-01-10")),
            (CursorSort::NaiveTimestamp, json!("yesterday")),
            (CursorSort::Date, json!("2026-01-10T00:00:00")),
            (CursorSort::Text, json!(5)),
        ] {
            let error = largest_result("k", sort, json!([bad.clone()])).unwrap_err();
            assert!(error.starts_with("Last Field k:"), "{sort}: {error}");
            assert!(error.contains(sort.as_str()), "{sort}: {error}");
        }
    }

    #[test]
    fn unordered_absent_or_changed_columns_are_errors() {
        let error = largest_result("k", CursorSort::Unordered, json!([{"a": 1}])).unwrap_err();
        assert!(error.contains("no order"), "{error}");

        let mut cursor = Cursor::new(Some("missing"), None);
        let error = cursor
            .observe(&column("id", CursorSort::Integer), &rows("id", json!([1])))
            .unwrap_err();
        assert!(
            error.contains("Last Field missing") && error.contains("its columns: id"),
            "{error}"
        );

        // The stored cursor came from text; the column is now an integer.
        let mut cursor = Cursor::new(Some("k"), Some(CursorSort::Text));
        let error = cursor
            .observe(&column("k", CursorSort::Integer), &rows("k", json!([1])))
            .unwrap_err();
        assert!(
            error.contains("(text)") && error.contains("(integer)"),
            "{error}"
        );
        let mut same = Cursor::new(Some("k"), Some(CursorSort::Integer));
        same.observe(&column("k", CursorSort::Integer), &rows("k", json!([1])))
            .unwrap();

        // Two results of a SQLite text with different sorts.
        let mut cursor = Cursor::new(Some("k"), None);
        cursor
            .observe(&column("k", CursorSort::Integer), &rows("k", json!([1])))
            .unwrap();
        assert!(
            cursor
                .observe(&column("k", CursorSort::Text), &rows("k", json!(["a"])))
                .is_err()
        );
    }

    #[test]
    fn only_nulls_leave_the_cursor_where_it_was() {
        let mut cursor = Cursor::new(Some("k"), None);
        cursor
            .observe(&column("k", CursorSort::Integer), &rows("k", json!([null])))
            .unwrap();
        assert_eq!(cursor.into_value(), None);
    }
}
