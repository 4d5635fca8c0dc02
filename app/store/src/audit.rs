//! The per-tenant audit log: who changed what, when, from where.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::ids::TenantId;
use crate::schema::audit_log;
use crate::{Store, StoreError, with_conn};

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

/// Inserts `$event` (an `&AuditEvent`) into `$tenant`'s audit log on connection
/// `$c`: inside an `in_transaction!` body, the entry commits or rolls back with the
/// change it records.
#[macro_export]
macro_rules! insert_audit {
    ($c:expr, $tenant:expr, $event:expr) => {{
        let event: &$crate::audit::AuditEvent<'_> = $event;
        ::diesel::insert_into($crate::schema::audit_log::table)
            .values((
                $crate::schema::audit_log::id.eq($crate::ids::AuditId::generate().as_str()),
                $crate::schema::audit_log::tenant_id.eq($tenant.as_str()),
                $crate::schema::audit_log::actor.eq(event.actor),
                $crate::schema::audit_log::action.eq(event.action),
                $crate::schema::audit_log::target.eq(event.target),
                $crate::schema::audit_log::detail.eq(event.detail),
                $crate::schema::audit_log::ip.eq(event.ip),
                $crate::schema::audit_log::at.eq($crate::now()),
            ))
            .execute($c)
            .await
    }};
}

impl Store {
    pub async fn audit(&self, tenant: &TenantId, event: AuditEvent<'_>) -> Result<(), StoreError> {
        let mut conn = self.write().await?;
        with_conn!(&mut conn, c => insert_audit!(c, tenant, &event))?;
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
