//! Sluice connectors.
//!
//! For now this crate only turns the connection strings people paste (JDBC URLs,
//! ODBC/ADO key-value strings and database URLs) into [`ConnectionParams`]; it
//! performs no I/O.

pub mod connstr;
pub mod kind;

pub use connstr::{ConnectionParams, OracleTarget, ParseError, parse_connection_string};
pub use kind::{DbKind, TlsMode, UnknownDbKind, UnknownTlsMode};
