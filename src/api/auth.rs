//! Sign-up, login and the caller's own account.

use poem::{Request, web::Data};
use poem_openapi::{Object, OpenApi, payload::Json};
use uuid::Uuid;

use super::{
    ApiTags, AppState, Created, JsonString, NoContent,
    companies::{company_slug_base, no_free_slug, slug_candidates},
    users::User,
    validate,
};
use crate::{
    auth::{BearerAuth, Role, policy::PasswordContext, throttle::LoginThrottle},
    db::{DbError, Tenant},
    error::ApiError,
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
pub struct TokenResponse {
    pub access_token: String,
    /// Always `bearer`.
    pub token_type: String,
    /// Seconds until the token expires.
    pub expires_in: u64,
    pub user_id: Uuid,
    pub company_id: Uuid,
    pub role: Role,
}

/// The company, its admin and its free subscription in one statement. A taken slug inserts
/// nothing (and returns no row); a taken email fails the whole statement.
const SIGN_UP: &str = "WITH company AS (
         INSERT INTO companies (id, name, slug) VALUES ($1, $2, $3)
         ON CONFLICT ON CONSTRAINT companies_slug_key DO NOTHING
         RETURNING id
     ), subscription AS (
         INSERT INTO subscriptions (company_id, plan) SELECT id, 'free' FROM company
     ), account AS (
         INSERT INTO users (company_id, id, email, password_hash, full_name, role)
         SELECT id, $4, $5, $6, $7, 'admin' FROM company
         RETURNING id
     )
     SELECT id FROM account";

const LOGIN_LOOKUP: &str =
    "SELECT user_id, company_id, role, is_active, password_hash FROM login_lookup($1)";

const GET_ME: &str =
    "SELECT id, company_id, email, full_name, role, is_active, employee_id, created_at
     FROM users WHERE id = $1";

/// What changing a password needs: the hash to check, and the words the new one must avoid.
const GET_PASSWORD_HASH: &str = "SELECT u.password_hash, u.email, u.full_name, c.name
     FROM users u JOIN companies c ON c.id = u.company_id
     WHERE u.id = $1 AND u.is_active";

const SET_PASSWORD_HASH: &str = "UPDATE users SET password_hash = $2 WHERE id = $1";

fn token(
    state: &AppState,
    user_id: Uuid,
    company_id: Uuid,
    role: Role,
) -> Result<TokenResponse, ApiError> {
    Ok(TokenResponse {
        access_token: state.jwt.issue(user_id, company_id, role)?,
        token_type: "bearer".into(),
        expires_in: state.jwt.ttl().as_secs(),
        user_id,
        company_id,
        role,
    })
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
    #[oai(path = "/signup", method = "post")]
    async fn signup(
        &self,
        state: Data<&AppState>,
        req: &Request,
        body: Json<SignupRequest>,
    ) -> Result<Created<TokenResponse>, ApiError> {
        let b = body.0;
        let email = validate::email("email", &b.email)?.to_lowercase();
        validate::password("password", &b.password)?;
        let full_name = validate::required_text("full_name", &b.full_name, 200)?;
        let company_name = validate::optional_text("company_name", b.company_name, 200)?
            .unwrap_or_else(|| full_name.clone());
        let client = state.throttle.client(state.analytics.client_ip(req));
        state.throttle.take_signup(&client)?;
        let context = PasswordContext::default()
            .email("email", &email)
            .name("full_name", &full_name)
            .name("company_name", &company_name);
        let hash = state
            .passwords
            .hash_new("password", b.password.into_inner(), context)
            .await?;
        let company_id = Uuid::new_v4();
        let user_id = Uuid::new_v4();
        // The new company is its own tenant from the first statement on.
        let tenant = Tenant::new(company_id, Role::Admin);
        let mut signed_up = false;
        for slug in slug_candidates(&company_slug_base(&company_name)) {
            let row = state
                .db
                .write(&tenant, async |tx| {
                    tx.query_opt(
                        SIGN_UP,
                        [
                            &company_id,
                            &company_name,
                            &slug,
                            &user_id,
                            &email,
                            &hash,
                            &full_name,
                        ],
                    )
                    .await
                })
                .await
                .map_err(ApiError::from)?;
            if row.is_some() {
                signed_up = true;
                break;
            }
        }
        if !signed_up {
            return Err(no_free_slug());
        }
        // Signing up proved the password as well as a login does: this address is trusted.
        state.throttle.succeeded(&state.db, &email, &client).await?;
        Ok(Created::Created(Json(token(
            &state,
            user_id,
            company_id,
            Role::Admin,
        )?)))
    }

    /// Log in
    ///
    /// A wrong email and a wrong password answer alike, after the same work. Failed attempts are
    /// limited per account (an address the account logged in from before keeps a budget of its
    /// own) and per client address: past either, 429 with `Retry-After`.
    #[oai(path = "/login", method = "post")]
    async fn login(
        &self,
        state: Data<&AppState>,
        req: &Request,
        body: Json<LoginRequest>,
    ) -> Result<Json<TokenResponse>, ApiError> {
        let b = body.0;
        let email = b.email.trim().to_lowercase();
        let client = state.throttle.client(state.analytics.client_ip(req));
        state.throttle.check_address(&client)?;
        // Refused for want of a hashing thread before any database work, so a storm of logins
        // costs the database nothing beyond what the pool can check.
        let reservation = state.passwords.reserve()?;
        let throttle = &state.throttle;
        let (row, wait) = state
            .db
            .read_public(async |tx| {
                // join!, not try_join!: both queries run to their end inside the pipeline.
                let (row, wait) = tokio::join!(
                    tx.query_opt(LOGIN_LOOKUP, [&email]),
                    throttle.account_wait(&tx, &email, &client),
                );
                Ok::<_, DbError>((row?, wait?))
            })
            .await
            .map_err(ApiError::from)?;
        LoginThrottle::account_refusal(wait)?;
        let stored = row
            .as_ref()
            .map(|r| r.try_get::<_, String>("password_hash"))
            .transpose()
            .map_err(ApiError::internal)?;
        if !state
            .passwords
            .verify_reserved(reservation, b.password.into_inner(), stored)
            .await?
        {
            state.throttle.failed(&state.db, &email, &client).await?;
            return Err(ApiError::new(
                poem::http::StatusCode::UNAUTHORIZED,
                "invalid_credentials",
                "Incorrect email or password",
            ));
        }
        let row = row.ok_or_else(|| ApiError::internal("verified a password without a user"))?;
        let get = |e| ApiError::internal(e);
        let is_active: bool = row.try_get("is_active").map_err(get)?;
        if !is_active {
            return Err(ApiError::new(
                poem::http::StatusCode::FORBIDDEN,
                "account_disabled",
                "This account is disabled",
            ));
        }
        let role: String = row.try_get("role").map_err(get)?;
        let role =
            Role::parse(&role).ok_or_else(|| ApiError::internal(format!("unknown role {role}")))?;
        let user_id = row.try_get("user_id").map_err(get)?;
        let company_id = row.try_get("company_id").map_err(get)?;
        state.throttle.succeeded(&state.db, &email, &client).await?;
        Ok(Json(token(&state, user_id, company_id, role)?))
    }

    /// The caller's account
    #[oai(path = "/me", method = "get")]
    async fn me(&self, state: Data<&AppState>, auth: BearerAuth) -> Result<Json<User>, ApiError> {
        let user_id = auth.0.user_id();
        let row = state
            .db
            .read(&auth.0.tenant(), async |tx| {
                tx.query_opt(GET_ME, [&user_id]).await
            })
            .await
            .map_err(ApiError::from)?;
        let row = row.ok_or_else(|| ApiError::unauthorized("This account no longer exists"))?;
        Ok(Json(User::from_row(&row)?))
    }

    /// Change the caller's password
    ///
    /// A wrong current password counts as a failed login on the account (`Retry-After` past the
    /// limit); the new one is held to the same policy as at sign-up.
    #[oai(path = "/change-password", method = "post")]
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
        let row = state
            .db
            .read(&tenant, async |tx| {
                tx.query_opt(GET_PASSWORD_HASH, [&user_id]).await
            })
            .await
            .map_err(ApiError::from)?;
        let row = row.ok_or_else(|| ApiError::unauthorized("This account no longer exists"))?;
        let get = |e| ApiError::internal(e);
        let stored: String = row.try_get(0).map_err(get)?;
        let email: String = row.try_get(1).map_err(get)?;
        let context = PasswordContext::default()
            .email("email", &email)
            .name("full_name", &row.try_get::<_, String>(2).map_err(get)?)
            .name("company_name", &row.try_get::<_, String>(3).map_err(get)?);
        let throttle = &state.throttle;
        let wait = state
            .db
            .read_public(async |tx| throttle.account_wait(&tx, &email, &client).await)
            .await
            .map_err(ApiError::from)?;
        LoginThrottle::account_refusal(wait)?;
        if !state
            .passwords
            .verify(b.current_password.into_inner(), Some(stored))
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
        state
            .db
            .write(&tenant, async |tx| {
                tx.execute(SET_PASSWORD_HASH, [&user_id, &hash]).await
            })
            .await
            .map_err(ApiError::from)?;
        Ok(NoContent::NoContent)
    }
}
