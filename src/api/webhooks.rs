//! Webhooks: a company's endpoints, told of its events by signed HTTP POSTs, and what became of
//! each delivery. Admins of the company (and superadmins) only.

use chrono::{DateTime, Utc};
use poem::{Request, web::Data};
use poem_openapi::{
    ApiResponse, Object, OpenApi,
    param::{Path, Query},
    payload::Json,
    types::MaybeUndefined,
};
use uuid::Uuid;

use super::{ApiTags, AppState, Created, JsonString, NoContent, companies::admin_tenant, validate};
use crate::{
    auth::BearerAuth,
    error::ApiError,
    model::{
        self,
        audit::{AuditContext, AuditEvent, Changes, Target},
        webhook::{CreateError, NewWebhook, WebhookChange},
    },
    webhook::{address, signature},
};

/// Longest description of an endpoint.
const MAX_DESCRIPTION: usize = 500;

/// An endpoint, without its secret (shown once, when it is created).
#[derive(Debug, Object)]
pub struct Webhook {
    pub id: Uuid,
    pub company_id: Uuid,
    pub url: String,
    /// The events it is told of: `lead.created`, `employee.created`, `employee.updated`,
    /// `employee.deleted`.
    pub events: Vec<String>,
    #[oai(nullable)]
    pub description: Option<String>,
    /// Off: nothing is sent to it (but a test ping). The service turns an endpoint off when
    /// every delivery to it failed for 24 hours, and emails the company's admins.
    pub enabled: bool,
    /// `failing` (turned off by the service) or `admin`.
    #[oai(nullable)]
    pub disabled_reason: Option<String>,
    #[oai(nullable)]
    pub disabled_at: Option<DateTime<Utc>>,
    /// Since when every attempt to deliver to it failed, if the last one did.
    #[oai(nullable)]
    pub failing_since: Option<DateTime<Utc>>,
    /// Attempts that failed since the last one that succeeded.
    pub consecutive_failures: i32,
    #[oai(nullable)]
    pub last_success_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<model::webhook::Webhook> for Webhook {
    fn from(w: model::webhook::Webhook) -> Self {
        Self {
            id: w.id,
            company_id: w.company_id,
            url: w.url,
            events: w.events,
            description: w.description,
            enabled: w.enabled,
            disabled_reason: w.disabled_reason,
            disabled_at: w.disabled_at,
            failing_since: w.failing_since,
            consecutive_failures: w.consecutive_failures,
            last_success_at: w.last_success_at,
            created_at: w.created_at,
            updated_at: w.updated_at,
        }
    }
}

/// A new endpoint, with its signing secret: shown this once, never again.
#[derive(Debug, Object)]
pub struct CreatedWebhook {
    #[oai(flatten)]
    pub webhook: Webhook,
    /// The key of `X-CallingCard-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`.
    pub secret: String,
}

#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct CreateWebhook {
    /// `https://…` (`http` only where `WEBHOOK_ALLOW_PRIVATE_NETWORKS=true`); its host must
    /// resolve to public addresses only.
    #[oai(validator(max_length = 2048))]
    pub url: JsonString,
    #[oai(validator(min_items = 1, max_items = 4, unique_items))]
    pub events: Vec<JsonString>,
    #[oai(nullable, validator(max_length = 500))]
    pub description: Option<JsonString>,
}

/// Only the fields present change; `null` clears the description.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct UpdateWebhook {
    #[oai(validator(max_length = 2048))]
    pub url: MaybeUndefined<JsonString>,
    #[oai(validator(min_items = 1, max_items = 4, unique_items))]
    pub events: MaybeUndefined<Vec<JsonString>>,
    #[oai(nullable, validator(max_length = 500))]
    pub description: MaybeUndefined<JsonString>,
    /// Turning it on again starts its failure count afresh.
    pub enabled: MaybeUndefined<bool>,
}

/// One event for one endpoint, and its attempts.
#[derive(Debug, Object)]
pub struct Delivery {
    /// The `X-CallingCard-Delivery` header: the same on every attempt.
    pub id: Uuid,
    /// The body's `id`: the same for every endpoint told of the event.
    pub event_id: Uuid,
    pub event: String,
    /// `pending` (tried again at `next_attempt_at`), `delivered` or `failed` (given up).
    pub state: String,
    pub created_at: DateTime<Utc>,
    #[oai(nullable)]
    pub next_attempt_at: Option<DateTime<Utc>>,
    #[oai(nullable)]
    pub finished_at: Option<DateTime<Utc>>,
    #[oai(nullable)]
    pub last_error: Option<String>,
    pub attempts: Vec<DeliveryAttempt>,
}

#[derive(Debug, Object)]
pub struct DeliveryAttempt {
    /// From 1.
    pub attempt: i32,
    pub attempted_at: DateTime<Utc>,
    /// `delivered` (a 2xx answer) or `failed`.
    pub status: String,
    /// The receiver's HTTP status, when it answered.
    #[oai(nullable)]
    pub response_code: Option<i32>,
    pub latency_ms: i32,
    #[oai(nullable)]
    pub error: Option<String>,
}

impl From<model::webhook::Delivery> for Delivery {
    fn from(d: model::webhook::Delivery) -> Self {
        Self {
            id: d.id,
            event_id: d.event_id,
            event: d.event,
            state: d.state,
            created_at: d.created_at,
            next_attempt_at: d.next_attempt_at,
            finished_at: d.finished_at,
            last_error: d.last_error,
            attempts: d
                .attempts
                .into_iter()
                .map(|a| DeliveryAttempt {
                    attempt: a.attempt,
                    attempted_at: a.attempted_at,
                    status: a.outcome,
                    response_code: a.response_code,
                    latency_ms: a.latency_ms,
                    error: a.error,
                })
                .collect(),
        }
    }
}

#[derive(Debug, Object)]
pub struct PingQueued {
    /// The ping's delivery (see `GET …/deliveries`).
    pub delivery_id: Uuid,
}

#[derive(ApiResponse)]
pub enum PingAccepted {
    /// Queued: the ping is on its way.
    #[oai(status = 202)]
    Accepted(Json<PingQueued>),
}

fn webhook_not_found() -> ApiError {
    ApiError::not_found("Webhook not found")
}

/// The URL, its form and its addresses checked as every delivery will check them.
async fn checked_url(state: &AppState, raw: &str) -> Result<String, ApiError> {
    let allow = state.webhook_private_networks;
    let refused = |e: address::UrlRefusal| ApiError::unprocessable(e.code(), e.to_string());
    let url = address::parse(raw, allow).map_err(refused)?;
    address::resolve(&url, allow).await.map_err(refused)?;
    Ok(url.to_string())
}

fn checked_events(events: Vec<JsonString>) -> Result<Vec<String>, ApiError> {
    let mut checked: Vec<String> = Vec::with_capacity(events.len());
    for event in events {
        let event = event.trim();
        if !model::webhook::is_subscribable(event) {
            return Err(ApiError::unprocessable(
                "unknown_event",
                format!(
                    "`{event}` is no event a webhook can subscribe to; these are: {}",
                    model::webhook::EVENTS.join(", ")
                ),
            ));
        }
        if !checked.iter().any(|e| e == event) {
            checked.push(event.to_owned());
        }
    }
    Ok(checked)
}

fn checked_description(value: Option<JsonString>) -> Result<Option<String>, ApiError> {
    validate::optional_text("description", value, MAX_DESCRIPTION)
}

pub struct WebhooksApi;

#[OpenApi(tag = "ApiTags::Webhooks")]
impl WebhooksApi {
    /// Add a webhook
    ///
    /// Admins of the company and superadmins. Events are POSTed to `url` as JSON `{id, type,
    /// created_at, data}` with `X-CallingCard-Delivery` (the same on every retry),
    /// `X-CallingCard-Event` and `X-CallingCard-Signature: t=<unix>,v1=<hex>`, the HMAC-SHA256
    /// of `<t>.<raw body>` keyed by `secret`, which this answer shows once. A 2xx answer within
    /// 10 s delivers; redirects are not followed. Failed deliveries are retried (within 30 s,
    /// then backing off) for 24 hours. The URL must be `https` (422 `webhook_url_not_https`)
    /// and resolve to public addresses only (422 `webhook_url_not_public`). A company has at
    /// most 20 webhooks (409 `too_many_webhooks`).
    #[oai(
        path = "/company/:company_id/webhooks",
        method = "post",
        operation_id = "createWebhook"
    )]
    async fn create_webhook(
        &self,
        state: Data<&AppState>,
        req: &Request,
        auth: BearerAuth,
        company_id: Path<Uuid>,
        body: Json<CreateWebhook>,
    ) -> Result<Created<CreatedWebhook>, ApiError> {
        let tenant = admin_tenant(&auth.0, company_id.0)?;
        let audit = AuditContext::of(req, &auth.0);
        let body = body.0;
        let new = NewWebhook {
            id: Uuid::new_v4(),
            events: checked_events(body.events)?,
            description: checked_description(body.description)?,
            url: checked_url(&state, &body.url).await?,
            secret: signature::new_secret(),
        };
        let webhook = state
            .db
            .write(&tenant, async |tx| {
                let webhook = model::webhook::create(&tx, company_id.0, &new).await?;
                let event = AuditEvent::new("webhook.created", Target::webhook(webhook.id));
                let changes = Changes::between(None, Some(&webhook));
                model::audit::record(&tx, &audit, event.changes(changes)).await?;
                Ok::<_, CreateError>(webhook)
            })
            .await
            .map_err(|e| match e {
                CreateError::TooMany => ApiError::conflict(
                    "too_many_webhooks",
                    &format!(
                        "A company can have at most {} webhooks",
                        model::webhook::MAX_PER_COMPANY
                    ),
                ),
                CreateError::Db(e) => e.into(),
            })?;
        Ok(Created::Created(Json(CreatedWebhook {
            webhook: webhook.into(),
            secret: new.secret,
        })))
    }

    /// List the company's webhooks
    ///
    /// Admins of the company and superadmins; oldest first (20 at most).
    #[oai(
        path = "/company/:company_id/webhooks",
        method = "get",
        operation_id = "listWebhooks"
    )]
    async fn list_webhooks(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        company_id: Path<Uuid>,
    ) -> Result<Json<Vec<Webhook>>, ApiError> {
        let tenant = admin_tenant(&auth.0, company_id.0)?;
        let webhooks = state
            .db
            .read(&tenant, async |tx| model::webhook::list(&tx).await)
            .await?;
        Ok(Json(webhooks.into_iter().map(Webhook::from).collect()))
    }

    /// Get a webhook
    #[oai(
        path = "/company/:company_id/webhooks/:webhook_id",
        method = "get",
        operation_id = "getWebhook"
    )]
    async fn get_webhook(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        company_id: Path<Uuid>,
        webhook_id: Path<Uuid>,
    ) -> Result<Json<Webhook>, ApiError> {
        let tenant = admin_tenant(&auth.0, company_id.0)?;
        let webhook = state
            .db
            .read(&tenant, async |tx| {
                model::webhook::get(&tx, webhook_id.0).await
            })
            .await?
            .ok_or_else(webhook_not_found)?;
        Ok(Json(webhook.into()))
    }

    /// Change a webhook
    ///
    /// Its URL (checked as when created), events, description, or `enabled`.
    #[oai(
        path = "/company/:company_id/webhooks/:webhook_id",
        method = "put",
        operation_id = "updateWebhook"
    )]
    async fn update_webhook(
        &self,
        state: Data<&AppState>,
        req: &Request,
        auth: BearerAuth,
        company_id: Path<Uuid>,
        webhook_id: Path<Uuid>,
        body: Json<UpdateWebhook>,
    ) -> Result<Json<Webhook>, ApiError> {
        let tenant = admin_tenant(&auth.0, company_id.0)?;
        let audit = AuditContext::of(req, &auth.0);
        let body = body.0;
        let url = match validate::not_null("url", body.url)? {
            Some(url) => Some(checked_url(&state, &url).await?),
            None => None,
        };
        let change = WebhookChange {
            url,
            events: validate::not_null("events", body.events)?
                .map(checked_events)
                .transpose()?,
            description: match validate::change(body.description) {
                Some(value) => Some(checked_description(value)?),
                None => None,
            },
            enabled: validate::not_null("enabled", body.enabled)?,
        };
        let webhook = state
            .db
            .write(&tenant, async |tx| {
                let Some(before) = model::webhook::get(&tx, webhook_id.0).await? else {
                    return Ok(None);
                };
                let after = model::webhook::update(&tx, webhook_id.0, change).await?;
                if let Some(after) = &after {
                    let event = AuditEvent::new("webhook.updated", Target::webhook(after.id));
                    let changes = Changes::between(Some(&before), Some(after));
                    model::audit::record(&tx, &audit, event.changes(changes)).await?;
                }
                Ok::<_, crate::db::DbError>(after)
            })
            .await?
            .ok_or_else(webhook_not_found)?;
        Ok(Json(webhook.into()))
    }

    /// Delete a webhook
    ///
    /// Its deliveries not sent yet are never sent.
    #[oai(
        path = "/company/:company_id/webhooks/:webhook_id",
        method = "delete",
        operation_id = "deleteWebhook"
    )]
    async fn delete_webhook(
        &self,
        state: Data<&AppState>,
        req: &Request,
        auth: BearerAuth,
        company_id: Path<Uuid>,
        webhook_id: Path<Uuid>,
    ) -> Result<NoContent, ApiError> {
        let tenant = admin_tenant(&auth.0, company_id.0)?;
        let audit = AuditContext::of(req, &auth.0);
        let deleted = state
            .db
            .write(&tenant, async |tx| {
                let Some(before) = model::webhook::get(&tx, webhook_id.0).await? else {
                    return Ok(false);
                };
                model::webhook::delete(&tx, webhook_id.0).await?;
                let event = AuditEvent::new("webhook.deleted", Target::webhook(before.id));
                let changes = Changes::between(Some(&before), None);
                model::audit::record(&tx, &audit, event.changes(changes)).await?;
                Ok::<_, crate::db::DbError>(true)
            })
            .await?;
        if !deleted {
            return Err(webhook_not_found());
        }
        Ok(NoContent::NoContent)
    }

    /// Send a webhook a test event
    ///
    /// Queues a `ping` event (`data`: `{webhook_id}`) for this endpoint only, enabled or not,
    /// tried once; what became of it shows in its deliveries.
    #[oai(
        path = "/company/:company_id/webhooks/:webhook_id/test",
        method = "post",
        operation_id = "testWebhook"
    )]
    async fn test_webhook(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        company_id: Path<Uuid>,
        webhook_id: Path<Uuid>,
    ) -> Result<PingAccepted, ApiError> {
        let tenant = admin_tenant(&auth.0, company_id.0)?;
        let delivery_id = state
            .db
            .write(&tenant, async |tx| {
                model::webhook::enqueue_ping(&tx, webhook_id.0).await
            })
            .await?
            .ok_or_else(webhook_not_found)?;
        Ok(PingAccepted::Accepted(Json(PingQueued { delivery_id })))
    }

    /// A webhook's deliveries
    ///
    /// The latest `limit` (default 20, at most 100), newest first, each with its attempts:
    /// status, response code, latency, error, and when it is tried next.
    #[oai(
        path = "/company/:company_id/webhooks/:webhook_id/deliveries",
        method = "get",
        operation_id = "listWebhookDeliveries"
    )]
    async fn list_deliveries(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        company_id: Path<Uuid>,
        webhook_id: Path<Uuid>,
        /// How many, newest first.
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        limit: Query<Option<u32>>,
    ) -> Result<Json<Vec<Delivery>>, ApiError> {
        let tenant = admin_tenant(&auth.0, company_id.0)?;
        let limit = i64::from(limit.0.unwrap_or(20));
        let deliveries = state
            .db
            .read(&tenant, async |tx| {
                // Both sent at once: one round trip.
                let (webhook, deliveries) = futures::join!(
                    model::webhook::get(&tx, webhook_id.0),
                    model::webhook::deliveries(&tx, webhook_id.0, limit)
                );
                match webhook? {
                    Some(_) => deliveries.map(Some),
                    None => Ok(None),
                }
            })
            .await?
            .ok_or_else(webhook_not_found)?;
        Ok(Json(deliveries.into_iter().map(Delivery::from).collect()))
    }
}
