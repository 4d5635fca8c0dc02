//! Running a planned batch on the tenant's database, in one transaction.

use std::time::Duration;

use sluice_connect::{Database, ExecError, Finish};

use super::plan::PlannedStatement;

/// What a batch did: per statement, the rows it changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchOutcome {
    pub rows_affected: Vec<u64>,
    pub duration: Duration,
    /// `false` for a test run ([`Finish::Rollback`]).
    pub committed: bool,
}

/// Why a batch failed; nothing of it was kept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct BatchFailure {
    /// The database's error, with the failed statement's number.
    pub message: String,
    /// [`sluice_connect::ConnectError::category`] ("query", "timeout", …).
    pub category: &'static str,
    /// The statement that failed, if one did (not the connection or commit).
    pub statement_index: Option<usize>,
    pub sql: Option<String>,
}

/// Runs every statement of `planned` in one transaction on `db`, ending it as
/// `finish` says. An empty plan does not touch the database.
pub async fn apply_batch(
    db: &Database,
    planned: &[PlannedStatement],
    finish: Finish,
) -> Result<BatchOutcome, BatchFailure> {
    if planned.is_empty() {
        return Ok(BatchOutcome {
            rows_affected: Vec::new(),
            duration: Duration::ZERO,
            committed: finish == Finish::Commit,
        });
    }
    let statements: Vec<String> = planned.iter().map(|p| p.sql.clone()).collect();
    match db.execute_in_transaction(&statements, finish).await {
        Ok(executed) => Ok(BatchOutcome {
            rows_affected: executed.rows_affected,
            duration: executed.duration,
            committed: executed.committed,
        }),
        Err(failure) => Err(batch_failure(&failure, planned)),
    }
}

fn batch_failure(failure: &ExecError, planned: &[PlannedStatement]) -> BatchFailure {
    let statement = failure.statement_index.and_then(|index| planned.get(index));
    let message = match statement {
        Some(statement) => format!(
            "{failure} (the {} statement for segment {})",
            statement.kind, statement.segment.id
        ),
        None => failure.to_string(),
    };
    BatchFailure {
        message,
        category: failure.error.category(),
        statement_index: failure.statement_index,
        sql: statement.map(|s| s.sql.clone()),
    }
}
