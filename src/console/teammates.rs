//! `/app/teammates`: the company's logins (role, active or not) and pending invitations, with
//! inviting, withdrawing, changing a role, deactivating and removing. Every change goes through
//! the same flow as the JSON API (`api::users`, `api::invitations`), so the accounts' rules —
//! the last active admin cannot be demoted, deactivated or removed — hold at both doors.

use maud::{Markup, html};
use poem::{
    Request, Response, handler,
    http::StatusCode,
    web::{Data, Path, Query},
};
use serde::Deserialize;
use uuid::Uuid;

use super::{
    error::ConsoleError,
    form::{self, ConsoleForm, Field, FieldErrors},
    layout::{self, Section, Shell},
    session::{ConsoleUser, SignedIn, see_other},
};
use crate::{
    api::{self, AppState},
    auth::Role,
    error::ApiError,
    model::{self, audit::AuditContext, invitation::NewInvitation, user::UserChange},
};

/// How many logins and invitations the page shows (the API's largest page).
const SHOWN: (i64, i64) = (0, 100);

/// Admin pages refuse employee logins with a 403 page.
pub(super) fn admin_only(user: &ConsoleUser) -> Result<(), ConsoleError> {
    if user.is_admin() {
        Ok(())
    } else {
        Err(ApiError::forbidden("This page is for the company's admins").into())
    }
}

/// A path id; one that is no UUID is as missing as another company's.
pub(super) fn path_id(raw: &str, missing: &str) -> Result<Uuid, ConsoleError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::not_found(missing).into())
}

#[derive(Debug, Default, Deserialize)]
pub struct Notice {
    done: Option<String>,
}

/// What the invite form was sent with, to show again next to its errors.
#[derive(Debug, Default, Deserialize)]
pub struct InviteForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
}

#[derive(Debug, Deserialize)]
pub struct RoleForm {
    #[serde(default)]
    role: String,
}

#[derive(Debug, Deserialize)]
pub struct ActiveForm {
    #[serde(default)]
    active: String,
}

#[handler]
pub async fn page(
    state: Data<&AppState>,
    req: &Request,
    SignedIn(user): SignedIn,
    Query(notice): Query<Notice>,
) -> Result<Response, ConsoleError> {
    admin_only(&user)?;
    let done = notice.done.as_deref().and_then(notice_text);
    render(
        &state,
        req,
        &user,
        StatusCode::OK,
        &InviteForm::default(),
        &FieldErrors::new(),
        done,
    )
    .await
}

fn notice_text(key: &str) -> Option<&'static str> {
    Some(match key {
        "invited" => "Invitation sent.",
        "withdrawn" => "Invitation withdrawn.",
        "role" => "Role changed.",
        "deactivated" => "Login deactivated: it can no longer sign in.",
        "reactivated" => "Login reactivated.",
        "removed" => "Login removed.",
        _ => return None,
    })
}

/// The role a form names: only `admin` and `employee` can be given here.
fn team_role(raw: &str) -> Option<Role> {
    match raw {
        "admin" => Some(Role::Admin),
        "employee" => Some(Role::Employee),
        _ => None,
    }
}

#[handler]
pub async fn invite(
    state: Data<&AppState>,
    req: &Request,
    SignedIn(user): SignedIn,
    ConsoleForm(form): ConsoleForm<InviteForm>,
) -> Result<Response, ConsoleError> {
    admin_only(&user)?;
    let caller = user.caller();
    let mut errors = FieldErrors::new();
    let role = team_role(&form.role);
    if role.is_none() {
        errors.add("role", "Choose a role: admin or employee");
    }
    let email = match api::validate::email("email", &form.email) {
        Ok(email) => Some(email.to_lowercase()),
        Err(e) => {
            errors.add("email", e.detail());
            None
        }
    };
    if let (Some(email), Some(role)) = (email, role) {
        let new = NewInvitation {
            email,
            role,
            employee_id: None,
            invited_by: caller.user_id(),
        };
        let audit = AuditContext::of(req, caller);
        match api::invitations::invite(&state, caller, &audit, caller.company_id(), &new).await {
            Ok(_) => return Ok(see_other(req, "/app/teammates?done=invited")),
            Err(e) if is_form_error(&e) => {
                // `email_taken` and the like are about the address.
                errors.add("email", e.detail());
            }
            Err(e) => return Err(e.into()),
        }
    }
    let status = StatusCode::UNPROCESSABLE_ENTITY;
    render(&state, req, &user, status, &form, &errors, None).await
}

/// A refusal the form shows next to its fields (rather than an error page).
fn is_form_error(e: &ApiError) -> bool {
    matches!(
        e.status(),
        StatusCode::UNPROCESSABLE_ENTITY | StatusCode::CONFLICT | StatusCode::TOO_MANY_REQUESTS
    )
}

#[handler]
pub async fn withdraw(
    state: Data<&AppState>,
    req: &Request,
    SignedIn(user): SignedIn,
    Path(id): Path<String>,
    _form: ConsoleForm<std::collections::HashMap<String, String>>,
) -> Result<Response, ConsoleError> {
    admin_only(&user)?;
    let id = path_id(&id, "Invitation not found")?;
    let caller = user.caller();
    let audit = AuditContext::of(req, caller);
    api::invitations::withdraw(&state, caller, &audit, caller.company_id(), id).await?;
    Ok(see_other(req, "/app/teammates?done=withdrawn"))
}

#[handler]
pub async fn change_role(
    state: Data<&AppState>,
    req: &Request,
    SignedIn(user): SignedIn,
    Path(id): Path<String>,
    ConsoleForm(form): ConsoleForm<RoleForm>,
) -> Result<Response, ConsoleError> {
    admin_only(&user)?;
    let id = path_id(&id, "User not found")?;
    let Some(role) = team_role(&form.role) else {
        let mut errors = FieldErrors::new();
        errors.add("", "Choose a role: admin or employee");
        return refused(&state, req, &user, &errors).await;
    };
    let change = UserChange {
        role: Some(role),
        ..UserChange::default()
    };
    change_login(&state, req, &user, id, change, "role").await
}

#[handler]
pub async fn set_active(
    state: Data<&AppState>,
    req: &Request,
    SignedIn(user): SignedIn,
    Path(id): Path<String>,
    ConsoleForm(form): ConsoleForm<ActiveForm>,
) -> Result<Response, ConsoleError> {
    admin_only(&user)?;
    let id = path_id(&id, "User not found")?;
    let active = form.active == "true";
    let change = UserChange {
        is_active: Some(active),
        ..UserChange::default()
    };
    let done = if active { "reactivated" } else { "deactivated" };
    change_login(&state, req, &user, id, change, done).await
}

#[handler]
pub async fn remove(
    state: Data<&AppState>,
    req: &Request,
    SignedIn(user): SignedIn,
    Path(id): Path<String>,
    _form: ConsoleForm<std::collections::HashMap<String, String>>,
) -> Result<Response, ConsoleError> {
    admin_only(&user)?;
    let id = path_id(&id, "User not found")?;
    let caller = user.caller();
    let audit = AuditContext::of(req, caller);
    match api::users::delete_user(&state, caller, &audit, caller.company_id(), id).await {
        Ok(()) if id == caller.user_id() => {
            // Their own login is gone, and its sessions with it.
            Ok(see_other(req, "/app/login"))
        }
        Ok(()) => Ok(see_other(req, "/app/teammates?done=removed")),
        Err(e) if is_form_error(&e) => {
            refused(&state, req, &user, &FieldErrors::from_api(&e)).await
        }
        Err(e) => Err(e.into()),
    }
}

async fn change_login(
    state: &AppState,
    req: &Request,
    user: &ConsoleUser,
    id: Uuid,
    change: UserChange,
    done: &str,
) -> Result<Response, ConsoleError> {
    let caller = user.caller();
    let audit = AuditContext::of(req, caller);
    match api::users::change_user(state, caller, &audit, caller.company_id(), id, change).await {
        Ok(_) => Ok(see_other(req, &format!("/app/teammates?done={done}"))),
        Err(e) if is_form_error(&e) => refused(state, req, user, &FieldErrors::from_api(&e)).await,
        Err(e) => Err(e.into()),
    }
}

/// The page again with a refusal (the last admin, say) at the top: 422, like any form error.
async fn refused(
    state: &AppState,
    req: &Request,
    user: &ConsoleUser,
    errors: &FieldErrors,
) -> Result<Response, ConsoleError> {
    let status = StatusCode::UNPROCESSABLE_ENTITY;
    render(
        state,
        req,
        user,
        status,
        &InviteForm::default(),
        errors,
        None,
    )
    .await
}

async fn render(
    state: &AppState,
    req: &Request,
    user: &ConsoleUser,
    status: StatusCode,
    invite_form: &InviteForm,
    errors: &FieldErrors,
    done: Option<&str>,
) -> Result<Response, ConsoleError> {
    let caller = user.caller();
    let company_id = caller.company_id();
    let (users, invitations) = state
        .db
        .read(&caller.tenant(), async |tx| {
            // A read sends its queries together.
            let (users, invitations) = tokio::join!(
                model::user::list(&tx, company_id, SHOWN),
                model::invitation::pending(&tx, company_id, SHOWN),
            );
            Ok::<_, crate::db::DbError>(users?.zip(invitations?))
        })
        .await?
        .ok_or_else(|| ApiError::not_found("Company not found"))?;
    let token = form::token(req);
    let shell = Shell {
        title: "Teammates",
        user: Some(user),
        csrf: &token,
        section: Some(Section::Teammates),
    };
    let main = html! {
        h1 { "Teammates" }
        @if let Some(done) = done { div class="alert ok" role="status" { p { (done) } } }
        (errors.summary(&["email", "role"]))
        section aria-labelledby="logins-h" {
            h2 id="logins-h" { "Logins" }
            (logins_table(&users.0, users.1, caller.user_id(), &token))
        }
        section aria-labelledby="invite-h" {
            h2 id="invite-h" { "Invite a teammate" }
            form hx-boost="true" method="post" action="/app/teammates/invite" class="stack" novalidate {
                (form::csrf_field(&token))
                (Field::new("email", "Email").kind("email").value(&invite_form.email).required()
                    .autocomplete("off")
                    .hint("They get an email with a link that works for 7 days.")
                    .render(errors))
                (role_select("f-role", "role", &invite_form.role, errors.get("role")))
                button type="submit" { "Send invitation" }
            }
        }
        section aria-labelledby="pending-h" {
            h2 id="pending-h" { "Pending invitations" }
            @if invitations.0.is_empty() {
                p class="empty" { "No invitations are waiting. Invite a teammate above." }
            } @else {
                div class="table-wrap" role="region" tabindex="0" aria-label="Pending invitations" {
                    table {
                        caption class="visually-hidden" { "Pending invitations" }
                        thead { tr { th scope="col" { "Email" } th scope="col" { "Role" }
                            th scope="col" { "Expires" } th scope="col" { "Actions" } } }
                        tbody {
                            @for i in &invitations.0 {
                                tr {
                                    td { (i.email) }
                                    td { (i.role.as_str()) }
                                    td { (i.expires_at.format("%Y-%m-%d %H:%M UTC")) }
                                    td {
                                        form hx-boost="true" method="post" action={ "/app/teammates/invitations/" (i.id) "/revoke" } {
                                            (form::csrf_field(&token))
                                            button type="submit" class="secondary" {
                                                "Withdraw" span class="visually-hidden" { " the invitation to " (i.email) }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(layout::page_with_status(status, &shell, main))
}

fn role_select(id: &str, name: &str, current: &str, error: Option<&str>) -> Markup {
    let error_id = format!("{id}-error");
    html! {
        div class={ "field" @if error.is_some() { " invalid" } } {
            label for=(id) { "Role" }
            select id=(id) name=(name) aria-describedby=[error.map(|_| error_id.as_str())]
                aria-invalid=[error.map(|_| "true")] {
                option value="employee" selected[current != "admin"] { "Employee: edits their own card" }
                option value="admin" selected[current == "admin"] { "Admin: manages the company" }
            }
            @if let Some(error) = error { p class="error" id=(error_id) { (error) } }
        }
    }
}

fn logins_table(
    users: &[model::user::User],
    total: i64,
    me: Uuid,
    token: &super::csrf::CsrfToken,
) -> Markup {
    html! {
        div class="table-wrap" role="region" tabindex="0" aria-label="The company's logins" {
            table {
                caption class="visually-hidden" { "The company's logins" }
                thead { tr {
                    th scope="col" { "Name" } th scope="col" { "Email" } th scope="col" { "Role" }
                    th scope="col" { "Status" } th scope="col" { "Actions" }
                } }
                tbody {
                    @for u in users {
                        tr {
                            td { (u.full_name) @if u.id == me { " (you)" } }
                            td { (u.email) }
                            td {
                                @if u.role == Role::Superadmin {
                                    "superadmin"
                                } @else {
                                    form hx-boost="true" method="post" action={ "/app/teammates/" (u.id) "/role" } class="inline" {
                                        (form::csrf_field(token))
                                        label for={ "role-" (u.id) } class="visually-hidden" { "Role of " (u.email) }
                                        select id={ "role-" (u.id) } name="role" {
                                            option value="employee" selected[u.role == Role::Employee] { "employee" }
                                            option value="admin" selected[u.role == Role::Admin] { "admin" }
                                        }
                                        button type="submit" class="secondary" {
                                            "Change" span class="visually-hidden" { " the role of " (u.email) }
                                        }
                                    }
                                }
                            }
                            td { @if u.is_active { "Active" } @else { "Deactivated" } }
                            td class="actions" {
                                form hx-boost="true" method="post" action={ "/app/teammates/" (u.id) "/deactivate" } class="inline" {
                                    (form::csrf_field(token))
                                    input type="hidden" name="active" value=(if u.is_active { "false" } else { "true" });
                                    button type="submit" class="secondary" {
                                        (if u.is_active { "Deactivate" } else { "Reactivate" })
                                        span class="visually-hidden" { " " (u.email) }
                                    }
                                }
                                form hx-boost="true" method="post" action={ "/app/teammates/" (u.id) "/remove" } class="inline" {
                                    (form::csrf_field(token))
                                    button type="submit" class="danger" {
                                        "Remove" span class="visually-hidden" { " " (u.email) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if total > users.len() as i64 {
            p class="hint" { "Showing the first " (users.len()) " of " (total) " logins." }
        }
    }
}
