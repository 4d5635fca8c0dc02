use serde_json::json;

use super::*;

const SEED_ADD: &str = "INSERT INTO mysegment (segId, clientId, updated)
VALUES
{for $index, $lead = $batch}
({segment_id}, \"{$lead.CustomID}\", NOW()){autocomma}
{end}
ON DUPLICATE KEY UPDATE
updated = NOW();";

const SEED_REMOVE: &str = "DELETE FROM mysegment
WHERE segment_id = {segment_id}
AND clientId IN ({batch_in \"CustomID\"})";

const SEED_CLEAR: &str = "DELETE FROM mysegment
WHERE segment_id = {segment_id}";

const SEED_UPSERT_SEGMENT: &str = "INSERT INTO segments (segment_id,name,updated)
VALUES
({segment_id}, \"{segment_name}\", NOW())
ON DUPLICATE KEY UPDATE
name = \"{segment_name}\",
updated = NOW();";

const SEED_DELETE_SEGMENT: &str = "DELETE FROM segments
WHERE segment_id = {segment_id}
LIMIT 1";

fn segment() -> SegmentInfo {
    SegmentInfo {
        id: json!(7),
        name: "VIP's".to_string(),
    }
}

fn profiles(ids: &[&str]) -> Vec<Map<String, Value>> {
    ids.iter()
        .map(|id| {
            json!({"CustomID": id})
                .as_object()
                .cloned()
                .unwrap_or_default()
        })
        .collect()
}

fn render(template: &str, dialect: SegmentDialect, batch: &[Map<String, Value>]) -> String {
    parse_segment_template(template)
        .and_then(|parsed| parsed.render(dialect, &segment(), batch))
        .unwrap_or_else(|error| panic!("{template:?} for {dialect:?}: {error}"))
}

fn syntax_error(template: &str) -> (String, Position) {
    match parse_segment_template(template) {
        Err(TemplateError::Syntax { message, position }) => (message, position),
        other => panic!("{template:?}: expected a syntax error, got {other:?}"),
    }
}

// ---- seed examples ----

#[test]
fn seed_batch_add_mysql() {
    let sql = render(
        SEED_ADD,
        SegmentDialect::Mysql,
        &profiles(&["a1", "b'2", "c\\3"]),
    );
    assert_eq!(
        sql,
        "INSERT INTO mysegment (segId, clientId, updated)
VALUES
(7, 'a1', NOW()),
(7, 'b''2', NOW()),
(7, 'c\\\\3', NOW())
ON DUPLICATE KEY UPDATE
updated = NOW();"
    );
}

#[test]
fn seed_batch_add_single_profile_has_no_comma() {
    let sql = render(SEED_ADD, SegmentDialect::Mysql, &profiles(&["only"]));
    assert!(
        sql.contains("VALUES\n(7, 'only', NOW())\nON DUPLICATE"),
        "{sql}"
    );
}

#[test]
fn seed_batch_add_other_dialects() {
    let batch = profiles(&["a", "it's"]);
    let cases = [
        (
            SegmentDialect::Postgres,
            "(7, $s_0$a$s_0$, NOW()),\n(7, $s_0$it's$s_0$, NOW())\n",
        ),
        (
            SegmentDialect::Sqlite,
            "(7, 'a', NOW()),\n(7, 'it''s', NOW())\n",
        ),
        (
            SegmentDialect::Sqlserver,
            "(7, N'a', NOW()),\n(7, N'it''s', NOW())\n",
        ),
        (
            SegmentDialect::Oracle,
            "(7, 'a', NOW()),\n(7, 'it''s', NOW())\n",
        ),
        (
            SegmentDialect::Clickhouse,
            "(7, 'a', NOW()),\n(7, 'it\\'s', NOW())\n",
        ),
    ];
    for (dialect, rows) in cases {
        let sql = render(SEED_ADD, dialect, &batch);
        assert!(
            sql.contains(&format!("VALUES\n{rows}ON DUPLICATE")),
            "{dialect:?}: {sql}"
        );
    }
}

#[test]
fn seed_batch_remove_uses_batch_in() {
    let batch = profiles(&["a", "b'c", "d"]);
    let sql = render(SEED_REMOVE, SegmentDialect::Mysql, &batch);
    assert_eq!(
        sql,
        "DELETE FROM mysegment\nWHERE segment_id = 7\nAND clientId IN ('a', 'b''c', 'd')"
    );
    let sql = render(SEED_REMOVE, SegmentDialect::Postgres, &batch);
    assert!(
        sql.ends_with("IN ($s_0$a$s_0$, $s_0$b'c$s_0$, $s_0$d$s_0$)"),
        "{sql}"
    );
    let sql = render(SEED_REMOVE, SegmentDialect::Clickhouse, &batch);
    assert!(sql.ends_with("IN ('a', 'b\\'c', 'd')"), "{sql}");
}

#[test]
fn empty_batch_in_is_null() {
    let sql = render(SEED_REMOVE, SegmentDialect::Mysql, &[]);
    assert!(sql.ends_with("IN (NULL)"), "{sql}");
}

#[test]
fn seed_clear_and_delete_segment() {
    assert_eq!(
        render(SEED_CLEAR, SegmentDialect::Mysql, &[]),
        "DELETE FROM mysegment\nWHERE segment_id = 7"
    );
    assert_eq!(
        render(SEED_DELETE_SEGMENT, SegmentDialect::Oracle, &[]),
        "DELETE FROM segments\nWHERE segment_id = 7\nLIMIT 1"
    );
}

#[test]
fn seed_upsert_segment_escapes_the_name() {
    let sql = render(SEED_UPSERT_SEGMENT, SegmentDialect::Mysql, &[]);
    assert_eq!(
        sql,
        "INSERT INTO segments (segment_id,name,updated)
VALUES
(7, 'VIP''s', NOW())
ON DUPLICATE KEY UPDATE
name = 'VIP''s',
updated = NOW();"
    );
}

#[test]
fn string_segment_ids_are_text() {
    let template = parse_segment_template("WHERE id = {segment_id}").unwrap();
    let info = SegmentInfo {
        id: json!("seg-1"),
        name: String::new(),
    };
    assert_eq!(
        template.render(SegmentDialect::Sqlite, &info, &[]).unwrap(),
        "WHERE id = 'seg-1'"
    );
}

// ---- other tags ----

#[test]
fn index_fields_and_paths() {
    let template =
        "{for $i, $p = $batch}({$i}, {$p.age}, '{$p.address.city}', {$p.missing}){autocomma} {end}";
    let batch = vec![
        json!({"age": 30, "address": {"city": "Oslo"}})
            .as_object()
            .cloned()
            .unwrap_or_default(),
        json!({"age": null, "address": {"city": "Köln"}})
            .as_object()
            .cloned()
            .unwrap_or_default(),
    ];
    assert_eq!(
        render(template, SegmentDialect::Mysql, &batch),
        "(0, 30, 'Oslo', NULL), (1, NULL, 'Köln', NULL) "
    );
}

#[test]
fn loop_without_index_and_empty_batch() {
    let template = "{for $lead = $batch}{$lead.CustomID}{autocomma}{end}";
    assert_eq!(
        render(template, SegmentDialect::Sqlite, &profiles(&["a", "b"])),
        "'a','b'"
    );
    assert_eq!(render(template, SegmentDialect::Sqlite, &[]), "");
}

#[test]
fn braces_that_are_not_tags_stay() {
    let template = "SELECT '{\"a\": 1}', '{{segment_id}', {segment_id}";
    assert_eq!(
        render(template, SegmentDialect::Postgres, &[]),
        "SELECT '{\"a\": 1}', '{segment_id}', 7"
    );
}

#[test]
fn tags_in_comments_stay_as_written() {
    let template =
        "-- for {segment_name}\nDELETE FROM t WHERE id = {segment_id} /* {segment_name} */";
    assert_eq!(
        render(template, SegmentDialect::Mysql, &[]),
        "-- for {segment_name}\nDELETE FROM t WHERE id = 7 /* {segment_name} */"
    );
}

#[test]
fn tag_inside_a_larger_literal_is_escaped_into_it() {
    let template = "SELECT 'Segment: {segment_name}!'";
    assert_eq!(
        render(template, SegmentDialect::Mysql, &[]),
        "SELECT 'Segment: VIP''s!'"
    );
    assert_eq!(
        render(template, SegmentDialect::Postgres, &[]),
        "SELECT $s_0$Segment: VIP's!$s_0$"
    );
    assert_eq!(
        render(template, SegmentDialect::Clickhouse, &[]),
        "SELECT 'Segment: VIP\\'s!'"
    );
}

#[test]
fn hostile_profile_values_stay_literals() {
    let hostile = [
        "' OR 1=1 --",
        "\\'; DROP TABLE x; --",
        "\"); DROP TABLE x; --",
        "$s_0$",
        "*/",
        "\\",
        "\n",
    ];
    for dialect in SegmentDialect::ALL {
        let benign = render(SEED_ADD, dialect, &profiles(&["a", "b"]));
        let benign_shape = shape(&benign, dialect);
        for value in hostile {
            let sql = render(SEED_ADD, dialect, &profiles(&[value, "b"]));
            assert_eq!(
                shape(&sql, dialect),
                benign_shape,
                "{dialect:?} {value:?}: {sql}"
            );
            let sql = render(SEED_REMOVE, dialect, &profiles(&[value, "b"]));
            assert_eq!(
                shape(&sql, dialect),
                shape(
                    &render(SEED_REMOVE, dialect, &profiles(&["a", "b"])),
                    dialect
                )
            );
        }
    }
}

fn shape(sql: &str, dialect: SegmentDialect) -> Vec<String> {
    crate::lexer::tokenize(sql, dialect.flavor(), &crate::lexer::NoPlaceholders)
        .unwrap_or_else(|error| panic!("{sql:?}: {error}"))
        .into_iter()
        .filter(|token| token.kind != TokenKind::Whitespace)
        .map(|token| match token.kind {
            TokenKind::Literal(_) => "LIT".to_string(),
            _ => sql[token.start..token.end].to_string(),
        })
        .collect()
}

#[test]
fn nul_is_refused_where_it_cannot_be_written() {
    let batch = profiles(&["a\0b"]);
    let template = parse_segment_template("SELECT\n {for $l = $batch}{$l.CustomID}{end}").unwrap();
    let error = template
        .render(SegmentDialect::Postgres, &segment(), &batch)
        .unwrap_err();
    assert_eq!(
        error,
        TemplateError::NulInValue {
            placeholder: "{$l.CustomID}".into(),
            dialect: "PostgreSQL",
            position: Position {
                line: 2,
                column: 19
            },
        }
    );
    assert_eq!(
        template
            .render(SegmentDialect::Mysql, &segment(), &batch)
            .unwrap(),
        "SELECT\n 'a\\0b'"
    );
}

#[test]
fn batch_in_inside_quotes_is_refused() {
    let template = parse_segment_template("WHERE a IN ('{batch_in \"x\"}')").unwrap();
    let error = template
        .render(SegmentDialect::Mysql, &segment(), &[])
        .unwrap_err();
    assert!(
        matches!(error, TemplateError::CannotSplice { .. }),
        "{error}"
    );
    assert_eq!(error.column(), 14);
}

#[test]
fn tag_after_a_backslash_is_refused() {
    let template = parse_segment_template("SELECT 'a\\{segment_name}'").unwrap();
    assert_eq!(
        template
            .render(SegmentDialect::Postgres, &segment(), &[])
            .unwrap(),
        "SELECT $s_0$a\\VIP's$s_0$"
    );
    let error = template
        .render(SegmentDialect::Mysql, &segment(), &[])
        .unwrap_err();
    assert!(
        matches!(error, TemplateError::CannotSplice { .. }),
        "{error}"
    );
}

#[test]
fn sql_errors_point_into_the_template() {
    let template = parse_segment_template("{for $l = $batch}x{end}\nSELECT 'abc").unwrap();
    let error = template
        .render(SegmentDialect::Mysql, &segment(), &profiles(&["a", "b"]))
        .unwrap_err();
    assert_eq!(
        error,
        TemplateError::UnterminatedString {
            position: Position { line: 2, column: 8 }
        }
    );
}

// ---- syntax errors ----

#[test]
fn syntax_errors_with_line_and_column() {
    let cases: &[(&str, &str, usize, usize)] = &[
        ("SELECT {segment_idd}", "unknown tag {segment_idd}", 1, 8),
        ("a\n  {end}", "{end} without a {for …}", 2, 3),
        (
            "x\n{for $i, $l = $batch}\n(1)",
            "the loop opened on line 2 has no {end}",
            2,
            1,
        ),
        (
            "{autocomma}",
            "{autocomma} is only allowed inside {for …}",
            1,
            1,
        ),
        ("{$lead.x}", "$lead is only available inside {for …}", 1, 1),
        (
            "{for $l = $batch}{$other.x}{end}",
            "unknown variable $other",
            1,
            18,
        ),
        (
            "{for $l = $batch}{$l}{end}",
            "name a field: {$l.FIELD}",
            1,
            18,
        ),
        (
            "{for $l = $batch}{for $m = $batch}{end}{end}",
            "loops cannot be nested",
            1,
            18,
        ),
        (
            "{for $l = $rows}{end}",
            "a loop can only go over $batch",
            1,
            1,
        ),
        (
            "{for $l $batch}{end}",
            "expected {for $index, $lead = $batch}",
            1,
            1,
        ),
        (
            "{for $a, $a = $batch}{end}",
            "expected {for $index, $lead = $batch}",
            1,
            1,
        ),
        ("{batch_in CustomID}", "expected {batch_in \"FIELD\"}", 1, 1),
        ("{batch_in \"\"}", "expected {batch_in \"FIELD\"}", 1, 1),
        (
            "x {segment_id\n}",
            "unclosed tag: expected `}` on the same line",
            1,
            3,
        ),
        (
            "{for $l = $batch}{$l.a..b}{end}",
            "malformed variable {$l.a..b}",
            1,
            18,
        ),
    ];
    for (template, message, line, column) in cases {
        assert_eq!(
            syntax_error(template),
            (
                message.to_string(),
                Position {
                    line: *line,
                    column: *column
                }
            ),
            "{template}"
        );
    }
}

#[test]
fn seed_templates_parse() {
    for template in [
        SEED_ADD,
        SEED_REMOVE,
        SEED_CLEAR,
        SEED_UPSERT_SEGMENT,
        SEED_DELETE_SEGMENT,
    ] {
        let parsed = parse_segment_template(template).unwrap();
        assert_eq!(parsed.source(), template);
    }
}

#[test]
fn random_templates_never_panic() {
    const PIECES: &[&str] = &[
        "{",
        "}",
        "{{",
        "{segment_id}",
        "{segment_name}",
        "{for $i, $l = $batch}",
        "{end}",
        "{$i}",
        "{$l.CustomID}",
        "{autocomma}",
        "{batch_in \"CustomID\"}",
        "'",
        "\"",
        "\\",
        "--",
        "\n",
        "/*",
        "*/",
        " ",
        "x",
        "$",
        "$$",
        "`",
        "[",
        "]",
    ];
    let mut state = 0x1234_5678_9abc_def1_u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let batch = profiles(&["a'", "b\\", "c\0"]);
    for _ in 0..5000 {
        let len = (next() % 20) as usize;
        let template: String = (0..len)
            .map(|_| PIECES[(next() % PIECES.len() as u64) as usize])
            .collect();
        if let Ok(parsed) = parse_segment_template(&template) {
            for dialect in SegmentDialect::ALL {
                if let Ok(sql) = parsed.render(dialect, &segment(), &batch) {
                    shape(&sql, dialect);
                }
            }
        }
    }
}
