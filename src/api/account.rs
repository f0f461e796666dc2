//! The account's emailed links: forgotten passwords, password resets, email verification.

use poem::{Request, http::StatusCode, web::Data};
use poem_openapi::{ApiResponse, Object, OpenApi, payload::Json};

use super::{ApiTags, AppState, JsonString, NoContent, audit_context::signed_in, validate};
use crate::{
    auth::{BearerAuth, Caller, policy::PasswordContext},
    db::{DbError, Tenant},
    error::ApiError,
    model::{
        self,
        account_token::{TokenState, Verification},
        audit::{AuditContext, AuditEvent, Changes, Target},
    },
};

/// Longest token accepted: ours are 43 characters.
const MAX_TOKEN: usize = 128;

#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct ForgotPasswordRequest {
    #[oai(validator(max_length = 254))]
    pub email: JsonString,
}

#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct ResetPasswordRequest {
    /// The `token` of the emailed link.
    #[oai(validator(max_length = 128))]
    pub token: JsonString,
    #[oai(validator(max_length = 256))]
    pub password: JsonString,
}

#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct VerifyEmailRequest {
    /// The `token` of the emailed link.
    #[oai(validator(max_length = 128))]
    pub token: JsonString,
}

#[derive(Debug, Object)]
pub struct EmailQueued {
    /// Always `accepted`.
    pub status: String,
    /// What happens next, for a person.
    pub detail: String,
}

#[derive(ApiResponse)]
pub enum Accepted {
    /// Accepted: an email is on its way, if there is one to send.
    #[oai(status = 202)]
    Accepted(Json<EmailQueued>),
}

fn accepted(detail: &str) -> Accepted {
    Accepted::Accepted(Json(EmailQueued {
        status: "accepted".into(),
        detail: detail.into(),
    }))
}

pub const FORGOT_ANSWER: &str = "If an account has this email address, a link to reset its password \
                             is on its way. It works once, for one hour.";

fn invalid_token() -> ApiError {
    ApiError::new(
        // Not 400: a well-formed request naming a link we never sent is a lookup that found
        // nothing, like an unknown invitation.
        StatusCode::NOT_FOUND,
        "invalid_token",
        "This link is not valid: check that it was copied whole",
    )
}

fn token_used() -> ApiError {
    ApiError::new(
        StatusCode::GONE,
        "token_used",
        "This link was already used, or a newer one replaced it",
    )
}

fn token_expired() -> ApiError {
    ApiError::new(
        StatusCode::GONE,
        "token_expired",
        "This link has expired: ask for a new one",
    )
}

/// A token as sent in a link: URL-safe base64, of a sane length.
fn token_text(token: &str) -> Result<&str, ApiError> {
    let well_formed = !token.is_empty()
        && token.len() <= MAX_TOKEN
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    well_formed.then_some(token).ok_or_else(invalid_token)
}

/// The company of a live token of `purpose`, or why there is none.
async fn token_company(
    state: &AppState,
    token: &str,
    purpose: model::account_token::Purpose,
) -> Result<Tenant, ApiError> {
    let token = token.to_owned();
    let found: Option<TokenState> = state
        .db
        .read_public(async |tx| model::account_token::lookup(&tx, &token).await)
        .await?;
    match found {
        Some(t) if t.purpose != purpose.as_str() => Err(invalid_token()),
        Some(t) if t.used => Err(token_used()),
        Some(t) if t.expired => Err(token_expired()),
        Some(t) => Ok(Tenant::account_email(t.company_id)),
        None => Err(invalid_token()),
    }
}

/// What a request for a new verification link answers.
pub const RESEND_ANSWER: &str =
    "A new link to confirm your email address is on its way. It works once, for 48 hours.";

/// Hands a forgotten password's address to the task that emails the link, if an account has
/// it: the same answer either way (what the caller shows is [`FORGOT_ANSWER`]). `POST
/// /api/auth/forgot-password` and the console's page both call it.
pub fn request_password_reset(
    state: &AppState,
    req: &Request,
    email: &str,
) -> Result<(), ApiError> {
    let email = validate::email("email", email)?.to_lowercase();
    state
        .account_mail
        .take_request(state.analytics.client_ip(req))
        .map_err(|wait| {
            ApiError::too_many_requests(
                "too_many_requests",
                "Too many email requests from this address; try again later",
                wait,
            )
        })?;
    state.password_resets.request(email).map_err(|_| {
        ApiError::busy(
            "Too many password reset requests at once; try again shortly",
            std::time::Duration::from_secs(5),
        )
    })?;
    Ok(())
}

/// Spends a reset link's token and sets `password`, ending every session of the account.
pub async fn reset_password(
    state: &AppState,
    req: &Request,
    token: &str,
    password: String,
) -> Result<(), ApiError> {
    let token = token_text(token)?.to_owned();
    validate::password("password", &password)?;
    // Each token looked up costs a transaction: guesses are bounded per address.
    let client = state.throttle.client(state.analytics.client_ip(req));
    state.throttle.take_emailed_link(&client)?;
    let tenant = token_company(state, &token, model::account_token::Purpose::PasswordReset).await?;
    let account = state
        .db
        .read(&tenant, async |tx| {
            model::account_token::reset_account(&tx, &token).await
        })
        .await?
        .ok_or_else(token_used)?;
    let context = PasswordContext::default()
        .email("email", &account.email)
        .name("full_name", &account.full_name)
        .name("company_name", &account.company_name);
    let hash = state
        .passwords
        .hash_new("password", password, context)
        .await?;
    let audit = AuditContext::anonymous(req);
    let company_id = tenant.company_id();
    let reset = state
        .db
        .write(&tenant, async |tx| {
            let Some(owner) = model::account_token::reset_password(&tx, &token, &hash).await?
            else {
                return Ok(false);
            };
            let user_id = owner.user_id;
            model::session::end_for_user(&tx, user_id, None, "password_reset").await?;
            // The link reached the login's owner: they did it.
            let audit = audit.clone().by(signed_in(user_id, company_id, owner.role));
            let event = AuditEvent::new("user.password_reset", Target::user(user_id));
            model::audit::record(&tx, &audit, event).await?;
            Ok::<_, ApiError>(true)
        })
        .await?;
    if !reset {
        return Err(token_used());
    }
    Ok(())
}

/// Spends a verification link's token: the account's address is verified.
pub async fn verify_email(state: &AppState, req: &Request, token: &str) -> Result<(), ApiError> {
    let token = token_text(token)?.to_owned();
    let client = state.throttle.client(state.analytics.client_ip(req));
    state.throttle.take_emailed_link(&client)?;
    let tenant = token_company(
        state,
        &token,
        model::account_token::Purpose::EmailVerification,
    )
    .await?;
    let audit = AuditContext::anonymous(req);
    let company_id = tenant.company_id();
    state
        .db
        .write(&tenant, async |tx| {
            let verification = model::account_token::verify_email(&tx, &token).await?;
            if let Some(Verification::Verified { owner, already }) = verification {
                let user_id = owner.user_id;
                let audit = audit.clone().by(signed_in(user_id, company_id, owner.role));
                let changes = Changes::new().field("email_verified", already, true);
                let event = AuditEvent::new("user.email_verified", Target::user(user_id));
                model::audit::record(&tx, &audit, event.changes(changes)).await?;
            }
            Ok::<_, DbError>(verification)
        })
        .await?
        .ok_or_else(token_used)?;
    Ok(())
}

/// Queues a new verification link to the caller (409 `already_verified`, 429 past the limits).
pub async fn resend_verification(
    state: &AppState,
    req: &Request,
    caller: &Caller,
) -> Result<(), ApiError> {
    let user_id = caller.user_id();
    let tenant = caller.tenant();
    let user = state
        .db
        .read(&tenant, async |tx| model::user::get(&tx, user_id).await)
        .await?
        .ok_or_else(|| ApiError::unauthorized("This account no longer exists"))?;
    if user.email_verified {
        return Err(ApiError::conflict(
            "already_verified",
            "This email address is verified already",
        ));
    }
    let too_many = |wait| {
        ApiError::too_many_requests(
            "too_many_requests",
            "Too many verification emails lately; try again later",
            wait,
        )
    };
    state
        .account_mail
        .take_request(state.analytics.client_ip(req))
        .map_err(too_many)?;
    let mail = &state.account_mail;
    let queued = state
        .db
        .write(&tenant, async |tx| {
            mail.queue_verification(&tx, user_id).await
        })
        .await?;
    if !queued {
        return Err(too_many(std::time::Duration::from_secs(3600)));
    }
    Ok(())
}

pub struct AccountApi;

#[OpenApi(prefix_path = "/auth", tag = "ApiTags::Auth")]
impl AccountApi {
    /// Ask for a password reset link
    ///
    /// Always 202 with the same body, whether or not an account has the address: the email, if
    /// any, is prepared after the answer. It holds a link to
    /// `{PUBLIC_BASE_URL}/app/reset-password?token=…` that works once, for one hour; a newer
    /// request replaces it. Limited per client address (429) and per account (further requests
    /// in the hour send nothing).
    #[oai(
        path = "/forgot-password",
        method = "post",
        operation_id = "forgotPassword"
    )]
    async fn forgot_password(
        &self,
        state: Data<&AppState>,
        req: &Request,
        body: Json<ForgotPasswordRequest>,
    ) -> Result<Accepted, ApiError> {
        request_password_reset(&state, req, &body.0.email)?;
        Ok(accepted(FORGOT_ANSWER))
    }

    /// Set a new password with an emailed link
    ///
    /// The token is spent, the password (held to the same policy as at sign-up) is set, and
    /// every session of the account ends. An unknown token answers 404 `invalid_token`; a used
    /// or replaced one 410 `token_used`, an expired one 410 `token_expired`. Tokens presented
    /// are limited per client address (429), in one bucket with verifications and invitation
    /// accepts.
    #[oai(
        path = "/reset-password",
        method = "post",
        operation_id = "resetPassword"
    )]
    async fn reset_password(
        &self,
        state: Data<&AppState>,
        req: &Request,
        body: Json<ResetPasswordRequest>,
    ) -> Result<NoContent, ApiError> {
        let b = body.0;
        reset_password(&state, req, &b.token, b.password.into_inner()).await?;
        Ok(NoContent::NoContent)
    }

    /// Confirm the account's email address with an emailed link
    ///
    /// Sign-up sends the link (`{PUBLIC_BASE_URL}/app/verify-email?token=…`, valid 48 hours,
    /// once); `GET /api/auth/me` then shows `email_verified: true`. Errors, and the limit per
    /// client address (429), as for a reset.
    #[oai(path = "/verify-email", method = "post", operation_id = "verifyEmail")]
    async fn verify_email(
        &self,
        state: Data<&AppState>,
        req: &Request,
        body: Json<VerifyEmailRequest>,
    ) -> Result<NoContent, ApiError> {
        verify_email(&state, req, &body.0.token).await?;
        Ok(NoContent::NoContent)
    }

    /// Send the caller a new verification link
    ///
    /// 409 `already_verified` once the address is verified. Limited per client address and per
    /// account (429).
    #[oai(
        path = "/resend-verification",
        method = "post",
        operation_id = "resendVerification"
    )]
    async fn resend_verification(
        &self,
        state: Data<&AppState>,
        req: &Request,
        auth: BearerAuth,
    ) -> Result<Accepted, ApiError> {
        resend_verification(&state, req, &auth.0).await?;
        Ok(accepted(RESEND_ANSWER))
    }
}
