//! Rendering a batch of events into statements.

use std::ops::Range;

use serde_json::Value;
use sluice_sqltpl::{
    SegmentDialect, SegmentInfo, SegmentTemplate, TemplateError, parse_segment_template,
};

use super::event::{EventKind, SegmentEvent, SegmentRef};

/// A sync's template texts as stored: add and remove are mandatory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TemplateSources<'a> {
    pub add: &'a str,
    pub remove: &'a str,
    pub clear: Option<&'a str>,
    pub upsert_segment: Option<&'a str>,
    pub delete_segment: Option<&'a str>,
}

/// A sync's templates, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncTemplates {
    pub add: SegmentTemplate,
    pub remove: SegmentTemplate,
    pub clear: Option<SegmentTemplate>,
    pub upsert_segment: Option<SegmentTemplate>,
    pub delete_segment: Option<SegmentTemplate>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("the {kind} template: {error}")]
pub struct TemplatesError {
    pub kind: EventKind,
    pub error: TemplateError,
}

impl SyncTemplates {
    pub fn parse(sources: &TemplateSources<'_>) -> Result<SyncTemplates, TemplatesError> {
        let parse = |kind, source: &str| {
            parse_segment_template(source).map_err(|error| TemplatesError { kind, error })
        };
        let optional = |kind, source: Option<&str>| source.map(|s| parse(kind, s)).transpose();
        Ok(SyncTemplates {
            add: parse(EventKind::Add, sources.add)?,
            remove: parse(EventKind::Remove, sources.remove)?,
            clear: optional(EventKind::Clear, sources.clear)?,
            upsert_segment: optional(EventKind::UpsertSegment, sources.upsert_segment)?,
            delete_segment: optional(EventKind::DeleteSegment, sources.delete_segment)?,
        })
    }

    /// [`SyncTemplates::parse`], then each template rendered once for
    /// `dialect` with a sample segment and profile, so a tag where this
    /// dialect can take no value (inside a PostgreSQL `"…"` identifier, say)
    /// is refused when the sync is saved, with its line and column, rather
    /// than at its first batch.
    pub fn parse_for_dialect(
        sources: &TemplateSources<'_>,
        dialect: SegmentDialect,
    ) -> Result<SyncTemplates, TemplatesError> {
        let templates = SyncTemplates::parse(sources)?;
        let segment = SegmentInfo {
            id: Value::from(1),
            name: "sample".to_owned(),
        };
        let profile = serde_json::Map::new();
        for kind in EventKind::ALL {
            if let Some(template) = templates.for_kind(kind) {
                template
                    .render(dialect, &segment, std::slice::from_ref(&profile))
                    .map_err(|error| TemplatesError { kind, error })?;
            }
        }
        Ok(templates)
    }

    /// The template for `kind`; `None` when the sync has none (the event is skipped).
    pub fn for_kind(&self, kind: EventKind) -> Option<&SegmentTemplate> {
        match kind {
            EventKind::Add => Some(&self.add),
            EventKind::Remove => Some(&self.remove),
            EventKind::Clear => self.clear.as_ref(),
            EventKind::UpsertSegment => self.upsert_segment.as_ref(),
            EventKind::DeleteSegment => self.delete_segment.as_ref(),
        }
    }
}

/// One rendered statement and the events it stands for.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedStatement {
    pub kind: EventKind,
    pub segment: SegmentRef,
    /// How many events it applies (profiles, for add and remove).
    pub entries: usize,
    /// Where those events are in the batch (skipped events in between included).
    pub events: Range<usize>,
    pub sql: String,
}

/// A batch rendered: its statements in order, and the events skipped because
/// the sync has no template for them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Plan {
    pub statements: Vec<PlannedStatement>,
    pub skipped: usize,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "rendering the {kind} template for segment {segment_id} (event {event} of the batch): {error}"
)]
pub struct PlanError {
    pub kind: EventKind,
    pub segment_id: i64,
    /// The first event (0-based) of the statement that failed.
    pub event: usize,
    pub error: TemplateError,
}

/// Renders `events` in order. A run of events of the same kind about the same
/// segment becomes one statement rendered with all their profiles, so
/// add, add, remove, add gives three statements and a remove never overtakes
/// the add before it. Events without a template are skipped; as they change
/// nothing, the events either side of them may share a statement.
pub fn plan_batch(
    events: &[SegmentEvent],
    templates: &SyncTemplates,
    dialect: SegmentDialect,
) -> Result<Plan, PlanError> {
    let mut plan = Plan::default();
    let mut run: Option<Run<'_>> = None;
    for (index, event) in events.iter().enumerate() {
        let Some(template) = templates.for_kind(event.kind) else {
            plan.skipped += 1;
            continue;
        };
        match &mut run {
            Some(current) if current.continues_with(event) => current.push(index, event),
            _ => {
                if let Some(finished) = run.take() {
                    plan.statements.push(finished.render(dialect)?);
                }
                run = Some(Run::start(index, event, template));
            }
        }
    }
    if let Some(finished) = run {
        plan.statements.push(finished.render(dialect)?);
    }
    Ok(plan)
}

/// Consecutive events that share one statement.
struct Run<'a> {
    first: &'a SegmentEvent,
    template: &'a SegmentTemplate,
    events: Range<usize>,
    entries: usize,
    profiles: Vec<serde_json::Map<String, Value>>,
}

impl<'a> Run<'a> {
    fn start(index: usize, event: &'a SegmentEvent, template: &'a SegmentTemplate) -> Self {
        let mut run = Run {
            first: event,
            template,
            events: index..index,
            entries: 0,
            profiles: Vec::new(),
        };
        run.push(index, event);
        run
    }

    fn continues_with(&self, event: &SegmentEvent) -> bool {
        event.kind == self.first.kind && event.segment == self.first.segment
    }

    fn push(&mut self, index: usize, event: &SegmentEvent) {
        self.events.end = index + 1;
        self.entries += 1;
        if let Some(profile) = &event.profile {
            self.profiles.push(profile.fields.clone());
        }
    }

    fn render(self, dialect: SegmentDialect) -> Result<PlannedStatement, PlanError> {
        let segment = &self.first.segment;
        let info = SegmentInfo {
            id: Value::from(segment.id),
            name: segment.name.clone(),
        };
        let sql = self
            .template
            .render(dialect, &info, &self.profiles)
            .map_err(|error| PlanError {
                kind: self.first.kind,
                segment_id: segment.id,
                event: self.events.start,
                error,
            })?;
        Ok(PlannedStatement {
            kind: self.first.kind,
            segment: segment.clone(),
            entries: self.entries,
            events: self.events,
            sql,
        })
    }
}

#[cfg(test)]
mod tests;
