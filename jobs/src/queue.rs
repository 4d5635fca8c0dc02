//! The apalis storage, on whichever backend the control plane uses.

use apalis::prelude::*;
use apalis_postgres::PostgresStorage;
use apalis_sqlite::SqliteStorage;
use sluice_store::DatabaseLocation;
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::wake::Wakeups;
use crate::{Job, JobContext, run_job};

/// How often an idle worker looks for work when no wake-up told it to (see
/// [`Wakeups`]): the fallback for a lost notification.
const WORKER_POLL_INTERVAL: Duration = Duration::from_millis(250);

/// How long a push (or a worker's poll) waits for a queue connection before it
/// fails instead of hanging.
const QUEUE_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum JobQueueError {
    #[error("job queue database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("job queue setup: {0}")]
    Setup(String),
    #[error("cannot enqueue {queue}: {message}")]
    Push {
        queue: &'static str,
        message: String,
    },
}

/// The job queue: its storage, and the wake-ups of this process's idle workers.
#[derive(Clone)]
pub struct JobQueue {
    storage: Storage,
    wakeups: Arc<Wakeups>,
}

#[derive(Clone)]
enum Storage {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

impl JobQueue {
    fn new(storage: Storage) -> Self {
        Self {
            storage,
            wakeups: Arc::default(),
        }
    }

    /// Opens (and sets up) the queue: in the control-plane PostgreSQL, or in
    /// `jobs.db` beside an embedded store.
    pub async fn open(location: &DatabaseLocation) -> Result<Self, JobQueueError> {
        match location {
            DatabaseLocation::Postgres(url) => {
                let pool = PgPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(QUEUE_ACQUIRE_TIMEOUT)
                    .connect(url)
                    .await?;
                PostgresStorage::setup(&pool)
                    .await
                    .map_err(|e| JobQueueError::Setup(e.to_string()))?;
                Ok(Self::new(Storage::Postgres(pool)))
            }
            DatabaseLocation::Sqlite(store_path) => {
                // sqlx sets busy_timeout before any pragma. One connection is the
                // queue's single writer: apalis's transactions read before they
                // write, and two such transactions on one file fail with "database
                // is locked" instead of waiting; queued in the pool, they never meet.
                let options = SqliteConnectOptions::new()
                    .filename(jobs_file_beside(store_path))
                    .create_if_missing(true)
                    .busy_timeout(Duration::from_secs(10))
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal);
                let pool = SqlitePoolOptions::new()
                    .max_connections(1)
                    .acquire_timeout(QUEUE_ACQUIRE_TIMEOUT)
                    .connect_with(options)
                    .await?;
                SqliteStorage::setup(&pool)
                    .await
                    .map_err(|e| JobQueueError::Setup(e.to_string()))?;
                // apalis's setup turns fsync off on the connection it used (the
                // pool's only one); a crash must not lose queued jobs.
                sqlx::query("PRAGMA synchronous = NORMAL")
                    .execute(&pool)
                    .await?;
                Ok(Self::new(Storage::Sqlite(pool)))
            }
        }
    }

    fn config_queue<J: Job>(&self) -> String {
        J::QUEUE.to_string()
    }

    /// Enqueues one job for any worker (in this process or another) to run.
    pub async fn push<J: Job>(&self, job: J) -> Result<(), JobQueueError> {
        let failed = |e: &dyn std::fmt::Display| JobQueueError::Push {
            queue: J::QUEUE,
            message: e.to_string(),
        };
        match &self.storage {
            Storage::Sqlite(pool) => {
                let config = apalis_sqlite::Config::default().queue(self.config_queue::<J>());
                let mut storage = SqliteStorage::<J>::new(pool).with_config(config);
                storage.push(job).await.map_err(|e| failed(&e))?;
            }
            Storage::Postgres(pool) => {
                let config = apalis_postgres::Config::default().queue(self.config_queue::<J>());
                let mut storage = PostgresStorage::<J>::new(pool).with_config(config);
                storage.push(job).await.map_err(|e| failed(&e))?;
            }
        }
        self.wakeups.signal(J::QUEUE);
        Ok(())
    }

    /// On PostgreSQL, starts relaying new-job notifications from every process
    /// to this process's workers (call once, before the workers start).
    pub(crate) fn listen_for_jobs(&self) {
        if let Storage::Postgres(pool) = &self.storage {
            Wakeups::relay_postgres(&self.wakeups, pool.clone());
        }
    }

    /// Adds a worker for `J` to the monitor.
    pub(crate) fn register_worker<J: Job>(&self, monitor: Monitor, ctx: JobContext) -> Monitor {
        let queue = self.config_queue::<J>();
        let wakeups = self.wakeups.clone();
        match &self.storage {
            Storage::Sqlite(pool) => {
                let pool = pool.clone();
                monitor.register(move |_| {
                    let config = apalis_sqlite::Config::default().queue(&queue);
                    let storage = SqliteStorage::<J>::new(&pool).with_config(config);
                    WorkerBuilder::new(worker_name::<J>(&ctx.instance))
                        .backend(
                            storage.poll_with_strategy(
                                wakeups.strategy(J::QUEUE, WORKER_POLL_INTERVAL),
                            ),
                        )
                        .data(ctx.clone())
                        .build(run_job::<J>)
                })
            }
            Storage::Postgres(pool) => {
                let pool = pool.clone();
                monitor.register(move |_| {
                    let config = apalis_postgres::Config::default().queue(&queue);
                    let storage = PostgresStorage::<J>::new(&pool).with_config(config);
                    WorkerBuilder::new(worker_name::<J>(&ctx.instance))
                        .backend(
                            storage.poll_with_strategy(
                                wakeups.strategy(J::QUEUE, WORKER_POLL_INTERVAL),
                            ),
                        )
                        .data(ctx.clone())
                        .build(run_job::<J>)
                })
            }
        }
    }
}

/// A worker name unique to this job system instance: apalis registers workers by
/// name, and a restarted process must not be refused as a duplicate of its dead
/// predecessor (whose registration lingers until its heartbeats are missed).
fn worker_name<J: Job>(instance: &str) -> String {
    format!("{}@{instance}", J::QUEUE)
}

/// `data/sluice.db` → `data/jobs.db`.
fn jobs_file_beside(store_path: &Path) -> std::path::PathBuf {
    store_path.with_file_name("jobs.db")
}
