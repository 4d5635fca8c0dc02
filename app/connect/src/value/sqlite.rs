//! SQLite rows: the value's storage class decides (INTEGER → number, REAL →
//! number, TEXT → string, BLOB → base64, NULL → null), refined by declared
//! types: a BOOLEAN column gives `true`/`false`, a JSON column whose text parses
//! is embedded. sqlx reports BOOLEAN declarations itself; JSON ones (which it
//! does not know) come from [`ColumnHints`], built from `PRAGMA table_info`.

use serde_json::{Map, Value};
use sqlx::sqlite::{Sqlite, SqliteRow, SqliteValueRef};
use sqlx::{Column, Decode, Row, TypeInfo, ValueRef};

use super::{ColumnHints, ConvertError, base64_json, embedded_json, float_to_json};

pub fn sqlite_row_to_json(row: &SqliteRow) -> Result<Map<String, Value>, ConvertError> {
    sqlite_row_to_json_with_hints(row, &ColumnHints::default())
}

pub fn sqlite_row_to_json_with_hints(
    row: &SqliteRow,
    hints: &ColumnHints,
) -> Result<Map<String, Value>, ConvertError> {
    let mut map = Map::with_capacity(row.len());
    for (index, column) in row.columns().iter().enumerate() {
        let declared = column.type_info().name().to_owned();
        let fail = |message: String| ConvertError::new(column.name(), &declared, message);
        let value = row
            .try_get_raw(index)
            .map_err(|error| fail(error.to_string()))?;
        let hint = Hint {
            boolean: declared == "BOOLEAN" || hints.boolean.contains(column.name()),
            json: hints.json.contains(column.name()),
        };
        map.insert(
            column.name().to_owned(),
            sqlite_value_to_json(value, hint).map_err(fail)?,
        );
    }
    Ok(map)
}

#[derive(Clone, Copy)]
struct Hint {
    boolean: bool,
    json: bool,
}

fn sqlite_value_to_json(value: SqliteValueRef<'_>, hint: Hint) -> Result<Value, String> {
    if value.is_null() {
        return Ok(Value::Null);
    }
    let storage_class = value.type_info().name().to_owned();
    let json = match storage_class.as_str() {
        "INTEGER" | "BOOLEAN" => {
            let number = decode::<i64>(value)?;
            if hint.boolean {
                Value::Bool(number != 0)
            } else {
                Value::from(number)
            }
        }
        "REAL" => float_to_json(decode::<f64>(value)?),
        "BLOB" => base64_json(&decode::<Vec<u8>>(value)?),
        _ => {
            let text = decode::<String>(value)?;
            if hint.json {
                embedded_json(&text)
            } else {
                Value::String(text)
            }
        }
    };
    Ok(json)
}

fn decode<'r, T: Decode<'r, Sqlite>>(value: SqliteValueRef<'r>) -> Result<T, String> {
    T::decode(value).map_err(|error| error.to_string())
}
