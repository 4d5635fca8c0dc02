use serde_json::{Value, json};

use super::*;

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

#[test]
fn decimals_are_numbers_only_when_f64_keeps_them_exactly() {
    let cases = [
        ("1.5000000000", json!(1.5)),
        ("-0.25", json!(-0.25)),
        ("0.1", json!(0.1)),
        ("100", json!(100)),
        ("100.000", json!(100)),
        ("-0.000", json!(0)),
        ("+7", json!(7)),
        ("9007199254740993", json!(9_007_199_254_740_993_i64)),
        (
            "18446744073709551615",
            json!(18_446_744_073_709_551_615_u64),
        ),
        ("18446744073709551616", json!("18446744073709551616")),
        (
            "12345678901234567890.1234567890",
            json!("12345678901234567890.1234567890"),
        ),
        ("0.1234567890123456789", json!("0.1234567890123456789")),
        ("123456.7890000000", json!(123_456.789)),
        ("NaN", json!("NaN")),
        ("Infinity", json!("Infinity")),
        ("-Infinity", json!("-Infinity")),
        ("1e5", json!("1e5")),
        ("", json!("")),
        ("-", json!("-")),
        ("1.2.3", json!("1.2.3")),
    ];
    for (text, expected) in cases {
        assert_eq!(decimal_text_to_json(text), expected, "{text}");
    }
}

#[test]
fn floats_keep_their_shortest_form_and_name_non_finite_values() {
    assert_eq!(float_to_json(f64::NAN), json!("NaN"));
    assert_eq!(float_to_json(f64::INFINITY), json!("Infinity"));
    assert_eq!(float_to_json(f64::NEG_INFINITY), json!("-Infinity"));
    assert_eq!(float_to_json(2.5), json!(2.5));
    assert_eq!(f32_to_json(0.1), json!(0.1));
    assert_eq!(f32_to_json(f32::NAN), json!("NaN"));
}

#[test]
fn scaled_integers_format_exactly() {
    assert_eq!(scaled_integer_to_text(12_345, 2), "123.45");
    assert_eq!(scaled_integer_to_text(-5, 3), "-0.005");
    assert_eq!(scaled_integer_to_text(0, 2), "0.00");
    assert_eq!(scaled_integer_to_text(7, 0), "7");
    assert_eq!(
        scaled_integer_to_text(i128::MIN, 38),
        "-1.70141183460469231731687303715884105728"
    );
}

#[test]
fn binary_is_standard_base64_with_padding() {
    assert_eq!(base64_json(b""), json!(""));
    assert_eq!(base64_json(b"\x00\xff\xfe"), json!("AP/+"));
    assert_eq!(base64_json(b"ab"), json!("YWI="));
}

#[test]
fn json_text_is_embedded_and_invalid_json_stays_text() {
    assert_eq!(embedded_json(r#"{"a":[1,2]}"#), json!({"a": [1, 2]}));
    assert_eq!(embedded_json("not json"), json!("not json"));
}

#[test]
fn dates_and_times_use_iso_8601_with_fractions_only_when_needed() {
    let date = NaiveDate::from_ymd_opt(2024, 1, 31).expect("date");
    let time = NaiveTime::from_hms_micro_opt(12, 34, 56, 123_456).expect("time");
    assert_eq!(format_date(date), "2024-01-31");
    assert_eq!(format_time(time), "12:34:56.123456");
    let whole = NaiveTime::from_hms_opt(1, 2, 3).expect("time");
    assert_eq!(format_time(whole), "01:02:03");
    let nanos = NaiveTime::from_hms_nano_opt(1, 2, 3, 100).expect("time");
    assert_eq!(format_time(nanos), "01:02:03.000000100");
    let stamp = NaiveDateTime::new(date, time);
    assert_eq!(format_naive_datetime(stamp), "2024-01-31T12:34:56.123456");
    assert_eq!(format_utc(stamp.and_utc()), "2024-01-31T12:34:56.123456Z");
}

#[test]
fn intervals_are_iso_8601_durations() {
    assert_eq!(iso_duration(0, 0, 0), "PT0S");
    assert_eq!(iso_duration(14, 3, 4_000_000), "P1Y2M3DT4S");
    assert_eq!(iso_duration(0, 0, 3_723_500_000), "PT1H2M3.5S");
    assert_eq!(iso_duration(-1, -2, -1_500_000), "P-1M-2DT-1.5S");
    assert_eq!(iso_duration(0, 1, 0), "P1D");
}

#[test]
fn convert_error_names_the_column_and_type() {
    let error = ConvertError::new("geom", "geometry", "");
    assert_eq!(
        error.to_string(),
        "column \"geom\": type geometry cannot be converted to JSON"
    );
}

#[test]
fn dotted_keys_nest_into_objects_in_order() {
    let flat = object(json!({"id": 1, "address.city": "Oslo", "address.zip": "0150", "name": "x"}));
    let nested = nest_dotted(flat);
    assert_eq!(
        Value::Object(nested.clone()),
        json!({"id": 1, "address": {"city": "Oslo", "zip": "0150"}, "name": "x"})
    );
    let keys: Vec<_> = nested.keys().cloned().collect();
    assert_eq!(keys, ["id", "address", "name"]);
    let deep = nest_dotted(object(json!({"a.b.c": 1, "a.b.d": 2, "a.e": 3})));
    assert_eq!(
        Value::Object(deep),
        json!({"a": {"b": {"c": 1, "d": 2}, "e": 3}})
    );
}

#[test]
fn dotted_keys_stay_flat_on_conflict() {
    // A scalar column keeps its name; the dotted key stays as written.
    let scalar_first = nest_dotted(object(json!({"a": 1, "a.b": 2})));
    assert_eq!(Value::Object(scalar_first), json!({"a": 1, "a.b": 2}));
    let scalar_after = nest_dotted(object(json!({"a.b": 2, "a": 1})));
    assert_eq!(Value::Object(scalar_after), json!({"a": 1, "a.b": 2}));
    // An object column takes nested keys beside its own, unless the key is taken.
    let into_object = nest_dotted(object(json!({"a": {"x": 1}, "a.y": 2, "a.x": 3})));
    assert_eq!(
        Value::Object(into_object),
        json!({"a": {"x": 1, "y": 2}, "a.x": 3})
    );
    // A path through a scalar created by another dotted key.
    let through_scalar = nest_dotted(object(json!({"a.b": 1, "a.b.c": 2})));
    assert_eq!(
        Value::Object(through_scalar),
        json!({"a": {"b": 1}, "a.b.c": 2})
    );
    // Empty segments are not paths.
    let odd = nest_dotted(object(json!({".a": 1, "b.": 2, "c..d": 3, ".": 4})));
    assert_eq!(
        Value::Object(odd),
        json!({".a": 1, "b.": 2, "c..d": 3, ".": 4})
    );
    // A null column is still a value, not an object.
    let null_root = nest_dotted(object(json!({"a": null, "a.b": 1})));
    assert_eq!(Value::Object(null_root), json!({"a": null, "a.b": 1}));
}

#[test]
fn hints_come_from_declared_types() {
    let hints = ColumnHints::from_declared_types([("j", "JSON"), ("b", "boolean"), ("t", "text")]);
    assert!(hints.json.contains("j"));
    assert!(hints.boolean.contains("b"));
    assert!(!hints.json.contains("t") && !hints.boolean.contains("t"));
}
