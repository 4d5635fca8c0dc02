use serde_json::json;
use sluice_sqltpl::SegmentDialect;

use super::*;
use crate::segments::event::ProfileRef;

fn segment(id: i64) -> SegmentRef {
    SegmentRef {
        id,
        name: format!("seg {id}"),
    }
}

fn profile_event(kind: EventKind, segment_id: i64, custom_id: &str) -> SegmentEvent {
    SegmentEvent {
        kind,
        segment: segment(segment_id),
        profile: Some(ProfileRef {
            id: format!("prf_{custom_id}"),
            fields: json!({"CustomID": custom_id})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        }),
    }
}

fn segment_event(kind: EventKind, segment_id: i64) -> SegmentEvent {
    SegmentEvent {
        kind,
        segment: segment(segment_id),
        profile: None,
    }
}

fn templates(with_optional: bool) -> SyncTemplates {
    SyncTemplates::parse(&TemplateSources {
        add: "INSERT INTO t VALUES {for $lead = $batch}({segment_id}, {$lead.CustomID}){autocomma}{end}",
        remove: "DELETE FROM t WHERE s = {segment_id} AND c IN ({batch_in \"CustomID\"})",
        clear: with_optional.then_some("DELETE FROM t WHERE s = {segment_id}"),
        upsert_segment: with_optional.then_some("UPSERT {segment_id} {segment_name}"),
        delete_segment: None,
    })
    .expect("templates parse")
}

#[test]
fn runs_of_the_same_event_share_a_statement_and_keep_their_order() {
    use EventKind::{Add, Remove};
    let events = [
        profile_event(Add, 1, "a"),
        profile_event(Add, 1, "b"),
        profile_event(Remove, 1, "a"),
        profile_event(Add, 1, "c"),
    ];
    let plan = plan_batch(&events, &templates(false), SegmentDialect::Mysql).expect("plan");
    let summary: Vec<_> = plan
        .statements
        .iter()
        .map(|s| (s.kind, s.entries, s.events.clone(), s.sql.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            (Add, 2, 0..2, "INSERT INTO t VALUES (1, 'a'),(1, 'b')"),
            (Remove, 1, 2..3, "DELETE FROM t WHERE s = 1 AND c IN ('a')"),
            (Add, 1, 3..4, "INSERT INTO t VALUES (1, 'c')"),
        ]
    );
    assert_eq!(plan.skipped, 0);
}

#[test]
fn another_segment_starts_another_statement() {
    let events = [
        profile_event(EventKind::Add, 1, "a"),
        profile_event(EventKind::Add, 2, "a"),
    ];
    let plan = plan_batch(&events, &templates(false), SegmentDialect::Postgres).expect("plan");
    assert_eq!(plan.statements.len(), 2);
    assert_eq!(plan.statements[1].segment, segment(2));
}

#[test]
fn events_without_a_template_are_skipped_and_counted() {
    let events = [
        profile_event(EventKind::Add, 1, "a"),
        segment_event(EventKind::Clear, 1),
        segment_event(EventKind::DeleteSegment, 1),
        profile_event(EventKind::Add, 1, "b"),
    ];
    let plan = plan_batch(&events, &templates(false), SegmentDialect::Sqlite).expect("plan");
    assert_eq!(plan.skipped, 2);
    // Nothing ran in between, so both adds share one statement.
    assert_eq!(plan.statements.len(), 1);
    assert_eq!(plan.statements[0].entries, 2);
    assert_eq!(plan.statements[0].events, 0..4);

    let plan = plan_batch(&events, &templates(true), SegmentDialect::Sqlite).expect("plan");
    assert_eq!(plan.skipped, 1);
    let kinds: Vec<_> = plan.statements.iter().map(|s| s.kind).collect();
    assert_eq!(kinds, [EventKind::Add, EventKind::Clear, EventKind::Add]);
    assert_eq!(plan.statements[1].sql, "DELETE FROM t WHERE s = 1");
}

#[test]
fn missing_fields_render_as_null_and_segment_names_as_literals() {
    let mut event = profile_event(EventKind::Add, 3, "x");
    if let Some(profile) = &mut event.profile {
        profile.fields.clear();
    }
    let events = [event, segment_event(EventKind::UpsertSegment, 3)];
    let plan = plan_batch(&events, &templates(true), SegmentDialect::Sqlite).expect("plan");
    assert_eq!(plan.statements[0].sql, "INSERT INTO t VALUES (3, NULL)");
    assert_eq!(plan.statements[1].sql, "UPSERT 3 'seg 3'");
}

#[test]
fn render_failures_name_the_event_and_template() {
    let events = [
        profile_event(EventKind::Add, 1, "ok"),
        profile_event(EventKind::Remove, 1, "nul\0byte"),
    ];
    let error = plan_batch(&events, &templates(false), SegmentDialect::Postgres)
        .expect_err("PostgreSQL text cannot hold NUL");
    assert_eq!(
        (error.kind, error.segment_id, error.event),
        (EventKind::Remove, 1, 1)
    );
    assert!(error.to_string().contains("remove template"), "{error}");
}

#[test]
fn template_syntax_errors_name_the_template() {
    let error = SyncTemplates::parse(&TemplateSources {
        add: "INSERT {segment_id}",
        remove: "DELETE {for $lead = $batch}",
        clear: None,
        upsert_segment: None,
        delete_segment: None,
    })
    .expect_err("unclosed loop");
    assert_eq!(error.kind, EventKind::Remove);
    assert!(
        error.to_string().starts_with("the remove template: "),
        "{error}"
    );
}

#[test]
fn templates_are_checked_for_the_connectors_dialect_when_saved() {
    let sources = TemplateSources {
        add: "INSERT INTO t VALUES ({segment_id}, \"id {segment_name}\")",
        remove: "DELETE FROM t WHERE c IN ({batch_in \"CustomID\"})",
        clear: None,
        upsert_segment: None,
        delete_segment: None,
    };
    // MySQL reads "id …" as a string a value may be spliced into; PostgreSQL
    // as an identifier, where no value may go.
    assert!(SyncTemplates::parse_for_dialect(&sources, SegmentDialect::Mysql).is_ok());
    let error = SyncTemplates::parse_for_dialect(&sources, SegmentDialect::Postgres)
        .expect_err("a value in a quoted identifier");
    assert_eq!(error.kind, EventKind::Add);
    assert!(error.to_string().contains("line 1"), "{error}");
}
