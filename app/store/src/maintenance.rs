//! One-time data conversions the application makes at start, each recorded in
//! `maintenance_done` so it runs once even with several processes starting.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::schema::{commands, maintenance_done};
use crate::{Store, StoreError, in_transaction, now};

impl Store {
    /// Rewrites every stored command schedule through `convert` (which returns the
    /// new expression, or `None` to keep it), once: the conversion and its record
    /// commit together, so a second process starting at the same time rolls back.
    /// Returns how many schedules changed (0 when it was done before).
    pub async fn convert_schedules_once(
        &self,
        name: &str,
        convert: impl Fn(&str) -> Option<String> + Send + Sync,
    ) -> Result<usize, StoreError> {
        let mut conn = self.write().await?;
        in_transaction!(&mut conn, c => {
            let done: i64 = maintenance_done::table
                .filter(maintenance_done::name.eq(name))
                .count()
                .get_result(c)
                .await?;
            if done > 0 {
                return Ok(0);
            }
            let stored: Vec<(String, Option<String>)> = commands::table
                .filter(commands::schedule.is_not_null())
                .select((commands::id, commands::schedule))
                .load(c)
                .await?;
            let mut changed = 0;
            for (id, schedule) in stored {
                let Some(old) = schedule else { continue };
                if let Some(new) = convert(&old).filter(|new| *new != old) {
                    diesel::update(commands::table.find(&id))
                        .set(commands::schedule.eq(new))
                        .execute(c)
                        .await?;
                    changed += 1;
                }
            }
            diesel::insert_into(maintenance_done::table)
                .values((maintenance_done::name.eq(name), maintenance_done::done_at.eq(now())))
                .execute(c)
                .await?;
            Ok(changed)
        })
    }
}
