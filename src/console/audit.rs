//! `GET /app/audit`: the company's audit trail, newest first, with the API's filters (who, which
//! action, when) as a GET form and cursor paging. The filters are checked by the same function
//! as `GET /api/company/{id}/audit`, so a bad one is refused the same way, next to its field.

use maud::html;
use poem::{
    Request, Response, handler,
    http::StatusCode,
    web::{Data, Query},
};
use serde::Deserialize;
use uuid::Uuid;

use super::{
    error::ConsoleError,
    form::{self, Field, FieldErrors},
    layout::{self, Section, Shell},
    session::SignedIn,
    teammates::admin_only,
};
use crate::{
    api::{
        AppState,
        audit::{AuditFilters, list_query},
        time_bound::TimeBound,
    },
    error::ApiError,
    model,
};

/// The filter form as the browser sent it; an empty field is no filter.
#[derive(Debug, Default, Deserialize)]
pub struct AuditForm {
    #[serde(default)]
    actor: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    cursor: String,
}

fn given(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

impl AuditForm {
    fn filters(&self) -> Result<AuditFilters, ApiError> {
        let actor = match given(&self.actor) {
            Some(raw) => Some(Uuid::parse_str(&raw).map_err(|_| {
                ApiError::unprocessable("invalid_parameter", "`actor` must be one of the logins")
            })?),
            None => None,
        };
        Ok(AuditFilters {
            actor,
            action: given(&self.action),
            from: given(&self.from).map(TimeBound::new),
            to: given(&self.to).map(TimeBound::new),
            cursor: given(&self.cursor),
            ..AuditFilters::default()
        })
    }

    /// The query of the next page: these filters, from `cursor`.
    fn next_page(&self, cursor: &str) -> String {
        let pairs = [
            ("actor", self.actor.as_str()),
            ("action", self.action.as_str()),
            ("from", self.from.as_str()),
            ("to", self.to.as_str()),
            ("cursor", cursor),
        ];
        let query = serde_urlencoded::to_string(
            pairs
                .iter()
                .filter(|(_, v)| !v.is_empty())
                .collect::<Vec<_>>(),
        )
        .unwrap_or_default();
        format!("/app/audit?{query}")
    }
}

#[handler]
pub async fn page(
    state: Data<&AppState>,
    req: &Request,
    SignedIn(user): SignedIn,
    Query(filters): Query<AuditForm>,
) -> Result<Response, ConsoleError> {
    admin_only(&user)?;
    let caller = user.caller();
    let company_id = caller.company_id();
    let query = filters.filters().and_then(list_query);
    let (logins, events) = state
        .db
        .read(&caller.tenant(), async |tx| {
            // A read sends its queries together.
            let (logins, events) =
                tokio::join!(model::user::list(&tx, company_id, (0, 100)), async {
                    match &query {
                        Ok(query) => model::audit::list(&tx, company_id, query).await,
                        Err(_) => Ok(None),
                    }
                },);
            let (logins, events) = (logins?, events?);
            Ok::<_, crate::db::DbError>((logins, events))
        })
        .await?;
    let logins = logins
        .ok_or_else(|| ApiError::not_found("Company not found"))?
        .0;
    let errors = match &query {
        Ok(_) => FieldErrors::new(),
        Err(e) => FieldErrors::from_api(e),
    };
    let token = form::token(req);
    let shell = Shell {
        title: "Audit log",
        user: Some(&user),
        csrf: &token,
        section: Some(Section::Audit),
    };
    let main = html! {
        h1 { "Audit log" }
        form method="get" action="/app/audit" class="row" role="search" aria-label="Filter the audit log" {
            (errors.summary(&["actor", "action", "from", "to"]))
            div class={ "field" @if errors.get("actor").is_some() { " invalid" } } {
                label for="f-actor" { "Who" }
                select id="f-actor" name="actor"
                    aria-describedby=[errors.get("actor").map(|_| "f-actor-error")] {
                    option value="" { "Anyone" }
                    @for login in &logins {
                        option value=(login.id) selected[filters.actor == login.id.to_string()] {
                            (login.full_name) " (" (login.email) ")"
                        }
                    }
                }
                @if let Some(error) = errors.get("actor") { p class="error" id="f-actor-error" { (error) } }
            }
            (Field::new("action", "Action").value(&filters.action)
                .hint("Such as employee.updated, or employee.* for all employee changes.")
                .render(&errors))
            (Field::new("from", "From").kind("date").value(&filters.from).render(&errors))
            (Field::new("to", "To (included)").kind("date").value(&filters.to).render(&errors))
            button type="submit" { "Filter" }
        }
        @match &events {
            None => {}
            Some(page) if page.events.is_empty() => {
                p class="empty" {
                    @if filters.cursor.is_empty() {
                        "Nothing matches these filters. Clear them, or widen the dates, to see more."
                    } @else {
                        "No older events."
                    }
                }
            }
            Some(page) => {
                div class="table-wrap" role="region" tabindex="0" aria-label="Audit events, newest first" {
                    table {
                        caption class="visually-hidden" { "Audit events, newest first" }
                        thead { tr {
                            th scope="col" { "When (UTC)" } th scope="col" { "Who" }
                            th scope="col" { "Action" } th scope="col" { "About" }
                            th scope="col" { "Outcome" } th scope="col" { "Fields changed" }
                        } }
                        tbody {
                            @for e in &page.events {
                                tr {
                                    td { time datetime=(e.occurred_at.to_rfc3339()) { (e.occurred_at.format("%Y-%m-%d %H:%M:%S")) } }
                                    td { @match (&e.actor_email, e.actor_user_id) {
                                        (Some(email), _) => (email),
                                        (None, Some(_)) => "a removed login",
                                        (None, None) => "anonymous",
                                    } }
                                    td { code { (e.action) } }
                                    td { (e.target_type) @if let Some(id) = e.target_id { " " span class="muted" { (id) } } }
                                    td { (e.outcome.as_str()) }
                                    td { (e.changes.keys().map(String::as_str).collect::<Vec<_>>().join(", ")) }
                                }
                            }
                        }
                    }
                }
                @if let Some(next) = &page.next {
                    p { a href=(filters.next_page(&next.encode())) { "Older events" } }
                }
            }
        }
    };
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    Ok(layout::page_with_status(status, &shell, main))
}
