//! Profiles: ids and fields checked at the edge, and their changes audited.

use serde_json::{Map, Value};
use sluice_store::ids::TenantId;
use sluice_store::integrations::{Profile, ProfileId, ProfileUpsert, UpsertedProfiles};

use crate::error::AppError;
use crate::service::Actor;
use crate::state::AppState;

/// The largest profile's fields, as JSON text.
pub const MAX_FIELDS_BYTES: usize = 64 * 1024;
/// How deep fields may nest (the fields object itself is level 1).
pub const MAX_FIELDS_DEPTH: usize = 16;
/// Profiles per batch call, and ids per membership call.
pub const MAX_BATCH: usize = 10_000;

fn invalid(path: impl Into<String>, message: impl Into<String>) -> AppError {
    AppError::InvalidAt {
        path: path.into(),
        message: message.into(),
    }
}

/// A profile id from a request, or a 400 naming `path`.
pub fn parse_id(raw: &str, path: &str) -> Result<ProfileId, AppError> {
    ProfileId::parse(raw).map_err(|message| invalid(path, message))
}

/// A profile id given as a JSON value (in a list), or a 400 naming `path`.
pub fn parse_id_value(raw: &Value, path: &str) -> Result<ProfileId, AppError> {
    match raw {
        Value::String(s) => parse_id(s, path),
        _ => Err(invalid(path, "must be a string")),
    }
}

/// A list of profile ids (`profile_ids` of a membership call): 1 to
/// [`MAX_BATCH`] strings.
pub fn parse_ids(raw: &[Value], path: &str) -> Result<Vec<ProfileId>, AppError> {
    if raw.is_empty() || raw.len() > MAX_BATCH {
        return Err(invalid(
            path,
            format!("must list 1 to {MAX_BATCH} profile ids"),
        ));
    }
    raw.iter()
        .enumerate()
        .map(|(i, id)| parse_id_value(id, &format!("{path}[{i}]")))
        .collect()
}

/// A profile's fields: a JSON object of at most [`MAX_FIELDS_BYTES`] nesting at
/// most [`MAX_FIELDS_DEPTH`] levels; otherwise a 400 naming the path.
pub fn parse_fields(raw: &Value, path: &str) -> Result<Map<String, Value>, AppError> {
    let Value::Object(fields) = raw else {
        return Err(invalid(path, "must be a JSON object"));
    };
    if let Some(deep) = too_deep(raw, path.to_string(), 1) {
        return Err(invalid(
            deep,
            format!("nests deeper than {MAX_FIELDS_DEPTH} levels"),
        ));
    }
    let size = raw.to_string().len();
    if size > MAX_FIELDS_BYTES {
        return Err(invalid(
            path,
            format!("are {size} bytes of JSON, more than the {MAX_FIELDS_BYTES} allowed"),
        ));
    }
    Ok(fields.clone())
}

/// The path of the first value nested deeper than allowed, if any.
fn too_deep(value: &Value, path: String, depth: usize) -> Option<String> {
    let children: Vec<(String, &Value)> = match value {
        Value::Object(map) => map.iter().map(|(k, v)| (key_path(&path, k), v)).collect(),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("{path}[{i}]"), v))
            .collect(),
        _ => return None,
    };
    if depth > MAX_FIELDS_DEPTH {
        return Some(path);
    }
    children
        .into_iter()
        .find_map(|(child, v)| too_deep(v, child, depth + 1))
}

/// `path.key`, or `path["odd key"]` for a key that is not a plain name.
fn key_path(path: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if plain {
        format!("{path}.{key}")
    } else {
        format!("{path}[{}]", Value::String(key.to_string()))
    }
}

/// The profiles of a batch call, each `{"id", "fields"}`: at most
/// [`MAX_BATCH`], ids distinct.
pub fn parse_batch(raw: &[Value]) -> Result<Vec<ProfileUpsert>, AppError> {
    if raw.len() > MAX_BATCH {
        return Err(invalid(
            "profiles",
            format!("must hold at most {MAX_BATCH} profiles"),
        ));
    }
    let mut seen = std::collections::HashMap::new();
    let mut batch = Vec::with_capacity(raw.len());
    for (i, item) in raw.iter().enumerate() {
        let Value::Object(item) = item else {
            return Err(invalid(format!("profiles[{i}]"), "must be an object"));
        };
        let id_path = format!("profiles[{i}].id");
        let id = parse_id_value(item.get("id").unwrap_or(&Value::Null), &id_path)?;
        if let Some(first) = seen.insert(id.clone(), i) {
            return Err(invalid(id_path, format!("repeats profiles[{first}].id")));
        }
        let fields = match item.get("fields") {
            Some(fields) => parse_fields(fields, &format!("profiles[{i}].fields"))?,
            None => Map::new(),
        };
        batch.push((id, fields));
    }
    Ok(batch)
}

/// Fails with a 400 listing the ids that are not profiles of the tenant.
pub async fn require_existing(
    state: &AppState,
    tenant: &TenantId,
    ids: &[ProfileId],
    path: &str,
) -> Result<(), AppError> {
    let missing = state.store.missing_profiles(tenant, ids).await?;
    if missing.is_empty() {
        return Ok(());
    }
    const SHOWN: usize = 20;
    let mut listed: Vec<String> = missing
        .iter()
        .take(SHOWN)
        .map(|id| Value::String(id.to_string()).to_string())
        .collect();
    if missing.len() > SHOWN {
        listed.push(format!("and {} more", missing.len() - SHOWN));
    }
    Err(invalid(
        path,
        format!("unknown profile ids: {}", listed.join(", ")),
    ))
}

/// Creates or replaces a profile; `true` when created.
pub async fn upsert(
    state: &AppState,
    actor: &Actor,
    id: &ProfileId,
    fields: &Map<String, Value>,
) -> Result<(Profile, bool), AppError> {
    let event = actor.event("profile.upsert", id.as_str(), "");
    Ok(state
        .store
        .upsert_profile_audited(&actor.tenant, id, fields, Some(&event))
        .await?)
}

pub async fn upsert_batch(
    state: &AppState,
    actor: &Actor,
    batch: &[ProfileUpsert],
) -> Result<UpsertedProfiles, AppError> {
    let detail = format!("{} profiles", batch.len());
    let event = actor.event("profile.upsert_batch", "profiles", &detail);
    Ok(state
        .store
        .upsert_profiles_audited(&actor.tenant, batch, Some(&event))
        .await?)
}

/// Deletes a profile, removing it from its segments first.
pub async fn delete(state: &AppState, actor: &Actor, id: &ProfileId) -> Result<(), AppError> {
    let event = actor.event("profile.delete", id.as_str(), "");
    Ok(state
        .store
        .delete_profile_audited(&actor.tenant, id, Some(&event))
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn path_of(err: AppError) -> String {
        match err {
            AppError::InvalidAt { path, .. } => path,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn fields_must_be_a_small_shallow_object_and_errors_name_the_path() {
        assert!(parse_fields(&json!({"a": {"b": [1, 2]}}), "fields").is_ok());
        assert_eq!(
            path_of(parse_fields(&json!([1]), "fields").unwrap_err()),
            "fields"
        );
        let mut deep = json!(1);
        for _ in 0..20 {
            deep = json!({"x": deep});
        }
        let path = path_of(parse_fields(&deep, "fields").unwrap_err());
        assert!(path.starts_with("fields.x.x."), "{path}");
        let huge = json!({"blob": "x".repeat(MAX_FIELDS_BYTES)});
        assert_eq!(
            path_of(parse_fields(&huge, "fields").unwrap_err()),
            "fields"
        );
        let odd = json!({"a b": [[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]});
        assert!(
            path_of(parse_fields(&odd, "fields").unwrap_err()).starts_with("fields[\"a b\"][0]")
        );
    }

    #[test]
    fn a_batch_names_the_bad_entry() {
        let bad = [json!({"id": "a"}), json!({"id": 7})];
        assert_eq!(path_of(parse_batch(&bad).unwrap_err()), "profiles[1].id");
        let twice = [json!({"id": "a"}), json!({"id": "a"})];
        assert_eq!(path_of(parse_batch(&twice).unwrap_err()), "profiles[1].id");
        let fields = [json!({"id": "a", "fields": "x"})];
        assert_eq!(
            path_of(parse_batch(&fields).unwrap_err()),
            "profiles[0].fields"
        );
    }
}
