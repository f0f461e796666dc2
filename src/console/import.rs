//! `/app/import`: importing employees from a CSV file, in steps. The file is uploaded once and
//! kept server-side for an hour (`model::console_import`); the admin maps each column to an
//! employee field (pre-filled when the header names one) or ignores it; a preview is the
//! import's dry run, row by row; the import itself runs the same flow as `POST
//! /api/company/{id}/employees/import` (matching by email, so a second import updates).
//!
//! The import runs in a task of its own, with a page that shows its progress
//! ([`super::import_progress`]); the preview runs within the request (10,000 rows take about
//! 0.2 s on a debug build).

use std::collections::HashMap;

use maud::{Markup, html};
use poem::{
    Request, Response, handler,
    http::StatusCode,
    web::{Data, Multipart, Path},
};

use super::{
    csrf,
    error::ConsoleError,
    form::{self, Field, FieldErrors},
    image_form::{self, UploadedFile},
    import_progress,
    layout::{self, Section, Shell},
    session::{ConsoleUser, SignedIn, see_other},
    teammates::{admin_only, path_id},
};
use crate::{
    api::{self, AppState},
    error::ApiError,
    model::{
        self,
        audit::AuditContext,
        console_import::{Start, StoredImport},
        employee::EmployeeField,
        employee_import::{
            CsvError, ImportReport, ImportRow, MAX_IMPORT_BYTES, SOCIAL_LINK_COLUMN, parse_csv,
        },
    },
};

pub(super) const NOT_FOUND: &str =
    "This import is not there: it may have expired. Upload the file again.";
/// The preview shows this many rows; the totals count them all.
const PREVIEW_ROWS: usize = 200;

pub(super) fn shell<'a>(user: &'a ConsoleUser, token: &'a csrf::CsrfToken) -> Shell<'a> {
    Shell {
        title: "Import employees",
        user: Some(user),
        csrf: token,
        section: Some(Section::People),
    }
}

#[handler]
pub async fn upload_form(
    req: &Request,
    SignedIn(user): SignedIn,
) -> Result<Response, ConsoleError> {
    admin_only(&user)?;
    Ok(upload_page(req, &user, &FieldErrors::new(), StatusCode::OK))
}

fn upload_page(
    req: &Request,
    user: &ConsoleUser,
    errors: &FieldErrors,
    status: StatusCode,
) -> Response {
    let token = form::token(req);
    let main = html! {
        h1 { "Import employees" }
        p { "Upload a CSV file whose first line names its columns. Next you choose which column
             is which field, then you see what the import would do before it runs. Importing
             the same file again updates employees by their email." }
        form hx-boost="true" method="post" action="/app/import" enctype="multipart/form-data" class="stack" {
            (form::csrf_field(&token))
            (Field::new("file", "CSV file").kind("file").required()
                .hint("UTF-8 CSV, up to 10,000 rows and 8 MB.")
                .render(errors))
            button type="submit" { "Upload" }
        }
    };
    layout::page_with_status(status, &shell(user, &token), main)
}

/// `POST /app/import`: keeps the file and goes on to the mapping.
#[handler]
pub async fn upload(
    state: Data<&AppState>,
    req: &Request,
    SignedIn(user): SignedIn,
    multipart: Multipart,
) -> Result<Response, ConsoleError> {
    // The body is bounded by the import route's limit before it gets here.
    let file = image_form::read_file(req, multipart).await?;
    admin_only(&user)?;
    let mut errors = FieldErrors::new();
    match file {
        None => errors.add("file", "Choose a CSV file to upload"),
        Some(UploadedFile { bytes, .. }) if !model::console_import::fits(&bytes) => errors.add(
            "file",
            format!(
                "The file is larger than {} MB: split it",
                MAX_IMPORT_BYTES >> 20
            ),
        ),
        Some(UploadedFile { bytes, .. }) if let Err(e) = model::console_import::header(&bytes) => {
            errors.add("file", e.to_string());
        }
        Some(UploadedFile { name, bytes }) => {
            let name = name.unwrap_or_else(|| "import.csv".to_owned());
            let caller = user.caller();
            let (company_id, user_id) = (caller.company_id(), caller.user_id());
            let id = state
                .db
                .write(&caller.tenant(), async |tx| {
                    model::console_import::store(&tx, company_id, user_id, &name, &bytes).await
                })
                .await?;
            return Ok(see_other(req, &format!("/app/import/{id}")));
        }
    }
    Ok(upload_page(
        req,
        &user,
        &errors,
        StatusCode::UNPROCESSABLE_ENTITY,
    ))
}

async fn stored(
    state: &AppState,
    user: &ConsoleUser,
    id: &str,
) -> Result<StoredImport, ConsoleError> {
    admin_only(user)?;
    let id = path_id(id, NOT_FOUND)?;
    let caller = user.caller();
    let company_id = caller.company_id();
    state
        .db
        .read(&caller.tenant(), async |tx| {
            model::console_import::get(&tx, company_id, id).await
        })
        .await?
        .ok_or_else(|| ApiError::not_found(NOT_FOUND).into())
}

/// What a header is mapped to at first: the field it names, else nothing.
fn suggested(header: &str) -> String {
    let lower = header.to_lowercase();
    if EmployeeField::from_name(&lower).is_some() || lower.starts_with(SOCIAL_LINK_COLUMN) {
        lower
    } else {
        String::new()
    }
}

/// The mapping a form sent (`col0`, `col1`, …), one choice a column; a choice other than an
/// employee field, a social link the header names, or ignoring is ignoring.
fn mapping_of(headers: &[String], form: &HashMap<String, String>) -> Vec<String> {
    headers
        .iter()
        .enumerate()
        .map(|(i, header)| {
            let choice = form
                .get(&format!("col{i}"))
                .map(String::as_str)
                .unwrap_or("");
            let allowed = EmployeeField::from_name(choice).is_some()
                || (choice.starts_with(SOCIAL_LINK_COLUMN) && choice == header.to_lowercase());
            if allowed {
                choice.to_owned()
            } else {
                String::new()
            }
        })
        .collect()
}

#[handler]
pub async fn columns_page(
    state: Data<&AppState>,
    req: &Request,
    SignedIn(user): SignedIn,
    Path(id): Path<String>,
) -> Result<Response, ConsoleError> {
    let file = stored(&state, &user, &id).await?;
    let headers = model::console_import::header(&file.bytes).unwrap_or_default();
    let mapping: Vec<String> = headers.iter().map(|h| suggested(h)).collect();
    Ok(mapping_page(
        req,
        &user,
        &file,
        &headers,
        &mapping,
        &FieldErrors::new(),
        StatusCode::OK,
    ))
}

fn mapping_page(
    req: &Request,
    user: &ConsoleUser,
    file: &StoredImport,
    headers: &[String],
    mapping: &[String],
    errors: &FieldErrors,
    status: StatusCode,
) -> Response {
    let token = form::token(req);
    let main = html! {
        h1 { "Import employees: match the columns" }
        p { "File: " strong { (file.file_name) } ". Choose the employee field each column holds." }
        (errors.summary(&[]))
        form hx-boost="true" method="post" action={ "/app/import/" (file.id) "/preview" } class="stack" {
            (form::csrf_field(&token))
            div class="table-wrap" role="region" tabindex="0" aria-label="Columns of the file" {
                table {
                    caption class="visually-hidden" { "Columns of the file" }
                    thead { tr { th scope="col" { "Column in the file" } th scope="col" { "Employee field" } } }
                    tbody {
                        @for (i, header) in headers.iter().enumerate() {
                            tr {
                                th scope="row" { label for={ "col" (i) } { (header) } }
                                td { (field_select(i, header, &mapping[i])) }
                            }
                        }
                    }
                }
            }
            button type="submit" { "Preview the import" }
        }
    };
    layout::page_with_status(status, &shell(user, &token), main)
}

fn field_select(i: usize, header: &str, current: &str) -> Markup {
    let link = header.to_lowercase();
    html! {
        select id={ "col" (i) } name={ "col" (i) } {
            option value="" selected[current.is_empty()] { "Ignore this column" }
            @for field in EmployeeField::ALL {
                option value=(field.name()) selected[current == field.name()] { (field.name()) }
            }
            @if link.starts_with(SOCIAL_LINK_COLUMN) {
                option value=(link) selected[current == link] { (link) }
            }
        }
    }
}

/// The mapped file, read as the import reads it.
fn mapped_rows(file: &StoredImport, mapping: &[String]) -> Result<Vec<ImportRow>, CsvError> {
    let bytes = model::console_import::with_header(&file.bytes, mapping)?;
    Ok(parse_csv(&bytes)?.rows)
}

/// The page again with an error for the whole form: the mapping, the plan's limit, or another
/// import running.
fn mapping_error(
    req: &Request,
    user: &ConsoleUser,
    file: &StoredImport,
    headers: &[String],
    mapping: &[String],
    error: &ApiError,
) -> Response {
    let mut errors = FieldErrors::new();
    errors.add("", error.detail());
    let status = match error.status() {
        status @ (StatusCode::PAYMENT_REQUIRED | StatusCode::CONFLICT) => status,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    };
    mapping_page(req, user, file, headers, mapping, &errors, status)
}

/// `POST /app/import/{id}/preview` and `…/run`: the dry run, or the import.
async fn check_or_run(
    state: &AppState,
    req: &Request,
    user: &ConsoleUser,
    id: &str,
    form: &HashMap<String, String>,
    dry_run: bool,
) -> Result<Response, ConsoleError> {
    let file = stored(state, user, id).await?;
    let headers = model::console_import::header(&file.bytes).unwrap_or_default();
    let mapping = mapping_of(&headers, form);
    let rows = match mapped_rows(&file, &mapping) {
        Ok(rows) => rows,
        Err(e) => {
            let e = api::employee_import::csv_error(e);
            return Ok(mapping_error(req, user, &file, &headers, &mapping, &e));
        }
    };
    let caller = user.caller();
    let audit = AuditContext::of(req, caller);
    let company_id = caller.company_id();
    if !dry_run {
        // A second click on "Import" (or another tab) finds it running, and only follows it.
        let (id, total) = (file.id, rows.len());
        let started = state
            .db
            .write(&caller.tenant(), async |tx| {
                model::console_import::start(&tx, company_id, id, total).await
            })
            .await?;
        match started {
            Start::Started => {
                import_progress::spawn(state.clone(), caller.clone(), audit, id, rows)
            }
            Start::Already => {}
            Start::Busy => {
                let busy = ApiError::conflict(
                    "import_running",
                    "Another import of your company is running: wait until it has finished, \
                     then import this file.",
                );
                return Ok(mapping_error(req, user, &file, &headers, &mapping, &busy));
            }
        }
        return Ok(see_other(req, &import_progress::path(id)));
    }
    let checked =
        api::employee_import::run(state, caller, &audit, company_id, &rows, true, &mut |_| {})
            .await;
    let report = match checked {
        Ok(report) => report,
        Err(e) if e.status().is_client_error() && e.status() != StatusCode::NOT_FOUND => {
            return Ok(mapping_error(req, user, &file, &headers, &mapping, &e));
        }
        Err(e) => return Err(e.into()),
    };
    Ok(preview_page(req, user, &file, &mapping, &rows, &report))
}

#[handler]
pub async fn preview(
    state: Data<&AppState>,
    req: &Request,
    SignedIn(user): SignedIn,
    Path(id): Path<String>,
    form::ConsoleForm(form): form::ConsoleForm<HashMap<String, String>>,
) -> Result<Response, ConsoleError> {
    check_or_run(&state, req, &user, &id, &form, true).await
}

#[handler]
pub async fn run(
    state: Data<&AppState>,
    req: &Request,
    SignedIn(user): SignedIn,
    Path(id): Path<String>,
    form::ConsoleForm(form): form::ConsoleForm<HashMap<String, String>>,
) -> Result<Response, ConsoleError> {
    check_or_run(&state, req, &user, &id, &form, false).await
}

fn preview_page(
    req: &Request,
    user: &ConsoleUser,
    file: &StoredImport,
    mapping: &[String],
    rows: &[ImportRow],
    report: &ImportReport,
) -> Response {
    let token = form::token(req);
    let by_row: HashMap<usize, &ImportRow> = rows.iter().map(|r| (r.row, r)).collect();
    let t = report.totals;
    let main = html! {
        h1 { "Import employees: preview" }
        p { "Nothing has been imported yet. " (file.file_name) ": " (count_rows(t.rows)) "." }
        (totals(&report.totals))
        div class="table-wrap" role="region" tabindex="0" aria-label="What the import would do, row by row" {
            table {
                caption class="visually-hidden" { "What the import would do, row by row" }
                thead { tr {
                    th scope="col" { "Row" } th scope="col" { "Name" } th scope="col" { "Email" }
                    th scope="col" { "Outcome" } th scope="col" { "Problems" }
                } }
                tbody {
                    @for r in report.rows.iter().take(PREVIEW_ROWS) {
                        @let row = by_row.get(&r.row);
                        tr {
                            td class="num" { (r.row) }
                            td { (row.and_then(|x| x.full_name.as_deref()).unwrap_or("")) }
                            td { (row.and_then(|x| x.email.as_deref()).unwrap_or("")) }
                            td { (r.outcome.as_str()) }
                            td {
                                @for p in &r.problems {
                                    p { @if let Some(f) = &p.field { code { (f) } ": " } (p.detail) }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if report.rows.len() > PREVIEW_ROWS {
            p class="hint" { "Showing the first " (PREVIEW_ROWS) " rows; the totals count them all." }
        }
        form hx-boost="true" method="post" action={ "/app/import/" (file.id) "/run" } class="row" {
            (form::csrf_field(&token))
            @for (i, choice) in mapping.iter().enumerate() {
                input type="hidden" name={ "col" (i) } value=(choice);
            }
            button type="submit" {
                @match t.created + t.updated {
                    0 => "Run the import (nothing would change)",
                    n => { "Import " (count_rows(n)) }
                }
            }
            a href={ "/app/import/" (file.id) } { "Change the columns" }
        }
    };
    layout::page(&shell(user, &token), main)
}

pub(super) fn totals(t: &model::employee_import::ImportTotals) -> Markup {
    html! {
        dl class="totals" {
            div { dt { "Created" } dd { (t.created) } }
            div { dt { "Updated" } dd { (t.updated) } }
            div { dt { "Unchanged" } dd { (t.unchanged) } }
            div { dt { "In error" } dd { (t.errors) } }
        }
    }
}

/// "1 row", "2 rows".
pub(super) fn count_rows(n: usize) -> String {
    if n == 1 {
        "1 row".to_owned()
    } else {
        format!("{n} rows")
    }
}
