//! The transactional outbox: messages queued with the change that causes them, sent later by
//! the outbox worker.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::db::{DbError, TenantTx};

/// An email, ready to send: plain text and HTML, from the service's address in the company's
/// name (`from_name`), with files attached (none in most).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Email {
    pub to: String,
    pub from_name: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    /// Left out of the payload when empty, so messages queued before attachments existed read
    /// the same.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<EmailAttachment>,
}

/// A text file sent with an email (a vCard, say).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailAttachment {
    pub file_name: String,
    /// Its MIME type with parameters, e.g. `text/vcard; charset=utf-8`.
    pub content_type: String,
    pub content: String,
}

const ENQUEUE: &str = "INSERT INTO outbox (company_id, id, kind, payload)
     VALUES ((SELECT nullif(current_setting('app.company_id', true), '')::uuid), $1, $2, $3)";

/// Queues `email` in the transaction's company; it is sent once the transaction commits.
pub async fn enqueue_email(tx: &TenantTx, email: &Email) -> Result<Uuid, DbError> {
    let id = Uuid::new_v4();
    let payload = serde_json::to_value(email).map_err(|e| DbError::Decode(e.to_string()))?;
    tx.execute(ENQUEUE, [&id, &"email", &payload]).await?;
    Ok(id)
}

/// Queues `email` like [`enqueue_email`], marked as being about `(key, id)` (e.g. `lead_id`) in
/// its payload, so that erasing that thing can erase its messages too.
pub async fn enqueue_email_about(
    tx: &TenantTx,
    email: &Email,
    (key, about): (&str, Uuid),
) -> Result<Uuid, DbError> {
    let id = Uuid::new_v4();
    let mut payload = serde_json::to_value(email).map_err(|e| DbError::Decode(e.to_string()))?;
    if let Some(fields) = payload.as_object_mut() {
        fields.insert(key.to_owned(), about.to_string().into());
    }
    tx.execute(ENQUEUE, [&id, &"email", &payload]).await?;
    Ok(id)
}

/// A message a worker claimed: it holds it until its lease runs out.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub company_id: Uuid,
    pub id: Uuid,
    pub kind: String,
    pub payload: serde_json::Value,
    /// This attempt's number, from 1.
    pub attempts: i32,
    pub claim: Uuid,
}

impl TryFrom<&tokio_postgres::Row> for Claimed {
    type Error = DbError;

    fn try_from(row: &tokio_postgres::Row) -> Result<Self, DbError> {
        Ok(Self {
            company_id: row.try_get("company_id")?,
            id: row.try_get("id")?,
            kind: row.try_get("kind")?,
            payload: row.try_get("payload")?,
            attempts: row.try_get("attempts")?,
            claim: row.try_get("claim")?,
        })
    }
}

/// What became of a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Failure {
    /// Try again after this many seconds (unless that was the last attempt).
    Retry(f64),
    /// The other side refused it for good.
    Permanent,
}

const CLAIM: &str =
    "SELECT company_id, id, kind, payload, attempts, claim FROM outbox_claim($1, $2)";
const SENT: &str = "SELECT outbox_sent($1, $2, $3)";
const FAILED: &str = "SELECT outbox_failed($1, $2, $3, $4, $5, $6, $7)";
const NEXT_DUE: &str = "SELECT outbox_next_due()";
const FORGET: &str = "SELECT outbox_forget($1)";

// The worker's side. It belongs to no company: these run in a maintenance transaction, through
// the SECURITY DEFINER functions of `sql/V10__outbox.sql`.

/// Claims up to `limit` due messages for `lease`.
pub async fn claim(
    tx: &TenantTx,
    limit: i32,
    lease: std::time::Duration,
) -> Result<Vec<Claimed>, DbError> {
    let rows = tx.query(CLAIM, [&limit, &lease.as_secs_f64()]).await?;
    super::from_rows(&rows)
}

/// Marks a claimed message sent; `false` if the claim was lost meanwhile.
pub async fn mark_sent(tx: &TenantTx, message: &Claimed) -> Result<bool, DbError> {
    let row = tx
        .query_opt(SENT, [&message.company_id, &message.id, &message.claim])
        .await?;
    Ok(row
        .and_then(|r| r.get::<_, Option<bool>>(0))
        .unwrap_or(false))
}

/// Records a failed attempt; `true` if the message was given up (`failed_at`).
pub async fn mark_failed(
    tx: &TenantTx,
    message: &Claimed,
    error: &str,
    failure: Failure,
    max_attempts: i32,
) -> Result<bool, DbError> {
    let (permanent, retry) = match failure {
        Failure::Retry(seconds) => (false, seconds),
        Failure::Permanent => (true, 0.0),
    };
    let row = tx
        .query_opt(
            FAILED,
            [
                &message.company_id,
                &message.id,
                &message.claim,
                &error,
                &permanent,
                &max_attempts,
                &retry,
            ],
        )
        .await?;
    Ok(row
        .and_then(|r| r.get::<_, Option<bool>>(0))
        .unwrap_or(false))
}

/// Seconds until the next pending message falls due; `None` when none is pending.
pub async fn next_due(tx: &TenantTx) -> Result<Option<f64>, DbError> {
    Ok(tx.query_one(NEXT_DUE, []).await?.try_get(0)?)
}

/// Forgets messages sent or given up longer than `keep` ago; how many.
pub async fn forget(tx: &TenantTx, keep: std::time::Duration) -> Result<i64, DbError> {
    Ok(tx
        .query_one(FORGET, [&keep.as_secs_f64()])
        .await?
        .try_get(0)?)
}
