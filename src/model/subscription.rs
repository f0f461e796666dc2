//! Plans and subscriptions. No payment provider: a superadmin sets a company's plan.

use chrono::{DateTime, Utc};
use tokio_postgres::Row;
use uuid::Uuid;

use crate::db::{DbError, TenantTx};

/// A plan as listed.
pub struct PlanRow {
    /// `free`, `professional` or `enterprise`.
    pub plan: String,
    pub title: String,
    pub employee_limit: Option<i32>,
}

impl TryFrom<&Row> for PlanRow {
    type Error = DbError;

    fn try_from(row: &Row) -> Result<Self, DbError> {
        Ok(Self {
            plan: row.try_get("plan")?,
            title: row.try_get("title")?,
            employee_limit: row.try_get("employee_limit")?,
        })
    }
}

/// A company's active subscription, with its plan's limit and the company's employee count.
pub struct Subscription {
    pub company_id: Uuid,
    pub plan: String,
    pub active: bool,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub employee_limit: Option<i32>,
    pub employee_count: i64,
}

impl TryFrom<&Row> for Subscription {
    type Error = DbError;

    fn try_from(row: &Row) -> Result<Self, DbError> {
        Ok(Self {
            company_id: row.try_get("company_id")?,
            plan: row.try_get("plan")?,
            active: row.try_get("active")?,
            started_at: row.try_get("started_at")?,
            ended_at: row.try_get("ended_at")?,
            employee_limit: row.try_get("employee_limit")?,
            employee_count: row.try_get("employee_count")?,
        })
    }
}

const LIST_PLANS: &str = "SELECT plan, title, employee_limit FROM plans ORDER BY sort_order";

const CURRENT_SUBSCRIPTION: &str =
    "SELECT s.company_id, s.plan, s.active, s.started_at, s.ended_at, p.employee_limit,
            (SELECT count(*) FROM employees e WHERE e.company_id = s.company_id) AS employee_count
     FROM subscriptions s JOIN plans p ON p.plan = s.plan
     WHERE s.company_id = $1 AND s.active";

// Ending the old subscription and starting the new one are two statements: the partial unique
// index on active subscriptions must see the first before the second.
const END_SUBSCRIPTION: &str = "UPDATE subscriptions SET active = false, ended_at = now()
     WHERE company_id = $1 AND active RETURNING plan";

const START_SUBSCRIPTION: &str = "INSERT INTO subscriptions (company_id, plan) VALUES ($1, $2)";

// A plan change moves the company's raw events to the new plan's retention class, in the same
// transaction, so that no event is ever kept longer than the current plan says. First the events
// that may not move: those past the new class's retention, and those already past their own
// class's (still there only because maintenance runs hourly; an upgrade must not bring them back).
// `forever` has no limit (the CASE yields NULL, which deletes nothing). The classes come from
// `plans` so that the API and the ingestion agree on them.
const EXPIRE_MOVING_EVENTS: &str = "DELETE FROM card_events e USING plans p
     WHERE p.plan = $2 AND e.company_id = $1 AND e.retention <> p.retention
       AND (e.occurred_at < now() - CASE p.retention WHEN 'd30' THEN interval '30 days'
                                                     WHEN 'd365' THEN interval '365 days' END
            OR e.occurred_at < now() - CASE e.retention WHEN 'd30' THEN interval '30 days'
                                                        WHEN 'd365' THEN interval '365 days' END)";

// Then the rest moves: changing the partition key moves each row into the new class's partition
// for its date, or into the class's DEFAULT partition when there is none (the service role cannot
// create partitions); `analytics_maintain()` purges default partitions past retention.
const MOVE_EVENTS: &str = "UPDATE card_events e SET retention = p.retention FROM plans p
     WHERE p.plan = $2 AND e.company_id = $1 AND e.retention <> p.retention";

/// Every plan, in the order they are offered.
pub async fn plans(tx: &TenantTx) -> Result<Vec<PlanRow>, DbError> {
    super::from_rows(&tx.query(LIST_PLANS, []).await?)
}

pub async fn current(tx: &TenantTx, company_id: Uuid) -> Result<Option<Subscription>, DbError> {
    tx.query_opt(CURRENT_SUBSCRIPTION, [&company_id])
        .await?
        .as_ref()
        .map(Subscription::try_from)
        .transpose()
}

/// Ends the company's subscription and starts one on `plan`; `None` if there is no such company.
pub async fn change_plan(
    tx: &TenantTx,
    company_id: Uuid,
    plan: &str,
) -> Result<Option<Subscription>, DbError> {
    if tx
        .query_opt(END_SUBSCRIPTION, [&company_id])
        .await?
        .is_none()
    {
        return Ok(None);
    }
    tx.execute(START_SUBSCRIPTION, [&company_id, &plan]).await?;
    // The company's analytics events follow the plan (rollups are kept whatever the plan; they
    // outlive the detail).
    tx.execute(EXPIRE_MOVING_EVENTS, [&company_id, &plan])
        .await?;
    tx.execute(MOVE_EVENTS, [&company_id, &plan]).await?;
    let row = tx.query_one(CURRENT_SUBSCRIPTION, [&company_id]).await?;
    Ok(Some(Subscription::try_from(&row)?))
}
