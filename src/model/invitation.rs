//! Invitations: an admin invites a person by email to join the company as `admin` or
//! `employee`; the person follows the one-time link in the email, chooses a password and has a
//! login. The link's token is stored only as its SHA-256, and lives [`VALID_FOR`].

use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};
use tokio_postgres::Row;
use uuid::Uuid;

use super::{
    outbox::{self, Email},
    user::{self, NewUser, User},
};
use crate::db::{DbError, Role, TenantTx};

/// How long an invitation's link works.
pub const VALID_FOR: Duration = Duration::from_secs(7 * 86_400);

/// Invitations a company may send in an hour (sent, whatever became of them since): each is an
/// email to an address of the sender's choosing.
pub const PER_HOUR: i64 = 30;

/// An invitation as the company sees it (never its token).
#[derive(Debug, Clone)]
pub struct Invitation {
    pub id: Uuid,
    pub company_id: Uuid,
    pub email: String,
    pub role: Role,
    pub employee_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub invited_by: Uuid,
}

macro_rules! invitation_columns {
    () => {
        "id, company_id, email, role, employee_id, created_at, expires_at, invited_by"
    };
}

fn role(raw: &str) -> Result<Role, DbError> {
    Role::parse(raw).ok_or_else(|| super::decode_error("role", format!("unknown role {raw}")))
}

impl TryFrom<&Row> for Invitation {
    type Error = DbError;

    fn try_from(row: &Row) -> Result<Self, DbError> {
        Ok(Self {
            id: row.try_get("id")?,
            company_id: row.try_get("company_id")?,
            email: row.try_get("email")?,
            role: role(row.try_get("role")?)?,
            employee_id: row.try_get("employee_id")?,
            created_at: row.try_get("created_at")?,
            expires_at: row.try_get("expires_at")?,
            invited_by: row.try_get("invited_by")?,
        })
    }
}

/// A new invitation's fields, validated (`email` in lower case).
pub struct NewInvitation {
    pub email: String,
    pub role: Role,
    pub employee_id: Option<Uuid>,
    pub invited_by: Uuid,
}

/// What the invitation email is written from.
pub struct Invited<'a> {
    pub invitation: &'a Invitation,
    pub company_name: &'a str,
    /// The one-time token of the link; it exists nowhere else.
    pub token: &'a str,
}

/// Why an invitation cannot be sent.
#[derive(Debug, thiserror::Error)]
pub enum InviteError {
    #[error("no such company")]
    NoCompany,
    #[error("a login with this email exists")]
    EmailTaken,
    #[error("no such employee in this company")]
    EmployeeNotFound,
    #[error("the employee has a login already")]
    EmployeeAlreadyLinked,
    #[error("the employee has a pending invitation to another address")]
    EmployeeAlreadyInvited,
    #[error("the company sent {PER_HOUR} invitations within the hour")]
    TooMany { retry_after: Duration },
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Why an invitation's token does not give a login.
#[derive(Debug, thiserror::Error)]
pub enum AcceptError {
    #[error("no invitation has this token")]
    Unknown,
    #[error("the invitation was accepted already")]
    Used,
    #[error("the invitation was withdrawn or replaced")]
    Withdrawn,
    #[error("the invitation expired")]
    Expired,
    #[error(transparent)]
    Db(#[from] DbError),
}

/// An invitation found by its token, before its company is known as the tenant.
#[derive(Debug, Clone)]
pub struct TokenInvitation {
    pub id: Uuid,
    pub company_id: Uuid,
    pub company_name: String,
    pub email: String,
    pub role: Role,
    pub employee_id: Option<Uuid>,
    /// The linked employee's name: the new login's name unless the person gives one.
    pub employee_name: Option<String>,
    state: String,
}

impl TokenInvitation {
    /// Whether it can still be accepted (checked again, under the row's lock, by [`accept`]).
    pub fn check_pending(&self) -> Result<(), AcceptError> {
        state_error(&self.state).map_or(Ok(()), Err)
    }
}

fn state_error(state: &str) -> Option<AcceptError> {
    match state {
        "accepted" => Some(AcceptError::Used),
        "withdrawn" => Some(AcceptError::Withdrawn),
        "expired" => Some(AcceptError::Expired),
        _ => None,
    }
}

/// A new one-time token (256 random bits, URL-safe) and the hash that is stored.
pub fn new_token() -> (String, Vec<u8>) {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let hash = token_hash(&token);
    (token, hash)
}

/// What is stored of a token.
pub fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Serializes the company's invitations (and its logins' changes, see `user`): the rate limit,
/// the one-open-invitation-per-address rule and the checks below hold under concurrent requests.
const LOCK_COMPANY: &str = "SELECT name FROM companies WHERE id = $1 FOR NO KEY UPDATE";

/// Invitations sent in the last hour, and when the oldest of them leaves the hour (seconds).
const SENT_THIS_HOUR: &str = "SELECT count(*),
            coalesce(extract(epoch FROM min(created_at) + interval '1 hour' - now()), 0)::float8
     FROM invitations WHERE company_id = $1 AND created_at > now() - interval '1 hour'";

/// An ended invitation (accepted, withdrawn, replaced, expired) is kept 30 days as a record,
/// then deleted when the company sends its next one: a company's table stays bounded by the
/// rate limit.
const PURGE_ENDED: &str = "DELETE FROM invitations
     WHERE company_id = $1
       AND coalesce(accepted_at, withdrawn_at, expires_at) < now() - interval '30 days'";

/// The open invitation to the same address (pending or expired) makes way for the new one.
const REPLACE_OPEN: &str = "UPDATE invitations SET withdrawn_at = now()
     WHERE company_id = $1 AND lower(email) = lower($2)
       AND accepted_at IS NULL AND withdrawn_at IS NULL";

const EMPLOYEE_STATE: &str = "SELECT
         EXISTS (SELECT 1 FROM employees WHERE company_id = $1 AND id = $2),
         EXISTS (SELECT 1 FROM invitations
                 WHERE company_id = $1 AND employee_id = $2
                   AND accepted_at IS NULL AND withdrawn_at IS NULL AND expires_at > now())";

const INSERT_INVITATION: &str = concat!(
    "INSERT INTO invitations (company_id, id, email, role, employee_id, token_hash, invited_by,
                              expires_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, now() + make_interval(secs => $8))
     RETURNING ",
    invitation_columns!()
);

const LIST_PENDING: &str = concat!(
    "SELECT ",
    invitation_columns!(),
    " FROM invitations
     WHERE company_id = $1 AND accepted_at IS NULL AND withdrawn_at IS NULL AND expires_at > now()
     ORDER BY created_at, id OFFSET $2 LIMIT $3"
);

const COUNT_PENDING: &str = "SELECT count(*) FROM invitations
     WHERE company_id = $1 AND accepted_at IS NULL AND withdrawn_at IS NULL AND expires_at > now()";

const WITHDRAW: &str = "UPDATE invitations SET withdrawn_at = now()
     WHERE company_id = $1 AND id = $2
       AND accepted_at IS NULL AND withdrawn_at IS NULL AND expires_at > now()";

const BY_TOKEN: &str = "SELECT invitation_id, company_id, company_name, email, role, employee_id,
            employee_name, state
     FROM invitation_by_token($1)";

/// Takes the invitation under its row's lock: of two concurrent accepts, the second waits for
/// the first and then finds it accepted.
const TAKE: &str = "UPDATE invitations SET accepted_at = now()
     WHERE company_id = $1 AND id = $2
       AND accepted_at IS NULL AND withdrawn_at IS NULL AND expires_at > now()
     RETURNING email, role, employee_id";

const STATE: &str = "SELECT CASE WHEN accepted_at IS NOT NULL THEN 'accepted'
                        WHEN withdrawn_at IS NOT NULL THEN 'withdrawn'
                        ELSE 'expired' END
     FROM invitations WHERE company_id = $1 AND id = $2";

const MARK_ACCEPTED_BY: &str =
    "UPDATE invitations SET accepted_user_id = $3 WHERE company_id = $1 AND id = $2";

/// Sends an invitation: stores it (replacing an open one to the same address) and queues the
/// email that `compose` writes, in the same transaction.
pub async fn create(
    tx: &TenantTx,
    company_id: Uuid,
    new: &NewInvitation,
    compose: impl FnOnce(Invited<'_>) -> Email,
) -> Result<Invitation, InviteError> {
    let company_name: String = tx
        .query_opt(LOCK_COMPANY, [&company_id])
        .await?
        .ok_or(InviteError::NoCompany)?
        .try_get(0)
        .map_err(DbError::from)?;
    let sent = tx.query_one(SENT_THIS_HOUR, [&company_id]).await?;
    let (count, wait): (i64, f64) = (
        sent.try_get(0).map_err(DbError::from)?,
        sent.try_get(1).map_err(DbError::from)?,
    );
    if count >= PER_HOUR {
        return Err(InviteError::TooMany {
            retry_after: Duration::from_secs_f64(wait.clamp(1.0, 3600.0)),
        });
    }
    if user::email_has_login(tx, &new.email).await? {
        return Err(InviteError::EmailTaken);
    }
    tx.execute(PURGE_ENDED, [&company_id]).await?;
    tx.execute(REPLACE_OPEN, [&company_id, &new.email]).await?;
    if let Some(employee_id) = new.employee_id {
        let state = tx
            .query_one(EMPLOYEE_STATE, [&company_id, &employee_id])
            .await?;
        let exists: bool = state.try_get(0).map_err(DbError::from)?;
        let invited: bool = state.try_get(1).map_err(DbError::from)?;
        if !exists {
            return Err(InviteError::EmployeeNotFound);
        }
        if user::employee_has_login(tx, company_id, employee_id).await? {
            return Err(InviteError::EmployeeAlreadyLinked);
        }
        if invited {
            return Err(InviteError::EmployeeAlreadyInvited);
        }
    }
    let (token, hash) = new_token();
    let row = tx
        .query_one(
            INSERT_INVITATION,
            [
                &company_id,
                &Uuid::new_v4(),
                &new.email,
                &new.role.as_str(),
                &new.employee_id,
                &hash,
                &new.invited_by,
                &VALID_FOR.as_secs_f64(),
            ],
        )
        .await?;
    let invitation = Invitation::try_from(&row)?;
    let email = compose(Invited {
        invitation: &invitation,
        company_name: &company_name,
        token: &token,
    });
    outbox::enqueue_email(tx, &email).await?;
    Ok(invitation)
}

/// One page of the company's pending invitations (not accepted, withdrawn or expired), oldest
/// first, and their number; `None` if there is no such company.
pub async fn pending(
    tx: &TenantTx,
    company_id: Uuid,
    page: (i64, i64),
) -> Result<Option<(Vec<Invitation>, i64)>, DbError> {
    super::company::page_of(tx, company_id, (LIST_PENDING, COUNT_PENDING), page).await
}

/// Withdraws a pending invitation: its link stops working. `false` if there is no such pending
/// invitation.
pub async fn withdraw(
    tx: &TenantTx,
    company_id: Uuid,
    invitation_id: Uuid,
) -> Result<bool, DbError> {
    Ok(tx.execute(WITHDRAW, [&company_id, &invitation_id]).await? == 1)
}

/// The invitation a token names, whatever its state (a SECURITY DEFINER lookup: no tenant).
pub async fn by_token(tx: &TenantTx, token: &str) -> Result<Option<TokenInvitation>, DbError> {
    let Some(row) = tx.query_opt(BY_TOKEN, [&token_hash(token)]).await? else {
        return Ok(None);
    };
    Ok(Some(TokenInvitation {
        id: row.try_get("invitation_id")?,
        company_id: row.try_get("company_id")?,
        company_name: row.try_get("company_name")?,
        email: row.try_get("email")?,
        role: role(row.try_get("role")?)?,
        employee_id: row.try_get("employee_id")?,
        employee_name: row.try_get("employee_name")?,
        state: row.try_get("state")?,
    }))
}

/// Accepts the invitation as the login `account` describes (its email, role and employee are
/// the invitation's, read under the row's lock). In the invitation's company.
pub async fn accept(
    tx: &TenantTx,
    invitation_id: Uuid,
    account: AcceptedAccount<'_>,
) -> Result<User, AcceptError> {
    let company_id = account.company_id;
    let Some(taken) = tx.query_opt(TAKE, [&company_id, &invitation_id]).await? else {
        let state = tx
            .query_opt(STATE, [&company_id, &invitation_id])
            .await?
            .ok_or(AcceptError::Unknown)?;
        let state: String = state.try_get(0).map_err(DbError::from)?;
        return Err(state_error(&state).unwrap_or(AcceptError::Expired));
    };
    let email: String = taken.try_get("email").map_err(DbError::from)?;
    let role = role(taken.try_get("role").map_err(DbError::from)?)?;
    let employee_id: Option<Uuid> = taken.try_get("employee_id").map_err(DbError::from)?;
    let new = NewUser {
        id: account.user_id,
        email: &email,
        password_hash: account.password_hash,
        full_name: account.full_name,
        role,
        employee_id,
    };
    let user = user::create(tx, company_id, &new).await?;
    tx.execute(MARK_ACCEPTED_BY, [&company_id, &invitation_id, &user.id])
        .await?;
    Ok(user)
}

/// The login an accepted invitation creates, besides what the invitation says.
pub struct AcceptedAccount<'a> {
    pub company_id: Uuid,
    pub user_id: Uuid,
    pub password_hash: &'a str,
    pub full_name: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_stored_hashed() {
        let (a, hash_a) = new_token();
        let (b, _) = new_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), 43, "256 bits in unpadded base64url");
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
        assert_eq!(hash_a, token_hash(&a));
        assert_eq!(hash_a.len(), 32);
        assert_ne!(hash_a, a.as_bytes());
    }

    #[test]
    fn ended_states_name_their_error() {
        assert!(matches!(state_error("accepted"), Some(AcceptError::Used)));
        assert!(matches!(
            state_error("withdrawn"),
            Some(AcceptError::Withdrawn)
        ));
        assert!(matches!(state_error("expired"), Some(AcceptError::Expired)));
        assert!(state_error("pending").is_none());
    }
}
