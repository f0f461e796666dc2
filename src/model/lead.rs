//! Leads: the contacts visitors leave on a card. A visitor adds one (and the emails it causes)
//! in a transaction of [`Tenant::visitor_leaving_contact`](crate::db::Tenant), which may insert
//! but never read a lead; the company's members list, read, export and erase them.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use tokio_postgres::Row;
use uuid::Uuid;

use super::company::LeadSettings;
use super::outbox::{self, Email};
use crate::db::{DbError, TenantTx};

/// A lead as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lead {
    pub id: Uuid,
    pub company_id: Uuid,
    /// `None` once the employee whose card it was is deleted.
    pub employee_id: Option<Uuid>,
    /// The card's name when the lead was left.
    pub employee_name: String,
    pub created_at: DateTime<Utc>,
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub company: Option<String>,
    pub job_title: Option<String>,
    pub note: Option<String>,
    pub consent_given: bool,
    /// The words consented to, as the card showed them.
    pub consent_text: Option<String>,
    pub vcard_requested: bool,
}

impl TryFrom<&Row> for Lead {
    type Error = DbError;

    fn try_from(row: &Row) -> Result<Self, DbError> {
        Ok(Self {
            id: row.try_get("id")?,
            company_id: row.try_get("company_id")?,
            employee_id: row.try_get("employee_id")?,
            employee_name: row.try_get("employee_name")?,
            created_at: row.try_get("created_at")?,
            name: row.try_get("name")?,
            email: row.try_get("email")?,
            phone: row.try_get("phone")?,
            company: row.try_get("company")?,
            job_title: row.try_get("job_title")?,
            note: row.try_get("note")?,
            consent_given: row.try_get("consent_given")?,
            consent_text: row.try_get("consent_text")?,
            vcard_requested: row.try_get("vcard_requested")?,
        })
    }
}

/// A lead to store, its fields checked.
#[derive(Debug, Clone)]
pub struct NewLead {
    pub id: Uuid,
    pub employee_id: Uuid,
    pub employee_name: String,
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub company: Option<String>,
    pub job_title: Option<String>,
    pub note: Option<String>,
    pub consent_text: Option<String>,
    pub consent_given: bool,
    pub vcard_requested: bool,
}

/// The company's settings and name, and the employee's card, as the visitor's transaction sees
/// them: what decides whether a lead is taken.
#[derive(Debug, Clone)]
pub struct Intake {
    pub company_name: String,
    pub settings: LeadSettings,
    pub employee_name: String,
    /// Where the email about the lead goes (`lead_recipient`): the card's address, or its
    /// linked login's; `None`: nobody to tell.
    pub recipient: Option<String>,
}

const INTAKE: &str =
    "SELECT c.name AS company_name, e.full_name, lead_recipient(e.id) AS recipient,
            c.lead_capture_enabled, c.lead_consent_required, c.lead_consent_text,
            c.privacy_policy_url, c.lead_retention_days
     FROM employees e JOIN companies c ON c.id = e.company_id
     WHERE e.id = $1";

/// What decides a lead on the card of `employee_id` (of the transaction's company), read in the
/// transaction that stores it: a setting changed a moment ago counts, whatever a cache showed.
pub async fn intake(tx: &TenantTx, employee_id: Uuid) -> Result<Option<Intake>, DbError> {
    let Some(row) = tx.query_opt(INTAKE, [&employee_id]).await? else {
        return Ok(None);
    };
    Ok(Some(Intake {
        company_name: row.try_get("company_name")?,
        settings: LeadSettings::try_from(&row)?,
        employee_name: row.try_get("full_name")?,
        recipient: row.try_get("recipient")?,
    }))
}

// No RETURNING: the visitor who inserts may not read the row back.
const INSERT: &str = "INSERT INTO leads (company_id, id, employee_id, employee_name, name, email,
         phone, company, job_title, note, consent_given, consent_text, vcard_requested)
     VALUES ((SELECT nullif(current_setting('app.company_id', true), '')::uuid), $1, $2, $3, $4,
             $5, $6, $7, $8, $9, $10, $11, $12)";

/// Stores `lead` in the transaction's company.
pub async fn create(tx: &TenantTx, lead: &NewLead) -> Result<(), DbError> {
    tx.execute(
        INSERT,
        [
            &lead.id,
            &lead.employee_id,
            &lead.employee_name,
            &lead.name,
            &lead.email,
            &lead.phone,
            &lead.company,
            &lead.job_title,
            &lead.note,
            &lead.consent_given,
            &lead.consent_text,
            &lead.vcard_requested,
        ],
    )
    .await?;
    Ok(())
}

/// Queues `email` about lead `lead_id`: erasing the lead erases the message too, until it is
/// forgotten.
pub async fn enqueue_email(tx: &TenantTx, lead_id: Uuid, email: &Email) -> Result<Uuid, DbError> {
    outbox::enqueue_email_about(tx, email, ("lead_id", lead_id)).await
}

/// Whose leads a member may see.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Admins and superadmins: all of the company's.
    Company,
    /// An employee: those of the card their login (this user id) is linked to, as the login
    /// is now; none without a card, nor of a deleted employee.
    LinkedTo(Uuid),
}

impl Scope {
    fn params(self) -> (bool, Option<Uuid>) {
        match self {
            Scope::Company => (false, None),
            Scope::LinkedTo(user) => (true, Some(user)),
        }
    }
}

/// `$2`: only the leads of the card login `$3` is linked to (an active login's).
macro_rules! scope_filter {
    () => {
        "(NOT $2 OR employee_id = (SELECT u.employee_id FROM users u
                                  WHERE u.company_id = leads.company_id AND u.id = $3
                                    AND u.is_active))"
    };
}

/// Where a page starts: after the last lead of the previous page, newest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cursor {
    created_at: DateTime<Utc>,
    id: Uuid,
}

/// A cursor the list did not give out.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("`cursor` is not a cursor this list gave out")]
pub struct BadCursor;

impl Cursor {
    /// Opaque to clients: base64url of `1 <micros> <id>`.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!(
            "1 {} {}",
            self.created_at.timestamp_micros(),
            self.id
        ))
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
        Ok(Self {
            created_at: DateTime::from_timestamp_micros(micros.parse().map_err(|_| BadCursor)?)
                .ok_or(BadCursor)?,
            id: id.parse().map_err(|_| BadCursor)?,
        })
    }

    pub fn of(lead: &Lead) -> Self {
        Self {
            created_at: lead.created_at,
            id: lead.id,
        }
    }
}

/// What to list.
#[derive(Clone, Debug)]
pub struct ListQuery {
    pub scope: Scope,
    /// Words found in the name, email, phone, company, job title or note (case-insensitive).
    pub search: Option<String>,
    /// Inclusive.
    pub from: Option<DateTime<Utc>>,
    /// Exclusive.
    pub to: Option<DateTime<Utc>>,
    pub after: Option<Cursor>,
    pub limit: i64,
}

/// Every filter is a parameter (`NULL`: none), so one statement serves every list; it reads
/// `leads_newest` (or `leads_employee`) backwards from the cursor.
const LIST: &str = concat!(
    "SELECT id, company_id, employee_id, employee_name, created_at, name, email,
            phone, company, job_title, note, consent_given, consent_text, vcard_requested
     FROM leads
     WHERE company_id = $1
       AND ",
    scope_filter!(),
    "
       AND ($4::text IS NULL OR name ILIKE $4 OR email ILIKE $4 OR phone ILIKE $4
            OR company ILIKE $4 OR job_title ILIKE $4 OR note ILIKE $4)
       AND ($5::timestamptz IS NULL OR created_at >= $5)
       AND ($6::timestamptz IS NULL OR created_at < $6)
       AND ($7::timestamptz IS NULL OR (created_at, id) < ($7, $8::uuid))
     ORDER BY created_at DESC, id DESC
     LIMIT $9"
);

/// `%…%` of `search`, its `%`, `_` and `\` matched as themselves.
fn like_pattern(search: &str) -> String {
    let mut out = String::with_capacity(search.len() + 2);
    out.push('%');
    for c in search.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// One page of the company's leads, newest first, and the cursor of the next (`None`: the last
/// page); `None` when the company does not exist (or the tenant may not see it).
pub async fn list(
    tx: &TenantTx,
    company_id: Uuid,
    query: &ListQuery,
) -> Result<Option<(Vec<Lead>, Option<Cursor>)>, DbError> {
    let (only_card, user) = query.scope.params();
    let pattern = query.search.as_deref().map(like_pattern);
    let (after_at, after_id) = (query.after.map(|c| c.created_at), query.after.map(|c| c.id));
    let limit = query.limit + 1;
    let (exists, rows) = tokio::join!(
        super::company::exists(tx, company_id),
        tx.query(
            LIST,
            [
                &company_id,
                &only_card,
                &user,
                &pattern,
                &query.from,
                &query.to,
                &after_at,
                &after_id,
                &limit,
            ],
        ),
    );
    if !exists? {
        return Ok(None);
    }
    let mut leads: Vec<Lead> = super::from_rows(&rows?)?;
    let more = leads.len() as i64 > query.limit;
    leads.truncate(usize::try_from(query.limit).unwrap_or(0));
    let next = leads.last().map(Cursor::of).filter(|_| more);
    Ok(Some((leads, next)))
}

const GET: &str = concat!(
    "SELECT id, company_id, employee_id, employee_name, created_at, name, email,
            phone, company, job_title, note, consent_given, consent_text, vcard_requested
     FROM leads WHERE id = $1 AND ",
    scope_filter!()
);

/// The lead, if the tenant has it and `scope` may see it.
pub async fn get(tx: &TenantTx, lead_id: Uuid, scope: Scope) -> Result<Option<Lead>, DbError> {
    let (only_card, user) = scope.params();
    tx.query_opt(GET, [&lead_id, &only_card, &user])
        .await?
        .as_ref()
        .map(Lead::try_from)
        .transpose()
}

const ERASE_MESSAGES: &str = "DELETE FROM outbox WHERE payload->>'lead_id' = $1";
const ERASE: &str = concat!(
    "DELETE FROM leads WHERE id = $1 RETURNING ",
    "id, company_id, employee_id, employee_name, created_at, name, email, phone, company, ",
    "job_title, note, consent_given, consent_text, vcard_requested"
);

/// Erases a lead (GDPR): the row, and every message about it still in the outbox (queued, or
/// sent but not yet forgotten: their recipient and subject name the visitor). The lead as it
/// was; `None` if there was no such lead. Retention erases the same way (`leads_purge`).
pub async fn erase(tx: &TenantTx, lead_id: Uuid) -> Result<Option<Lead>, DbError> {
    let Some(row) = tx.query_opt(ERASE, [&lead_id]).await? else {
        return Ok(None);
    };
    tx.execute(ERASE_MESSAGES, [&lead_id.to_string()]).await?;
    // Webhook deliveries of `lead.created` not yet sent carry the lead too.
    crate::model::webhook::erase_subject(tx, lead_id).await?;
    Ok(Some(Lead::try_from(&row)?))
}

const SUPERADMIN_LEAD_COMPANY: &str = "SELECT superadmin_lead_company($1)";

/// The company of a lead, for a superadmin's transaction only (SECURITY DEFINER).
pub async fn company_for_superadmin(tx: &TenantTx, lead_id: Uuid) -> Result<Option<Uuid>, DbError> {
    Ok(tx
        .query_one(SUPERADMIN_LEAD_COMPANY, [&lead_id])
        .await?
        .try_get(0)?)
}

/// Leads erased by retention in one transaction, at most.
pub const PURGE_BATCH: i32 = 1000;
const PURGE: &str = "SELECT leads_purge($1)";

/// Erases up to [`PURGE_BATCH`] leads past their company's retention (a maintenance
/// transaction, through `leads_purge`); how many.
pub async fn purge_expired(tx: &TenantTx) -> Result<i64, DbError> {
    Ok(tx.query_one(PURGE, [&PURGE_BATCH]).await?.try_get(0)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_others() {
        let cursor = Cursor {
            created_at: DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap(),
            id: Uuid::new_v4(),
        };
        assert_eq!(Cursor::decode(&cursor.encode()), Ok(cursor));
        assert_eq!(Cursor::decode("x"), Err(BadCursor));
        assert_eq!(
            Cursor::decode(&URL_SAFE_NO_PAD.encode("2 1 x")),
            Err(BadCursor)
        );
    }

    #[test]
    fn search_patterns_match_wildcards_literally() {
        assert_eq!(like_pattern("ada"), "%ada%");
        assert_eq!(like_pattern("50%_a\\"), "%50\\%\\_a\\\\%");
    }
}
