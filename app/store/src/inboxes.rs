//! Inboxes: public URLs (`/hooks/{token}`) that keep every JSON body they receive,
//! usable as a command's callback; and direct URLs that start a command instead.

mod limits;

pub use limits::{DEFAULT_MAX_BODY_BYTES, InboxLimits, InboxRefusal, nests_deeper_than};

use chrono::NaiveDateTime;
use diesel::dsl::{count_star, sql};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Text};
use diesel_async::RunQueryDsl;

use crate::audit::AuditEvent;
use crate::error::OptionalExt;
use crate::ids::{CommandId, DirectUrlId, InboxId, MessageId, TenantId};
use crate::leases::Lease;
use crate::schema::{direct_urls, inbox_messages, inboxes};
use crate::secret::random_token;
use crate::{
    Store, StoreError, hold_lease, in_transaction, insert_audit, lock_tenant, now, with_conn,
};

diesel::define_sql_function! {
    /// `substr(text, start, length)`, counted in characters, on both backends.
    fn substr(text: Text, start: Integer, length: Integer) -> Text;
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = inboxes)]
struct InboxRow {
    id: String,
    tenant_id: String,
    name: String,
    token: String,
    created_at: NaiveDateTime,
}

#[derive(Debug, Clone)]
pub struct Inbox {
    pub id: InboxId,
    pub tenant_id: TenantId,
    pub name: String,
    /// The capability in the public URL: anyone holding it may post.
    pub token: String,
    pub created_at: NaiveDateTime,
}

impl From<InboxRow> for Inbox {
    fn from(r: InboxRow) -> Self {
        Self {
            id: InboxId::from_stored(r.id),
            tenant_id: TenantId::from_stored(r.tenant_id),
            name: r.name,
            token: r.token,
            created_at: r.created_at,
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = inbox_messages)]
pub struct InboxMessage {
    pub id: String,
    pub inbox_id: String,
    /// `http` for a POST to the public URL, `command:<id>` for rows a command delivered.
    pub source: String,
    pub body: String,
    pub size: i64,
    pub received_at: NaiveDateTime,
}

/// The start of a message, for listing many without loading their bodies.
#[derive(Debug, Clone, Queryable)]
pub struct MessagePreview {
    pub id: String,
    pub source: String,
    /// The whole body's size in bytes.
    pub size: i64,
    pub received_at: NaiveDateTime,
    /// At most the first `head_chars` characters of the body.
    pub head: String,
}

impl MessagePreview {
    /// Whether `head` is the whole body.
    pub fn is_complete(&self) -> bool {
        self.head.len() as i64 == self.size
    }
}

/// What a public `/hooks/{token}` URL leads to.
#[derive(Debug, Clone)]
pub enum HookTarget {
    Inbox(Inbox),
    /// A direct URL: starts a dynamic run of this command.
    Command {
        tenant_id: TenantId,
        command_id: CommandId,
    },
}

const HOOK_TOKEN_PREFIX: &str = "hk";
const NAME_TAKEN: &str = "is already used by another inbox";

impl Store {
    /// Creates an inbox; refuses (409 on `limit`) when the tenant already has
    /// [`TenantQuotas::max_inboxes`](crate::quotas::TenantQuotas).
    pub async fn create_inbox(&self, tenant: &TenantId, name: &str) -> Result<Inbox, StoreError> {
        self.create_inbox_audited(tenant, name, None).await
    }

    /// [`Store::create_inbox`], recording `audit` (when given) in the same transaction.
    pub async fn create_inbox_audited(
        &self,
        tenant: &TenantId,
        name: &str,
        audit: Option<&AuditEvent<'_>>,
    ) -> Result<Inbox, StoreError> {
        let id = InboxId::generate();
        let max = self.quotas.max_inboxes;
        let mut conn = self.write().await?;
        let row: InboxRow = in_transaction!(&mut conn, c => {
            lock_tenant!(c, tenant)?;
            let held: i64 = inboxes::table
                .filter(inboxes::tenant_id.eq(tenant.as_str()))
                .count()
                .get_result(c)
                .await?;
            if held >= max {
                return Err(StoreError::Conflict {
                    field: "limit",
                    message: format!(
                        "this organisation has {held} inboxes, the most this instance allows; delete one first"
                    ),
                });
            }
            let row = diesel::insert_into(inboxes::table)
                .values((
                    inboxes::id.eq(id.as_str()),
                    inboxes::tenant_id.eq(tenant.as_str()),
                    inboxes::name.eq(name),
                    inboxes::token.eq(random_token(HOOK_TOKEN_PREFIX)),
                    inboxes::created_at.eq(now()),
                ))
                .returning(InboxRow::as_returning())
                .get_result(c)
                .await
                .map_err(StoreError::unique("name", NAME_TAKEN))?;
            if let Some(event) = audit {
                insert_audit!(c, tenant, event)?;
            }
            Ok(row)
        })?;
        Ok(row.into())
    }

    pub async fn inbox(&self, tenant: &TenantId, id: &InboxId) -> Result<Inbox, StoreError> {
        let mut conn = self.read().await?;
        let row: InboxRow = with_conn!(&mut conn, c => inboxes::table
            .filter(inboxes::tenant_id.eq(tenant.as_str()))
            .filter(inboxes::id.eq(id.as_str()))
            .select(InboxRow::as_select())
            .first(c)
            .await)
        .or_not_found("inbox")?;
        Ok(row.into())
    }

    /// One page of the tenant's inboxes by name: those after `after` (a name),
    /// at most `limit`.
    pub async fn inboxes(
        &self,
        tenant: &TenantId,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Inbox>, StoreError> {
        let mut conn = self.read().await?;
        let rows: Vec<InboxRow> = with_conn!(&mut conn, c => inboxes::table
            .filter(inboxes::tenant_id.eq(tenant.as_str()))
            .filter(inboxes::name.gt(after.unwrap_or("")))
            .order(inboxes::name.asc())
            .limit(limit)
            .select(InboxRow::as_select())
            .load(c)
            .await)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    pub async fn delete_inbox(&self, tenant: &TenantId, id: &InboxId) -> Result<(), StoreError> {
        self.delete_inbox_audited(tenant, id, None).await
    }

    /// [`Store::delete_inbox`], recording `audit` (when given) in the same transaction.
    pub async fn delete_inbox_audited(
        &self,
        tenant: &TenantId,
        id: &InboxId,
        audit: Option<&AuditEvent<'_>>,
    ) -> Result<(), StoreError> {
        let mut conn = self.write().await?;
        in_transaction!(&mut conn, c => {
            let removed = diesel::delete(
                inboxes::table.filter(inboxes::tenant_id.eq(tenant.as_str())).filter(inboxes::id.eq(id.as_str())),
            )
            .execute(c)
            .await?;
            if removed == 0 {
                return Err(StoreError::not_found("inbox"));
            }
            if let Some(event) = audit {
                insert_audit!(c, tenant, event)?;
            }
            Ok(())
        })
    }

    /// Stores one message (a JSON document, already parsed by the caller) within the
    /// inbox's limits: [`InboxLimits::check_body`], then room for it in the inbox;
    /// otherwise [`StoreError::InboxRefused`].
    ///
    /// A command's run writes under its lease (`Some`): a run that lost it
    /// writes nothing ([`StoreError::LeaseLost`]).
    pub async fn add_inbox_message(
        &self,
        tenant: &TenantId,
        inbox: &InboxId,
        source: &str,
        body: &str,
        lease: Option<&Lease>,
    ) -> Result<MessageId, StoreError> {
        let limits = self.inbox_limits;
        limits.check_body(body.as_bytes())?;
        let id = MessageId::generate();
        let size = body.len() as i64;
        let mut conn = self.write().await?;
        in_transaction!(&mut conn, c => {
            if let Some(lease) = lease {
                hold_lease!(c, lease);
            }
            // A no-op update locks the inbox's row on PostgreSQL, so concurrent
            // writers to one inbox take turns and cannot both pass the room check.
            // (SQLite has a single writer already.)
            let locked = diesel::update(
                inboxes::table
                    .filter(inboxes::tenant_id.eq(tenant.as_str()))
                    .filter(inboxes::id.eq(inbox.as_str())),
            )
            .set(inboxes::created_at.eq(inboxes::created_at))
            .execute(c)
            .await?;
            if locked == 0 {
                return Err(StoreError::not_found("inbox"));
            }
            let (messages, bytes): (i64, i64) = inbox_messages::table
                .filter(inbox_messages::inbox_id.eq(inbox.as_str()))
                .select((
                    count_star(),
                    // PostgreSQL sums BIGINT into NUMERIC; both read back as BIGINT.
                    sql::<BigInt>("CAST(COALESCE(SUM(size), 0) AS BIGINT)"),
                ))
                .first(c)
                .await?;
            limits.check_room(messages, bytes, size)?;
            diesel::insert_into(inbox_messages::table)
                .values((
                    inbox_messages::id.eq(id.as_str()),
                    inbox_messages::tenant_id.eq(tenant.as_str()),
                    inbox_messages::inbox_id.eq(inbox.as_str()),
                    inbox_messages::source.eq(source),
                    inbox_messages::body.eq(body),
                    inbox_messages::size.eq(size),
                    inbox_messages::received_at.eq(now()),
                ))
                .execute(c)
                .await?;
            Ok(())
        })?;
        Ok(id)
    }

    /// The newest messages first, each with only the start of its body.
    pub async fn inbox_message_previews(
        &self,
        tenant: &TenantId,
        inbox: &InboxId,
        limit: i64,
        head_chars: i32,
    ) -> Result<Vec<MessagePreview>, StoreError> {
        let mut conn = self.read().await?;
        Ok(with_conn!(&mut conn, c => inbox_messages::table
            .filter(inbox_messages::tenant_id.eq(tenant.as_str()))
            .filter(inbox_messages::inbox_id.eq(inbox.as_str()))
            .order((inbox_messages::received_at.desc(), inbox_messages::id.desc()))
            .limit(limit)
            .select((
                inbox_messages::id,
                inbox_messages::source,
                inbox_messages::size,
                inbox_messages::received_at,
                substr(inbox_messages::body, 1, head_chars),
            ))
            .load::<MessagePreview>(c)
            .await)?)
    }

    /// One message, whole.
    pub async fn inbox_message(
        &self,
        tenant: &TenantId,
        inbox: &InboxId,
        id: &str,
    ) -> Result<InboxMessage, StoreError> {
        let mut conn = self.read().await?;
        with_conn!(&mut conn, c => inbox_messages::table
            .filter(inbox_messages::tenant_id.eq(tenant.as_str()))
            .filter(inbox_messages::inbox_id.eq(inbox.as_str()))
            .filter(inbox_messages::id.eq(id))
            .select(InboxMessage::as_select())
            .first(c)
            .await)
        .or_not_found("message")
    }

    /// Retention: removes messages older than `retention_days`, then all but the
    /// newest `retention_messages` of each inbox. Returns how many were removed.
    pub async fn apply_inbox_retention(&self) -> Result<usize, StoreError> {
        let limits = self.inbox_limits;
        let cutoff = now() - chrono::Duration::days(limits.retention_days);
        let mut conn = self.write().await?;
        let mut removed = with_conn!(&mut conn, c => diesel::delete(
                inbox_messages::table.filter(inbox_messages::received_at.lt(cutoff)),
            )
            .execute(c)
            .await)?;
        let crowded: Vec<String> = with_conn!(&mut conn, c => inbox_messages::table
            .group_by(inbox_messages::inbox_id)
            .having(count_star().gt(limits.retention_messages))
            .select(inbox_messages::inbox_id)
            .load(c)
            .await)?;
        for inbox in &crowded {
            // The oldest message kept: everything older goes.
            let (at, id): (NaiveDateTime, String) = with_conn!(&mut conn, c => inbox_messages::table
                .filter(inbox_messages::inbox_id.eq(inbox))
                .order((inbox_messages::received_at.desc(), inbox_messages::id.desc()))
                .offset(limits.retention_messages - 1)
                .select((inbox_messages::received_at, inbox_messages::id))
                .first(c)
                .await)?;
            removed += with_conn!(&mut conn, c => diesel::delete(
                    inbox_messages::table
                        .filter(inbox_messages::inbox_id.eq(inbox))
                        .filter(
                            inbox_messages::received_at.lt(at).or(inbox_messages::received_at
                                .eq(at)
                                .and(inbox_messages::id.lt(&id))),
                        ),
                )
                .execute(c)
                .await)?;
        }
        Ok(removed)
    }

    /// The newest messages first; with `before`, those received before that
    /// message (ids grow with time).
    pub async fn inbox_messages(
        &self,
        tenant: &TenantId,
        inbox: &InboxId,
        before: Option<&MessageId>,
        limit: i64,
    ) -> Result<Vec<InboxMessage>, StoreError> {
        // Every id sorts below "~": no cursor means from the newest.
        let before = before.map_or("~", MessageId::as_str);
        let mut conn = self.read().await?;
        Ok(with_conn!(&mut conn, c => inbox_messages::table
            .filter(inbox_messages::tenant_id.eq(tenant.as_str()))
            .filter(inbox_messages::inbox_id.eq(inbox.as_str()))
            .filter(inbox_messages::id.lt(before))
            .order(inbox_messages::id.desc())
            .limit(limit)
            .select(InboxMessage::as_select())
            .load(c)
            .await)?)
    }

    pub async fn count_inbox_messages(
        &self,
        tenant: &TenantId,
        inbox: &InboxId,
    ) -> Result<i64, StoreError> {
        let mut conn = self.read().await?;
        Ok(with_conn!(&mut conn, c => inbox_messages::table
            .filter(inbox_messages::tenant_id.eq(tenant.as_str()))
            .filter(inbox_messages::inbox_id.eq(inbox.as_str()))
            .count()
            .get_result::<i64>(c)
            .await)?)
    }

    /// Creates a direct URL for a command; returns its token.
    pub async fn create_direct_url(
        &self,
        tenant: &TenantId,
        command: &CommandId,
    ) -> Result<String, StoreError> {
        let token = random_token(HOOK_TOKEN_PREFIX);
        let mut conn = self.write().await?;
        with_conn!(&mut conn, c => diesel::insert_into(direct_urls::table)
            .values((
                direct_urls::id.eq(DirectUrlId::generate().as_str()),
                direct_urls::tenant_id.eq(tenant.as_str()),
                direct_urls::command_id.eq(command.as_str()),
                direct_urls::token.eq(&token),
                direct_urls::created_at.eq(now()),
            ))
            .execute(c)
            .await)?;
        Ok(token)
    }

    pub async fn direct_url_tokens(
        &self,
        tenant: &TenantId,
        command: &CommandId,
    ) -> Result<Vec<String>, StoreError> {
        let mut conn = self.read().await?;
        Ok(with_conn!(&mut conn, c => direct_urls::table
            .filter(direct_urls::tenant_id.eq(tenant.as_str()))
            .filter(direct_urls::command_id.eq(command.as_str()))
            .order(direct_urls::created_at.asc())
            .select(direct_urls::token)
            .load::<String>(c)
            .await)?)
    }

    /// Resolves a public hook token (the only lookup not scoped by tenant: the
    /// token is what identifies it).
    pub async fn hook_target(&self, token: &str) -> Result<Option<HookTarget>, StoreError> {
        let mut conn = self.read().await?;
        let inbox: Option<InboxRow> = with_conn!(&mut conn, c => inboxes::table
            .filter(inboxes::token.eq(token))
            .select(InboxRow::as_select())
            .first(c)
            .await
            .optional())?;
        if let Some(inbox) = inbox {
            return Ok(Some(HookTarget::Inbox(inbox.into())));
        }
        let direct: Option<(String, String)> = with_conn!(&mut conn, c => direct_urls::table
            .filter(direct_urls::token.eq(token))
            .select((direct_urls::tenant_id, direct_urls::command_id))
            .first(c)
            .await
            .optional())?;
        Ok(direct.map(|(tenant, command)| HookTarget::Command {
            tenant_id: TenantId::from_stored(tenant),
            command_id: CommandId::from_stored(command),
        }))
    }
}
