//! Server-side sessions: opened by a login, a sign-up or an accepted invitation, ended by a
//! logout, a revocation or a change to the login they belong to.

use std::{net::IpAddr, time::Duration};

use chrono::{DateTime, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::db::{DbError, TenantTx};

/// Who opened a session: shown back to the user in their list of sessions.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub user_agent: Option<String>,
    pub address: Option<IpAddr>,
}

/// How long a session lasts at most, refreshed or not (`SESSION_TTL`).
pub const DEFAULT_TTL: Duration = Duration::from_secs(30 * 86_400);

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
