//! One-time tokens sent by email: password resets and email verifications. The token is only
//! ever in the email; the table holds its SHA-256 (`sql/V11__account_tokens.sql`).

use std::time::Duration;

use rand::RngCore;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::db::{DbError, Role, TenantTx};

/// What a token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    PasswordReset,
    EmailVerification,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::PasswordReset => "password_reset",
            Purpose::EmailVerification => "email_verification",
        }
    }
}

/// A new token (256 random bits, URL-safe base64) and the hash that is stored.
pub fn new_token() -> (String, Vec<u8>) {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let hash = token_hash(&token);
    (token, hash)
}

pub fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// A token just issued, with what its email needs.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The token itself, for the link; never stored.
    pub token: String,
    pub email: String,
    pub full_name: String,
    pub company_name: String,
}

/// How to issue a token.
#[derive(Debug, Clone, Copy)]
pub struct Issue {
    pub purpose: Purpose,
    pub ttl: Duration,
    /// Tokens of this purpose the login may be sent in any hour; beyond, none is issued.
    pub per_hour: i64,
    /// Whether the login's older unused tokens of this purpose stop working.
    pub replaces_older: bool,
}

const ISSUE: &str = "WITH account AS (
         SELECT u.company_id, u.id, u.email, u.full_name, c.name AS company_name
         FROM users u JOIN companies c ON c.id = u.company_id
         WHERE u.id = $1 AND u.is_active
           AND ($2 <> 'email_verification' OR u.email_verified_at IS NULL)
           AND (SELECT count(*) FROM account_tokens t
                WHERE t.company_id = u.company_id AND t.user_id = u.id AND t.purpose = $2
                  AND t.created_at > now() - interval '1 hour') < $4
     ), retired AS (
         UPDATE account_tokens t SET used_at = now()
         FROM account a
         WHERE $5 AND t.company_id = a.company_id AND t.user_id = a.id AND t.purpose = $2
           AND t.used_at IS NULL
     ), issued AS (
         INSERT INTO account_tokens (company_id, token_hash, user_id, purpose, email, expires_at)
         SELECT company_id, $3, id, $2, email, now() + make_interval(secs => $6) FROM account
     )
     SELECT email, full_name, company_name FROM account";

/// Issues a token of `how.purpose` to the active login `user_id`; `None` when the login is not
/// there or inactive, is already verified (for a verification), or had its tokens of the hour.
pub async fn issue(tx: &TenantTx, user_id: Uuid, how: Issue) -> Result<Option<Issued>, DbError> {
    let (token, hash) = new_token();
    let seconds = how.ttl.as_secs_f64();
    let row = tx
        .query_opt(
            ISSUE,
            [
                &user_id,
                &how.purpose.as_str(),
                &hash,
                &how.per_hour,
                &how.replaces_older,
                &seconds,
            ],
        )
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    Ok(Some(Issued {
        token,
        email: row.try_get(0)?,
        full_name: row.try_get(1)?,
        company_name: row.try_get(2)?,
    }))
}

/// What the service knows of a token before its tenant is known (a SECURITY DEFINER lookup).
#[derive(Debug, Clone)]
pub struct TokenState {
    pub company_id: Uuid,
    pub purpose: String,
    pub expired: bool,
    pub used: bool,
}

const LOOKUP: &str = "SELECT company_id, purpose, expired, used FROM account_token_lookup($1)";

pub async fn lookup(tx: &TenantTx, token: &str) -> Result<Option<TokenState>, DbError> {
    let hash = token_hash(token);
    let Some(row) = tx.query_opt(LOOKUP, [&hash]).await? else {
        return Ok(None);
    };
    Ok(Some(TokenState {
        company_id: row.try_get(0)?,
        purpose: row.try_get(1)?,
        expired: row.try_get(2)?,
        used: row.try_get(3)?,
    }))
}

/// Whom a valid reset token is for, and the words a new password must avoid.
#[derive(Debug, Clone)]
pub struct ResetAccount {
    pub user_id: Uuid,
    pub email: String,
    pub full_name: String,
    pub company_name: String,
}

const RESET_ACCOUNT: &str = "SELECT u.id, u.email, u.full_name, c.name
     FROM account_tokens t
     JOIN users u ON u.company_id = t.company_id AND u.id = t.user_id
     JOIN companies c ON c.id = u.company_id
     WHERE t.token_hash = $1 AND t.purpose = 'password_reset' AND t.used_at IS NULL
       AND t.expires_at > now() AND u.is_active";

/// The active login a valid, unused reset token is for.
pub async fn reset_account(tx: &TenantTx, token: &str) -> Result<Option<ResetAccount>, DbError> {
    let hash = token_hash(token);
    let Some(row) = tx.query_opt(RESET_ACCOUNT, [&hash]).await? else {
        return Ok(None);
    };
    Ok(Some(ResetAccount {
        user_id: row.try_get(0)?,
        email: row.try_get(1)?,
        full_name: row.try_get(2)?,
        company_name: row.try_get(3)?,
    }))
}

/// Spends a reset token and sets the password: the token's login, or `None` if the token was
/// spent (or replaced) meanwhile. The other reset tokens of the login stop working too, and
/// the address is verified: the email reached its owner.
const RESET_PASSWORD: &str = "WITH spent AS (
         UPDATE account_tokens t SET used_at = now()
         WHERE t.token_hash = $1 AND t.purpose = 'password_reset' AND t.used_at IS NULL
           AND t.expires_at > now()
         RETURNING t.company_id, t.user_id, t.email
     ), others AS (
         UPDATE account_tokens t SET used_at = now()
         FROM spent s
         WHERE t.company_id = s.company_id AND t.user_id = s.user_id
           AND t.purpose = 'password_reset' AND t.used_at IS NULL AND t.token_hash <> $1
     )
     UPDATE users u
     SET password_hash = $2,
         email_verified_at = CASE WHEN lower(u.email) = lower(s.email)
                                  THEN coalesce(u.email_verified_at, now())
                                  ELSE u.email_verified_at END
     FROM spent s
     WHERE u.company_id = s.company_id AND u.id = s.user_id AND u.is_active
     RETURNING u.id, u.role";

/// The login whose emailed link was just used: the one who acted, for the audit trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenOwner {
    pub user_id: Uuid,
    pub role: Role,
}

impl TokenOwner {
    fn of(row: &tokio_postgres::Row, id: &str, role: &str) -> Result<Self, DbError> {
        let raw: &str = row.try_get(role)?;
        Ok(Self {
            user_id: row.try_get(id)?,
            role: Role::parse(raw).ok_or_else(|| DbError::Decode(format!("role {raw:?}")))?,
        })
    }
}

pub async fn reset_password(
    tx: &TenantTx,
    token: &str,
    password_hash: &str,
) -> Result<Option<TokenOwner>, DbError> {
    let hash = token_hash(token);
    let row = tx
        .query_opt(RESET_PASSWORD, [&hash, &password_hash])
        .await?;
    row.map(|r| TokenOwner::of(&r, "id", "role")).transpose()
}

/// Spends a verification token and marks the address it was sent to as verified (if the login
/// still has that address). The last column reads the login as it was before the statement
/// (every part of one statement sees the same snapshot): whether it was verified already.
const VERIFY_EMAIL: &str = "WITH spent AS (
         UPDATE account_tokens t SET used_at = now()
         WHERE t.token_hash = $1 AND t.purpose = 'email_verification' AND t.used_at IS NULL
           AND t.expires_at > now()
         RETURNING t.company_id, t.user_id, t.email
     ), verified AS (
         UPDATE users u SET email_verified_at = coalesce(u.email_verified_at, now())
         FROM spent s
         WHERE u.company_id = s.company_id AND u.id = s.user_id AND lower(u.email) = lower(s.email)
         RETURNING u.company_id, u.id, u.role
     )
     SELECT (SELECT count(*) FROM spent) AS spent, v.id, v.role,
            (SELECT u.email_verified_at IS NOT NULL FROM users u
             WHERE u.company_id = v.company_id AND u.id = v.id) AS was_verified
     FROM (VALUES (1)) AS one (x) LEFT JOIN verified v ON true";

/// What spending a verification token did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    /// The login's address is verified; `already`: it was before this token.
    Verified { owner: TokenOwner, already: bool },
    /// The token is spent, but the login's address is no longer the one it was sent to.
    AddressChanged,
}

/// `None`: no valid unused token.
pub async fn verify_email(tx: &TenantTx, token: &str) -> Result<Option<Verification>, DbError> {
    let hash = token_hash(token);
    let row = tx.query_one(VERIFY_EMAIL, [&hash]).await?;
    let spent: i64 = row.try_get("spent")?;
    if spent == 0 {
        return Ok(None);
    }
    let verified: Option<Uuid> = row.try_get("id")?;
    if verified.is_none() {
        return Ok(Some(Verification::AddressChanged));
    }
    Ok(Some(Verification::Verified {
        owner: TokenOwner::of(&row, "id", "role")?,
        already: row.try_get("was_verified")?,
    }))
}

const FORGET: &str = "SELECT account_tokens_forget()";

/// Forgets tokens expired for more than a day (a maintenance transaction); how many.
pub async fn forget(tx: &TenantTx) -> Result<i64, DbError> {
    Ok(tx.query_one(FORGET, []).await?.try_get(0)?)
}
