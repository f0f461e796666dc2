//! The import itself, with its progress: `POST /app/import/{id}/run` starts it in a task of its
//! own and sends the browser to `GET /app/import/{id}/progress`, which shows how many rows are
//! written (htmx asks again every second; without JavaScript, a reload does) and, once the import
//! ends, its totals or why it failed.
//!
//! The import is still one transaction (all or nothing, as the API's). Its task records each
//! step (500 rows) in the file's row in a short transaction of its own, so the progress page
//! reads it on any instance. A task whose instance goes away leaves its transaction rolled back
//! and its row without news: after a while the page says so, and the import can be run again.

use maud::{Markup, html};
use poem::{
    Request, Response, handler,
    web::{Data, Path},
};
use uuid::Uuid;

use super::{
    error::ConsoleError,
    form,
    import::{NOT_FOUND, count_rows, shell, totals},
    layout,
    session::SignedIn,
    teammates::{admin_only, path_id},
};
use crate::{
    api::{self, AppState},
    auth::Caller,
    error::ApiError,
    model::{
        self,
        audit::AuditContext,
        console_import::{ImportProgress, ImportState},
        employee_import::ImportRow,
    },
};

/// The id of the part of the page that changes.
const STATUS_ID: &str = "import-status";

/// The progress page of the import of file `id`.
pub fn path(id: Uuid) -> String {
    format!("/app/import/{id}/progress")
}

/// Runs the import of file `id` (already marked running) in a task of its own, recording its
/// progress and then its outcome in the file's row.
pub fn spawn(state: AppState, caller: Caller, audit: AuditContext, id: Uuid, rows: Vec<ImportRow>) {
    tokio::spawn(async move {
        let company_id = caller.company_id();
        // The newest count of rows written; the recorder writes what it finds, so a slow
        // write skips steps instead of queueing them.
        let (written, mut news) = tokio::sync::watch::channel(0usize);
        let recorder = {
            let (state, caller) = (state.clone(), caller.clone());
            tokio::spawn(async move {
                while news.changed().await.is_ok() {
                    let done = *news.borrow_and_update();
                    let recorded = state
                        .db
                        .write(&caller.tenant(), async |tx| {
                            model::console_import::advance(&tx, company_id, id, done).await
                        })
                        .await;
                    if let Err(e) = recorded {
                        tracing::warn!(error = %e, import = %id, "recording an import's progress");
                    }
                }
            })
        };
        let mut progress = move |step: model::employee_import::Progress| {
            let _ = written.send(step.done);
        };
        let outcome = api::employee_import::run(
            &state,
            &caller,
            &audit,
            company_id,
            &rows,
            false,
            &mut progress,
        )
        .await;
        // The sender goes with the closure: the recorder writes its last step and ends.
        drop(progress);
        let _ = recorder.await;
        let recorded = match &outcome {
            Ok(report) => {
                state
                    .db
                    .write(&caller.tenant(), async |tx| {
                        model::console_import::finish(&tx, company_id, id, &report.totals).await
                    })
                    .await
            }
            Err(e) => {
                if e.status().is_server_error() {
                    tracing::error!(error = %e.detail(), import = %id, "a console import failed");
                }
                let detail = e.detail().to_owned();
                state
                    .db
                    .write(&caller.tenant(), async |tx| {
                        model::console_import::fail(&tx, company_id, id, &detail).await
                    })
                    .await
            }
        };
        if let Err(e) = recorded {
            tracing::error!(error = %e, import = %id, "recording the end of an import");
        }
    });
}

/// `GET /app/import/{id}/progress`: the page, or (for htmx) the part of it that changes.
#[handler]
pub async fn page(
    state: Data<&AppState>,
    req: &Request,
    SignedIn(user): SignedIn,
    Path(id): Path<String>,
) -> Result<Response, ConsoleError> {
    admin_only(&user)?;
    let id = path_id(&id, NOT_FOUND)?;
    let caller = user.caller();
    let company_id = caller.company_id();
    let progress = state
        .db
        .read(&caller.tenant(), async |tx| {
            model::console_import::progress(&tx, company_id, id).await
        })
        .await?
        .ok_or_else(|| ApiError::not_found(NOT_FOUND))?;
    let part = status(id, &progress);
    // The part's own polling names it as its target; a boosted form's next page (the run's)
    // is the whole page.
    if req.header("HX-Target") == Some(STATUS_ID) {
        return Ok(layout::fragment(part));
    }
    let token = form::token(req);
    Ok(layout::page(&shell(&user, &token), part))
}

/// Where the import is. While it runs, the part asks for itself again every second and is
/// replaced by the answer; once the import has ended, the answer no longer asks.
fn status(id: Uuid, progress: &ImportProgress) -> Markup {
    let here = path(id);
    let columns = format!("/app/import/{id}");
    match &progress.state {
        ImportState::Running { done, total } => html! {
            div id="import-status" hx-get=(here) hx-trigger="every 1s" hx-swap="outerHTML" {
                h1 { "Importing employees" }
                p { "From " strong { (progress.file_name) } "." }
                div class="field" {
                    label for="import-bar" { "Rows written" }
                    progress id="import-bar" max=(total) value=(done) { (done) " of " (total) }
                }
                p { (done) " of " (total) " rows written. The import runs on the server: you may
                    leave this page. " a href=(here) { "Reload it" } " to see how far it is." }
            }
        },
        ImportState::Done(t) => html! {
            div id="import-status" {
                h1 { "Import finished" }
                div class="alert ok" role="status" {
                    p { (count_rows(t.rows)) " read from " (progress.file_name) "." }
                }
                (totals(t))
                p { a href="/app/people" { "See the employees" } " · "
                    a href="/app/import" { "Import another file" } }
            }
        },
        ImportState::Failed { detail } => html! {
            div id="import-status" {
                h1 { "The import did not run" }
                div class="alert error" role="alert" { p { (detail) } p { "Nothing was imported." } }
                p { a href=(columns) { "Back to the columns" } }
            }
        },
        ImportState::Stalled => html! {
            div id="import-status" {
                h1 { "The import stopped" }
                div class="alert error" role="alert" {
                    p { "It stopped before it finished (the server it ran on went away), so
                        nothing was imported." }
                }
                p { a href=(columns) { "Run it again" } }
            }
        },
        ImportState::Uploaded => html! {
            div id="import-status" {
                h1 { "Not imported yet" }
                p { "This file has been uploaded, but not imported. " a href=(columns) { "Match its columns" } " and import it." }
            }
        },
    }
}
