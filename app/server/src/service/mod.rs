//! What the pages and the JSON API do, in one place per resource: each function
//! takes input already parsed at the edge (form or JSON), checks what needs the
//! store, makes the change and records it in the audit log. Handlers only
//! translate a form or a JSON body in, and a page or a JSON body out.

pub mod commands;
pub mod connectors;
pub mod inboxes;
pub mod profiles;
pub mod segment_syncs;
pub mod segments;

use sluice_store::audit::AuditEvent;
use sluice_store::domain::Invalid;
use sluice_store::ids::TenantId;
use sluice_store::{Store, StoreError};

use crate::error::AppError;

/// Where a change came from, as the audit log tells them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Page,
    Api,
}

/// Who makes a change, for which tenant and from where: what an audit entry needs.
#[derive(Debug, Clone)]
pub struct Actor {
    pub tenant: TenantId,
    /// `user:<email>` or `key:<name>`.
    pub name: String,
    pub ip: Option<String>,
    pub channel: Channel,
}

impl Actor {
    /// The audit entry for `action` on `target`. API changes are marked "via API"
    /// in place of the page's detail, as they always were.
    pub fn event<'a>(
        &'a self,
        action: &'a str,
        target: &'a str,
        detail: &'a str,
    ) -> AuditEvent<'a> {
        AuditEvent {
            actor: &self.name,
            action,
            target,
            detail: match self.channel {
                Channel::Page => detail,
                Channel::Api => "via API",
            },
            ip: self.ip.as_deref(),
        }
    }

    /// Records an action that changes no row of its own (a run started, a pause).
    pub async fn record(
        &self,
        store: &Store,
        action: &str,
        target: &str,
        detail: &str,
    ) -> Result<(), StoreError> {
        store
            .audit(&self.tenant, self.event(action, target, detail))
            .await
    }
}

/// A lookup made while validating input: an unknown id is the client's mistake
/// (`invalid`, a 400 naming the field); any other store error is ours and stays
/// one (503 with `Retry-After` when the store is busy), never blamed on a field.
pub fn found_or<T>(
    looked_up: Result<T, StoreError>,
    invalid: impl FnOnce() -> Invalid,
) -> Result<Result<T, Invalid>, AppError> {
    match looked_up {
        Ok(found) => Ok(Ok(found)),
        Err(StoreError::NotFound { .. }) => Ok(Err(invalid())),
        Err(other) => Err(other.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ApiError;
    use actix_web::ResponseError;
    use actix_web::http::{StatusCode, header};

    #[test]
    fn a_busy_store_during_validation_is_a_503_not_a_400() {
        let field = || Invalid::new("callback_inbox_id", "choose one of your inboxes");
        let missing: Result<(), _> = Err(StoreError::NotFound { entity: "inbox" });
        assert_eq!(found_or(missing, field).unwrap(), Err(field()));
        let busy: Result<(), _> = Err(StoreError::Unavailable("pool timed out".into()));
        let error = found_or(busy, field).unwrap_err();
        for response in [error.error_response(), ApiError(error).error_response()] {
            assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert!(response.headers().contains_key(header::RETRY_AFTER));
        }
    }
}
