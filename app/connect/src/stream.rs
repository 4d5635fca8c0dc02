//! Streaming a command's result in batches: the pieces every driver shares.
//!
//! A driver turns a rendered statement into a stream of [`Batch`]es: its rows
//! go straight into the batch's JSON text through a [`BatchWriter`] (dotted
//! aliases nested, see [`crate::nest_dotted`]), with no object per row where
//! the driver can write values directly. [`batched`] applies the query timeout
//! to the wait for each batch. [`generate`] lets a driver write its producer as
//! plain async code that owns the pooled connection and borrows it for the
//! driver's own row stream.

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

/// A driver's batches of one statement, in order.
pub(crate) type BatchStream<'a> = BoxStream<'a, Result<Batch, ConnectError>>;

/// The smallest and largest number of rows in one batch.
pub const MIN_BATCH_SIZE: usize = 1;
pub const MAX_BATCH_SIZE: usize = 100_000;

/// Clamps a requested batch size to [`MIN_BATCH_SIZE`]..=[`MAX_BATCH_SIZE`].
pub(crate) fn clamp_batch_size(batch_size: usize) -> usize {
    batch_size.clamp(MIN_BATCH_SIZE, MAX_BATCH_SIZE)
}

/// Rows of one result as JSON text (what a callback POST carries), with the
/// result's columns (alias and cursor sort) and, when asked for, each row's
/// Last Field value.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub columns: ResultColumns,
    /// `[`, then the rows' objects separated by `,`; no closing bracket yet.
    json: Vec<u8>,
    /// Where each row's object ends in `json`.
    ends: Vec<usize>,
    /// Each row's Last Field value as JSON text, one after another (empty
    /// when no Last Field was asked for).
    cursor: Vec<u8>,
    cursor_ends: Vec<usize>,
}

impl Batch {
    fn empty(columns: ResultColumns, capacity: usize, rows: usize) -> Batch {
        let mut json = Vec::with_capacity(capacity.max(1));
        json.push(b'[');
        Batch {
            columns,
            json,
            ends: Vec::with_capacity(rows),
            cursor: Vec::new(),
            cursor_ends: Vec::new(),
        }
    }

    /// A batch of already converted rows (flat aliases; dotted ones are nested
    /// here), with each row's `cursor_field` value.
    pub fn from_rows(
        columns: ResultColumns,
        rows: impl IntoIterator<Item = Map<String, Value>>,
        cursor_field: Option<&str>,
    ) -> Batch {
        let mut writer = BatchWriter::new(MAX_BATCH_SIZE, cursor_field);
        writer.use_columns(columns.clone());
        for row in rows {
            writer.push_row(row);
        }
        writer
            .finish()
            .unwrap_or_else(|| Batch::empty(columns, 0, 0))
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Row `index`'s JSON object.
    pub fn row_json(&self, index: usize) -> &[u8] {
        let start = match index {
            0 => 1,
            _ => self.ends[index - 1] + 1,
        };
        &self.json[start..self.ends[index]]
    }

    /// The rows as JSON objects (for tests and small results).
    pub fn rows(&self) -> Vec<Map<String, Value>> {
        (0..self.len())
            .map(|index| serde_json::from_slice(self.row_json(index)).unwrap_or_default())
            .collect()
    }

    /// Bytes of the whole batch as one JSON array.
    pub fn array_len(&self) -> usize {
        self.json.len() + 1
    }

    /// The whole batch as one JSON array, without copying it.
    pub fn into_array(mut self) -> Vec<u8> {
        self.json.push(b']');
        self.json
    }

    /// Row `index`'s Last Field value as JSON text (`null` when the row has
    /// none); `None` when the stream was not asked for a Last Field or the
    /// result has no column of that name.
    pub fn cursor_json(&self, index: usize) -> Option<&[u8]> {
        let end = *self.cursor_ends.get(index)?;
        let start = match index {
            0 => 0,
            _ => self.cursor_ends[index - 1],
        };
        Some(&self.cursor[start..end])
    }
}

/// Builds a driver's batches row by row: rows are written straight into the
/// batch's JSON text ([`BatchWriter::start_row`] … [`BatchWriter::end_row`]) or
/// pushed as converted objects ([`BatchWriter::push_row`]). A full batch, or
/// the batch before a change of columns, is handed back to be sent.
pub(crate) struct BatchWriter<'f> {
    batch_size: usize,
    cursor_field: Option<&'f str>,
    tracker: ColumnTracker,
    columns: ResultColumns,
    /// The Last Field's position among the current columns.
    cursor_index: Option<usize>,
    batch: Option<Batch>,
    /// The size of the last full batch, to allocate the next one at once.
    last_bytes: usize,
}

impl<'f> BatchWriter<'f> {
    pub(crate) fn new(batch_size: usize, cursor_field: Option<&'f str>) -> Self {
        BatchWriter {
            batch_size: clamp_batch_size(batch_size),
            cursor_field: cursor_field.map(str::trim).filter(|f| !f.is_empty()),
            tracker: ColumnTracker::default(),
            columns: Vec::new().into(),
            cursor_index: None,
            batch: None,
            last_bytes: 0,
        }
    }

    /// Before each row: its column aliases. When they differ from the previous
    /// row's, `describe` builds the new columns, and the batch so far (rows of
    /// the previous result) is handed back. `changed` tells whether they did.
    pub(crate) fn columns<'n>(
        &mut self,
        names: impl ExactSizeIterator<Item = &'n str>,
        describe: impl FnOnce() -> Vec<ResultColumn>,
    ) -> (bool, Option<Batch>) {
        match self.tracker.next(names, describe) {
            None => (false, None),
            Some(columns) => {
                let done = self.finish();
                self.use_columns(columns);
                (true, done)
            }
        }
    }

    fn use_columns(&mut self, columns: ResultColumns) {
        self.cursor_index = self
            .cursor_field
            .and_then(|field| columns.iter().rposition(|c| c.name == field));
        self.columns = columns;
    }

    /// The Last Field's position among the columns, when the result has it.
    pub(crate) fn cursor_index(&self) -> Option<usize> {
        self.cursor_index
    }

    fn batch(&mut self) -> &mut Batch {
        let (columns, capacity, rows) = (&self.columns, self.last_bytes, self.batch_size);
        self.batch
            .get_or_insert_with(|| Batch::empty(columns.clone(), capacity + capacity / 8, rows))
    }

    /// Starts a row: the JSON text to write its object into.
    pub(crate) fn start_row(&mut self) -> &mut Vec<u8> {
        let batch = self.batch();
        if !batch.ends.is_empty() {
            batch.json.push(b',');
        }
        &mut batch.json
    }

    /// The row's Last Field value is `json[start..end]` of the row being written.
    pub(crate) fn cursor_span(&mut self, start: usize, end: usize) {
        let batch = self.batch();
        let Batch {
            json,
            cursor,
            cursor_ends,
            ..
        } = batch;
        cursor.extend_from_slice(&json[start..end]);
        cursor_ends.push(cursor.len());
    }

    /// Ends the row written since [`Self::start_row`]; a full batch comes back.
    pub(crate) fn end_row(&mut self) -> Option<Batch> {
        let (asked, size) = (self.cursor_field.is_some(), self.batch_size);
        let batch = self.batch();
        batch.ends.push(batch.json.len());
        if asked && batch.cursor_ends.len() < batch.ends.len() {
            batch.cursor.extend_from_slice(b"null");
            batch.cursor_ends.push(batch.cursor.len());
        }
        let (rows, bytes) = (batch.ends.len(), batch.json.len());
        if rows < size {
            return None;
        }
        self.last_bytes = bytes;
        self.batch.take()
    }

    /// Adds a converted row (flat aliases; dotted ones are nested here).
    pub(crate) fn push_row(&mut self, row: JsonRow) -> Option<Batch> {
        let row = nest_dotted(row);
        let field = self.cursor_field;
        let batch = self.batch();
        if !batch.ends.is_empty() {
            batch.json.push(b',');
        }
        // Writing a map of JSON values to a Vec cannot fail.
        let _ = serde_json::to_writer(&mut batch.json, &row);
        if let Some(field) = field {
            let value = lookup(&row, field).unwrap_or(&Value::Null);
            let _ = serde_json::to_writer(&mut batch.cursor, value);
            batch.cursor_ends.push(batch.cursor.len());
        }
        self.end_row()
    }

    /// The last batch, when it has rows.
    pub(crate) fn finish(&mut self) -> Option<Batch> {
        self.batch.take().filter(|batch| !batch.is_empty())
    }
}

/// A column by its alias; dotted aliases were nested, so follow the path too.
fn lookup<'v>(row: &'v Map<String, Value>, field: &str) -> Option<&'v Value> {
    if let Some(value) = row.get(field) {
        return Some(value);
    }
    let mut parts = field.split('.');
    let mut current = row.get(parts.next()?)?;
    for part in parts {
        current = current.as_object()?.get(part)?;
    }
    Some(current)
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

/// A converted row, or the conversion failure as a query error naming the column.
pub(crate) fn converted(converted: Result<JsonRow, ConvertError>) -> Result<JsonRow, ConnectError> {
    converted.map_err(|error| ConnectError::Query(error.to_string()))
}

/// Sends `batch` when there is one; `false` when the stream is gone and the
/// producer should stop.
pub(crate) async fn send_batch(
    out: &mut Yielder<Result<Batch, ConnectError>>,
    batch: Option<Batch>,
) -> bool {
    match batch {
        Some(batch) => out.send(Ok(batch)).await,
        None => true,
    }
}

/// Adds a converted row to the writer and sends the batch it fills, or sends
/// the conversion error; `false` when the producer should stop.
pub(crate) async fn push_converted(
    out: &mut Yielder<Result<Batch, ConnectError>>,
    writer: &mut BatchWriter<'_>,
    row: Result<JsonRow, ConvertError>,
) -> bool {
    match converted(row) {
        Ok(row) => {
            let full = writer.push_row(row);
            send_batch(out, full).await
        }
        Err(error) => {
            let _ = out.send(Err(error)).await;
            false
        }
    }
}

/// Applies the query timeout to the wait for each of a driver's batches —
/// the time to the first row and between batches — never the whole stream;
/// past it the stream yields [`ConnectError::Timeout`] and ends. The first
/// error ends the stream too. Either way the driver's stream (and with it its
/// connection) is dropped at once, not when the caller drops this stream.
pub(crate) fn batched<'a>(batches: BatchStream<'a>, timeout: Duration) -> BatchStream<'a> {
    futures::stream::unfold(Some(batches), move |batches| async move {
        let mut batches = batches?;
        let next = within(timeout, "waiting for the next rows", async {
            Ok(batches.next().await)
        })
        .await;
        match next {
            Err(error) | Ok(Some(Err(error))) => Some((Err(error), None)),
            Ok(None) => None,
            Ok(Some(Ok(batch))) => Some((Ok(batch), Some(batches))),
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

    /// A driver over `(columns, row)` items, as the real ones use the writer.
    fn driver(
        items: Vec<Result<(&'static str, JsonRow), ConnectError>>,
        batch_size: usize,
        pause: Duration,
    ) -> BatchStream<'static> {
        generate(move |mut out| async move {
            let mut writer = BatchWriter::new(batch_size, Some("n"));
            for item in items {
                tokio::time::sleep(pause).await;
                let (name, row) = match item {
                    Ok(item) => item,
                    Err(error) => {
                        let _ = out.send(Err(error)).await;
                        return;
                    }
                };
                let (_, done) = writer.columns([name].into_iter(), || columns(name).to_vec());
                if !send_batch(&mut out, done).await {
                    return;
                }
                let full = writer.push_row(row);
                if !send_batch(&mut out, full).await {
                    return;
                }
            }
            let _ = send_batch(&mut out, writer.finish()).await;
        })
    }

    fn rows(count: i64, batch_size: usize) -> BatchStream<'static> {
        let items = (0..count).map(|n| Ok(("n", row(n)))).collect();
        driver(items, batch_size, Duration::ZERO)
    }

    async fn sizes(stream: BatchStream<'_>) -> Vec<usize> {
        stream
            .map(|batch| batch.expect("batch").len())
            .collect()
            .await
    }

    #[tokio::test]
    async fn batches_are_full_but_the_last() {
        let timeout = Duration::from_secs(5);
        assert_eq!(
            sizes(batched(rows(2500, 1000), timeout)).await,
            [1000, 1000, 500]
        );
        assert_eq!(
            sizes(batched(rows(2000, 1000), timeout)).await,
            [1000, 1000]
        );
        assert_eq!(
            sizes(batched(rows(0, 1000), timeout)).await,
            Vec::<usize>::new()
        );
        assert_eq!(sizes(batched(rows(3, 0), timeout)).await, [1, 1, 1]);
    }

    #[tokio::test]
    async fn a_batch_is_the_json_array_of_its_rows_with_their_cursor_values() {
        let batch = batched(rows(3, 10), Duration::from_secs(5))
            .next()
            .await
            .expect("a batch")
            .expect("rows");
        assert_eq!(batch.rows(), [row(0), row(1), row(2)]);
        assert_eq!(batch.row_json(1), b"{\"n\":1}");
        assert_eq!(batch.cursor_json(2), Some(&b"2"[..]));
        assert_eq!(batch.cursor_json(3), None);
        assert_eq!(batch.array_len(), batch.clone().into_array().len());
        assert_eq!(
            batch.into_array(),
            serde_json::to_vec(&[row(0), row(1), row(2)]).unwrap()
        );

        // Dotted aliases nest; the cursor follows them; rows without it give null.
        let mut flat = Map::new();
        flat.insert("a.b".into(), Value::from(7));
        let batch = Batch::from_rows(columns("a.b"), [flat, Map::new()], Some("a.b"));
        assert_eq!(batch.row_json(0), b"{\"a\":{\"b\":7}}");
        assert_eq!(batch.cursor_json(0), Some(&b"7"[..]));
        assert_eq!(batch.cursor_json(1), Some(&b"null"[..]));
        let none = Batch::from_rows(columns("n"), [row(1)], None);
        assert_eq!(none.cursor_json(0), None);
    }

    #[tokio::test]
    async fn an_error_ends_the_stream() {
        let failing = driver(
            vec![
                Ok(("n", row(1))),
                Err(ConnectError::Query("boom".into())),
                Ok(("n", row(2))),
            ],
            10,
            Duration::ZERO,
        );
        let items: Vec<_> = batched(failing, Duration::from_secs(5)).collect().await;
        assert_eq!(items, [Err(ConnectError::Query("boom".into()))]);
    }

    #[tokio::test]
    async fn the_timeout_bounds_each_batch_not_the_stream() {
        // One row every 100 ms: each batch of 2 takes about 200 ms, well
        // within 600 ms; the whole stream takes 800 ms, more than 600 ms.
        let slow = driver(
            (0..8).map(|n| Ok(("n", row(n)))).collect(),
            2,
            Duration::from_millis(100),
        );
        let batches = sizes(batched(slow, Duration::from_millis(600))).await;
        assert_eq!(batches, [2, 2, 2, 2]);

        let stuck = generate(|mut out| async move {
            let mut writer = BatchWriter::new(1, None);
            writer.columns(["n"].into_iter(), || columns("n").to_vec());
            let _ = send_batch(&mut out, writer.push_row(row(0))).await;
            tokio::time::sleep(Duration::from_secs(60)).await;
        });
        let items: Vec<_> = batched(stuck, Duration::from_millis(300)).collect().await;
        assert_eq!(items.len(), 2);
        assert!(
            matches!(items[1], Err(ConnectError::Timeout(_))),
            "{items:?}"
        );
    }

    #[tokio::test]
    async fn batches_carry_their_columns_and_end_when_they_change() {
        let items = vec![
            Ok(("a", row(1))),
            Ok(("a", row(2))),
            Ok(("a", row(3))),
            Ok(("b", row(4))),
        ];
        let batches: Vec<Batch> = batched(driver(items, 2, Duration::ZERO), Duration::from_secs(5))
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
        let error = converted(Err(ConvertError::new("amount", "money", ""))).expect_err("fails");
        assert_eq!(error.category(), "query");
        assert!(error.to_string().contains("\"amount\""), "{error}");
    }
}
