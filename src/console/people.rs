//! People: the company's employees, their cards and their photos (admins only).
//!
//! - `GET /app/people`: the list, searched (`q`), sorted and paged by cursor like the API's list
//!   (one page read, never the whole company). With htmx the search form and the page links swap
//!   only the results (`HX-Request` answers that fragment).
//! - `GET|POST /app/people/new`, `GET|POST /app/people/{id}`: the person form.
//! - `POST /app/people/{id}/photo`: the photo upload; `GET|POST /app/people/{id}/delete`.
//! - `GET /app/people/export.csv`: everyone, as the import reads them, streamed page by page.
//!
//! Creating, changing, deleting and uploading go through the same flows as the JSON API's
//! (`api::employees`), so the plan limit, the audit log and the card caches are the same.

use std::collections::HashMap;

use maud::{Markup, html};
use poem::{
    Body, Request, Response, handler,
    http::StatusCode,
    web::{Data, Multipart, Path, Query},
};
use serde::Deserialize;
use uuid::Uuid;

use super::{
    error::ConsoleError,
    form::{self, Field, FieldErrors},
    image_form::{self, UploadForm},
    layout::{self, Section, Shell},
    people_form::{self, PersonForm},
    session::{self, ConsoleUser, SignedIn},
};
use crate::{
    api::{AppState, employees, upload},
    card::CardUrls,
    error::ApiError,
    model::{
        self,
        audit::AuditContext,
        employee::Employee,
        employee_list::{self, Cursor, ListQuery, Sort, Start},
        media,
    },
};

/// People a page of the list shows.
const PAGE_SIZE: u32 = 25;
/// Employees read per statement by the export.
const EXPORT_PAGE: i64 = 500;
/// The list's results, which htmx swaps.
const RESULTS_ID: &str = "people-results";
/// The live region that says how many people the list shows after htmx swapped it.
const STATUS_ID: &str = "people-status";
/// QR code sizes offered for download: pixels, and what they print at 300 dpi.
const QR_SIZES: [(u32, &str); 3] = [
    (512, "for screens"),
    (1024, "prints 8.7 cm wide"),
    (2048, "prints 17 cm wide"),
];

/// People pages are for the company's admins; an employee login is refused (403).
fn admin_only(user: &ConsoleUser) -> Result<(), ConsoleError> {
    Ok(user.caller().require_admin()?)
}

fn not_found() -> ConsoleError {
    ApiError::not_found("There is no such person in your company.").into()
}

/// The id in a people URL; anything else is a page that does not exist.
fn employee_id(raw: &str) -> Result<Uuid, ConsoleError> {
    Uuid::try_parse(raw).map_err(|_| not_found())
}

/// The employee, if the caller's company has it (another company's id is not found).
async fn load(state: &AppState, user: &ConsoleUser, id: Uuid) -> Result<Employee, ConsoleError> {
    let tenant = user.caller().employee_tenant(&state.db, id).await?;
    state
        .db
        .read(&tenant, async |tx| model::employee::get(&tx, id).await)
        .await?
        .ok_or_else(not_found)
}

fn shell<'a>(title: &'a str, user: &'a ConsoleUser, csrf: &'a super::csrf::CsrfToken) -> Shell<'a> {
    Shell {
        title,
        user: Some(user),
        csrf,
        section: Some(Section::People),
    }
}

fn person_path(id: Uuid) -> String {
    format!("/app/people/{id}")
}

#[derive(Debug, Default, Deserialize)]
pub struct ListParams {
    q: Option<String>,
    sort: Option<String>,
    cursor: Option<String>,
    /// Set after a deletion, to say it happened.
    deleted: Option<String>,
}

/// `GET /app/people`.
#[handler]
pub async fn list(
    state: Data<&AppState>,
    req: &Request,
    SignedIn(user): SignedIn,
    Query(params): Query<ListParams>,
) -> Result<Response, ConsoleError> {
    admin_only(&user)?;
    let company_id = user.caller().company_id();
    let q = params.q.clone().unwrap_or_default();
    let sort = params.sort.clone().unwrap_or_else(|| "name".to_owned());
    let query = employees::list_query(
        Some(q.clone()),
        Some(sort.clone()),
        None,
        Some(PAGE_SIZE),
        params.cursor.clone(),
    );
    let (results, errors, status) = match query {
        Ok(query) => {
            let page = state
                .db
                .read(&user.caller().tenant(), async |tx| {
                    employee_list::list(&tx, company_id, &query).await
                })
                .await?
                .ok_or_else(|| ApiError::not_found("Company not found"))?;
            let results = results(&state, &page, &q, &sort, params.cursor.is_some());
            (results, FieldErrors::new(), StatusCode::OK)
        }
        // A search the list refuses (a control character, a stale cursor): said next to the box,
        // and in the results (which is all htmx swaps).
        Err(e) => {
            let mut errors = FieldErrors::new();
            errors.add("q", e.detail());
            let results = html! { div class="alert error" role="alert" { p { (e.detail()) } } };
            let summary = "The search could not be run".to_owned();
            ((results, summary), errors, StatusCode::UNPROCESSABLE_ENTITY)
        }
    };
    let (results, summary) = results;
    // Only the search's own requests get the results alone (htmx names their target); a
    // boosted form's next page, or a history restore, is the whole page.
    if req.header("HX-Target") == Some(RESULTS_ID) {
        // 200 even for a refused search: htmx swaps in only successful answers. The summary
        // goes to the page's live region (out of band), so screen readers hear the count
        // rather than the whole table.
        return Ok(layout::fragment(html! {
            (results)
            p id=(STATUS_ID) class="visually-hidden" role="status" hx-swap-oob="true" { (summary) }
        }));
    }
    let token = form::token(req);
    let main = html! {
        div class="spread" {
            h1 { "People" }
            div class="row" {
                a class="button" href="/app/people/new" { "Add a person" }
                a class="button secondary" href="/app/import" { "Import from CSV" }
                a class="button secondary" href="/app/people/export.csv" download { "Export CSV" }
            }
        }
        @if params.deleted.is_some() {
            div class="alert ok" role="status" { p { "The person and their card were deleted." } }
        }
        form class="search panel" role="search" method="get" action="/app/people"
            hx-get="/app/people" hx-target={ "#" (RESULTS_ID) } hx-push-url="true"
            hx-trigger="submit, input delay:300ms from:#f-q, change from:#f-sort" {
            div class="row" {
                (Field::new("q", "Search people").kind("search").value(&q)
                    .hint("Part of a name, job title or email").render(&errors))
                div class="field" {
                    label for="f-sort" { "Sort by" }
                    select id="f-sort" name="sort" {
                        @for (value, label) in [("name", "Name, A to Z"), ("-name", "Name, Z to A"),
                            ("-created_at", "Newest first"), ("created_at", "Oldest first")] {
                            option value=(value) selected[sort == value] { (label) }
                        }
                    }
                }
                button type="submit" class="secondary" { "Search" }
            }
        }
        p id=(STATUS_ID) class="visually-hidden" role="status" { (summary) }
        div id=(RESULTS_ID) { (results) }
    };
    Ok(layout::page_with_status(
        status,
        &shell("People", &user, &token),
        main,
    ))
}

/// The list's results (the table and the link to the next page, or what to do when empty),
/// and a one-line summary of them.
fn results(
    state: &AppState,
    page: &employee_list::EmployeePage,
    q: &str,
    sort: &str,
    paged: bool,
) -> (Markup, String) {
    let searching = !q.trim().is_empty();
    let link = |cursor: Option<&str>| {
        let mut pairs = vec![("q", q), ("sort", sort)];
        if let Some(cursor) = cursor {
            pairs.push(("cursor", cursor));
        }
        format!(
            "/app/people?{}",
            serde_urlencoded::to_string(pairs).unwrap_or_default()
        )
    };
    let hx_target = format!("#{RESULTS_ID}");
    let next = page.next.as_ref().map(Cursor::encode);
    let total = if page.total_exact {
        format!(
            "{} {}",
            page.total,
            if page.total == 1 { "person" } else { "people" }
        )
    } else {
        format!("More than {} people", page.total)
    };
    let summary = if page.employees.is_empty() {
        if searching {
            format!("No one matches “{q}”")
        } else {
            "No people".to_owned()
        }
    } else if searching {
        format!("{total} match “{q}”")
    } else {
        total.clone()
    };
    let markup = html! {
        @if page.employees.is_empty() && !searching && !paged {
            div class="empty panel" {
                h2 { "No people yet" }
                p { "Add the people who hand out cards one by one, or import them all from a CSV file." }
                div class="row" {
                    a class="button" href="/app/people/new" { "Add a person" }
                    a class="button secondary" href="/app/import" { "Import from CSV" }
                }
            }
        } @else if page.employees.is_empty() {
            div class="empty panel" {
                @if searching {
                    p { "No one matches “" (q) "”. Try part of a name or an email." }
                } @else {
                    p { "No more people." }
                }
                p { a href="/app/people" { "Show everyone" } }
            }
        } @else {
            p class="muted" { (total) @if searching { " match “" (q) "”" } }
            div class="table-wrap" role="region" tabindex="0" aria-label="People" {
                table {
                    caption class="visually-hidden" { "People" }
                    thead { tr {
                        th scope="col" { "Name" }
                        th scope="col" { "Job title" }
                        th scope="col" { "Email" }
                        th scope="col" { "Card" }
                    } }
                    tbody {
                        @for e in &page.employees {
                            @let url = e.card_page_url(&state.public_base_url);
                            tr {
                                th scope="row" { a href=(person_path(e.id)) { (e.full_name) } }
                                td { (e.job_title.as_deref().unwrap_or("")) }
                                td { (e.email.as_deref().unwrap_or("")) }
                                td { div class="row" {
                                    a href=(url) target="_blank" rel="noopener" {
                                        "Open" span class="visually-hidden" { " the card of " (e.full_name) }
                                    }
                                    button type="button" class="link" data-copy=(url) {
                                        "Copy link" span class="visually-hidden" { " to the card of " (e.full_name) }
                                    }
                                } }
                            }
                        }
                    }
                }
            }
            nav class="row pages" aria-label="Pages of people" {
                @if paged {
                    a href=(link(None)) hx-get=(link(None)) hx-target=(hx_target) hx-push-url="true" { "First page" }
                }
                @if let Some(next) = &next {
                    a href=(link(Some(next))) hx-get=(link(Some(next))) hx-target=(hx_target)
                        hx-push-url="true" rel="next" { "Next page" }
                }
            }
        }
    };
    (markup, summary)
}

/// `GET /app/people/new`.
#[handler]
pub async fn new_person(req: &Request, SignedIn(user): SignedIn) -> Result<Response, ConsoleError> {
    admin_only(&user)?;
    Ok(new_person_page(
        req,
        &user,
        &PersonForm::default(),
        &FieldErrors::new(),
        StatusCode::OK,
    ))
}

fn new_person_page(
    req: &Request,
    user: &ConsoleUser,
    values: &PersonForm,
    errors: &FieldErrors,
    status: StatusCode,
) -> Response {
    let token = form::token(req);
    let main = html! {
        p { a href="/app/people" { "← People" } }
        h1 { "Add a person" }
        div class="panel" {
            (people_form::render("/app/people/new", "Add person", values, errors, &token))
        }
    };
    layout::page_with_status(status, &shell("Add a person", user, &token), main)
}

/// `POST /app/people/new`: the same flow as `POST /api/company/{id}/employees`. A full plan is
/// said at the top of the form, with 422 (the API's 402 is for programs; the page is a form
/// that could not be accepted).
#[handler]
pub async fn create(
    state: Data<&AppState>,
    req: &Request,
    SignedIn(user): SignedIn,
    form::ConsoleForm(fields): form::ConsoleForm<HashMap<String, String>>,
) -> Result<Response, ConsoleError> {
    admin_only(&user)?;
    let values = PersonForm::from_fields(&fields);
    let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
    let checked = match values.check() {
        Ok(checked) => checked,
        Err(errors) => return Ok(new_person_page(req, &user, &values, &errors, unprocessable)),
    };
    let caller = user.caller();
    let audit = AuditContext::of(req, caller);
    let new = checked.into_new();
    match employees::create_employee(&state, caller, &audit, caller.company_id(), &new).await {
        Ok(e) => Ok(session::see_other(
            req,
            &format!("{}?saved=created", person_path(e.id)),
        )),
        Err(e) if e.status() == StatusCode::PAYMENT_REQUIRED => {
            let mut errors = FieldErrors::new();
            errors.add("", e.detail());
            Ok(new_person_page(req, &user, &values, &errors, unprocessable))
        }
        Err(e) if e.status() == unprocessable => {
            let errors = FieldErrors::from_api(&e);
            Ok(new_person_page(req, &user, &values, &errors, unprocessable))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct Notice {
    saved: Option<String>,
}

/// `GET /app/people/{id}`.
#[handler]
pub async fn person(
    state: Data<&AppState>,
    req: &Request,
    SignedIn(user): SignedIn,
    Path(id): Path<String>,
    Query(notice): Query<Notice>,
) -> Result<Response, ConsoleError> {
    admin_only(&user)?;
    let employee = load(&state, &user, employee_id(&id)?).await?;
    let page = PersonPage {
        values: PersonForm::of(&employee),
        employee,
        errors: FieldErrors::new(),
        photo_errors: FieldErrors::new(),
        notice: notice.saved,
    };
    Ok(page.render(&state, req, &user, StatusCode::OK))
}

/// `POST /app/people/{id}`: the same flow as `PUT /api/employees/{id}`.
#[handler]
pub async fn save(
    state: Data<&AppState>,
    req: &Request,
    SignedIn(user): SignedIn,
    Path(id): Path<String>,
    form::ConsoleForm(fields): form::ConsoleForm<HashMap<String, String>>,
) -> Result<Response, ConsoleError> {
    admin_only(&user)?;
    let id = employee_id(&id)?;
    let values = PersonForm::from_fields(&fields);
    let errors = match values.check() {
        Ok(checked) => {
            let caller = user.caller();
            let tenant = caller.employee_tenant(&state.db, id).await?;
            let audit = AuditContext::of(req, caller);
            let change = checked.into_change();
            match employees::update_employee(&state, caller, &tenant, &audit, id, change).await {
                Ok(_) => {
                    return Ok(session::see_other(
                        req,
                        &format!("{}?saved=details", person_path(id)),
                    ));
                }
                Err(e) if e.status() == StatusCode::UNPROCESSABLE_ENTITY => {
                    FieldErrors::from_api(&e)
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(errors) => errors,
    };
    // Read only to show the form again (another company's id is not found here either).
    let employee = load(&state, &user, id).await?;
    let page = PersonPage {
        employee,
        values,
        errors,
        photo_errors: FieldErrors::new(),
        notice: None,
    };
    Ok(page.render(&state, req, &user, StatusCode::UNPROCESSABLE_ENTITY))
}

/// `POST /app/people/{id}/photo`: the same flow as `PUT /api/employees/{id}/photo` (size limit,
/// decode budget, upright square JPEG without metadata).
#[handler]
pub async fn photo(
    state: Data<&AppState>,
    req: &Request,
    SignedIn(user): SignedIn,
    Path(id): Path<String>,
    multipart: Multipart,
) -> Result<Response, ConsoleError> {
    admin_only(&user)?;
    let id = employee_id(&id)?;
    let file = image_form::read(req, multipart).await?;
    let photo_errors = match file {
        None => (
            StatusCode::UNPROCESSABLE_ENTITY,
            image_form::no_file_chosen(),
        ),
        Some(bytes) => {
            let caller = user.caller();
            let audit = AuditContext::of(req, caller);
            let upload = Some(async { upload::check_size(bytes) });
            match employees::change_photo(&state, caller, &audit, id, upload).await {
                Ok(_) => {
                    let to = format!("{}?saved=photo", person_path(id));
                    return Ok(session::see_other(req, &to));
                }
                Err(e) => image_form::upload_error(e)?,
            }
        }
    };
    let (status, photo_errors) = photo_errors;
    let employee = load(&state, &user, id).await?;
    let page = PersonPage {
        values: PersonForm::of(&employee),
        employee,
        errors: FieldErrors::new(),
        photo_errors,
        notice: None,
    };
    Ok(page.render(&state, req, &user, status))
}

/// A person's page: their card's links and downloads, the photo, the form, and deletion.
struct PersonPage {
    employee: Employee,
    values: PersonForm,
    errors: FieldErrors,
    photo_errors: FieldErrors,
    notice: Option<String>,
}

impl PersonPage {
    fn render(
        &self,
        state: &AppState,
        req: &Request,
        user: &ConsoleUser,
        status: StatusCode,
    ) -> Response {
        let e = &self.employee;
        let token = form::token(req);
        let card_url = e.card_page_url(&state.public_base_url);
        // Paths, not absolute URLs: the downloads come from this host whatever its name.
        let paths = CardUrls::new("", &e.company_slug, &e.public_slug);
        let photo_path = e
            .photo_hash
            .as_deref()
            .map(|hash| media::photo_path(e.company_id, hash));
        let notice = match self.notice.as_deref() {
            Some("created") => Some("Added. Their card is live at the address below."),
            Some("details") => Some("Saved. The card shows the changes now."),
            Some("photo") => Some("The new photo is on the card."),
            _ => None,
        };
        let file_stem = &e.public_slug;
        let upload = UploadForm {
            action: &format!("{}/photo", person_path(e.id)),
            legend: "Photo",
            hint: "A JPEG, PNG or WebP image up to 5 MB. It is cropped to a square.",
            current: photo_path.as_deref(),
            current_alt: &format!("Current photo of {}", e.full_name),
            button: "Upload photo",
        };
        let main = html! {
            p { a href="/app/people" { "← People" } }
            h1 { (e.full_name) }
            @if let Some(notice) = notice {
                div class="alert ok" role="status" { p { (notice) } }
            }
            div class="grid" {
                section class="panel" aria-labelledby="card-heading" {
                    h2 id="card-heading" { "Card" }
                    p { a href=(card_url) target="_blank" rel="noopener" { "Open the card" } }
                    p class="row" {
                        code { (card_url) }
                        button type="button" class="secondary" data-copy=(card_url)
                            aria-controls="copy-status" { "Copy link" }
                        span id="copy-status" role="status" {}
                    }
                    h3 { "QR code" }
                    ul {
                        @for (size, print) in QR_SIZES {
                            li { a href={ (paths.qr_png_path) "?size=" (size) }
                                download={ (file_stem) "-qr-" (size) ".png" } {
                                "PNG, " (size) " px" } " (" (print) " at 300 dpi)" }
                        }
                        li { a href={ (paths.qr_svg_path) "?size=1024" }
                            download={ (file_stem) "-qr.svg" } { "SVG" } " (sharp at any print size)" }
                    }
                    h3 { "Contact" }
                    p { a href=(paths.vcard_path) download={ (file_stem) ".vcf" } { "Download the vCard" } }
                }
                section class="panel" aria-label="Photo" {
                    (upload.render(&token, &self.photo_errors))
                    @if e.photo_hash.is_none() && let Some(url) = &e.photo_url {
                        p class="muted" { "The card shows the photo at " code { (url) } " until one is uploaded." }
                    }
                }
            }
            section class="panel" aria-labelledby="details-heading" {
                h2 id="details-heading" { "Details" }
                (people_form::render(&person_path(e.id), "Save changes", &self.values, &self.errors, &token))
            }
            section class="panel" aria-labelledby="delete-heading" {
                h2 id="delete-heading" { "Delete" }
                p { "Deleting " (e.full_name) " takes their card down: printed QR codes stop working." }
                a class="button danger" href={ (person_path(e.id)) "/delete" } { "Delete " (e.full_name) "…" }
            }
        };
        layout::page_with_status(status, &shell(&e.full_name, user, &token), main)
    }
}

/// `GET /app/people/{id}/delete`: the confirmation, as a page (it works without JavaScript).
#[handler]
pub async fn confirm_delete(
    state: Data<&AppState>,
    req: &Request,
    SignedIn(user): SignedIn,
    Path(id): Path<String>,
) -> Result<Response, ConsoleError> {
    admin_only(&user)?;
    let employee = load(&state, &user, employee_id(&id)?).await?;
    let token = form::token(req);
    let title = format!("Delete {}?", employee.full_name);
    let main = html! {
        div class="panel narrow" {
            h1 { (title) }
            p { "Their card goes with them, and printed QR codes stop working. This cannot be undone." }
            form hx-boost="true" method="post" action={ (person_path(employee.id)) "/delete" } class="row" {
                (form::csrf_field(&token))
                button type="submit" class="danger" { "Delete " (employee.full_name) }
                a href=(person_path(employee.id)) { "Cancel" }
            }
        }
    };
    Ok(layout::page(&shell(&title, &user, &token), main))
}

/// `POST /app/people/{id}/delete`: the same flow as `DELETE /api/employees/{id}`.
#[handler]
pub async fn delete(
    state: Data<&AppState>,
    req: &Request,
    SignedIn(user): SignedIn,
    Path(id): Path<String>,
    _form: form::ConsoleForm<HashMap<String, String>>,
) -> Result<Response, ConsoleError> {
    admin_only(&user)?;
    let id = employee_id(&id)?;
    let caller = user.caller();
    let audit = AuditContext::of(req, caller);
    employees::delete_employee(&state, caller, &audit, id).await?;
    Ok(session::see_other(req, "/app/people?deleted=1"))
}

/// `GET /app/people/export.csv`: every employee, with the columns the import reads
/// (`full_name, email, job_title, phone, whatsapp, photo_url, bio, social_links.<name>…`), so a
/// file exported and imported again changes nothing. Written page by page as it is sent: a
/// large company is never one query result in memory.
#[handler]
pub async fn export(
    state: Data<&AppState>,
    SignedIn(user): SignedIn,
) -> Result<Response, ConsoleError> {
    admin_only(&user)?;
    let company_id = user.caller().company_id();
    let tenant = user.caller().tenant();
    let first = ListQuery {
        sort: Sort::DEFAULT,
        search: None,
        start: Start::Skip(0),
        limit: EXPORT_PAGE,
    };
    // The columns and the first page before the answer starts, so a failure is still a page.
    let (names, page) = state
        .db
        .read(&tenant, async |tx| {
            // Both sent at once: a read is one pipelined round trip.
            let (names, page) = tokio::join!(
                model::employee::social_link_names(&tx, company_id),
                employee_list::list(&tx, company_id, &first)
            );
            Ok::<_, crate::db::DbError>((names?, page?))
        })
        .await?;
    let page = page.ok_or_else(|| ApiError::not_found("Company not found"))?;
    let mut head = "\u{feff}".as_bytes().to_vec();
    head.extend(csv_rows(&names, true, &page.employees)?);
    let state = state.clone();
    let rest = futures::stream::try_unfold(page.next, move |next| {
        let (state, names, first) = (state.clone(), names.clone(), first.clone());
        async move {
            let Some(cursor) = next else {
                return Ok(None);
            };
            let query = ListQuery {
                start: Start::After(cursor),
                ..first
            };
            let page = state
                .db
                .read(&tenant, async |tx| {
                    employee_list::list(&tx, company_id, &query).await
                })
                .await
                .map_err(std::io::Error::other)?
                .ok_or_else(|| std::io::Error::other("the company is gone"))?;
            let bytes = csv_rows(&names, false, &page.employees).map_err(std::io::Error::other)?;
            Ok::<_, std::io::Error>(Some((bytes, page.next)))
        }
    });
    let body = futures::stream::once(async { Ok::<_, std::io::Error>(head) });
    let body = futures::StreamExt::chain(body, rest);
    let filename = format!("people-{}.csv", chrono::Utc::now().format("%Y-%m-%d"));
    Ok(layout::csv_download(
        &filename,
        Body::from_bytes_stream(body),
    ))
}

/// CSV lines of `employees`, after the header line when `with_head`.
fn csv_rows(
    link_names: &[String],
    with_head: bool,
    employees: &[Employee],
) -> Result<Vec<u8>, ApiError> {
    let mut out = csv::Writer::from_writer(Vec::new());
    let failed = |e: csv::Error| ApiError::internal(e);
    if with_head {
        let mut head: Vec<String> = [
            "full_name",
            "email",
            "job_title",
            "phone",
            "whatsapp",
            "photo_url",
            "bio",
        ]
        .map(str::to_owned)
        .to_vec();
        head.extend(
            link_names
                .iter()
                .map(|n| format!("{}{n}", model::employee_import::SOCIAL_LINK_COLUMN)),
        );
        out.write_record(&head).map_err(failed)?;
    }
    for e in employees {
        let text = |v: &Option<String>| v.clone().unwrap_or_default();
        let mut record = vec![
            e.full_name.clone(),
            text(&e.email),
            text(&e.job_title),
            text(&e.phone),
            text(&e.whatsapp),
            // The URL set on the employee, not an uploaded photo's: that is what the import sets.
            text(&e.photo_url),
            text(&e.bio),
        ];
        record.extend(
            link_names
                .iter()
                .map(|n| e.social_links.get(n).cloned().unwrap_or_default()),
        );
        out.write_record(&record).map_err(failed)?;
    }
    out.into_inner()
        .map_err(|e| ApiError::internal(e.to_string()))
}
