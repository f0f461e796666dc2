//! The audit trail (`sql/V13__audit_events.sql`): who changed what, when, from where, and every
//! login attempt. Append-only: the service role may insert and read events, never change one.
//!
//! A change records its event in its own transaction, one line beside the change:
//!
//! ```ignore
//! audit::record(&tx, &ctx, AuditEvent::new("employee.updated", Target::employee(id))
//!     .changes(Changes::between(Some(&before), Some(&after)))).await?;
//! ```
//!
//! so the event is committed exactly when the change is. The event goes to the transaction's
//! own company (`app.company_id`): a tenant cannot write into another's trail.

use std::{collections::BTreeMap, net::IpAddr};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use tokio_postgres::{Row, types::Json as JsonColumn};
use uuid::Uuid;

use super::{company::Company, employee::Employee, user::User};
use crate::db::{DbError, Role, TenantTx};

/// Who did it: a signed-in login. Its email is filled in by the database from the login itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Actor {
    pub user_id: Uuid,
    /// The login's own company (a superadmin's is the platform's, not the one it acts in).
    pub company_id: Uuid,
    pub role: Role,
}

/// Where a request came from and who made it: built once per request in the API layer.
#[derive(Clone, Debug, Default)]
pub struct AuditContext {
    /// `None`: anonymous (nobody proved who they are).
    pub actor: Option<Actor>,
    pub request_id: Option<String>,
    pub client_address: Option<IpAddr>,
    pub user_agent: Option<String>,
}

/// Longest request id and user agent kept; the rest is cut.
pub const REQUEST_ID_MAX: usize = 200;
pub const USER_AGENT_MAX: usize = 512;

impl AuditContext {
    /// The context of a request; text is cut to what the table keeps, control characters
    /// dropped (a log line must not be forged by a header).
    pub fn new(
        actor: Option<Actor>,
        request_id: Option<&str>,
        client_address: Option<IpAddr>,
        user_agent: Option<&str>,
    ) -> Self {
        let clean = |text: &str, max: usize| -> String {
            text.chars().filter(|c| !c.is_control()).take(max).collect()
        };
        Self {
            actor,
            request_id: request_id.map(|id| clean(id, REQUEST_ID_MAX)),
            client_address,
            user_agent: user_agent.map(|ua| clean(ua, USER_AGENT_MAX)),
        }
    }

    /// The same request, done by `actor` (a login that just proved who it is).
    pub fn by(mut self, actor: Actor) -> Self {
        self.actor = Some(actor);
        self
    }
}

/// What an event is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Target {
    pub kind: &'static str,
    pub id: Option<Uuid>,
}

impl Target {
    pub fn new(kind: &'static str, id: Uuid) -> Self {
        Self { kind, id: Some(id) }
    }
    pub fn company(id: Uuid) -> Self {
        Self::new("company", id)
    }
    pub fn employee(id: Uuid) -> Self {
        Self::new("employee", id)
    }
    pub fn user(id: Uuid) -> Self {
        Self::new("user", id)
    }
    pub fn webhook(id: Uuid) -> Self {
        Self::new("webhook", id)
    }
    /// A company's subscription, named by the company (a company has one at a time).
    pub fn subscription(company_id: Uuid) -> Self {
        Self::new("subscription", company_id)
    }
    pub fn session(id: Uuid) -> Self {
        Self::new("session", id)
    }
    pub fn invitation(id: Uuid) -> Self {
        Self::new("invitation", id)
    }
    pub fn lead(id: Uuid) -> Self {
        Self::new("lead", id)
    }
}

/// How it ended. A change that failed rolls back with its event, so changes are `Success`;
/// login attempts may be `Failure` (wrong credentials) or `Denied` (throttled, disabled).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
    Denied,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Denied => "denied",
        }
    }

    fn parse(raw: &str) -> Result<Self, DbError> {
        match raw {
            "success" => Ok(Outcome::Success),
            "failure" => Ok(Outcome::Failure),
            "denied" => Ok(Outcome::Denied),
            other => Err(super::decode_error("outcome", other)),
        }
    }
}

/// The fields an event changed: `{"field": {"before": …, "after": …}}`, only those that differ.
/// Never a secret: the types below list what they show, and no password hash or token is among
/// them; an image appears as its hash.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Changes(Map<String, Value>);

impl Changes {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `field` when `before` and `after` differ.
    pub fn field(mut self, field: &str, before: impl Serialize, after: impl Serialize) -> Self {
        let before = serde_json::to_value(before).unwrap_or(Value::Null);
        let after = serde_json::to_value(after).unwrap_or(Value::Null);
        if before != after {
            let mut change = Map::new();
            change.insert("before".into(), before);
            change.insert("after".into(), after);
            self.0.insert(field.to_owned(), Value::Object(change));
        }
        self
    }

    /// Every audited field that differs between `before` and `after`; `None` stands for "did
    /// not exist" (a creation has no before, a deletion no after).
    pub fn between<T: Audited>(before: Option<&T>, after: Option<&T>) -> Self {
        let before = before.map(Audited::audited_fields).unwrap_or_default();
        let after = after.map(Audited::audited_fields).unwrap_or_default();
        let names = before.keys().chain(after.keys()).copied();
        let names: std::collections::BTreeSet<&str> = names.collect();
        names.into_iter().fold(Self::new(), |changes, name| {
            changes.field(
                name,
                before.get(name).cloned().unwrap_or(Value::Null),
                after.get(name).cloned().unwrap_or(Value::Null),
            )
        })
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn into_value(self) -> Value {
        Value::Object(self.0)
    }
}

/// A record whose changes are audited: the fields shown in its events.
pub trait Audited {
    fn audited_fields(&self) -> BTreeMap<&'static str, Value>;
}

fn fields<const N: usize>(pairs: [(&'static str, Value); N]) -> BTreeMap<&'static str, Value> {
    BTreeMap::from(pairs)
}

impl Audited for Employee {
    fn audited_fields(&self) -> BTreeMap<&'static str, Value> {
        fields([
            ("full_name", self.full_name.clone().into()),
            ("job_title", self.job_title.clone().into()),
            ("email", self.email.clone().into()),
            ("phone", self.phone.clone().into()),
            ("whatsapp", self.whatsapp.clone().into()),
            ("photo_url", self.photo_url.clone().into()),
            ("photo_hash", self.photo_hash.clone().into()),
            ("bio", self.bio.clone().into()),
            (
                "social_links",
                serde_json::to_value(&self.social_links).unwrap_or(Value::Null),
            ),
            ("public_slug", self.public_slug.clone().into()),
        ])
    }
}

impl Audited for Company {
    fn audited_fields(&self) -> BTreeMap<&'static str, Value> {
        fields([
            ("name", self.name.clone().into()),
            ("domain", self.domain.clone().into()),
            ("logo_url", self.logo_url.clone().into()),
            ("logo_hash", self.logo_hash.clone().into()),
            ("brand_color", self.brand_color.clone().into()),
            ("slug", self.slug.clone().into()),
            ("lead_capture_enabled", self.leads.capture_enabled.into()),
            ("lead_consent_required", self.leads.consent_required.into()),
            ("lead_consent_text", self.leads.consent_text.clone().into()),
            (
                "privacy_policy_url",
                self.leads.privacy_policy_url.clone().into(),
            ),
            ("lead_retention_days", self.leads.retention_days.into()),
        ])
    }
}

// `User` holds no password hash: there is nothing secret to leave out.
impl Audited for User {
    fn audited_fields(&self) -> BTreeMap<&'static str, Value> {
        fields([
            ("email", self.email.clone().into()),
            ("full_name", self.full_name.clone().into()),
            ("role", self.role.as_str().into()),
            ("is_active", self.is_active.into()),
            (
                "employee_id",
                self.employee_id.map(|id| id.to_string()).into(),
            ),
        ])
    }
}

/// One event to record.
#[derive(Clone, Debug)]
pub struct AuditEvent {
    pub action: &'static str,
    pub target: Target,
    pub changes: Changes,
    pub outcome: Outcome,
}

impl AuditEvent {
    /// A successful `action` (dotted, e.g. `employee.updated`) on `target`, changing nothing yet.
    pub fn new(action: &'static str, target: Target) -> Self {
        Self {
            action,
            target,
            changes: Changes::new(),
            outcome: Outcome::Success,
        }
    }

    pub fn changes(mut self, changes: Changes) -> Self {
        self.changes = changes;
        self
    }

    pub fn outcome(mut self, outcome: Outcome) -> Self {
        self.outcome = outcome;
        self
    }
}

const RECORD: &str = "INSERT INTO audit_events
         (company_id, actor_user_id, actor_company_id, actor_role, action, target_type, target_id,
          changes, outcome, request_id, client_address, user_agent)
     VALUES (nullif(current_setting('app.company_id', true), '')::uuid,
             $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";

/// Records `event` in the transaction's company, as part of the transaction: it is committed
/// with the change it describes, or not at all.
pub async fn record(tx: &TenantTx, ctx: &AuditContext, event: AuditEvent) -> Result<(), DbError> {
    let actor = ctx.actor;
    let changes = event.changes.into_value();
    tx.execute(
        RECORD,
        [
            &actor.map(|a| a.user_id),
            &actor.map(|a| a.company_id),
            &actor.map(|a| a.role.as_str()),
            &event.action,
            &event.target.kind,
            &event.target.id,
            &changes,
            &event.outcome.as_str(),
            &ctx.request_id,
            &ctx.client_address,
            &ctx.user_agent,
        ],
    )
    .await?;
    Ok(())
}

/// A sign-up's events, in its transaction: the company (on the free plan) and its first admin,
/// created by that admin.
pub async fn record_sign_up(
    tx: &TenantTx,
    ctx: &AuditContext,
    (company_id, company_name, slug): (Uuid, &str, &str),
    admin: &super::user::NewUser<'_>,
) -> Result<(), DbError> {
    let company = Changes::new()
        .field("name", None::<&str>, company_name)
        .field("slug", None::<&str>, slug)
        .field("plan", None::<&str>, "free");
    let user = Changes::new()
        .field("email", None::<&str>, admin.email)
        .field("full_name", None::<&str>, admin.full_name)
        .field("role", None::<&str>, admin.role.as_str())
        .field("is_active", None::<bool>, true);
    let ctx = ctx.clone().by(Actor {
        user_id: admin.id,
        company_id,
        role: admin.role,
    });
    let company = AuditEvent::new("company.created", Target::company(company_id)).changes(company);
    record(tx, &ctx, company).await?;
    let user = AuditEvent::new("user.created", Target::user(admin.id)).changes(user);
    record(tx, &ctx, user).await
}

/// A login attempt that changed nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoginAttempt {
    /// Wrong credentials (`auth.login_failed`, failure).
    Failed,
    /// The right password on a disabled login (`auth.login_failed`, denied).
    Disabled,
    /// Refused before the password was checked: too many failures (`auth.login_throttled`).
    Throttled,
}

impl LoginAttempt {
    fn action(self) -> (&'static str, Outcome) {
        match self {
            LoginAttempt::Failed => ("auth.login_failed", Outcome::Failure),
            LoginAttempt::Disabled => ("auth.login_failed", Outcome::Denied),
            LoginAttempt::Throttled => ("auth.login_throttled", Outcome::Denied),
        }
    }
}

const LOGIN_ATTEMPT: &str = "SELECT audit_login_attempt($1, $2, $3, $4, $5, $6)";

/// Records a login attempt on `email` in a transaction without a tenant (`Db::write_public`):
/// in the company of the account it names, or, for an email that names none, only counted
/// (the email itself is never stored). `true` when it was stored as an event.
pub async fn record_login_attempt(
    tx: &TenantTx,
    ctx: &AuditContext,
    email: &str,
    attempt: LoginAttempt,
) -> Result<bool, DbError> {
    let (action, outcome) = attempt.action();
    Ok(tx
        .query_one(
            LOGIN_ATTEMPT,
            [
                &email,
                &action,
                &outcome.as_str(),
                &ctx.request_id,
                &ctx.client_address,
                &ctx.user_agent,
            ],
        )
        .await?
        .try_get(0)?)
}

const PURGE: &str = "SELECT audit_purge($1, $2)";

/// Events deleted per statement of the retention job.
pub const PURGE_BATCH: i32 = 10_000;

/// Deletes up to [`PURGE_BATCH`] events older than `retention_days` (the database keeps at
/// least 30 days whatever is asked), in a transaction without a tenant; how many.
pub async fn purge_expired(tx: &TenantTx, retention_days: i32) -> Result<i64, DbError> {
    Ok(tx
        .query_one(PURGE, [&retention_days, &PURGE_BATCH])
        .await?
        .try_get(0)?)
}

/// An event as stored.
#[derive(Clone, Debug)]
pub struct StoredEvent {
    pub id: Uuid,
    pub occurred_at: DateTime<Utc>,
    pub actor_user_id: Option<Uuid>,
    pub actor_email: Option<String>,
    pub actor_role: Option<Role>,
    pub action: String,
    pub target_type: String,
    pub target_id: Option<Uuid>,
    /// `{"field": {"before": …, "after": …}}`
    pub changes: BTreeMap<String, FieldChange>,
    pub outcome: Outcome,
    pub request_id: Option<String>,
    pub client_address: Option<IpAddr>,
    pub user_agent: Option<String>,
}

/// One field's values before and after.
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
pub struct FieldChange {
    #[serde(default)]
    pub before: Value,
    #[serde(default)]
    pub after: Value,
}

impl TryFrom<&Row> for StoredEvent {
    type Error = DbError;

    fn try_from(row: &Row) -> Result<Self, DbError> {
        let changes: JsonColumn<BTreeMap<String, FieldChange>> = row.try_get("changes")?;
        let role: Option<&str> = row.try_get("actor_role")?;
        Ok(Self {
            id: row.try_get("id")?,
            occurred_at: row.try_get("occurred_at")?,
            actor_user_id: row.try_get("actor_user_id")?,
            actor_email: row.try_get("actor_email")?,
            actor_role: role
                .map(|r| Role::parse(r).ok_or_else(|| super::decode_error("actor_role", r)))
                .transpose()?,
            action: row.try_get("action")?,
            target_type: row.try_get("target_type")?,
            target_id: row.try_get("target_id")?,
            changes: changes.0,
            outcome: Outcome::parse(row.try_get("outcome")?)?,
            request_id: row.try_get("request_id")?,
            client_address: row.try_get("client_address")?,
            user_agent: row.try_get("user_agent")?,
        })
    }
}

/// Which actions a list shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ActionFilter {
    /// This action only.
    Exact(String),
    /// Every action under this prefix, which ends with a dot (`employee.` for `employee.*`).
    Prefix(String),
}

/// Where a page starts: after the last event of the previous page, newest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cursor {
    occurred_at: DateTime<Utc>,
    id: Uuid,
}

/// A cursor the list did not give out.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("`cursor` is not a cursor this list gave out")]
pub struct BadCursor;

impl Cursor {
    /// Opaque to clients: base64url of `1 <micros> <id>` (microseconds: `timestamptz`'s
    /// precision, so the comparison is exact).
    pub fn encode(&self) -> String {
        let text = format!("1 {} {}", self.occurred_at.timestamp_micros(), self.id);
        URL_SAFE_NO_PAD.encode(text)
    }

    pub fn decode(raw: &str) -> Result<Self, BadCursor> {
        let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| BadCursor)?;
        let text = String::from_utf8(bytes).map_err(|_| BadCursor)?;
        let mut parts = text.split(' ');
        let (Some("1"), Some(micros), Some(id), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(BadCursor);
        };
        let micros: i64 = micros.parse().map_err(|_| BadCursor)?;
        Ok(Self {
            occurred_at: DateTime::from_timestamp_micros(micros).ok_or(BadCursor)?,
            id: id.parse().map_err(|_| BadCursor)?,
        })
    }
}

/// What to list: filters, where to start, how many.
#[derive(Clone, Debug, Default)]
pub struct ListQuery {
    pub actor: Option<Uuid>,
    pub action: Option<ActionFilter>,
    pub target_type: Option<String>,
    pub target_id: Option<Uuid>,
    /// Inclusive.
    pub from: Option<DateTime<Utc>>,
    /// Exclusive.
    pub to: Option<DateTime<Utc>>,
    pub after: Option<Cursor>,
    pub limit: i64,
}

/// One page, newest first, and where the next starts (`None` on the last page).
pub struct Page {
    pub events: Vec<StoredEvent>,
    pub next: Option<Cursor>,
}

const EVENT_COLUMNS: &str = "id, occurred_at, actor_user_id, actor_email, actor_role, action,
     target_type, target_id, changes, outcome, request_id, client_address, user_agent";

/// The list's statement for the filters present. Every statement takes all eleven parameters
/// (an absent filter's stays NULL and is only checked to be so), so the text alone varies, and
/// each variant — at most 2^7 — is prepared once per connection with the plan of its own
/// filters, served by the index the filter leads with.
fn list_sql(query: &ListQuery) -> String {
    let mut sql = format!("SELECT {EVENT_COLUMNS} FROM audit_events WHERE company_id = $1");
    let mut filter = |present: bool, condition: &str, absent: &str| {
        sql.push_str(" AND ");
        sql.push_str(if present { condition } else { absent });
    };
    filter(
        query.actor.is_some(),
        "actor_user_id = $2",
        "$2::uuid IS NULL",
    );
    match &query.action {
        Some(ActionFilter::Exact(_)) => filter(true, "action = $3 AND $4::text IS NULL", ""),
        // A range of the "C"-collated index: `employee.` ≤ action < `employee/`.
        Some(ActionFilter::Prefix(_)) => filter(true, "action >= $3 AND action < $4", ""),
        None => filter(false, "", "$3::text IS NULL AND $4::text IS NULL"),
    }
    filter(
        query.target_type.is_some(),
        "target_type = $5",
        "$5::text IS NULL",
    );
    filter(
        query.target_id.is_some(),
        "target_id = $6",
        "$6::uuid IS NULL",
    );
    filter(
        query.from.is_some(),
        "occurred_at >= $7",
        "$7::timestamptz IS NULL",
    );
    filter(
        query.to.is_some(),
        "occurred_at < $8",
        "$8::timestamptz IS NULL",
    );
    filter(
        query.after.is_some(),
        "(occurred_at, id) < ($9, $10)",
        "$9::timestamptz IS NULL AND $10::uuid IS NULL",
    );
    sql.push_str(" ORDER BY occurred_at DESC, id DESC LIMIT $11");
    sql
}

/// One page of the company's events matching `query`, newest first; `None` when there is no
/// such company (or the tenant cannot see it). One pipelined read.
pub async fn list(
    tx: &TenantTx,
    company_id: Uuid,
    query: &ListQuery,
) -> Result<Option<Page>, DbError> {
    let sql = list_sql(query);
    let (action, action_end) = match &query.action {
        Some(ActionFilter::Exact(action)) => (Some(action.clone()), None),
        Some(ActionFilter::Prefix(prefix)) => {
            // The prefix ends with '.', and '/' is the next byte: the end of the range.
            let end = format!("{}/", prefix.trim_end_matches('.'));
            (Some(prefix.clone()), Some(end))
        }
        None => (None, None),
    };
    let after_time = query.after.map(|c| c.occurred_at);
    let after_id = query.after.map(|c| c.id);
    // One more than asked: whether another page follows.
    let fetch = query.limit + 1;
    let (exists, rows) = tokio::join!(
        super::company::exists(tx, company_id),
        tx.query(
            &sql,
            [
                &company_id,
                &query.actor,
                &action,
                &action_end,
                &query.target_type,
                &query.target_id,
                &query.from,
                &query.to,
                &after_time,
                &after_id,
                &fetch,
            ],
        ),
    );
    if !exists? {
        return Ok(None);
    }
    let mut events: Vec<StoredEvent> = super::from_rows(&rows?)?;
    let limit = usize::try_from(query.limit).unwrap_or(0);
    let next = if events.len() > limit {
        events.truncate(limit);
        events.last().map(|e| Cursor {
            occurred_at: e.occurred_at,
            id: e.id,
        })
    } else {
        None
    };
    Ok(Some(Page { events, next }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_hold_only_fields_that_differ() {
        let changes = Changes::new()
            .field("name", "Old", "New")
            .field("domain", None::<String>, None::<String>)
            .field("brand_color", None::<String>, Some("#fff"));
        assert_eq!(
            changes.into_value(),
            serde_json::json!({
                "name": {"before": "Old", "after": "New"},
                "brand_color": {"before": null, "after": "#fff"},
            })
        );
    }

    #[test]
    fn cursors_round_trip_and_refuse_anything_else() {
        let cursor = Cursor {
            occurred_at: DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap(),
            id: Uuid::new_v4(),
        };
        assert_eq!(Cursor::decode(&cursor.encode()), Ok(cursor));
        for bad in [
            "",
            "not base64!",
            &URL_SAFE_NO_PAD.encode("2 1 x"),
            &URL_SAFE_NO_PAD.encode("1 x y"),
        ] {
            assert_eq!(Cursor::decode(bad), Err(BadCursor), "{bad}");
        }
    }

    #[test]
    fn absent_filters_only_check_their_parameter_is_null() {
        let sql = list_sql(&ListQuery {
            action: Some(ActionFilter::Prefix("employee.".into())),
            limit: 10,
            ..ListQuery::default()
        });
        assert!(sql.contains("action >= $3 AND action < $4"), "{sql}");
        assert!(sql.contains("$2::uuid IS NULL"), "{sql}");
        assert!(sql.contains("$9::timestamptz IS NULL"), "{sql}");
        for n in 1..=11 {
            assert!(sql.contains(&format!("${n}")), "${n} unused: {sql}");
        }
    }
}
