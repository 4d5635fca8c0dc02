//! The embedded SQLite store's connections: one writer and a few read-only
//! readers, each set up the same way, pooled by a manager that never hands out a
//! connection a cancelled query is still using.

use diesel::SqliteConnection;
use diesel_async::pooled_connection::PoolableConnection;
use diesel_async::sync_connection_wrapper::{SpawnBlocking, SyncConnectionWrapper};
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

pub type SqliteConn = SyncConnectionWrapper<SqliteConnection, DetachedBlocking>;

/// What a connection is for. The single writer is the only connection of this
/// process that ever takes SQLite's write lock, so writers never queue inside
/// SQLite (where a deferred transaction upgrading to a write fails at once with
/// "database is locked"); they queue in the pool, fairly and with a timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Writer,
    Reader,
}

/// `busy_timeout` comes first: every later statement, even switching the journal
/// mode, may meet a lock held by another process (an `admin` command, a backup).
const COMMON_PRAGMAS: &[&str] = &["PRAGMA busy_timeout = 10000", "PRAGMA foreign_keys = ON"];
const WRITER_PRAGMAS: &[&str] = &["PRAGMA journal_mode = WAL", "PRAGMA synchronous = NORMAL"];
/// A reader refuses to write, so a store function that picked the wrong
/// connection fails loudly instead of taking the write lock beside the writer.
const READER_PRAGMAS: &[&str] = &["PRAGMA query_only = ON"];

fn open(path: &str, role: Role) -> diesel::ConnectionResult<SqliteConnection> {
    use diesel::Connection;
    use diesel::connection::SimpleConnection;
    let mut conn = SqliteConnection::establish(path)?;
    let own = match role {
        Role::Writer => WRITER_PRAGMAS,
        Role::Reader => READER_PRAGMAS,
    };
    for pragma in COMMON_PRAGMAS.iter().chain(own) {
        conn.batch_execute(pragma)
            .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
    }
    Ok(conn)
}

/// Queries of one connection still running on the blocking pool.
#[derive(Debug, Default)]
pub struct InFlight {
    count: AtomicUsize,
    idle: tokio::sync::Notify,
}

impl InFlight {
    fn started(&self) {
        self.count.fetch_add(1, Ordering::AcqRel);
    }

    fn finished(&self) {
        if self.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.idle.notify_waiters();
        }
    }

    async fn wait_idle(&self) {
        loop {
            let idle = self.idle.notified();
            if self.count.load(Ordering::Acquire) == 0 {
                return;
            }
            idle.await;
        }
    }
}

/// Runs SQLite work on tokio's blocking pool. diesel-async's default waits, on
/// drop, for a query whose caller went away (a client disconnect, a failing
/// sibling extractor) with `block_in_place`, which panics on actix-web's
/// single-threaded workers. Here such a query finishes in the background, and the
/// pool ([`SqliteManager::recycle`]) waits for it before anyone reuses the
/// connection: diesel-async panics when a transaction starts on a connection
/// that a query still shares.
pub struct DetachedBlocking {
    runtime: tokio::runtime::Handle,
    in_flight: Arc<InFlight>,
}

impl SpawnBlocking for DetachedBlocking {
    fn spawn_blocking<'a, R>(
        &mut self,
        task: impl FnOnce() -> R + Send + 'static,
    ) -> BoxFuture<'a, Result<R, Box<dyn std::error::Error + Send + Sync + 'static>>>
    where
        R: Send + 'static,
    {
        let in_flight = self.in_flight.clone();
        in_flight.started();
        self.runtime
            .spawn_blocking(move || {
                // `task` owns diesel's handle on the connection; calling it consumes
                // (and drops) that handle before the query counts as finished.
                let result = task();
                in_flight.finished();
                result
            })
            .map(|joined| joined.map_err(Into::into))
            .boxed()
    }

    fn get_runtime() -> Self {
        // Only reached by `SyncConnectionWrapper::establish`; the manager passes the
        // store's own runtime explicitly.
        Self {
            runtime: tokio::runtime::Handle::current(),
            in_flight: Arc::default(),
        }
    }
}

/// A pooled SQLite connection and the count of its queries still running.
pub struct SqliteHandle {
    pub conn: SqliteConn,
    in_flight: Arc<InFlight>,
}

pub struct SqliteManager {
    path: String,
    role: Role,
    /// The runtime that opened the store (multi-threaded) runs all its SQLite
    /// work, whichever thread later awaits a query.
    runtime: tokio::runtime::Handle,
}

impl SqliteManager {
    pub fn new(path: String, role: Role) -> Self {
        Self {
            path,
            role,
            runtime: tokio::runtime::Handle::current(),
        }
    }
}

impl deadpool::managed::Manager for SqliteManager {
    type Type = SqliteHandle;
    type Error = diesel::ConnectionError;

    async fn create(&self) -> Result<SqliteHandle, Self::Error> {
        let (path, role) = (self.path.clone(), self.role);
        let opened = self
            .runtime
            .spawn_blocking(move || open(&path, role))
            .await
            .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))??;
        let in_flight = Arc::<InFlight>::default();
        let runtime = DetachedBlocking {
            runtime: self.runtime.clone(),
            in_flight: in_flight.clone(),
        };
        Ok(SqliteHandle {
            conn: SqliteConn::with_runtime(opened, runtime),
            in_flight,
        })
    }

    async fn recycle(
        &self,
        handle: &mut SqliteHandle,
        _: &deadpool::managed::Metrics,
    ) -> deadpool::managed::RecycleResult<Self::Error> {
        handle.in_flight.wait_idle().await;
        // A transaction left open by a cancelled caller: closing the connection
        // rolls it back.
        if handle.conn.is_broken() {
            return Err(deadpool::managed::RecycleError::message(
                "a transaction was left open",
            ));
        }
        Ok(())
    }
}
