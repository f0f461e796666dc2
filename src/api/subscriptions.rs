//! Plans and subscriptions. No payment provider: a superadmin sets a company's plan.

use chrono::{DateTime, Utc};
use poem::{Request, web::Data};
use poem_openapi::{Object, OpenApi, param::Path, payload::Json};
use uuid::Uuid;

use super::{ApiTags, AppState, schemas::Plan};
use crate::{
    auth::BearerAuth,
    error::ApiError,
    model::{
        self,
        audit::{AuditContext, AuditEvent, Changes, Target},
    },
};

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

impl TryFrom<model::subscription::Subscription> for Subscription {
    type Error = ApiError;

    fn try_from(s: model::subscription::Subscription) -> Result<Self, ApiError> {
        Ok(Self {
            company_id: s.company_id,
            plan: Plan::parse(&s.plan)?,
            active: s.active,
            started_at: s.started_at,
            ended_at: s.ended_at,
            employee_limit: s.employee_limit,
            employee_count: s.employee_count,
        })
    }
}

#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct ChangePlan {
    pub plan: Plan,
}

pub struct SubscriptionsApi;

#[OpenApi(tag = "ApiTags::Subscriptions")]
impl SubscriptionsApi {
    /// List the plans
    ///
    /// Public.
    #[oai(
        path = "/subscriptions/plans",
        method = "get",
        operation_id = "listPlans"
    )]
    async fn plans(&self, state: Data<&AppState>) -> Result<Json<Vec<PlanInfo>>, ApiError> {
        let plans = state
            .db
            .read_public(async |tx| model::subscription::plans(&tx).await)
            .await?;
        let plans = plans
            .into_iter()
            .map(|p| {
                Ok(PlanInfo {
                    plan: Plan::parse(&p.plan)?,
                    title: p.title,
                    employee_limit: p.employee_limit,
                })
            })
            .collect::<Result<_, ApiError>>()?;
        Ok(Json(plans))
    }

    /// The caller's company's subscription
    #[oai(
        path = "/subscriptions/current",
        method = "get",
        operation_id = "getCurrentSubscription"
    )]
    async fn current(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
    ) -> Result<Json<Subscription>, ApiError> {
        let company_id = auth.0.company_id();
        let subscription = state
            .db
            .read(&auth.0.tenant(), async |tx| {
                model::subscription::current(&tx, company_id).await
            })
            .await?
            .ok_or_else(|| ApiError::not_found("No active subscription"))?;
        Ok(Json(subscription.try_into()?))
    }

    /// Change a company's plan
    ///
    /// Superadmins only. The current subscription ends and a new one starts; a company above
    /// the new plan's limit keeps its employees but cannot add more.
    #[oai(
        path = "/company/:company_id/subscription",
        method = "put",
        operation_id = "changePlan"
    )]
    async fn change_plan(
        &self,
        state: Data<&AppState>,
        req: &Request,
        auth: BearerAuth,
        company_id: Path<Uuid>,
        body: Json<ChangePlan>,
    ) -> Result<Json<Subscription>, ApiError> {
        let tenant = auth.0.enter_as_superadmin(company_id.0)?;
        let plan = body.0.plan.as_str();
        let audit = AuditContext::of(req, &auth.0);
        let subscription = state
            .db
            .write(&tenant, async |tx| {
                let before = model::subscription::current(&tx, company_id.0).await?;
                let after = model::subscription::change_plan(&tx, company_id.0, plan).await?;
                if let Some(after) = &after {
                    let before = before.as_ref().map(|s| s.plan.as_str());
                    let changes = Changes::new().field("plan", before, &after.plan);
                    let event = AuditEvent::new(
                        "subscription.changed",
                        Target::subscription(after.company_id),
                    );
                    model::audit::record(&tx, &audit, event.changes(changes)).await?;
                }
                Ok::<_, crate::db::DbError>(after)
            })
            .await?
            .ok_or_else(|| ApiError::not_found("Company not found"))?;
        Ok(Json(subscription.try_into()?))
    }
}
