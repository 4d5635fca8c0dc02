//! Inboxes: their name, and creating and deleting them with their audit entry.

use sluice_store::domain::Invalid;
use sluice_store::ids::{InboxId, TenantId};
use sluice_store::inboxes::Inbox;

use crate::error::AppError;
use crate::service::Actor;
use crate::state::AppState;

/// An inbox name: 1–80 printable characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxName(String);

impl InboxName {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let name = raw.trim();
        if name.is_empty() || name.chars().count() > 80 || name.chars().any(char::is_control) {
            return Err(Invalid::new(
                "name",
                "is required: 1 to 80 printable characters",
            ));
        }
        Ok(Self(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An inbox of `tenant`; an id that does not parse is as unknown as another
/// tenant's.
pub async fn find(state: &AppState, tenant: &TenantId, raw_id: &str) -> Result<Inbox, AppError> {
    let id = InboxId::parse(raw_id).ok_or(AppError::NotFound)?;
    Ok(state.store.inbox(tenant, &id).await?)
}

/// Creates an inbox (409 when the name is taken or the tenant has as many as
/// allowed).
pub async fn create(state: &AppState, actor: &Actor, name: &InboxName) -> Result<Inbox, AppError> {
    let event = actor.event("inbox.create", name.as_str(), "");
    Ok(state
        .store
        .create_inbox_audited(&actor.tenant, name.as_str(), Some(&event))
        .await?)
}

/// Deletes an inbox with all its messages.
pub async fn delete(state: &AppState, actor: &Actor, inbox: &Inbox) -> Result<(), AppError> {
    let event = actor.event("inbox.delete", &inbox.name, "");
    Ok(state
        .store
        .delete_inbox_audited(&actor.tenant, &inbox.id, Some(&event))
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_one_printable_line() {
        assert_eq!(InboxName::parse("  orders ").unwrap().as_str(), "orders");
        assert!(InboxName::parse("").is_err());
        assert!(InboxName::parse("a\nb").is_err());
        assert!(InboxName::parse(&"x".repeat(81)).is_err());
    }
}
