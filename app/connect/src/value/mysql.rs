//! MySQL and MariaDB rows.
//!
//! TINYINT(1) and BOOLEAN stay numbers: MySQL stores and reports them as the
//! same integer type, so `2` in a "boolean" column is as real as `1`. BIT(1) is
//! the one unambiguous boolean and becomes `true`/`false`; wider BITs are numbers.
//! MariaDB reports JSON columns as LONGTEXT: pass them in [`ColumnHints`] to
//! have them embedded (MySQL's JSON type is recognised on its own).

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde_json::{Map, Value};
use sqlx::mysql::types::MySqlTime;
use sqlx::mysql::{MySql, MySqlRow, MySqlTypeInfo, MySqlValueRef};
use sqlx::{Column, Decode, Row, Type, TypeInfo, ValueRef};

use super::{
    ColumnHints, ConvertError, base64_json, decimal_text_to_json, embedded_json, f32_to_json,
    float_to_json, format_date, format_naive_datetime, format_utc,
};

pub fn mysql_row_to_json(row: &MySqlRow) -> Result<Map<String, Value>, ConvertError> {
    mysql_row_to_json_with_hints(row, &ColumnHints::default())
}

pub fn mysql_row_to_json_with_hints(
    row: &MySqlRow,
    hints: &ColumnHints,
) -> Result<Map<String, Value>, ConvertError> {
    let mut map = Map::with_capacity(row.len());
    for (index, column) in row.columns().iter().enumerate() {
        let type_name = column.type_info().name().to_owned();
        let fail = |message: String| ConvertError::new(column.name(), &type_name, message);
        let value = row
            .try_get_raw(index)
            .map_err(|error| fail(error.to_string()))?;
        let is_json = hints.json.contains(column.name());
        let json = mysql_value_to_json(value, is_json).map_err(fail)?;
        map.insert(column.name().to_owned(), json);
    }
    Ok(map)
}

fn mysql_value_to_json(value: MySqlValueRef<'_>, json_hint: bool) -> Result<Value, String> {
    if value.is_null() {
        return Ok(Value::Null);
    }
    let type_info = value.type_info().into_owned();
    let name = type_info.name();
    let json = match name {
        "BOOLEAN" | "TINYINT" | "SMALLINT" | "MEDIUMINT" | "INT" | "BIGINT" => {
            Value::from(decode::<i64>(value)?)
        }
        "TINYINT UNSIGNED" | "SMALLINT UNSIGNED" | "MEDIUMINT UNSIGNED" | "INT UNSIGNED"
        | "BIGINT UNSIGNED" | "YEAR" => Value::from(decode::<u64>(value)?),
        "FLOAT" => f32_to_json(decode::<f32>(value)?),
        "DOUBLE" => float_to_json(decode::<f64>(value)?),
        "DECIMAL" => decimal_text_to_json(decode::<&str>(value)?),
        "BIT" => bit_to_json(decode::<&[u8]>(value)?, is_single_bit(&type_info)),
        "DATE" => Value::String(format_date(decode::<NaiveDate>(value)?)),
        "TIME" => Value::String(format_mysql_time(&decode::<MySqlTime>(value)?)),
        "DATETIME" => Value::String(format_naive_datetime(decode::<NaiveDateTime>(value)?)),
        // The session runs in UTC (sqlx sets time_zone='+00:00'), so TIMESTAMP
        // values arrive in UTC.
        "TIMESTAMP" => Value::String(format_utc(decode::<DateTime<Utc>>(value)?)),
        "JSON" => embedded_json(decode::<&str>(value)?),
        "NULL" => Value::Null,
        _ if is_string_type(name) => string_or_bytes(value, &type_info, json_hint)?,
        other => return Err(format!("type {other} has no JSON form")),
    };
    Ok(json)
}

fn decode<'r, T: Decode<'r, MySql>>(value: MySqlValueRef<'r>) -> Result<T, String> {
    T::decode(value).map_err(|error| error.to_string())
}

fn is_string_type(name: &str) -> bool {
    matches!(
        name,
        "CHAR"
            | "VARCHAR"
            | "BINARY"
            | "VARBINARY"
            | "TINYTEXT"
            | "TEXT"
            | "MEDIUMTEXT"
            | "LONGTEXT"
            | "TINYBLOB"
            | "BLOB"
            | "MEDIUMBLOB"
            | "LONGBLOB"
            | "ENUM"
            | "SET"
    )
}

/// The binary collation, not the type's name, tells bytes from text: a TEXT
/// column with a `_bin` collation is still text.
fn string_or_bytes(
    value: MySqlValueRef<'_>,
    type_info: &MySqlTypeInfo,
    json_hint: bool,
) -> Result<Value, String> {
    if <str as Type<MySql>>::compatible(type_info) {
        let text = decode::<&str>(value)?;
        Ok(if json_hint {
            embedded_json(text)
        } else {
            Value::String(text.to_owned())
        })
    } else {
        Ok(base64_json(decode::<&[u8]>(value)?))
    }
}

/// sqlx keeps a column's declared width private; its `Debug` output is the
/// only place it shows. If that ever changes, BIT(1) degrades to a number.
fn is_single_bit(type_info: &MySqlTypeInfo) -> bool {
    format!("{type_info:?}").contains("max_size: Some(1)")
}

pub(crate) fn bit_to_json(bytes: &[u8], single_bit: bool) -> Value {
    let number = bytes
        .iter()
        .fold(0u64, |acc, byte| acc.wrapping_shl(8) | u64::from(*byte));
    if single_bit {
        Value::Bool(number != 0)
    } else {
        Value::from(number)
    }
}

/// MySQL TIME is a duration (−838:59:59 … 838:59:59), not a time of day.
fn format_mysql_time(time: &MySqlTime) -> String {
    // `MySqlTime::is_negative` answers is_positive in sqlx 0.9; ask the sign.
    let sign = if time.sign().is_negative() { "-" } else { "" };
    let mut text = format!(
        "{sign}{:02}:{:02}:{:02}",
        time.hours(),
        time.minutes(),
        time.seconds()
    );
    if time.microseconds() != 0 {
        text.push_str(&format!(".{:06}", time.microseconds()));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_are_big_endian_numbers_and_bit_1_is_a_boolean() {
        assert_eq!(bit_to_json(&[1], true), Value::Bool(true));
        assert_eq!(bit_to_json(&[0], true), Value::Bool(false));
        assert_eq!(bit_to_json(&[1, 0], false), Value::from(256));
        assert_eq!(bit_to_json(&[], false), Value::from(0));
    }

    #[test]
    fn mysql_time_keeps_sign_and_hours_beyond_a_day() {
        use sqlx::mysql::types::MySqlTimeSign;
        let time = MySqlTime::new(MySqlTimeSign::Negative, 838, 59, 59, 0).expect("valid time");
        assert_eq!(format_mysql_time(&time), "-838:59:59");
        let time = MySqlTime::new(MySqlTimeSign::Positive, 1, 2, 3, 450).expect("valid time");
        assert_eq!(format_mysql_time(&time), "01:02:03.000450");
    }
}
