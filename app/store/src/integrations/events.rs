//! The outbox entries of segment changes (see the module docs for their shape).

use serde_json::{Value, json};

use crate::StoreError;

fn segment(number: i64, name: &str) -> Value {
    json!({"id": number, "name": name})
}

/// `add` or `remove` of one profile, with its fields as they are now.
pub(crate) fn membership(
    op: &str,
    number: i64,
    name: &str,
    profile_id: &str,
    fields: &str,
) -> Result<Value, StoreError> {
    let fields: Value = serde_json::from_str(fields).map_err(|_| StoreError::Corrupt {
        what: "profile fields",
        value: profile_id.to_string(),
    })?;
    Ok(json!({
        "op": op,
        "segment": segment(number, name),
        "profile": {"id": profile_id, "fields": fields},
    }))
}

/// `clear`, `upsert_segment` or `delete_segment`.
pub(crate) fn about_segment(op: &str, number: i64, name: &str) -> Value {
    json!({"op": op, "segment": segment(number, name)})
}
