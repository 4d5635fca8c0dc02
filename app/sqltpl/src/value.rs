//! Values that go into SQL, and how each dialect writes them as literals.

use std::borrow::Cow;
use std::collections::HashSet;

use crate::lexer::Flavor;

/// A value for a placeholder, either bound as a parameter or written as a literal.
#[derive(Debug, Clone, PartialEq)]
pub enum BindValue {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
}

impl BindValue {
    /// The JSON typing rule shared by params and profile fields: strings are
    /// text, integers that fit `i64` are integers, other numbers are floats
    /// (integers beyond `i64` are kept exact as text), arrays and objects are
    /// their JSON text.
    pub fn from_json(value: &serde_json::Value) -> BindValue {
        use serde_json::Value;
        match value {
            Value::Null => BindValue::Null,
            Value::Bool(flag) => BindValue::Bool(*flag),
            Value::Number(number) => number_value(number),
            Value::String(text) => BindValue::Text(text.clone()),
            Value::Array(_) | Value::Object(_) => BindValue::Text(value.to_string()),
        }
    }
}

fn number_value(number: &serde_json::Number) -> BindValue {
    if let Some(int) = number.as_i64() {
        BindValue::Int(int)
    } else if number.is_u64() {
        BindValue::Text(number.to_string())
    } else {
        BindValue::Float(number.as_f64().unwrap_or(f64::NAN))
    }
}

/// Why a value cannot be written into SQL text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ValueProblem {
    Nul,
    NonFinite,
}

/// The value as text, for splicing into a larger string literal. NULL splices
/// as the empty string.
pub(crate) fn splice_text(value: &BindValue) -> Result<Cow<'_, str>, ValueProblem> {
    match value {
        BindValue::Null => Ok(Cow::Borrowed("")),
        BindValue::Bool(flag) => Ok(Cow::Borrowed(if *flag { "true" } else { "false" })),
        BindValue::Int(int) => Ok(Cow::Owned(int.to_string())),
        BindValue::Float(float) => float_text(*float).map(Cow::Owned),
        BindValue::Text(text) => Ok(Cow::Borrowed(text)),
    }
}

/// Shortest round-tripping decimal (`1e300`, `0.1`), finite values only.
fn float_text(float: f64) -> Result<String, ValueProblem> {
    if float.is_finite() {
        Ok(format!("{float:?}"))
    } else {
        Err(ValueProblem::NonFinite)
    }
}

/// A standalone literal for `value` in `flavor`'s SQL. Negative numbers are
/// parenthesised so that a `-` written before the placeholder cannot turn
/// into a `--` comment.
pub(crate) fn literal(flavor: Flavor, value: &BindValue) -> Result<String, ValueProblem> {
    let number = match value {
        BindValue::Null => return Ok("NULL".to_string()),
        BindValue::Bool(flag) => return Ok(bool_literal(flavor, *flag).to_string()),
        BindValue::Text(text) => return text_literal(flavor, text),
        BindValue::Int(int) => int.to_string(),
        BindValue::Float(float) => float_text(*float)?,
    };
    Ok(if number.starts_with('-') {
        format!("({number})")
    } else {
        number
    })
}

fn bool_literal(flavor: Flavor, flag: bool) -> &'static str {
    match (flavor, flag) {
        (Flavor::Sqlserver | Flavor::Oracle, true) => "1",
        (Flavor::Sqlserver | Flavor::Oracle, false) => "0",
        (_, true) => "TRUE",
        (_, false) => "FALSE",
    }
}

pub(crate) fn text_literal(flavor: Flavor, text: &str) -> Result<String, ValueProblem> {
    match flavor {
        Flavor::Postgres => dollar_quote(text),
        Flavor::Sqlserver => Ok(format!("N'{}'", escape_in_quotes(flavor, '\'', text)?)),
        _ => Ok(format!("'{}'", escape_in_quotes(flavor, '\'', text)?)),
    }
}

/// `text` escaped for the inside of a `quote`-delimited literal of `flavor`.
///
/// The quote character is always doubled, which every dialect reads as one
/// quote. MySQL and ClickHouse also read backslash escapes, so backslashes are
/// escaped too (an unescaped trailing `\` would otherwise swallow the closing
/// quote), and NUL, CR, LF and Ctrl-Z are written as escapes. Elsewhere a NUL
/// cannot be written into SQL text at all.
pub(crate) fn escape_in_quotes(
    flavor: Flavor,
    quote: char,
    text: &str,
) -> Result<String, ValueProblem> {
    let mut escaped = String::with_capacity(text.len() + 2);
    for c in text.chars() {
        match c {
            c if c == quote && flavor == Flavor::Clickhouse => {
                escaped.push('\\');
                escaped.push(c);
            }
            c if c == quote => {
                escaped.push(c);
                escaped.push(c);
            }
            c if flavor.backslash_escapes() => push_backslash_escaped(&mut escaped, c),
            '\0' => return Err(ValueProblem::Nul),
            c => escaped.push(c),
        }
    }
    Ok(escaped)
}

fn push_backslash_escaped(out: &mut String, c: char) {
    match c {
        '\\' => out.push_str("\\\\"),
        '\0' => out.push_str("\\0"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\u{1a}' => out.push_str("\\Z"),
        c => out.push(c),
    }
}

/// A PostgreSQL dollar-quoted literal `$s_N$text$s_N$` holding `text` exactly.
///
/// Nothing inside a dollar-quoted string is special (no escapes, whatever
/// `standard_conforming_strings` says), and it ends at the first occurrence of
/// its tag, so the tag is chosen so that it occurs neither in `text` nor across
/// the end of `text` and the closing tag (`text` ending in `$s_0` would
/// otherwise close early).
pub(crate) fn dollar_quote(text: &str) -> Result<String, ValueProblem> {
    if text.contains('\0') {
        return Err(ValueProblem::Nul);
    }
    let taken = taken_tag_numbers(text);
    let number = (0u64..).find(|n| !taken.contains(n)).unwrap_or(0);
    let tag = format!("$s_{number}$");
    Ok(format!("{tag}{text}{tag}"))
}

/// Every N for which `$s_N$` occurs in `text`, or `text` ends with `$s_N`.
/// (Leading zeros are read generously: `$s_01$` takes 1, which is merely cautious.)
fn taken_tag_numbers(text: &str) -> HashSet<u64> {
    let mut taken = HashSet::new();
    for (index, _) in text.match_indices("$s_") {
        let after = &text[index + 3..];
        let digits_len = after.bytes().take_while(u8::is_ascii_digit).count();
        let closes = after[digits_len..].is_empty() || after[digits_len..].starts_with('$');
        if digits_len > 0
            && closes
            && let Ok(number) = after[..digits_len].parse::<u64>()
        {
            taken.insert(number);
        }
    }
    taken
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_typing() {
        assert_eq!(
            BindValue::from_json(&json!("a")),
            BindValue::Text("a".into())
        );
        assert_eq!(BindValue::from_json(&json!(-3)), BindValue::Int(-3));
        assert_eq!(BindValue::from_json(&json!(1.5)), BindValue::Float(1.5));
        assert_eq!(BindValue::from_json(&json!(true)), BindValue::Bool(true));
        assert_eq!(BindValue::from_json(&json!(null)), BindValue::Null);
        assert_eq!(
            BindValue::from_json(&json!([1, "a"])),
            BindValue::Text(r#"[1,"a"]"#.into())
        );
        assert_eq!(
            BindValue::from_json(&json!(u64::MAX)),
            BindValue::Text(u64::MAX.to_string())
        );
    }

    #[test]
    fn dollar_quote_picks_a_tag_absent_from_the_text() {
        assert_eq!(dollar_quote("abc").unwrap(), "$s_0$abc$s_0$");
        assert_eq!(dollar_quote("$s_0$").unwrap(), "$s_1$$s_0$$s_1$");
        assert_eq!(dollar_quote("x$s_0").unwrap(), "$s_1$x$s_0$s_1$");
        assert_eq!(
            dollar_quote("$s_0$ $s_1$ $s_2").unwrap(),
            "$s_3$$s_0$ $s_1$ $s_2$s_3$"
        );
        assert_eq!(dollar_quote("$s_").unwrap(), "$s_0$$s_$s_0$");
        assert_eq!(dollar_quote("a\0b"), Err(ValueProblem::Nul));
    }

    #[test]
    fn literals_per_flavor() {
        let text = BindValue::Text("it's".into());
        assert_eq!(literal(Flavor::Postgres, &text).unwrap(), "$s_0$it's$s_0$");
        assert_eq!(literal(Flavor::Mysql, &text).unwrap(), "'it''s'");
        assert_eq!(literal(Flavor::Sqlserver, &text).unwrap(), "N'it''s'");
        assert_eq!(literal(Flavor::Clickhouse, &text).unwrap(), r"'it\'s'");
        assert_eq!(
            literal(Flavor::Oracle, &BindValue::Int(-5)).unwrap(),
            "(-5)"
        );
        assert_eq!(
            literal(Flavor::Oracle, &BindValue::Bool(true)).unwrap(),
            "1"
        );
        assert_eq!(
            literal(Flavor::Sqlite, &BindValue::Bool(false)).unwrap(),
            "FALSE"
        );
        assert_eq!(
            literal(Flavor::Sqlite, &BindValue::Float(1e300)).unwrap(),
            "1e300"
        );
        assert_eq!(
            literal(Flavor::Sqlite, &BindValue::Float(f64::NAN)),
            Err(ValueProblem::NonFinite)
        );
        assert_eq!(literal(Flavor::Mysql, &BindValue::Null).unwrap(), "NULL");
    }

    #[test]
    fn mysql_escapes_backslashes_and_control_characters() {
        assert_eq!(
            escape_in_quotes(Flavor::Mysql, '\'', "\\'\0\n\r\u{1a}").unwrap(),
            r"\\''\0\n\r\Z"
        );
        assert_eq!(
            escape_in_quotes(Flavor::Mysql, '"', "a\"'b").unwrap(),
            "a\"\"'b"
        );
        assert_eq!(
            escape_in_quotes(Flavor::Sqlite, '\'', "\\'"),
            Ok("\\''".to_string())
        );
        assert_eq!(
            escape_in_quotes(Flavor::Oracle, '\'', "a\0"),
            Err(ValueProblem::Nul)
        );
    }
}
