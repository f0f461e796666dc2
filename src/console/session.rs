//! The console's session: the accounts' server-side session, carried in cookies instead of an
//! `Authorization` header.
//!
//! - `cc_session` holds the short-lived access token (a JWT naming its session); `cc_refresh`
//!   the refresh token. Both `HttpOnly` (no script reads them), `SameSite=Lax`, `Path=/app`, and
//!   `Secure` when `PUBLIC_BASE_URL` is https.
//! - An expired access token is refreshed quietly, on the request that finds it expired. A page
//!   often sends several requests at once (htmx, the live feed): they would race with one
//!   refresh token, which counts as a stolen token and ends the session. So refreshes are made
//!   once per token on an instance, and requests presenting the same token within
//!   [`REFRESH_GRACE`] share the new pair.
//! - Every transaction still checks the session in the database (as for the API): a session
//!   ended anywhere (logout, another instance, an admin) sends the browser to the login page.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use poem::{
    Endpoint, FromRequest, IntoResponse, Request, RequestBody, Response,
    http::{HeaderValue, StatusCode, header},
    web::Redirect,
};
use sha2::{Digest, Sha256};

use super::{csrf, csrf::CsrfToken, error::ConsoleError};
use crate::{
    api::{AppState, auth::TokenResponse},
    auth::{Caller, Role},
};

pub const ACCESS_COOKIE: &str = "cc_session";
pub const REFRESH_COOKIE: &str = "cc_refresh";
/// Where the session cookies are sent: the console only, never the API or the cards.
const COOKIE_PATH: &str = "/app";

/// How long requests presenting an already refreshed token get that refresh's pair.
pub const REFRESH_GRACE: Duration = Duration::from_secs(30);

/// The signed-in user of a console request.
#[derive(Clone, Debug)]
pub struct ConsoleUser {
    caller: Caller,
}

impl ConsoleUser {
    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    pub fn role(&self) -> Role {
        self.caller.role()
    }

    pub fn is_admin(&self) -> bool {
        self.caller.is_admin()
    }
}

/// A handler's argument for pages that need a signed-in user: without one, the browser is sent
/// to the login page (and back here after it).
pub struct SignedIn(pub ConsoleUser);

impl<'a> FromRequest<'a> for SignedIn {
    async fn from_request(req: &'a Request, _body: &mut RequestBody) -> poem::Result<Self> {
        match req.extensions().get::<ConsoleUser>() {
            Some(user) => Ok(SignedIn(user.clone())),
            None => Err(ConsoleError::SignedOut {
                next: Some(next_of(req)),
            }
            .into()),
        }
    }
}

/// A handler's argument for pages shown signed in or not (the login page, say).
pub struct MaybeSignedIn(pub Option<ConsoleUser>);

impl<'a> FromRequest<'a> for MaybeSignedIn {
    async fn from_request(req: &'a Request, _body: &mut RequestBody) -> poem::Result<Self> {
        Ok(MaybeSignedIn(
            req.extensions().get::<ConsoleUser>().cloned(),
        ))
    }
}

/// The path and query to come back to after logging in: only ever a console path.
fn next_of(req: &Request) -> String {
    let uri = req.original_uri();
    let path = uri.path_and_query().map_or("/app", |p| p.as_str());
    if path.starts_with("/app") && !path.starts_with("/app/login") {
        path.to_owned()
    } else {
        "/app".to_owned()
    }
}

/// A `next` parameter a login may send the browser on to: a console path, never another site.
pub fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n) if n.starts_with("/app") && !n.starts_with("//") && !n.contains('\\') => n,
        _ => "/app",
    }
}

/// Refreshes made on this instance, by the refresh token they used (its SHA-256).
#[derive(Default)]
pub struct Refreshes {
    recent: Mutex<HashMap<[u8; 32], RecentRefresh>>,
}

type SharedRefresh = Arc<tokio::sync::OnceCell<Outcome>>;

/// What one refresh came to.
#[derive(Clone)]
enum Outcome {
    Refreshed(TokenResponse),
    /// The token buys nothing: unknown, reused, or its session is over.
    Refused,
    /// Busy, throttled, database out: no answer about the token.
    Failed,
}

struct RecentRefresh {
    at: Instant,
    result: SharedRefresh,
}

/// At most this many refreshes are remembered; a flood of made-up tokens cannot grow it.
const MAX_RECENT_REFRESHES: usize = 10_000;

impl Refreshes {
    /// The new pair for `presented`: made once, shared by every request presenting it within
    /// [`REFRESH_GRACE`]. `None` when the token buys nothing (unknown, reused, ended).
    async fn refresh(
        &self,
        state: &AppState,
        req: &Request,
        presented: &str,
    ) -> Result<Option<TokenResponse>, ConsoleError> {
        let key: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let shared = {
            let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            if recent.len() >= MAX_RECENT_REFRESHES {
                recent.retain(|_, r| now.duration_since(r.at) < REFRESH_GRACE);
            }
            match recent.get(&key) {
                Some(r) if now.duration_since(r.at) < REFRESH_GRACE => r.result.clone(),
                _ if recent.len() >= MAX_RECENT_REFRESHES => Arc::default(),
                _ => {
                    let result = SharedRefresh::default();
                    let entry = RecentRefresh {
                        at: now,
                        result: result.clone(),
                    };
                    recent.insert(key, entry);
                    result
                }
            }
        };
        let mut failure = None;
        let outcome = shared
            .get_or_init(async || {
                match crate::api::auth::refresh_session(state, req, presented).await {
                    Ok(pair) => Outcome::Refreshed(pair),
                    Err(e) if e.status() == StatusCode::UNAUTHORIZED => Outcome::Refused,
                    Err(e) => {
                        failure = Some(e);
                        Outcome::Failed
                    }
                }
            })
            .await
            .clone();
        match outcome {
            Outcome::Refreshed(pair) => Ok(Some(pair)),
            Outcome::Refused => Ok(None),
            Outcome::Failed => {
                // Not kept: the next request tries again.
                let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
                recent.remove(&key);
                Err(failure
                    .unwrap_or_else(|| {
                        crate::error::ApiError::unavailable("Signing you back in failed; try again")
                    })
                    .into())
            }
        }
    }
}

/// The cookies of a request, by name (the first of a name wins).
fn cookie<'r>(req: &'r Request, name: &str) -> Option<&'r str> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value for the console: `HttpOnly; SameSite=Lax; Path=/app`, `Secure` on https.
pub fn set_cookie(name: &str, value: &str, max_age: Option<u64>, secure: bool) -> HeaderValue {
    let mut cookie = format!("{name}={value}; Path={COOKIE_PATH}; HttpOnly; SameSite=Lax");
    if let Some(secs) = max_age {
        cookie.push_str(&format!("; Max-Age={secs}"));
    }
    if secure {
        cookie.push_str("; Secure");
    }
    // Names and values are ours: base64url, JWTs and digits only.
    HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The cookies that carry a session's pair (after a login, a sign-up or a refresh).
pub fn session_cookies(pair: &TokenResponse, secure: bool) -> [HeaderValue; 2] {
    let max_age = Some(pair.refresh_expires_in);
    [
        set_cookie(ACCESS_COOKIE, &pair.access_token, max_age, secure),
        set_cookie(REFRESH_COOKIE, &pair.refresh_token, max_age, secure),
    ]
}

/// The cookies that forget the session (a logout, or a session found ended).
pub fn cleared_cookies(secure: bool) -> [HeaderValue; 2] {
    [
        set_cookie(ACCESS_COOKIE, "", Some(0), secure),
        set_cookie(REFRESH_COOKIE, "", Some(0), secure),
    ]
}

/// Whether the console's cookies get `Secure`.
pub fn secure_cookies(state: &AppState) -> bool {
    state.public_base_url.starts_with("https://")
}

/// Around every console route: finds the signed-in user (refreshing quietly), the browser's
/// CSRF token, checks state-changing requests' origin, and turns a session found ended into a
/// trip to the login page.
pub async fn middleware<E: Endpoint>(next: Arc<E>, mut req: Request) -> poem::Result<Response> {
    let state = req
        .data::<AppState>()
        .cloned()
        .ok_or_else(|| crate::error::ApiError::internal("app state missing"))?;
    let refreshes = req
        .data::<Arc<Refreshes>>()
        .cloned()
        .ok_or_else(|| crate::error::ApiError::internal("refreshes missing"))?;
    let secure = secure_cookies(&state);
    let mut set_cookies: Vec<HeaderValue> = Vec::new();

    let token = match cookie(&req, csrf::COOKIE).and_then(CsrfToken::from_cookie) {
        Some(token) => token,
        None => {
            let token = CsrfToken::new_random();
            set_cookies.push(set_cookie(csrf::COOKIE, token.as_str(), None, secure));
            token
        }
    };
    req.extensions_mut().insert(token);
    if !req.method().is_safe()
        && let Err(refusal) = csrf::check_origin(&req)
    {
        return Ok(ConsoleError::Csrf(refusal).into_response());
    }

    let mut user = cookie(&req, ACCESS_COOKIE)
        .and_then(|token| Caller::verify(&state.jwt, token))
        .map(|caller| ConsoleUser { caller });
    let mut signed_out = false;
    if user.is_none()
        && let Some(presented) = cookie(&req, REFRESH_COOKIE).map(str::to_owned)
    {
        match refreshes.refresh(&state, &req, &presented).await {
            Ok(Some(pair)) => {
                set_cookies.extend(session_cookies(&pair, secure));
                user = Caller::verify(&state.jwt, &pair.access_token)
                    .map(|caller| ConsoleUser { caller });
            }
            Ok(None) => signed_out = true,
            Err(e) => return Ok(e.into_response()),
        }
    }
    if let Some(user) = user {
        req.extensions_mut().insert(user);
    }

    let mut response = match next.call(req).await {
        Ok(response) => response.into_response(),
        Err(e) => e.into_response(),
    };
    if response.headers().contains_key(SIGNED_OUT_MARK) {
        response.headers_mut().remove(SIGNED_OUT_MARK);
        signed_out = true;
    }
    // A handler that set the session's cookies itself (a login, a sign-up, an accepted
    // invitation) opened a new session: whatever this middleware found about the old one (an
    // ended session to forget, a refreshed pair) must not follow and overwrite them.
    let handler_set_session = response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .any(is_session_cookie);
    if handler_set_session {
        set_cookies.retain(|c| !is_session_cookie(c));
    } else if signed_out {
        set_cookies.retain(|c| !is_session_cookie(c));
        set_cookies.extend(cleared_cookies(secure));
    }
    for cookie in set_cookies {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    Ok(response)
}

/// Set by an answer that found the session ended, so the middleware clears its cookies.
pub const SIGNED_OUT_MARK: &str = "x-console-signed-out";

fn is_session_cookie(cookie: &HeaderValue) -> bool {
    let value = cookie.as_bytes();
    value.starts_with(format!("{ACCESS_COOKIE}=").as_bytes())
        || value.starts_with(format!("{REFRESH_COOKIE}=").as_bytes())
}

/// The answer that sends the browser to `to` after a form: 303 for a plain form post; for a
/// boosted form, `HX-Location`, which has htmx fetch `to` and swap it in as the page (its
/// address pushed to the history) without a new page load; `HX-Redirect`, a full load, for any
/// other htmx request (which would otherwise swap the next page into a part of this one).
pub fn see_other(req: &Request, to: &str) -> Response {
    if req.header("HX-Boosted").is_some() {
        Response::builder()
            .status(StatusCode::NO_CONTENT)
            .header("HX-Location", to)
            .finish()
    } else if req.header("HX-Request").is_some() {
        Response::builder()
            .status(StatusCode::NO_CONTENT)
            .header("HX-Redirect", to)
            .finish()
    } else {
        Redirect::see_other(to).into_response()
    }
}
