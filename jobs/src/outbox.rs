//! The outbox batcher: hands a consumer's pending entries to an effect in batches,
//! when `max_entries` are pending or `timeout` has passed since the oldest was
//! appended, and advances the consumer only after the effect succeeded. At least
//! once and in order: an effect that fails (or a process that dies before the
//! advance) gets the same entries again.
//!
//! Appends in this process wake the batcher at once (the store's outbox signal);
//! appends by other processes are seen at the next poll. The timeout has its own
//! timer, so a lone entry is flushed on time without waiting for another append.
//! Run one batcher per consumer: two would both deliver the same entries.

use sluice_store::ids::TenantId;
use sluice_store::outbox::OutboxEntry;
use sluice_store::{Store, StoreError};
use std::future::Future;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// How often a waiting batcher looks for appends made by other processes.
pub const DEFAULT_POLL_EVERY: Duration = Duration::from_secs(2);

/// How long after a failed effect the same batch is tried again.
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSettings {
    /// Flush as soon as this many entries are pending; also the largest batch.
    pub max_entries: usize,
    /// Flush whatever is pending once the oldest entry is this old.
    pub timeout: Duration,
    pub poll_every: Duration,
    pub retry_after: Duration,
}

impl BatchSettings {
    pub fn new(max_entries: usize, timeout: Duration) -> Self {
        Self {
            max_entries: max_entries.max(1),
            timeout,
            poll_every: DEFAULT_POLL_EVERY,
            retry_after: DEFAULT_RETRY_AFTER,
        }
    }

    pub fn with_poll_every(mut self, every: Duration) -> Self {
        self.poll_every = every;
        self
    }

    pub fn with_retry_after(mut self, after: Duration) -> Self {
        self.retry_after = after;
        self
    }
}

/// What one [`Batcher::flush_due`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flush {
    /// The effect took `entries` entries and the consumer now stands at `through`.
    Flushed {
        entries: usize,
        through: i64,
    },
    /// Nothing due yet: the oldest pending entry becomes due at `due_at`
    /// (`None`: nothing pending).
    NotDue {
        due_at: Option<chrono::NaiveDateTime>,
    },
    Paused,
    /// The effect failed; the consumer did not move.
    Failed {
        error: String,
    },
}

/// One consumer of one stream and how it batches.
#[derive(Clone)]
pub struct Batcher {
    store: Store,
    tenant: TenantId,
    consumer: String,
    stream: String,
    settings: BatchSettings,
}

impl Batcher {
    /// The consumer must exist (`Store::ensure_outbox_consumer`).
    pub fn new(
        store: Store,
        tenant: TenantId,
        consumer: impl Into<String>,
        stream: impl Into<String>,
        settings: BatchSettings,
    ) -> Self {
        Self {
            store,
            tenant,
            consumer: consumer.into(),
            stream: stream.into(),
            settings,
        }
    }

    /// Flushes one batch if one is due: hands it to `effect` and, if that
    /// succeeds, advances the consumer past it. For a job that runs now and then;
    /// [`Batcher::run`] calls it in a loop.
    pub async fn flush_due<F, Fut, E>(&self, effect: &mut F) -> Result<Flush, StoreError>
    where
        F: FnMut(Vec<OutboxEntry>) -> Fut,
        Fut: Future<Output = Result<(), E>>,
        E: std::fmt::Display,
    {
        let pending = self
            .store
            .pending_outbox(
                &self.tenant,
                &self.consumer,
                &self.stream,
                self.settings.max_entries as i64,
            )
            .await?;
        if pending.paused {
            return Ok(Flush::Paused);
        }
        let (Some(oldest), Some(last)) = (pending.oldest_at, pending.entries.last()) else {
            return Ok(Flush::NotDue { due_at: None });
        };
        let due_at = oldest
            + chrono::Duration::from_std(self.settings.timeout).unwrap_or(chrono::TimeDelta::MAX);
        let full = pending.count >= self.settings.max_entries as i64;
        if !full && sluice_store::now() < due_at {
            return Ok(Flush::NotDue {
                due_at: Some(due_at),
            });
        }
        let (entries, through) = (pending.entries.len(), last.seq);
        if let Err(e) = effect(pending.entries).await {
            tracing::warn!(
                tenant = %self.tenant,
                consumer = %self.consumer,
                stream = %self.stream,
                entries,
                error = %e,
                "outbox batch failed; it will be retried"
            );
            return Ok(Flush::Failed {
                error: e.to_string(),
            });
        }
        // `false` (already past) is fine: the entries were applied either way.
        self.store
            .advance_outbox(&self.tenant, &self.consumer, &self.stream, through)
            .await?;
        Ok(Flush::Flushed { entries, through })
    }

    /// Flushes batches as they become due until `shutdown` turns true (or its
    /// sender goes away). A batch in progress finishes first. Returns early only
    /// on a store error other than "busy" (which is retried at the next poll),
    /// e.g. the consumer was deleted.
    pub async fn run<F, Fut, E>(
        &self,
        mut effect: F,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<(), StoreError>
    where
        F: FnMut(Vec<OutboxEntry>) -> Fut,
        Fut: Future<Output = Result<(), E>>,
        E: std::fmt::Display,
    {
        let signal = self.store.outbox_signal(&self.tenant, &self.stream);
        loop {
            if *shutdown.borrow_and_update() {
                return Ok(());
            }
            // Listening before looking, so an append in between is not missed.
            let appended = signal.notified();
            tokio::pin!(appended);
            appended.as_mut().enable();
            let poll = Instant::now() + self.settings.poll_every;
            let (wake_at, on_append) = match self.flush_due(&mut effect).await {
                Ok(Flush::Flushed { .. }) => continue,
                Ok(Flush::NotDue { due_at: None }) | Ok(Flush::Paused) => (poll, true),
                Ok(Flush::NotDue {
                    due_at: Some(due_at),
                }) => (poll.min(instant_at(due_at)), true),
                // Not at the next append: a failing effect would be hammered.
                Ok(Flush::Failed { .. }) => (Instant::now() + self.settings.retry_after, false),
                Err(StoreError::Unavailable(e)) => {
                    tracing::warn!(
                        consumer = %self.consumer,
                        stream = %self.stream,
                        error = %e,
                        "outbox batcher: store busy"
                    );
                    (poll, false)
                }
                Err(e) => return Err(e),
            };
            tokio::select! {
                _ = tokio::time::sleep_until(wake_at) => {}
                _ = &mut appended, if on_append => {}
                stopped = shutdown.changed() => {
                    if stopped.is_err() {
                        return Ok(());
                    }
                }
            }
        }
    }
}

/// The monotonic instant of a stored (UTC) time; now if it has passed.
fn instant_at(at: chrono::NaiveDateTime) -> Instant {
    let wait = (at - sluice_store::now())
        .to_std()
        .unwrap_or(Duration::ZERO);
    Instant::now() + wait
}
