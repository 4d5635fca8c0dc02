//! The outbox and its batcher against real stores: batches flush by size and by
//! timeout, delivery is at least once and in order across a crash and failing
//! effects, consumers keep their own positions, concurrent appends are never
//! skipped, and retention keeps what a consumer still needs.

use serde_json::{Value, json};
use sluice_jobs::outbox::{BatchSettings, Batcher};
use sluice_store::ids::TenantId;
use sluice_store::outbox::{OutboxEntry, StartAt};
use sluice_store::{Store, StoreError};
use sluice_tests::{Backend, TestApp, TestDatabase, on_both_backends};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

const STREAM: &str = "members";

/// A store of its own (the production opening path) with one tenant.
struct Fixture {
    store: Store,
    tenant: TenantId,
    _dir: tempfile::TempDir,
    _database: Option<TestDatabase>,
}

async fn fixture(backend: Backend) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let database = match backend {
        Backend::Sqlite => None,
        Backend::Postgres => Some(TestDatabase::create("sluice_outbox").await),
    };
    let mut config = sluice_tests::test_config(
        dir.path().join("data"),
        database.as_ref().map(|d| d.url.clone()),
    );
    config.db_pool_size = 12;
    let store = sluice_server::startup::open_store(&config).await.unwrap();
    let (tenant, _) = store
        .create_tenant_with_owner(
            &sluice_store::domain::TenantName::parse("Outbox").unwrap(),
            sluice_store::accounts::NewUser {
                email: sluice_store::domain::Email::parse("outbox@example.com").unwrap(),
                name: sluice_store::domain::PersonName::parse("Outbox").unwrap(),
                password: sluice_store::domain::NewPassword::parse(
                    "correct horse battery",
                    "password",
                )
                .unwrap(),
                role: sluice_store::domain::Role::Owner,
            },
        )
        .await
        .unwrap();
    Fixture {
        store,
        tenant: tenant.id,
        _dir: dir,
        _database: database,
    }
}

impl Fixture {
    fn batcher(&self, consumer: &str, settings: BatchSettings) -> Batcher {
        Batcher::new(
            self.store.clone(),
            self.tenant.clone(),
            consumer,
            STREAM,
            settings,
        )
    }

    async fn consumer(&self, consumer: &str, start: StartAt) {
        self.store
            .ensure_outbox_consumer(&self.tenant, consumer, STREAM, start)
            .await
            .unwrap();
    }

    async fn append(&self, payloads: &[Value]) -> std::ops::Range<i64> {
        self.store
            .append_outbox(&self.tenant, STREAM, payloads)
            .await
            .unwrap()
    }

    async fn position(&self, consumer: &str) -> i64 {
        self.store
            .outbox_consumer(&self.tenant, consumer, STREAM)
            .await
            .unwrap()
            .position
    }

    async fn wait_for_position(&self, consumer: &str, position: i64, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let now_at = self.position(consumer).await;
            if now_at == position {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{consumer} stands at {now_at}, never reached {position}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The batches an effect received, each with when it arrived.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Arrived>>>);

type Arrived = (Instant, Vec<OutboxEntry>);

impl Recorder {
    fn record(&self, batch: &[OutboxEntry]) {
        self.0
            .lock()
            .unwrap()
            .push((Instant::now(), batch.to_vec()));
    }

    /// An effect that records each batch and succeeds.
    fn effect(
        &self,
    ) -> impl FnMut(Vec<OutboxEntry>) -> std::future::Ready<Result<(), String>> + Send + 'static
    {
        let recorder = self.clone();
        move |batch| {
            recorder.record(&batch);
            std::future::ready(Ok(()))
        }
    }

    fn batches(&self) -> Vec<Vec<i64>> {
        let batches = self.0.lock().unwrap();
        batches
            .iter()
            .map(|(_, batch)| batch.iter().map(|e| e.seq).collect())
            .collect()
    }

    fn entries(&self) -> Vec<OutboxEntry> {
        let batches = self.0.lock().unwrap();
        batches.iter().flat_map(|(_, b)| b.clone()).collect()
    }

    fn arrivals(&self) -> Vec<Instant> {
        self.0.lock().unwrap().iter().map(|(at, _)| *at).collect()
    }

    async fn wait_for_batches(&self, count: usize, within: Duration) {
        let deadline = Instant::now() + within;
        while self.0.lock().unwrap().len() < count {
            assert!(
                Instant::now() < deadline,
                "expected {count} batches, got {:?}",
                self.batches()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// A running batcher that stops when dropped.
struct Running {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<(), StoreError>>,
}

impl Running {
    fn start<F, Fut>(batcher: Batcher, effect: F) -> Self
    where
        F: FnMut(Vec<OutboxEntry>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<(), String>> + Send,
    {
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(async move { batcher.run(effect, stopped).await });
        Self { stop, task }
    }

    async fn stop(self) {
        self.stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("the batcher stops when told")
            .unwrap()
            .unwrap();
    }
}

fn seqs(range: std::ops::RangeInclusive<i64>) -> Vec<i64> {
    range.collect()
}

on_both_backends!(a_full_batch_flushes_at_once, |backend| async move {
    let f = fixture(backend).await;
    f.consumer("sync", StartAt::Beginning).await;
    let recorder = Recorder::default();
    // Neither the timeout nor a poll can explain a flush within this test.
    let settings =
        BatchSettings::new(5, Duration::from_secs(60)).with_poll_every(Duration::from_secs(60));
    let running = Running::start(f.batcher("sync", settings), recorder.effect());

    let started = Instant::now();
    for i in 1..=7 {
        f.append(&[json!({ "i": i })]).await;
    }
    recorder.wait_for_batches(1, Duration::from_secs(10)).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "flushed long before the timeout"
    );
    f.wait_for_position("sync", 5, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        recorder.batches(),
        vec![seqs(1..=5)],
        "one batch of exactly five; the other two wait for more or for the timeout"
    );
    let payloads: Vec<Value> = recorder.entries().into_iter().map(|e| e.payload).collect();
    assert_eq!(
        payloads,
        (1..=5).map(|i| json!({ "i": i })).collect::<Vec<_>>()
    );
    running.stop().await;
});

on_both_backends!(
    a_partial_batch_flushes_when_its_oldest_entry_times_out,
    |backend| async move {
        let f = fixture(backend).await;
        f.consumer("sync", StartAt::Beginning).await;
        let recorder = Recorder::default();
        let timeout = Duration::from_secs(1);
        // Polling every minute: only the batcher's timer can flush on time.
        let settings = BatchSettings::new(100, timeout).with_poll_every(Duration::from_secs(60));
        let running = Running::start(f.batcher("sync", settings), recorder.effect());
        tokio::time::sleep(Duration::from_millis(100)).await;

        let appended = Instant::now();
        f.append(&[json!(1), json!(2), json!(3)]).await;
        recorder.wait_for_batches(1, Duration::from_secs(10)).await;
        let waited = recorder.arrivals()[0] - appended;
        // Stored times have microseconds; allow for that rounding only.
        assert!(
            waited + Duration::from_millis(2) >= timeout,
            "flushed after {waited:?}, before the {timeout:?} timeout"
        );
        assert!(
            waited < timeout + Duration::from_millis(800),
            "flushed after {waited:?}: the timer should have woken it at {timeout:?}"
        );
        assert_eq!(recorder.batches(), vec![seqs(1..=3)]);
        f.wait_for_position("sync", 3, Duration::from_secs(5)).await;
        running.stop().await;
    }
);

on_both_backends!(
    a_batch_applied_but_not_advanced_is_delivered_again,
    |backend| async move {
        let f = fixture(backend).await;
        f.consumer("sync", StartAt::Beginning).await;
        f.append(&[json!("a"), json!("b"), json!("c")]).await;
        let settings = BatchSettings::new(3, Duration::from_secs(60));

        // The process dies after the effect committed, before the advance.
        let applied = Recorder::default();
        let crashing = {
            let batcher = f.batcher("sync", settings);
            let applied = applied.clone();
            tokio::spawn(async move {
                let (_stop, stopped) = watch::channel(false);
                batcher
                    .run(
                        move |batch: Vec<OutboxEntry>| -> std::future::Ready<Result<(), String>> {
                            applied.record(&batch);
                            panic!("the process died after applying {batch:?}")
                        },
                        stopped,
                    )
                    .await
            })
        };
        let died = crashing.await.expect_err("the batcher's task died");
        assert!(died.is_panic());
        assert_eq!(applied.batches(), vec![seqs(1..=3)]);
        assert_eq!(f.position("sync").await, 0, "the position did not move");

        // A new batcher delivers the same entries again, then moves on.
        let recorder = Recorder::default();
        let running = Running::start(f.batcher("sync", settings), recorder.effect());
        recorder.wait_for_batches(1, Duration::from_secs(10)).await;
        assert_eq!(
            recorder.entries(),
            applied.entries(),
            "the same entries, again"
        );
        f.wait_for_position("sync", 3, Duration::from_secs(5)).await;
        f.append(&[json!("d"), json!("e"), json!("f")]).await;
        recorder.wait_for_batches(2, Duration::from_secs(10)).await;
        assert_eq!(recorder.batches(), vec![seqs(1..=3), seqs(4..=6)]);
        let payloads: Vec<Value> = recorder.entries().into_iter().map(|e| e.payload).collect();
        assert_eq!(payloads, ["a", "b", "c", "d", "e", "f"].map(|p| json!(p)));
        running.stop().await;
    }
);

on_both_backends!(
    two_consumers_keep_their_own_positions_and_a_paused_one_catches_up,
    |backend| async move {
        let f = fixture(backend).await;
        f.consumer("first", StartAt::Beginning).await;
        f.consumer("second", StartAt::Beginning).await;
        f.store
            .pause_outbox_consumer(&f.tenant, "second", STREAM)
            .await
            .unwrap();
        let settings = BatchSettings::new(2, Duration::from_millis(200))
            .with_poll_every(Duration::from_millis(100));
        let (first, second) = (Recorder::default(), Recorder::default());
        let running_first = Running::start(f.batcher("first", settings), first.effect());
        let running_second = Running::start(f.batcher("second", settings), second.effect());

        for chunk in [[1, 2], [3, 4], [5, 6]] {
            f.append(&chunk.map(|i| json!(i))).await;
        }
        f.wait_for_position("first", 6, Duration::from_secs(10))
            .await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(
            first.entries().iter().map(|e| e.seq).collect::<Vec<_>>(),
            seqs(1..=6)
        );
        assert!(
            second.batches().is_empty(),
            "a paused consumer gets nothing"
        );
        assert_eq!(f.position("second").await, 0, "and keeps its place");
        let streams = f.store.outbox_streams(&f.tenant).await.unwrap();
        let lags: Vec<(String, i64, bool)> = streams[0]
            .consumers
            .iter()
            .map(|c| (c.consumer.clone(), c.lag, c.paused))
            .collect();
        assert_eq!(
            lags,
            [
                ("first".to_string(), 0, false),
                ("second".to_string(), 6, true)
            ]
        );

        f.store
            .resume_outbox_consumer(&f.tenant, "second", STREAM)
            .await
            .unwrap();
        f.wait_for_position("second", 6, Duration::from_secs(10))
            .await;
        assert_eq!(
            second.entries().iter().map(|e| e.seq).collect::<Vec<_>>(),
            seqs(1..=6),
            "it catches up, in order"
        );
        assert_eq!(
            first.entries().len(),
            6,
            "the other consumer got nothing twice"
        );
        running_first.stop().await;
        running_second.stop().await;
    }
);

on_both_backends!(
    a_failing_effect_is_retried_without_advancing,
    |backend| async move {
        let f = fixture(backend).await;
        f.consumer("sync", StartAt::Beginning).await;
        f.append(&[json!(1), json!(2), json!(3), json!(4)]).await;
        let settings = BatchSettings::new(2, Duration::from_secs(60))
            .with_retry_after(Duration::from_millis(100));
        // Each attempt: the batch's seqs, the position the consumer had then.
        let attempts = Arc::new(Mutex::new(Vec::<(Vec<i64>, i64)>::new()));
        let effect = {
            let (attempts, store, tenant) = (attempts.clone(), f.store.clone(), f.tenant.clone());
            move |batch: Vec<OutboxEntry>| {
                let (attempts, store, tenant) = (attempts.clone(), store.clone(), tenant.clone());
                async move {
                    let position = store
                        .outbox_consumer(&tenant, "sync", STREAM)
                        .await
                        .unwrap()
                        .position;
                    let tries = {
                        let mut attempts = attempts.lock().unwrap();
                        attempts.push((batch.iter().map(|e| e.seq).collect(), position));
                        attempts.len()
                    };
                    if tries <= 2 {
                        Err(format!("the target refused attempt {tries}"))
                    } else {
                        Ok(())
                    }
                }
            }
        };
        let running = Running::start(f.batcher("sync", settings), effect);
        f.wait_for_position("sync", 4, Duration::from_secs(10))
            .await;
        running.stop().await;
        assert_eq!(
            *attempts.lock().unwrap(),
            vec![
                (seqs(1..=2), 0),
                (seqs(1..=2), 0),
                (seqs(1..=2), 0),
                (seqs(3..=4), 2)
            ]
        );
    }
);

on_both_backends!(
    parallel_appends_are_read_in_order_and_never_skipped,
    |backend| async move {
        const TASKS: i64 = 8;
        const EACH: i64 = 200;
        let f = Arc::new(fixture(backend).await);
        f.consumer("sync", StartAt::Beginning).await;
        let recorder = Recorder::default();
        let settings = BatchSettings::new(50, Duration::from_millis(5))
            .with_poll_every(Duration::from_millis(50));
        let running = Running::start(f.batcher("sync", settings), recorder.effect());

        let appenders: Vec<_> = (0..TASKS)
            .map(|task| {
                let f = f.clone();
                tokio::spawn(async move {
                    for i in 0..EACH {
                        f.append(&[json!({ "task": task, "i": i })]).await;
                    }
                })
            })
            .collect();
        for appender in appenders {
            appender.await.unwrap();
        }
        f.wait_for_position("sync", TASKS * EACH, Duration::from_secs(60))
            .await;
        running.stop().await;

        let entries = recorder.entries();
        let read: Vec<i64> = entries.iter().map(|e| e.seq).collect();
        let missing: Vec<i64> = (1..=TASKS * EACH).filter(|s| !read.contains(s)).collect();
        assert!(missing.is_empty(), "skipped entries: {missing:?}");
        assert!(
            read.windows(2).all(|w| w[0] < w[1]),
            "read once each, in seq order"
        );
        assert_eq!(read.len() as i64, TASKS * EACH);
        assert!(
            recorder.batches().len() > 1,
            "the consumer read while appends went on"
        );
        for task in 0..TASKS {
            let mine: Vec<i64> = entries
                .iter()
                .filter(|e| e.payload["task"] == json!(task))
                .map(|e| e.payload["i"].as_i64().unwrap())
                .collect();
            assert_eq!(
                mine,
                (0..EACH).collect::<Vec<_>>(),
                "task {task}'s entries, in its order"
            );
        }
    }
);

on_both_backends!(an_advance_never_moves_backwards, |backend| async move {
    let f = fixture(backend).await;
    f.append(&[json!(1), json!(2), json!(3), json!(4), json!(5)])
        .await;
    f.consumer("sync", StartAt::Beginning).await;
    let advance = |to: i64| f.store.advance_outbox(&f.tenant, "sync", STREAM, to);

    assert!(advance(4).await.unwrap());
    assert!(!advance(2).await.unwrap(), "a stale advance is ignored");
    assert!(!advance(4).await.unwrap(), "a replayed advance is ignored");
    assert_eq!(f.position("sync").await, 4);
    let past_the_end = advance(6).await;
    assert!(
        matches!(
            past_the_end,
            Err(StoreError::Conflict {
                field: "position",
                ..
            })
        ),
        "{past_the_end:?}"
    );
    assert_eq!(f.position("sync").await, 4);
    let unknown = f.store.advance_outbox(&f.tenant, "nobody", STREAM, 1).await;
    assert!(
        matches!(unknown, Err(StoreError::NotFound { .. })),
        "{unknown:?}"
    );
    let pending = f
        .store
        .pending_outbox(&f.tenant, "sync", STREAM, 10)
        .await
        .unwrap();
    assert_eq!(pending.count, 1);
    assert_eq!(
        pending.entries.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [5]
    );

    // A consumer added at the end sees only what comes after it.
    f.consumer("late", StartAt::End).await;
    assert_eq!(f.position("late").await, 5);
    f.append(&[json!(6)]).await;
    let pending = f
        .store
        .pending_outbox(&f.tenant, "late", STREAM, 10)
        .await
        .unwrap();
    assert_eq!(
        pending.entries.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [6]
    );
});

on_both_backends!(
    retention_removes_only_entries_every_consumer_has_applied,
    |backend| async move {
        let f = fixture(backend).await;
        let store = &f.store;
        let t = &f.tenant;
        for consumer in ["ahead", "behind"] {
            store
                .ensure_outbox_consumer(t, consumer, "s", StartAt::Beginning)
                .await
                .unwrap();
        }
        store
            .ensure_outbox_consumer(t, "idle", "t", StartAt::Beginning)
            .await
            .unwrap();
        store
            .ensure_outbox_consumer(t, "many", "v", StartAt::Beginning)
            .await
            .unwrap();
        let eight: Vec<Value> = (1..=8).map(|i| json!(i)).collect();
        store.append_outbox(t, "s", &eight).await.unwrap();
        store.append_outbox(t, "t", &eight[..3]).await.unwrap();
        store.append_outbox(t, "u", &eight[..2]).await.unwrap();
        // More than one retention chunk (5,000).
        let many: Vec<Value> = (0..12_000).map(|i| json!(i)).collect();
        store.append_outbox(t, "v", &many).await.unwrap();
        store.advance_outbox(t, "ahead", "s", 5).await.unwrap();
        store.advance_outbox(t, "behind", "s", 3).await.unwrap();
        store.advance_outbox(t, "many", "v", 11_000).await.unwrap();

        let removed = store.apply_outbox_retention().await.unwrap();
        assert_eq!(removed, 3 + 2 + 11_000);
        let kept: Vec<(String, i64, i64)> = store
            .outbox_streams(t)
            .await
            .unwrap()
            .into_iter()
            .map(|s| (s.stream, s.last_seq, s.kept))
            .collect();
        assert_eq!(
            kept,
            [
                ("s".to_string(), 8, 5),
                ("t".to_string(), 3, 3),
                // Nobody consumes it: nothing to keep.
                ("u".to_string(), 2, 0),
                ("v".to_string(), 12_000, 1_000),
            ]
        );
        let behind = store.pending_outbox(t, "behind", "s", 100).await.unwrap();
        assert_eq!(
            behind.entries.iter().map(|e| e.seq).collect::<Vec<_>>(),
            seqs(4..=8),
            "the consumer furthest behind still has everything it needs"
        );
        let many = store.pending_outbox(t, "many", "v", 1).await.unwrap();
        assert_eq!((many.count, many.entries[0].seq), (1_000, 11_001));
        assert_eq!(store.apply_outbox_retention().await.unwrap(), 0);
        assert_eq!(
            store.append_outbox(t, "s", &[json!(9)]).await.unwrap(),
            9..10,
            "seqs go on after retention"
        );
    }
);

on_both_backends!(
    the_housekeeping_job_applies_outbox_retention,
    |backend| async move {
        // The test configuration ticks housekeeping every second.
        let app = TestApp::spawn(backend).await;
        let user = app.signup("Outbox").await;
        let tenant = app.store().tenant_by_name(&user.tenant).await.unwrap().id;
        let store = app.store();
        store
            .ensure_outbox_consumer(&tenant, "sync", STREAM, StartAt::Beginning)
            .await
            .unwrap();
        store
            .append_outbox(&tenant, STREAM, &[json!(1), json!(2), json!(3)])
            .await
            .unwrap();
        store
            .advance_outbox(&tenant, "sync", STREAM, 2)
            .await
            .unwrap();

        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let kept = store.outbox_streams(&tenant).await.unwrap()[0].kept;
            if kept == 1 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "retention never ran: {kept} kept"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let pending = store
            .pending_outbox(&tenant, "sync", STREAM, 10)
            .await
            .unwrap();
        assert_eq!(
            pending.entries.iter().map(|e| e.seq).collect::<Vec<_>>(),
            [3]
        );
    }
);
