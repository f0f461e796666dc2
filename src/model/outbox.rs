//! The transactional outbox: messages queued with the change that causes them, sent later by
//! the outbox worker.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::db::{DbError, TenantTx};

/// An email, ready to send: plain text and HTML, from the service's address in the company's
/// name (`from_name`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Email {
    pub to: String,
    pub from_name: String,
    pub subject: String,
    pub text: String,
    pub html: String,
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
