//! PostgreSQL rows. sqlx fetches results in the binary wire format; the values
//! are decoded here from their bytes, by type, so that every type (including
//! arrays of any element type, enums and domains) goes through one path.

use std::net::{Ipv4Addr, Ipv6Addr};

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use serde_json::{Map, Value};
use sqlx::postgres::{PgColumn, PgRow, PgTypeInfo, PgTypeKind, PgValueFormat, PgValueRef};
use sqlx::{Column, Row, TypeInfo, ValueRef};

use crate::stream::{Batch, BatchWriter};

use super::{
    ConvertError, base64_json, decimal_text_to_json, embedded_json, f32_to_json, float_to_json,
    format_date, format_naive_datetime, format_time, format_utc, iso_duration,
};

pub fn pg_row_to_json(row: &PgRow) -> Result<Map<String, Value>, ConvertError> {
    let mut map = Map::with_capacity(row.len());
    for (index, column) in row.columns().iter().enumerate() {
        // Built only on failure: this loop runs for every value of every row.
        let fail =
            |message: String| ConvertError::new(column.name(), column.type_info().name(), message);
        let value = row
            .try_get_raw(index)
            .map_err(|error| fail(error.to_string()))?;
        map.insert(
            column.name().to_owned(),
            pg_value_to_json(value).map_err(fail)?,
        );
    }
    Ok(map)
}

fn pg_value_to_json(value: PgValueRef<'_>) -> Result<Value, String> {
    if value.is_null() {
        return Ok(Value::Null);
    }
    let type_info = value.type_info();
    let bytes = value.as_bytes().map_err(|error| error.to_string())?;
    match value.format() {
        PgValueFormat::Binary => binary_to_json(&type_info, bytes),
        // Only simple-protocol queries return text; keep it as written.
        PgValueFormat::Text => Ok(Value::String(String::from_utf8_lossy(bytes).into_owned())),
    }
}

/// Decodes one value in PostgreSQL's binary format.
pub(crate) fn binary_to_json(type_info: &PgTypeInfo, bytes: &[u8]) -> Result<Value, String> {
    match type_info.kind() {
        PgTypeKind::Array(element) => return array_to_json(element, bytes),
        PgTypeKind::Domain(base) => return binary_to_json(base, bytes),
        PgTypeKind::Enum(_) => return text(bytes),
        _ => {}
    }
    scalar_to_json(type_info.name(), bytes)
}

fn scalar_to_json(type_name: &str, bytes: &[u8]) -> Result<Value, String> {
    let mut reader = Reader(bytes);
    let value = match type_name {
        "BOOL" => Value::Bool(reader.u8()? != 0),
        "INT2" => Value::from(reader.i16()?),
        "INT4" => Value::from(reader.i32()?),
        "INT8" => Value::from(reader.i64()?),
        "OID" => Value::from(reader.u32()?),
        "FLOAT4" => f32_to_json(f32::from_bits(reader.u32()?)),
        "FLOAT8" => float_to_json(f64::from_bits(reader.u64()?)),
        "NUMERIC" => decimal_text_to_json(&numeric_text(bytes)?),
        "TEXT" | "VARCHAR" | "CHAR" | "NAME" | "XML" | "CITEXT" | "citext" | "UNKNOWN" => {
            text(bytes)?
        }
        "\"CHAR\"" => Value::String(String::from_utf8_lossy(bytes).into_owned()),
        "BYTEA" => base64_json(bytes),
        "UUID" => Value::String(
            uuid::Uuid::from_slice(bytes)
                .map_err(|e| e.to_string())?
                .to_string(),
        ),
        "JSON" => embedded_json(&utf8(bytes)?),
        "JSONB" => jsonb(bytes)?,
        "DATE" => date(reader.i32()?),
        "TIME" => Value::String(time(reader.i64()?)?),
        "TIMETZ" => Value::String(time_with_zone(reader.i64()?, reader.i32()?)?),
        "TIMESTAMP" => timestamp(reader.i64()?, false),
        "TIMESTAMPTZ" => timestamp(reader.i64()?, true),
        "INTERVAL" => {
            let micros = reader.i64()?;
            let days = reader.i32()?;
            let months = reader.i32()?;
            Value::String(iso_duration(months.into(), days.into(), micros))
        }
        "INET" | "CIDR" => Value::String(inet(bytes, type_name == "CIDR")?),
        "MACADDR" | "MACADDR8" => Value::String(mac_address(bytes)),
        "BIT" | "VARBIT" => Value::String(bit_string(bytes)?),
        other => return Err(format!("type {other} has no JSON form")),
    };
    Ok(value)
}

// ---- straight to JSON text ---------------------------------------------------------

/// How a pull writes one column's values as JSON text, chosen once per result
/// from the column's type. Every way writes exactly the text that serialising
/// [`binary_to_json`]'s value would; types without a faster way go through it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PgWrite {
    Bool,
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    Text,
    Uuid,
    Date,
    Timestamp,
    Timestamptz,
    /// Through [`binary_to_json`] and serde_json.
    Value,
}

impl PgWrite {
    pub(crate) fn of(type_info: &PgTypeInfo) -> PgWrite {
        match type_info.kind() {
            PgTypeKind::Domain(base) => PgWrite::of(base),
            PgTypeKind::Simple => PgWrite::named(type_info.name()),
            _ => PgWrite::Value,
        }
    }

    fn named(type_name: &str) -> PgWrite {
        match type_name {
            "BOOL" => PgWrite::Bool,
            "INT2" => PgWrite::Int2,
            "INT4" => PgWrite::Int4,
            "INT8" => PgWrite::Int8,
            "FLOAT4" => PgWrite::Float4,
            "FLOAT8" => PgWrite::Float8,
            "TEXT" | "VARCHAR" | "CHAR" | "NAME" | "XML" | "CITEXT" | "citext" | "UNKNOWN" => {
                PgWrite::Text
            }
            "UUID" => PgWrite::Uuid,
            "DATE" => PgWrite::Date,
            "TIMESTAMP" => PgWrite::Timestamp,
            "TIMESTAMPTZ" => PgWrite::Timestamptz,
            _ => PgWrite::Value,
        }
    }
}

/// Writes a result's rows straight into a batch's JSON text: the keys once per
/// result, each value by its column's [`PgWrite`]. A result with dotted or
/// repeated aliases goes through [`pg_row_to_json`] (nesting, last one wins).
pub(crate) struct PgRowWriter {
    /// Each column's `"alias":`.
    keys: Vec<Vec<u8>>,
    ways: Vec<PgWrite>,
    straight: bool,
}

impl PgRowWriter {
    pub(crate) fn new(columns: &[PgColumn]) -> PgRowWriter {
        let mut names = std::collections::HashSet::new();
        let straight = columns
            .iter()
            .all(|c| !c.name().contains('.') && names.insert(c.name()));
        let keys = columns
            .iter()
            .map(|c| {
                let mut key = serde_json::to_vec(c.name()).unwrap_or_default();
                key.push(b':');
                key
            })
            .collect();
        let ways = columns.iter().map(|c| PgWrite::of(c.type_info())).collect();
        PgRowWriter {
            keys,
            ways,
            straight,
        }
    }

    /// Adds `row` to the writer's batch; a full batch comes back.
    pub(crate) fn write(
        &self,
        row: &PgRow,
        writer: &mut BatchWriter<'_>,
    ) -> Result<Option<Batch>, ConvertError> {
        if !self.straight || self.keys.len() != row.len() {
            return pg_row_to_json(row).map(|row| writer.push_row(row));
        }
        let cursor = writer.cursor_index();
        let mut span = None;
        let json = writer.start_row();
        json.push(b'{');
        for (index, column) in row.columns().iter().enumerate() {
            let fail = |message: String| {
                ConvertError::new(column.name(), column.type_info().name(), message)
            };
            if index > 0 {
                json.push(b',');
            }
            json.extend_from_slice(&self.keys[index]);
            let start = json.len();
            let value = row
                .try_get_raw(index)
                .map_err(|error| fail(error.to_string()))?;
            write_pg_value(self.ways[index], value, json).map_err(fail)?;
            if cursor == Some(index) {
                span = Some((start, json.len()));
            }
        }
        json.push(b'}');
        if let Some((start, end)) = span {
            writer.cursor_span(start, end);
        }
        Ok(writer.end_row())
    }
}

/// Appends one value's JSON text to `out`; `null` for NULL.
pub(crate) fn write_pg_value(
    how: PgWrite,
    value: PgValueRef<'_>,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    if value.is_null() {
        out.extend_from_slice(b"null");
        return Ok(());
    }
    if how == PgWrite::Value || value.format() != PgValueFormat::Binary {
        let json = pg_value_to_json(value)?;
        return serde_json::to_writer(out, &json).map_err(|e| e.to_string());
    }
    let bytes = value.as_bytes().map_err(|error| error.to_string())?;
    write_binary(how, bytes, out)
}

fn write_binary(how: PgWrite, bytes: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    let mut reader = Reader(bytes);
    match how {
        PgWrite::Bool => {
            let text: &[u8] = if reader.u8()? != 0 { b"true" } else { b"false" };
            out.extend_from_slice(text);
        }
        PgWrite::Int2 => write_json(out, &reader.i16()?)?,
        PgWrite::Int4 => write_json(out, &reader.i32()?)?,
        PgWrite::Int8 => write_json(out, &reader.i64()?)?,
        PgWrite::Float4 => write_json(out, &f32_to_json(f32::from_bits(reader.u32()?)))?,
        PgWrite::Float8 => {
            let float = f64::from_bits(reader.u64()?);
            if float.is_finite() {
                write_json(out, &float)?;
            } else {
                write_json(out, &float_to_json(float))?;
            }
        }
        PgWrite::Text => {
            let text = std::str::from_utf8(bytes).map_err(|_| "text is not valid UTF-8")?;
            write_json(out, text)?;
        }
        PgWrite::Uuid => {
            let uuid = uuid::Uuid::from_slice(bytes).map_err(|e| e.to_string())?;
            let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
            out.push(b'"');
            out.extend_from_slice(uuid.hyphenated().encode_lower(&mut text).as_bytes());
            out.push(b'"');
        }
        PgWrite::Date => match reader.i32()? {
            days @ (i32::MAX | i32::MIN) => write_json(out, &date(days))?,
            days => match pg_epoch()
                .date()
                .checked_add_signed(Duration::days(days.into()))
            {
                Some(day) if (0..=9999).contains(&day.year()) => {
                    out.push(b'"');
                    push_date(out, day);
                    out.push(b'"');
                }
                _ => write_json(out, &date(days))?,
            },
        },
        PgWrite::Timestamp | PgWrite::Timestamptz => {
            let with_zone = how == PgWrite::Timestamptz;
            let micros = reader.i64()?;
            let naive = match micros {
                i64::MAX | i64::MIN => None,
                micros => pg_epoch().checked_add_signed(Duration::microseconds(micros)),
            };
            match naive {
                Some(naive) if (0..=9999).contains(&naive.year()) => {
                    out.push(b'"');
                    push_date(out, naive.date());
                    out.push(b'T');
                    push_time(out, naive.time());
                    if with_zone {
                        out.push(b'Z');
                    }
                    out.push(b'"');
                }
                _ => write_json(out, &timestamp(micros, with_zone))?,
            }
        }
        PgWrite::Value => return Err("no straight way for this type".to_owned()),
    }
    Ok(())
}

fn write_json<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) -> Result<(), String> {
    serde_json::to_writer(out, value).map_err(|e| e.to_string())
}

fn push_digits(out: &mut Vec<u8>, value: u32, width: usize) {
    let mut digits = [b'0'; 10];
    let mut rest = value;
    for slot in digits[..width].iter_mut().rev() {
        *slot = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    out.extend_from_slice(&digits[..width]);
}

/// `YYYY-MM-DD` for years 0 to 9999, as [`format_date`] writes them.
fn push_date(out: &mut Vec<u8>, day: NaiveDate) {
    push_digits(out, day.year().unsigned_abs(), 4);
    out.push(b'-');
    push_digits(out, day.month(), 2);
    out.push(b'-');
    push_digits(out, day.day(), 2);
}

/// `HH:MM:SS[.ffffff|.fffffffff]`, as [`format_time`] writes it.
fn push_time(out: &mut Vec<u8>, time: NaiveTime) {
    push_digits(out, time.hour(), 2);
    out.push(b':');
    push_digits(out, time.minute(), 2);
    out.push(b':');
    push_digits(out, time.second(), 2);
    let nanos = time.nanosecond().min(999_999_999);
    if nanos == 0 {
        return;
    }
    out.push(b'.');
    if nanos.is_multiple_of(1000) {
        push_digits(out, nanos / 1000, 6);
    } else {
        push_digits(out, nanos, 9);
    }
}

/// A cursor over big-endian wire bytes that fails instead of panicking.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let (head, rest) = self
            .0
            .split_at_checked(N)
            .ok_or_else(|| "value is shorter than its type".to_owned())?;
        self.0 = rest;
        head.try_into()
            .map_err(|_| "value is shorter than its type".to_owned())
    }

    fn bytes(&mut self, len: usize) -> Result<&'a [u8], String> {
        let (head, rest) = self
            .0
            .split_at_checked(len)
            .ok_or_else(|| "value is shorter than its length".to_owned())?;
        self.0 = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take::<1>()?[0])
    }
    fn i16(&mut self) -> Result<i16, String> {
        Ok(i16::from_be_bytes(self.take()?))
    }
    fn u16(&mut self) -> Result<u16, String> {
        Ok(u16::from_be_bytes(self.take()?))
    }
    fn i32(&mut self) -> Result<i32, String> {
        Ok(i32::from_be_bytes(self.take()?))
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_be_bytes(self.take()?))
    }
    fn i64(&mut self) -> Result<i64, String> {
        Ok(i64::from_be_bytes(self.take()?))
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_be_bytes(self.take()?))
    }
}

fn utf8(bytes: &[u8]) -> Result<String, String> {
    String::from_utf8(bytes.to_vec()).map_err(|_| "text is not valid UTF-8".to_owned())
}

fn text(bytes: &[u8]) -> Result<Value, String> {
    utf8(bytes).map(Value::String)
}

fn jsonb(bytes: &[u8]) -> Result<Value, String> {
    match bytes.split_first() {
        Some((1, json)) => Ok(embedded_json(&utf8(json)?)),
        _ => Err("unknown JSONB format version".to_owned()),
    }
}

/// Arrays of any dimension become nested JSON arrays.
fn array_to_json(element: &PgTypeInfo, bytes: &[u8]) -> Result<Value, String> {
    let mut reader = Reader(bytes);
    let dimensions = reader.i32()?;
    let _has_nulls = reader.i32()?;
    let _element_oid = reader.u32()?;
    if dimensions <= 0 {
        return Ok(Value::Array(Vec::new()));
    }
    let mut lengths = Vec::new();
    for _ in 0..dimensions {
        let length = usize::try_from(reader.i32()?).map_err(|_| "negative array length")?;
        let _lower_bound = reader.i32()?;
        lengths.push(length);
    }
    let total: usize = lengths.iter().product();
    let mut elements = Vec::with_capacity(total.min(bytes.len()));
    for _ in 0..total {
        let length = reader.i32()?;
        let element = match usize::try_from(length) {
            Ok(length) => binary_to_json(element, reader.bytes(length)?)?,
            Err(_) => Value::Null,
        };
        elements.push(element);
    }
    Ok(reshape(elements, &lengths))
}

fn reshape(mut flat: Vec<Value>, lengths: &[usize]) -> Value {
    for &length in lengths.iter().skip(1).rev() {
        if length == 0 {
            return Value::Array(Vec::new());
        }
        let mut grouped = Vec::with_capacity(flat.len() / length);
        let mut items = flat.into_iter();
        loop {
            let chunk: Vec<Value> = items.by_ref().take(length).collect();
            if chunk.is_empty() {
                break;
            }
            grouped.push(Value::Array(chunk));
        }
        flat = grouped;
    }
    Value::Array(flat)
}

/// NUMERIC on the wire: base-10000 digits with a weight, a sign and a display scale.
pub(crate) fn numeric_text(bytes: &[u8]) -> Result<String, String> {
    let mut reader = Reader(bytes);
    let ndigits = usize::from(reader.u16()?);
    let weight = i64::from(reader.i16()?);
    let sign = reader.u16()?;
    let scale = usize::from(reader.u16()?);
    let digits = (0..ndigits)
        .map(|_| reader.i16())
        .collect::<Result<Vec<i16>, String>>()?;
    match sign {
        0xC000 => return Ok("NaN".to_owned()),
        0xD000 => return Ok("Infinity".to_owned()),
        0xF000 => return Ok("-Infinity".to_owned()),
        _ => {}
    }
    let digit_at = |index: i64| -> i16 {
        usize::try_from(index)
            .ok()
            .and_then(|index| digits.get(index).copied())
            .unwrap_or(0)
    };
    let mut out = String::new();
    if sign == 0x4000 {
        out.push('-');
    }
    if weight < 0 || digits.is_empty() {
        out.push('0');
    } else {
        out.push_str(&digit_at(0).to_string());
        for index in 1..=weight {
            out.push_str(&format!("{:04}", digit_at(index)));
        }
    }
    if scale > 0 {
        let groups = scale.div_ceil(4);
        let mut fraction = String::with_capacity(groups * 4);
        for group in 0..groups {
            let index = weight + 1 + i64::try_from(group).unwrap_or(i64::MAX);
            fraction.push_str(&format!("{:04}", digit_at(index)));
        }
        fraction.truncate(scale);
        out.push('.');
        out.push_str(&fraction);
    }
    Ok(out)
}

fn pg_epoch() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2000, 1, 1)
        .and_then(|date| date.and_hms_opt(0, 0, 0))
        .unwrap_or_default()
}

fn date(days: i32) -> Value {
    match days {
        i32::MAX => Value::String("infinity".to_owned()),
        i32::MIN => Value::String("-infinity".to_owned()),
        days => pg_epoch()
            .date()
            .checked_add_signed(Duration::days(days.into()))
            .map_or_else(
                || Value::String(days.to_string()),
                |d| Value::String(format_date(d)),
            ),
    }
}

fn time(micros: i64) -> Result<String, String> {
    let seconds = u32::try_from(micros.div_euclid(1_000_000)).map_err(|_| "time out of range")?;
    let nanos =
        u32::try_from(micros.rem_euclid(1_000_000) * 1000).map_err(|_| "time out of range")?;
    // 24:00:00 is a valid PostgreSQL time that chrono cannot hold.
    if seconds == 86_400 && nanos == 0 {
        return Ok("24:00:00".to_owned());
    }
    NaiveTime::from_num_seconds_from_midnight_opt(seconds, nanos)
        .map(format_time)
        .ok_or_else(|| "time out of range".to_owned())
}

/// The zone is stored in seconds west of UTC; written the ISO way (east positive).
fn time_with_zone(micros: i64, seconds_west: i32) -> Result<String, String> {
    let east = -i64::from(seconds_west);
    let sign = if east < 0 { '-' } else { '+' };
    let east = east.unsigned_abs();
    let (hours, minutes, seconds) = (east / 3600, (east % 3600) / 60, east % 60);
    let mut zone = format!("{sign}{hours:02}:{minutes:02}");
    if seconds != 0 {
        zone.push_str(&format!(":{seconds:02}"));
    }
    Ok(format!("{}{zone}", time(micros)?))
}

fn timestamp(micros: i64, with_zone: bool) -> Value {
    let text = match micros {
        i64::MAX => "infinity".to_owned(),
        i64::MIN => "-infinity".to_owned(),
        micros => match pg_epoch().checked_add_signed(Duration::microseconds(micros)) {
            Some(naive) if with_zone => {
                format_utc(DateTime::from_naive_utc_and_offset(naive, chrono::Utc))
            }
            Some(naive) => format_naive_datetime(naive),
            None => micros.to_string(),
        },
    };
    Value::String(text)
}

/// `inet` shows the prefix only when it is not the full address; `cidr` always does.
fn inet(bytes: &[u8], is_cidr_type: bool) -> Result<String, String> {
    let mut reader = Reader(bytes);
    let family = reader.u8()?;
    let bits = reader.u8()?;
    let _is_cidr = reader.u8()?;
    let length = usize::from(reader.u8()?);
    let address = reader.bytes(length)?;
    let (text, full_bits) = match (family, address.len()) {
        (2, 4) => {
            let octets: [u8; 4] = address.try_into().map_err(|_| "bad IPv4 address")?;
            (Ipv4Addr::from(octets).to_string(), 32)
        }
        (3, 16) => {
            let octets: [u8; 16] = address.try_into().map_err(|_| "bad IPv6 address")?;
            (Ipv6Addr::from(octets).to_string(), 128)
        }
        _ => return Err("unknown address family".to_owned()),
    };
    if is_cidr_type || bits != full_bits {
        Ok(format!("{text}/{bits}"))
    } else {
        Ok(text)
    }
}

fn mac_address(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn bit_string(bytes: &[u8]) -> Result<String, String> {
    let mut reader = Reader(bytes);
    let length = usize::try_from(reader.i32()?).map_err(|_| "negative bit length")?;
    let data = reader.0;
    let bits: String = (0..length)
        .map(|index| {
            let byte = data.get(index / 8).copied().unwrap_or(0);
            if byte & (0x80 >> (index % 8)) != 0 {
                '1'
            } else {
                '0'
            }
        })
        .collect();
    Ok(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric_bytes(weight: i16, sign: u16, scale: u16, digits: &[i16]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend((digits.len() as u16).to_be_bytes());
        out.extend(weight.to_be_bytes());
        out.extend(sign.to_be_bytes());
        out.extend(scale.to_be_bytes());
        for digit in digits {
            out.extend(digit.to_be_bytes());
        }
        out
    }

    #[test]
    fn numeric_wire_format_becomes_exact_text() {
        // 12345678.9 with scale 3
        let bytes = numeric_bytes(1, 0, 3, &[1234, 5678, 9000]);
        assert_eq!(numeric_text(&bytes).as_deref(), Ok("12345678.900"));
        // -0.0001234 with scale 7
        let bytes = numeric_bytes(-1, 0x4000, 7, &[1, 2340]);
        assert_eq!(numeric_text(&bytes).as_deref(), Ok("-0.0001234"));
        // 0 with scale 2
        assert_eq!(
            numeric_text(&numeric_bytes(0, 0, 2, &[])).as_deref(),
            Ok("0.00")
        );
        // 10000 (weight 1, one digit group)
        assert_eq!(
            numeric_text(&numeric_bytes(1, 0, 0, &[1])).as_deref(),
            Ok("10000")
        );
        assert_eq!(
            numeric_text(&numeric_bytes(0, 0xC000, 0, &[])).as_deref(),
            Ok("NaN")
        );
        assert!(numeric_text(&[0, 1]).is_err());
    }

    #[test]
    fn scalars_from_wire_bytes() {
        assert_eq!(
            scalar_to_json("INT8", &(-5i64).to_be_bytes()),
            Ok(Value::from(-5))
        );
        assert_eq!(
            scalar_to_json("FLOAT8", &f64::NAN.to_bits().to_be_bytes()),
            Ok(Value::from("NaN"))
        );
        assert_eq!(
            scalar_to_json(
                "INTERVAL",
                &[0, 0, 0, 0, 0, 0x3d, 0x09, 0x00, 0, 0, 0, 3, 0, 0, 0, 14]
            ),
            Ok(Value::from("P1Y2M3DT4S"))
        );
        assert_eq!(
            scalar_to_json("INET", &[2, 24, 0, 4, 10, 0, 0, 0]),
            Ok(Value::from("10.0.0.0/24"))
        );
        assert_eq!(
            scalar_to_json("INET", &[2, 32, 0, 4, 10, 0, 0, 1]),
            Ok(Value::from("10.0.0.1"))
        );
        assert_eq!(
            scalar_to_json("MACADDR", &[8, 0, 0x2b, 1, 2, 3]),
            Ok(Value::from("08:00:2b:01:02:03"))
        );
        assert_eq!(
            scalar_to_json("BIT", &[0, 0, 0, 3, 0b1010_0000]),
            Ok(Value::from("101"))
        );
        assert_eq!(
            scalar_to_json("JSONB", b"\x01{\"a\":1}"),
            Ok(serde_json::json!({"a": 1}))
        );
        assert_eq!(
            scalar_to_json("DATE", &i32::MAX.to_be_bytes()),
            Ok(Value::from("infinity"))
        );
        assert_eq!(time(86_400_000_000).as_deref(), Ok("24:00:00"));
        assert_eq!(
            time_with_zone(3_600_000_000, -7200).as_deref(),
            Ok("01:00:00+02:00")
        );
        // Truncated input is an error, never a panic.
        assert!(scalar_to_json("INT8", &[1, 2]).is_err());
        assert!(scalar_to_json("INET", &[2, 32, 0, 16, 1]).is_err());
        assert!(scalar_to_json("geometry", &[1]).is_err());
    }

    /// Every straight way writes exactly what serialising the value would.
    #[test]
    fn straight_json_text_equals_the_serialised_value() {
        let mut cases: Vec<(&str, Vec<u8>)> = vec![
            ("BOOL", vec![1]),
            ("BOOL", vec![0]),
            ("INT2", (-32768i16).to_be_bytes().to_vec()),
            ("INT4", 123_456i32.to_be_bytes().to_vec()),
            ("INT8", i64::MIN.to_be_bytes().to_vec()),
            ("INT8", 9_007_199_254_740_993i64.to_be_bytes().to_vec()),
            ("TEXT", "plain".as_bytes().to_vec()),
            (
                "VARCHAR",
                "quo\"te\\ \n\u{1} é ☃ \u{10ffff}".as_bytes().to_vec(),
            ),
            ("UUID", (0..16).collect()),
            ("DATE", 0i32.to_be_bytes().to_vec()),
            ("DATE", 9_500i32.to_be_bytes().to_vec()),
            ("DATE", (-800_000i32).to_be_bytes().to_vec()),
            ("DATE", 3_000_000i32.to_be_bytes().to_vec()),
            ("DATE", i32::MAX.to_be_bytes().to_vec()),
            ("DATE", i32::MIN.to_be_bytes().to_vec()),
        ];
        for float in [
            0.0,
            -0.0,
            1.5,
            0.1,
            1e300,
            -2.5e-7,
            1e21,
            123_456.789,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ] {
            cases.push(("FLOAT8", f64::to_bits(float).to_be_bytes().to_vec()));
            cases.push(("FLOAT4", (float as f32).to_bits().to_be_bytes().to_vec()));
        }
        for micros in [
            0i64,
            1,
            500_000,
            1_000,
            -1,
            820_000_000_123_456,
            -63_000_000_000_000_000,
            300_000_000_000_000_000,
            i64::MAX,
            i64::MIN,
        ] {
            cases.push(("TIMESTAMP", micros.to_be_bytes().to_vec()));
            cases.push(("TIMESTAMPTZ", micros.to_be_bytes().to_vec()));
        }
        for (type_name, bytes) in cases {
            let how = PgWrite::named(type_name);
            assert_ne!(how, PgWrite::Value, "{type_name}");
            let expected =
                serde_json::to_vec(&scalar_to_json(type_name, &bytes).expect("converts")).unwrap();
            let mut written = Vec::new();
            write_binary(how, &bytes, &mut written).expect("writes");
            assert_eq!(
                String::from_utf8_lossy(&written),
                String::from_utf8_lossy(&expected),
                "{type_name} {bytes:?}"
            );
        }
        // Bad bytes are errors, as they are for the value.
        let mut out = Vec::new();
        assert!(write_binary(PgWrite::Int8, &[1, 2], &mut out).is_err());
        assert!(write_binary(PgWrite::Text, &[0xff], &mut out).is_err());
        assert!(write_binary(PgWrite::Uuid, &[1], &mut out).is_err());
        assert_eq!(PgWrite::named("NUMERIC"), PgWrite::Value);
        assert_eq!(PgWrite::named("JSONB"), PgWrite::Value);
    }

    #[test]
    fn multi_dimensional_arrays_reshape() {
        let flat = (1..=6).map(Value::from).collect();
        assert_eq!(
            reshape(flat, &[2, 3]),
            serde_json::json!([[1, 2, 3], [4, 5, 6]])
        );
        assert_eq!(reshape(Vec::new(), &[0]), serde_json::json!([]));
    }
}
