//! Quoting identifiers per SQL dialect. Quoting alone already makes any name
//! inert; callers also check that the table exists before naming it in SQL.

use crate::kind::DbKind;

/// `"name"` with `"` doubled: PostgreSQL, SQLite, Oracle.
pub fn quote_double(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `` `name` `` with `` ` `` doubled: MySQL and MariaDB.
pub fn quote_backtick(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// `[name]` with `]` doubled: SQL Server.
pub fn quote_bracket(name: &str) -> String {
    format!("[{}]", name.replace(']', "]]"))
}

pub fn quote_identifier(kind: DbKind, name: &str) -> String {
    match kind {
        DbKind::Postgres | DbKind::Sqlite | DbKind::Oracle => quote_double(name),
        DbKind::Mysql | DbKind::Mariadb => quote_backtick(name),
        DbKind::Sqlserver => quote_bracket(name),
    }
}

/// `schema.table`, each part quoted; just the table when there is no schema.
pub fn qualified_name(kind: DbKind, schema: Option<&str>, table: &str) -> String {
    match schema {
        Some(schema) => format!(
            "{}.{}",
            quote_identifier(kind, schema),
            quote_identifier(kind, table)
        ),
        None => quote_identifier(kind, table),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTILE: &str = "x\"; DROP TABLE t; --`]'[";

    #[test]
    fn double_quotes_are_doubled() {
        assert_eq!(quote_double("plain"), "\"plain\"");
        assert_eq!(quote_double("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_double(HOSTILE), "\"x\"\"; DROP TABLE t; --`]'[\"");
        assert_eq!(quote_double(""), "\"\"");
    }

    #[test]
    fn backticks_are_doubled() {
        assert_eq!(quote_backtick("a`b"), "`a``b`");
        assert_eq!(quote_backtick(HOSTILE), "`x\"; DROP TABLE t; --``]'[`");
    }

    #[test]
    fn closing_brackets_are_doubled() {
        assert_eq!(quote_bracket("a]b"), "[a]]b]");
        assert_eq!(quote_bracket("[x]"), "[[x]]]");
        assert_eq!(quote_bracket(HOSTILE), "[x\"; DROP TABLE t; --`]]'[]");
    }

    /// Whatever the name, the quoted form has exactly one unescaped closing quote: the last character.
    #[test]
    fn quoted_names_close_only_at_the_end() {
        for kind in DbKind::ALL {
            let quoted = quote_identifier(kind, HOSTILE);
            let close = quoted.chars().last().expect("non-empty");
            let inner = &quoted[1..quoted.len() - close.len_utf8()];
            let doubled = format!("{close}{close}");
            assert!(
                !inner.replace(&doubled, "").contains(close),
                "{kind}: {quoted}"
            );
        }
    }

    #[test]
    fn qualified_names_quote_each_part() {
        assert_eq!(
            qualified_name(DbKind::Postgres, Some("my schema"), "t\"1"),
            "\"my schema\".\"t\"\"1\""
        );
        assert_eq!(qualified_name(DbKind::Mariadb, Some("db"), "t"), "`db`.`t`");
        assert_eq!(
            qualified_name(DbKind::Sqlserver, Some("dbo"), "t]"),
            "[dbo].[t]]]"
        );
        assert_eq!(qualified_name(DbKind::Sqlite, None, "t"), "\"t\"");
    }
}
