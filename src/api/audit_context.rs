//! Who made a request and from where, for the audit trail: `AuditContext::of(req, &caller)` in
//! a handler, then `model::audit::record(&tx, &ctx, event)` inside its transaction. Also the
//! login attempts that change nothing (wrong password, throttled), recorded on their own.

use std::{net::IpAddr, time::Instant};

use poem::{Request, http::header};
use sha2::{Digest, Sha256};

use super::AppState;
use crate::{
    analytics::rate_limit::RateLimiter,
    auth::{Caller, Role},
    db::Db,
    model::audit::{self, Actor, AuditContext, LoginAttempt},
    telemetry::RequestId,
};
use uuid::Uuid;

impl AuditContext {
    /// The request of a signed-in caller.
    pub fn of(req: &Request, caller: &Caller) -> Self {
        Self::anonymous(req).by(actor(caller))
    }

    /// A request of someone not signed in (yet): a login, a sign-up.
    pub fn anonymous(req: &Request) -> Self {
        let request_id = req.data::<RequestId>().map(RequestId::as_str);
        AuditContext::new(
            None,
            request_id,
            Some(client_address(req)),
            req.header(header::USER_AGENT),
        )
    }
}

/// The login behind a verified token.
pub fn actor(caller: &Caller) -> Actor {
    Actor {
        user_id: caller.user_id(),
        company_id: caller.company_id(),
        role: caller.role(),
    }
}

/// A login that just proved who it is (a password, an invitation) and has no token yet.
pub fn signed_in(user_id: Uuid, company_id: Uuid, role: Role) -> Actor {
    Actor {
        user_id,
        company_id,
        role,
    }
}

/// The client's address as the service sees it everywhere else (`CLIENT_IP_HEADER` or the peer).
fn client_address(req: &Request) -> IpAddr {
    match req.data::<AppState>() {
        Some(state) => state.analytics.client_ip(req),
        None => req
            .remote_addr()
            .as_socket_addr()
            .map_or(IpAddr::from([0, 0, 0, 0]), |a| a.ip()),
    }
}

/// How many throttled logins per client address are recorded: one a minute. A refused login
/// costs nothing else (that is the point of refusing it), so without this a stranger could make
/// the service write as fast as it can refuse; failed logins need no such bound, the throttle
/// itself bounds them.
const THROTTLED_RECORDS_PER_MINUTE: f64 = 1.0;
/// Addresses remembered for that; past it, those idle longest are forgotten.
const TRACKED_REFUSALS: usize = 100_000;

/// Records login attempts that change nothing, in small transactions of their own.
pub struct LoginAttempts {
    throttled: RateLimiter,
}

impl Default for LoginAttempts {
    fn default() -> Self {
        Self {
            throttled: RateLimiter::new(1, THROTTLED_RECORDS_PER_MINUTE / 60.0, TRACKED_REFUSALS),
        }
    }
}

impl LoginAttempts {
    /// Records `attempt` on `email` (see [`audit::record_login_attempt`]). The refusal the
    /// client gets does not depend on it: a trail that cannot be written is logged, and the
    /// attempt is answered as it would have been.
    pub async fn record(&self, db: &Db, req: &Request, email: &str, attempt: LoginAttempt) {
        if attempt == LoginAttempt::Throttled && !self.admit_throttled(req) {
            tracing::debug!("throttled login not recorded: one a minute per address");
            return;
        }
        let ctx = AuditContext::anonymous(req);
        let recorded = db
            .write_public(async |tx| audit::record_login_attempt(&tx, &ctx, email, attempt).await)
            .await;
        match recorded {
            Ok(true) => {}
            // Counted per day in the database; the email itself is not kept anywhere.
            Ok(false) => tracing::debug!(?attempt, "login attempt on an unknown email"),
            Err(e) => tracing::warn!(error = %e, ?attempt, "recording a login attempt failed"),
        }
    }

    /// Keyed by the address alone: a stranger trying many emails still gets one record a minute.
    fn admit_throttled(&self, req: &Request) -> bool {
        let digest = Sha256::digest(client_address(req).to_string().as_bytes());
        let mut key = [0u8; 16];
        key.copy_from_slice(&digest[..16]);
        self.throttled.check(&key, Instant::now()).is_ok()
    }
}
