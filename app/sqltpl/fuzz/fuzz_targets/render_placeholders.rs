//! `render_placeholders` and `referenced_placeholders` must never panic, and a
//! PostgreSQL rendering of any value must keep the value inside one literal.

#![no_main]

use chrono::{TimeZone, Utc};
use libfuzzer_sys::fuzz_target;
use sluice_sqltpl::{
    Dialect, PlaceholderValues, referenced_placeholders, referenced_placeholders_in,
    render_placeholders,
};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The input is "template \u{1} value": the value feeds every placeholder.
    let (template, value) = text.split_once('\u{1}').unwrap_or((text, "v"));
    let values = PlaceholderValues {
        last_value: Some(value.to_string()),
        params: serde_json::json!({"p": value, "n": -1.5, "o": {"k": value}})
            .as_object()
            .cloned()
            .unwrap_or_default(),
        start_time: Utc.timestamp_opt(1_700_000_000, 123_456_789).single(),
        end_time: None,
    };
    for dialect in Dialect::ALL {
        let _ = render_placeholders(template, dialect, &values);
        let _ = referenced_placeholders_in(template, dialect);
    }
    let _ = referenced_placeholders(template);

    // One bare placeholder: the rendering is the value in one literal.
    if let Ok(rendered) = render_placeholders("SELECT @last_value@ x", Dialect::Postgres, &values) {
        let body = rendered
            .sql
            .strip_prefix("SELECT ")
            .and_then(|rest| rest.strip_suffix(" x"))
            .expect("one literal between the keywords");
        let tag_len = body[1..].find('$').expect("a dollar tag") + 2;
        let (tag, rest) = body.split_at(tag_len);
        let inner = rest.strip_suffix(tag).expect("closed by its tag");
        assert_eq!(inner, value);
        assert!(
            !format!("{inner}$").contains(tag),
            "tag occurs in the value"
        );
    }
});
