//! Running rendered statements (segment sync) in one transaction on a tenant's
//! database: all of them take effect, or none. A "test run" rolls back at the
//! end, so it reports what each statement would change and changes nothing.
//!
//! The statements are SQL text whose values sluice-sqltpl already wrote as
//! safe literals, so they run through each driver's plain text protocol
//! (`sqlx::raw_sql`, a TDS batch, an Oracle execute): one statement may hold
//! several separated by `;` (not on Oracle, which takes one statement or a
//! PL/SQL block per call).

use std::time::Duration;

use sqlx::{AssertSqlSafe, Executor};

use crate::driver::within;
use crate::error::ConnectError;
use crate::stream::Held;

/// How a transaction ends once every statement ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    Commit,
    /// A test run: the statements run and report their counts, then nothing is kept.
    Rollback,
}

/// What a transaction did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Executed {
    /// Per statement, in order: the rows it changed (summed over the
    /// statements a `;`-separated text holds).
    pub rows_affected: Vec<u64>,
    pub duration: Duration,
    /// `false` after [`Finish::Rollback`].
    pub committed: bool,
}

/// Why a transaction did not go through; nothing of it was kept (but see
/// [`ExecError::statement_index`] for a failed commit).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {error}", self.failed_step())]
pub struct ExecError {
    /// The statement that failed (0-based); `None` when beginning, committing
    /// or rolling back failed, or no connection could be had. After a failed
    /// commit whose connection was lost the outcome is unknown to the client.
    pub statement_index: Option<usize>,
    pub error: ConnectError,
}

impl ExecError {
    pub(crate) fn at(statement_index: usize, error: ConnectError) -> Self {
        ExecError {
            statement_index: Some(statement_index),
            error,
        }
    }

    pub(crate) fn outside(error: ConnectError) -> Self {
        ExecError {
            statement_index: None,
            error,
        }
    }

    fn failed_step(&self) -> String {
        match self.statement_index {
            Some(index) => format!("statement {} failed", index + 1),
            None => "the transaction failed".to_owned(),
        }
    }
}

/// How a sqlx driver runs a transaction of text statements.
pub(crate) struct SqlxTransaction<'a> {
    /// Session settings the rendered SQL relies on, run before `begin`.
    pub(crate) prepare: &'a [&'a str],
    pub(crate) begin: &'a str,
    pub(crate) query_timeout: Duration,
}

impl SqlxTransaction<'_> {
    /// Runs `statements` between `begin` and COMMIT/ROLLBACK on `held`. Each
    /// step is bounded by the query timeout. The connection goes back to the
    /// pool only after a clean end (commit, rollback, or a failed statement
    /// rolled back); otherwise [`Held`] closes it, which ends the transaction
    /// on the server without committing.
    pub(crate) async fn run<DB>(
        &self,
        mut held: Held<DB>,
        statements: &[String],
        finish: Finish,
        error: impl Fn(sqlx::Error) -> ConnectError,
        rows_affected: impl Fn(&DB::QueryResult) -> u64,
    ) -> Result<Vec<u64>, ExecError>
    where
        DB: sqlx::Database,
        for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    {
        let timeout = self.query_timeout;
        let control = async |held: &mut Held<DB>, sql: &str, what: &str| {
            within(timeout, what, async {
                sqlx::raw_sql(AssertSqlSafe(sql.to_owned()))
                    .execute(&mut *held.connection)
                    .await
                    .map(|_| ())
                    .map_err(&error)
            })
            .await
            .map_err(ExecError::outside)
        };
        for setting in self.prepare {
            control(&mut held, setting, "preparing the session").await?;
        }
        control(&mut held, self.begin, "beginning the transaction").await?;
        let mut counts = Vec::with_capacity(statements.len());
        for (index, sql) in statements.iter().enumerate() {
            // The SQL was rendered by sluice-sqltpl: every value in it is a
            // literal written for this dialect, so none can change its
            // structure; the rest is the connector owner's own template.
            let ran = within(timeout, "the statement", async {
                sqlx::raw_sql(AssertSqlSafe(sql.clone()))
                    .execute(&mut *held.connection)
                    .await
                    .map_err(&error)
            })
            .await;
            match ran {
                Ok(result) => counts.push(rows_affected(&result)),
                Err(failure @ ConnectError::Timeout(_)) => {
                    return Err(ExecError::at(index, failure));
                }
                Err(failure) => {
                    // A clean rollback lets the connection be reused; if even
                    // that fails, dropping `held` closes it.
                    if control(&mut held, "ROLLBACK", "rolling back").await.is_ok() {
                        held.finish();
                    }
                    return Err(ExecError::at(index, failure));
                }
            }
        }
        let end = match finish {
            Finish::Commit => "COMMIT",
            Finish::Rollback => "ROLLBACK",
        };
        control(&mut held, end, "ending the transaction").await?;
        held.finish();
        Ok(counts)
    }
}

/// Oracle runs one statement per call and refuses a trailing `;` after
/// plain SQL, but a PL/SQL block needs its final `;`.
pub(crate) fn oracle_statement(sql: &str) -> &str {
    let trimmed = sql.trim();
    let first_word = trimmed
        .split(|c: char| !c.is_ascii_alphabetic())
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase();
    if matches!(first_word.as_str(), "BEGIN" | "DECLARE") {
        return trimmed;
    }
    trimmed.strip_suffix(';').unwrap_or(trimmed).trim_end()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oracle_statements_lose_a_trailing_semicolon_but_blocks_keep_it() {
        assert_eq!(
            oracle_statement("DELETE FROM t WHERE id = 1;\n"),
            "DELETE FROM t WHERE id = 1"
        );
        assert_eq!(oracle_statement("DELETE FROM t"), "DELETE FROM t");
        assert_eq!(
            oracle_statement("begin\n  DELETE FROM t;\nend;"),
            "begin\n  DELETE FROM t;\nend;"
        );
        assert_eq!(
            oracle_statement("DECLARE n NUMBER; BEGIN NULL; END;"),
            "DECLARE n NUMBER; BEGIN NULL; END;"
        );
    }

    #[test]
    fn errors_name_the_failed_statement_counting_from_one() {
        let error = ExecError::at(2, ConnectError::Query("syntax error".into()));
        assert_eq!(
            error.to_string(),
            "statement 3 failed: query failed: syntax error"
        );
        let error = ExecError::outside(ConnectError::Timeout("x".into()));
        assert_eq!(error.to_string(), "the transaction failed: timed out: x");
    }
}
