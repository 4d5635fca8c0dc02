//! The per-tenant audit log: who changed what, when, from where.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::ids::{AuditId, TenantId};
use crate::schema::audit_log;
use crate::{Store, StoreError, now, with_conn};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = audit_log)]
pub struct AuditEntry {
    pub id: String,
    pub tenant_id: String,
    /// `user:<email>`, `key:<name>` or `system`.
    pub actor: String,
    /// Dotted verb, e.g. `user.login`, `api_key.revoke`.
    pub action: String,
    pub target: String,
    pub detail: String,
    pub ip: Option<String>,
    pub at: NaiveDateTime,
}

/// One change to record.
pub struct AuditEvent<'a> {
    pub actor: &'a str,
    pub action: &'a str,
    pub target: &'a str,
    pub detail: &'a str,
    pub ip: Option<&'a str>,
}

impl Store {
    pub async fn audit(&self, tenant: &TenantId, event: AuditEvent<'_>) -> Result<(), StoreError> {
        let mut conn = self.write().await?;
        with_conn!(&mut conn, c => diesel::insert_into(audit_log::table)
            .values((
                audit_log::id.eq(AuditId::generate().as_str()),
                audit_log::tenant_id.eq(tenant.as_str()),
                audit_log::actor.eq(event.actor),
                audit_log::action.eq(event.action),
                audit_log::target.eq(event.target),
                audit_log::detail.eq(event.detail),
                audit_log::ip.eq(event.ip),
                audit_log::at.eq(now()),
            ))
            .execute(c)
            .await)?;
        Ok(())
    }

    /// The newest entries first, at most `limit`.
    pub async fn audit_entries(
        &self,
        tenant: &TenantId,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let mut conn = self.read().await?;
        Ok(with_conn!(&mut conn, c => audit_log::table
            .filter(audit_log::tenant_id.eq(tenant.as_str()))
            .order((audit_log::at.desc(), audit_log::id.desc()))
            .limit(limit)
            .select(AuditEntry::as_select())
            .load(c)
            .await)?)
    }
}
