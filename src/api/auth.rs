//! Sign-up, login, sessions (refresh, logout, the list of them) and the caller's own account.

use chrono::{DateTime, Utc};
use poem::{Request, web::Data};
use poem_openapi::{Object, OpenApi, param::Path, payload::Json};
use uuid::Uuid;

use super::{ApiTags, AppState, Created, JsonString, NoContent, schemas::User, validate};
use crate::{
    auth::{BearerAuth, Caller, Role, policy::PasswordContext, throttle::LoginThrottle},
    db::{DbError, Tenant},
    error::ApiError,
    model::{
        self,
        audit::{AuditContext, AuditEvent, Changes, LoginAttempt, Target},
        user::NewUser,
    },
};

#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct SignupRequest {
    #[oai(validator(max_length = 254))]
    pub email: JsonString,
    #[oai(validator(max_length = 256))]
    pub password: JsonString,
    #[oai(validator(max_length = 200))]
    pub full_name: JsonString,
    /// Defaults to the person's name.
    #[oai(nullable, validator(max_length = 200))]
    pub company_name: Option<JsonString>,
    /// Ignored: whoever signs up becomes the new company's admin. Accepted for older clients.
    #[oai(nullable, deprecated)]
    pub role: Option<JsonString>,
}

#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct LoginRequest {
    #[oai(validator(max_length = 254))]
    pub email: JsonString,
    #[oai(validator(max_length = 256))]
    pub password: JsonString,
}

#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    #[oai(validator(max_length = 256))]
    pub current_password: JsonString,
    #[oai(validator(max_length = 256))]
    pub new_password: JsonString,
}

#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct RefreshRequest {
    /// The refresh token of the last login or refresh: used once.
    pub refresh_token: JsonString,
}

/// One of the caller's live sessions.
#[derive(Debug, Object)]
pub struct SessionInfo {
    pub id: Uuid,
    /// The login that opened it.
    pub created_at: DateTime<Utc>,
    /// Its last refresh (its login, before the first refresh).
    pub last_used_at: DateTime<Utc>,
    /// The browser or app that opened it, as it said.
    #[oai(nullable)]
    pub user_agent: Option<String>,
    /// The session of the token this request came with.
    pub current: bool,
}

#[derive(Debug, Clone, Object)]
pub struct TokenResponse {
    pub access_token: String,
    /// Always `bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// Opaque; trade it at `POST /api/auth/refresh` for a new pair. Shown this once.
    pub refresh_token: String,
    /// Seconds until the session ends, however often it is refreshed.
    pub refresh_expires_in: u64,
    pub user_id: Uuid,
    pub company_id: Uuid,
    pub role: Role,
}

/// Who a new session is for.
#[derive(Debug, Clone, Copy)]
pub struct SessionUser {
    pub user_id: Uuid,
    pub company_id: Uuid,
    pub role: Role,
}

/// Opens a server-side session of `user` (the client named by `req`) and answers with its first
/// token pair: what a login, a sign-up and an accepted invitation all answer.
pub async fn open_session(
    state: &AppState,
    req: &Request,
    user: SessionUser,
) -> Result<TokenResponse, ApiError> {
    let client = model::session::ClientInfo::new(
        req.header(poem::http::header::USER_AGENT),
        Some(state.analytics.client_ip(req)),
    );
    let ttl = state.jwt.sessions().absolute;
    let actor = super::audit_context::signed_in(user.user_id, user.company_id, user.role);
    let audit = AuditContext::anonymous(req).by(actor);
    let session = state
        .db
        .write(&Tenant::session_opening(user.company_id), async |tx| {
            let session = model::session::open(&tx, user.user_id, &client, ttl).await?;
            let event = AuditEvent::new("auth.login", Target::user(user.user_id));
            model::audit::record(&tx, &audit, event).await?;
            Ok::<_, DbError>(session)
        })
        .await?;
    token(state, user, &session)
}

fn token(
    state: &AppState,
    user: SessionUser,
    session: &model::session::OpenedSession,
) -> Result<TokenResponse, ApiError> {
    let SessionUser {
        user_id,
        company_id,
        role,
    } = user;
    let refresh_expires_in = (session.expires_at - chrono::Utc::now())
        .num_seconds()
        .max(0) as u64;
    Ok(TokenResponse {
        access_token: state.jwt.issue(user_id, company_id, role, session.id)?,
        token_type: "bearer".into(),
        expires_in: state.jwt.ttl().as_secs(),
        refresh_token: session.refresh_token.clone(),
        refresh_expires_in,
        user_id,
        company_id,
        role,
    })
}

/// 401 for a refresh token that buys nothing: `invalid_refresh_token` for one we do not know,
/// `session_ended` for one whose session is over (or has just been ended for its reuse).
fn refresh_refused(refusal: model::session::Refusal) -> ApiError {
    use model::session::Refusal;
    let unauthorized = poem::http::StatusCode::UNAUTHORIZED;
    match refusal {
        Refusal::Unknown => ApiError::new(
            unauthorized,
            "invalid_refresh_token",
            "Unknown or malformed refresh token; log in again",
        ),
        Refusal::Reused => ApiError::new(
            unauthorized,
            "session_ended",
            "This refresh token was already used; its session has ended, log in again",
        ),
        Refusal::Revoked | Refusal::Expired | Refusal::Idle | Refusal::Deactivated => {
            ApiError::new(
                unauthorized,
                "session_ended",
                "This session has ended; log in again",
            )
        }
    }
}

/// Ends the caller's live session `session_id` for `reason` and records `session.ended`, in
/// one transaction; whether there was such a session.
pub async fn end_session(
    state: &AppState,
    caller: &Caller,
    audit: &AuditContext,
    session_id: Uuid,
    reason: &'static str,
) -> Result<bool, ApiError> {
    let (user_id, idle) = (caller.user_id(), state.jwt.sessions().idle);
    let ended = state
        .db
        .write(&caller.tenant(), async |tx| {
            let ended = model::session::end(&tx, session_id, user_id, reason, idle).await?;
            if ended {
                let changes = Changes::new().field("revoked_reason", None::<&str>, reason);
                let event = AuditEvent::new("session.ended", Target::session(session_id));
                model::audit::record(&tx, audit, event.changes(changes)).await?;
            }
            Ok::<_, DbError>(ended)
        })
        .await?;
    Ok(ended)
}

/// Trades a refresh token for a new pair (what `POST /api/auth/refresh` answers): the JSON API
/// and the console's quiet refresh share it.
pub async fn refresh_session(
    state: &AppState,
    req: &Request,
    presented: &str,
) -> Result<TokenResponse, ApiError> {
    if !model::session::is_well_formed(presented) {
        return Err(refresh_refused(model::session::Refusal::Unknown));
    }
    // A well-formed token costs a transaction to look up: guesses are bounded per address.
    let client = state.throttle.client(state.analytics.client_ip(req));
    state.throttle.take_refresh(&client)?;
    let idle = state.jwt.sessions().idle;
    let outcome = state
        .db
        .write_public(async |tx| model::session::refresh(&tx, presented, idle).await)
        .await?;
    match outcome {
        model::session::Refresh::Refreshed {
            session,
            user_id,
            company_id,
            role,
        } => {
            let user = SessionUser {
                user_id,
                company_id,
                role,
            };
            token(state, user, &session)
        }
        model::session::Refresh::Reused(ended) => {
            record_reuse(state, req, ended).await;
            Err(refresh_refused(model::session::Refusal::Reused))
        }
        model::session::Refresh::Refused(refusal) => Err(refresh_refused(refusal)),
    }
}

/// Records `session.revoked` for a session a reused refresh token ended. The refresh found the
/// company through the `SECURITY DEFINER` function, whose transaction had no tenant to write
/// the event in, so it goes in one of its own, in that company: at most once per session (the
/// session is over, a later refresh of it answers `revoked`). Nobody proved who they are: no
/// actor. The client's answer does not depend on it; a trail that cannot be written is logged.
async fn record_reuse(state: &AppState, req: &Request, ended: model::session::EndedSession) {
    let audit = AuditContext::anonymous(req);
    let changes = Changes::new().field("revoked_reason", None::<&str>, REUSE_REASON);
    let event = AuditEvent::new("session.revoked", Target::session(ended.id)).changes(changes);
    let recorded = state
        .db
        .write(&Tenant::session_reuse(ended.company_id), async |tx| {
            model::audit::record(&tx, &audit, event).await
        })
        .await;
    if let Err(e) = recorded {
        tracing::warn!(error = %e, session = %ended.id, "recording a refresh token reuse failed");
    }
}

/// What `session_refresh` keeps as the reason of a session ended for a reused refresh token.
const REUSE_REASON: &str = "refresh_token_reused";

/// What a sign-up asks for, from either door (the JSON body, the console's form).
pub struct SignUp {
    pub email: String,
    pub password: String,
    pub full_name: String,
    /// Defaults to the person's name.
    pub company_name: Option<String>,
}

/// Signs up a company: the company, its admin and its subscription in one transaction, the
/// verification email queued with them, and the admin's first session. `POST
/// /api/auth/signup` and the console's sign-up page both call it.
pub async fn sign_up(
    state: &AppState,
    req: &Request,
    form: SignUp,
) -> Result<TokenResponse, ApiError> {
    let email = validate::email("email", &form.email)?.to_lowercase();
    validate::password("password", &form.password)?;
    let full_name = validate::required_text("full_name", &form.full_name, 200)?;
    let company_name = validate::optional_text("company_name", form.company_name, 200)?
        .unwrap_or_else(|| full_name.clone());
    let client = state.throttle.client(state.analytics.client_ip(req));
    state.throttle.take_signup(&client)?;
    let context = PasswordContext::default()
        .email("email", &email)
        .name("full_name", &full_name)
        .name("company_name", &company_name);
    let hash = state
        .passwords
        .hash_new("password", form.password, context)
        .await?;
    let company_id = Uuid::new_v4();
    let admin = NewUser {
        id: Uuid::new_v4(),
        email: &email,
        password_hash: &hash,
        full_name: &full_name,
        role: Role::Admin,
        employee_id: None,
    };
    let tenant = Tenant::signup(company_id);
    let mut signed_up = false;
    let audit = AuditContext::anonymous(req);
    let mail = &state.account_mail;
    for slug in model::company::slug_candidates(&company_name) {
        let company = (company_id, company_name.as_str(), slug.as_str());
        if state
            .db
            .write(&tenant, async |tx| {
                let created = model::user::sign_up(&tx, company, &admin).await?;
                // The verification email is queued with the account, or not at all.
                if created {
                    model::audit::record_sign_up(&tx, &audit, company, &admin).await?;
                    mail.queue_verification(&tx, admin.id).await?;
                }
                Ok::<_, DbError>(created)
            })
            .await?
        {
            signed_up = true;
            break;
        }
    }
    if !signed_up {
        return Err(ApiError::no_free_slug());
    }
    // Signing up proved the password as well as a login does: this address is trusted.
    state.throttle.succeeded(&state.db, &email, &client).await?;
    let user = SessionUser {
        user_id: admin.id,
        company_id,
        role: Role::Admin,
    };
    open_session(state, req, user).await
}

/// Logs in with an email and a password: the throttles (per address, per account), the bounded
/// hashing pool, the same answer for a wrong email and a wrong password. `POST
/// /api/auth/login` and the console's login page both call it.
pub async fn log_in(
    state: &AppState,
    req: &Request,
    email: &str,
    password: String,
) -> Result<TokenResponse, ApiError> {
    let email = email.trim().to_lowercase();
    let client = state.throttle.client(state.analytics.client_ip(req));
    if let Err(refused) = state.throttle.check_address(&client) {
        let attempts = &state.login_attempts;
        attempts
            .record(&state.db, req, &email, LoginAttempt::Throttled)
            .await;
        return Err(refused);
    }
    // Refused for want of a hashing thread before any database work, so a storm of logins
    // costs the database nothing beyond what the pool can check.
    let reservation = state.passwords.reserve()?;
    let throttle = &state.throttle;
    let (account, wait) = state
        .db
        .read_public(async |tx| {
            // join!, not try_join!: both queries run to their end inside the pipeline.
            let (account, wait) = tokio::join!(
                model::user::login_lookup(&tx, &email),
                throttle.account_wait(&tx, &email, &client),
            );
            Ok::<_, DbError>((account?, wait?))
        })
        .await?;
    if let Err(refused) = LoginThrottle::account_refusal(wait) {
        let attempts = &state.login_attempts;
        attempts
            .record(&state.db, req, &email, LoginAttempt::Throttled)
            .await;
        return Err(refused);
    }
    let stored = account.as_ref().map(|a| a.password_hash.clone());
    if !state
        .passwords
        .verify_reserved(reservation, password, stored)
        .await?
    {
        state.throttle.failed(&state.db, &email, &client).await?;
        let attempts = &state.login_attempts;
        attempts
            .record(&state.db, req, &email, LoginAttempt::Failed)
            .await;
        return Err(ApiError::new(
            poem::http::StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "Incorrect email or password",
        ));
    }
    let account =
        account.ok_or_else(|| ApiError::internal("verified a password without a user"))?;
    if !account.is_active {
        let attempts = &state.login_attempts;
        attempts
            .record(&state.db, req, &email, LoginAttempt::Disabled)
            .await;
        return Err(ApiError::new(
            poem::http::StatusCode::FORBIDDEN,
            "account_disabled",
            "This account is disabled",
        ));
    }
    let user = SessionUser {
        user_id: account.user_id,
        company_id: account.company_id,
        role: account.role,
    };
    state.throttle.succeeded(&state.db, &email, &client).await?;
    open_session(state, req, user).await
}

/// The caller's live sessions, newest first, the caller's own marked: `GET
/// /api/auth/sessions` and the console's sessions page.
pub async fn list_sessions(
    state: &AppState,
    caller: &Caller,
) -> Result<Vec<SessionInfo>, ApiError> {
    let (user_id, current) = (caller.user_id(), caller.session_id());
    let idle = state.jwt.sessions().idle;
    let sessions = state
        .db
        .read(&caller.tenant(), async |tx| {
            model::session::list(&tx, user_id, idle).await
        })
        .await?;
    Ok(sessions
        .into_iter()
        .map(|s| SessionInfo {
            current: s.id == current,
            id: s.id,
            created_at: s.created_at,
            last_used_at: s.last_used_at,
            user_agent: s.user_agent,
        })
        .collect())
}

/// Ends every session of the caller's login but the caller's own, and records
/// `session.ended_all` with how many; how many ended.
pub async fn end_other_sessions(
    state: &AppState,
    caller: &Caller,
    audit: &AuditContext,
) -> Result<u64, ApiError> {
    let (user_id, current) = (caller.user_id(), caller.session_id());
    let ended = state
        .db
        .write(&caller.tenant(), async |tx| {
            let ended =
                model::session::end_for_user(&tx, user_id, Some(current), "logout_others").await?;
            let changes = Changes::new().field("sessions_ended", None::<u64>, ended);
            let event = AuditEvent::new("session.ended_all", Target::user(user_id));
            model::audit::record(&tx, audit, event.changes(changes)).await?;
            Ok::<_, DbError>(ended)
        })
        .await?;
    Ok(ended)
}

pub struct AuthApi;

#[OpenApi(prefix_path = "/auth", tag = "ApiTags::Auth")]
impl AuthApi {
    /// Sign up a company
    ///
    /// Creates the company (its slug made from the name, unique), its admin (the caller) and a
    /// `free` subscription, in one transaction, and logs the admin in.
    ///
    /// Limited per client address; a password too easy to guess, or built on the email or the
    /// names, is refused (`weak_password`).
    #[oai(path = "/signup", method = "post", operation_id = "signup")]
    async fn signup(
        &self,
        state: Data<&AppState>,
        req: &Request,
        body: Json<SignupRequest>,
    ) -> Result<Created<TokenResponse>, ApiError> {
        let b = body.0;
        let form = SignUp {
            email: b.email.into_inner(),
            password: b.password.into_inner(),
            full_name: b.full_name.into_inner(),
            company_name: b.company_name.map(JsonString::into_inner),
        };
        Ok(Created::Created(Json(sign_up(&state, req, form).await?)))
    }

    /// Log in
    ///
    /// A wrong email and a wrong password answer alike, after the same work. Failed attempts are
    /// limited per account (an address the account logged in from before keeps a budget of its
    /// own) and per client address: past either, 429 with `Retry-After`.
    #[oai(path = "/login", method = "post", operation_id = "login")]
    async fn login(
        &self,
        state: Data<&AppState>,
        req: &Request,
        body: Json<LoginRequest>,
    ) -> Result<Json<TokenResponse>, ApiError> {
        let b = body.0;
        Ok(Json(
            log_in(&state, req, &b.email, b.password.into_inner()).await?,
        ))
    }

    /// The caller's account
    #[oai(path = "/me", method = "get", operation_id = "getMe")]
    async fn me(&self, state: Data<&AppState>, auth: BearerAuth) -> Result<Json<User>, ApiError> {
        let user_id = auth.0.user_id();
        let user = state
            .db
            .read(&auth.0.tenant(), async |tx| {
                model::user::get(&tx, user_id).await
            })
            .await?
            .ok_or_else(|| ApiError::unauthorized("This account no longer exists"))?;
        Ok(Json(user.into()))
    }

    /// Change the caller's password
    ///
    /// A wrong current password counts as a failed login on the account (`Retry-After` past the
    /// limit); the new one is held to the same policy as at sign-up.
    #[oai(
        path = "/change-password",
        method = "post",
        operation_id = "changePassword"
    )]
    async fn change_password(
        &self,
        state: Data<&AppState>,
        req: &Request,
        auth: BearerAuth,
        body: Json<ChangePasswordRequest>,
    ) -> Result<NoContent, ApiError> {
        let b = body.0;
        validate::password("new_password", &b.new_password)?;
        let client = state.throttle.client(state.analytics.client_ip(req));
        state.throttle.check_address(&client)?;
        let user_id = auth.0.user_id();
        let tenant = auth.0.tenant();
        let record = state
            .db
            .read(&tenant, async |tx| {
                model::user::password_record(&tx, user_id).await
            })
            .await?
            .ok_or_else(|| ApiError::unauthorized("This account no longer exists"))?;
        let email = record.email;
        let context = PasswordContext::default()
            .email("email", &email)
            .name("full_name", &record.full_name)
            .name("company_name", &record.company_name);
        let throttle = &state.throttle;
        let wait = state
            .db
            .read_public(async |tx| throttle.account_wait(&tx, &email, &client).await)
            .await?;
        LoginThrottle::account_refusal(wait)?;
        if !state
            .passwords
            .verify(b.current_password.into_inner(), Some(record.password_hash))
            .await?
        {
            state.throttle.failed(&state.db, &email, &client).await?;
            return Err(ApiError::new(
                poem::http::StatusCode::FORBIDDEN,
                "wrong_password",
                "The current password is incorrect",
            ));
        }
        let hash = state
            .passwords
            .hash_new("new_password", b.new_password.into_inner(), context)
            .await?;
        let audit = AuditContext::of(req, &auth.0);
        let current = auth.0.session_id();
        state
            .db
            .write(&tenant, async |tx| {
                model::user::set_password_hash(&tx, user_id, &hash).await?;
                // Whoever else holds a session of this login (a thief, say) is out at once; the
                // caller's own session goes on.
                model::session::end_for_user(&tx, user_id, Some(current), "password_changed")
                    .await?;
                let event = AuditEvent::new("user.password_changed", Target::user(user_id));
                model::audit::record(&tx, &audit, event).await
            })
            .await?;
        Ok(NoContent::NoContent)
    }

    /// Refresh the tokens
    ///
    /// Trades a refresh token for a new access token and a new refresh token (the same answer
    /// as a login). The old refresh token is then used up: presenting it again ends its whole
    /// session (it must have been copied), and answers 401 `session_ended`. A session ends
    /// `SESSION_TTL` after its login however often it is refreshed, and when it is not
    /// refreshed for `SESSION_IDLE_TTL`. The new access token carries the login's role as it
    /// is now. Limited per client address (429 with `Retry-After`).
    #[oai(path = "/refresh", method = "post", operation_id = "refreshTokens")]
    async fn refresh(
        &self,
        state: Data<&AppState>,
        req: &Request,
        body: Json<RefreshRequest>,
    ) -> Result<Json<TokenResponse>, ApiError> {
        Ok(Json(
            refresh_session(&state, req, &body.0.refresh_token).await?,
        ))
    }

    /// Log out
    ///
    /// Ends the session of the token this request came with: its refresh token and every access
    /// token of it stop working at once, on every instance.
    #[oai(path = "/logout", method = "post", operation_id = "logout")]
    async fn logout(
        &self,
        state: Data<&AppState>,
        req: &Request,
        auth: BearerAuth,
    ) -> Result<NoContent, ApiError> {
        let session_id = auth.0.session_id();
        let audit = AuditContext::of(req, &auth.0);
        end_session(&state, &auth.0, &audit, session_id, "logout").await?;
        Ok(NoContent::NoContent)
    }

    /// Log out everywhere
    ///
    /// Ends every session of the caller's login, this one included.
    #[oai(path = "/logout-all", method = "post", operation_id = "logoutAll")]
    async fn logout_all(
        &self,
        state: Data<&AppState>,
        req: &Request,
        auth: BearerAuth,
    ) -> Result<NoContent, ApiError> {
        let user_id = auth.0.user_id();
        let audit = AuditContext::of(req, &auth.0);
        state
            .db
            .write(&auth.0.tenant(), async |tx| {
                let ended = model::session::end_for_user(&tx, user_id, None, "logout_all").await?;
                let changes = Changes::new().field("sessions_ended", None::<u64>, ended);
                let event = AuditEvent::new("session.ended_all", Target::user(user_id));
                model::audit::record(&tx, &audit, event.changes(changes)).await
            })
            .await?;
        Ok(NoContent::NoContent)
    }

    /// The caller's sessions
    ///
    /// The live sessions of the caller's login, newest first (at most 50: a login keeps no
    /// more); `current` marks the one of this request's token.
    #[oai(path = "/sessions", method = "get", operation_id = "listSessions")]
    async fn sessions(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
    ) -> Result<Json<Vec<SessionInfo>>, ApiError> {
        Ok(Json(list_sessions(&state, &auth.0).await?))
    }

    /// End one of the caller's sessions
    ///
    /// Another login's session, or one that is over, answers 404.
    #[oai(
        path = "/sessions/:session_id",
        method = "delete",
        operation_id = "deleteSession"
    )]
    async fn delete_session(
        &self,
        state: Data<&AppState>,
        req: &Request,
        auth: BearerAuth,
        session_id: Path<Uuid>,
    ) -> Result<NoContent, ApiError> {
        let audit = AuditContext::of(req, &auth.0);
        if !end_session(&state, &auth.0, &audit, session_id.0, "revoked").await? {
            return Err(ApiError::not_found("Session not found"));
        }
        Ok(NoContent::NoContent)
    }
}
