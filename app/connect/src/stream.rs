//! Streaming a command's result in batches: the pieces every driver shares.
//!
//! A driver turns a rendered statement into a stream of converted rows
//! (already nested, see [`crate::nest_dotted`]); [`batched`] groups those rows
//! and applies the query timeout to the wait for each batch. [`generate`] lets
//! a driver write its row producer as plain async code that owns the pooled
//! connection and borrows it for the driver's own row stream.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::channel::mpsc;
use futures::future::BoxFuture;
use futures::stream::{BoxStream, Stream};
use futures::{FutureExt, SinkExt, StreamExt};
use serde_json::{Map, Value};
use sluice_sqltpl::BindValue;

use crate::cursor::{ResultColumn, ResultColumns};
use crate::driver::within;
use crate::error::ConnectError;
use crate::value::{ConvertError, nest_dotted};

/// One converted row, keyed by column alias, dotted aliases nested.
pub(crate) type JsonRow = Map<String, Value>;

/// What a driver's row stream yields: a result's columns before its first
/// row (and again whenever they change), then its rows.
#[derive(Debug, PartialEq)]
pub(crate) enum Item {
    Columns(ResultColumns),
    Row(JsonRow),
}

/// The rows of a statement, one at a time, after their columns.
pub(crate) type RowStream<'a> = BoxStream<'a, Result<Item, ConnectError>>;

/// Rows of one result, with the result's columns (alias and cursor sort).
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub columns: ResultColumns,
    pub rows: Vec<Map<String, Value>>,
}

impl Batch {
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

/// Tracks a result's columns for a driver's row loop: `next` answers the
/// columns to announce when a row's columns differ from the previous row's
/// (the first row, or a later statement's rows in a multi-statement text).
#[derive(Default)]
pub(crate) struct ColumnTracker {
    current: Option<ResultColumns>,
}

impl ColumnTracker {
    /// `names` are the row's column aliases; `describe` builds the columns
    /// only when they changed.
    pub(crate) fn next<'n>(
        &mut self,
        mut names: impl ExactSizeIterator<Item = &'n str>,
        describe: impl FnOnce() -> Vec<ResultColumn>,
    ) -> Option<ResultColumns> {
        if let Some(current) = &self.current
            && current.len() == names.len()
            && current
                .iter()
                .all(|column| names.next() == Some(column.name.as_str()))
        {
            return None;
        }
        let columns: ResultColumns = describe().into();
        self.current = Some(columns.clone());
        Some(columns)
    }
}

/// Sends a row's columns when they changed, then the row; `false` when the
/// stream is gone or the row failed, and the producer should stop.
pub(crate) async fn send_row(
    out: &mut Yielder<Result<Item, ConnectError>>,
    columns: Option<ResultColumns>,
    row: Result<JsonRow, ConnectError>,
) -> bool {
    if let Some(columns) = columns
        && !out.send(Ok(Item::Columns(columns))).await
    {
        return false;
    }
    let failed = row.is_err();
    out.send(row.map(Item::Row)).await && !failed
}

/// The smallest and largest number of rows in one batch.
pub const MIN_BATCH_SIZE: usize = 1;
pub const MAX_BATCH_SIZE: usize = 100_000;

/// Clamps a requested batch size to [`MIN_BATCH_SIZE`]..=[`MAX_BATCH_SIZE`].
pub(crate) fn clamp_batch_size(batch_size: usize) -> usize {
    batch_size.clamp(MIN_BATCH_SIZE, MAX_BATCH_SIZE)
}

/// A converted row, or the conversion failure as a query error naming the column.
pub(crate) fn nested_row(
    converted: Result<JsonRow, ConvertError>,
) -> Result<JsonRow, ConnectError> {
    converted
        .map(nest_dotted)
        .map_err(|error| ConnectError::Query(error.to_string()))
}

/// Groups `rows` into batches of `batch_size` (the last may be smaller; an
/// empty result yields nothing). `timeout` bounds the wait for each batch —
/// the time to the first row and between batches — never the whole stream;
/// past it the stream yields [`ConnectError::Timeout`] and ends. The first
/// error ends the stream too. Either way the row stream (and with it the
/// driver's connection) is dropped at once, not when the caller drops this stream.
///
/// A batch holds rows of one result: when the columns change (a later
/// statement of a SQLite text), the batch ends early and the next one starts
/// with the new columns.
pub(crate) fn batched<'a>(
    rows: RowStream<'a>,
    batch_size: usize,
    timeout: Duration,
) -> BoxStream<'a, Result<Batch, ConnectError>> {
    let batch_size = clamp_batch_size(batch_size);
    let empty: ResultColumns = Vec::new().into();
    futures::stream::unfold(Some((rows, empty)), move |state| async move {
        let (mut rows, mut columns) = state?;
        let mut batch = Vec::with_capacity(batch_size);
        let mut next_columns = None;
        let filled = within(timeout, "waiting for the next rows", async {
            while let Some(item) = rows.next().await {
                match item? {
                    Item::Columns(new) if batch.is_empty() => columns = new,
                    Item::Columns(new) => {
                        next_columns = Some(new);
                        return Ok(true);
                    }
                    Item::Row(row) => {
                        batch.push(row);
                        if batch.len() == batch_size {
                            return Ok(true);
                        }
                    }
                }
            }
            Ok(false)
        })
        .await;
        match filled {
            Err(error) => Some((Err(error), None)),
            Ok(_) if batch.is_empty() => None,
            Ok(more) => {
                let batch = Batch {
                    columns: columns.clone(),
                    rows: batch,
                };
                let columns = next_columns.unwrap_or(columns);
                Some((Ok(batch), more.then_some((rows, columns))))
            }
        }
    })
    .boxed()
}

/// Sends the items of a [`generate`]d stream.
pub(crate) struct Yielder<T> {
    sender: mpsc::Sender<T>,
}

impl<T> Yielder<T> {
    /// Hands `item` to the stream; waits until the consumer has taken the
    /// previous one. `false` when the stream is gone and the producer should stop.
    pub(crate) async fn send(&mut self, item: T) -> bool {
        self.sender.send(item).await.is_ok()
    }
}

/// A stream whose items come from `producer`, an async block that may own a
/// connection and borrow it for as long as it runs (which a `Stream` combinator
/// cannot). The producer runs only while the stream is polled, one item ahead
/// at most, and is dropped with the stream.
pub(crate) fn generate<'a, T, F, Fut>(producer: F) -> BoxStream<'a, T>
where
    T: Send + 'a,
    F: FnOnce(Yielder<T>) -> Fut,
    Fut: Future<Output = ()> + Send + 'a,
{
    let (sender, receiver) = mpsc::channel(0);
    Generated {
        producer: Some(producer(Yielder { sender }).boxed()),
        receiver,
    }
    .boxed()
}

struct Generated<'a, T> {
    producer: Option<BoxFuture<'a, ()>>,
    receiver: mpsc::Receiver<T>,
}

impl<T> Stream for Generated<'_, T> {
    type Item = T;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        loop {
            if let Poll::Ready(item) = self.receiver.poll_next_unpin(cx) {
                // `None`: the producer finished and dropped its sender.
                return Poll::Ready(item);
            }
            let Some(producer) = self.producer.as_mut() else {
                // Only reached if a sender outlived its producer; the receiver
                // has registered this task for its next item or its end.
                return Poll::Pending;
            };
            // When the producer finishes, its sender goes with it and the
            // receiver, polled again, yields what is left and then `None`.
            match producer.poll_unpin(cx) {
                Poll::Ready(()) => self.producer = None,
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

/// A stream that yields `error` once.
pub(crate) fn failed<'a, T: Send + 'a>(
    error: ConnectError,
) -> BoxStream<'a, Result<T, ConnectError>> {
    futures::stream::once(async move { Err(error) }).boxed()
}

/// Binds `binds` in order to a sqlx query (MySQL/MariaDB and SQLite; the
/// PostgreSQL renderings carry none).
pub(crate) fn bind_all<'q, DB>(
    mut query: sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments>,
    binds: &[BindValue],
) -> sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments>
where
    DB: sqlx::Database,
    bool: for<'e> sqlx::Encode<'e, DB> + sqlx::Type<DB>,
    i64: for<'e> sqlx::Encode<'e, DB> + sqlx::Type<DB>,
    f64: for<'e> sqlx::Encode<'e, DB> + sqlx::Type<DB>,
    String: for<'e> sqlx::Encode<'e, DB> + sqlx::Type<DB>,
    Option<String>: for<'e> sqlx::Encode<'e, DB> + sqlx::Type<DB>,
{
    for value in binds {
        query = match value {
            BindValue::Null => query.bind(None::<String>),
            BindValue::Bool(flag) => query.bind(*flag),
            BindValue::Int(int) => query.bind(*int),
            BindValue::Float(float) => query.bind(*float),
            BindValue::Text(text) => query.bind(text.clone()),
        };
    }
    query
}

/// A pooled sqlx connection held by a stream. Unless the stream read its
/// whole result and [`Held::finish`] was called, the connection is closed
/// instead of going back to the pool: it may still have unread rows (the pool
/// would read them all before reuse), a running statement, or session
/// settings the stream changed.
pub(crate) struct Held<DB: sqlx::Database> {
    pub(crate) connection: sqlx::pool::PoolConnection<DB>,
    finished: bool,
}

impl<DB: sqlx::Database> Held<DB> {
    pub(crate) fn new(connection: sqlx::pool::PoolConnection<DB>) -> Self {
        Held {
            connection,
            finished: false,
        }
    }

    /// The connection is clean again and may be reused.
    pub(crate) fn finish(mut self) {
        self.finished = true;
    }
}

impl<DB: sqlx::Database> Drop for Held<DB> {
    fn drop(&mut self) {
        if !self.finished {
            self.connection.close_on_drop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(n: i64) -> JsonRow {
        let mut map = Map::new();
        map.insert("n".into(), Value::from(n));
        map
    }

    fn columns(name: &str) -> ResultColumns {
        vec![ResultColumn {
            name: name.into(),
            sort: crate::CursorSort::Integer,
        }]
        .into()
    }

    fn rows(count: i64) -> RowStream<'static> {
        let head = futures::stream::iter([Ok(Item::Columns(columns("n")))]);
        head.chain(futures::stream::iter(
            (0..count).map(|n| Ok(Item::Row(row(n)))),
        ))
        .boxed()
    }

    async fn sizes(stream: BoxStream<'_, Result<Batch, ConnectError>>) -> Vec<usize> {
        stream
            .map(|batch| batch.expect("batch").len())
            .collect()
            .await
    }

    #[tokio::test]
    async fn batches_are_full_but_the_last() {
        let timeout = Duration::from_secs(5);
        assert_eq!(
            sizes(batched(rows(2500), 1000, timeout)).await,
            [1000, 1000, 500]
        );
        assert_eq!(
            sizes(batched(rows(2000), 1000, timeout)).await,
            [1000, 1000]
        );
        assert_eq!(
            sizes(batched(rows(0), 1000, timeout)).await,
            Vec::<usize>::new()
        );
        assert_eq!(sizes(batched(rows(3), 0, timeout)).await, [1, 1, 1]);
    }

    #[tokio::test]
    async fn an_error_ends_the_stream() {
        let failing = futures::stream::iter(vec![
            Ok(Item::Row(row(1))),
            Err(ConnectError::Query("boom".into())),
            Ok(Item::Row(row(2))),
        ])
        .boxed();
        let items: Vec<_> = batched(failing, 10, Duration::from_secs(5)).collect().await;
        assert_eq!(items, [Err(ConnectError::Query("boom".into()))]);
    }

    #[tokio::test]
    async fn the_timeout_bounds_each_batch_not_the_stream() {
        // One row every 100 ms: each batch of 2 takes about 200 ms, well
        // within 600 ms; the whole stream takes 800 ms, more than 600 ms.
        let slow = generate(|mut out| async move {
            for n in 0..8 {
                tokio::time::sleep(Duration::from_millis(100)).await;
                if !out.send(Ok(Item::Row(row(n)))).await {
                    return;
                }
            }
        });
        let batches = sizes(batched(slow, 2, Duration::from_millis(600))).await;
        assert_eq!(batches, [2, 2, 2, 2]);

        let stuck = generate(|mut out| async move {
            let _ = out.send(Ok(Item::Row(row(0)))).await;
            tokio::time::sleep(Duration::from_secs(60)).await;
        });
        let items: Vec<_> = batched(stuck, 2, Duration::from_millis(300))
            .collect()
            .await;
        assert_eq!(items.len(), 1);
        assert!(
            matches!(items[0], Err(ConnectError::Timeout(_))),
            "{items:?}"
        );
    }

    #[tokio::test]
    async fn batches_carry_their_columns_and_end_when_they_change() {
        let items = vec![
            Ok(Item::Columns(columns("a"))),
            Ok(Item::Row(row(1))),
            Ok(Item::Row(row(2))),
            Ok(Item::Row(row(3))),
            Ok(Item::Columns(columns("b"))),
            Ok(Item::Row(row(4))),
        ];
        let batches: Vec<Batch> = batched(
            futures::stream::iter(items).boxed(),
            2,
            Duration::from_secs(5),
        )
        .map(|batch| batch.expect("batch"))
        .collect()
        .await;
        let shape: Vec<(String, usize)> = batches
            .iter()
            .map(|b| (b.columns[0].name.clone(), b.len()))
            .collect();
        assert_eq!(shape, [("a".into(), 2), ("a".into(), 1), ("b".into(), 1)]);

        let mut tracker = ColumnTracker::default();
        let describe = || columns("a").to_vec();
        assert!(tracker.next(["a"].into_iter(), describe).is_some());
        assert!(tracker.next(["a"].into_iter(), describe).is_none());
        assert!(tracker.next(["b"].into_iter(), describe).is_some());
        assert!(tracker.next(["a", "c"].into_iter(), describe).is_some());
    }

    #[tokio::test]
    async fn generated_streams_end_with_their_producer_and_stop_it_when_dropped() {
        let items: Vec<i64> = generate(|mut out| async move {
            for n in 0..5 {
                assert!(out.send(n).await);
            }
        })
        .collect()
        .await;
        assert_eq!(items, [0, 1, 2, 3, 4]);

        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        let mut stream = generate(move |mut out| async move {
            let _guard = done_tx;
            let mut n = 0;
            while out.send(n).await {
                n += 1;
            }
        });
        assert_eq!(stream.next().await, Some(0));
        drop(stream);
        // The producer (and what it owned) went with the stream.
        assert!(done_rx.await.is_err());
    }

    #[test]
    fn conversion_errors_become_query_errors_naming_the_column() {
        let error = nested_row(Err(ConvertError::new("amount", "money", ""))).expect_err("fails");
        assert_eq!(error.category(), "query");
        assert!(error.to_string().contains("\"amount\""), "{error}");
        let mut flat = Map::new();
        flat.insert("a.b".into(), Value::from(1));
        assert_eq!(
            Value::Object(nested_row(Ok(flat)).expect("row")),
            serde_json::json!({"a": {"b": 1}})
        );
    }
}
