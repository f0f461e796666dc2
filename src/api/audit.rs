//! The audit trail of a company, for its admins: who changed what, and every login attempt.

use std::{collections::BTreeMap, net::IpAddr};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use poem::web::Data;
use poem_openapi::{
    Enum, Object, OpenApi,
    param::{Path, Query},
    payload::Json,
};
use serde_json::Value;
use uuid::Uuid;

use super::{
    ApiTags, AppState,
    time_bound::{self, TimeBound},
};
use crate::{
    auth::{BearerAuth, Role},
    error::ApiError,
    model::audit::{self, ActionFilter, Cursor, ListQuery, Outcome, StoredEvent},
};

pub const DEFAULT_AUDIT_PAGE: u32 = 50;
pub const MAX_AUDIT_PAGE: u32 = 200;

/// Who did it: a signed-in login.
#[derive(Debug, Object)]
#[oai(rename = "AuditActor")]
pub struct Actor {
    pub user_id: Uuid,
    /// The login's email when the event was written; `null` once that login is gone.
    #[oai(nullable)]
    pub email: Option<String>,
    pub role: Role,
}

/// What an event is about.
#[derive(Debug, Object)]
#[oai(rename = "AuditTarget")]
pub struct Target {
    /// `company`, `employee`, `user`, `subscription` (named by its company's id), `session`, …
    #[oai(rename = "type")]
    pub kind: String,
    #[oai(nullable)]
    pub id: Option<Uuid>,
}

/// One field's values before and after the change (`null`: none).
#[derive(Debug, Object)]
#[oai(rename = "AuditFieldChange")]
pub struct FieldChange {
    pub before: Value,
    pub after: Value,
}

#[derive(Debug, Clone, Copy, Enum)]
#[oai(rename = "AuditOutcome", rename_all = "lowercase")]
pub enum AuditOutcome {
    Success,
    /// Wrong credentials.
    Failure,
    /// Refused: throttled, or a disabled login.
    Denied,
}

#[derive(Debug, Object)]
pub struct AuditEvent {
    pub id: Uuid,
    /// UTC.
    pub occurred_at: DateTime<Utc>,
    /// `null`: anonymous (a login attempt by someone who did not prove who they are).
    #[oai(nullable)]
    pub actor: Option<Actor>,
    /// Dotted: `employee.updated`, `company.logo_set`, `auth.login_failed`, …
    pub action: String,
    pub target: Target,
    /// The fields changed, by name. Never a secret; images appear as their hash.
    pub changes: BTreeMap<String, FieldChange>,
    pub outcome: AuditOutcome,
    #[oai(nullable)]
    pub request_id: Option<String>,
    #[oai(nullable)]
    pub client_address: Option<IpAddr>,
    #[oai(nullable)]
    pub user_agent: Option<String>,
}

#[derive(Debug, Object)]
pub struct AuditPage {
    /// Newest first.
    pub events: Vec<AuditEvent>,
    /// Pass as `cursor` for the next (older) page; `null` on the last page.
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}

impl From<StoredEvent> for AuditEvent {
    fn from(e: StoredEvent) -> Self {
        let actor = match (e.actor_user_id, e.actor_role) {
            (Some(user_id), Some(role)) => Some(Actor {
                user_id,
                email: e.actor_email,
                role,
            }),
            _ => None,
        };
        Self {
            id: e.id,
            occurred_at: e.occurred_at,
            actor,
            action: e.action,
            target: Target {
                kind: e.target_type,
                id: e.target_id,
            },
            changes: e
                .changes
                .into_iter()
                .map(|(field, c)| {
                    let change = FieldChange {
                        before: c.before,
                        after: c.after,
                    };
                    (field, change)
                })
                .collect(),
            outcome: match e.outcome {
                Outcome::Success => AuditOutcome::Success,
                Outcome::Failure => AuditOutcome::Failure,
                Outcome::Denied => AuditOutcome::Denied,
            },
            request_id: e.request_id,
            client_address: e.client_address,
            user_agent: e.user_agent,
        }
    }
}

fn invalid(detail: &str) -> ApiError {
    ApiError::unprocessable("invalid_parameter", detail)
}

/// A dotted name: lowercase words and `_`, separated by dots.
fn is_dotted(text: &str, min_parts: usize) -> bool {
    let parts: Vec<&str> = text.split('.').collect();
    parts.len() >= min_parts
        && parts.iter().all(|p| {
            p.starts_with(|c: char| c.is_ascii_lowercase())
                && p.chars().all(|c| c.is_ascii_lowercase() || c == '_')
        })
}

/// `employee.updated` (that action), or `employee.*` (every `employee.` action).
fn action_filter(raw: &str) -> Result<ActionFilter, ApiError> {
    let detail = "`action` must be an action such as `employee.updated`, or a prefix ending in \
                  `.*` such as `employee.*`";
    match raw.strip_suffix(".*") {
        Some(prefix) if is_dotted(prefix, 1) => Ok(ActionFilter::Prefix(format!("{prefix}."))),
        Some(_) => Err(invalid(detail)),
        None if is_dotted(raw, 2) => Ok(ActionFilter::Exact(raw.to_owned())),
        None => Err(invalid(detail)),
    }
}

/// The filters of the audit trail as a client gave them (the API's query, the console's form).
#[derive(Debug, Default)]
pub struct AuditFilters {
    pub actor: Option<Uuid>,
    pub action: Option<String>,
    pub target_type: Option<String>,
    pub target_id: Option<Uuid>,
    pub from: Option<TimeBound>,
    pub to: Option<TimeBound>,
    pub cursor: Option<String>,
    pub limit: Option<u32>,
}

/// The filters, checked: a bad one answers 422 naming it.
pub fn list_query(f: AuditFilters) -> Result<ListQuery, ApiError> {
    let limit = f.limit.unwrap_or(DEFAULT_AUDIT_PAGE);
    if !(1..=MAX_AUDIT_PAGE).contains(&limit) {
        return Err(invalid("`limit` must be between 1 and 200"));
    }
    let target_type = match f.target_type {
        Some(kind) if is_dotted(&kind, 1) && !kind.contains('.') => Some(kind),
        Some(_) => {
            return Err(invalid(
                "`target_type` must be a kind of thing such as `employee`",
            ));
        }
        None => None,
    };
    let (from, to) = time_bound::range(f.from.as_ref(), f.to.as_ref(), Tz::UTC)?;
    let after = f
        .cursor
        .as_deref()
        .map(Cursor::decode)
        .transpose()
        .map_err(|e| ApiError::unprocessable("invalid_cursor", e.to_string()))?;
    Ok(ListQuery {
        actor: f.actor,
        action: f.action.as_deref().map(action_filter).transpose()?,
        target_type,
        target_id: f.target_id,
        from,
        to,
        after,
        limit: i64::from(limit),
    })
}

pub struct AuditApi;

#[OpenApi(tag = "ApiTags::Companies")]
impl AuditApi {
    /// A company's audit trail
    ///
    /// Admins of the company and superadmins. Every change made through the API (the company
    /// and its branding, employees and their photos, logins, the plan) and every login attempt
    /// on the company's logins, newest first. Filters combine; `from` is inclusive, `to`
    /// exclusive.
    #[oai(
        path = "/company/:company_id/audit",
        method = "get",
        operation_id = "listAuditEvents"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn list(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        company_id: Path<Uuid>,
        /// Only what this login did (its user id).
        actor: Query<Option<Uuid>>,
        /// An action (`employee.updated`), or every action under a prefix (`employee.*`).
        #[oai(validator(max_length = 66))]
        action: Query<Option<String>>,
        /// Only events about this kind of thing: `employee`, `user`, `company`, …
        #[oai(validator(max_length = 32))]
        target_type: Query<Option<String>>,
        /// Only events about this id.
        target_id: Query<Option<Uuid>>,
        /// RFC 3339, or a date (from its midnight, UTC).
        from: Query<Option<TimeBound>>,
        /// RFC 3339, exclusive, or a date (included whole, UTC).
        to: Query<Option<TimeBound>>,
        /// `next_cursor` of the previous page.
        #[oai(validator(max_length = 200))]
        cursor: Query<Option<String>>,
        /// Events per page, 1 to 200 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "200")))]
        limit: Query<Option<u32>>,
    ) -> Result<Json<AuditPage>, ApiError> {
        let caller = auth.0;
        let tenant = caller.tenant_for(company_id.0, "Company not found")?;
        caller.require_admin()?;
        let query = list_query(AuditFilters {
            actor: actor.0,
            action: action.0,
            target_type: target_type.0,
            target_id: target_id.0,
            from: from.0,
            to: to.0,
            cursor: cursor.0,
            limit: limit.0,
        })?;
        let company_id = company_id.0;
        let page = state
            .db
            .read(&tenant, async |tx| {
                audit::list(&tx, company_id, &query).await
            })
            .await?
            .ok_or_else(|| ApiError::not_found("Company not found"))?;
        Ok(Json(AuditPage {
            events: page.events.into_iter().map(AuditEvent::from).collect(),
            next_cursor: page.next.map(|c| c.encode()),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_filters_are_exact_or_a_prefix() {
        assert_eq!(
            action_filter("employee.updated").unwrap(),
            ActionFilter::Exact("employee.updated".into())
        );
        assert_eq!(
            action_filter("employee.*").unwrap(),
            ActionFilter::Prefix("employee.".into())
        );
        assert_eq!(
            action_filter("auth.login_failed").unwrap(),
            ActionFilter::Exact("auth.login_failed".into())
        );
        for bad in [
            "employee",
            "*",
            ".*",
            "Employee.updated",
            "employee.",
            "a..b",
            "employee.%",
            "e.*.*",
        ] {
            assert!(action_filter(bad).is_err(), "{bad}");
        }
    }
}
