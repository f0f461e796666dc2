//! The pages the account emails link to: asking for a reset link, setting a new password with
//! it, accepting an invitation, and confirming the email address. Each calls the JSON API's
//! flow (`api::account`, `api::invitations::accept`): the same tokens, limits and policy.
//!
//! A link's `GET` only shows a form; the token is spent by its `POST`. Mail scanners and link
//! previews fetch the links in an email before the person clicks: a `GET` that spent the token
//! would leave them a dead link.

use maud::{Markup, html};
use poem::{
    Request, Response, handler,
    web::{Data, Query},
};
use serde::Deserialize;

use super::{
    account::{Refused, signed_in_to, signed_out_shell},
    csrf::CsrfToken,
    error::ConsoleError,
    form::{self, ConsoleForm, Field, FieldErrors},
    layout::{self, Shell},
    session::{self, MaybeSignedIn},
};
use crate::api::{AppState, account, invitations};

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct TokenQuery {
    token: String,
    /// Set by the page's own redirect after its form worked.
    done: Option<String>,
}

/// A page whose link lacks its token: nothing to do here but ask for a new one.
fn no_token(token: &CsrfToken, title: &str, ask_again: Markup) -> Response {
    let shell = signed_out_shell(title, token);
    layout::page_with_status(
        poem::http::StatusCode::NOT_FOUND,
        &shell,
        html! {
            div class="panel narrow" {
                h1 { (title) }
                div class="alert error" role="alert" {
                    p { "This link is not complete: open the link in the email again, or copy all of it." }
                }
                (ask_again)
            }
        },
    )
}

// ---- Forgotten password ---------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct EmailForm {
    email: String,
}

fn forgot_form(token: &CsrfToken, email: &str, sent: bool, errors: &FieldErrors) -> Markup {
    html! {
        div class="panel narrow" {
            h1 { "Forgot your password?" }
            @if sent {
                div class="alert ok" role="status" {
                    p {
                        "If an account exists for that address, we sent a link to it to reset \
                         the password. The link works once, for one hour."
                    }
                }
            }
            p class="muted" { "Enter your account's email address: we will send you a link to choose a new password." }
            form method="post" action="/app/forgot-password" novalidate {
                (form::csrf_field(token))
                (errors.summary(&["email"]))
                (Field::new("email", "Email")
                    .kind("email")
                    .value(email)
                    .required()
                    .autocomplete("email")
                    .render(errors))
                button type="submit" { "Send the link" }
            }
            p { a href="/app/login" { "Back to log in" } }
        }
    }
}

/// `GET /app/forgot-password` (`?done=1` after a request: the same words whatever the address).
#[handler]
pub async fn forgot_page(req: &Request, Query(query): Query<TokenQuery>) -> Response {
    let token = form::token(req);
    let shell = signed_out_shell("Forgot your password?", &token);
    let sent = query.done.is_some();
    layout::page(&shell, forgot_form(&token, "", sent, &FieldErrors::new()))
}

/// `POST /app/forgot-password`: `POST /api/auth/forgot-password`'s flow, which answers alike
/// whether or not an account has the address.
#[handler]
pub async fn forgot(
    state: Data<&AppState>,
    req: &Request,
    ConsoleForm(values): ConsoleForm<EmailForm>,
) -> Result<Response, ConsoleError> {
    match account::request_password_reset(&state, req, &values.email) {
        Ok(()) => Ok(session::see_other(req, "/app/forgot-password?done=1")),
        Err(e) => {
            let refused = Refused::of(e)?;
            let token = form::token(req);
            let shell = signed_out_shell("Forgot your password?", &token);
            let main = forgot_form(&token, &values.email, false, &refused.errors);
            Ok(refused.page(&shell, main))
        }
    }
}

// ---- Reset password -------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ResetForm {
    token: String,
    password: String,
}

fn ask_for_a_reset() -> Markup {
    html! { p { a href="/app/forgot-password" { "Ask for a new link" } } }
}

fn reset_form(token: &CsrfToken, link_token: &str, errors: &FieldErrors) -> Markup {
    html! {
        div class="panel narrow" {
            h1 { "Choose a new password" }
            form method="post" action="/app/reset-password" novalidate {
                (form::csrf_field(token))
                input type="hidden" name="token" value=(link_token);
                (errors.summary(&["password"]))
                (Field::new("password", "New password")
                    .kind("password")
                    .hint("At least 8 characters, not easy to guess. Every session of the account ends.")
                    .required()
                    .autocomplete("new-password")
                    .render(errors))
                button type="submit" { "Set the password" }
            }
            (ask_for_a_reset())
        }
    }
}

/// `GET /app/reset-password?token=…`: the form; the token is only spent by its post.
#[handler]
pub async fn reset_page(req: &Request, Query(query): Query<TokenQuery>) -> Response {
    let token = form::token(req);
    if query.token.is_empty() {
        return no_token(&token, "Choose a new password", ask_for_a_reset());
    }
    let shell = signed_out_shell("Choose a new password", &token);
    layout::page(
        &shell,
        reset_form(&token, &query.token, &FieldErrors::new()),
    )
}

/// `POST /app/reset-password`: `POST /api/auth/reset-password`'s flow, then to log in.
#[handler]
pub async fn reset(
    state: Data<&AppState>,
    req: &Request,
    ConsoleForm(values): ConsoleForm<ResetForm>,
) -> Result<Response, ConsoleError> {
    match account::reset_password(&state, req, &values.token, values.password).await {
        Ok(()) => Ok(session::see_other(req, "/app/login?notice=password-reset")),
        Err(e) => {
            let refused = Refused::of(e)?;
            let token = form::token(req);
            let shell = signed_out_shell("Choose a new password", &token);
            Ok(refused.page(&shell, reset_form(&token, &values.token, &refused.errors)))
        }
    }
}

// ---- Accept an invitation -------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct AcceptForm {
    token: String,
    full_name: String,
    password: String,
}

fn accept_form(token: &CsrfToken, values: &AcceptForm, errors: &FieldErrors) -> Markup {
    html! {
        div class="panel narrow" {
            h1 { "Join your team on CallingCard" }
            p class="muted" { "Choose a password for your new login: you are signed in right after." }
            form method="post" action="/app/accept-invitation" novalidate {
                (form::csrf_field(token))
                input type="hidden" name="token" value=(values.token);
                (errors.summary(&["full_name", "password"]))
                (Field::new("full_name", "Your full name")
                    .value(&values.full_name)
                    .hint("Defaults to the name your company gave you.")
                    .autocomplete("name")
                    .render(errors))
                (Field::new("password", "Password")
                    .kind("password")
                    .hint("At least 8 characters, not easy to guess and not built on your name or email.")
                    .required()
                    .autocomplete("new-password")
                    .render(errors))
                button type="submit" { "Accept the invitation" }
            }
        }
    }
}

fn ask_for_an_invitation() -> Markup {
    html! { p { "Ask whoever invited you to send a new invitation." } }
}

/// `GET /app/accept-invitation?token=…`.
#[handler]
pub async fn accept_page(req: &Request, Query(query): Query<TokenQuery>) -> Response {
    let token = form::token(req);
    if query.token.is_empty() {
        return no_token(&token, "Accept an invitation", ask_for_an_invitation());
    }
    let shell = signed_out_shell("Accept an invitation", &token);
    let values = AcceptForm {
        token: query.token,
        ..AcceptForm::default()
    };
    layout::page(&shell, accept_form(&token, &values, &FieldErrors::new()))
}

/// `POST /app/accept-invitation`: `POST /api/auth/accept-invitation`'s flow, then into the
/// console, signed in as the new login.
#[handler]
pub async fn accept(
    state: Data<&AppState>,
    req: &Request,
    ConsoleForm(values): ConsoleForm<AcceptForm>,
) -> Result<Response, ConsoleError> {
    let full_name = Some(values.full_name.clone());
    let accepted = invitations::accept(
        &state,
        req,
        &values.token,
        values.password.clone(),
        full_name,
    )
    .await;
    match accepted {
        Ok(pair) => Ok(signed_in_to(&state, req, &pair, "/app")),
        Err(e) => {
            let refused = Refused::of(e)?;
            let token = form::token(req);
            let shell = signed_out_shell("Accept an invitation", &token);
            Ok(refused.page(&shell, accept_form(&token, &values, &refused.errors)))
        }
    }
}

// ---- Verify the email address ---------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct VerifyForm {
    token: String,
}

fn verify_shell<'a>(
    user: Option<&'a super::session::ConsoleUser>,
    token: &'a CsrfToken,
) -> Shell<'a> {
    Shell {
        title: "Confirm your email address",
        user,
        csrf: token,
        section: None,
    }
}

/// The "send me a new link" button, for a signed-in user.
fn resend_form(token: &CsrfToken) -> Markup {
    html! {
        form method="post" action="/app/verify-email/resend" {
            (form::csrf_field(token))
            button type="submit" class="secondary" { "Send me a new link" }
        }
    }
}

/// What the verification page says: a confirm button for a link, or what happened.
enum VerifyState<'a> {
    Confirm(&'a str),
    Verified,
    Resent,
    /// The flow's refusal; whether it is because the address is verified already.
    Refused(&'a FieldErrors, bool),
    NoLink,
}

fn verify_main(token: &CsrfToken, signed_in: bool, state: VerifyState<'_>) -> Markup {
    html! {
        div class="panel narrow" {
            h1 { "Confirm your email address" }
            @match state {
                VerifyState::Confirm(link_token) => {
                    p { "Confirm that this email address is yours." }
                    form method="post" action="/app/verify-email" {
                        (form::csrf_field(token))
                        input type="hidden" name="token" value=(link_token);
                        button type="submit" { "Confirm my email address" }
                    }
                }
                VerifyState::Verified => {
                    div class="alert ok" role="status" { p { "Your email address is confirmed. Thank you." } }
                    p { a href="/app" { "Go to the console" } }
                }
                VerifyState::Resent => {
                    div class="alert ok" role="status" { p { (account::RESEND_ANSWER) } }
                }
                VerifyState::Refused(errors, verified_already) => {
                    (errors.summary(&[]))
                    @if verified_already { p { a href="/app" { "Go to the console" } } }
                    @else if signed_in { (resend_form(token)) }
                    @else { p { "Log in to have a new link sent." } }
                }
                VerifyState::NoLink => {
                    p { "Open the link in the email we sent you when you signed up." }
                    @if signed_in { (resend_form(token)) }
                }
            }
        }
    }
}

/// `GET /app/verify-email?token=…`: a confirm button. The token is not looked at here, let
/// alone spent: mail scanners fetch links before people click them.
#[handler]
pub async fn verify_page(
    req: &Request,
    MaybeSignedIn(user): MaybeSignedIn,
    Query(query): Query<TokenQuery>,
) -> Response {
    let token = form::token(req);
    let shell = verify_shell(user.as_ref(), &token);
    let state = match query.done.as_deref() {
        Some("verified") => VerifyState::Verified,
        Some("resent") => VerifyState::Resent,
        _ if query.token.is_empty() => VerifyState::NoLink,
        _ => VerifyState::Confirm(&query.token),
    };
    layout::page(&shell, verify_main(&token, user.is_some(), state))
}

/// `POST /app/verify-email`: `POST /api/auth/verify-email`'s flow, which spends the token.
#[handler]
pub async fn verify(
    state: Data<&AppState>,
    req: &Request,
    MaybeSignedIn(user): MaybeSignedIn,
    ConsoleForm(values): ConsoleForm<VerifyForm>,
) -> Result<Response, ConsoleError> {
    match account::verify_email(&state, req, &values.token).await {
        Ok(()) => Ok(session::see_other(req, "/app/verify-email?done=verified")),
        Err(e) => {
            let refused = Refused::of(e)?;
            let token = form::token(req);
            let shell = verify_shell(user.as_ref(), &token);
            let main = verify_main(
                &token,
                user.is_some(),
                VerifyState::Refused(
                    &refused.errors,
                    refused.status == poem::http::StatusCode::CONFLICT,
                ),
            );
            Ok(refused.page(&shell, main))
        }
    }
}

/// `POST /app/verify-email/resend`: a new link to the signed-in user (`POST
/// /api/auth/resend-verification`'s flow).
#[handler]
pub async fn resend(
    state: Data<&AppState>,
    req: &Request,
    MaybeSignedIn(user): MaybeSignedIn,
    _form: ConsoleForm<std::collections::HashMap<String, String>>,
) -> Result<Response, ConsoleError> {
    // Signed out: to log in, then back to the page with the button (this is a form's target).
    let Some(user) = user else {
        return Err(ConsoleError::SignedOut {
            next: Some("/app/verify-email".to_owned()),
        });
    };
    match account::resend_verification(&state, req, user.caller()).await {
        Ok(()) => Ok(session::see_other(req, "/app/verify-email?done=resent")),
        Err(e) => {
            let refused = Refused::of(e)?;
            let token = form::token(req);
            let shell = verify_shell(Some(&user), &token);
            let main = verify_main(
                &token,
                true,
                VerifyState::Refused(
                    &refused.errors,
                    refused.status == poem::http::StatusCode::CONFLICT,
                ),
            );
            Ok(refused.page(&shell, main))
        }
    }
}
