//! Typed, prefixed ids (`usr_…`, `ten_…`): opaque strings to the outside world, and a
//! type of their own inside so a user id can never be passed where a tenant id goes.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// A fresh, time-ordered id.
            pub fn generate() -> Self {
                Self(format!("{}_{}", $prefix, uuid::Uuid::now_v7().simple()))
            }

            /// Accepts only well-formed ids of this kind; anything else is "not found".
            pub fn parse(raw: &str) -> Option<Self> {
                let rest = raw.strip_prefix($prefix)?.strip_prefix('_')?;
                (rest.len() == 32 && rest.bytes().all(|b| b.is_ascii_hexdigit()))
                    .then(|| Self(raw.to_string()))
            }

            /// Wraps a value read back from the store, which wrote it.
            #[allow(dead_code)] // not every kind is read back
            pub(crate) fn from_stored(raw: String) -> Self {
                Self(raw)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

typed_id!(TenantId, "ten");
typed_id!(UserId, "usr");
typed_id!(SessionId, "ses");
typed_id!(ApiKeyId, "key");
typed_id!(InvitationId, "inv");
typed_id!(AuditId, "aud");
typed_id!(ConnectorId, "con");
typed_id!(InboxId, "inb");
typed_id!(MessageId, "msg");
typed_id!(CommandId, "cmd");
typed_id!(RunId, "run");
typed_id!(DirectUrlId, "dir");
typed_id!(SegmentId, "seg");
typed_id!(SegmentSyncId, "ssy");
typed_id!(SyncBatchId, "ssb");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_back_and_foreign_kinds_do_not() {
        let id = UserId::generate();
        assert!(id.as_str().starts_with("usr_"));
        assert_eq!(UserId::parse(id.as_str()), Some(id.clone()));
        assert_eq!(TenantId::parse(id.as_str()), None);
        assert_eq!(UserId::parse("usr_nothex"), None);
        assert_eq!(UserId::parse("usr_"), None);
        assert_eq!(UserId::parse("../etc/passwd"), None);
    }
}
