//! Oracle rows. A value is first read out of the driver into an [`OracleDatum`]
//! (by column type), then turned into JSON; the second step is pure and tested
//! without a server.
//!
//! NUMBER and FLOAT are read as text, so they keep every digit (integers become
//! JSON integers). DATE carries a time of day in Oracle and becomes a timestamp
//! without zone. TIMESTAMP WITH (LOCAL) TIME ZONE becomes UTC with `Z`.

use chrono::{Duration, NaiveDate, NaiveDateTime, NaiveTime};
use oracle::sql_type::{IntervalDS, IntervalYM, OracleType, Timestamp};
use oracle::{Row, SqlValue};
use serde_json::{Map, Value};

use super::{
    ConvertError, base64_json, decimal_text_to_json, f32_to_json, float_to_json,
    format_naive_datetime, iso_duration,
};

/// One Oracle value, out of the driver and ready for JSON.
#[derive(Debug, Clone, PartialEq)]
pub enum OracleDatum {
    Null,
    /// NUMBER or FLOAT as Oracle writes it.
    Number(String),
    Int64(i64),
    UInt64(u64),
    BinaryFloat(f32),
    BinaryDouble(f64),
    Text(String),
    Bytes(Vec<u8>),
    Boolean(bool),
    /// DATE and TIMESTAMP: no zone.
    DateTime(NaiveDateTime),
    /// TIMESTAMP WITH (LOCAL) TIME ZONE, already converted to UTC.
    DateTimeUtc(NaiveDateTime),
    IntervalDaySecond {
        days: i32,
        hours: i32,
        minutes: i32,
        seconds: i32,
        nanoseconds: i32,
    },
    IntervalYearMonth {
        years: i32,
        months: i32,
    },
}

/// How a column type is read out of the driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadAs {
    Number,
    Int64,
    UInt64,
    BinaryFloat,
    BinaryDouble,
    Text,
    Bytes,
    Boolean,
    DateTime,
    DateTimeUtc,
    IntervalDaySecond,
    IntervalYearMonth,
}

fn read_as(oracle_type: &OracleType) -> Option<ReadAs> {
    let read = match oracle_type {
        OracleType::Number(..) | OracleType::Float(_) => ReadAs::Number,
        OracleType::Int64 => ReadAs::Int64,
        OracleType::UInt64 => ReadAs::UInt64,
        OracleType::BinaryFloat => ReadAs::BinaryFloat,
        OracleType::BinaryDouble => ReadAs::BinaryDouble,
        OracleType::Varchar2(_)
        | OracleType::NVarchar2(_)
        | OracleType::Char(_)
        | OracleType::NChar(_)
        | OracleType::Rowid
        | OracleType::CLOB
        | OracleType::NCLOB
        | OracleType::Long
        | OracleType::Xml => ReadAs::Text,
        OracleType::Raw(_) | OracleType::BLOB | OracleType::LongRaw => ReadAs::Bytes,
        OracleType::Boolean => ReadAs::Boolean,
        OracleType::Date | OracleType::Timestamp(_) => ReadAs::DateTime,
        OracleType::TimestampTZ(_) | OracleType::TimestampLTZ(_) => ReadAs::DateTimeUtc,
        OracleType::IntervalDS(..) => ReadAs::IntervalDaySecond,
        OracleType::IntervalYM(_) => ReadAs::IntervalYearMonth,
        _ => return None,
    };
    Some(read)
}

pub fn oracle_row_to_json(row: &Row) -> Result<Map<String, Value>, ConvertError> {
    let mut map = Map::with_capacity(row.sql_values().len());
    for (info, value) in row.column_info().iter().zip(row.sql_values()) {
        let fail = |message: String| {
            ConvertError::new(info.name(), info.oracle_type().to_string(), message)
        };
        let datum = read_datum(info.oracle_type(), value).map_err(fail)?;
        map.insert(info.name().to_owned(), oracle_datum_to_json(datum));
    }
    Ok(map)
}

fn read_datum(oracle_type: &OracleType, value: &SqlValue) -> Result<OracleDatum, String> {
    let read =
        read_as(oracle_type).ok_or_else(|| format!("type {oracle_type} has no JSON form"))?;
    if value.is_null().map_err(|e| e.to_string())? {
        return Ok(OracleDatum::Null);
    }
    let error = |e: oracle::Error| e.to_string();
    let datum = match read {
        ReadAs::Number => OracleDatum::Number(value.get().map_err(error)?),
        ReadAs::Int64 => OracleDatum::Int64(value.get().map_err(error)?),
        ReadAs::UInt64 => OracleDatum::UInt64(value.get().map_err(error)?),
        ReadAs::BinaryFloat => OracleDatum::BinaryFloat(value.get().map_err(error)?),
        ReadAs::BinaryDouble => OracleDatum::BinaryDouble(value.get().map_err(error)?),
        ReadAs::Text => OracleDatum::Text(value.get().map_err(error)?),
        ReadAs::Bytes => OracleDatum::Bytes(value.get().map_err(error)?),
        ReadAs::Boolean => OracleDatum::Boolean(value.get().map_err(error)?),
        ReadAs::DateTime => OracleDatum::DateTime(naive(&value.get().map_err(error)?)?),
        ReadAs::DateTimeUtc => OracleDatum::DateTimeUtc(utc(&value.get().map_err(error)?)?),
        ReadAs::IntervalDaySecond => {
            let interval: IntervalDS = value.get().map_err(error)?;
            OracleDatum::IntervalDaySecond {
                days: interval.days(),
                hours: interval.hours(),
                minutes: interval.minutes(),
                seconds: interval.seconds(),
                nanoseconds: interval.nanoseconds(),
            }
        }
        ReadAs::IntervalYearMonth => {
            let interval: IntervalYM = value.get().map_err(error)?;
            OracleDatum::IntervalYearMonth {
                years: interval.years(),
                months: interval.months(),
            }
        }
    };
    Ok(datum)
}

fn naive(timestamp: &Timestamp) -> Result<NaiveDateTime, String> {
    let date = NaiveDate::from_ymd_opt(timestamp.year(), timestamp.month(), timestamp.day());
    let time = NaiveTime::from_hms_nano_opt(
        timestamp.hour(),
        timestamp.minute(),
        timestamp.second(),
        timestamp.nanosecond(),
    );
    match (date, time) {
        (Some(date), Some(time)) => Ok(NaiveDateTime::new(date, time)),
        _ => Err("timestamp out of range".to_owned()),
    }
}

/// Local time minus its offset is UTC.
fn utc(timestamp: &Timestamp) -> Result<NaiveDateTime, String> {
    naive(timestamp)?
        .checked_sub_signed(Duration::seconds(timestamp.tz_offset().into()))
        .ok_or_else(|| "timestamp out of range".to_owned())
}

pub fn oracle_datum_to_json(datum: OracleDatum) -> Value {
    match datum {
        OracleDatum::Null => Value::Null,
        OracleDatum::Number(text) => decimal_text_to_json(&text),
        OracleDatum::Int64(n) => Value::from(n),
        OracleDatum::UInt64(n) => Value::from(n),
        OracleDatum::BinaryFloat(f) => f32_to_json(f),
        OracleDatum::BinaryDouble(f) => float_to_json(f),
        OracleDatum::Text(text) => Value::String(text),
        OracleDatum::Bytes(bytes) => base64_json(&bytes),
        OracleDatum::Boolean(b) => Value::Bool(b),
        OracleDatum::DateTime(value) => Value::String(format_naive_datetime(value)),
        OracleDatum::DateTimeUtc(value) => {
            Value::String(format!("{}Z", format_naive_datetime(value)))
        }
        OracleDatum::IntervalDaySecond {
            days,
            hours,
            minutes,
            seconds,
            nanoseconds,
        } => {
            let micros = i64::from(hours) * 3_600_000_000
                + i64::from(minutes) * 60_000_000
                + i64::from(seconds) * 1_000_000
                + i64::from(nanoseconds) / 1000;
            Value::String(iso_duration(0, days.into(), micros))
        }
        OracleDatum::IntervalYearMonth { years, months } => Value::String(iso_duration(
            i64::from(years) * 12 + i64::from(months),
            0,
            0,
        )),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn column_types_map_to_a_reading() {
        assert_eq!(read_as(&OracleType::Number(38, 10)), Some(ReadAs::Number));
        assert_eq!(read_as(&OracleType::Float(126)), Some(ReadAs::Number));
        assert_eq!(read_as(&OracleType::Varchar2(20)), Some(ReadAs::Text));
        assert_eq!(read_as(&OracleType::CLOB), Some(ReadAs::Text));
        assert_eq!(read_as(&OracleType::BLOB), Some(ReadAs::Bytes));
        assert_eq!(read_as(&OracleType::Raw(16)), Some(ReadAs::Bytes));
        assert_eq!(read_as(&OracleType::Date), Some(ReadAs::DateTime));
        assert_eq!(
            read_as(&OracleType::TimestampTZ(6)),
            Some(ReadAs::DateTimeUtc)
        );
        assert_eq!(
            read_as(&OracleType::IntervalDS(2, 6)),
            Some(ReadAs::IntervalDaySecond)
        );
        assert_eq!(read_as(&OracleType::BFILE), None);
        assert_eq!(read_as(&OracleType::RefCursor), None);
    }

    #[test]
    fn timestamps_convert_to_utc() {
        let local = Timestamp::new(2024, 1, 31, 12, 0, 0, 500_000_000)
            .and_then(|t| t.and_tz_hm_offset(2, 0))
            .expect("valid timestamp");
        let utc = utc(&local).expect("in range");
        assert_eq!(
            oracle_datum_to_json(OracleDatum::DateTimeUtc(utc)),
            json!("2024-01-31T10:00:00.500000Z")
        );
        let plain = Timestamp::new(2024, 1, 31, 0, 0, 0, 0).expect("valid timestamp");
        assert_eq!(
            oracle_datum_to_json(OracleDatum::DateTime(naive(&plain).expect("in range"))),
            json!("2024-01-31T00:00:00")
        );
    }

    #[test]
    fn data_convert_with_the_shared_rules() {
        let cases = [
            (OracleDatum::Null, json!(null)),
            (OracleDatum::Number("42".into()), json!(42)),
            (OracleDatum::Number("-1.25".into()), json!(-1.25)),
            (
                OracleDatum::Number("123456789012345678901234567890.5".into()),
                json!("123456789012345678901234567890.5"),
            ),
            (OracleDatum::BinaryFloat(f32::NAN), json!("NaN")),
            (
                OracleDatum::BinaryDouble(-f64::INFINITY),
                json!("-Infinity"),
            ),
            (OracleDatum::Text("x".into()), json!("x")),
            (OracleDatum::Bytes(vec![0, 255]), json!("AP8=")),
            (OracleDatum::Boolean(true), json!(true)),
            (
                OracleDatum::IntervalDaySecond {
                    days: 1,
                    hours: 2,
                    minutes: 3,
                    seconds: 4,
                    nanoseconds: 500_000_000,
                },
                json!("P1DT2H3M4.5S"),
            ),
            (
                OracleDatum::IntervalYearMonth {
                    years: -1,
                    months: -6,
                },
                json!("P-1Y-6M"),
            ),
        ];
        for (datum, expected) in cases {
            assert_eq!(oracle_datum_to_json(datum.clone()), expected, "{datum:?}");
        }
    }
}
