//! Who may watch a company's live activity: checked when a feed opens and again while it runs.

use uuid::Uuid;

use crate::db::{DbError, TenantTx};

/// Whether company `$1` exists (to the tenant), and the employee whose card login `$2` is linked
/// to, if any (an active login of that company). One row, one index lookup each.
const LIVE_ACCESS: &str = "SELECT EXISTS (SELECT 1 FROM companies WHERE id = $1),
            (SELECT u.employee_id FROM users u
             WHERE u.company_id = $1 AND u.id = $2 AND u.is_active)";

/// What the live feed's caller may see of the company.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LiveAccess {
    /// The employee card the caller's login is linked to.
    pub linked_employee: Option<Uuid>,
}

/// `None` when the company does not exist or the tenant may not see it.
pub async fn live_access(
    tx: &TenantTx,
    company_id: Uuid,
    user_id: Uuid,
) -> Result<Option<LiveAccess>, DbError> {
    let row = tx.query_one(LIVE_ACCESS, [&company_id, &user_id]).await?;
    let found: bool = row.try_get(0)?;
    let linked: Option<Uuid> = row.try_get(1)?;
    Ok(found.then_some(LiveAccess {
        linked_employee: linked,
    }))
}
