//! The control-plane connection: one enum over the two backends, so every query in
//! this crate is written once and compiled for both (see [`with_conn!`]).

mod one_per_task;
mod sqlite;

use diesel_async::AsyncPgConnection;
use diesel_async::RunQueryDsl;
use diesel_async::pooled_connection::AsyncDieselConnectionManager;
use diesel_async::pooled_connection::deadpool::{Object, Pool};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use crate::StoreError;
pub use one_per_task::{Held, scope as connection_scope};
pub use sqlite::SqliteConn;
use sqlite::{Role, SqliteManager};

type SqlitePool = deadpool::managed::Pool<SqliteManager>;

/// How long a caller waits for a connection (including opening one) before the
/// store answers "busy" instead of hanging.
pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

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

/// Whether a store function only reads or also writes. On PostgreSQL both come
/// from one pool; on SQLite a write goes to the single writer connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

#[derive(Clone)]
pub struct DbPool {
    pools: Pools,
    acquire_timeout: Duration,
    /// When exhaustion was last logged (unix seconds), so a burst logs once.
    last_exhaustion_log: std::sync::Arc<AtomicI64>,
}

#[derive(Clone)]
enum Pools {
    Pg(Pool<AsyncPgConnection>),
    Sqlite {
        writer: SqlitePool,
        readers: SqlitePool,
    },
}

/// A pooled connection of either backend. Use [`with_conn!`] to run a query on it.
/// A task holds at most one at a time (see `one_per_task`).
pub struct Conn {
    #[doc(hidden)]
    pub pooled: Pooled,
    _held: Held,
}

#[doc(hidden)]
// A pooled handle lives briefly on one stack frame; boxing would cost an allocation
// per query for nothing.
#[allow(clippy::large_enum_variant)]
pub enum Pooled {
    Pg(Object<AsyncPgConnection>),
    Sqlite(deadpool::managed::Object<SqliteManager>),
}

/// Evaluates the same diesel expression against whichever backend `$conn` holds:
/// `with_conn!(conn, c => users::table.load::<User>(c).await)`.
#[macro_export]
macro_rules! with_conn {
    ($conn:expr, $c:ident => $body:expr) => {
        match &mut ($conn).pooled {
            $crate::db::Pooled::Pg(pooled) => {
                let $c: &mut ::diesel_async::AsyncPgConnection = &mut *pooled;
                $body
            }
            $crate::db::Pooled::Sqlite(pooled) => {
                let $c: &mut $crate::db::SqliteConn = &mut pooled.conn;
                $body
            }
        }
    };
}

/// Serialises changes to one tenant (its owners, its quotas) until the
/// transaction ends. On PostgreSQL two concurrent changes would otherwise each
/// still see the state before the other; on SQLite the single writer already
/// serialises them.
#[macro_export]
macro_rules! lock_tenant {
    ($c:expr, $tenant:expr) => {
        ::diesel::update($crate::schema::tenants::table.find($tenant.as_str()))
            .set($crate::schema::tenants::name.eq($crate::schema::tenants::name))
            .execute($c)
            .await
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

impl DbPool {
    pub async fn connect(location: &DatabaseLocation, max_size: usize) -> Result<Self, StoreError> {
        let pools = match location {
            DatabaseLocation::Postgres(url) => {
                let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new(url.clone());
                let pool = Pool::builder(manager)
                    .max_size(max_size.max(1))
                    .build()
                    .map_err(|e| StoreError::Config(format!("postgres pool: {e}")))?;
                Pools::Pg(pool)
            }
            DatabaseLocation::Sqlite(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        StoreError::Config(format!("cannot create {}: {e}", dir.display()))
                    })?;
                }
                Pools::Sqlite {
                    writer: sqlite_pool(path, Role::Writer, 1)?,
                    // Under WAL, readers run beside the writer and each other.
                    readers: sqlite_pool(path, Role::Reader, max_size.max(1))?,
                }
            }
        };
        Ok(Self {
            pools,
            acquire_timeout: DEFAULT_ACQUIRE_TIMEOUT,
            last_exhaustion_log: Default::default(),
        })
    }

    pub fn with_acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout = timeout;
        self
    }

    /// A connection for `access`, or [`StoreError::Busy`] when none frees up
    /// within the acquire timeout.
    #[track_caller]
    pub fn get(
        &self,
        access: Access,
    ) -> impl std::future::Future<Output = Result<Conn, StoreError>> + Send + '_ {
        // Claimed before waiting: a task that already holds a connection would
        // otherwise wait for one it may be keeping from itself.
        let held = Held::claim();
        async move {
            let pooled = match &self.pools {
                Pools::Pg(pool) => self
                    .acquire("postgres", pool.get(), || pool.status())
                    .await
                    .map(Pooled::Pg),
                Pools::Sqlite { writer, readers } => {
                    let (pool, name) = match access {
                        Access::Write => (writer, "sqlite writer"),
                        Access::Read => (readers, "sqlite readers"),
                    };
                    self.acquire(name, pool.get(), || pool.status())
                        .await
                        .map(Pooled::Sqlite)
                }
            }?;
            Ok(Conn {
                pooled,
                _held: held,
            })
        }
    }

    async fn acquire<T, E: std::fmt::Display>(
        &self,
        name: &'static str,
        get: impl std::future::Future<Output = Result<T, E>>,
        status: impl FnOnce() -> deadpool::Status,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.acquire_timeout, get).await {
            Ok(Ok(object)) => Ok(object),
            Ok(Err(e)) => Err(StoreError::Unavailable(format!("{name}: {e}"))),
            Err(_) => {
                self.log_exhaustion(name, status());
                Err(StoreError::Unavailable(format!(
                    "{name}: no connection within {} ms",
                    self.acquire_timeout.as_millis()
                )))
            }
        }
    }

    /// One warning per burst (at most every 10 s), with the pool's state.
    fn log_exhaustion(&self, name: &str, status: deadpool::Status) {
        let now = chrono::Utc::now().timestamp();
        let last = AtomicI64::load(&self.last_exhaustion_log, Ordering::Relaxed);
        if now - last >= 10
            && self
                .last_exhaustion_log
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                pool = name,
                max_size = status.max_size,
                size = status.size,
                available = status.available,
                waiting = status.waiting,
                timeout_ms = self.acquire_timeout.as_millis() as u64,
                "control-plane store: no connection free within the timeout; answering 503"
            );
        }
    }

    /// Applies every pending migration of this backend; returns how many ran.
    pub async fn migrate(&self) -> Result<usize, StoreError> {
        let conn = self.get(Access::Write).await?;
        // The harness drives diesel's sync migration runner on the async connection.
        let ran = match conn.pooled {
            Pooled::Pg(c) => {
                let mut harness = diesel_async::AsyncMigrationHarness::new(c);
                harness
                    .run_pending_migrations(PG_MIGRATIONS)
                    .map(|v| v.len())
            }
            Pooled::Sqlite(c) => {
                // Taken out of the pool: the harness owns its connection.
                let handle = deadpool::managed::Object::take(c);
                let mut harness = diesel_async::AsyncMigrationHarness::new(handle.conn);
                harness
                    .run_pending_migrations(SQLITE_MIGRATIONS)
                    .map(|v| v.len())
            }
        };
        ran.map_err(|e| StoreError::Migration(e.to_string()))
    }

    /// A round trip on a reader and on the writer, for `/readyz`.
    pub async fn ping(&self) -> Result<(), StoreError> {
        for access in [Access::Read, Access::Write] {
            let mut conn = self.get(access).await?;
            with_conn!(&mut conn, c => diesel::sql_query("SELECT 1").execute(c).await)?;
        }
        Ok(())
    }
}

fn sqlite_pool(path: &Path, role: Role, size: usize) -> Result<SqlitePool, StoreError> {
    let manager = SqliteManager::new(path.to_string_lossy().into_owned(), role);
    SqlitePool::builder(manager)
        .max_size(size)
        .build()
        .map_err(|e| StoreError::Config(format!("sqlite pool: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn sqlite_pool(dir: &tempfile::TempDir) -> DbPool {
        let location = DatabaseLocation::Sqlite(dir.path().join("store.db"));
        let pool = DbPool::connect(&location, 2)
            .await
            .expect("pool")
            .with_acquire_timeout(Duration::from_millis(200));
        pool.migrate().await.expect("migrations");
        pool
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_busy_writer_makes_writers_wait_then_answer_unavailable_while_readers_go_on() {
        let dir = tempfile::tempdir().unwrap();
        let pool = sqlite_pool(&dir).await;
        let (taken, release) = (tokio::sync::Notify::new(), tokio::sync::Notify::new());
        let (taken, release) = (std::sync::Arc::new(taken), std::sync::Arc::new(release));
        let holder = {
            let (pool, taken, release) = (pool.clone(), taken.clone(), release.clone());
            tokio::spawn(async move {
                let _writer = pool.get(Access::Write).await.expect("the writer");
                taken.notify_one();
                release.notified().await;
            })
        };
        taken.notified().await;
        let waited = tokio::spawn({
            let pool = pool.clone();
            async move { pool.get(Access::Write).await.map(drop) }
        })
        .await
        .unwrap();
        assert!(
            matches!(waited, Err(StoreError::Unavailable(ref m)) if m.contains("sqlite writer")),
            "{waited:?}"
        );
        let ping = tokio::spawn({
            let pool = pool.clone();
            async move {
                let mut reader = pool.get(Access::Read).await?;
                with_conn!(&mut reader, c => diesel::sql_query("SELECT 1").execute(c).await)?;
                Ok::<_, StoreError>(())
            }
        })
        .await
        .unwrap();
        assert!(
            ping.is_ok(),
            "readers are not blocked by the writer: {ping:?}"
        );
        assert!(
            matches!(pool.ping().await, Err(StoreError::Unavailable(_))),
            "readiness fails while the writer cannot be had"
        );
        release.notify_one();
        holder.await.unwrap();
        pool.ping().await.expect("ready again");
    }

    /// A caller that goes away mid-query (a client disconnect) leaves the query
    /// running; the next user of that connection must wait for it, not panic on
    /// diesel-async's "Cannot access shared transaction state".
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_connection_whose_caller_went_away_is_reused_safely() {
        let dir = tempfile::tempdir().unwrap();
        let pool = sqlite_pool(&dir).await;
        let slow = tokio::spawn({
            let pool = pool.clone();
            async move {
                let mut writer = pool.get(Access::Write).await?;
                with_conn!(&mut writer, c => diesel::sql_query(
                    "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 5000000) \
                     SELECT count(*) FROM n",
                )
                .execute(c)
                .await)?;
                Ok::<_, StoreError>(())
            }
        });
        tokio::time::sleep(Duration::from_millis(30)).await;
        slow.abort();
        let pool = pool.with_acquire_timeout(Duration::from_secs(30));
        let outcome = tokio::spawn(async move {
            let mut writer = pool.get(Access::Write).await?;
            crate::in_transaction!(&mut writer, c => {
                diesel::sql_query("SELECT 1").execute(c).await?;
                Ok(())
            })
        })
        .await;
        assert!(
            matches!(outcome, Ok(Ok(()))),
            "the writer is usable after its caller went away: {outcome:?}"
        );
    }

    /// The SQLite rebuild of `users` (2026-12-01-000003) on a database with data:
    /// run through the real migration path, on connections with foreign keys on,
    /// it keeps every user and the sessions that reference them (a DROP TABLE
    /// with foreign keys on would have cascaded), and the foreign keys still work.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn emails_per_tenant_keeps_users_and_their_sessions() {
        use diesel::Connection;
        use diesel::connection::SimpleConnection;
        use diesel::migration::MigrationSource;

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        {
            let mut old = diesel::SqliteConnection::establish(path.to_str().unwrap()).unwrap();
            old.batch_execute("PRAGMA foreign_keys = ON").unwrap();
            // Creates diesel's bookkeeping table, as the harness does first.
            old.applied_migrations().unwrap();
            let mut migrations =
                MigrationSource::<diesel::sqlite::Sqlite>::migrations(&SQLITE_MIGRATIONS).unwrap();
            migrations.sort_by_key(|m| m.name().to_string());
            for migration in migrations
                .iter()
                .filter(|m| m.name().to_string().as_str() < "2026-12-01-000003")
            {
                old.run_migration(migration.as_ref()).unwrap();
            }
            old.batch_execute(
                "INSERT INTO tenants VALUES ('ten_a', 'A', '2026-01-01 00:00:00'), \
                     ('ten_b', 'B', '2026-01-01 00:00:00'); \
                 INSERT INTO users VALUES \
                     ('usr_a', 'ten_a', 'ann@example.test', 'Ann', 'h', 'owner', '2026-01-01 00:00:00'), \
                     ('usr_b', 'ten_b', 'bob@example.test', 'Bob', 'h', 'owner', '2026-01-01 00:00:00'); \
                 INSERT INTO sessions VALUES \
                     ('ses_a', 'ta', 'usr_a', 'ten_a', '2026-01-01 00:00:00', '2099-01-01 00:00:00'), \
                     ('ses_b', 'tb', 'usr_b', 'ten_b', '2026-01-01 00:00:00', '2099-01-01 00:00:00'); \
                 INSERT INTO api_keys (id, tenant_id, name, prefix, key_hash, created_by, \
                     created_at, created_by_user_id) VALUES \
                     ('key_a', 'ten_a', 'k', 'sk_', 'kh', 'user:ann@example.test', \
                      '2026-01-01 00:00:00', 'usr_a');",
            )
            .unwrap();
        }

        let pool = sqlite_pool(&dir).await;
        let mut conn = pool.get(Access::Write).await.unwrap();
        let count = |table: &'static str| format!("SELECT count(*) AS n FROM {table}");
        #[derive(diesel::QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        for (table, expected) in [("users", 2), ("sessions", 2), ("api_keys", 1)] {
            let n: N =
                with_conn!(&mut conn, c => diesel::sql_query(count(table)).get_result(c).await)
                    .unwrap();
            assert_eq!(n.n, expected, "{table} rows kept");
        }
        // One email in two tenants is now fine; twice in one tenant is not.
        with_conn!(&mut conn, c => diesel::sql_query(
            "INSERT INTO users VALUES ('usr_c', 'ten_b', 'ann@example.test', 'Ann', 'h', 'viewer', '2026-01-02 00:00:00')",
        ).execute(c).await)
        .unwrap();
        let twice: Result<usize, diesel::result::Error> = with_conn!(&mut conn, c => diesel::sql_query(
            "INSERT INTO users VALUES ('usr_d', 'ten_b', 'ann@example.test', 'Ann', 'h', 'viewer', '2026-01-02 00:00:00')",
        ).execute(c).await);
        assert!(
            matches!(
                twice,
                Err(diesel::result::Error::DatabaseError(
                    diesel::result::DatabaseErrorKind::UniqueViolation,
                    _
                ))
            ),
            "{twice:?}"
        );
        // Sessions still reference `users`, and removing a user still cascades.
        with_conn!(&mut conn, c => diesel::sql_query("DELETE FROM users WHERE id = 'usr_a'").execute(c).await)
            .unwrap();
        let n: N =
            with_conn!(&mut conn, c => diesel::sql_query(count("sessions")).get_result(c).await)
                .unwrap();
        assert_eq!(n.n, 1, "the removed user's session went with them");
        let orphan: Result<usize, diesel::result::Error> = with_conn!(&mut conn, c => diesel::sql_query(
            "INSERT INTO sessions VALUES ('ses_x', 'tx', 'usr_gone', 'ten_a', '2026-01-01 00:00:00', '2099-01-01 00:00:00')",
        ).execute(c).await);
        assert!(orphan.is_err(), "foreign keys are enforced again");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn readers_refuse_to_write() {
        let dir = tempfile::tempdir().unwrap();
        let pool = sqlite_pool(&dir).await;
        let outcome = tokio::spawn(async move {
            let mut reader = pool.get(Access::Read).await?;
            with_conn!(&mut reader, c => diesel::sql_query("CREATE TABLE t (x INTEGER)").execute(c).await)?;
            Ok::<_, StoreError>(())
        })
        .await
        .unwrap();
        let message = outcome.expect_err("query_only").to_string();
        assert!(message.contains("readonly"), "{message}");
    }
}
