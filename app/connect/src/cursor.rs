//! How the database orders a result column, for a command's Last Field cursor
//! (`@last_value@`): derived from the column's type, never from its values, so
//! a VARCHAR of digits orders as text, the way the command's
//! `WHERE col > '@last_value@'` compares it.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// The order of a column's values, as its database type defines it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CursorSort {
    /// Integers of any width.
    Integer,
    /// Exact decimals (NUMERIC, DECIMAL, MONEY) and floats, by value.
    Decimal,
    /// Timestamps with a time zone, as instants.
    Instant,
    /// Timestamps without a time zone (DATETIME, DATETIME2, Oracle DATE).
    NaiveTimestamp,
    /// Dates.
    Date,
    /// Character data, by code point (the database's collation may differ for
    /// letters of different case or accents; digits and ISO dates agree).
    Text,
    /// No order a cursor can rely on: JSON, bytes, booleans, times of day,
    /// intervals, arrays, enums, network addresses, …
    Unordered,
}

impl CursorSort {
    /// The name stored with a command's cursor and shown beside it.
    pub fn as_str(self) -> &'static str {
        match self {
            CursorSort::Integer => "integer",
            CursorSort::Decimal => "decimal",
            CursorSort::Instant => "instant",
            CursorSort::NaiveTimestamp => "timestamp",
            CursorSort::Date => "date",
            CursorSort::Text => "text",
            CursorSort::Unordered => "unordered",
        }
    }

    pub fn parse(name: &str) -> Option<CursorSort> {
        [
            CursorSort::Integer,
            CursorSort::Decimal,
            CursorSort::Instant,
            CursorSort::NaiveTimestamp,
            CursorSort::Date,
            CursorSort::Text,
            CursorSort::Unordered,
        ]
        .into_iter()
        .find(|sort| sort.as_str() == name)
    }

    /// For messages: "integers", "timestamps with a time zone", …
    pub fn describe(self) -> &'static str {
        match self {
            CursorSort::Integer => "integers",
            CursorSort::Decimal => "decimals",
            CursorSort::Instant => "timestamps with a time zone",
            CursorSort::NaiveTimestamp => "timestamps without a time zone",
            CursorSort::Date => "dates",
            CursorSort::Text => "text",
            CursorSort::Unordered => "values without an order",
        }
    }

    /// A PostgreSQL column, by its type (domains by their base type).
    pub fn postgres(type_info: &sqlx::postgres::PgTypeInfo) -> CursorSort {
        use sqlx::TypeInfo;
        use sqlx::postgres::PgTypeKind;
        match type_info.kind() {
            PgTypeKind::Domain(base) => return CursorSort::postgres(base),
            PgTypeKind::Simple => {}
            _ => return CursorSort::Unordered,
        }
        CursorSort::postgres_name(type_info.name())
    }

    fn postgres_name(name: &str) -> CursorSort {
        match name {
            "INT2" | "INT4" | "INT8" | "OID" => CursorSort::Integer,
            "NUMERIC" | "FLOAT4" | "FLOAT8" => CursorSort::Decimal,
            "TIMESTAMPTZ" => CursorSort::Instant,
            "TIMESTAMP" => CursorSort::NaiveTimestamp,
            "DATE" => CursorSort::Date,
            // A UUID's hyphenated lowercase hex orders like its bytes.
            "TEXT" | "VARCHAR" | "CHAR" | "NAME" | "CITEXT" | "citext" | "UUID" => CursorSort::Text,
            _ => CursorSort::Unordered,
        }
    }

    /// A MySQL or MariaDB column. Text with a binary collation is bytes.
    pub fn mysql(type_info: &sqlx::mysql::MySqlTypeInfo) -> CursorSort {
        use sqlx::{Type, TypeInfo};
        let name = type_info.name();
        match name {
            "BOOLEAN" | "TINYINT" | "SMALLINT" | "MEDIUMINT" | "INT" | "BIGINT"
            | "TINYINT UNSIGNED" | "SMALLINT UNSIGNED" | "MEDIUMINT UNSIGNED" | "INT UNSIGNED"
            | "BIGINT UNSIGNED" | "YEAR" => CursorSort::Integer,
            "DECIMAL" | "FLOAT" | "DOUBLE" => CursorSort::Decimal,
            // The session runs in UTC, and TIMESTAMP is an instant.
            "TIMESTAMP" => CursorSort::Instant,
            "DATETIME" => CursorSort::NaiveTimestamp,
            "DATE" => CursorSort::Date,
            "CHAR" | "VARCHAR" | "TINYTEXT" | "TEXT" | "MEDIUMTEXT" | "LONGTEXT"
                if <str as Type<sqlx::MySql>>::compatible(type_info) =>
            {
                CursorSort::Text
            }
            _ => CursorSort::Unordered,
        }
    }

    /// A SQLite column, by the type sqlx reports: the declared type's affinity
    /// when it has a known one, else the storage class of the first value.
    /// SQLite keeps dates and timestamps as text and compares them as text.
    pub fn sqlite(type_name: &str) -> CursorSort {
        match type_name {
            "INTEGER" => CursorSort::Integer,
            "REAL" | "NUMERIC" => CursorSort::Decimal,
            "TEXT" | "DATE" | "DATETIME" => CursorSort::Text,
            _ => CursorSort::Unordered,
        }
    }

    /// A SQL Server column.
    pub fn sqlserver(column_type: tiberius::ColumnType) -> CursorSort {
        use tiberius::ColumnType as T;
        match column_type {
            T::Int1 | T::Int2 | T::Int4 | T::Int8 | T::Intn => CursorSort::Integer,
            T::Decimaln
            | T::Numericn
            | T::Money
            | T::Money4
            | T::Float4
            | T::Float8
            | T::Floatn => CursorSort::Decimal,
            T::DatetimeOffsetn => CursorSort::Instant,
            T::Datetime | T::Datetime4 | T::Datetimen | T::Datetime2 => CursorSort::NaiveTimestamp,
            T::Daten => CursorSort::Date,
            T::BigVarChar | T::BigChar | T::NVarchar | T::NChar => CursorSort::Text,
            _ => CursorSort::Unordered,
        }
    }

    /// An Oracle column. NUMBER with scale 0 and a precision is an integer;
    /// other NUMBERs and FLOATs are decimals. LOBs cannot be compared in SQL.
    pub fn oracle(oracle_type: &oracle::sql_type::OracleType) -> CursorSort {
        use oracle::sql_type::OracleType as T;
        match oracle_type {
            T::Number(precision, 0) if *precision > 0 => CursorSort::Integer,
            T::Int64 | T::UInt64 => CursorSort::Integer,
            T::Number(..) | T::Float(_) | T::BinaryFloat | T::BinaryDouble => CursorSort::Decimal,
            T::TimestampTZ(_) | T::TimestampLTZ(_) => CursorSort::Instant,
            T::Date | T::Timestamp(_) => CursorSort::NaiveTimestamp,
            T::Varchar2(_) | T::NVarchar2(_) | T::Char(_) | T::NChar(_) => CursorSort::Text,
            _ => CursorSort::Unordered,
        }
    }
}

impl std::fmt::Display for CursorSort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A result column: its alias and how its values order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultColumn {
    pub name: String,
    pub sort: CursorSort,
}

/// A result's columns, shared by its batches.
pub type ResultColumns = Arc<[ResultColumn]>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for sort in [
            CursorSort::Integer,
            CursorSort::Decimal,
            CursorSort::Instant,
            CursorSort::NaiveTimestamp,
            CursorSort::Date,
            CursorSort::Text,
            CursorSort::Unordered,
        ] {
            assert_eq!(CursorSort::parse(sort.as_str()), Some(sort));
        }
        assert_eq!(CursorSort::parse("number"), None);
    }

    #[test]
    fn postgres_types() {
        assert_eq!(CursorSort::postgres_name("INT8"), CursorSort::Integer);
        assert_eq!(CursorSort::postgres_name("NUMERIC"), CursorSort::Decimal);
        assert_eq!(CursorSort::postgres_name("FLOAT8"), CursorSort::Decimal);
        assert_eq!(
            CursorSort::postgres_name("TIMESTAMPTZ"),
            CursorSort::Instant
        );
        assert_eq!(
            CursorSort::postgres_name("TIMESTAMP"),
            CursorSort::NaiveTimestamp
        );
        assert_eq!(CursorSort::postgres_name("DATE"), CursorSort::Date);
        assert_eq!(CursorSort::postgres_name("VARCHAR"), CursorSort::Text);
        for unordered in ["JSONB", "JSON", "BYTEA", "BOOL", "TIME", "INTERVAL", "INET"] {
            assert_eq!(
                CursorSort::postgres_name(unordered),
                CursorSort::Unordered,
                "{unordered}"
            );
        }
    }

    #[test]
    fn sqlite_types() {
        assert_eq!(CursorSort::sqlite("INTEGER"), CursorSort::Integer);
        assert_eq!(CursorSort::sqlite("REAL"), CursorSort::Decimal);
        assert_eq!(CursorSort::sqlite("NUMERIC"), CursorSort::Decimal);
        assert_eq!(CursorSort::sqlite("TEXT"), CursorSort::Text);
        assert_eq!(CursorSort::sqlite("DATETIME"), CursorSort::Text);
        assert_eq!(CursorSort::sqlite("BLOB"), CursorSort::Unordered);
        assert_eq!(CursorSort::sqlite("BOOLEAN"), CursorSort::Unordered);
        assert_eq!(CursorSort::sqlite("NULL"), CursorSort::Unordered);
    }

    #[test]
    fn sqlserver_types() {
        use tiberius::ColumnType as T;
        assert_eq!(CursorSort::sqlserver(T::Intn), CursorSort::Integer);
        assert_eq!(CursorSort::sqlserver(T::Numericn), CursorSort::Decimal);
        assert_eq!(CursorSort::sqlserver(T::Money), CursorSort::Decimal);
        assert_eq!(
            CursorSort::sqlserver(T::DatetimeOffsetn),
            CursorSort::Instant
        );
        assert_eq!(
            CursorSort::sqlserver(T::Datetime2),
            CursorSort::NaiveTimestamp
        );
        assert_eq!(CursorSort::sqlserver(T::Daten), CursorSort::Date);
        assert_eq!(CursorSort::sqlserver(T::NVarchar), CursorSort::Text);
        for unordered in [T::Guid, T::Bitn, T::BigVarBin, T::Xml, T::Timen, T::NText] {
            assert_eq!(
                CursorSort::sqlserver(unordered),
                CursorSort::Unordered,
                "{unordered:?}"
            );
        }
    }

    #[test]
    fn oracle_types() {
        use oracle::sql_type::OracleType as T;
        assert_eq!(CursorSort::oracle(&T::Number(10, 0)), CursorSort::Integer);
        assert_eq!(CursorSort::oracle(&T::Number(12, 2)), CursorSort::Decimal);
        // NUMBER without precision: any scale.
        assert_eq!(CursorSort::oracle(&T::Number(0, -127)), CursorSort::Decimal);
        assert_eq!(CursorSort::oracle(&T::Float(126)), CursorSort::Decimal);
        assert_eq!(CursorSort::oracle(&T::TimestampTZ(6)), CursorSort::Instant);
        assert_eq!(CursorSort::oracle(&T::Date), CursorSort::NaiveTimestamp);
        assert_eq!(CursorSort::oracle(&T::Varchar2(20)), CursorSort::Text);
        for unordered in [T::CLOB, T::BLOB, T::Raw(16), T::Boolean, T::Rowid] {
            assert_eq!(
                CursorSort::oracle(&unordered),
                CursorSort::Unordered,
                "{unordered:?}"
            );
        }
    }
}
