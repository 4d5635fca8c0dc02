//! The kinds of database a connector can talk to, and how strictly it uses TLS.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A database engine Sluice can connect to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DbKind {
    Postgres,
    Mysql,
    Mariadb,
    Sqlserver,
    Oracle,
    Sqlite,
}

impl DbKind {
    pub const ALL: [DbKind; 6] = [
        DbKind::Postgres,
        DbKind::Mysql,
        DbKind::Mariadb,
        DbKind::Sqlserver,
        DbKind::Oracle,
        DbKind::Sqlite,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            DbKind::Postgres => "postgres",
            DbKind::Mysql => "mysql",
            DbKind::Mariadb => "mariadb",
            DbKind::Sqlserver => "sqlserver",
            DbKind::Oracle => "oracle",
            DbKind::Sqlite => "sqlite",
        }
    }

    /// Accepts the canonical names (case-insensitive) and a few common spellings.
    pub fn parse(name: &str) -> Option<DbKind> {
        let name = name.trim().to_ascii_lowercase();
        let kind = match name.as_str() {
            "postgres" | "postgresql" | "pg" => DbKind::Postgres,
            "mysql" => DbKind::Mysql,
            "mariadb" => DbKind::Mariadb,
            "sqlserver" | "mssql" | "sql server" => DbKind::Sqlserver,
            "oracle" => DbKind::Oracle,
            "sqlite" | "sqlite3" => DbKind::Sqlite,
            _ => return None,
        };
        Some(kind)
    }

    pub const fn default_port(self) -> Option<u16> {
        match self {
            DbKind::Postgres => Some(5432),
            DbKind::Mysql | DbKind::Mariadb => Some(3306),
            DbKind::Sqlserver => Some(1433),
            DbKind::Oracle => Some(1521),
            DbKind::Sqlite => None,
        }
    }

    /// The SQL dialect templates are rendered in for this kind (MariaDB
    /// shares MySQL's).
    pub fn dialect(self) -> sluice_sqltpl::Dialect {
        use sluice_sqltpl::Dialect;
        match self {
            DbKind::Postgres => Dialect::Postgres,
            DbKind::Mysql | DbKind::Mariadb => Dialect::Mysql,
            DbKind::Sqlserver => Dialect::Sqlserver,
            DbKind::Oracle => Dialect::Oracle,
            DbKind::Sqlite => Dialect::Sqlite,
        }
    }

    /// The dialect segment-sync templates are rendered in for this kind.
    pub fn segment_dialect(self) -> sluice_sqltpl::SegmentDialect {
        use sluice_sqltpl::SegmentDialect;
        match self {
            DbKind::Postgres => SegmentDialect::Postgres,
            DbKind::Mysql | DbKind::Mariadb => SegmentDialect::Mysql,
            DbKind::Sqlserver => SegmentDialect::Sqlserver,
            DbKind::Oracle => SegmentDialect::Oracle,
            DbKind::Sqlite => SegmentDialect::Sqlite,
        }
    }

    /// SQLite is a local file: it has no host, port, credentials or TLS.
    pub const fn is_networked(self) -> bool {
        !matches!(self, DbKind::Sqlite)
    }

    /// The TLS mode of a new connector that does not choose one: TLS or fail
    /// wherever the server speaks TLS on its usual port. Oracle serves TLS only
    /// on a separate TCPS listener few servers have, and its logon never sends
    /// the password in the clear, so it starts at "preferred".
    pub const fn default_tls(self) -> TlsMode {
        match self {
            DbKind::Sqlite => TlsMode::Disabled,
            DbKind::Oracle => TlsMode::Preferred,
            DbKind::Postgres | DbKind::Mysql | DbKind::Mariadb | DbKind::Sqlserver => {
                TlsMode::Required
            }
        }
    }
}

impl fmt::Display for DbKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown database kind {0:?}; expected one of postgres, mysql, mariadb, sqlserver, oracle, sqlite"
)]
pub struct UnknownDbKind(pub String);

impl FromStr for DbKind {
    type Err = UnknownDbKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DbKind::parse(s).ok_or_else(|| UnknownDbKind(s.to_owned()))
    }
}

/// How a connection uses TLS, from weakest to strictest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TlsMode {
    /// Plain connection.
    Disabled,
    /// TLS with a verified certificate when the server offers TLS; a plain
    /// connection only when it offers none and no password would be sent.
    Preferred,
    /// TLS or fail (see [`DbKind::default_tls`] for where new connectors get it).
    Required,
    /// TLS or fail, certificate chain and host name verified.
    VerifyFull,
}

impl TlsMode {
    pub const ALL: [TlsMode; 4] = [
        TlsMode::Disabled,
        TlsMode::Preferred,
        TlsMode::Required,
        TlsMode::VerifyFull,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            TlsMode::Disabled => "disabled",
            TlsMode::Preferred => "preferred",
            TlsMode::Required => "required",
            TlsMode::VerifyFull => "verify-full",
        }
    }

    /// Accepts the canonical names plus the spellings of PostgreSQL `sslmode`,
    /// MySQL `ssl-mode`/`sslMode`, MariaDB `sslMode` and booleans, case-insensitively.
    pub fn parse(value: &str) -> Option<TlsMode> {
        let value = value.trim().to_ascii_lowercase().replace('_', "-");
        let mode = match value.as_str() {
            "disabled" | "disable" | "false" => TlsMode::Disabled,
            // libpq's "allow" tries plain first; rounding it up to "preferred" only
            // makes the connection stricter than asked, never weaker.
            "preferred" | "prefer" | "allow" => TlsMode::Preferred,
            // MariaDB Connector/J calls "encrypt without checking the certificate" `trust`.
            "required" | "require" | "true" | "trust" => TlsMode::Required,
            // There is no CA-only mode: verifying the host name as well is the
            // stricter neighbour, and a parser must never silently weaken TLS.
            "verify-full" | "verify-ca" | "verify-identity" => TlsMode::VerifyFull,
            _ => return None,
        };
        Some(mode)
    }
}

impl fmt::Display for TlsMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown TLS mode {0:?}; expected one of disabled, preferred, required, verify-full")]
pub struct UnknownTlsMode(pub String);

impl FromStr for TlsMode {
    type Err = UnknownTlsMode;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TlsMode::parse(s).ok_or_else(|| UnknownTlsMode(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn db_kind_names_round_trip_through_parse_display_and_serde() {
        for kind in DbKind::ALL {
            assert_eq!(DbKind::parse(kind.as_str()), Some(kind));
            assert_eq!(kind.to_string(), kind.as_str());
            let json = serde_json::to_string(&kind).expect("serialize kind");
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
            let back: DbKind = serde_json::from_str(&json).expect("deserialize kind");
            assert_eq!(back, kind);
        }
        assert_eq!(DbKind::parse("PostgreSQL"), Some(DbKind::Postgres));
        assert_eq!(DbKind::parse("MSSQL"), Some(DbKind::Sqlserver));
        assert!("db2".parse::<DbKind>().is_err());
    }

    #[test]
    fn db_kind_default_ports() {
        let ports: Vec<_> = DbKind::ALL.iter().map(|k| k.default_port()).collect();
        assert_eq!(
            ports,
            [
                Some(5432),
                Some(3306),
                Some(3306),
                Some(1433),
                Some(1521),
                None
            ]
        );
    }

    #[test]
    fn db_kind_dialects() {
        use sluice_sqltpl::Dialect;
        let dialects: Vec<_> = DbKind::ALL.iter().map(|k| k.dialect()).collect();
        assert_eq!(
            dialects,
            [
                Dialect::Postgres,
                Dialect::Mysql,
                Dialect::Mysql,
                Dialect::Sqlserver,
                Dialect::Oracle,
                Dialect::Sqlite
            ]
        );
    }

    #[test]
    fn tls_mode_names_round_trip_through_parse_display_and_serde() {
        for mode in TlsMode::ALL {
            assert_eq!(TlsMode::parse(mode.as_str()), Some(mode));
            assert_eq!(mode.to_string(), mode.as_str());
            let json = serde_json::to_string(&mode).expect("serialize mode");
            assert_eq!(json, format!("\"{}\"", mode.as_str()));
            let back: TlsMode = serde_json::from_str(&json).expect("deserialize mode");
            assert_eq!(back, mode);
        }
    }

    #[test]
    fn tls_mode_accepts_postgres_mysql_and_boolean_aliases() {
        let cases = [
            ("disable", TlsMode::Disabled),
            ("allow", TlsMode::Preferred),
            ("prefer", TlsMode::Preferred),
            ("require", TlsMode::Required),
            ("verify-ca", TlsMode::VerifyFull),
            ("verify-full", TlsMode::VerifyFull),
            ("DISABLED", TlsMode::Disabled),
            ("PREFERRED", TlsMode::Preferred),
            ("REQUIRED", TlsMode::Required),
            ("VERIFY_CA", TlsMode::VerifyFull),
            ("Verify_Identity", TlsMode::VerifyFull),
            ("true", TlsMode::Required),
            ("FALSE", TlsMode::Disabled),
        ];
        for (text, expected) in cases {
            assert_eq!(TlsMode::parse(text), Some(expected), "{text}");
        }
        assert_eq!(TlsMode::parse("sometimes"), None);
    }
}
