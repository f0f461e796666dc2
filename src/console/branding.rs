//! Branding (admins only): the company's name, website and brand colour, and its logo, with a
//! preview of a card in those colours and a warning when text on the colour would be hard to
//! read (WCAG AA: 4.5:1).
//!
//! The preview is drawn here, as SVG (the console's CSP allows no inline styles; SVG fills are
//! attributes), not an iframe of a real card page: every load of a card page counts as a view in
//! its analytics, and card pages refuse to be framed (`frame-ancestors 'none'`).
//!
//! Saving and uploading go through the same flows as `PUT /api/company/{id}` and
//! `PUT /api/company/{id}/logo`.

use std::collections::HashMap;

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
    image_form::{self, UploadForm},
    layout::{self, Section, Shell},
    session::{self, ConsoleUser, SignedIn},
};
use crate::{
    api::{AppState, companies, upload},
    card::{
        color::{Rgb, contrast_ratio},
        page::{brand_color, text_on},
    },
    error::ApiError,
    model::{
        self,
        audit::AuditContext,
        company::{Company, CompanyChange},
        employee_list::{self, ListQuery, Sort, Start},
        media,
    },
    validate,
};

/// The contrast WCAG AA asks of body text.
const AA_CONTRAST: f64 = 4.5;
/// The dark text cards use on light colours (as `card::page` does).
const DARK_TEXT: Rgb = Rgb(0x11, 0x11, 0x11);

/// The form's values, as typed.
#[derive(Debug, Default, Clone)]
struct BrandingForm {
    name: String,
    domain: String,
    brand_color: String,
}

impl BrandingForm {
    fn of(company: &Company) -> Self {
        Self {
            name: company.name.clone(),
            domain: company.domain.clone().unwrap_or_default(),
            brand_color: company.brand_color.clone().unwrap_or_default(),
        }
    }

    fn from_fields(fields: &HashMap<String, String>) -> Self {
        let get = |name: &str| fields.get(name).cloned().unwrap_or_default();
        Self {
            name: get("name"),
            domain: get("domain"),
            brand_color: get("brand_color"),
        }
    }

    /// The change, checked as the API checks it; every error at once.
    fn check(&self) -> Result<CompanyChange, FieldErrors> {
        let mut errors = FieldErrors::new();
        let mut keep = |result: Result<Option<String>, ApiError>, field: &str| match result {
            Ok(value) => value,
            Err(e) => {
                errors.add(field, e.detail());
                None
            }
        };
        let name = keep(
            validate::required_text("name", &self.name, 200).map(Some),
            "name",
        );
        let domain = keep(
            validate::optional_domain("domain", Some(&self.domain)),
            "domain",
        );
        let color = keep(
            validate::optional_color("brand_color", Some(&self.brand_color)),
            "brand_color",
        );
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(CompanyChange {
            name,
            domain: Some(domain),
            logo_url: None,
            brand_color: Some(color),
            ..Default::default()
        })
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct Notice {
    saved: Option<String>,
}

fn admin_only(user: &ConsoleUser) -> Result<(), ConsoleError> {
    Ok(user.caller().require_admin()?)
}

/// The company and the name of one of its people (for the preview), in one round trip.
async fn load(
    state: &AppState,
    user: &ConsoleUser,
) -> Result<(Company, Option<(String, Option<String>)>), ConsoleError> {
    let company_id = user.caller().company_id();
    let one = ListQuery {
        sort: Sort::DEFAULT,
        search: None,
        start: Start::Skip(0),
        limit: 1,
    };
    let (company, page) = state
        .db
        .read(&user.caller().tenant(), async |tx| {
            let (company, page) = tokio::join!(
                model::company::get(&tx, company_id),
                employee_list::list(&tx, company_id, &one)
            );
            Ok::<_, crate::db::DbError>((company?, page?))
        })
        .await?;
    let company = company.ok_or_else(|| ApiError::not_found("Company not found"))?;
    let person = page
        .and_then(|p| p.employees.into_iter().next())
        .map(|e| (e.full_name, e.job_title));
    Ok((company, person))
}

/// `GET /app/branding`.
#[handler]
pub async fn show(
    state: Data<&AppState>,
    req: &Request,
    SignedIn(user): SignedIn,
    Query(notice): Query<Notice>,
) -> Result<Response, ConsoleError> {
    admin_only(&user)?;
    let (company, person) = load(&state, &user).await?;
    let view = BrandingPage {
        values: BrandingForm::of(&company),
        company,
        person,
        errors: FieldErrors::new(),
        logo_errors: FieldErrors::new(),
        notice: notice.saved,
    };
    Ok(view.render(req, &user, StatusCode::OK))
}

/// `POST /app/branding`.
#[handler]
pub async fn save(
    state: Data<&AppState>,
    req: &Request,
    SignedIn(user): SignedIn,
    ConsoleForm(fields): ConsoleForm<HashMap<String, String>>,
) -> Result<Response, ConsoleError> {
    admin_only(&user)?;
    let values = BrandingForm::from_fields(&fields);
    let errors = match values.check() {
        Ok(change) => match save_company(&state, req, &user, change).await? {
            Ok(()) => return Ok(session::see_other(req, "/app/branding?saved=details")),
            Err(errors) => errors,
        },
        Err(errors) => errors,
    };
    let (company, person) = load(&state, &user).await?;
    let view = BrandingPage {
        company,
        person,
        values,
        errors,
        logo_errors: FieldErrors::new(),
        notice: None,
    };
    Ok(view.render(req, &user, StatusCode::UNPROCESSABLE_ENTITY))
}

/// Applies `change` to the signed-in admin's company through the same flow as
/// `PUT /api/company/{id}`; what that flow refuses (422) comes back as the form's errors.
pub(super) async fn save_company(
    state: &AppState,
    req: &Request,
    user: &ConsoleUser,
    change: CompanyChange,
) -> Result<Result<(), FieldErrors>, ConsoleError> {
    let caller = user.caller();
    let company_id = caller.company_id();
    let tenant = companies::admin_tenant(caller, company_id)?;
    let audit = AuditContext::of(req, caller);
    match companies::update_company(state, &tenant, &audit, company_id, change).await {
        Ok(_) => Ok(Ok(())),
        Err(e) if e.status() == StatusCode::UNPROCESSABLE_ENTITY => {
            Ok(Err(FieldErrors::from_api(&e)))
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /app/branding/logo`: the same flow as `PUT /api/company/{id}/logo`.
#[handler]
pub async fn upload_logo(
    state: Data<&AppState>,
    req: &Request,
    SignedIn(user): SignedIn,
    multipart: Multipart,
) -> Result<Response, ConsoleError> {
    admin_only(&user)?;
    let file = image_form::read(req, multipart).await?;
    let (status, logo_errors) = match file {
        None => (
            StatusCode::UNPROCESSABLE_ENTITY,
            image_form::no_file_chosen(),
        ),
        Some(bytes) => {
            let caller = user.caller();
            let audit = AuditContext::of(req, caller);
            let upload = Some(async { upload::check_size(bytes) });
            match companies::change_logo(&state, caller, &audit, caller.company_id(), upload).await
            {
                Ok(_) => return Ok(session::see_other(req, "/app/branding?saved=logo")),
                Err(e) => image_form::upload_error(e)?,
            }
        }
    };
    let (company, person) = load(&state, &user).await?;
    let view = BrandingPage {
        values: BrandingForm::of(&company),
        company,
        person,
        errors: FieldErrors::new(),
        logo_errors,
        notice: None,
    };
    Ok(view.render(req, &user, status))
}

struct BrandingPage {
    company: Company,
    /// One employee's name and job title, for the preview.
    person: Option<(String, Option<String>)>,
    values: BrandingForm,
    errors: FieldErrors,
    logo_errors: FieldErrors,
    notice: Option<String>,
}

impl BrandingPage {
    fn render(&self, req: &Request, user: &ConsoleUser, status: StatusCode) -> Response {
        let token = form::token(req);
        let c = &self.company;
        let logo = c
            .logo_hash
            .as_deref()
            .map(|hash| media::logo_path(c.id, hash));
        let color = typed_color(&self.values.brand_color);
        let notice = match self.notice.as_deref() {
            Some("details") => Some("Saved. Every card shows the new branding now."),
            Some("logo") => Some("The new logo is on every card."),
            _ => None,
        };
        let upload = UploadForm {
            action: "/app/branding/logo",
            legend: "Logo",
            hint: "A JPEG, PNG or WebP image up to 5 MB; a PNG with a transparent background looks best.",
            current: logo.as_deref(),
            current_alt: &format!("Current logo of {}", c.name),
            button: "Upload logo",
        };
        let main = html! {
            h1 { "Branding" }
            @if let Some(notice) = notice {
                div class="alert ok" role="status" { p { (notice) } }
            }
            div class="grid" {
                section class="panel" aria-labelledby="brand-heading" {
                    h2 id="brand-heading" { "Company" }
                    // With htmx, the preview follows the name and colour as they are typed.
                    form method="post" action="/app/branding" novalidate
                        hx-get="/app/branding/preview" hx-params="name,brand_color"
                        hx-trigger="input changed delay:300ms from:#f-name, input changed delay:300ms from:#f-brand_color"
                        hx-target="#brand-preview" hx-swap="innerHTML" {
                        (form::csrf_field(&token))
                        (self.errors.summary(&["name", "domain", "brand_color"]))
                        (Field::new("name", "Company name").value(&self.values.name).required()
                            .autocomplete("organization").render(&self.errors))
                        (Field::new("domain", "Website").value(&self.values.domain)
                            .hint("Your domain, like example.com: cards link to https://example.com")
                            .render(&self.errors))
                        (Field::new("brand_color", "Brand colour").value(&self.values.brand_color)
                            .hint("A hex colour like #1a237e; empty for the default dark grey")
                            .render(&self.errors))
                        (contrast_slot(color.as_deref(), false))
                        button type="submit" { "Save branding" }
                    }
                }
                section class="panel" aria-labelledby="preview-heading" {
                    h2 id="preview-heading" { "Preview" }
                    div id="brand-preview" aria-live="polite" {
                        (preview(&self.values.name, color.as_deref(), logo.as_deref(), self.person.as_ref()))
                    }
                    @if self.person.is_none() {
                        p class="muted" { "Add a person to see their card here." }
                    }
                }
            }
            section class="panel" aria-label="Logo" {
                (upload.render(&token, &self.logo_errors))
            }
        };
        let shell = Shell {
            title: "Branding",
            user: Some(user),
            csrf: &token,
            section: Some(Section::Branding),
        };
        layout::page_with_status(status, &shell, main)
    }
}

/// Where the contrast report of the colour typed goes; the live preview's answer replaces it
/// out of band (`hx-swap-oob`), next to the colour's field.
fn contrast_slot(color: Option<&str>, out_of_band: bool) -> Markup {
    html! {
        div class="contrast" id="contrast" hx-swap-oob=[out_of_band.then_some("true")] {
            @if let Some(color) = color { (contrast(color)) }
        }
    }
}

/// The colour as typed when it is one (so a form with errors, or one being typed into,
/// previews what was typed).
fn typed_color(typed: &str) -> Option<String> {
    let typed = typed.trim();
    Rgb::parse_css(typed).map(|_| typed.to_ascii_lowercase())
}

/// What the live preview is asked with: the form's name and colour as typed.
#[derive(Debug, Default, Deserialize)]
pub struct PreviewQuery {
    #[serde(default)]
    name: String,
    #[serde(default)]
    brand_color: String,
}

/// `GET /app/branding/preview`: the preview (and the contrast report) of the name and colour
/// being typed, for htmx to swap in as the admin types; nothing is saved.
#[handler]
pub async fn live_preview(
    state: Data<&AppState>,
    SignedIn(user): SignedIn,
    Query(query): Query<PreviewQuery>,
) -> Result<Response, ConsoleError> {
    admin_only(&user)?;
    let (company, person) = load(&state, &user).await?;
    let logo = company
        .logo_hash
        .as_deref()
        .map(|hash| media::logo_path(company.id, hash));
    let color = typed_color(&query.brand_color);
    // As typed, bounded as the field is: a preview never shows more than a card would.
    let name: String = query.name.trim().chars().take(200).collect();
    let name = if name.is_empty() {
        company.name.clone()
    } else {
        name
    };
    Ok(layout::fragment(html! {
        (preview(&name, color.as_deref(), logo.as_deref(), person.as_ref()))
        (contrast_slot(color.as_deref(), true))
    }))
}

/// How white and dark text read on `color` (`#rgb`/`#rrggbb`), and a warning when either falls
/// short of WCAG AA.
fn contrast(color: &str) -> Markup {
    let Some(background) = Rgb::parse_css(color) else {
        return html! {};
    };
    let on_white = contrast_ratio(background, Rgb::WHITE);
    let on_dark = contrast_ratio(background, DARK_TEXT);
    let chosen = if text_on(color) == Rgb::WHITE {
        "white"
    } else {
        "dark"
    };
    let ratio = |r: f64| format!("{r:.1}:1");
    let verdict = |r: f64| {
        if r >= AA_CONTRAST {
            "passes AA"
        } else {
            "fails AA"
        }
    };
    html! {
        p { "Contrast on " code { (color) } ": white text " (ratio(on_white)) " (" (verdict(on_white))
                "), dark text " (ratio(on_dark)) " (" (verdict(on_dark)) ")." }
            @if on_white.max(on_dark) < AA_CONTRAST {
                div class="alert warn" role="status" {
                    p { "Warning: neither white nor dark text reaches the 4.5:1 contrast WCAG AA asks for on this colour, so names and buttons on it will be hard to read. Pick a darker or a lighter colour." }
                }
            } @else if on_white < AA_CONTRAST {
                div class="alert warn" role="status" {
                    p { "Warning: white text on this colour fails WCAG AA contrast (" (ratio(on_white)) ", 4.5:1 needed). Cards show " (chosen) " text on it instead." }
                }
            } @else if on_dark < AA_CONTRAST {
                p class="muted" { "Cards show " (chosen) " text on this colour." }
            }
    }
}

/// A small card in the company's colours: its header band (brand colour, logo, company name)
/// and a person's name, drawn as SVG.
fn preview(
    company: &str,
    color: Option<&str>,
    logo: Option<&str>,
    person: Option<&(String, Option<String>)>,
) -> Markup {
    let band = brand_color(color);
    let on_band = text_on(&band).to_string();
    let (name, title) = match person {
        Some((name, title)) => (name.as_str(), title.as_deref().unwrap_or("")),
        None => ("Jane Doe", "Job title"),
    };
    let short = |text: &str, max: usize| -> String {
        let mut chars = text.chars();
        let head: String = chars.by_ref().take(max).collect();
        if chars.next().is_some() {
            format!("{head}…")
        } else {
            head
        }
    };
    let label = format!("Preview of a card of {company} for {name}");
    let company_x = if logo.is_some() { "76" } else { "20" };
    html! {
        svg class="card-preview" viewBox="0 0 320 200" width="320" height="200" role="img"
            aria-label=(label) xmlns="http://www.w3.org/2000/svg" {
            rect x="0" y="0" width="320" height="200" rx="12" fill="#ffffff" stroke="#d0d5dd";
            path d="M0 12 a12 12 0 0 1 12 -12 h296 a12 12 0 0 1 12 12 v88 h-320 z" fill=(band);
            @if let Some(logo) = logo {
                image href=(logo) x="16" y="26" width="48" height="48" preserveAspectRatio="xMidYMid meet";
            }
            text x=(company_x) y="56" fill=(on_band) font-size="18" font-weight="700"
                font-family="system-ui, sans-serif" { (short(company, 24)) }
            text x="20" y="136" fill="#111111" font-size="18" font-weight="700"
                font-family="system-ui, sans-serif" { (short(name, 28)) }
            text x="20" y="162" fill="#475467" font-size="14"
                font-family="system-ui, sans-serif" { (short(title, 36)) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_light_colour_warns_about_white_text_and_a_dark_one_does_not() {
        let light = contrast("#ffeb3b").into_string();
        assert!(
            light.contains("white text on this colour fails WCAG AA"),
            "{light}"
        );
        let dark = contrast("#1a237e").into_string();
        assert!(!dark.contains("Warning"), "{dark}");
        let middle = contrast("#777777").into_string();
        assert!(middle.contains("neither white nor dark"), "{middle}");
    }
}
