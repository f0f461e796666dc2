//! Server-side sessions: opened by a login, a sign-up or an accepted invitation, ended by a
//! logout, a revocation or a change to the login they belong to.
//!
//! A session hands out short-lived access tokens (JWTs naming it) and one opaque refresh token
//! at a time, stored only hashed. A refresh trades the current refresh token for a new pair; the
//! old one stays, marked used, so that presenting it again ends the session (reuse detection).
//! Whether a session is live is checked by every transaction of its caller (`session_check`,
//! `sql/V9__sessions.sql`); only a refresh writes to a live session (`last_used_at`).

use std::{net::IpAddr, time::Duration};

use chrono::{DateTime, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::db::{DbError, Role, TenantTx};

/// Who opened a session: shown back to the user in their list of sessions.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub user_agent: Option<String>,
    pub address: Option<IpAddr>,
}

/// How long a session lasts at most, refreshed or not (`SESSION_TTL`'s default).
pub const DEFAULT_TTL: Duration = Duration::from_secs(30 * 86_400);

/// How long a session lasts without a refresh (`SESSION_IDLE_TTL`'s default): a week, so that
/// someone using the app weekly stays signed in while a refresh token left on a forgotten device
/// dies within the week.
pub const DEFAULT_IDLE_TTL: Duration = Duration::from_secs(7 * 86_400);

/// The most live sessions a login keeps: opening one more ends the oldest. Also the longest
/// list of sessions.
pub const MAX_LIVE_PER_USER: i64 = 50;

/// Longest user agent kept; the rest is cut.
const USER_AGENT_MAX: usize = 512;

impl ClientInfo {
    pub fn new(user_agent: Option<&str>, address: Option<IpAddr>) -> Self {
        let user_agent = user_agent.map(|ua| {
            ua.chars()
                .filter(|c| !c.is_control())
                .take(USER_AGENT_MAX)
                .collect()
        });
        Self {
            user_agent,
            address,
        }
    }
}

/// A session just opened, with its first refresh token (shown this once, stored only hashed).
#[derive(Debug, Clone)]
pub struct OpenedSession {
    pub id: Uuid,
    pub refresh_token: String,
    pub expires_at: DateTime<Utc>,
}

/// A new opaque refresh token (256 random bits, URL-safe) and the hash that is stored.
pub fn new_refresh_token() -> (String, Vec<u8>) {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let hash = token_hash(&token);
    (token, hash)
}

/// What is stored of a refresh token.
pub fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Before a login's new session: its sessions ended over a day ago are deleted (with their
/// refresh tokens), and its oldest live ones beyond [`MAX_LIVE_PER_USER`] - 1 are ended, so
/// that however often a login signs in, its rows stay bounded. (The two sets are disjoint: a
/// statement must not change one row twice.)
const SWEEP_AND_CAP: &str = "WITH swept AS (
         DELETE FROM sessions
         WHERE user_id = $1
           AND (revoked_at < now() - interval '1 day' OR expires_at < now() - interval '1 day')
     ), capped AS (
         UPDATE sessions SET revoked_at = now(), revoked_reason = 'too_many_sessions'
         WHERE user_id = $1 AND id IN (
             SELECT id FROM sessions
             WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > now()
             ORDER BY created_at DESC, id OFFSET $2)
     )
     SELECT 1";

const OPEN: &str = "WITH session AS (
         INSERT INTO sessions (company_id, id, user_id, expires_at, user_agent, client_address)
         VALUES ((SELECT company_id FROM users WHERE id = $2), $1, $2,
                 now() + make_interval(secs => $3), $4, $5)
         RETURNING company_id, id, expires_at
     )
     INSERT INTO session_refresh_tokens (company_id, token_hash, session_id)
     SELECT company_id, $6, id FROM session
     RETURNING (SELECT expires_at FROM session)";

/// Opens a session of `user_id` (a login of the transaction's company) lasting at most `ttl`.
pub async fn open(
    tx: &TenantTx,
    user_id: Uuid,
    client: &ClientInfo,
    ttl: Duration,
) -> Result<OpenedSession, DbError> {
    let id = Uuid::new_v4();
    let (refresh_token, hash) = new_refresh_token();
    let seconds = ttl.as_secs_f64();
    tx.execute(SWEEP_AND_CAP, [&user_id, &(MAX_LIVE_PER_USER - 1)])
        .await?;
    let row = tx
        .query_one(
            OPEN,
            [
                &id,
                &user_id,
                &seconds,
                &client.user_agent,
                &client.address,
                &hash,
            ],
        )
        .await?;
    Ok(OpenedSession {
        id,
        refresh_token,
        expires_at: row.try_get(0)?,
    })
}

const END_FOR_USER: &str = "UPDATE sessions SET revoked_at = now(), revoked_reason = $3
     WHERE user_id = $1 AND revoked_at IS NULL AND id IS DISTINCT FROM $2";

/// Ends every live session of `user_id` but `except` (the caller's own, say); how many ended.
/// `reason` is kept with each (e.g. `password_changed`, `deactivated`).
pub async fn end_for_user(
    tx: &TenantTx,
    user_id: Uuid,
    except: Option<Uuid>,
    reason: &str,
) -> Result<u64, DbError> {
    tx.execute(END_FOR_USER, [&user_id, &except, &reason]).await
}

const END_ONE: &str = "UPDATE sessions SET revoked_at = now(), revoked_reason = $3
     WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL AND expires_at > now()
       AND last_used_at > now() - make_interval(secs => $4)";

/// Ends the live session `session_id` of `user_id` (a session idle for `idle` is no longer
/// live); whether there was one. `reason` is kept with it (`logout`, `revoked`).
pub async fn end(
    tx: &TenantTx,
    session_id: Uuid,
    user_id: Uuid,
    reason: &str,
    idle: Duration,
) -> Result<bool, DbError> {
    let idle = idle.as_secs_f64();
    let ended = tx
        .execute(END_ONE, [&session_id, &user_id, &reason, &idle])
        .await?;
    Ok(ended > 0)
}

/// A live session, as its user sees it in their list.
#[derive(Debug, Clone)]
pub struct SessionRow {
    pub id: Uuid,
    pub created_at: DateTime<Utc>,
    /// The last refresh (or the login, before the first one).
    pub last_used_at: DateTime<Utc>,
    pub user_agent: Option<String>,
}

impl TryFrom<&tokio_postgres::Row> for SessionRow {
    type Error = DbError;

    fn try_from(row: &tokio_postgres::Row) -> Result<Self, DbError> {
        Ok(Self {
            id: row.try_get("id")?,
            created_at: row.try_get("created_at")?,
            last_used_at: row.try_get("last_used_at")?,
            user_agent: row.try_get("user_agent")?,
        })
    }
}

const LIST: &str = "SELECT id, created_at, last_used_at, user_agent FROM sessions
     WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > now()
       AND last_used_at > now() - make_interval(secs => $2)
     ORDER BY created_at DESC, id DESC
     LIMIT $3";

/// The live sessions of `user_id`, newest first (at most [`MAX_LIVE_PER_USER`]).
pub async fn list(
    tx: &TenantTx,
    user_id: Uuid,
    idle: Duration,
) -> Result<Vec<SessionRow>, DbError> {
    let idle = idle.as_secs_f64();
    tx.query(LIST, [&user_id, &idle, &MAX_LIVE_PER_USER])
        .await?
        .iter()
        .map(SessionRow::try_from)
        .collect()
}

/// Why a refresh token was refused; every case but [`Refusal::Unknown`] leaves its session
/// ended. (A reuse comes as [`Refresh::Reused`], with the session it ended.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Never issued, or its session is gone.
    Unknown,
    /// Used before: the session was ended for it.
    Reused,
    /// The session had already ended.
    Revoked,
    /// Past the session's absolute end.
    Expired,
    /// Not refreshed within the idle limit.
    Idle,
    /// The login is disabled.
    Deactivated,
}

/// What a refresh came to.
#[derive(Debug, Clone)]
pub enum Refresh {
    /// The session goes on with a new refresh token; the login as it is now (its role may have
    /// changed since the last token).
    Refreshed {
        session: OpenedSession,
        user_id: Uuid,
        company_id: Uuid,
        role: Role,
    },
    /// The token was used before: the session it names has just been ended for that.
    Reused(EndedSession),
    Refused(Refusal),
}

/// A session a refresh ended, and whose it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndedSession {
    pub id: Uuid,
    pub user_id: Uuid,
    pub company_id: Uuid,
}

const REFRESH: &str = "SELECT outcome, session_id, user_id, company_id, role, expires_at
     FROM session_refresh($1, $2, $3)";

/// Trades `refresh_token` for a new one, before any tenant is known: a transaction of no tenant
/// (`Db::write_public`), through the `SECURITY DEFINER` function `session_refresh`. Sessions not
/// refreshed for `idle` are over.
pub async fn refresh(
    tx: &TenantTx,
    refresh_token: &str,
    idle: Duration,
) -> Result<Refresh, DbError> {
    let presented = token_hash(refresh_token);
    let (next_token, next_hash) = new_refresh_token();
    let idle = idle.as_secs_f64();
    let row = tx
        .query_one(REFRESH, [&presented, &next_hash, &idle])
        .await?;
    let outcome: String = row.try_get("outcome")?;
    let refusal = match outcome.as_str() {
        "refreshed" => None,
        "unknown" => Some(Refusal::Unknown),
        "reused" => {
            return Ok(Refresh::Reused(EndedSession {
                id: row.try_get("session_id")?,
                user_id: row.try_get("user_id")?,
                company_id: row.try_get("company_id")?,
            }));
        }
        "revoked" => Some(Refusal::Revoked),
        "expired" => Some(Refusal::Expired),
        "idle" => Some(Refusal::Idle),
        "deactivated" => Some(Refusal::Deactivated),
        other => return Err(DbError::Decode(format!("refresh outcome {other:?}"))),
    };
    if let Some(refusal) = refusal {
        return Ok(Refresh::Refused(refusal));
    }
    let role: String = row.try_get("role")?;
    Ok(Refresh::Refreshed {
        session: OpenedSession {
            id: row.try_get("session_id")?,
            refresh_token: next_token,
            expires_at: row.try_get("expires_at")?,
        },
        user_id: row.try_get("user_id")?,
        company_id: row.try_get("company_id")?,
        role: Role::parse(&role).ok_or_else(|| DbError::Decode(format!("role {role:?}")))?,
    })
}

/// Whether `token` could be a refresh token of ours: 43 URL-safe base64 characters (256 bits).
/// Anything else is refused before it reaches the database.
pub fn is_well_formed(token: &str) -> bool {
    token.len() == REFRESH_TOKEN_LEN
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The length of a refresh token: 32 bytes in unpadded base64.
pub const REFRESH_TOKEN_LEN: usize = 43;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_tokens_are_well_formed_and_distinct() {
        let (a, hash_a) = new_refresh_token();
        let (b, _) = new_refresh_token();
        assert!(is_well_formed(&a) && is_well_formed(&b), "{a} {b}");
        assert_ne!(a, b);
        assert_eq!(hash_a, token_hash(&a));
        assert_eq!(hash_a.len(), 32);
    }

    #[test]
    fn malformed_tokens_are_refused() {
        let (good, _) = new_refresh_token();
        for bad in [
            String::new(),
            good[1..].to_owned(),
            format!("{good}A"),
            format!("{}=", &good[1..]),
            format!("{}\0", &good[1..]),
            format!("{}é", &good[2..]),
            "a".repeat(10_000),
        ] {
            assert!(!is_well_formed(&bad), "{bad:?}");
        }
    }
}
