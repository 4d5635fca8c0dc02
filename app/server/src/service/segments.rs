//! Static segments: names checked at the edge, membership ids checked against
//! the tenant's profiles, and every change audited.

use sluice_store::ids::{SegmentId, TenantId};
use sluice_store::integrations::{ProfileId, Segment};

use crate::error::AppError;
use crate::service::Actor;
use crate::service::profiles::require_existing;
use crate::state::AppState;

/// A segment name: 1 to 255 printable characters, trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentName(String);

impl SegmentName {
    pub fn parse(raw: &str) -> Result<Self, sluice_store::domain::Invalid> {
        let name = raw.trim();
        if name.is_empty() || name.chars().count() > 255 || name.chars().any(char::is_control) {
            return Err(sluice_store::domain::Invalid::new(
                "name",
                "is required: 1 to 255 printable characters",
            ));
        }
        Ok(Self(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A segment of `tenant`; an id that does not parse is as unknown as another
/// tenant's.
pub async fn find(state: &AppState, tenant: &TenantId, raw_id: &str) -> Result<Segment, AppError> {
    let id = SegmentId::parse(raw_id).ok_or(AppError::NotFound)?;
    Ok(state.store.segment(tenant, &id).await?)
}

pub async fn create(
    state: &AppState,
    actor: &Actor,
    name: &SegmentName,
) -> Result<Segment, AppError> {
    let event = actor.event("segment.create", name.as_str(), "");
    Ok(state
        .store
        .create_segment_audited(&actor.tenant, name.as_str(), Some(&event))
        .await?)
}

pub async fn rename(
    state: &AppState,
    actor: &Actor,
    segment: &Segment,
    name: &SegmentName,
) -> Result<(), AppError> {
    let detail = format!("from {}", segment.name);
    let event = actor.event("segment.rename", name.as_str(), &detail);
    Ok(state
        .store
        .rename_segment_audited(&actor.tenant, &segment.id, name.as_str(), Some(&event))
        .await?)
}

/// Deletes a segment with its members (the pages confirm with a password first).
pub async fn delete(state: &AppState, actor: &Actor, segment: &Segment) -> Result<(), AppError> {
    let event = actor.event("segment.delete", &segment.name, "");
    Ok(state
        .store
        .delete_segment_audited(&actor.tenant, &segment.id, Some(&event))
        .await?)
}

/// Adds profiles (all of them the tenant's, else a 400 naming the unknown ones
/// under `path`, and nothing changes); returns how many joined.
pub async fn add_members(
    state: &AppState,
    actor: &Actor,
    segment: &Segment,
    ids: &[ProfileId],
    path: &str,
) -> Result<usize, AppError> {
    require_existing(state, &actor.tenant, ids, path).await?;
    let detail = format!("{} profiles", ids.len());
    let event = actor.event("segment.add_members", &segment.name, &detail);
    Ok(state
        .store
        .add_segment_members_audited(&actor.tenant, &segment.id, ids, Some(&event))
        .await?)
}

/// Removes profiles (checked like [`add_members`]); returns how many left.
pub async fn remove_members(
    state: &AppState,
    actor: &Actor,
    segment: &Segment,
    ids: &[ProfileId],
    path: &str,
) -> Result<usize, AppError> {
    require_existing(state, &actor.tenant, ids, path).await?;
    let detail = format!("{} profiles", ids.len());
    let event = actor.event("segment.remove_members", &segment.name, &detail);
    Ok(state
        .store
        .remove_segment_members_audited(&actor.tenant, &segment.id, ids, Some(&event))
        .await?)
}

pub async fn clear(state: &AppState, actor: &Actor, segment: &Segment) -> Result<usize, AppError> {
    let event = actor.event("segment.clear", &segment.name, "");
    Ok(state
        .store
        .clear_segment_audited(&actor.tenant, &segment.id, Some(&event))
        .await?)
}
