//! The account pages of the console's signed-out side: sign up and log in. Each form calls the
//! same flow as the JSON API (`api::auth::sign_up`, `api::auth::log_in`), so the throttles,
//! the password policy and the bounded hashing pool apply to both doors alike.
//!
//! The emailed links (forgotten passwords, resets, invitations, verification) are in
//! [`super::emailed_links`].

use maud::{Markup, html};
use poem::{
    Request, Response, handler,
    http::{StatusCode, header},
    web::{Data, Query},
};
use serde::Deserialize;

use super::{
    csrf::CsrfToken,
    error::ConsoleError,
    form::{self, ConsoleForm, Field, FieldErrors},
    layout::{self, Shell},
    session::{self, MaybeSignedIn},
};
use crate::{
    api::{
        AppState,
        auth::{self, TokenResponse},
    },
    error::ApiError,
};

/// A flow's refusal, as a form shows it: the message next to the field it names (or above the
/// form), with the status the form answers.
pub(super) struct Refused {
    pub status: StatusCode,
    pub errors: FieldErrors,
    retry_after: Option<u64>,
}

impl Refused {
    /// A refusal the person can act on (a 4xx, or "busy") is shown in the form; any other
    /// server error is the console's error page. Validation errors answer 422 like every
    /// console form; the rest keep the flow's status (404/410 for a dead link, 429, …).
    pub fn of(e: ApiError) -> Result<Self, ConsoleError> {
        let status = e.status();
        if status.is_server_error() && status != StatusCode::SERVICE_UNAVAILABLE {
            return Err(e.into());
        }
        let status = if status == StatusCode::BAD_REQUEST {
            StatusCode::UNPROCESSABLE_ENTITY
        } else {
            status
        };
        Ok(Self {
            status,
            errors: FieldErrors::from_api(&e),
            retry_after: e.retry_after_secs(),
        })
    }

    /// The form's page again, with this refusal's status (and `Retry-After`, when it says).
    pub fn page(&self, shell: &Shell<'_>, main: Markup) -> Response {
        let mut response = layout::page_with_status(self.status, shell, main);
        if let Some(secs) = self.retry_after
            && let Ok(value) = secs.to_string().parse()
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

/// To `to`, signed in with `pair`'s session (its cookies set here).
pub(super) fn signed_in_to(
    state: &AppState,
    req: &Request,
    pair: &TokenResponse,
    to: &str,
) -> Response {
    let mut response = session::see_other(req, to);
    for cookie in session::session_cookies(pair, session::secure_cookies(state)) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// A page of the signed-out side: no navigation but "log in / sign up".
pub(super) fn signed_out_shell<'a>(title: &'a str, csrf: &'a CsrfToken) -> Shell<'a> {
    Shell {
        title,
        user: None,
        csrf,
        section: None,
    }
}

// ---- Sign up --------------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SignupForm {
    company_name: String,
    full_name: String,
    email: String,
    password: String,
}

const SIGNUP_FIELDS: &[&str] = &["company_name", "full_name", "email", "password"];

fn signup_form(token: &CsrfToken, values: &SignupForm, errors: &FieldErrors) -> Markup {
    html! {
        div class="panel narrow" {
            h1 { "Create your company's account" }
            p class="muted" {
                "You become its admin: add your people, brand their cards, see who scans them."
            }
            form method="post" action="/app/signup" novalidate {
                (form::csrf_field(token))
                (errors.summary(SIGNUP_FIELDS))
                (Field::new("company_name", "Company name")
                    .value(&values.company_name)
                    .hint("Defaults to your name.")
                    .autocomplete("organization")
                    .render(errors))
                (Field::new("full_name", "Your full name")
                    .value(&values.full_name)
                    .required()
                    .autocomplete("name")
                    .render(errors))
                (Field::new("email", "Email")
                    .kind("email")
                    .value(&values.email)
                    .required()
                    .autocomplete("email")
                    .render(errors))
                (Field::new("password", "Password")
                    .kind("password")
                    .hint("At least 8 characters, not easy to guess and not built on your name or email.")
                    .required()
                    .autocomplete("new-password")
                    .render(errors))
                button type="submit" { "Sign up" }
            }
            p { "Already have an account? " a href="/app/login" { "Log in" } }
        }
    }
}

/// `GET /app/signup`.
#[handler]
pub async fn signup_page(req: &Request, MaybeSignedIn(user): MaybeSignedIn) -> Response {
    if user.is_some() {
        return session::see_other(req, "/app");
    }
    let token = form::token(req);
    let shell = signed_out_shell("Sign up", &token);
    layout::page(
        &shell,
        signup_form(&token, &SignupForm::default(), &FieldErrors::new()),
    )
}

/// `POST /app/signup`: the sign-up flow of `POST /api/auth/signup`, then to the console.
#[handler]
pub async fn signup(
    state: Data<&AppState>,
    req: &Request,
    MaybeSignedIn(user): MaybeSignedIn,
    ConsoleForm(values): ConsoleForm<SignupForm>,
) -> Result<Response, ConsoleError> {
    if user.is_some() {
        return Ok(session::see_other(req, "/app"));
    }
    let sign_up = auth::SignUp {
        email: values.email.clone(),
        password: values.password.clone(),
        full_name: values.full_name.clone(),
        company_name: Some(values.company_name.clone()),
    };
    match auth::sign_up(&state, req, sign_up).await {
        Ok(pair) => Ok(signed_in_to(&state, req, &pair, "/app")),
        Err(e) => {
            let refused = Refused::of(e)?;
            let token = form::token(req);
            let shell = signed_out_shell("Sign up", &token);
            Ok(refused.page(&shell, signup_form(&token, &values, &refused.errors)))
        }
    }
}

// ---- Log in ---------------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct LoginQuery {
    next: Option<String>,
    /// A message of the page that sent the browser here.
    notice: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct LoginForm {
    email: String,
    password: String,
    next: Option<String>,
}

/// What a page that sends the browser to the login page may say there (by name, so a link
/// cannot put words on the page).
fn notice_text(notice: Option<&str>) -> Option<&'static str> {
    match notice? {
        "password-reset" => Some("Your password was changed. Log in with the new one."),
        "signed-out" => Some("You were logged out."),
        _ => None,
    }
}

fn login_form(
    token: &CsrfToken,
    email: &str,
    next: &str,
    notice: Option<&str>,
    errors: &FieldErrors,
) -> Markup {
    html! {
        div class="panel narrow" {
            h1 { "Log in" }
            @if let Some(notice) = notice {
                div class="alert ok" role="status" { p { (notice) } }
            }
            form method="post" action="/app/login" novalidate {
                (form::csrf_field(token))
                input type="hidden" name="next" value=(next);
                (errors.summary(&["email", "password"]))
                (Field::new("email", "Email")
                    .kind("email")
                    .value(email)
                    .required()
                    .autocomplete("username")
                    .render(errors))
                (Field::new("password", "Password")
                    .kind("password")
                    .required()
                    .autocomplete("current-password")
                    .render(errors))
                button type="submit" { "Log in" }
            }
            p { a href="/app/forgot-password" { "Forgot your password?" } }
            p { "New to CallingCard? " a href="/app/signup" { "Create an account" } }
        }
    }
}

/// `GET /app/login?next=…`.
#[handler]
pub async fn login_page(
    req: &Request,
    MaybeSignedIn(user): MaybeSignedIn,
    Query(query): Query<LoginQuery>,
) -> Response {
    let next = session::safe_next(query.next.as_deref());
    if user.is_some() {
        return session::see_other(req, "/app");
    }
    let token = form::token(req);
    let shell = signed_out_shell("Log in", &token);
    let notice = notice_text(query.notice.as_deref());
    layout::page(
        &shell,
        login_form(&token, "", next, notice, &FieldErrors::new()),
    )
}

/// `POST /app/login`: the login flow of `POST /api/auth/login`, then on to a safe `next`.
#[handler]
pub async fn login(
    state: Data<&AppState>,
    req: &Request,
    MaybeSignedIn(user): MaybeSignedIn,
    ConsoleForm(values): ConsoleForm<LoginForm>,
) -> Result<Response, ConsoleError> {
    let next = session::safe_next(values.next.as_deref()).to_owned();
    if user.is_some() {
        return Ok(session::see_other(req, "/app"));
    }
    match auth::log_in(&state, req, &values.email, values.password).await {
        Ok(pair) => Ok(signed_in_to(&state, req, &pair, &next)),
        Err(e) => {
            // A wrong email and a wrong password answer alike (the flow says "Incorrect email
            // or password" for both): the form again, 422, the address kept.
            let wrong = e.status() == StatusCode::UNAUTHORIZED;
            let mut refused = Refused::of(e)?;
            if wrong {
                refused.status = StatusCode::UNPROCESSABLE_ENTITY;
            }
            let token = form::token(req);
            let shell = signed_out_shell("Log in", &token);
            let main = login_form(&token, &values.email, &next, None, &refused.errors);
            Ok(refused.page(&shell, main))
        }
    }
}
