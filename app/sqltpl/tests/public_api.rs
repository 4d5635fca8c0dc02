//! The crate as its callers see it: the seed examples through the public API.

use chrono::{TimeZone, Utc};
use serde_json::json;
use sluice_sqltpl::{
    BindValue, Dialect, Placeholder, PlaceholderValues, SegmentDialect, SegmentInfo, TemplateError,
    parse_segment_template, referenced_placeholders_in, render_placeholders,
};

#[test]
fn pull_sync_seed_001_on_mysql() {
    let template =
        r#"SELECT * FROM invoices WHERE date_paid IS NOT NULL AND date_paid >= "@last_value@""#;
    let values = PlaceholderValues {
        last_value: Some("2019-06-01".into()),
        ..PlaceholderValues::default()
    };
    let rendered = render_placeholders(template, Dialect::Mysql, &values).unwrap();
    assert_eq!(
        rendered.sql,
        "SELECT * FROM invoices WHERE date_paid IS NOT NULL AND date_paid >= ?"
    );
    assert_eq!(rendered.binds, [BindValue::Text("2019-06-01".into())]);
    assert_eq!(
        referenced_placeholders_in(template, Dialect::Mysql).unwrap(),
        [Placeholder::LastValue]
    );
}

#[test]
fn pull_sync_time_window_on_postgres() {
    let template =
        "SELECT * FROM usages WHERE created_at > '${startTime}' AND created_at < '${endTime}'";
    let values = PlaceholderValues {
        start_time: Some(Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap()),
        end_time: Some(Utc.with_ymd_and_hms(2024, 1, 2, 0, 0, 0).unwrap()),
        ..PlaceholderValues::default()
    };
    let rendered = render_placeholders(template, Dialect::Postgres, &values).unwrap();
    assert_eq!(
        rendered.sql,
        "SELECT * FROM usages WHERE created_at > $s_0$2024-01-01 00:00:00.000000+00$s_0$ \
         AND created_at < $s_0$2024-01-02 00:00:00.000000+00$s_0$"
    );
    assert!(rendered.binds.is_empty());
}

#[test]
fn dynamic_command_params_on_sql_server() {
    let template = "SELECT * FROM customers WHERE id = @object.params.customer_id@";
    let values = PlaceholderValues {
        params: json!({"customer_id": 42}).as_object().cloned().unwrap(),
        ..PlaceholderValues::default()
    };
    let rendered = render_placeholders(template, Dialect::Sqlserver, &values).unwrap();
    assert_eq!(rendered.sql, "SELECT * FROM customers WHERE id = @P1");
    assert_eq!(rendered.binds, [BindValue::Int(42)]);
    let error = render_placeholders(template, Dialect::Sqlserver, &PlaceholderValues::default())
        .unwrap_err();
    assert!(matches!(error, TemplateError::Missing { .. }));
    assert_eq!((error.line(), error.column()), (1, 36));
}

#[test]
fn segment_sync_seed_003_on_mysql() {
    let template = parse_segment_template(
        "DELETE FROM mysegment\nWHERE segment_id = {segment_id}\nAND clientId IN ({batch_in \"CustomID\"})",
    )
    .unwrap();
    let segment = SegmentInfo {
        id: json!(3),
        name: "Newsletter".into(),
    };
    let batch: Vec<_> = ["a", "o'brien"]
        .iter()
        .map(|id| json!({"CustomID": id}).as_object().cloned().unwrap())
        .collect();
    assert_eq!(
        template
            .render(SegmentDialect::Mysql, &segment, &batch)
            .unwrap(),
        "DELETE FROM mysegment\nWHERE segment_id = 3\nAND clientId IN ('a', 'o''brien')"
    );
    let error = parse_segment_template("{for $lead = $batch}\n  ({$lead.id})").unwrap_err();
    assert_eq!((error.line(), error.column()), (1, 1));
}
