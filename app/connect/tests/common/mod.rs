//! Helpers for the live tests: a private database per test, dropped at the end
//! (also when the test panics) from a helper thread with its own runtime.

#![allow(dead_code)]

use std::future::Future;
use std::net::TcpListener;
use std::time::Duration;

use sluice_connect::{ConnectionParams, DbKind, Limits, TlsMode, parse_connection_string};

pub const PG_DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
pub const MARIADB_DEFAULT_URL: &str = "mysql://root@127.0.0.1:3306";

pub fn pg_url() -> String {
    std::env::var("SLUICE_TEST_PG_URL").unwrap_or_else(|_| PG_DEFAULT_URL.to_owned())
}

pub fn mariadb_url() -> String {
    std::env::var("SLUICE_TEST_MARIADB_URL").unwrap_or_else(|_| MARIADB_DEFAULT_URL.to_owned())
}

pub fn unique_name(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

/// Parameters for `url` pointing at `database`. Without an explicit `sslmode`
/// in the URL the tests connect without TLS: the local servers' certificates
/// (if any) are self-signed, and TLS behaviour has tests of its own.
pub fn params_for(url: &str, kind: DbKind, database: Option<&str>) -> ConnectionParams {
    let mut params = parse_connection_string(url, Some(kind)).expect("test URL parses");
    params.database = database.map(str::to_owned);
    if !url.to_ascii_lowercase().contains("sslmode") {
        params.tls = TlsMode::Disabled;
    }
    params
}

pub fn quick_limits() -> Limits {
    Limits {
        max_connections: 2,
        connect_timeout: Duration::from_secs(3),
        query_timeout: Duration::from_secs(10),
    }
}

/// A loopback port with nothing listening on it.
pub fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    let port = listener.local_addr().expect("local address").port();
    drop(listener);
    port
}

/// Runs `work` to completion on a fresh runtime in a helper thread, so a
/// `Drop` can clean up even while a test's own runtime is unwinding.
pub fn run_detached<F>(work: impl FnOnce() -> F + Send + 'static)
where
    F: Future<Output = ()>,
{
    let handle = std::thread::spawn(move || {
        match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime.block_on(work()),
            Err(error) => eprintln!("cleanup runtime failed: {error}"),
        }
    });
    let _ = handle.join();
}
