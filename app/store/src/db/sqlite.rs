//! Opening the embedded SQLite store: one writer connection and a few read-only
//! ones, each set up the same way.

use diesel::SqliteConnection;
use diesel_async::sync_connection_wrapper::{SpawnBlocking, SyncConnectionWrapper};
use futures_util::FutureExt;
use futures_util::future::BoxFuture;

pub type SqliteConn = SyncConnectionWrapper<SqliteConnection, DetachedBlocking>;

/// Runs SQLite work on tokio's blocking pool. diesel-async's default waits, on drop,
/// for a query whose caller went away (a client disconnect, a failing sibling
/// extractor) with `block_in_place`, which panics on actix-web's single-threaded
/// workers. Here such a query simply finishes in the background; the connection is
/// behind a mutex, so its next user waits for it.
pub struct DetachedBlocking(tokio::runtime::Handle);

impl DetachedBlocking {
    pub fn new(runtime: tokio::runtime::Handle) -> Self {
        Self(runtime)
    }
}

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
        // Only reached by `SyncConnectionWrapper::establish`; the pool passes the
        // store's own runtime explicitly.
        Self(tokio::runtime::Handle::current())
    }
}

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

pub fn open(path: &str, role: Role) -> diesel::ConnectionResult<SqliteConnection> {
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
