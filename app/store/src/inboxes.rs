//! Inboxes: public URLs (`/hooks/{token}`) that keep every JSON body they receive,
//! usable as a command's callback; and direct URLs that start a command instead.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::error::OptionalExt;
use crate::ids::{CommandId, DirectUrlId, InboxId, MessageId, TenantId};
use crate::schema::{direct_urls, inbox_messages, inboxes};
use crate::secret::random_token;
use crate::{Store, StoreError, now, with_conn};

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
    pub async fn create_inbox(&self, tenant: &TenantId, name: &str) -> Result<Inbox, StoreError> {
        let id = InboxId::generate();
        let mut conn = self.write().await?;
        let row: InboxRow = with_conn!(&mut conn, c => diesel::insert_into(inboxes::table)
            .values((
                inboxes::id.eq(id.as_str()),
                inboxes::tenant_id.eq(tenant.as_str()),
                inboxes::name.eq(name),
                inboxes::token.eq(random_token(HOOK_TOKEN_PREFIX)),
                inboxes::created_at.eq(now()),
            ))
            .returning(InboxRow::as_returning())
            .get_result(c)
            .await)
        .map_err(StoreError::unique("name", NAME_TAKEN))?;
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

    pub async fn inboxes(&self, tenant: &TenantId) -> Result<Vec<Inbox>, StoreError> {
        let mut conn = self.read().await?;
        let rows: Vec<InboxRow> = with_conn!(&mut conn, c => inboxes::table
            .filter(inboxes::tenant_id.eq(tenant.as_str()))
            .order(inboxes::name.asc())
            .select(InboxRow::as_select())
            .load(c)
            .await)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    pub async fn delete_inbox(&self, tenant: &TenantId, id: &InboxId) -> Result<(), StoreError> {
        let mut conn = self.write().await?;
        let removed = with_conn!(&mut conn, c => diesel::delete(
                inboxes::table.filter(inboxes::tenant_id.eq(tenant.as_str())).filter(inboxes::id.eq(id.as_str())),
            )
            .execute(c)
            .await)?;
        if removed == 0 {
            return Err(StoreError::not_found("inbox"));
        }
        Ok(())
    }

    /// Stores one message (a JSON document, already validated by the caller).
    pub async fn add_inbox_message(
        &self,
        tenant: &TenantId,
        inbox: &InboxId,
        source: &str,
        body: &str,
    ) -> Result<MessageId, StoreError> {
        let id = MessageId::generate();
        let mut conn = self.write().await?;
        with_conn!(&mut conn, c => diesel::insert_into(inbox_messages::table)
            .values((
                inbox_messages::id.eq(id.as_str()),
                inbox_messages::tenant_id.eq(tenant.as_str()),
                inbox_messages::inbox_id.eq(inbox.as_str()),
                inbox_messages::source.eq(source),
                inbox_messages::body.eq(body),
                inbox_messages::size.eq(body.len() as i64),
                inbox_messages::received_at.eq(now()),
            ))
            .execute(c)
            .await)?;
        Ok(id)
    }

    /// The newest messages first.
    pub async fn inbox_messages(
        &self,
        tenant: &TenantId,
        inbox: &InboxId,
        limit: i64,
    ) -> Result<Vec<InboxMessage>, StoreError> {
        let mut conn = self.read().await?;
        Ok(with_conn!(&mut conn, c => inbox_messages::table
            .filter(inbox_messages::tenant_id.eq(tenant.as_str()))
            .filter(inbox_messages::inbox_id.eq(inbox.as_str()))
            .order((inbox_messages::received_at.desc(), inbox_messages::id.desc()))
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
