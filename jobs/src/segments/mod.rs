//! Segment sync (seed 003): turning a batch of outbox events about static
//! segments into SQL on the tenant's database.
//!
//! - [`SegmentEvent::from_payload`] reads one outbox entry;
//! - [`SyncTemplates::parse`] checks a sync's templates;
//! - [`plan_batch`] renders a batch: runs of the same event about the same
//!   segment become one statement, in the order the events came;
//! - [`apply_batch`] runs a plan in one transaction (or a test run that
//!   rolls back).
//!
//! Nothing here touches the control plane, so each piece is tested alone.

mod apply;
mod event;
mod plan;

pub use apply::{BatchFailure, BatchOutcome, apply_batch};
pub use event::{EventError, EventKind, ProfileRef, SegmentEvent, SegmentRef};
pub use plan::{
    Plan, PlanError, PlannedStatement, SyncTemplates, TemplateSources, TemplatesError, plan_batch,
};
