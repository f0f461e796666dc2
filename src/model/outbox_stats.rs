//! Counts of the outbox across every company, for the metrics listener (no tenant needed:
//! `Db::read_public`, through the `outbox_backlog` SECURITY DEFINER function of V14).

use crate::db::{DbError, TenantTx};

/// The most rows each count walks; a larger backlog shows as this number.
pub const MAX_COUNTED: i32 = 100_000;

const BACKLOG: &str = "SELECT pending, failed FROM outbox_backlog($1)";

/// Messages waiting to be sent, and messages given up on, each counted up to [`MAX_COUNTED`].
pub async fn backlog(tx: &TenantTx) -> Result<(i64, i64), DbError> {
    let row = tx.query_one(BACKLOG, [&MAX_COUNTED]).await?;
    Ok((row.try_get("pending")?, row.try_get("failed")?))
}
