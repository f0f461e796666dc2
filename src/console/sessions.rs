//! `GET /app/sessions`: the signed-in user's live sessions, and ending them: one (`POST
//! /app/sessions/:id/revoke`) or every other (`POST /app/sessions/logout-others`). The same
//! flows as `GET /api/auth/sessions`, `DELETE /api/auth/sessions/{id}` and the audit trail.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use maud::{Markup, html};
use poem::{
    Request, Response, handler,
    web::{Data, Path},
};
use uuid::Uuid;

use super::{
    error::ConsoleError,
    form::{self, ConsoleForm},
    layout::{self, Section, Shell},
    session::{self, SignedIn},
};
use crate::{
    api::{AppState, auth},
    error::ApiError,
    model::audit::AuditContext,
};

const NOT_FOUND: &str = "Session not found";

/// A person's name for the browser and system a user agent names ("Firefox on Windows"). Only
/// for showing: nothing is decided on it.
pub fn device_of(user_agent: Option<&str>) -> String {
    let Some(ua) = user_agent.map(str::trim).filter(|ua| !ua.is_empty()) else {
        return "Unknown device".to_owned();
    };
    let lower = ua.to_ascii_lowercase();
    let has = |needle: &str| lower.contains(needle);
    // Order matters: Edge and Opera say "Chrome" too, Chrome says "Safari".
    let browser = if has("edg/") || has("edge/") {
        Some("Edge")
    } else if has("opr/") || has("opera") {
        Some("Opera")
    } else if has("firefox/") || has("fxios/") {
        Some("Firefox")
    } else if has("chrome/") || has("crios/") || has("chromium/") {
        Some("Chrome")
    } else if has("safari/") {
        Some("Safari")
    } else {
        None
    };
    let system = if has("iphone") {
        Some("iPhone")
    } else if has("ipad") {
        Some("iPad")
    } else if has("android") {
        Some("Android")
    } else if has("windows") {
        Some("Windows")
    } else if has("cros") {
        Some("ChromeOS")
    } else if has("mac os x") || has("macintosh") {
        Some("macOS")
    } else if has("linux") {
        Some("Linux")
    } else {
        None
    };
    match (browser, system) {
        (Some(b), Some(s)) => format!("{b} on {s}"),
        (Some(b), None) => b.to_owned(),
        (None, Some(s)) => s.to_owned(),
        // An app or a tool: what it calls itself, shortened.
        (None, None) => ua.chars().take(60).collect(),
    }
}

fn when(at: DateTime<Utc>) -> Markup {
    html! {
        time datetime=(at.to_rfc3339()) { (at.format("%Y-%m-%d %H:%M UTC")) }
    }
}

/// `GET /app/sessions`.
#[handler]
pub async fn page(
    state: Data<&AppState>,
    req: &Request,
    SignedIn(user): SignedIn,
) -> Result<Response, ConsoleError> {
    let sessions = auth::list_sessions(&state, user.caller()).await?;
    let token = form::token(req);
    let shell = Shell {
        title: "Sessions",
        user: Some(&user),
        csrf: &token,
        section: Some(Section::Sessions),
    };
    let others = sessions.iter().filter(|s| !s.current).count();
    let main = html! {
        h1 { "Sessions" }
        p class="muted" {
            "Where your login is signed in, newest first. End a session you do not recognise: \
             that browser is logged out at once."
        }
        div class="table-wrap" role="region" tabindex="0" aria-label="Your live sessions" {
            table {
                caption class="visually-hidden" { "Your live sessions" }
                thead {
                    tr {
                        th scope="col" { "Device" }
                        th scope="col" { "Signed in" }
                        th scope="col" { "Last used" }
                        th scope="col" { span class="visually-hidden" { "Action" } }
                    }
                }
                tbody {
                    @for s in &sessions {
                        tr {
                            td {
                                (device_of(s.user_agent.as_deref()))
                                @if s.current { " " strong class="current" { "(this session)" } }
                            }
                            td { (when(s.created_at)) }
                            td { (when(s.last_used_at)) }
                            td {
                                @if !s.current {
                                    form hx-boost="true" method="post" action={ "/app/sessions/" (s.id) "/revoke" } {
                                        (form::csrf_field(&token))
                                        button type="submit" class="danger" {
                                            "End" span class="visually-hidden" {
                                                " the session of " (device_of(s.user_agent.as_deref()))
                                                " signed in " (s.created_at.format("%Y-%m-%d %H:%M UTC"))
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
        @if others == 0 {
            p class="empty" { "No other sessions: this browser is the only one signed in." }
        } @else {
            form hx-boost="true" method="post" action="/app/sessions/logout-others" {
                (form::csrf_field(&token))
                button type="submit" class="danger" { "Log out every other session" }
            }
        }
    };
    Ok(layout::page(&shell, main))
}

/// `POST /app/sessions/:id/revoke`: ends one of the caller's sessions; another login's, an
/// ended one or no such id is 404. Ending the current one is a logout.
#[handler]
pub async fn revoke(
    state: Data<&AppState>,
    req: &Request,
    SignedIn(user): SignedIn,
    Path(id): Path<String>,
    _form: ConsoleForm<HashMap<String, String>>,
) -> Result<Response, ConsoleError> {
    let id: Uuid = id.parse().map_err(|_| ApiError::not_found(NOT_FOUND))?;
    let caller = user.caller();
    let audit = AuditContext::of(req, caller);
    if !auth::end_session(&state, caller, &audit, id, "revoked").await? {
        return Err(ApiError::not_found(NOT_FOUND).into());
    }
    if id == caller.session_id() {
        let mut response = session::see_other(req, "/app/login");
        response.headers_mut().insert(
            session::SIGNED_OUT_MARK,
            poem::http::HeaderValue::from_static("1"),
        );
        return Ok(response);
    }
    Ok(session::see_other(req, "/app/sessions"))
}

/// `POST /app/sessions/logout-others`: ends every session of the login but this one.
#[handler]
pub async fn logout_others(
    state: Data<&AppState>,
    req: &Request,
    SignedIn(user): SignedIn,
    _form: ConsoleForm<HashMap<String, String>>,
) -> Result<Response, ConsoleError> {
    let caller = user.caller();
    let audit = AuditContext::of(req, caller);
    auth::end_other_sessions(&state, caller, &audit).await?;
    Ok(session::see_other(req, "/app/sessions"))
}

#[cfg(test)]
mod tests {
    use super::device_of;

    #[test]
    fn user_agents_are_named_as_people_know_them() {
        let firefox =
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:120.0) Gecko/20100101 Firefox/120.0";
        assert_eq!(device_of(Some(firefox)), "Firefox on Windows");
        let iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 \
                      (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1";
        assert_eq!(device_of(Some(iphone)), "Safari on iPhone");
        let edge =
            "Mozilla/5.0 (Windows NT 10.0) AppleWebKit/537.36 Chrome/120 Safari/537.36 Edg/120";
        assert_eq!(device_of(Some(edge)), "Edge on Windows");
        assert_eq!(device_of(None), "Unknown device");
        assert_eq!(device_of(Some("curl/8.4")), "curl/8.4");
    }
}
