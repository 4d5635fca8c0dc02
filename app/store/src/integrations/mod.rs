//! Integrations (seed 003): profiles, static segments, and the segment syncs that
//! export segment changes to a tenant's database.
//!
//! Every change to a segment or its members appends an entry to the segment's
//! outbox stream (`segment:<segment id>`) in the change's own transaction; each
//! sync reads the streams of its scope as the consumer `segment-sync:<sync id>`.
//! Entries (the contract with the executor):
//!
//! - `{"op": "add" | "remove", "segment": {"id": <number>, "name"}, "profile": {"id", "fields"}}`
//! - `{"op": "clear" | "upsert_segment" | "delete_segment", "segment": {"id": <number>, "name"}}`
//!
//! A change that changes nothing (adding a member, removing a non-member,
//! clearing an empty segment, renaming to the same name) appends nothing.
//!
//! Lock order in these transactions: the tenant's row (creating segments or
//! syncs), then segment rows (in id order), then the outbox streams (in name
//! order, which is segment id order), last.

mod events;
mod members;
mod profiles;
mod segments;
mod stats;
mod syncs;

pub use profiles::{MAX_PROFILE_ID_CHARS, Profile, ProfileId, ProfileUpsert, UpsertedProfiles};
pub use segments::{Member, Segment};
pub use stats::{StatsBucket, SyncBatch, SyncError, SyncEvent, SyncOutcome, SyncStats};
pub use syncs::{SegmentSync, SyncScope, SyncSettings, SyncTemplates};

use crate::ids::{SegmentId, SegmentSyncId};

/// Rows per statement when a change touches many (SQLite binds at most 32,766
/// values per statement).
pub(crate) const CHUNK: usize = 1_000;

/// The outbox stream of a segment's changes.
pub fn segment_stream(segment: &SegmentId) -> String {
    format!("segment:{segment}")
}

/// The outbox consumer name a sync reads its segments' streams as.
pub fn sync_consumer(sync: &SegmentSyncId) -> String {
    format!("segment-sync:{sync}")
}
