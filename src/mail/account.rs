//! The account emails, queued in the caller's transaction: a token is issued and its email put
//! in the outbox together, so both happen or neither does.
//!
//! Forgotten passwords are handled off the request: `POST /api/auth/forgot-password` hands the
//! address to one task and answers at once, the same answer after the same work whether or not
//! an account has that address.

use std::{net::IpAddr, sync::Arc, time::Duration, time::Instant};

use tokio::{sync::mpsc, task::JoinHandle};
use uuid::Uuid;

use super::message::{self, Recipient};
use crate::{
    analytics::{rate_limit::RateLimiter, visitor::VisitorKey},
    db::{Db, DbError, Tenant, TenantTx},
    model::{
        self,
        account_token::{Issue, Purpose},
    },
};

/// How long a password reset link works.
pub const RESET_TTL: Duration = Duration::from_secs(3600);
/// How long an email verification link works (the emails say so).
pub const VERIFICATION_TTL: Duration = Duration::from_secs(48 * 3600);

/// Forgotten-password requests waiting for the task; beyond, 503 `busy`.
const RESET_QUEUE: usize = 256;
/// Client addresses tracked by the request limit; past that, those idle longest go first.
const TRACKED_ADDRESSES: usize = 100_000;

/// Issues account tokens and queues their emails.
pub struct AccountMail {
    /// `PUBLIC_BASE_URL`, the base of the links.
    public_base_url: String,
    /// `AUTH_ACCOUNT_EMAILS_PER_HOUR`: emails of one kind an account may be sent in an hour.
    per_account_per_hour: i64,
    address_keys: VisitorKey,
    /// `AUTH_ADDRESS_EMAIL_REQUESTS_PER_HOUR`, per client address.
    requests: RateLimiter,
}

impl AccountMail {
    pub fn new(
        public_base_url: &str,
        per_account_per_hour: u32,
        per_address_per_hour: u32,
        secret: &[u8],
    ) -> Self {
        Self {
            public_base_url: public_base_url.trim_end_matches('/').to_owned(),
            per_account_per_hour: i64::from(per_account_per_hour),
            address_keys: VisitorKey::new(secret),
            requests: RateLimiter::new(
                per_address_per_hour,
                f64::from(per_address_per_hour) / 3600.0,
                TRACKED_ADDRESSES,
            ),
        }
    }

    /// Takes one of this client address's email requests (forgotten passwords, new
    /// verification links), or tells how long to wait.
    pub fn take_request(&self, ip: IpAddr) -> Result<(), Duration> {
        self.requests
            .check(&self.address_keys.rate_key(ip), Instant::now())
    }

    fn link(&self, page: &str, token: &str) -> String {
        format!("{}/app/{page}?token={token}", self.public_base_url)
    }

    /// Queues a verification email to `user_id` (a login of the transaction's company, not yet
    /// verified); `false` when none was due (verified already, or the hour's emails sent).
    pub async fn queue_verification(&self, tx: &TenantTx, user_id: Uuid) -> Result<bool, DbError> {
        let how = Issue {
            purpose: Purpose::EmailVerification,
            ttl: VERIFICATION_TTL,
            per_hour: self.per_account_per_hour,
            replaces_older: false,
        };
        let Some(issued) = model::account_token::issue(tx, user_id, how).await? else {
            return Ok(false);
        };
        let email = message::verify_email(
            &recipient(&issued),
            &self.link("verify-email", &issued.token),
        );
        model::outbox::enqueue_email(tx, &email).await?;
        Ok(true)
    }

    /// Queues a password reset email to `user_id`; the login's older reset links stop working.
    /// `false` when none was sent (an inactive login, or the hour's emails sent).
    pub async fn queue_password_reset(
        &self,
        tx: &TenantTx,
        user_id: Uuid,
    ) -> Result<bool, DbError> {
        let how = Issue {
            purpose: Purpose::PasswordReset,
            ttl: RESET_TTL,
            per_hour: self.per_account_per_hour,
            replaces_older: true,
        };
        let Some(issued) = model::account_token::issue(tx, user_id, how).await? else {
            return Ok(false);
        };
        let email = message::reset_password(
            &recipient(&issued),
            &self.link("reset-password", &issued.token),
        );
        model::outbox::enqueue_email(tx, &email).await?;
        Ok(true)
    }
}

fn recipient(issued: &model::account_token::Issued) -> Recipient<'_> {
    Recipient {
        email: &issued.email,
        full_name: &issued.full_name,
        company_name: &issued.company_name,
    }
}

/// Forgotten passwords, handled one after the other by a task of their own.
pub struct PasswordResets {
    queue: mpsc::Sender<String>,
}

/// The queue of forgotten-password requests is full.
#[derive(Debug)]
pub struct Busy;

impl PasswordResets {
    pub fn start(db: Db, mail: Arc<AccountMail>) -> (Self, JoinHandle<()>) {
        let (queue, mut requests) = mpsc::channel::<String>(RESET_QUEUE);
        let task = tokio::spawn(async move {
            while let Some(email) = requests.recv().await {
                if let Err(e) = reset(&db, &mail, &email).await {
                    tracing::warn!(error = %e, "a password reset email could not be queued");
                }
            }
        });
        (Self { queue }, task)
    }

    /// Hands `email` (lowercased) to the task.
    pub fn request(&self, email: String) -> Result<(), Busy> {
        self.queue.try_send(email).map_err(|_| Busy)
    }
}

/// Queues a reset email to the account of `email`, if there is an active one.
async fn reset(db: &Db, mail: &AccountMail, email: &str) -> Result<(), DbError> {
    let account = db
        .read_public(async |tx| model::user::login_lookup(&tx, email).await)
        .await?;
    let Some(account) = account.filter(|a| a.is_active) else {
        tracing::debug!("password reset asked for an address with no active account");
        return Ok(());
    };
    let queued = db
        .write(&Tenant::account_email(account.company_id), async |tx| {
            mail.queue_password_reset(&tx, account.user_id).await
        })
        .await?;
    if !queued {
        tracing::info!(user_id = %account.user_id, "password reset not sent: the hour's emails were sent");
    }
    Ok(())
}
