use chrono::TimeZone;
use serde_json::json;

use super::*;
use crate::lexer::{NoPlaceholders, Quote, TokenKind, tokenize};

const SEED_001: &str =
    r#"SELECT * FROM invoices WHERE date_paid IS NOT NULL AND date_paid >= "@last_value@""#;

const SEED_000_CUSTOMERS: &str = r#"SELECT 
    customer_id AS "id", 
    customer_name AS "name", 
    email AS "primaryEmail", 
    address_line_1 AS "addressLine1",
    address_line_2 AS "addressLine2",
    city AS "address_city",
    state AS "address_state",
    country AS "address_country",
    currency AS "currency",
    phone AS "phone"
FROM customers 
WHERE created_at > '${startTime}' 
AND created_at < '${endTime}'"#;

const SEED_000_EVENTS: &str = r#"SELECT 
    event_id AS "id", 
    account_id AS "accountId", 
    event_name AS "schemaName",
    attributes AS "attributes",
    dimensions AS "dimensions",
    created_at AS "timestamp" 
FROM events 
WHERE created_at > '${startTime}' 
AND created_at < '${endTime}'"#;

const SEED_000_USAGES: &str = r#"SELECT 
    event_id AS "id", 
    account_id AS "accountId", 
    usage_count AS "usage",
    created_at AS "timestamp" 
FROM usages 
WHERE created_at > '${startTime}' 
AND created_at < '${endTime}'"#;

const HOSTILE: &[&str] = &[
    "' OR 1=1 --",
    "\\'; DROP TABLE x; --",
    "$s_0$",
    "$s_0$ OR 1=1 --",
    "x$s_0",
    "$$",
    "$1",
    "*/",
    "/*",
    "\\",
    "\\\\",
    "\"",
    "\"; DROP TABLE x; --",
    "`",
    "]",
    "]'",
    "'",
    "''",
    "@last_value@",
    "${startTime}",
    "\n-- \n",
    "\r\n",
    "\u{1a}",
    "ünïcødé ✓ 😀 \u{202e}",
    "",
    " ",
];

fn with_last_value(value: &str) -> PlaceholderValues {
    PlaceholderValues {
        last_value: Some(value.to_string()),
        ..PlaceholderValues::default()
    }
}

fn with_params(params: serde_json::Value) -> PlaceholderValues {
    PlaceholderValues {
        params: params.as_object().cloned().unwrap_or_default(),
        ..PlaceholderValues::default()
    }
}

fn window() -> PlaceholderValues {
    PlaceholderValues {
        start_time: Some(Utc.with_ymd_and_hms(2024, 3, 1, 12, 0, 0).unwrap()),
        end_time: Some(
            Utc.with_ymd_and_hms(2024, 3, 2, 8, 30, 15).unwrap()
                + chrono::Duration::microseconds(123_456),
        ),
        ..PlaceholderValues::default()
    }
}

fn render(template: &str, dialect: Dialect, values: &PlaceholderValues) -> Rendered {
    render_placeholders(template, dialect, values)
        .unwrap_or_else(|error| panic!("{template:?} for {dialect:?}: {error}"))
}

fn text(value: &str) -> BindValue {
    BindValue::Text(value.to_string())
}

/// Significant tokens: literals as `LIT`, everything else as written.
fn shape(sql: &str, dialect: Dialect) -> Vec<String> {
    tokenize(sql, dialect.flavor(), &NoPlaceholders)
        .unwrap_or_else(|error| panic!("{sql:?} does not lex: {error}"))
        .into_iter()
        .filter(|token| token.kind != TokenKind::Whitespace)
        .map(|token| match token.kind {
            TokenKind::Literal(_) => "LIT".to_string(),
            _ => sql[token.start..token.end].to_string(),
        })
        .collect()
}

/// The template's own significant tokens, each placeholder (or literal made
/// of one placeholder) standing as one literal token.
fn template_shape_with_literals(template: &str) -> Vec<String> {
    tokenize(template, Flavor::Postgres, &PlaceholderSyntax)
        .unwrap()
        .into_iter()
        .filter(|token| token.kind != TokenKind::Whitespace)
        .map(|token| match token.kind {
            TokenKind::Literal(_) | TokenKind::Placeholder(_) => "LIT".to_string(),
            _ => template[token.start..token.end].to_string(),
        })
        .collect()
}

/// The contents of the dollar-quoted literals of a PostgreSQL statement.
fn dollar_contents(sql: &str) -> Vec<String> {
    tokenize(sql, Flavor::Postgres, &NoPlaceholders)
        .unwrap()
        .into_iter()
        .filter_map(|token| match token.kind {
            TokenKind::Literal(literal) if literal.quote == Quote::Dollar => {
                Some(sql[literal.content_start..literal.content_end].to_string())
            }
            _ => None,
        })
        .collect()
}

/// The Postgres rendering of `value` in `template` has the template's token
/// structure, and its literals hold exactly the values.
fn assert_postgres_safe(template: &str, value: &str) {
    let rendered = render(template, Dialect::Postgres, &with_last_value(value));
    assert!(rendered.binds.is_empty());
    assert_eq!(
        shape(&rendered.sql, Dialect::Postgres),
        template_shape_with_literals(template),
        "structure changed for {value:?}: {}",
        rendered.sql
    );
    let contents = dollar_contents(&rendered.sql);
    assert!(
        !contents.is_empty(),
        "no dollar literal in {}",
        rendered.sql
    );
    assert!(
        contents.iter().all(|content| content == value),
        "{contents:?} != {value:?}"
    );
}

// ---- seeds ----

#[test]
fn seed_001_last_value_in_double_quotes_postgres() {
    let rendered = render(SEED_001, Dialect::Postgres, &with_last_value("2019-06-01"));
    assert_eq!(
        rendered.sql,
        "SELECT * FROM invoices WHERE date_paid IS NOT NULL AND date_paid >= $s_0$2019-06-01$s_0$"
    );
    assert!(rendered.binds.is_empty());
}

#[test]
fn seed_001_last_value_in_double_quotes_bind_dialects() {
    let head = "SELECT * FROM invoices WHERE date_paid IS NOT NULL AND date_paid >= ";
    for (dialect, marker) in [
        (Dialect::Mysql, "?"),
        (Dialect::Sqlite, "?"),
        (Dialect::Sqlserver, "@P1"),
        (Dialect::Oracle, ":1"),
    ] {
        let rendered = render(SEED_001, dialect, &with_last_value("2019-06-01"));
        assert_eq!(rendered.sql, format!("{head}{marker}"), "{dialect:?}");
        assert_eq!(rendered.binds, [text("2019-06-01")], "{dialect:?}");
    }
}

#[test]
fn seed_001_without_last_value_renders_null() {
    let rendered = render(SEED_001, Dialect::Postgres, &PlaceholderValues::default());
    assert!(
        rendered.sql.ends_with("date_paid >= NULL"),
        "{}",
        rendered.sql
    );
    let rendered = render(SEED_001, Dialect::Mysql, &PlaceholderValues::default());
    assert_eq!(rendered.binds, [BindValue::Null]);
}

#[test]
fn seed_000_time_windows_postgres() {
    for template in [SEED_000_CUSTOMERS, SEED_000_EVENTS, SEED_000_USAGES] {
        let rendered = render(template, Dialect::Postgres, &window());
        let expected_tail = "WHERE created_at > $s_0$2024-03-01 12:00:00.000000+00$s_0$ \n\
                             AND created_at < $s_0$2024-03-02 08:30:15.123456+00$s_0$";
        assert!(rendered.sql.ends_with(expected_tail), "{}", rendered.sql);
        assert_eq!(
            shape(&rendered.sql, Dialect::Postgres),
            template_shape_with_literals(template)
        );
    }
}

#[test]
fn seed_000_time_windows_bind_dialects() {
    let cases = [
        (
            Dialect::Mysql,
            "WHERE created_at > ? \nAND created_at < ?",
            ["2024-03-01 12:00:00.000000", "2024-03-02 08:30:15.123456"],
        ),
        (
            Dialect::Sqlite,
            "WHERE created_at > ? \nAND created_at < ?",
            ["2024-03-01T12:00:00.000000Z", "2024-03-02T08:30:15.123456Z"],
        ),
        (
            Dialect::Sqlserver,
            "WHERE created_at > @P1 \nAND created_at < @P2",
            ["2024-03-01T12:00:00.000", "2024-03-02T08:30:15.123"],
        ),
        (
            Dialect::Oracle,
            "WHERE created_at > :1 \nAND created_at < :2",
            ["2024-03-01 12:00:00.000000", "2024-03-02 08:30:15.123456"],
        ),
    ];
    for template in [SEED_000_CUSTOMERS, SEED_000_EVENTS, SEED_000_USAGES] {
        for (dialect, tail, times) in &cases {
            let rendered = render(template, *dialect, &window());
            assert!(
                rendered.sql.ends_with(tail),
                "{dialect:?}: {}",
                rendered.sql
            );
            assert_eq!(rendered.binds, [text(times[0]), text(times[1])]);
            // Only the placeholders changed: the column aliases stay quoted.
            assert!(rendered.sql.contains(r#"AS "id""#));
        }
    }
}

// ---- each dialect, bare placeholders ----

#[test]
fn bare_last_value_each_dialect() {
    let template = "SELECT * FROM t WHERE id > @last_value@ ORDER BY id";
    let values = with_last_value("41");
    let expected = [
        (
            Dialect::Postgres,
            "SELECT * FROM t WHERE id > $s_0$41$s_0$ ORDER BY id",
        ),
        (Dialect::Mysql, "SELECT * FROM t WHERE id > ? ORDER BY id"),
        (Dialect::Sqlite, "SELECT * FROM t WHERE id > ? ORDER BY id"),
        (
            Dialect::Sqlserver,
            "SELECT * FROM t WHERE id > @P1 ORDER BY id",
        ),
        (Dialect::Oracle, "SELECT * FROM t WHERE id > :1 ORDER BY id"),
    ];
    for (dialect, sql) in expected {
        let rendered = render(template, dialect, &values);
        assert_eq!(rendered.sql, sql);
        let expected_binds = if dialect == Dialect::Postgres {
            vec![]
        } else {
            vec![text("41")]
        };
        assert_eq!(rendered.binds, expected_binds);
    }
}

#[test]
fn bind_markers_are_numbered_in_order() {
    let template = "SELECT * FROM t WHERE a = @object.params.a@ AND b = '@object.params.b@' \
                    AND c > @last_value@ AND d < ${endTime}";
    let mut values = with_params(json!({"a": 1, "b": "two"}));
    values.last_value = Some("three".into());
    values.end_time = window().end_time;
    let rendered = render(template, Dialect::Sqlserver, &values);
    assert_eq!(
        rendered.sql,
        "SELECT * FROM t WHERE a = @P1 AND b = @P2 AND c > @P3 AND d < @P4"
    );
    assert_eq!(
        rendered.binds,
        [
            BindValue::Int(1),
            text("two"),
            text("three"),
            text("2024-03-02T08:30:15.123")
        ]
    );
    let rendered = render(template, Dialect::Oracle, &values);
    assert_eq!(
        rendered.sql,
        "SELECT * FROM t WHERE a = :1 AND b = :2 AND c > :3 AND d < :4"
    );
}

#[test]
fn param_typing_postgres_literals() {
    let values = with_params(json!({
        "s": "x", "i": 42, "neg": -7, "f": 1.5, "t": true, "n": null,
        "arr": [1, 2], "obj": {"k": "v"}, "nested": {"a": {"b": "deep"}}
    }));
    let cases = [
        ("@object.params.s@", "$s_0$x$s_0$"),
        ("@object.params.i@", "42"),
        ("@object.params.neg@", "(-7)"),
        ("@object.params.f@", "1.5"),
        ("@object.params.t@", "TRUE"),
        ("@object.params.n@", "NULL"),
        ("@object.params.arr@", "$s_0$[1,2]$s_0$"),
        ("@object.params.obj@", r#"$s_0${"k":"v"}$s_0$"#),
        ("@object.params.nested.a.b@", "$s_0$deep$s_0$"),
        ("'@object.params.i@'", "42"),
    ];
    for (placeholder, literal) in cases {
        let rendered = render(&format!("SELECT {placeholder}"), Dialect::Postgres, &values);
        assert_eq!(rendered.sql, format!("SELECT {literal}"), "{placeholder}");
    }
}

#[test]
fn param_typing_binds() {
    let values = with_params(json!({
        "s": "x", "i": 42, "f": 1.5, "t": false, "n": null, "arr": [1, "a"], "big": u64::MAX
    }));
    let template = "SELECT @object.params.s@, @object.params.i@, @object.params.f@, \
                    @object.params.t@, @object.params.n@, @object.params.arr@, @object.params.big@";
    let rendered = render(template, Dialect::Mysql, &values);
    assert_eq!(rendered.sql, "SELECT ?, ?, ?, ?, ?, ?, ?");
    assert_eq!(
        rendered.binds,
        [
            text("x"),
            BindValue::Int(42),
            BindValue::Float(1.5),
            BindValue::Bool(false),
            BindValue::Null,
            text(r#"[1,"a"]"#),
            text("18446744073709551615"),
        ]
    );
}

// ---- missing values ----

#[test]
fn missing_param_names_placeholder_and_position() {
    let template = "SELECT *\nFROM t WHERE id = @object.params.customer_id@";
    let error =
        render_placeholders(template, Dialect::Mysql, &PlaceholderValues::default()).unwrap_err();
    assert_eq!(
        error,
        TemplateError::Missing {
            placeholder: "@object.params.customer_id@".into(),
            position: Position {
                line: 2,
                column: 19
            },
        }
    );
    assert_eq!(
        error.to_string(),
        "line 2, column 19: no value for @object.params.customer_id@"
    );
}

#[test]
fn missing_nested_param_path() {
    let values = with_params(json!({"a": {"b": 1}, "s": "text"}));
    for template in [
        "@object.params.a.c@",
        "@object.params.s.x@",
        "@object.params.a.b.c@",
    ] {
        let error = render_placeholders(template, Dialect::Postgres, &values).unwrap_err();
        assert!(
            matches!(error, TemplateError::Missing { .. }),
            "{template}: {error}"
        );
    }
}

#[test]
fn missing_time_window() {
    let error = render_placeholders(
        "WHERE a > '${startTime}'",
        Dialect::Postgres,
        &PlaceholderValues::default(),
    )
    .unwrap_err();
    assert_eq!(
        error,
        TemplateError::Missing {
            placeholder: "${startTime}".into(),
            position: Position {
                line: 1,
                column: 12
            },
        }
    );
    let mut values = window();
    values.end_time = None;
    let error = render_placeholders(SEED_000_USAGES, Dialect::Oracle, &values).unwrap_err();
    assert!(
        matches!(&error, TemplateError::Missing { placeholder, .. } if placeholder == "${endTime}")
    );
    assert_eq!(error.line(), 8);
}

// ---- comments ----

#[test]
fn placeholders_in_comments_are_untouched() {
    let template = "SELECT 1 -- since @last_value@\n/* @object.params.nope@ ${startTime} */ \
                    FROM t WHERE id > @last_value@";
    for dialect in Dialect::ALL {
        let rendered = render(template, dialect, &with_last_value("5"));
        assert!(
            rendered.sql.starts_with(
                "SELECT 1 -- since @last_value@\n/* @object.params.nope@ ${startTime} */ FROM t"
            ),
            "{dialect:?}: {}",
            rendered.sql
        );
        assert_eq!(
            rendered.binds.len(),
            usize::from(dialect != Dialect::Postgres)
        );
    }
}

#[test]
fn mysql_hash_comments_and_dash_rule() {
    let rendered = render(
        "SELECT 1 # @last_value@\n, @last_value@",
        Dialect::Mysql,
        &with_last_value("v"),
    );
    assert_eq!(rendered.sql, "SELECT 1 # @last_value@\n, ?");
    assert_eq!(rendered.binds.len(), 1);
    // MySQL needs a space after `--`: `1--@…@` is arithmetic, not a comment.
    let rendered = render(
        "SELECT 1--@object.params.n@",
        Dialect::Mysql,
        &with_params(json!({"n": 2})),
    );
    assert_eq!(rendered.sql, "SELECT 1--?");
    assert_eq!(rendered.binds, [BindValue::Int(2)]);
}

#[test]
fn nested_block_comments_in_postgres_and_sql_server() {
    let template = "/* a /* b */ @last_value@ */ SELECT @last_value@";
    for dialect in [Dialect::Postgres, Dialect::Sqlserver] {
        let rendered = render(template, dialect, &with_last_value("v"));
        assert!(
            rendered
                .sql
                .starts_with("/* a /* b */ @last_value@ */ SELECT ")
        );
    }
}

// ---- inside larger literals ----

#[test]
fn placeholder_inside_larger_literal_each_dialect() {
    let template = "SELECT * FROM t WHERE code LIKE 'pre-@last_value@%'";
    let values = with_last_value("it's");
    let expected = [
        (
            Dialect::Postgres,
            "SELECT * FROM t WHERE code LIKE $s_0$pre-it's%$s_0$",
        ),
        (
            Dialect::Mysql,
            "SELECT * FROM t WHERE code LIKE 'pre-it''s%'",
        ),
        (
            Dialect::Sqlite,
            "SELECT * FROM t WHERE code LIKE 'pre-it''s%'",
        ),
        (
            Dialect::Sqlserver,
            "SELECT * FROM t WHERE code LIKE 'pre-it''s%'",
        ),
        (
            Dialect::Oracle,
            "SELECT * FROM t WHERE code LIKE 'pre-it''s%'",
        ),
    ];
    for (dialect, sql) in expected {
        let rendered = render(template, dialect, &values);
        assert_eq!(rendered.sql, sql, "{dialect:?}");
        assert!(rendered.binds.is_empty());
    }
}

#[test]
fn postgres_requoting_keeps_the_template_text() {
    let rendered = render(
        "SELECT 'it''s @last_value@ \\n'",
        Dialect::Postgres,
        &with_last_value("v"),
    );
    assert_eq!(rendered.sql, "SELECT $s_0$it's v \\n$s_0$");
}

#[test]
fn mysql_splice_escapes_backslashes_and_controls() {
    let values = with_last_value("\\'\0\n\r\u{1a}\"");
    let rendered = render(
        "SELECT 'a@last_value@b', \"a@last_value@b\"",
        Dialect::Mysql,
        &values,
    );
    assert_eq!(
        rendered.sql,
        "SELECT 'a\\\\''\\0\\n\\r\\Z\"b', \"a\\\\'\\0\\n\\r\\Z\"\"b\""
    );
    assert_eq!(
        shape(&rendered.sql, Dialect::Mysql),
        ["SELECT", "LIT", ",", "LIT"]
    );
}

#[test]
fn mysql_backslash_before_placeholder_is_kept_apart() {
    // `\@` is one escape, so the placeholder is not recognised inside it.
    let rendered = render(
        r"SELECT 'a\@last_value@'",
        Dialect::Mysql,
        &with_last_value("' OR 1=1 --"),
    );
    assert_eq!(rendered.sql, r"SELECT 'a\@last_value@'");
    // A `\\` before it is a complete escape, so the value is spliced after it.
    let rendered = render(
        r"SELECT 'a\\@last_value@'",
        Dialect::Mysql,
        &with_last_value("'x"),
    );
    assert_eq!(rendered.sql, r"SELECT 'a\\''x'");
    assert_eq!(shape(&rendered.sql, Dialect::Mysql), ["SELECT", "LIT"]);
}

#[test]
fn postgres_escape_string_splice() {
    let rendered = render(
        r"SELECT E'a\t@last_value@'",
        Dialect::Postgres,
        &with_last_value(r"\'"),
    );
    assert_eq!(rendered.sql, r"SELECT E'a\t\\'''");
    assert_eq!(shape(&rendered.sql, Dialect::Postgres), ["SELECT", "LIT"]);
    let rendered = render(
        "SELECT E'@last_value@'",
        Dialect::Postgres,
        &with_last_value("v"),
    );
    assert_eq!(rendered.sql, "SELECT $s_0$v$s_0$");
}

#[test]
fn national_literals() {
    let rendered = render(
        "SELECT N'@last_value@'",
        Dialect::Sqlserver,
        &with_last_value("v"),
    );
    assert_eq!(rendered.sql, "SELECT @P1");
    let rendered = render(
        "SELECT N'x@last_value@'",
        Dialect::Sqlserver,
        &with_last_value("'"),
    );
    assert_eq!(rendered.sql, "SELECT N'x'''");
}

#[test]
fn splice_of_nul_is_refused_except_mysql() {
    let template = "SELECT 'a@last_value@'";
    let values = with_last_value("x\0y");
    for dialect in [
        Dialect::Postgres,
        Dialect::Sqlite,
        Dialect::Sqlserver,
        Dialect::Oracle,
    ] {
        let error = render_placeholders(template, dialect, &values).unwrap_err();
        assert!(
            matches!(error, TemplateError::NulInValue { .. }),
            "{dialect:?}: {error}"
        );
        assert_eq!(error.column(), 10);
    }
    assert_eq!(
        render(template, Dialect::Mysql, &values).sql,
        r"SELECT 'ax\0y'"
    );
}

#[test]
fn splice_of_null_is_empty_text() {
    let rendered = render(
        "SELECT 'a@last_value@b'",
        Dialect::Sqlite,
        &PlaceholderValues::default(),
    );
    assert_eq!(rendered.sql, "SELECT 'ab'");
}

#[test]
fn oracle_q_quotes() {
    let rendered = render(
        "SELECT q'[@last_value@]'",
        Dialect::Oracle,
        &with_last_value("v"),
    );
    assert_eq!(rendered.sql, "SELECT :1");
    let rendered = render(
        "SELECT q'[it's @last_value@]'",
        Dialect::Oracle,
        &with_last_value("x'y"),
    );
    assert_eq!(rendered.sql, "SELECT q'[it's x'y]'");
    // A value that would close the literal cannot be escaped there.
    let error = render_placeholders(
        "SELECT q'[a@last_value@]'",
        Dialect::Oracle,
        &with_last_value("]' OR 1=1 --"),
    )
    .unwrap_err();
    assert!(
        matches!(error, TemplateError::CannotSplice { .. }),
        "{error}"
    );
    let error = render_placeholders(
        "SELECT q'[a]@last_value@]'",
        Dialect::Oracle,
        &with_last_value("'"),
    )
    .unwrap_err();
    assert!(
        matches!(error, TemplateError::CannotSplice { .. }),
        "{error}"
    );
}

// ---- places where no value can go ----

#[test]
fn placeholders_in_identifiers_are_refused() {
    let cases = [
        (Dialect::Mysql, "SELECT `@last_value@` FROM t"),
        (Dialect::Mysql, "SELECT `a@last_value@` FROM t"),
        (Dialect::Sqlserver, "SELECT [@last_value@] FROM t"),
        (Dialect::Sqlite, "SELECT [a@last_value@] FROM t"),
        (Dialect::Postgres, "SELECT \"a@last_value@\" FROM t"),
        (Dialect::Oracle, "SELECT \"a@last_value@\" FROM t"),
        (Dialect::Sqlserver, "SELECT \"a@last_value@\" FROM t"),
    ];
    for (dialect, template) in cases {
        let error = render_placeholders(template, dialect, &with_last_value("v")).unwrap_err();
        assert!(
            matches!(error, TemplateError::CannotSplice { .. }),
            "{template}: {error}"
        );
        assert_eq!(
            error.position(),
            Position {
                line: 1,
                column: 9 + usize::from(template.contains("a@"))
            }
        );
        let error = referenced_placeholders_in(template, dialect).unwrap_err();
        assert!(matches!(error, TemplateError::CannotSplice { .. }));
    }
}

#[test]
fn dollar_quoted_placeholders() {
    let rendered = render(
        "SELECT $$@last_value@$$",
        Dialect::Postgres,
        &with_last_value("v"),
    );
    assert_eq!(rendered.sql, "SELECT $s_0$v$s_0$");
    let error = render_placeholders(
        "DO $$ BEGIN PERFORM '@last_value@'; END $$",
        Dialect::Postgres,
        &with_last_value("v"),
    )
    .unwrap_err();
    assert!(
        matches!(error, TemplateError::CannotSplice { .. }),
        "{error}"
    );
}

#[test]
fn opaque_literals_are_refused() {
    for template in [
        "SELECT X'@last_value@'",
        "SELECT B'1@last_value@'",
        "SELECT U&'@last_value@'",
    ] {
        let error =
            render_placeholders(template, Dialect::Postgres, &with_last_value("1")).unwrap_err();
        assert!(
            matches!(error, TemplateError::CannotSplice { .. }),
            "{template}: {error}"
        );
    }
}

// ---- syntax errors ----

#[test]
fn unknown_placeholder_syntax() {
    let cases = [
        ("SELECT @object.params.@", "@object.params.@", 8),
        ("SELECT @object.params.1abc@", "@object.params.1abc@", 8),
        ("SELECT @object.params.a.@", "@object.params.a.@", 8),
        ("SELECT @object.params.a-b@", "@object.params.a-b@", 8),
        ("SELECT '${starttime}'", "${starttime}", 9),
        ("SELECT ${from}", "${from}", 8),
        ("SELECT @object.params.x y", "@object.params.x", 8),
    ];
    for (template, text, column) in cases {
        for dialect in Dialect::ALL {
            let error =
                render_placeholders(template, dialect, &PlaceholderValues::default()).unwrap_err();
            assert_eq!(
                error,
                TemplateError::UnknownPlaceholder {
                    text: text.into(),
                    position: Position { line: 1, column },
                },
                "{template} {dialect:?}"
            );
        }
        assert!(referenced_placeholders(template).is_err());
    }
}

#[test]
fn unterminated_things_are_errors_with_positions() {
    let cases = [
        ("SELECT 1\nWHERE a = 'abc @last_value@", 2, 11),
        ("SELECT 1 /* @last_value@", 1, 10),
        ("SELECT \"abc", 1, 8),
    ];
    for (template, line, column) in cases {
        for dialect in Dialect::ALL {
            let error = render_placeholders(template, dialect, &with_last_value("v")).unwrap_err();
            assert_eq!(
                error.position(),
                Position { line, column },
                "{template} {dialect:?}"
            );
        }
    }
    let error = render_placeholders("SELECT `x", Dialect::Mysql, &PlaceholderValues::default())
        .unwrap_err();
    assert!(matches!(
        error,
        TemplateError::UnterminatedIdentifier { .. }
    ));
    let error = render_placeholders(
        "SELECT [x",
        Dialect::Sqlserver,
        &PlaceholderValues::default(),
    )
    .unwrap_err();
    assert!(matches!(
        error,
        TemplateError::UnterminatedIdentifier { .. }
    ));
    let error = render_placeholders(
        "SELECT $a$ x",
        Dialect::Postgres,
        &PlaceholderValues::default(),
    )
    .unwrap_err();
    assert!(matches!(error, TemplateError::UnterminatedString { .. }));
}

#[test]
fn look_alikes_are_plain_sql() {
    let template = "SELECT @last_value, @@version, $1, ${ x }, '@', @ FROM t";
    let rendered = render(template, Dialect::Mysql, &PlaceholderValues::default());
    assert_eq!(rendered.sql, template);
    assert!(rendered.binds.is_empty());
}

// ---- gluing onto neighbours ----

#[test]
fn values_never_glue_onto_neighbouring_words() {
    let values = with_params(json!({"n": -5, "s": "x"}));
    let rendered = render("SELECT a@object.params.s@b", Dialect::Postgres, &values);
    assert_eq!(rendered.sql, "SELECT a $s_0$x$s_0$ b");
    let rendered = render("SELECT a@object.params.s@5", Dialect::Sqlserver, &values);
    assert_eq!(rendered.sql, "SELECT a @P1 5");
    let rendered = render("SELECT 1 -@object.params.n@", Dialect::Postgres, &values);
    assert_eq!(rendered.sql, "SELECT 1 -(-5)");
    let rendered = render("SELECT 1.@object.params.n@", Dialect::Postgres, &values);
    assert_eq!(rendered.sql, "SELECT 1. (-5)");
    let rendered = render("SELECT xy'a@object.params.s@'", Dialect::Postgres, &values);
    assert_eq!(rendered.sql, "SELECT xy $s_0$ax$s_0$");
}

// ---- time formats ----

#[test]
fn time_formats_per_dialect() {
    let time = Utc.with_ymd_and_hms(2001, 2, 3, 4, 5, 6).unwrap()
        + chrono::Duration::nanoseconds(7_891_234);
    let expected = [
        (Dialect::Postgres, "2001-02-03 04:05:06.007891+00"),
        (Dialect::Mysql, "2001-02-03 04:05:06.007891"),
        (Dialect::Sqlite, "2001-02-03T04:05:06.007891Z"),
        (Dialect::Sqlserver, "2001-02-03T04:05:06.007"),
        (Dialect::Oracle, "2001-02-03 04:05:06.007891"),
    ];
    for (dialect, formatted) in expected {
        assert_eq!(dialect.format_time(&time), formatted);
    }
}

// ---- referenced placeholders ----

#[test]
fn referenced_placeholders_in_order_without_duplicates_or_comments() {
    let template = "SELECT * FROM t -- @object.params.commented@\n\
                    WHERE a = @object.params.customer_id@ AND b > '${startTime}' \
                    AND c < ${endTime} AND d = '@object.params.customer_id@' \
                    AND e LIKE '%@object.params.address.city@%' AND f > \"@last_value@\"";
    let expected = vec![
        Placeholder::Param("customer_id".into()),
        Placeholder::StartTime,
        Placeholder::EndTime,
        Placeholder::Param("address.city".into()),
        Placeholder::LastValue,
    ];
    assert_eq!(referenced_placeholders(template).unwrap(), expected);
    for dialect in Dialect::ALL {
        assert_eq!(
            referenced_placeholders_in(template, dialect).unwrap(),
            expected
        );
    }
    assert_eq!(referenced_placeholders("SELECT 1").unwrap(), []);
    assert_eq!(
        Placeholder::Param("a.b".into()).to_string(),
        "@object.params.a.b@"
    );
}

#[test]
fn generic_reference_check_accepts_mysql_double_quoted_strings() {
    let template = r#"SELECT * FROM t WHERE a LIKE "%@object.params.q@%""#;
    assert_eq!(
        referenced_placeholders(template).unwrap(),
        [Placeholder::Param("q".into())]
    );
    assert!(referenced_placeholders_in(template, Dialect::Mysql).is_ok());
    assert!(referenced_placeholders_in(template, Dialect::Postgres).is_err());
}

// ---- hostile values ----

#[test]
fn hostile_values_postgres_keep_the_structure() {
    let templates = [
        "SELECT * FROM t WHERE a > @last_value@ AND b = 1",
        "SELECT * FROM t WHERE a > '@last_value@' -- end",
        r#"SELECT * FROM t WHERE a > "@last_value@" /* c */"#,
        "SELECT * FROM t WHERE a LIKE 'pre@last_value@%' AND b = 'x'",
        "SELECT * FROM t WHERE a IN (@last_value@,@last_value@)",
        "SELECT x@last_value@y",
        "SELECT $$@last_value@$$, $q$@last_value@$q$",
    ];
    for template in templates {
        for value in HOSTILE {
            if template.contains("LIKE") {
                let rendered = render(template, Dialect::Postgres, &with_last_value(value));
                assert_eq!(
                    shape(&rendered.sql, Dialect::Postgres),
                    template_shape_with_literals(template)
                );
                assert_eq!(dollar_contents(&rendered.sql), [format!("pre{value}%")]);
            } else {
                assert_postgres_safe(template, value);
            }
        }
    }
}

#[test]
fn nul_in_a_postgres_value_is_an_error() {
    let error = render_placeholders(
        "SELECT\n  @last_value@",
        Dialect::Postgres,
        &with_last_value("a\0b"),
    )
    .unwrap_err();
    assert_eq!(
        error,
        TemplateError::NulInValue {
            placeholder: "@last_value@".into(),
            dialect: "PostgreSQL",
            position: Position { line: 2, column: 3 },
        }
    );
}

#[test]
fn nul_in_a_bound_value_is_bound() {
    for dialect in [
        Dialect::Mysql,
        Dialect::Sqlite,
        Dialect::Sqlserver,
        Dialect::Oracle,
    ] {
        let rendered = render("SELECT '@last_value@'", dialect, &with_last_value("a\0b"));
        assert_eq!(rendered.binds, [text("a\0b")]);
    }
}

#[test]
fn hostile_values_bind_dialects_never_reach_the_sql() {
    let templates = [
        "SELECT * FROM t WHERE a > @last_value@ AND b = 1",
        "SELECT * FROM t WHERE a > '@last_value@' -- end",
        r#"SELECT * FROM t WHERE a > "@last_value@" /* c */"#,
    ];
    let mut values: Vec<String> = HOSTILE.iter().map(|value| value.to_string()).collect();
    values.push("a\0b".into());
    values.push("x".repeat(1 << 20));
    for dialect in [
        Dialect::Mysql,
        Dialect::Sqlite,
        Dialect::Sqlserver,
        Dialect::Oracle,
    ] {
        for template in templates {
            let benign = render(template, dialect, &with_last_value("benign"));
            for value in &values {
                let rendered = render(template, dialect, &with_last_value(value));
                assert_eq!(rendered.sql, benign.sql, "{dialect:?} {value:?}");
                assert_eq!(rendered.binds, [text(value)]);
            }
        }
    }
}

#[test]
fn hostile_values_spliced_keep_the_structure() {
    let template = "SELECT * FROM t WHERE a LIKE 'pre@last_value@%' AND b = 'x' -- end";
    for dialect in Dialect::ALL {
        let expected = shape(
            &render(template, dialect, &with_last_value("benign")).sql,
            dialect,
        );
        for value in HOSTILE {
            let rendered = render(template, dialect, &with_last_value(value));
            assert_eq!(
                shape(&rendered.sql, dialect),
                expected,
                "{dialect:?} {value:?}"
            );
        }
    }
}

#[test]
fn very_long_and_unicode_values_round_trip_in_postgres() {
    assert_postgres_safe("SELECT @last_value@", &"$s_0".repeat(50_000));
    assert_postgres_safe(
        "SELECT @last_value@",
        &"'; DROP TABLE x; -- ".repeat(50_000),
    );
    assert_postgres_safe("SELECT '@last_value@'", "ünïcødé ✓ 😀 日本語 \u{feff}");
}

/// A small deterministic generator (xorshift64*), to avoid a dependency.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }

    /// Strings made mostly of the characters that matter to SQL lexers.
    fn sql_ish_string(&mut self, max_len: usize) -> String {
        const PIECES: &[&str] = &[
            "'",
            "\"",
            "\\",
            "$",
            "s",
            "_",
            "0",
            "1",
            "-",
            "/",
            "*",
            "\n",
            "@",
            "{",
            "}",
            "é",
            "😀",
            " ",
            ";",
            "`",
            "[",
            "]",
            "#",
            "q",
            "E",
            "$s_0$",
            "$s_1",
            "--",
            "/*",
            "*/",
            "\r",
            "\u{1a}",
            "last_value",
            "@last_value@",
            "${startTime}",
            "@object.params.p@",
        ];
        let len = self.below(max_len + 1);
        (0..len).map(|_| PIECES[self.below(PIECES.len())]).collect()
    }
}

#[test]
fn random_values_round_trip_as_one_postgres_literal() {
    let mut random = Random(0x5eed_1234_abcd_0001);
    let templates = [
        "SELECT @last_value@",
        "SELECT a FROM t WHERE b = '@last_value@' AND c",
    ];
    for _ in 0..4000 {
        let value = random.sql_ish_string(24);
        for template in templates {
            assert_postgres_safe(template, &value);
        }
    }
}

#[test]
fn random_values_spliced_keep_the_structure_in_every_dialect() {
    let mut random = Random(0x5eed_1234_abcd_0002);
    let template = "SELECT a FROM t WHERE b LIKE 'x@last_value@y' AND c = \"@last_value@\"";
    let expected: Vec<_> = Dialect::ALL
        .iter()
        .map(|dialect| {
            shape(
                &render(template, *dialect, &with_last_value("v")).sql,
                *dialect,
            )
        })
        .collect();
    for _ in 0..2000 {
        let value = random.sql_ish_string(16);
        for (dialect, expected) in Dialect::ALL.iter().zip(&expected) {
            match render_placeholders(template, *dialect, &with_last_value(&value)) {
                Ok(rendered) => assert_eq!(&shape(&rendered.sql, *dialect), expected, "{value:?}"),
                Err(TemplateError::NulInValue { .. }) => {}
                Err(error) => panic!("{dialect:?} {value:?}: {error}"),
            }
        }
    }
}

#[test]
fn random_templates_never_panic() {
    let mut random = Random(0x5eed_1234_abcd_0003);
    let mut values = window();
    values.last_value = Some("v".into());
    values.params = json!({"p": "x"}).as_object().cloned().unwrap_or_default();
    for _ in 0..5000 {
        let template = random.sql_ish_string(40);
        for dialect in Dialect::ALL {
            let rendered = render_placeholders(&template, dialect, &values);
            let referenced = referenced_placeholders_in(&template, dialect);
            if rendered.is_ok() {
                assert!(referenced.is_ok(), "{template:?} {dialect:?}");
            }
            if let (Ok(rendered), Dialect::Postgres) = (&rendered, dialect) {
                // Whatever the template, the output lexes.
                shape(&rendered.sql, dialect);
            }
        }
        let _ = referenced_placeholders(&template);
    }
}
