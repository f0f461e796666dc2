//! Plans and subscriptions. No payment provider: a superadmin sets a company's plan.

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::{Enum, Object, OpenApi, param::Path, payload::Json};
use tokio_postgres::Row;
use uuid::Uuid;

use super::{ApiTags, AppState};
use crate::{auth::BearerAuth, db::Tenant, error::ApiError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum Plan {
    /// 2 employees.
    Free,
    /// 50 employees.
    Professional,
    /// No limit.
    Enterprise,
}

impl Plan {
    pub fn as_str(self) -> &'static str {
        match self {
            Plan::Free => "free",
            Plan::Professional => "professional",
            Plan::Enterprise => "enterprise",
        }
    }

    fn parse(raw: &str) -> Result<Self, ApiError> {
        match raw {
            "free" => Ok(Plan::Free),
            "professional" => Ok(Plan::Professional),
            "enterprise" => Ok(Plan::Enterprise),
            other => Err(ApiError::internal(format!(
                "unknown plan {other} in the database"
            ))),
        }
    }
}

#[derive(Debug, Object)]
pub struct PlanInfo {
    pub plan: Plan,
    pub title: String,
    /// How many employees the plan allows; `null` means no limit.
    #[oai(nullable)]
    pub employee_limit: Option<i32>,
}

#[derive(Debug, Object)]
pub struct Subscription {
    pub company_id: Uuid,
    pub plan: Plan,
    pub active: bool,
    pub started_at: DateTime<Utc>,
    #[oai(nullable)]
    pub ended_at: Option<DateTime<Utc>>,
    /// How many employees the plan allows; `null` means no limit.
    #[oai(nullable)]
    pub employee_limit: Option<i32>,
    /// How many employees the company has now.
    pub employee_count: i64,
}

impl Subscription {
    fn from_row(row: &Row) -> Result<Self, ApiError> {
        let get = |e| ApiError::internal(e);
        Ok(Self {
            company_id: row.try_get("company_id").map_err(get)?,
            plan: Plan::parse(row.try_get("plan").map_err(get)?)?,
            active: row.try_get("active").map_err(get)?,
            started_at: row.try_get("started_at").map_err(get)?,
            ended_at: row.try_get("ended_at").map_err(get)?,
            employee_limit: row.try_get("employee_limit").map_err(get)?,
            employee_count: row.try_get("employee_count").map_err(get)?,
        })
    }
}

#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct ChangePlan {
    pub plan: Plan,
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

pub struct SubscriptionsApi;

#[OpenApi(tag = "ApiTags::Subscriptions")]
impl SubscriptionsApi {
    /// List the plans
    ///
    /// Public.
    #[oai(path = "/subscriptions/plans", method = "get")]
    async fn plans(&self, state: Data<&AppState>) -> Result<Json<Vec<PlanInfo>>, ApiError> {
        let rows = state
            .db
            .read_public(async |tx| tx.query(LIST_PLANS, []).await)
            .await?;
        let plans = rows
            .iter()
            .map(|row| {
                Ok(PlanInfo {
                    plan: Plan::parse(row.try_get("plan").map_err(ApiError::internal)?)?,
                    title: row.try_get("title").map_err(ApiError::internal)?,
                    employee_limit: row.try_get("employee_limit").map_err(ApiError::internal)?,
                })
            })
            .collect::<Result<_, ApiError>>()?;
        Ok(Json(plans))
    }

    /// The caller's company's subscription
    #[oai(path = "/subscriptions/current", method = "get")]
    async fn current(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
    ) -> Result<Json<Subscription>, ApiError> {
        let company_id = auth.0.company_id();
        let row = state
            .db
            .read(&auth.0.tenant(), async |tx| {
                tx.query_opt(CURRENT_SUBSCRIPTION, [&company_id]).await
            })
            .await
            .map_err(ApiError::from)?;
        let row = row.ok_or_else(|| ApiError::not_found("No active subscription"))?;
        Ok(Json(Subscription::from_row(&row)?))
    }

    /// Change a company's plan
    ///
    /// Superadmins only. The current subscription ends and a new one starts; a company above
    /// the new plan's limit keeps its employees but cannot add more.
    #[oai(path = "/company/:company_id/subscription", method = "put")]
    async fn change_plan(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        company_id: Path<Uuid>,
        body: Json<ChangePlan>,
    ) -> Result<Json<Subscription>, ApiError> {
        auth.0.require_superadmin()?;
        let tenant = Tenant::new(company_id.0, auth.0.role());
        let plan = body.0.plan.as_str();
        let row = state
            .db
            .write(&tenant, async |tx| {
                let ended = tx.query_opt(END_SUBSCRIPTION, [&company_id.0]).await?;
                if ended.is_none() {
                    return Err(ApiError::not_found("Company not found"));
                }
                tx.execute(START_SUBSCRIPTION, [&company_id.0, &plan])
                    .await?;
                // The company's analytics events follow the plan (rollups are kept whatever
                // the plan; they outlive the detail).
                tx.execute(EXPIRE_MOVING_EVENTS, [&company_id.0, &plan])
                    .await?;
                tx.execute(MOVE_EVENTS, [&company_id.0, &plan]).await?;
                Ok(tx.query_one(CURRENT_SUBSCRIPTION, [&company_id.0]).await?)
            })
            .await?;
        Ok(Json(Subscription::from_row(&row)?))
    }
}
