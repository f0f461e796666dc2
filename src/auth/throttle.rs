//! Guessing passwords, slowed down. Failed attempts (a wrong password at login, a wrong current
//! password when changing it) are counted per account and per client address; sign-ups per
//! client address.
//!
//! - Per account, by every instance together (PostgreSQL, `sql/V6__login_throttle.sql`): at most
//!   `account_failures_per_hour` in any hour. So that a stranger spending them cannot lock the
//!   owner out, an address the account logged in from before (within `trusted_address_ttl`)
//!   keeps a budget of its own of the same size; strangers share the account's. The owner, from
//!   a device that logged in before, still gets in; from a new address while the account is
//!   under attack, only once the hour has passed.
//! - Per client address, in this instance's memory: `address_failures_per_minute` failures (a
//!   token bucket: that many at once, then one every 60/n seconds), and sign-ups alike per hour.
//!   Only failures count, so people who type their password right are never slowed down.
//! - Per client address too, the public endpoints that take a token and look it up in a
//!   transaction: every token presented counts, generous enough that only guessing meets the
//!   limit. Refreshes have a bucket of their own; the tokens of emailed links (accepting an
//!   invitation, resetting a password, verifying an email address) share one, so a guesser
//!   cannot triple the rate by spreading guesses over the three.

use std::{
    net::IpAddr,
    time::{Duration, Instant},
};

use crate::{
    analytics::{rate_limit::RateLimiter, visitor::VisitorKey},
    config::AuthLimits,
    db::{Db, DbError, TenantTx},
    error::ApiError,
};

/// Seconds until this address may try this account again (0: now).
const ACCOUNT_WAIT: &str = "SELECT login_throttle_wait($1, $2, $3, $4)";
const ACCOUNT_FAILED: &str = "SELECT login_failed($1, $2, $3, $4)";
const ACCOUNT_SUCCEEDED: &str = "SELECT login_succeeded($1, $2)";
const FORGET: &str = "SELECT login_throttle_forget($1)";

/// Client addresses tracked per limit; past that, those idle longest are forgotten first.
const TRACKED_ADDRESSES: usize = 100_000;

/// A bucket per address for one public endpoint that looks a presented token up.
fn token_limiter(limits: &AuthLimits) -> RateLimiter {
    let per_second = f64::from(limits.address_tokens_per_hour) / 3600.0;
    RateLimiter::new(limits.address_token_burst, per_second, TRACKED_ADDRESSES)
}

fn take_token(limiter: &RateLimiter, client: &ClientKey) -> Result<(), ApiError> {
    limiter.check(&client.0, Instant::now()).map_err(|wait| {
        ApiError::too_many_requests(
            "too_many_requests",
            "Too many requests from this address; try again later",
            wait,
        )
    })
}

/// A client address as the throttle knows it: a keyed hash (IPv6 by its /64), the same on every
/// instance that shares the secret, never the address itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientKey([u8; 16]);

pub struct LoginThrottle {
    address_keys: VisitorKey,
    failures: RateLimiter,
    signups: RateLimiter,
    refreshes: RateLimiter,
    emailed_links: RateLimiter,
    account_limit: i32,
    trust_seconds: i32,
}

impl LoginThrottle {
    pub fn new(limits: &AuthLimits, secret: &[u8]) -> Self {
        let per_minute = limits.address_failures_per_minute;
        let per_hour = limits.address_signups_per_hour;
        Self {
            address_keys: VisitorKey::new(secret),
            failures: RateLimiter::new(per_minute, f64::from(per_minute) / 60.0, TRACKED_ADDRESSES),
            signups: RateLimiter::new(per_hour, f64::from(per_hour) / 3600.0, TRACKED_ADDRESSES),
            refreshes: token_limiter(limits),
            emailed_links: token_limiter(limits),
            account_limit: i32::try_from(limits.account_failures_per_hour).unwrap_or(i32::MAX),
            trust_seconds: i32::try_from(limits.trusted_address_ttl.as_secs()).unwrap_or(i32::MAX),
        }
    }

    pub fn client(&self, ip: IpAddr) -> ClientKey {
        ClientKey(self.address_keys.rate_key(ip))
    }

    /// 429 when this address has failed too often lately.
    pub fn check_address(&self, client: &ClientKey) -> Result<(), ApiError> {
        self.failures
            .peek(&client.0, Instant::now())
            .map_err(|wait| {
                crate::telemetry::metrics::LOGINS_THROTTLED.inc();
                ApiError::too_many_requests(
                    "too_many_attempts",
                    "Too many failed attempts from this address; try again later",
                    wait,
                )
            })
    }

    /// Takes one of this address's sign-ups, or answers 429.
    pub fn take_signup(&self, client: &ClientKey) -> Result<(), ApiError> {
        self.signups
            .check(&client.0, Instant::now())
            .map_err(|wait| {
                ApiError::too_many_requests(
                    "too_many_signups",
                    "Too many sign-ups from this address; try again later",
                    wait,
                )
            })
    }

    /// Takes one of this address's refreshes, or answers 429.
    pub fn take_refresh(&self, client: &ClientKey) -> Result<(), ApiError> {
        take_token(&self.refreshes, client)
    }

    /// Takes one of this address's invitation accepts, or answers 429.
    pub fn take_invitation_accept(&self, client: &ClientKey) -> Result<(), ApiError> {
        self.take_emailed_link(client)
    }

    /// Takes one of this address's emailed-link tokens (invitation accepts, password resets,
    /// email verifications: one bucket), or answers 429.
    pub fn take_emailed_link(&self, client: &ClientKey) -> Result<(), ApiError> {
        take_token(&self.emailed_links, client)
    }

    /// Inside a read: the seconds until `client` may try a password on `email`'s account.
    pub async fn account_wait(
        &self,
        tx: &TenantTx,
        email: &str,
        client: &ClientKey,
    ) -> Result<i32, DbError> {
        let row = tx
            .query_one(
                ACCOUNT_WAIT,
                [
                    &email,
                    &client.0.as_slice(),
                    &self.account_limit,
                    &self.trust_seconds,
                ],
            )
            .await?;
        Ok(row.try_get(0)?)
    }

    /// 429 for an account whose failures from this address's side are used up.
    pub fn account_refusal(wait_seconds: i32) -> Result<(), ApiError> {
        if wait_seconds <= 0 {
            return Ok(());
        }
        crate::telemetry::metrics::LOGINS_THROTTLED.inc();
        Err(ApiError::too_many_requests(
            "too_many_attempts",
            "Too many failed attempts on this account; try again later, or from a device that \
             logged in to it before",
            Duration::from_secs(u64::try_from(wait_seconds).unwrap_or(1)),
        ))
    }

    /// Counts a failed attempt on `email`'s account from `client`, here and in the database.
    pub async fn failed(&self, db: &Db, email: &str, client: &ClientKey) -> Result<(), ApiError> {
        let _ = self.failures.check(&client.0, Instant::now());
        db.write_public(async |tx| {
            tx.execute(
                ACCOUNT_FAILED,
                [
                    &email,
                    &client.0.as_slice(),
                    &self.account_limit,
                    &self.trust_seconds,
                ],
            )
            .await
        })
        .await?;
        Ok(())
    }

    /// `client` proved it knows the password of `email`'s account: the account trusts it.
    pub async fn succeeded(
        &self,
        db: &Db,
        email: &str,
        client: &ClientKey,
    ) -> Result<(), ApiError> {
        db.write_public(async |tx| {
            tx.execute(ACCOUNT_SUCCEEDED, [&email, &client.0.as_slice()])
                .await
        })
        .await?;
        Ok(())
    }

    /// Forgets failures that left the hour and trust that expired, every `period`.
    pub async fn forget_every(self: std::sync::Arc<Self>, db: Db, period: std::time::Duration) {
        let mut tick = tokio::time::interval(period);
        loop {
            tick.tick().await;
            let forgot = db
                .write_public(async |tx| tx.query_one(FORGET, [&self.trust_seconds]).await)
                .await;
            match forgot {
                Ok(row) => {
                    tracing::debug!(rows = row.get::<_, i64>(0), "forgot old login failures")
                }
                Err(e) => tracing::warn!(error = %e, "forgetting old login failures"),
            }
        }
    }
}
