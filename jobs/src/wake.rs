//! Waking idle apalis workers as soon as there is work for them.
//!
//! Three sources, whichever comes first:
//! - a job pushed in this process signals its queue's workers at once
//!   ([`Wakeups::signal`]);
//! - on PostgreSQL, one `LISTEN` connection per process relays apalis's
//!   `NOTIFY` of every new job, so a job pushed by another process (a second
//!   `serve`, a `worker`) starts within milliseconds too;
//! - a fixed interval, the fallback when a notification is lost (a dropped
//!   connection) or cannot exist (another process on the same SQLite file).

use apalis::prelude::{PollSnapshot, PollStrategy};
use futures::StreamExt;
use futures::stream::BoxStream;
use sqlx::postgres::{PgListener, PgPool};
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Sleep;
use tokio_util::sync::CancellationToken;

/// The channel apalis-postgres's insert trigger notifies, with a JSON payload
/// naming the job's queue (`job_type`).
const APALIS_INSERT_CHANNEL: &str = "apalis::job::insert";

/// How long the relay waits before listening again after its connection failed.
const RELAY_RECONNECT_DELAY: Duration = Duration::from_secs(1);

/// One wake-up signal per queue, shared by every handle of a [`crate::JobQueue`].
#[derive(Default)]
pub(crate) struct Wakeups {
    queues: Mutex<HashMap<String, watch::Sender<()>>>,
    /// Stops the PostgreSQL relay when the last handle goes.
    relay_stop: CancellationToken,
}

impl Wakeups {
    /// Wakes the idle workers of `queue` in this process.
    pub(crate) fn signal(&self, queue: &str) {
        if let Some(sender) = crate::lock(&self.queues).get(queue) {
            sender.send_replace(());
        }
    }

    /// A receiver that sees every signal of `queue` from now on.
    fn subscribe(&self, queue: &str) -> watch::Receiver<()> {
        crate::lock(&self.queues)
            .entry(queue.to_owned())
            .or_insert_with(|| watch::channel(()).0)
            .subscribe()
    }

    /// The poll strategy of one worker of `queue`.
    pub(crate) fn strategy(&self, queue: &str, fallback: Duration) -> WakeOnSignal {
        WakeOnSignal::new(self.subscribe(queue), fallback)
    }

    /// Relays apalis-postgres's notifications of new jobs (from any process) to
    /// this process's workers, until every handle of `wakeups` is gone.
    pub(crate) fn relay_postgres(wakeups: &Arc<Wakeups>, pool: PgPool) {
        let stop = wakeups.relay_stop.clone();
        let wakeups = Arc::downgrade(wakeups);
        tokio::spawn(async move {
            tokio::select! {
                () = stop.cancelled() => {}
                () = relay(pool, wakeups) => {}
            }
        });
    }
}

impl Drop for Wakeups {
    fn drop(&mut self) {
        self.relay_stop.cancel();
    }
}

async fn relay(pool: PgPool, wakeups: Weak<Wakeups>) {
    loop {
        match listen(&pool).await {
            Ok(mut listener) => loop {
                match listener.recv().await {
                    Ok(notification) => {
                        let Some(wakeups) = wakeups.upgrade() else {
                            return;
                        };
                        if let Some(queue) = queue_of(notification.payload()) {
                            wakeups.signal(&queue);
                        }
                    }
                    Err(error) => {
                        tracing::warn!(%error, "job notifications: the listening connection failed; polling until it is back");
                        break;
                    }
                }
            },
            Err(error) => {
                tracing::warn!(%error, "job notifications: cannot listen; polling until it can");
            }
        }
        if wakeups.strong_count() == 0 {
            return;
        }
        tokio::time::sleep(RELAY_RECONNECT_DELAY).await;
    }
}

async fn listen(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(APALIS_INSERT_CHANNEL).await?;
    Ok(listener)
}

/// The queue named by an apalis insert notification.
fn queue_of(payload: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Inserted {
        job_type: String,
    }
    serde_json::from_str::<Inserted>(payload)
        .ok()
        .map(|i| i.job_type)
}

/// Wakes a worker when its queue is signalled, and at a fixed interval.
///
/// The interval also works around apalis-core 1.0's `IntervalStrategy`, which
/// re-arms its timer after it fires without polling it, so no waker is
/// registered for the next tick; a worker whose fetch then finds nothing can
/// sleep until its 30 s heartbeat (we saw queued runs wait that long). Here the
/// re-armed timer is always polled.
pub(crate) struct WakeOnSignal {
    receiver: watch::Receiver<()>,
    /// In a mutex only to be `Sync`, as apalis wants; `&mut self` reaches it
    /// without locking.
    signals: Option<Mutex<BoxStream<'static, ()>>>,
    every: Duration,
    timer: Pin<Box<Sleep>>,
}

impl WakeOnSignal {
    fn new(receiver: watch::Receiver<()>, every: Duration) -> Self {
        Self {
            signals: Some(Mutex::new(signal_stream(receiver.clone()))),
            receiver,
            every,
            timer: Box::pin(tokio::time::sleep(every)),
        }
    }

    /// Drains the signals seen so far; leaves the stream waiting for the next.
    fn poll_signals(&mut self, cx: &mut Context<'_>) -> bool {
        let mut woken = false;
        while let Some(signals) = self.signals.as_mut() {
            let signals = signals.get_mut().unwrap_or_else(|p| p.into_inner());
            match signals.poll_next_unpin(cx) {
                Poll::Ready(Some(())) => woken = true,
                // Every sender is gone: only the interval is left.
                Poll::Ready(None) => self.signals = None,
                Poll::Pending => break,
            }
        }
        woken
    }

    fn poll_timer(&mut self, cx: &mut Context<'_>) -> bool {
        if self.timer.as_mut().poll(cx).is_pending() {
            return false;
        }
        let next = tokio::time::Instant::now() + self.every;
        self.timer.as_mut().reset(next);
        // Poll the re-armed timer so it holds this task's waker for the next tick.
        let _ = self.timer.as_mut().poll(cx);
        true
    }
}

fn signal_stream(receiver: watch::Receiver<()>) -> BoxStream<'static, ()> {
    futures::stream::unfold(receiver, |mut receiver| async move {
        receiver.changed().await.ok()?;
        Some(((), receiver))
    })
    .boxed()
}

impl PollStrategy for WakeOnSignal {
    fn poll_drive(&mut self, cx: &mut Context<'_>, _snapshot: &PollSnapshot) -> Poll<Option<()>> {
        // Both are polled every time, so both hold this task's waker.
        let signalled = self.poll_signals(cx);
        let ticked = self.poll_timer(cx);
        if signalled || ticked {
            Poll::Ready(Some(()))
        } else {
            Poll::Pending
        }
    }
}

impl Clone for WakeOnSignal {
    fn clone(&self) -> Self {
        Self::new(self.receiver.clone(), self.every)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Waker;

    fn snapshot() -> PollSnapshot {
        PollSnapshot::default()
    }

    #[tokio::test]
    async fn a_signal_wakes_the_strategy_before_its_interval() {
        let wakeups = Wakeups::default();
        let mut strategy = wakeups.strategy("q", Duration::from_secs(3600));
        let mut cx = Context::from_waker(Waker::noop());
        assert!(strategy.poll_drive(&mut cx, &snapshot()).is_pending());

        wakeups.signal("other");
        assert!(
            strategy.poll_drive(&mut cx, &snapshot()).is_pending(),
            "another queue's signal is not ours"
        );

        wakeups.signal("q");
        wakeups.signal("q");
        assert!(strategy.poll_drive(&mut cx, &snapshot()).is_ready());
        assert!(
            strategy.poll_drive(&mut cx, &snapshot()).is_pending(),
            "two signals before one poll wake once"
        );
    }

    #[tokio::test]
    async fn the_interval_wakes_it_without_signals() {
        let wakeups = Wakeups::default();
        let mut strategy = wakeups.strategy("q", Duration::from_millis(50));
        let mut cx = Context::from_waker(Waker::noop());
        assert!(strategy.poll_drive(&mut cx, &snapshot()).is_pending());
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert!(strategy.poll_drive(&mut cx, &snapshot()).is_ready());
        assert!(strategy.poll_drive(&mut cx, &snapshot()).is_pending());
    }

    #[test]
    fn the_queue_is_read_from_apalis_notifications() {
        assert_eq!(
            queue_of(r#"{"job_type":"sluice::pull::run","id":"01J","run_at":"2026-01-01"}"#)
                .as_deref(),
            Some("sluice::pull::run")
        );
        assert_eq!(queue_of("insert"), None);
    }
}
