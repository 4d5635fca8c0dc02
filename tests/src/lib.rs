//! Test support for Sluice's integration tests: a [`TestApp`] (the real server on
//! port 0 over a fresh SQLite file or a fresh PostgreSQL database), a [`Receiver`]
//! that records HTTP requests, a headless-Chromium [`Browser`], and the real `sluice`
//! binary as a child process ([`Sluice`], [`ServeProcess`]).

mod app;
mod browser;
mod mariadb;
mod postgres;
mod process;
mod receiver;
mod sqlite;

pub use app::{Backend, TestApp, TestUser, extract_csrf, one_time_secret, test_config};
pub use browser::Browser;
pub use mariadb::TestMariaDb;
pub use postgres::TestDatabase;
pub use process::{Provisioned, ServeProcess, Sluice, free_address, sluice_binary};
pub use receiver::{Received, Receiver};
pub use sqlite::{THREE_ITEMS, sqlite_source};

/// Runs the same test body on both control-plane backends:
/// `on_both_backends!(name, |backend| async move { … });`
#[macro_export]
macro_rules! on_both_backends {
    ($name:ident, $test:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                ($test)($crate::Backend::Sqlite).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                ($test)($crate::Backend::Postgres).await
            }
        }
    };
}
