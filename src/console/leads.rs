//! The Leads pages: the contacts visitors left on the company's cards. `GET /app/leads` lists
//! them newest first with the API's filters (words, from, to) and cursor paging; a lead's page
//! shows everything it holds, its vCard and (for admins) the erasure, confirmed on a page of its
//! own so that it works without JavaScript. Admins see every lead of the company, an employee
//! those left on their own card, through the same flows as `/api/…/leads`.

use std::collections::HashMap;

use maud::{Markup, html};
use poem::{
    Body, Request, Response, handler,
    http::StatusCode,
    web::{Data, Path, Query},
};
use serde::Deserialize;
use uuid::Uuid;

use super::{
    csrf::CsrfToken,
    error::ConsoleError,
    form::{self, Field, FieldErrors},
    layout::{self, Section, Shell},
    session::{self, ConsoleUser, SignedIn},
};
use crate::{
    api::{AppState, leads, time_bound::TimeBound},
    error::ApiError,
    model::{audit::AuditContext, lead::Lead},
};

/// Leads per page of the list.
const PAGE_SIZE: u32 = 50;

fn shell<'a>(title: &'a str, user: &'a ConsoleUser, csrf: &'a CsrfToken) -> Shell<'a> {
    Shell {
        title,
        user: Some(user),
        csrf,
        section: Some(Section::Leads),
    }
}

fn lead_path(id: Uuid) -> String {
    format!("/app/leads/{id}")
}

/// The id in a lead URL; anything else is a lead that does not exist.
fn lead_id(raw: &str) -> Result<Uuid, ConsoleError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::not_found("There is no such lead.").into())
}

/// The filter form as the browser sent it; an empty field is no filter.
#[derive(Debug, Default, Deserialize)]
pub struct LeadFilters {
    #[serde(default)]
    q: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    cursor: String,
    /// Set after an erasure, to say it happened.
    erased: Option<String>,
}

fn given(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

impl LeadFilters {
    fn bounds(&self) -> (Option<TimeBound>, Option<TimeBound>) {
        (
            given(&self.from).map(TimeBound::new),
            given(&self.to).map(TimeBound::new),
        )
    }

    /// A query string of these filters (and `cursor`), empty ones left out.
    fn query(&self, cursor: Option<&str>) -> String {
        let pairs = [
            ("q", self.q.as_str()),
            ("from", self.from.as_str()),
            ("to", self.to.as_str()),
            ("cursor", cursor.unwrap_or("")),
        ];
        let pairs: Vec<_> = pairs.iter().filter(|(_, v)| !v.trim().is_empty()).collect();
        serde_urlencoded::to_string(pairs).unwrap_or_default()
    }

    fn filtered(&self) -> bool {
        [&self.q, &self.from, &self.to]
            .iter()
            .any(|v| !v.trim().is_empty())
    }
}

/// Where a refused filter is shown: next to the field its detail names, the search box when
/// it names none (a stale cursor, say).
fn filter_errors(error: &ApiError) -> FieldErrors {
    let errors = FieldErrors::from_api(error);
    if ["q", "from", "to"].iter().any(|f| errors.get(f).is_some()) {
        return errors;
    }
    let mut errors = FieldErrors::new();
    errors.add("q", error.detail());
    errors
}

/// `GET /app/leads`.
#[handler]
pub async fn list(
    state: Data<&AppState>,
    req: &Request,
    SignedIn(user): SignedIn,
    Query(filters): Query<LeadFilters>,
) -> Result<Response, ConsoleError> {
    let caller = user.caller();
    let (from, to) = filters.bounds();
    let query = leads::list_query(
        caller,
        given(&filters.q),
        from.as_ref(),
        to.as_ref(),
        given(&filters.cursor),
        Some(PAGE_SIZE),
    );
    let (page, errors) = match query {
        Ok(query) => (
            Some(leads::list(&state, caller, caller.company_id(), &query).await?),
            FieldErrors::new(),
        ),
        Err(e) if e.status() == StatusCode::UNPROCESSABLE_ENTITY => (None, filter_errors(&e)),
        Err(e) => return Err(e.into()),
    };
    let token = form::token(req);
    let own = !user.is_admin();
    let main = html! {
        div class="spread" {
            h1 { "Leads" }
            @if user.is_admin() {
                a class="button secondary" href="/app/leads/settings" { "Lead settings" }
            }
        }
        p class="muted" {
            @if own {
                "The contacts visitors shared on your card."
            } @else {
                "The contacts visitors shared on your company's cards."
            }
        }
        @if filters.erased.is_some() {
            div class="alert ok" role="status" { p { "The lead was erased, with every message about it." } }
        }
        form method="get" action="/app/leads" class="row" role="search" aria-label="Filter the leads" {
            (errors.summary(&["q", "from", "to"]))
            (Field::new("q", "Search").kind("search").value(&filters.q)
                .hint("Words in the name, email, phone, company, job title or note.")
                .render(&errors))
            (Field::new("from", "From").kind("date").value(&filters.from).render(&errors))
            (Field::new("to", "To (included)").kind("date").value(&filters.to).render(&errors))
            button type="submit" { "Filter" }
        }
        @if let Some((leads, next)) = &page {
            @if leads.is_empty() {
                p class="empty" {
                    @if !filters.cursor.is_empty() {
                        "No older leads."
                    } @else if filters.filtered() {
                        "No lead matches these filters. Clear them, or widen the dates, to see more."
                    } @else if own {
                        "No leads yet. When someone shares their contact on your card, it shows here."
                    } @else {
                        "No leads yet. When someone shares their contact on a card, it shows here."
                    }
                }
            } @else {
                p {
                    a href={ "/app/leads/export.csv" @let q = filters.query(None); @if !q.is_empty() { "?" (q) } } {
                        "Export these leads as CSV"
                    }
                }
                (table(leads, own))
                @if let Some(next) = next {
                    p { a href={ "/app/leads?" (filters.query(Some(&next.encode()))) } { "Older leads" } }
                }
            }
        }
    };
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    Ok(layout::page_with_status(
        status,
        &shell("Leads", &user, &token),
        main,
    ))
}

fn table(leads: &[Lead], own: bool) -> Markup {
    html! {
        div class="table-wrap" role="region" tabindex="0" aria-label="Leads, newest first" {
            table {
                caption class="visually-hidden" { "Leads, newest first" }
                thead { tr {
                    th scope="col" { "When (UTC)" } th scope="col" { "Name" }
                    th scope="col" { "Email" } th scope="col" { "Phone" }
                    th scope="col" { "Company" }
                    @if !own { th scope="col" { "Card" } }
                } }
                tbody {
                    @for lead in leads {
                        tr {
                            td { (when(lead)) }
                            td { a href=(lead_path(lead.id)) { (lead.name) } }
                            td { (lead.email.as_deref().unwrap_or("")) }
                            td { (lead.phone.as_deref().unwrap_or("")) }
                            td { (lead.company.as_deref().unwrap_or("")) }
                            @if !own { td { (lead.employee_name) } }
                        }
                    }
                }
            }
        }
    }
}

fn when(lead: &Lead) -> Markup {
    html! {
        time datetime=(lead.created_at.to_rfc3339()) { (lead.created_at.format("%Y-%m-%d %H:%M")) }
    }
}

/// `GET /app/leads/{id}`.
#[handler]
pub async fn detail(
    state: Data<&AppState>,
    req: &Request,
    SignedIn(user): SignedIn,
    Path(id): Path<String>,
) -> Result<Response, ConsoleError> {
    let lead = leads::lead_of(&state, user.caller(), lead_id(&id)?).await?;
    let token = form::token(req);
    let optional = |v: &Option<String>| v.clone().unwrap_or_else(|| "—".to_owned());
    let main = html! {
        p { a href="/app/leads" { "← All leads" } }
        h1 { (lead.name) }
        dl class="details" {
            div { dt { "Left" } dd { (when(&lead)) " UTC" } }
            div { dt { "On the card of" } dd { (lead.employee_name) } }
            div { dt { "Email" } dd {
                @if let Some(email) = &lead.email { a href={ "mailto:" (email) } { (email) } } @else { "—" }
            } }
            div { dt { "Phone" } dd {
                @if let Some(phone) = &lead.phone { a href={ "tel:" (phone) } { (phone) } } @else { "—" }
            } }
            div { dt { "Company" } dd { (optional(&lead.company)) } }
            div { dt { "Job title" } dd { (optional(&lead.job_title)) } }
            div { dt { "Note" } dd class="note" { (optional(&lead.note)) } }
            div { dt { "Consent" } dd {
                @match (&lead.consent_text, lead.consent_given) {
                    (Some(text), true) => { "Given, to: " q { (text) } }
                    (Some(_), false) | (None, true) => { "Given" }
                    (None, false) => { "Not asked" }
                }
            } }
            div { dt { "Asked for the card by email" } dd { (if lead.vcard_requested { "Yes" } else { "No" }) } }
        }
        div class="row" {
            a class="button" href={ (lead_path(lead.id)) "/vcard" } { "Download vCard" }
            @if user.is_admin() {
                a class="button danger" href={ (lead_path(lead.id)) "/delete" } { "Erase this lead" }
            }
        }
    };
    Ok(layout::page(&shell(&lead.name, &user, &token), main))
}

/// `GET /app/leads/{id}/vcard`.
#[handler]
pub async fn vcard(
    state: Data<&AppState>,
    SignedIn(user): SignedIn,
    Path(id): Path<String>,
) -> Result<Response, ConsoleError> {
    let lead = leads::lead_of(&state, user.caller(), lead_id(&id)?).await?;
    let (text, disposition) = leads::vcard_of(&lead);
    Ok(layout::download(
        "text/vcard; charset=utf-8",
        disposition,
        text,
    ))
}

/// `GET /app/leads/{id}/delete`: the erasure, confirmed.
#[handler]
pub async fn confirm_erase(
    state: Data<&AppState>,
    req: &Request,
    SignedIn(user): SignedIn,
    Path(id): Path<String>,
) -> Result<Response, ConsoleError> {
    super::teammates::admin_only(&user)?;
    let lead = leads::lead_of(&state, user.caller(), lead_id(&id)?).await?;
    let token = form::token(req);
    let title = format!("Erase the lead of {}?", lead.name);
    let main = html! {
        div class="panel narrow" {
            h1 { (title) }
            p {
                "Everything it holds is deleted, with the emails about it not yet sent and its \
                 webhook deliveries still waiting. A copy already sent to your CRM stays there. \
                 This cannot be undone."
            }
            form method="post" action={ (lead_path(lead.id)) "/delete" } class="row" {
                (form::csrf_field(&token))
                button type="submit" class="danger" { "Erase the lead" }
                a href=(lead_path(lead.id)) { "Cancel" }
            }
        }
    };
    Ok(layout::page(&shell(&title, &user, &token), main))
}

/// `POST /app/leads/{id}/delete`: the same erasure as `DELETE /api/leads/{id}`.
#[handler]
pub async fn erase(
    state: Data<&AppState>,
    req: &Request,
    SignedIn(user): SignedIn,
    Path(id): Path<String>,
    _form: form::ConsoleForm<HashMap<String, String>>,
) -> Result<Response, ConsoleError> {
    super::teammates::admin_only(&user)?;
    let id = lead_id(&id)?;
    let caller = user.caller();
    let audit = AuditContext::of(req, caller);
    leads::erase(&state, caller, &audit, id).await?;
    Ok(session::see_other(req, "/app/leads?erased=1"))
}

/// `GET /app/leads/export.csv`: the leads the list shows with these filters, as the API's CSV.
#[handler]
pub async fn export(
    state: Data<&AppState>,
    SignedIn(user): SignedIn,
    Query(filters): Query<LeadFilters>,
) -> Result<Response, ConsoleError> {
    let caller = user.caller();
    let (from, to) = filters.bounds();
    let body: Body = leads::export(
        &state,
        caller,
        caller.company_id(),
        given(&filters.q),
        from.as_ref(),
        to.as_ref(),
    )
    .await?;
    let filename = format!("leads-{}.csv", chrono::Utc::now().format("%Y-%m-%d"));
    Ok(layout::csv_download(&filename, body))
}
