//! Sluice SQL templates, rendered so that no value can ever change a
//! statement's structure.
//!
//! - [`placeholders`]: pull-sync commands (`@last_value@`,
//!   `@object.params.NAME@`, `${startTime}`, `${endTime}`) →
//!   [`render_placeholders`] gives SQL plus bind values;
//!   [`referenced_placeholders_in`] checks a command at save time;
//! - [`segment`]: segment-sync templates (`{segment_id}`, `{for …}`…) →
//!   [`parse_segment_template`] at save time, [`SegmentTemplate::render`] per batch.
//!
//! Both read the SQL around the placeholders with a small per-dialect lexer
//! (quotes and their escapes, quoted identifiers, `--`/`#`/`/* */` comments,
//! PostgreSQL dollar quotes, Oracle `q'[…]'`), so a value is written according
//! to where it stands, and placeholders in comments stay as written.
//!
//! # How a value is written
//!
//! | where it stands | PostgreSQL | MySQL/MariaDB | SQLite | SQL Server | Oracle |
//! |---|---|---|---|---|---|
//! | bare, or all of `'…'`/`"…"` (pull sync) | literal: `$s_N$text$s_N$`, `42`, `(-1.5)`, `TRUE`, `NULL` | `?` + bind | `?` + bind | `@P1`… + bind | `:1`… + bind |
//! | bare, or all of `'…'`/`"…"` (segment sync) | as above | `'it''s'`, backslashes escaped | `'it''s'` | `N'it''s'` | `'it''s'` |
//! | part of a `'…'` literal | whole literal re-quoted `$s_N$…$s_N$` | spliced: `'`→`''`, `\`→`\\`, NUL/CR/LF/^Z → `\0 \r \n \Z` | `'`→`''` | `'`→`''` | `'`→`''` (`q'[…]'`: refused if the value holds `]'`) |
//! | in a comment | untouched | untouched | untouched | untouched | untouched |
//! | in a quoted identifier, inside `$$…$$`, `B'…'`/`X'…'`/`U&'…'` | refused | refused | refused | refused | refused |
//!
//! ClickHouse (segment sync only) writes `\'` for a quote and escapes
//! backslashes. A NUL is refused wherever it would be written into SQL text,
//! except as a MySQL/ClickHouse `\0` escape; bound, it is just data. A value
//! written next to a word or number gets a space on that side, so it can
//! never merge into a neighbouring token (`a@last_value@` → `a $s_0$…$s_0$`).
//! Negative numbers are parenthesised, so `-@n@` cannot become a `--` comment.
//! PostgreSQL literals rely on `standard_conforming_strings = on` only for the
//! template's own `'…'` text, never for a value.

#![forbid(unsafe_code)]

mod engine;
pub mod error;
mod lexer;
pub mod placeholders;
pub mod segment;
mod value;

pub use error::{Position, TemplateError};
pub use placeholders::{
    BindValue, Dialect, Placeholder, PlaceholderValues, Rendered, referenced_placeholders,
    referenced_placeholders_in, render_placeholders,
};
pub use segment::{SegmentDialect, SegmentInfo, SegmentTemplate, parse_segment_template};
