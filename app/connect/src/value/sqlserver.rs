//! SQL Server rows (tiberius `ColumnData`).

use chrono::{Duration, NaiveDate, NaiveDateTime, NaiveTime};
use serde_json::{Map, Value};
use tiberius::time::{Date, DateTime, DateTime2, SmallDateTime, Time};
use tiberius::{ColumnData, Row};

use super::{
    ConvertError, base64_json, decimal_text_to_json, f32_to_json, float_to_json, format_date,
    format_naive_datetime, format_time, scaled_integer_to_text,
};

pub fn tiberius_row_to_json(row: &Row) -> Result<Map<String, Value>, ConvertError> {
    let mut map = Map::with_capacity(row.len());
    for (column, data) in row.cells() {
        let json = column_data_to_json(data).map_err(|message| {
            ConvertError::new(
                column.name(),
                format!("{:?}", column.column_type()),
                message,
            )
        })?;
        map.insert(column.name().to_owned(), json);
    }
    Ok(map)
}

/// One SQL Server value. DATETIMEOFFSET is sent in UTC plus an offset, so it
/// becomes UTC with `Z`; DATETIME's 1/300 s ticks round to milliseconds, as
/// SQL Server itself shows them.
pub fn column_data_to_json(data: &ColumnData<'_>) -> Result<Value, String> {
    let json = match data {
        ColumnData::U8(v) => v.map(Value::from).unwrap_or(Value::Null),
        ColumnData::I16(v) => v.map(Value::from).unwrap_or(Value::Null),
        ColumnData::I32(v) => v.map(Value::from).unwrap_or(Value::Null),
        ColumnData::I64(v) => v.map(Value::from).unwrap_or(Value::Null),
        ColumnData::F32(v) => v.map(f32_to_json).unwrap_or(Value::Null),
        ColumnData::F64(v) => v.map(float_to_json).unwrap_or(Value::Null),
        ColumnData::Bit(v) => v.map(Value::Bool).unwrap_or(Value::Null),
        ColumnData::String(v) => v
            .as_ref()
            .map_or(Value::Null, |s| Value::String(s.to_string())),
        ColumnData::Guid(v) => v.map_or(Value::Null, |g| Value::String(g.hyphenated().to_string())),
        ColumnData::Binary(v) => v.as_ref().map_or(Value::Null, |b| base64_json(b)),
        ColumnData::Numeric(v) => v.map_or(Value::Null, |n| {
            decimal_text_to_json(&scaled_integer_to_text(n.value(), n.scale()))
        }),
        ColumnData::Xml(v) => v
            .as_ref()
            .map_or(Value::Null, |x| Value::String(x.to_string())),
        ColumnData::DateTime(v) => optional_text(v.map(datetime))?,
        ColumnData::SmallDateTime(v) => optional_text(v.map(small_datetime))?,
        ColumnData::Time(v) => optional_text(v.map(|t| time(t).map(format_time)))?,
        ColumnData::Date(v) => optional_text(v.map(|d| date(d).map(format_date)))?,
        ColumnData::DateTime2(v) => {
            optional_text(v.map(|d| datetime2(d).map(format_naive_datetime)))?
        }
        ColumnData::DateTimeOffset(v) => optional_text(v.map(|d| {
            datetime2(d.datetime2()).map(|utc| format!("{}Z", format_naive_datetime(utc)))
        }))?,
    };
    Ok(json)
}

fn optional_text(value: Option<Result<String, String>>) -> Result<Value, String> {
    value
        .transpose()
        .map(|text| text.map_or(Value::Null, Value::String))
}

fn day_zero(year: i32) -> Result<NaiveDate, String> {
    NaiveDate::from_ymd_opt(year, 1, 1).ok_or_else(|| "date out of range".to_owned())
}

fn add_days(origin: NaiveDate, days: i64) -> Result<NaiveDate, String> {
    origin
        .checked_add_signed(Duration::days(days))
        .ok_or_else(|| "date out of range".to_owned())
}

fn datetime(value: DateTime) -> Result<String, String> {
    let date = add_days(day_zero(1900)?, value.days().into())?;
    let millis = (u64::from(value.seconds_fragments()) * 1000 + 150) / 300;
    let time = NaiveTime::MIN + Duration::milliseconds(i64::try_from(millis).unwrap_or(0));
    Ok(format_naive_datetime(NaiveDateTime::new(date, time)))
}

fn small_datetime(value: SmallDateTime) -> Result<String, String> {
    let date = add_days(day_zero(1900)?, value.days().into())?;
    let time = NaiveTime::MIN + Duration::minutes(value.seconds_fragments().into());
    Ok(format_naive_datetime(NaiveDateTime::new(date, time)))
}

fn date(value: Date) -> Result<NaiveDate, String> {
    add_days(day_zero(1)?, value.days().into())
}

/// `increments` counts units of 10^-scale seconds since midnight.
fn time(value: Time) -> Result<NaiveTime, String> {
    let scale = u32::from(value.scale()).min(9);
    let nanos = u128::from(value.increments()) * 10u128.pow(9 - scale);
    let seconds = u32::try_from(nanos / 1_000_000_000).map_err(|_| "time out of range")?;
    let nanos = u32::try_from(nanos % 1_000_000_000).map_err(|_| "time out of range")?;
    NaiveTime::from_num_seconds_from_midnight_opt(seconds, nanos)
        .ok_or_else(|| "time out of range".to_owned())
}

fn datetime2(value: DateTime2) -> Result<NaiveDateTime, String> {
    Ok(NaiveDateTime::new(date(value.date())?, time(value.time())?))
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use serde_json::json;
    use tiberius::numeric::Numeric;
    use tiberius::time::DateTimeOffset;

    use super::*;

    fn convert(data: ColumnData<'static>) -> Value {
        column_data_to_json(&data).expect("convertible")
    }

    #[test]
    fn numbers_and_booleans() {
        assert_eq!(convert(ColumnData::U8(Some(255))), json!(255));
        assert_eq!(convert(ColumnData::I64(Some(i64::MIN))), json!(i64::MIN));
        assert_eq!(convert(ColumnData::F32(Some(0.1))), json!(0.1));
        assert_eq!(
            convert(ColumnData::F64(Some(f64::INFINITY))),
            json!("Infinity")
        );
        assert_eq!(convert(ColumnData::Bit(Some(true))), json!(true));
        assert_eq!(convert(ColumnData::I32(None)), Value::Null);
    }

    #[test]
    fn numerics_keep_precision() {
        let exact = Numeric::new_with_scale(12_345, 2);
        assert_eq!(convert(ColumnData::Numeric(Some(exact))), json!(123.45));
        let big = Numeric::new_with_scale(123_456_789_012_345_678_901_234_567_890, 10);
        assert_eq!(
            convert(ColumnData::Numeric(Some(big))),
            json!("12345678901234567890.1234567890")
        );
        let small = Numeric::new_with_scale(-5, 3);
        assert_eq!(convert(ColumnData::Numeric(Some(small))), json!(-0.005));
    }

    #[test]
    fn text_guid_and_binary() {
        assert_eq!(
            convert(ColumnData::String(Some(Cow::Borrowed("héllo")))),
            json!("héllo")
        );
        let guid = uuid::Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
        assert_eq!(
            convert(ColumnData::Guid(Some(guid))),
            json!("01234567-89ab-cdef-0123-456789abcdef")
        );
        assert_eq!(
            convert(ColumnData::Binary(Some(Cow::Borrowed(&[
                0xde, 0xad, 0xbe, 0xef
            ])))),
            json!("3q2+7w==")
        );
    }

    #[test]
    fn dates_and_times() {
        // 2024-01-31 is day 45320 after 1900-01-01; 1 tick = 1/300 s.
        let legacy = DateTime::new(45_320, 300 * 3600 + 2);
        assert_eq!(
            convert(ColumnData::DateTime(Some(legacy))),
            json!("2024-01-31T01:00:00.007000")
        );
        let small = SmallDateTime::new(45_320, 61);
        assert_eq!(
            convert(ColumnData::SmallDateTime(Some(small))),
            json!("2024-01-31T01:01:00")
        );
        let date = Date::new(738_915); // days since 0001-01-01
        assert_eq!(convert(ColumnData::Date(Some(date))), json!("2024-01-31"));
        let time = Time::new(452_961_234_567, 7); // 12:34:56.1234567 in 100 ns units
        assert_eq!(
            convert(ColumnData::Time(Some(time))),
            json!("12:34:56.123456700")
        );
        let whole = Time::new(45_296, 0);
        let stamp = DateTime2::new(date, whole);
        assert_eq!(
            convert(ColumnData::DateTime2(Some(stamp))),
            json!("2024-01-31T12:34:56")
        );
        let offset = DateTimeOffset::new(stamp, 120);
        assert_eq!(
            convert(ColumnData::DateTimeOffset(Some(offset))),
            json!("2024-01-31T12:34:56Z")
        );
    }

    #[test]
    fn rows_keep_column_order_and_name_bad_columns() {
        let row = Row::builder()
            .column("z", tiberius::ColumnType::Int4, ColumnData::I32(Some(1)))
            .column("a.b", tiberius::ColumnType::Bitn, ColumnData::Bit(None))
            .build();
        let map = tiberius_row_to_json(&row).expect("row converts");
        assert_eq!(Value::Object(map), json!({"z": 1, "a.b": null}));
        let keys: Vec<_> = tiberius_row_to_json(&row)
            .expect("row converts")
            .keys()
            .cloned()
            .collect();
        assert_eq!(keys, ["z", "a.b"]);
        let bad = Row::builder()
            .column(
                "t",
                tiberius::ColumnType::Timen,
                ColumnData::Time(Some(Time::new(u64::MAX, 0))),
            )
            .build();
        let error = tiberius_row_to_json(&bad).expect_err("time out of range");
        assert!(error.to_string().starts_with("column \"t\""), "{error}");
    }
}
