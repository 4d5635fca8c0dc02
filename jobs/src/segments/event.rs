//! One segment-sync outbox entry, read strictly: the control plane writes
//! exactly these shapes, so anything else is a bug to report, not to guess at.
//!
//! ```json
//! {"op": "add" | "remove", "segment": {"id": 7, "name": "VIP"},
//!  "profile": {"id": "prf_1", "fields": {"CustomID": "c-1"}}}
//! {"op": "clear" | "upsert_segment" | "delete_segment", "segment": {"id": 7, "name": "VIP"}}
//! ```

use std::fmt;

use serde::Deserialize;
use serde_json::{Map, Value};

/// What happened to a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    Add,
    Remove,
    Clear,
    UpsertSegment,
    DeleteSegment,
}

impl EventKind {
    pub const ALL: [EventKind; 5] = [
        EventKind::Add,
        EventKind::Remove,
        EventKind::Clear,
        EventKind::UpsertSegment,
        EventKind::DeleteSegment,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            EventKind::Add => "add",
            EventKind::Remove => "remove",
            EventKind::Clear => "clear",
            EventKind::UpsertSegment => "upsert_segment",
            EventKind::DeleteSegment => "delete_segment",
        }
    }

    /// Adding and removing carry a profile; the other events only a segment.
    pub const fn has_profile(self) -> bool {
        matches!(self, EventKind::Add | EventKind::Remove)
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentRef {
    pub id: i64,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileRef {
    pub id: String,
    pub fields: Map<String, Value>,
}

/// One event; `profile` is set exactly when [`EventKind::has_profile`].
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentEvent {
    pub kind: EventKind,
    pub segment: SegmentRef,
    pub profile: Option<ProfileRef>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed segment-sync event: {0}")]
pub struct EventError(String);

#[derive(Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Payload {
    Add(WithProfile),
    Remove(WithProfile),
    Clear(SegmentOnly),
    UpsertSegment(SegmentOnly),
    DeleteSegment(SegmentOnly),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WithProfile {
    segment: SegmentRef,
    profile: ProfileRef,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SegmentOnly {
    segment: SegmentRef,
}

impl SegmentEvent {
    /// Reads an outbox entry's payload; the error says what is wrong (an
    /// unknown op is named).
    pub fn from_payload(payload: &Value) -> Result<SegmentEvent, EventError> {
        if !payload.is_object() {
            return Err(EventError(format!("expected a JSON object, not {payload}")));
        }
        let payload = Payload::deserialize(payload).map_err(|error| {
            EventError(match payload.get("op").and_then(Value::as_str) {
                Some(op) => format!("op {op:?}: {error}"),
                None => error.to_string(),
            })
        })?;
        let with_profile = |kind, event: WithProfile| SegmentEvent {
            kind,
            segment: event.segment,
            profile: Some(event.profile),
        };
        let segment_only = |kind, event: SegmentOnly| SegmentEvent {
            kind,
            segment: event.segment,
            profile: None,
        };
        Ok(match payload {
            Payload::Add(event) => with_profile(EventKind::Add, event),
            Payload::Remove(event) => with_profile(EventKind::Remove, event),
            Payload::Clear(event) => segment_only(EventKind::Clear, event),
            Payload::UpsertSegment(event) => segment_only(EventKind::UpsertSegment, event),
            Payload::DeleteSegment(event) => segment_only(EventKind::DeleteSegment, event),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_shape_is_read() {
        let add = SegmentEvent::from_payload(&json!({
            "op": "add",
            "segment": {"id": 7, "name": "VIP"},
            "profile": {"id": "prf_1", "fields": {"CustomID": "c-1", "n": 2}}
        }))
        .expect("add");
        assert_eq!(add.kind, EventKind::Add);
        assert_eq!(
            add.segment,
            SegmentRef {
                id: 7,
                name: "VIP".into()
            }
        );
        let profile = add.profile.expect("profile");
        assert_eq!(profile.id, "prf_1");
        assert_eq!(profile.fields["CustomID"], json!("c-1"));

        for (op, kind) in [
            ("clear", EventKind::Clear),
            ("upsert_segment", EventKind::UpsertSegment),
            ("delete_segment", EventKind::DeleteSegment),
        ] {
            let event =
                SegmentEvent::from_payload(&json!({"op": op, "segment": {"id": 1, "name": "s"}}))
                    .expect(op);
            assert_eq!((event.kind, event.profile), (kind, None));
        }
    }

    #[test]
    fn anything_else_is_an_error_saying_what_is_wrong() {
        let cases = [
            (
                json!({"op": "rename", "segment": {"id": 1, "name": "s"}}),
                "rename",
            ),
            (json!({"segment": {"id": 1, "name": "s"}}), "op"),
            (
                json!({"op": "add", "segment": {"id": 1, "name": "s"}}),
                "profile",
            ),
            (
                json!({"op": "add", "segment": {"id": "1", "name": "s"},
                    "profile": {"id": "p", "fields": {}}}),
                "op \"add\": invalid type: string \"1\", expected i64",
            ),
            (
                json!({"op": "remove", "segment": {"id": 1, "name": "s"},
                    "profile": {"id": "p", "fields": []}}),
                "map",
            ),
            (
                json!({"op": "clear", "segment": {"id": 1, "name": "s"},
                    "profile": {"id": "p", "fields": {}}}),
                "profile",
            ),
            (json!({"op": "clear", "segment": {"id": 1}}), "name"),
            (json!("add"), "expected a JSON object"),
            (json!(null), "expected a JSON object"),
        ];
        for (payload, named) in cases {
            let error = SegmentEvent::from_payload(&payload).expect_err("refused");
            assert!(error.to_string().contains(named), "{payload}: {error}");
        }
    }
}
