//! Sluice connectors: the tenants' databases.
//!
//! - [`parse_connection_string`] turns pasted connection strings (JDBC URLs,
//!   ODBC/ADO key-value strings, database URLs) into [`ConnectionParams`];
//! - [`Database`] connects with bounded pools (sqlx for PostgreSQL, MySQL,
//!   MariaDB and SQLite; tiberius for SQL Server; oracle for Oracle), tests,
//!   explores and reads rows;
//! - [`value`] converts rows to JSON faithfully;
//! - [`Database::stream_batches`] runs a rendered pull-sync command
//!   ([`sluice_sqltpl::Rendered`]) and streams its rows in batches;
//! - [`connection_specs`] describes the parameters each kind asks for;
//! - [`Database::execute_in_transaction`] runs rendered segment-sync
//!   statements in one transaction (or a test run that rolls back);
//! - [`Registry`] keeps one pool per connector for the server and the workers.

pub mod address;
pub mod connstr;
pub mod cursor;
pub mod database;
pub mod driver;
pub mod error;
pub mod ident;
pub mod kind;
pub mod registry;
pub mod spec;
pub mod stream;
pub mod transaction;
pub mod value;

pub use address::{AddressPolicy, check_host_syntax};
pub use connstr::{ConnectionParams, OracleTarget, ParseError, parse_connection_string};
pub use cursor::{CursorSort, ResultColumn, ResultColumns};
pub use database::{Access, ColumnInfo, Database, Limits, RowSet, TableKind, TableRef, TestReport};
pub use error::ConnectError;
pub use kind::{DbKind, TlsMode, UnknownDbKind, UnknownTlsMode};
pub use registry::Registry;
pub use spec::{ConnectionSpec, ParamSpec, connection_specs};
pub use stream::Batch;
pub use transaction::{ExecError, Executed, Finish};
pub use value::{ConvertError, nest_dotted};
