//! The outbox: append-only entries per (tenant, stream), written in the
//! transaction of the change they describe, and read by named consumers that each
//! keep their own position (the last seq they applied). A consumer's position
//! moves only forward and only after its effect committed, so delivery is at
//! least once and in seq order.
//!
//! Seq numbers come from the stream's row in `outbox_streams`: an append updates
//! it, so appends to one stream wait for each other until commit and, on
//! PostgreSQL too, seq order is commit order. A reader that has seen entry `n`
//! has therefore seen every entry below `n`, and never skips one that commits
//! late. The row stays locked until the appending transaction ends: append to one
//! stream per transaction (or to several in name order), and as late in the
//! transaction as possible.
//!
//! Store functions that append inside their own transaction use
//! [`append_outbox!`](crate::outbox::append_outbox) and then, once committed,
//! [`Store::outbox_appended`] so batchers in this process wake at once.

use chrono::NaiveDateTime;
use diesel::dsl::{count_star, min};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex, Weak};
use tokio::sync::Notify;

use crate::error::OptionalExt;
use crate::ids::TenantId;
use crate::schema::{outbox_consumers, outbox_entries, outbox_streams};
use crate::{Store, StoreError, in_transaction, now, with_conn};

/// Rows inserted per statement (SQLite binds at most 32,766 values).
pub(crate) const INSERT_CHUNK: usize = 1_000;

/// Seqs removed per retention statement, so one pass never holds the writer long.
const RETENTION_CHUNK: i64 = 5_000;

/// Appends `$payloads` (`&[serde_json::Value]`) to `$stream` (`&str`) of `$tenant`
/// (`&TenantId`) on `$c`, the connection of the caller's transaction, so the
/// entries commit (or roll back) with the caller's change. Evaluates to
/// `Result<Range<i64>, StoreError>`: the seqs the entries got. Locks the stream's
/// row until the transaction ends (see the module docs); after the commit, call
/// [`Store::outbox_appended`].
macro_rules! append_outbox {
    ($c:expr, $tenant:expr, $stream:expr, $payloads:expr) => {
        async {
            use ::diesel::prelude::*;
            use ::diesel_async::RunQueryDsl;
            use $crate::schema::outbox_streams;
            let tenant: &$crate::ids::TenantId = $tenant;
            let stream: &str = $stream;
            let payloads: &[::serde_json::Value] = $payloads;
            let count = payloads.len() as i64;
            if count == 0 {
                return Ok::<::std::ops::Range<i64>, $crate::StoreError>(0..0);
            }
            // Inserts the stream's row if missing, else bumps it: either way the
            // row is this transaction's until it ends.
            let end: i64 = ::diesel::insert_into(outbox_streams::table)
                .values((
                    outbox_streams::tenant_id.eq(tenant.as_str()),
                    outbox_streams::stream.eq(stream),
                    outbox_streams::next_seq.eq(count + 1),
                ))
                .on_conflict((outbox_streams::tenant_id, outbox_streams::stream))
                .do_update()
                .set(outbox_streams::next_seq.eq(outbox_streams::next_seq + count))
                .returning(outbox_streams::next_seq)
                .get_result(&mut *$c)
                .await
                .map_err($crate::StoreError::parent_gone("tenant"))?;
            let first = end - count;
            let created_at = $crate::now();
            for (chunk_index, chunk) in payloads.chunks($crate::outbox::INSERT_CHUNK).enumerate() {
                let base = first + (chunk_index * $crate::outbox::INSERT_CHUNK) as i64;
                let rows = $crate::outbox::new_entries(tenant, stream, base, chunk, created_at);
                $crate::outbox::InsertEntries::insert_entries(&mut *$c, rows).await?;
            }
            Ok(first..end)
        }
        .await
    };
}
pub(crate) use append_outbox;

/// Moves `$consumer`'s position on `$stream` of `$tenant` forward to `$to` (the
/// seq of the last entry whose effect committed) on `$c`, so it can commit with
/// an effect in the control plane. Evaluates to `Result<bool, StoreError>`:
/// `false` when the position was already at or past `$to` (a replayed advance
/// never rewinds); [`StoreError::Conflict`] when the stream has no entry `$to`
/// yet; not found for an unknown consumer.
macro_rules! advance_outbox {
    ($c:expr, $tenant:expr, $consumer:expr, $stream:expr, $to:expr) => {
        async {
            use ::diesel::prelude::*;
            use ::diesel_async::RunQueryDsl;
            use $crate::error::OptionalExt;
            use $crate::schema::{outbox_consumers, outbox_streams};
            let tenant: &$crate::ids::TenantId = $tenant;
            let consumer: &str = $consumer;
            let stream: &str = $stream;
            let to: i64 = $to;
            let written = outbox_streams::table
                .filter(outbox_streams::tenant_id.eq(tenant.as_str()))
                .filter(outbox_streams::stream.eq(stream))
                .filter(outbox_streams::next_seq.gt(to));
            let moved = ::diesel::update(
                outbox_consumers::table
                    .filter(outbox_consumers::tenant_id.eq(tenant.as_str()))
                    .filter(outbox_consumers::consumer.eq(consumer))
                    .filter(outbox_consumers::stream.eq(stream))
                    .filter(outbox_consumers::position.lt(to))
                    .filter(::diesel::dsl::exists(written)),
            )
            .set((
                outbox_consumers::position.eq(to),
                outbox_consumers::updated_at.eq($crate::now()),
            ))
            .execute(&mut *$c)
            .await?;
            if moved > 0 {
                return Ok::<bool, $crate::StoreError>(true);
            }
            let position: i64 = outbox_consumers::table
                .filter(outbox_consumers::tenant_id.eq(tenant.as_str()))
                .filter(outbox_consumers::consumer.eq(consumer))
                .filter(outbox_consumers::stream.eq(stream))
                .select(outbox_consumers::position)
                .first(&mut *$c)
                .await
                .or_not_found("outbox consumer")?;
            if position >= to {
                return Ok(false);
            }
            Err($crate::StoreError::Conflict {
                field: "position",
                message: format!("cannot advance to {to}: stream {stream:?} has no entry {to} yet"),
            })
        }
        .await
    };
}
pub(crate) use advance_outbox;

/// Creates `$consumer` (`&str`) of `$stream` (`&str`) of `$tenant` starting at
/// `$start` ([`StartAt`]), paused when `$paused`, on `$c`, the connection of the
/// caller's transaction; leaves an existing one as it is (keeping its position).
/// Reads the stream's end without locking its row, so it never waits on an
/// append: entries that commit after the read are the consumer's to apply.
/// Evaluates to `Result<(), StoreError>`.
macro_rules! ensure_outbox_consumer {
    ($c:expr, $tenant:expr, $consumer:expr, $stream:expr, $start:expr, $paused:expr) => {
        async {
            use ::diesel::prelude::*;
            use ::diesel_async::RunQueryDsl;
            use $crate::schema::{outbox_consumers, outbox_streams};
            let tenant: &$crate::ids::TenantId = $tenant;
            let consumer: &str = $consumer;
            let stream: &str = $stream;
            let start: $crate::outbox::StartAt = $start;
            let paused: bool = $paused;
            ::diesel::insert_into(outbox_streams::table)
                .values((
                    outbox_streams::tenant_id.eq(tenant.as_str()),
                    outbox_streams::stream.eq(stream),
                    outbox_streams::next_seq.eq(1),
                ))
                .on_conflict((outbox_streams::tenant_id, outbox_streams::stream))
                .do_nothing()
                .execute(&mut *$c)
                .await
                .map_err($crate::StoreError::parent_gone("tenant"))?;
            let next_seq: i64 = outbox_streams::table
                .filter(outbox_streams::tenant_id.eq(tenant.as_str()))
                .filter(outbox_streams::stream.eq(stream))
                .select(outbox_streams::next_seq)
                .first(&mut *$c)
                .await?;
            let position = match start {
                $crate::outbox::StartAt::Beginning => 0,
                $crate::outbox::StartAt::End => next_seq - 1,
            };
            ::diesel::insert_into(outbox_consumers::table)
                .values((
                    outbox_consumers::tenant_id.eq(tenant.as_str()),
                    outbox_consumers::consumer.eq(consumer),
                    outbox_consumers::stream.eq(stream),
                    outbox_consumers::position.eq(position),
                    outbox_consumers::paused.eq(paused),
                    outbox_consumers::updated_at.eq($crate::now()),
                ))
                .on_conflict((
                    outbox_consumers::tenant_id,
                    outbox_consumers::consumer,
                    outbox_consumers::stream,
                ))
                .do_nothing()
                .execute(&mut *$c)
                .await?;
            Ok::<(), $crate::StoreError>(())
        }
        .await
    };
}
pub(crate) use ensure_outbox_consumer;

/// Where a new consumer starts reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    /// Every entry still kept (a segment sync that replays the history).
    Beginning,
    /// Only entries committed after the consumer was created (a segment sync that
    /// exported the current members itself).
    End,
}

/// An entry as inserted ([`append_outbox!`]); never uses column defaults, so
/// SQLite can take many in one statement.
#[derive(Insertable)]
#[diesel(table_name = outbox_entries, treat_none_as_default_value = false)]
pub(crate) struct NewEntry<'a> {
    tenant_id: &'a str,
    stream: &'a str,
    seq: i64,
    payload: String,
    created_at: NaiveDateTime,
}

/// `payloads` as entries numbered from `first`.
pub(crate) fn new_entries<'a>(
    tenant: &'a TenantId,
    stream: &'a str,
    first: i64,
    payloads: &[serde_json::Value],
    created_at: NaiveDateTime,
) -> Vec<NewEntry<'a>> {
    payloads
        .iter()
        .zip(first..)
        .map(|(payload, seq)| NewEntry {
            tenant_id: tenant.as_str(),
            stream,
            seq,
            payload: payload.to_string(),
            created_at,
        })
        .collect()
}

/// Inserts entries the way each backend does it fastest.
pub(crate) trait InsertEntries {
    fn insert_entries(
        &mut self,
        rows: Vec<NewEntry<'_>>,
    ) -> impl std::future::Future<Output = QueryResult<()>> + Send;
}

impl InsertEntries for diesel_async::AsyncPgConnection {
    /// One statement for all of them.
    async fn insert_entries(&mut self, rows: Vec<NewEntry<'_>>) -> QueryResult<()> {
        diesel::insert_into(outbox_entries::table)
            .values(rows)
            .execute(self)
            .await
            .map(drop)
    }
}

impl InsertEntries for crate::db::SqliteConn {
    /// One at a time: diesel batches SQLite inserts only on its own synchronous
    /// connection, and in-process statements cost no round trip.
    async fn insert_entries(&mut self, rows: Vec<NewEntry<'_>>) -> QueryResult<()> {
        for row in rows {
            diesel::insert_into(outbox_entries::table)
                .values(row)
                .execute(self)
                .await?;
        }
        Ok(())
    }
}

/// One entry, as a consumer receives it.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEntry {
    pub seq: i64,
    pub payload: serde_json::Value,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = outbox_consumers)]
struct ConsumerRow {
    consumer: String,
    stream: String,
    position: i64,
    paused: bool,
    updated_at: NaiveDateTime,
}

/// A consumer of one stream and where it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxConsumer {
    pub consumer: String,
    pub stream: String,
    /// The seq of the last entry it applied (0: none yet).
    pub position: i64,
    pub paused: bool,
    pub updated_at: NaiveDateTime,
}

impl From<ConsumerRow> for OutboxConsumer {
    fn from(r: ConsumerRow) -> Self {
        Self {
            consumer: r.consumer,
            stream: r.stream,
            position: r.position,
            paused: r.paused,
            updated_at: r.updated_at,
        }
    }
}

/// What a consumer has yet to apply.
#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    pub position: i64,
    pub paused: bool,
    /// Entries after the position (also while paused).
    pub count: i64,
    /// When the oldest of them was appended (`None` when paused or none).
    pub oldest_at: Option<NaiveDateTime>,
    /// The first of them in seq order, at most the limit asked for; none while paused.
    pub entries: Vec<OutboxEntry>,
}

/// A stream and how far behind each of its consumers is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamLag {
    pub stream: String,
    /// The seq of the last entry ever appended (0: none).
    pub last_seq: i64,
    /// Entries still stored (not yet removed by retention).
    pub kept: i64,
    pub consumers: Vec<ConsumerLag>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerLag {
    pub consumer: String,
    pub position: i64,
    pub paused: bool,
    /// Entries appended that it has not applied.
    pub lag: i64,
}

/// In-process wake-ups per (tenant, stream): appends notify them after commit, so
/// a batcher in this process flushes at once instead of at its next poll.
#[derive(Clone, Default)]
pub(crate) struct OutboxSignals(Arc<Mutex<SignalMap>>);

/// Waited-on signals by (tenant id, stream); dropped once nobody waits.
type SignalMap = HashMap<(String, String), Weak<Notify>>;

impl OutboxSignals {
    fn subscribe(&self, tenant: &TenantId, stream: &str) -> Arc<Notify> {
        let mut signals = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let key = (tenant.as_str().to_string(), stream.to_string());
        if let Some(signal) = signals.get(&key).and_then(Weak::upgrade) {
            return signal;
        }
        // Forget streams nobody waits on any more before adding one.
        signals.retain(|_, signal| signal.strong_count() > 0);
        let signal = Arc::new(Notify::new());
        signals.insert(key, Arc::downgrade(&signal));
        signal
    }

    fn notify(&self, tenant: &TenantId, stream: &str) {
        let signal = {
            let signals = self.0.lock().unwrap_or_else(|p| p.into_inner());
            signals
                .get(&(tenant.as_str().to_string(), stream.to_string()))
                .and_then(Weak::upgrade)
        };
        if let Some(signal) = signal {
            signal.notify_waiters();
        }
    }
}

fn entry(
    stream: &str,
    seq: i64,
    payload: &str,
    created_at: NaiveDateTime,
) -> Result<OutboxEntry, StoreError> {
    let payload = serde_json::from_str(payload).map_err(|_| StoreError::Corrupt {
        what: "outbox entry",
        value: format!("{stream}#{seq}"),
    })?;
    Ok(OutboxEntry {
        seq,
        payload,
        created_at,
    })
}

impl Store {
    /// Appends `payloads` to `stream` in a transaction of its own; returns the seqs
    /// they got. (Changes that must commit with their entries use
    /// [`append_outbox!`] in their own transaction instead.)
    pub async fn append_outbox(
        &self,
        tenant: &TenantId,
        stream: &str,
        payloads: &[serde_json::Value],
    ) -> Result<Range<i64>, StoreError> {
        let mut conn = self.write().await?;
        let seqs =
            in_transaction!(&mut conn, c => self::append_outbox!(c, tenant, stream, payloads))?;
        drop(conn);
        self.outbox_appended(tenant, stream);
        Ok(seqs)
    }

    /// Wakes this process's batchers of `stream`: call after a transaction that
    /// appended to it committed.
    pub fn outbox_appended(&self, tenant: &TenantId, stream: &str) {
        self.outbox_signals.notify(tenant, stream);
    }

    /// What wakes a batcher of `stream` in this process when something is appended
    /// (or a consumer resumed). Wait with `Notified::enable` before reading, so a
    /// wake-up between the read and the wait is not lost.
    pub fn outbox_signal(&self, tenant: &TenantId, stream: &str) -> Arc<Notify> {
        self.outbox_signals.subscribe(tenant, stream)
    }

    /// Creates `consumer` of `stream` starting at `start`, or returns it as it is
    /// (keeping its position) if it exists.
    pub async fn ensure_outbox_consumer(
        &self,
        tenant: &TenantId,
        consumer: &str,
        stream: &str,
        start: StartAt,
    ) -> Result<OutboxConsumer, StoreError> {
        let mut conn = self.write().await?;
        let row: ConsumerRow = in_transaction!(&mut conn, c => {
            self::ensure_outbox_consumer!(c, tenant, consumer, stream, start, false)?;
            Ok(consumer_query(tenant, consumer, stream)
                .select(ConsumerRow::as_select())
                .first(c)
                .await?)
        })?;
        Ok(row.into())
    }

    pub async fn outbox_consumer(
        &self,
        tenant: &TenantId,
        consumer: &str,
        stream: &str,
    ) -> Result<OutboxConsumer, StoreError> {
        let mut conn = self.read().await?;
        let row: ConsumerRow = with_conn!(&mut conn, c => consumer_query(tenant, consumer, stream)
            .select(ConsumerRow::as_select())
            .first(c)
            .await)
        .or_not_found("outbox consumer")?;
        Ok(row.into())
    }

    /// The entries `consumer` has yet to apply: at most `limit` (at least 1) of
    /// them in seq order, with how many there are and when the oldest was appended.
    pub async fn pending_outbox(
        &self,
        tenant: &TenantId,
        consumer: &str,
        stream: &str,
        limit: i64,
    ) -> Result<Pending, StoreError> {
        let mut conn = self.read().await?;
        let (state, count, rows) = with_conn!(&mut conn, c => async {
            let state: ConsumerRow = consumer_query(tenant, consumer, stream)
                .select(ConsumerRow::as_select())
                .first(&mut *c)
                .await
                .or_not_found("outbox consumer")?;
            let after = outbox_entries::table
                .filter(outbox_entries::tenant_id.eq(tenant.as_str()))
                .filter(outbox_entries::stream.eq(stream))
                .filter(outbox_entries::seq.gt(state.position));
            let count: i64 = after.count().get_result(&mut *c).await?;
            let rows: Vec<(i64, String, NaiveDateTime)> = if state.paused {
                Vec::new()
            } else {
                after
                    .order(outbox_entries::seq.asc())
                    .limit(limit.max(1))
                    .select((
                        outbox_entries::seq,
                        outbox_entries::payload,
                        outbox_entries::created_at,
                    ))
                    .load(&mut *c)
                    .await?
            };
            Ok::<_, StoreError>((state, count, rows))
        }
        .await)?;
        let entries = rows
            .iter()
            .map(|(seq, payload, at)| entry(stream, *seq, payload, *at))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Pending {
            position: state.position,
            paused: state.paused,
            // Entries may have committed between the two reads.
            count: count.max(entries.len() as i64),
            oldest_at: entries.as_slice().first().map(|e| e.created_at),
            entries,
        })
    }

    /// Moves `consumer`'s position forward to `to_seq` after an effect outside
    /// the control plane committed (see [`advance_outbox!`] for the rules).
    pub async fn advance_outbox(
        &self,
        tenant: &TenantId,
        consumer: &str,
        stream: &str,
        to_seq: i64,
    ) -> Result<bool, StoreError> {
        let mut conn = self.write().await?;
        in_transaction!(&mut conn, c => self::advance_outbox!(c, tenant, consumer, stream, to_seq))
    }

    /// A paused consumer is handed nothing and keeps its position.
    pub async fn pause_outbox_consumer(
        &self,
        tenant: &TenantId,
        consumer: &str,
        stream: &str,
    ) -> Result<(), StoreError> {
        self.set_outbox_paused(tenant, consumer, stream, true).await
    }

    /// Resumes a paused consumer where it stopped.
    pub async fn resume_outbox_consumer(
        &self,
        tenant: &TenantId,
        consumer: &str,
        stream: &str,
    ) -> Result<(), StoreError> {
        self.set_outbox_paused(tenant, consumer, stream, false)
            .await?;
        self.outbox_appended(tenant, stream);
        Ok(())
    }

    async fn set_outbox_paused(
        &self,
        tenant: &TenantId,
        consumer: &str,
        stream: &str,
        paused: bool,
    ) -> Result<(), StoreError> {
        let mut conn = self.write().await?;
        let changed = with_conn!(&mut conn, c => diesel::update(consumer_query(tenant, consumer, stream))
            .set((
                outbox_consumers::paused.eq(paused),
                outbox_consumers::updated_at.eq(now()),
            ))
            .execute(c)
            .await)?;
        if changed == 0 {
            return Err(StoreError::not_found("outbox consumer"));
        }
        Ok(())
    }

    /// Removes a consumer; entries only it had yet to apply become removable.
    pub async fn delete_outbox_consumer(
        &self,
        tenant: &TenantId,
        consumer: &str,
        stream: &str,
    ) -> Result<(), StoreError> {
        let mut conn = self.write().await?;
        let removed = with_conn!(&mut conn, c => diesel::delete(consumer_query(tenant, consumer, stream))
            .execute(c)
            .await)?;
        if removed == 0 {
            return Err(StoreError::not_found("outbox consumer"));
        }
        Ok(())
    }

    /// The tenant's streams by name, each with its consumers' lag.
    pub async fn outbox_streams(&self, tenant: &TenantId) -> Result<Vec<StreamLag>, StoreError> {
        let mut conn = self.read().await?;
        let (streams, kept, consumers) = with_conn!(&mut conn, c => async {
            let streams: Vec<(String, i64)> = outbox_streams::table
                .filter(outbox_streams::tenant_id.eq(tenant.as_str()))
                .order(outbox_streams::stream.asc())
                .select((outbox_streams::stream, outbox_streams::next_seq))
                .load(&mut *c)
                .await?;
            let kept: Vec<(String, i64)> = outbox_entries::table
                .filter(outbox_entries::tenant_id.eq(tenant.as_str()))
                .group_by(outbox_entries::stream)
                .select((outbox_entries::stream, count_star()))
                .load(&mut *c)
                .await?;
            let consumers: Vec<ConsumerRow> = outbox_consumers::table
                .filter(outbox_consumers::tenant_id.eq(tenant.as_str()))
                .order(outbox_consumers::consumer.asc())
                .select(ConsumerRow::as_select())
                .load(&mut *c)
                .await?;
            Ok::<_, StoreError>((streams, kept, consumers))
        }
        .await)?;
        let kept: HashMap<String, i64> = kept.into_iter().collect();
        Ok(streams
            .into_iter()
            .map(|(stream, next_seq)| {
                let last_seq = next_seq - 1;
                StreamLag {
                    kept: kept.get(&stream).copied().unwrap_or(0),
                    consumers: consumers
                        .iter()
                        .filter(|c| c.stream == stream)
                        .map(|c| ConsumerLag {
                            consumer: c.consumer.clone(),
                            position: c.position,
                            paused: c.paused,
                            lag: (last_seq - c.position).max(0),
                        })
                        .collect(),
                    stream,
                    last_seq,
                }
            })
            .collect())
    }

    /// Removes entries that every consumer of their stream has applied (all
    /// entries of a stream without consumers: register a consumer before the
    /// entries it must see). Returns how many.
    pub async fn apply_outbox_retention(&self) -> Result<usize, StoreError> {
        let mut conn = self.read().await?;
        let streams: Vec<(String, String, Option<i64>)> = with_conn!(&mut conn, c => outbox_entries::table
            .group_by((outbox_entries::tenant_id, outbox_entries::stream))
            .select((outbox_entries::tenant_id, outbox_entries::stream, min(outbox_entries::seq)))
            .load(c)
            .await)?;
        drop(conn);
        let mut removed = 0;
        for (tenant, stream, first) in streams {
            let Some(mut from) = first else { continue };
            loop {
                let through = from + RETENTION_CHUNK - 1;
                let chunk = self
                    .remove_applied_entries(&tenant, &stream, through)
                    .await?;
                removed += chunk;
                // Entries are removed from the lowest seq up, without gaps: a short
                // chunk means a consumer (or the stream's end) stopped it.
                if chunk < RETENTION_CHUNK as usize {
                    break;
                }
                from = through + 1;
            }
        }
        Ok(removed)
    }

    /// Removes the stream's entries up to `through` that no consumer still needs,
    /// in one statement, so a consumer created meanwhile is either seen or was
    /// created after the check.
    async fn remove_applied_entries(
        &self,
        tenant: &str,
        stream: &str,
        through: i64,
    ) -> Result<usize, StoreError> {
        let still_needed = outbox_consumers::table
            .filter(outbox_consumers::tenant_id.eq(outbox_entries::tenant_id))
            .filter(outbox_consumers::stream.eq(outbox_entries::stream))
            .filter(outbox_consumers::position.lt(outbox_entries::seq));
        let mut conn = self.write().await?;
        Ok(with_conn!(&mut conn, c => diesel::delete(
            outbox_entries::table
                .filter(outbox_entries::tenant_id.eq(tenant))
                .filter(outbox_entries::stream.eq(stream))
                .filter(outbox_entries::seq.le(through))
                .filter(diesel::dsl::not(diesel::dsl::exists(still_needed))),
        )
        .execute(c)
        .await)?)
    }
}

/// One consumer of one stream.
type ConsumerQuery<'a> = diesel::dsl::Filter<
    diesel::dsl::Filter<
        diesel::dsl::Filter<
            outbox_consumers::table,
            diesel::dsl::Eq<outbox_consumers::tenant_id, &'a str>,
        >,
        diesel::dsl::Eq<outbox_consumers::consumer, &'a str>,
    >,
    diesel::dsl::Eq<outbox_consumers::stream, &'a str>,
>;

fn consumer_query<'a>(
    tenant: &'a TenantId,
    consumer: &'a str,
    stream: &'a str,
) -> ConsumerQuery<'a> {
    outbox_consumers::table
        .filter(outbox_consumers::tenant_id.eq(tenant.as_str()))
        .filter(outbox_consumers::consumer.eq(consumer))
        .filter(outbox_consumers::stream.eq(stream))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    async fn store_with_tenant(dir: &tempfile::TempDir) -> (Store, TenantId) {
        let location = crate::DatabaseLocation::Sqlite(dir.path().join("store.db"));
        let store = Store::open(
            location,
            crate::SecretKey::from_material(b"outbox tests"),
            2,
        )
        .await
        .expect("store");
        let tenant = TenantId::generate();
        let mut conn = store.write().await.unwrap();
        with_conn!(&mut conn, c => diesel::insert_into(crate::schema::tenants::table)
            .values((
                crate::schema::tenants::id.eq(tenant.as_str()),
                crate::schema::tenants::name.eq(tenant.as_str()),
                crate::schema::tenants::created_at.eq(now()),
            ))
            .execute(c)
            .await)
        .unwrap();
        (store, tenant)
    }

    /// What a store function that changes something and records it does: the
    /// entries and the advance commit or roll back with the caller's change.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn appends_and_advances_belong_to_the_callers_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let (store, tenant) = store_with_tenant(&dir).await;
        store
            .ensure_outbox_consumer(&tenant, "sync", "members", StartAt::Beginning)
            .await
            .unwrap();

        let mut conn = store.write().await.unwrap();
        let rolled_back: Result<(), StoreError> = in_transaction!(&mut conn, c => {
            let seqs = append_outbox!(c, &tenant, "members", &[json!({"add": 1}), json!({"add": 2})])?;
            assert_eq!(seqs, 1..3);
            Err(StoreError::Conflict { field: "test", message: "the caller's change failed".into() })
        });
        assert!(rolled_back.is_err());
        let committed = in_transaction!(&mut conn, c => {
            append_outbox!(c, &tenant, "members", &[json!({"add": 3})])
        })
        .unwrap();
        assert_eq!(committed, 1..2, "the rolled-back append used no seq");
        let rolled_back: Result<(), StoreError> = in_transaction!(&mut conn, c => {
            assert!(advance_outbox!(c, &tenant, "sync", "members", 1)?);
            Err(StoreError::Conflict { field: "test", message: "the effect failed".into() })
        });
        assert!(rolled_back.is_err());
        drop(conn);

        let pending = store
            .pending_outbox(&tenant, "sync", "members", 10)
            .await
            .unwrap();
        assert_eq!(pending.position, 0, "the rolled-back advance did not stick");
        assert_eq!(pending.count, 1);
        assert_eq!(pending.entries.len(), 1);
        assert_eq!(pending.entries[0].seq, 1);
        assert_eq!(pending.entries[0].payload, json!({"add": 3}));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn appending_for_an_unknown_tenant_is_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = store_with_tenant(&dir).await;
        let outcome = store
            .append_outbox(&TenantId::generate(), "members", &[json!(1)])
            .await;
        assert!(
            matches!(outcome, Err(StoreError::NotFound { entity: "tenant" })),
            "{outcome:?}"
        );
    }
}
