//! The console's page shell: the document, its header and navigation, and the headers every
//! console page is sent with (a strict CSP, no caching of private pages).

use maud::{DOCTYPE, Markup, PreEscaped, html};
use poem::{Response, http::StatusCode};

use super::{assets, csrf::CsrfToken, form, session::ConsoleUser};
use crate::auth::Role;

/// Only the console's own files; no inline script or style (htmx's indicator style is turned off
/// in its config), no eval, forms post only here, no framing by others.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data: blob:; font-src 'self'; connect-src 'self'; \
     form-action 'self'; frame-src 'self'; frame-ancestors 'none'; base-uri 'none'";

/// htmx's settings: no eval (`hx-on`, `js:`), no inline indicator style (the CSP refuses it),
/// no running of scripts in swapped content, and history restored by a request, not from a
/// snapshot of a page that may hold stale data. The forms of the admin pages are boosted
/// (`hx-boost`): sent by htmx, their answer (after its redirect) replaces the page's body
/// without a new page load; without JavaScript they post as plain forms.
/// Every answer is swapped in, errors too: a form sent back with its errors next to the fields
/// (422) or a refusal page (403, 404) is what the person must see.
const HTMX_CONFIG: &str = r#"{"allowEval":false,"allowScriptTags":false,"includeIndicatorStyles":false,"historyCacheSize":0,"refreshOnHistoryMiss":true,"selfRequestsOnly":true,"responseHandling":[{"code":"204","swap":false},{"code":"[2345]..","swap":true}]}"#;

/// The sections of the console, in the navigation's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    Home,
    People,
    Branding,
    Analytics,
    Leads,
    Teammates,
    Audit,
    MyCard,
    Sessions,
}

impl Section {
    pub fn path(self) -> &'static str {
        match self {
            Section::Home => "/app",
            Section::People => "/app/people",
            Section::Branding => "/app/branding",
            Section::Analytics => "/app/analytics",
            Section::Leads => "/app/leads",
            Section::Teammates => "/app/teammates",
            Section::Audit => "/app/audit",
            Section::MyCard => "/app/me",
            Section::Sessions => "/app/sessions",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Section::Home => "Home",
            Section::People => "People",
            Section::Branding => "Branding",
            Section::Analytics => "Analytics",
            Section::Leads => "Leads",
            Section::Teammates => "Teammates",
            Section::Audit => "Audit log",
            Section::MyCard => "My card",
            Section::Sessions => "Sessions",
        }
    }

    /// What a role's navigation shows.
    pub fn for_role(role: Role) -> &'static [Section] {
        match role {
            Role::Admin | Role::Superadmin => &[
                Section::Home,
                Section::People,
                Section::Branding,
                Section::Analytics,
                Section::Leads,
                Section::Teammates,
                Section::Audit,
                Section::Sessions,
            ],
            Role::Employee => &[
                Section::MyCard,
                Section::Analytics,
                Section::Leads,
                Section::Sessions,
            ],
        }
    }
}

/// What a page needs to be framed: its title, the user (for the navigation), the CSRF token
/// (for its forms and htmx), and the section it belongs to.
pub struct Shell<'a> {
    pub title: &'a str,
    pub user: Option<&'a ConsoleUser>,
    pub csrf: &'a CsrfToken,
    pub section: Option<Section>,
}

/// A whole console page, with its headers.
pub fn page(shell: &Shell<'_>, main: Markup) -> Response {
    respond(StatusCode::OK, document(shell, main))
}

/// A console page with another status (a form with errors answers 422, say).
pub fn page_with_status(status: StatusCode, shell: &Shell<'_>, main: Markup) -> Response {
    respond(status, document(shell, main))
}

/// The HTML document of a page.
pub fn document(shell: &Shell<'_>, main: Markup) -> Markup {
    let headers = format!(r#"{{"{}":"{}"}}"#, super::csrf::HEADER, shell.csrf.as_str());
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                meta name="htmx-config" content=(HTMX_CONFIG);
                title { (shell.title) " · CallingCard" }
                link rel="stylesheet" href=(assets::path("console.css"));
                script src=(assets::path("htmx.js")) defer {}
                script src=(assets::path("console.js")) defer {}
            }
            body hx-headers=(headers) {
                a class="skip" href="#main" { "Skip to content" }
                (header(shell))
                main id="main" tabindex="-1" { (main) }
            }
        }
    }
}

fn header(shell: &Shell<'_>) -> Markup {
    html! {
        header class="top" {
            a class="brand" href=(if shell.user.is_some() { "/app" } else { "/" }) {
                span class="mark" aria-hidden="true" { "◆" } " CallingCard"
            }
            @if let Some(user) = shell.user {
                nav aria-label="Console" {
                    ul {
                        @for section in Section::for_role(user.role()) {
                            li {
                                a href=(section.path())
                                    aria-current=[(shell.section == Some(*section)).then_some("page")] {
                                    (section.label())
                                }
                            }
                        }
                    }
                }
                form class="logout" method="post" action="/app/logout" {
                    (form::csrf_field(shell.csrf))
                    button type="submit" class="link" { "Log out" }
                }
            } @else {
                nav aria-label="Account" {
                    ul {
                        li { a href="/app/login" { "Log in" } }
                        li { a href="/app/signup" { "Sign up" } }
                    }
                }
            }
        }
    }
}

/// An error page for any console request, signed in or not.
pub fn error_page(status: StatusCode, title: &str, detail: &str) -> Response {
    let main = html! {
        div class="panel narrow" {
            h1 { (title) }
            p { (detail) }
            p { a href="/app" { "Back to the console" } }
        }
    };
    let token = CsrfToken::new_random();
    let shell = Shell {
        title,
        user: None,
        csrf: &token,
        section: None,
    };
    respond(status, document(&shell, main))
}

/// An HTML answer with the console's headers.
pub fn respond(status: StatusCode, markup: Markup) -> Response {
    let PreEscaped(body) = markup;
    with_headers(Response::builder().status(status))
        .content_type("text/html; charset=utf-8")
        .body(body)
}

/// The console's security and caching headers. Pages show private data: never stored.
pub fn with_headers(builder: poem::ResponseBuilder) -> poem::ResponseBuilder {
    builder
        .header("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        .header("Cache-Control", "no-store")
        .header("X-Content-Type-Options", "nosniff")
        .header("Referrer-Policy", "same-origin")
        .header("X-Frame-Options", "DENY")
        .header(
            "Permissions-Policy",
            "camera=(), microphone=(), geolocation=()",
        )
}

/// A file to download (a CSV export, a vCard), with the console's headers.
pub fn download(content_type: &str, disposition: String, body: impl Into<poem::Body>) -> Response {
    with_headers(Response::builder())
        .content_type(content_type)
        .header("Content-Disposition", disposition)
        .body(body.into())
}

/// A CSV file to download as `file_name` (plain ASCII, quoted as it is).
pub fn csv_download(file_name: &str, body: impl Into<poem::Body>) -> Response {
    download(
        "text/csv; charset=utf-8",
        format!("attachment; filename=\"{file_name}\""),
        body,
    )
}

/// An HTML fragment for htmx to swap in (no document around it), with the console's headers.
pub fn fragment(markup: Markup) -> Response {
    respond(StatusCode::OK, markup)
}
