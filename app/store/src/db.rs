//! The control-plane connection: one enum over the two backends, so every query in
//! this crate is written once and compiled for both (see [`with_conn!`]).

use diesel::SqliteConnection;
use diesel_async::AsyncPgConnection;
use diesel_async::RunQueryDsl;
use diesel_async::pooled_connection::deadpool::{Object, Pool};
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig};
use diesel_async::sync_connection_wrapper::{SpawnBlocking, SyncConnectionWrapper};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use std::path::{Path, PathBuf};

use crate::StoreError;

pub type SqliteConn = SyncConnectionWrapper<SqliteConnection, DetachedBlocking>;

/// Runs SQLite work on tokio's blocking pool. diesel-async's default waits, on drop,
/// for a query whose caller went away (a client disconnect, a failing sibling
/// extractor) with `block_in_place`, which panics on actix-web's single-threaded
/// workers. Here such a query simply finishes in the background; the connection is
/// behind a mutex, so its next user waits for it.
pub struct DetachedBlocking(tokio::runtime::Handle);

impl SpawnBlocking for DetachedBlocking {
    fn spawn_blocking<'a, R>(
        &mut self,
        task: impl FnOnce() -> R + Send + 'static,
    ) -> BoxFuture<'a, Result<R, Box<dyn std::error::Error + Send + Sync + 'static>>>
    where
        R: Send + 'static,
    {
        self.0
            .spawn_blocking(task)
            .map(|joined| joined.map_err(Into::into))
            .boxed()
    }

    fn get_runtime() -> Self {
        // Only reached by `SyncConnectionWrapper::establish`; the pool below passes
        // the store's own runtime explicitly.
        Self(tokio::runtime::Handle::current())
    }
}

const PG_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");
const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");

/// Where the control plane lives, parsed once from `SLUICE_DATABASE_URL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseLocation {
    Postgres(String),
    Sqlite(PathBuf),
}

impl DatabaseLocation {
    /// `postgres://…` / `postgresql://…` selects PostgreSQL; `sqlite:PATH` or
    /// `sqlite://PATH` an embedded file; `None` the default file under `data_dir`.
    pub fn parse(url: Option<&str>, data_dir: &Path) -> Result<Self, StoreError> {
        let Some(url) = url.map(str::trim).filter(|u| !u.is_empty()) else {
            return Ok(Self::Sqlite(data_dir.join("sluice.db")));
        };
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self::Postgres(url.to_string()));
        }
        if let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            if path.is_empty() {
                return Err(StoreError::Config(
                    "SLUICE_DATABASE_URL: sqlite URL has no file path".into(),
                ));
            }
            return Ok(Self::Sqlite(PathBuf::from(path)));
        }
        Err(StoreError::Config(format!(
            "SLUICE_DATABASE_URL: expected postgres://… or sqlite:PATH, got {:?}",
            url.split(':').next().unwrap_or_default()
        )))
    }

    pub fn backend_name(&self) -> &'static str {
        match self {
            Self::Postgres(_) => "postgres",
            Self::Sqlite(_) => "sqlite",
        }
    }
}

#[derive(Clone)]
pub enum DbPool {
    Pg(Pool<AsyncPgConnection>),
    Sqlite(Pool<SqliteConn>),
}

/// A pooled connection of either backend. Use [`with_conn!`] to run a query on it.
// A pooled handle lives briefly on one stack frame; boxing would cost an allocation
// per query for nothing.
#[allow(clippy::large_enum_variant)]
pub enum Conn {
    Pg(Object<AsyncPgConnection>),
    Sqlite(Object<SqliteConn>),
}

/// Evaluates the same diesel expression against whichever backend `$conn` holds:
/// `with_conn!(conn, c => users::table.load::<User>(c).await)`.
#[macro_export]
macro_rules! with_conn {
    ($conn:expr, $c:ident => $body:expr) => {
        match $conn {
            $crate::db::Conn::Pg(pooled) => {
                let $c: &mut ::diesel_async::AsyncPgConnection = &mut *pooled;
                $body
            }
            $crate::db::Conn::Sqlite(pooled) => {
                let $c: &mut $crate::db::SqliteConn = &mut *pooled;
                $body
            }
        }
    };
}

/// Runs `$body` (which returns `Result<T, StoreError>`) in a transaction on whichever
/// backend `$conn` holds.
#[macro_export]
macro_rules! in_transaction {
    ($conn:expr, $c:ident => $body:expr) => {
        $crate::with_conn!($conn, conn => {
            ::diesel_async::AsyncConnection::transaction(
                conn,
                async |$c| -> ::std::result::Result<_, $crate::StoreError> { $body },
            )
            .await
        })
    };
}

const SQLITE_PRAGMAS: &[&str] = &[
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = NORMAL",
    "PRAGMA busy_timeout = 10000",
    "PRAGMA foreign_keys = ON",
];

fn open_sqlite(path: &str) -> diesel::ConnectionResult<SqliteConnection> {
    use diesel::Connection;
    use diesel::connection::SimpleConnection;
    let mut conn = SqliteConnection::establish(path)?;
    for pragma in SQLITE_PRAGMAS {
        conn.batch_execute(pragma)
            .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
    }
    Ok(conn)
}

impl DbPool {
    pub async fn connect(location: &DatabaseLocation, max_size: usize) -> Result<Self, StoreError> {
        match location {
            DatabaseLocation::Postgres(url) => {
                let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new(url.clone());
                let pool = Pool::builder(manager)
                    .max_size(max_size)
                    .build()
                    .map_err(|e| StoreError::Config(format!("postgres pool: {e}")))?;
                Ok(Self::Pg(pool))
            }
            DatabaseLocation::Sqlite(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        StoreError::Config(format!("cannot create {}: {e}", dir.display()))
                    })?;
                }
                // The runtime that opens the store (multi-threaded) runs all its SQLite work,
                // whichever thread later awaits a query.
                let runtime = tokio::runtime::Handle::current();
                let mut config = ManagerConfig::<SqliteConn>::default();
                config.custom_setup = Box::new(move |url| {
                    let (url, runtime) = (url.to_string(), runtime.clone());
                    async move {
                        let opened = runtime.spawn_blocking(move || open_sqlite(&url)).await;
                        let conn = opened
                            .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))??;
                        Ok(SqliteConn::with_runtime(conn, DetachedBlocking(runtime)))
                    }
                    .boxed()
                });
                let manager = AsyncDieselConnectionManager::<SqliteConn>::new_with_config(
                    path.to_string_lossy(),
                    config,
                );
                // SQLite takes one writer at a time; a small pool keeps readers concurrent
                // under WAL without piling up writers behind busy_timeout.
                let pool = Pool::builder(manager)
                    .max_size(max_size.min(4))
                    .build()
                    .map_err(|e| StoreError::Config(format!("sqlite pool: {e}")))?;
                Ok(Self::Sqlite(pool))
            }
        }
    }

    pub async fn get(&self) -> Result<Conn, StoreError> {
        match self {
            Self::Pg(pool) => Ok(Conn::Pg(pool.get().await.map_err(StoreError::pool)?)),
            Self::Sqlite(pool) => Ok(Conn::Sqlite(pool.get().await.map_err(StoreError::pool)?)),
        }
    }

    /// Applies every pending migration of this backend; returns how many ran.
    pub async fn migrate(&self) -> Result<usize, StoreError> {
        let conn = self.get().await?;
        // The harness drives diesel's sync migration runner on the async connection.
        let ran = match conn {
            Conn::Pg(c) => {
                let mut harness = diesel_async::AsyncMigrationHarness::new(c);
                harness
                    .run_pending_migrations(PG_MIGRATIONS)
                    .map(|v| v.len())
            }
            Conn::Sqlite(c) => {
                let mut harness = diesel_async::AsyncMigrationHarness::new(c);
                harness
                    .run_pending_migrations(SQLITE_MIGRATIONS)
                    .map(|v| v.len())
            }
        };
        ran.map_err(|e| StoreError::Migration(e.to_string()))
    }

    /// A cheap round trip, for `/readyz`.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.get().await?;
        with_conn!(&mut conn, c => diesel::sql_query("SELECT 1").execute(c).await)?;
        Ok(())
    }
}
