//! `/app/me`: "My card", an employee login's own card: its fields (changed through the same
//! update flow as `PUT /api/employees/{id}`, whose editor rule lets a login edit the record
//! linked to it), its photo (the API's upload flow and limits) and links to the public card,
//! its QR code and vCard.
//!
//! An admin whose login is linked to an employee record sees that card here too; an admin
//! without one is sent to People, where the company's cards are managed.

use maud::{Markup, html};
use poem::{
    Request, Response, handler,
    http::StatusCode,
    web::{Data, Multipart, Query},
};
use serde::Deserialize;

use super::{
    error::ConsoleError,
    form::{self, ConsoleForm, Field, FieldErrors},
    image_form,
    layout::{self, Section, Shell},
    session::{ConsoleUser, SignedIn, see_other},
};
use crate::{
    api::{self, AppState},
    card::CardUrls,
    error::ApiError,
    model::{
        self,
        audit::AuditContext,
        employee::{Employee, EmployeeChange, EmployeeField},
    },
};

/// The fields a card's owner edits here, in the form's order.
const FIELDS: [(EmployeeField, &str, &str); 6] = [
    (EmployeeField::FullName, "Full name", "text"),
    (EmployeeField::JobTitle, "Job title", "text"),
    (EmployeeField::Email, "Email on the card", "email"),
    (EmployeeField::Phone, "Phone", "tel"),
    (EmployeeField::Whatsapp, "WhatsApp", "tel"),
    (EmployeeField::Bio, "About me", "textarea"),
];

/// The card form as sent; every field is sent by the form, an empty one clears the field.
#[derive(Debug, Default, Deserialize)]
pub struct CardForm {
    #[serde(default)]
    full_name: String,
    #[serde(default)]
    job_title: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    phone: String,
    #[serde(default)]
    whatsapp: String,
    #[serde(default)]
    bio: String,
}

impl CardForm {
    fn of(e: &Employee) -> Self {
        let text = |v: &Option<String>| v.clone().unwrap_or_default();
        Self {
            full_name: e.full_name.clone(),
            job_title: text(&e.job_title),
            email: text(&e.email),
            phone: text(&e.phone),
            whatsapp: text(&e.whatsapp),
            bio: text(&e.bio),
        }
    }

    fn value(&self, field: EmployeeField) -> &str {
        match field {
            EmployeeField::FullName => &self.full_name,
            EmployeeField::JobTitle => &self.job_title,
            EmployeeField::Email => &self.email,
            EmployeeField::Phone => &self.phone,
            EmployeeField::Whatsapp => &self.whatsapp,
            _ => &self.bio,
        }
    }

    /// The change, each field checked as the API checks it; every error, by field.
    fn change(&self) -> Result<EmployeeChange, FieldErrors> {
        let mut errors = FieldErrors::new();
        let mut check = |field: EmployeeField| match field.check(self.value(field)) {
            Ok(value) => Some(value),
            Err(e) => {
                errors.add(field.name(), e.detail());
                None
            }
        };
        let full_name = check(EmployeeField::FullName).flatten();
        let job_title = check(EmployeeField::JobTitle);
        let email = check(EmployeeField::Email);
        let phone = check(EmployeeField::Phone);
        let whatsapp = check(EmployeeField::Whatsapp);
        let bio = check(EmployeeField::Bio);
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(EmployeeChange {
            full_name,
            job_title,
            email,
            phone,
            whatsapp,
            photo_url: None,
            bio,
            social_links: None,
        })
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct Notice {
    done: Option<String>,
}

/// The employee record the user's login is linked to, if any.
async fn own_employee(
    state: &AppState,
    user: &ConsoleUser,
) -> Result<Option<Employee>, ConsoleError> {
    let caller = user.caller();
    let user_id = caller.user_id();
    let tenant = caller.tenant();
    // Two reads: the second needs the first's answer, and a read sends its queries together.
    let login = state
        .db
        .read(&tenant, async |tx| model::user::get(&tx, user_id).await)
        .await?;
    let Some(employee_id) = login.and_then(|login| login.employee_id) else {
        return Ok(None);
    };
    let employee = state
        .db
        .read(&tenant, async |tx| {
            model::employee::get(&tx, employee_id).await
        })
        .await?;
    Ok(employee)
}

#[handler]
pub async fn page(
    state: Data<&AppState>,
    req: &Request,
    SignedIn(user): SignedIn,
    Query(notice): Query<Notice>,
) -> Result<Response, ConsoleError> {
    let employee = own_employee(&state, &user).await?;
    let Some(employee) = employee else {
        if user.is_admin() {
            return Ok(see_other(req, "/app/people"));
        }
        return Ok(unlinked(req, &user));
    };
    let done = match notice.done.as_deref() {
        Some("saved") => Some("Your card is saved."),
        Some("photo") => Some("Your photo is updated."),
        Some("photo_removed") => Some("Your photo is removed."),
        _ => None,
    };
    let form = CardForm::of(&employee);
    Ok(render(
        &state,
        req,
        &user,
        &employee,
        &form,
        &FieldErrors::new(),
        done,
        StatusCode::OK,
    ))
}

#[handler]
pub async fn save(
    state: Data<&AppState>,
    req: &Request,
    SignedIn(user): SignedIn,
    ConsoleForm(form): ConsoleForm<CardForm>,
) -> Result<Response, ConsoleError> {
    let employee = own_employee(&state, &user)
        .await?
        .ok_or_else(|| ApiError::not_found("Your login has no card"))?;
    let errors = match form.change() {
        Ok(change) => {
            let caller = user.caller();
            let audit = AuditContext::of(req, caller);
            let tenant = caller.employee_tenant(&state.db, employee.id).await?;
            match api::employees::update_employee(
                &state,
                caller,
                &tenant,
                &audit,
                employee.id,
                change,
            )
            .await
            {
                Ok(_) => return Ok(see_other(req, "/app/me?done=saved")),
                Err(e) if e.status() == StatusCode::UNPROCESSABLE_ENTITY => {
                    FieldErrors::from_api(&e)
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(errors) => errors,
    };
    let status = StatusCode::UNPROCESSABLE_ENTITY;
    Ok(render(
        &state, req, &user, &employee, &form, &errors, None, status,
    ))
}

/// `POST /app/me/photo`: a multipart form with the image in `file` (and the CSRF token, which
/// is checked before anything is stored).
#[handler]
pub async fn photo(
    state: Data<&AppState>,
    req: &Request,
    SignedIn(user): SignedIn,
    multipart: Multipart,
) -> Result<Response, ConsoleError> {
    // The body is bounded by the upload routes' limit before it gets here.
    let file = image_form::read(req, multipart).await?;
    let employee = own_employee(&state, &user)
        .await?
        .ok_or_else(|| ApiError::not_found("Your login has no card"))?;
    let caller = user.caller();
    let mut errors = FieldErrors::new();
    match file {
        None => errors.add("file", "Choose an image to upload"),
        Some(bytes) => {
            let audit = AuditContext::of(req, caller);
            let photo = Some(std::future::ready(api::upload::check_size(bytes)));
            match api::employees::change_photo(&state, caller, &audit, employee.id, photo).await {
                Ok(_) => return Ok(see_other(req, "/app/me?done=photo")),
                Err(e) if e.status().is_client_error() && e.status() != StatusCode::NOT_FOUND => {
                    errors.add("file", e.detail())
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    let form = CardForm::of(&employee);
    let status = StatusCode::UNPROCESSABLE_ENTITY;
    Ok(render(
        &state, req, &user, &employee, &form, &errors, None, status,
    ))
}

/// `POST /app/me/photo/remove`: back to the photo URL set on the card, if any.
#[handler]
pub async fn remove_photo(
    state: Data<&AppState>,
    req: &Request,
    SignedIn(user): SignedIn,
    _form: ConsoleForm<std::collections::HashMap<String, String>>,
) -> Result<Response, ConsoleError> {
    let employee = own_employee(&state, &user)
        .await?
        .ok_or_else(|| ApiError::not_found("Your login has no card"))?;
    let caller = user.caller();
    let audit = AuditContext::of(req, caller);
    let no_photo = api::upload::NO_UPLOAD;
    api::employees::change_photo(&state, caller, &audit, employee.id, no_photo).await?;
    Ok(see_other(req, "/app/me?done=photo_removed"))
}

fn unlinked(req: &Request, user: &ConsoleUser) -> Response {
    let token = form::token(req);
    let shell = Shell {
        title: "My card",
        user: Some(user),
        csrf: &token,
        section: Some(Section::MyCard),
    };
    layout::page(
        &shell,
        html! {
            h1 { "My card" }
            p class="empty" {
                "Your login is not linked to a card yet. Ask one of your company's admins to link it."
            }
        },
    )
}

#[allow(clippy::too_many_arguments)]
fn render(
    state: &AppState,
    req: &Request,
    user: &ConsoleUser,
    employee: &Employee,
    form: &CardForm,
    errors: &FieldErrors,
    done: Option<&str>,
    status: StatusCode,
) -> Response {
    let token = form::token(req);
    let shell = Shell {
        title: "My card",
        user: Some(user),
        csrf: &token,
        section: Some(Section::MyCard),
    };
    let urls = CardUrls::new(
        &state.public_base_url,
        &employee.company_slug,
        &employee.public_slug,
    );
    // The photo's error is shown by its own form.
    let names: Vec<&str> = FIELDS
        .iter()
        .map(|(f, ..)| f.name())
        .chain(["file"])
        .collect();
    let main = html! {
        h1 { "My card" }
        @if let Some(done) = done { div class="alert ok" role="status" { p { (done) } } }
        ul class="row" {
            li { a href=(urls.page_path) { "Open my public card" } }
            li { a href=(urls.qr_svg_path) { "QR code" } }
            li { a href=(urls.vcard_path) { "Download vCard" } }
        }
        form hx-boost="true" method="post" action="/app/me" class="stack" novalidate {
            (form::csrf_field(&token))
            (errors.summary(&names))
            @for (field, label, kind) in FIELDS {
                (field_input(field, label, kind, form.value(field), errors))
            }
            button type="submit" { "Save my card" }
        }
        section aria-labelledby="photo-h" {
            h2 id="photo-h" { "Photo" }
            @if let Some(hash) = &employee.photo_hash {
                img src=(model::media::photo_path(employee.company_id, hash)) alt="Your current photo"
                    width="128" height="128";
            }
            form hx-boost="true" method="post" action="/app/me/photo" enctype="multipart/form-data" class="stack" {
                (form::csrf_field(&token))
                (Field::new("file", "New photo").kind("file").required()
                    .hint("A JPEG, PNG or WebP image up to 5 MB; it is cropped to a square.")
                    .render(errors))
                button type="submit" { "Upload photo" }
            }
            @if employee.photo_hash.is_some() {
                form hx-boost="true" method="post" action="/app/me/photo/remove" {
                    (form::csrf_field(&token))
                    button type="submit" class="secondary" { "Remove photo" }
                }
            }
        }
    };
    layout::page_with_status(status, &shell, main)
}

fn field_input(
    field: EmployeeField,
    label: &str,
    kind: &str,
    value: &str,
    errors: &FieldErrors,
) -> Markup {
    let mut input = Field::new(field.name(), label).kind(kind).value(value);
    if field == EmployeeField::FullName {
        input = input.required().autocomplete("name");
    }
    input.render(errors)
}
