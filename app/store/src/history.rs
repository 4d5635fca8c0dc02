//! History retention: archived dynamic commands (each API or direct-URL call
//! leaves one) and old runs are removed once older than
//! [`TenantQuotas::history_retention`](crate::quotas::TenantQuotas), and audit
//! entries once older than its `audit_retention`, so neither the store nor a
//! list page grows without bound.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::commands::CommandStatus;
use crate::schema::{audit_log, command_runs, commands};
use crate::{Store, StoreError, in_transaction, now};

/// Rows removed per statement, so one housekeeping pass never holds the
/// (SQLite) writer for long.
const CHUNK: i64 = 5_000;

/// Repeats `step` (which removes at most [`CHUNK`] rows) until a step removes
/// fewer; returns how many rows went in all.
async fn in_chunks<F, Fut>(mut step: F) -> Result<usize, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<usize, StoreError>>,
{
    let mut removed = 0;
    loop {
        let chunk = step().await?;
        removed += chunk;
        if chunk < CHUNK as usize {
            return Ok(removed);
        }
    }
}

/// What one retention pass removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct HistoryRemoved {
    pub archived_commands: usize,
    pub runs: usize,
    pub audit_entries: usize,
}

impl Store {
    /// Removes finished dynamic commands (with their runs) last changed before the
    /// retention cutoff, and finished runs older than it except each command's
    /// latest (its queue shows the last run).
    pub async fn apply_history_retention(&self) -> Result<HistoryRemoved, StoreError> {
        let cutoff = now() - self.quotas.history_retention;
        let audit_cutoff = now() - self.quotas.audit_retention;
        let removed = HistoryRemoved {
            archived_commands: in_chunks(|| self.remove_archived_commands(cutoff)).await?,
            runs: in_chunks(|| self.remove_old_runs(cutoff)).await?,
            audit_entries: in_chunks(|| self.remove_old_audit_entries(audit_cutoff)).await?,
        };
        Ok(removed)
    }

    async fn remove_archived_commands(
        &self,
        cutoff: chrono::NaiveDateTime,
    ) -> Result<usize, StoreError> {
        let mut conn = self.write().await?;
        in_transaction!(&mut conn, c => {
            let expired: Vec<String> = commands::table
                .filter(commands::status.eq(CommandStatus::Finished.as_str()))
                .filter(commands::updated_at.lt(cutoff))
                .order(commands::id.asc())
                .limit(CHUNK)
                .select(commands::id)
                .load(c)
                .await?;
            // Runs first: the lock order every run update uses (see the crate docs).
            diesel::delete(command_runs::table.filter(command_runs::command_id.eq_any(&expired)))
                .execute(c)
                .await?;
            Ok(diesel::delete(
                commands::table
                    .filter(commands::id.eq_any(&expired))
                    .filter(commands::status.eq(CommandStatus::Finished.as_str())),
            )
            .execute(c)
            .await?)
        })
    }

    async fn remove_old_audit_entries(
        &self,
        cutoff: chrono::NaiveDateTime,
    ) -> Result<usize, StoreError> {
        let mut conn = self.write().await?;
        in_transaction!(&mut conn, c => {
            let expired: Vec<String> = audit_log::table
                .filter(audit_log::at.lt(cutoff))
                .order(audit_log::id.asc())
                .limit(CHUNK)
                .select(audit_log::id)
                .load(c)
                .await?;
            Ok(diesel::delete(audit_log::table.filter(audit_log::id.eq_any(&expired)))
                .execute(c)
                .await?)
        })
    }

    async fn remove_old_runs(&self, cutoff: chrono::NaiveDateTime) -> Result<usize, StoreError> {
        let newer = diesel::alias!(command_runs as newer);
        let a_newer_run = newer
            .filter(
                newer
                    .field(command_runs::command_id)
                    .eq(command_runs::command_id),
            )
            .filter(newer.field(command_runs::id).gt(command_runs::id));
        let mut conn = self.write().await?;
        in_transaction!(&mut conn, c => {
            let expired: Vec<String> = command_runs::table
                .filter(command_runs::finished_at.lt(cutoff))
                .filter(diesel::dsl::exists(a_newer_run))
                .order(command_runs::id.asc())
                .limit(CHUNK)
                .select(command_runs::id)
                .load(c)
                .await?;
            Ok(diesel::delete(command_runs::table.filter(command_runs::id.eq_any(&expired)))
                .execute(c)
                .await?)
        })
    }
}
