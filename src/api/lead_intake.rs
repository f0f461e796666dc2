//! `POST /api/card/{company_slug}/{employee_slug}/leads`: a visitor leaves their contact on a
//! card, as JSON (201 `{id}`) or as the card page's form (303 to the page's thank-you state).
//!
//! What a stranger can make the server do here is bounded before anything is stored: the body's
//! size (`MAX_LEAD_BODY_BYTES`), leads per client address and per card (429 with
//! `Retry-After`), a honeypot field, and the "form started at" token (too soon after the page
//! was served, or too long, is refused). A refused lead is never stored. A form submission that
//! is refused is answered with a short page of the same status in plain words, with a link back
//! to the card ([`form_refusals_as_pages`]): the browser's Back keeps what the person typed.

use std::{sync::Arc, time::Duration, time::Instant};

use poem::{
    Endpoint, IntoResponse, Request, Response,
    http::{Method, StatusCode, header},
    web::Data,
};
use poem_openapi::{
    ApiRequest, ApiResponse, Object, OpenApi,
    param::Path,
    payload::{Form, Json},
};
use serde::Deserialize;
use uuid::Uuid;

use super::{
    ApiTags, AppState, JsonString,
    cards::{MissPayer, load_card},
    validate,
};
use crate::{
    analytics::{collector::Card, rate_limit::RateLimiter},
    card::{lead_form, lead_token, vcard},
    config::PublicLimits,
    db::{DbError, Tenant},
    error::ApiError,
    mail,
    model::{self, lead::NewLead},
};

/// A lead's body: its fields are bounded one by one below; this bounds them all.
pub const MAX_LEAD_BODY_BYTES: usize = 16 * 1024;
/// Client addresses and cards tracked by the limits at once (bounded memory).
const TRACKED_KEYS: usize = 100_000;

/// The lead door's keys and limits, shared by every request of this instance.
pub struct LeadIntake {
    tokens: lead_token::FormTokens,
    per_address: RateLimiter,
    per_card: RateLimiter,
    min_fill: Duration,
}

impl LeadIntake {
    /// `secret`: the key of the form tokens (derived from the token secret).
    pub fn new(limits: &PublicLimits, secret: &[u8]) -> Self {
        let hourly = |n: u32| RateLimiter::new(n, f64::from(n) / 3600.0, TRACKED_KEYS);
        Self {
            tokens: lead_token::FormTokens::new(secret),
            per_address: hourly(limits.leads_per_address_per_hour),
            per_card: hourly(limits.leads_per_card_per_hour),
            min_fill: limits.lead_min_fill,
        }
    }

    /// The start token of a form of this card served at `now` (unix seconds).
    pub fn form_token(&self, company_id: Uuid, employee_id: Uuid, now: i64) -> String {
        self.tokens.issue(company_id, employee_id, now)
    }
}

/// Whether a request is a lead submission (for the body limit and the refusal pages).
pub fn is_lead_route(method: &Method, path: &str) -> bool {
    method == Method::POST
        && path
            .strip_prefix("/api/card/")
            .and_then(|rest| rest.strip_suffix("/leads"))
            .is_some_and(|slugs| slugs.split('/').count() == 2)
}

/// A lead, as JSON.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub struct LeadSubmission {
    #[oai(validator(max_length = 200))]
    pub name: JsonString,
    /// `email` or `phone` (or both) is required.
    #[oai(nullable, validator(max_length = 254))]
    pub email: Option<JsonString>,
    #[oai(nullable, validator(max_length = 40))]
    pub phone: Option<JsonString>,
    #[oai(nullable, validator(max_length = 200))]
    pub company: Option<JsonString>,
    #[oai(nullable, validator(max_length = 200))]
    pub job_title: Option<JsonString>,
    #[oai(nullable, validator(max_length = 2000))]
    pub note: Option<JsonString>,
    /// Consent to the company's consent text; required when the company asks for it.
    #[oai(nullable)]
    pub consent: Option<bool>,
    /// Email the card's vCard to `email`.
    #[oai(nullable)]
    pub send_vcard: Option<bool>,
    /// The honeypot: must be absent or empty (the form hides it from people).
    #[oai(nullable, validator(max_length = 2048))]
    pub website: Option<JsonString>,
    /// The `started` value of the card page's form: when the form was served, signed.
    #[oai(validator(max_length = 100))]
    pub started: JsonString,
}

/// A lead, as the card page's form sends it (`application/x-www-form-urlencoded`): every
/// field is text, a ticked checkbox is `yes` (or `on`, `true`, `1`).
#[derive(Debug, Default, Object, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[oai(rename = "LeadFormSubmission", deny_unknown_fields)]
pub struct LeadFormFields {
    #[oai(nullable)]
    pub name: Option<String>,
    #[oai(nullable)]
    pub email: Option<String>,
    #[oai(nullable)]
    pub phone: Option<String>,
    #[oai(nullable)]
    pub company: Option<String>,
    #[oai(nullable)]
    pub job_title: Option<String>,
    #[oai(nullable)]
    pub note: Option<String>,
    #[oai(nullable)]
    pub consent: Option<String>,
    #[oai(nullable)]
    pub send_vcard: Option<String>,
    #[oai(nullable)]
    pub website: Option<String>,
    #[oai(nullable)]
    pub started: Option<String>,
}

#[derive(ApiRequest)]
pub enum LeadBody {
    Json(Json<LeadSubmission>),
    Form(Form<LeadFormFields>),
}

#[derive(Debug, Object)]
pub struct LeadCreated {
    pub id: Uuid,
}

#[derive(ApiResponse)]
pub enum LeadAnswer {
    /// The lead was stored (JSON).
    #[oai(status = 201)]
    Created(Json<LeadCreated>),
    /// The lead was stored (a form): back to the card page, showing its thank-you note.
    #[oai(status = 303)]
    SeeOther(#[oai(header = "Location")] String),
}

/// The fields of either body, not yet checked.
struct Submitted {
    name: String,
    email: Option<String>,
    phone: Option<String>,
    company: Option<String>,
    job_title: Option<String>,
    note: Option<String>,
    consent: bool,
    send_vcard: bool,
    honeypot: Option<String>,
    started: Option<String>,
    form: bool,
}

fn ticked(value: Option<&str>) -> bool {
    value.is_some_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "yes" | "on" | "true" | "1"
        )
    })
}

impl From<LeadBody> for Submitted {
    fn from(body: LeadBody) -> Self {
        let text = |v: Option<JsonString>| v.map(JsonString::into_inner);
        match body {
            LeadBody::Json(Json(b)) => Self {
                name: b.name.into_inner(),
                email: text(b.email),
                phone: text(b.phone),
                company: text(b.company),
                job_title: text(b.job_title),
                note: text(b.note),
                consent: b.consent.unwrap_or(false),
                send_vcard: b.send_vcard.unwrap_or(false),
                honeypot: text(b.website),
                started: Some(b.started.into_inner()),
                form: false,
            },
            LeadBody::Form(Form(f)) => Self {
                consent: ticked(f.consent.as_deref()),
                send_vcard: ticked(f.send_vcard.as_deref()),
                name: f.name.unwrap_or_default(),
                email: f.email,
                phone: f.phone,
                company: f.company,
                job_title: f.job_title,
                note: f.note,
                honeypot: f.website,
                started: f.started,
                form: true,
            },
        }
    }
}

/// The checked fields of a lead.
struct Checked {
    name: String,
    email: Option<String>,
    phone: Option<String>,
    company: Option<String>,
    job_title: Option<String>,
    note: Option<String>,
}

fn check_fields(s: &Submitted) -> Result<Checked, ApiError> {
    let checked = Checked {
        name: validate::required_text("name", &s.name, 200)?,
        email: validate::optional_email("email", s.email.as_deref())?,
        phone: validate::optional_phone("phone", s.phone.as_deref())?,
        company: validate::optional_text("company", s.company.as_deref(), 200)?,
        job_title: validate::optional_text("job_title", s.job_title.as_deref(), 200)?,
        note: validate::optional_multiline_text("note", s.note.as_deref(), 2000)?,
    };
    if checked.email.is_none() && checked.phone.is_none() {
        return Err(ApiError::unprocessable(
            "contact_required",
            "Please leave an email address or a phone number, so that you can be reached.",
        ));
    }
    if s.send_vcard && checked.email.is_none() {
        return Err(ApiError::unprocessable(
            "email_required",
            "To get the contact card by email, please leave your email address.",
        ));
    }
    Ok(checked)
}

fn capture_disabled() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "lead_capture_disabled",
        "This card does not take contacts.",
    )
}

fn consent_required() -> ApiError {
    ApiError::unprocessable(
        "consent_required",
        "Please tick the consent box: your contact can only be sent with your consent.",
    )
}

/// The spam checks that need no database: the honeypot and the start token.
fn check_human(
    intake: &LeadIntake,
    s: &Submitted,
    (company_id, employee_id): (Uuid, Uuid),
) -> Result<(), ApiError> {
    if s.honeypot.as_deref().is_some_and(|v| !v.trim().is_empty()) {
        return Err(ApiError::unprocessable(
            "honeypot_filled",
            "A field meant to stay empty was filled in, so this looked automatic and was not \
             sent. If you are a person, please reload the page and try again.",
        ));
    }
    let now = chrono::Utc::now().timestamp();
    let token = s.started.as_deref().unwrap_or_default();
    intake
        .tokens
        .check(token, company_id, employee_id, now, intake.min_fill)
        .map_err(|refused| match refused {
            lead_token::Refused::TooFast => ApiError::unprocessable(
                "form_too_fast",
                "That was quicker than a person types, so it was not sent. Please wait a few \
                 seconds and send it again.",
            ),
            lead_token::Refused::Expired => ApiError::unprocessable(
                "form_expired",
                "This form was opened too long ago. Please reload the page and send it again.",
            ),
            lead_token::Refused::Invalid => ApiError::unprocessable(
                "form_token_invalid",
                "This form is not one of this card's. Please reload the card's page and send \
                 it from there.",
            ),
        })
}

fn limited(wait: Duration, detail: &str) -> ApiError {
    ApiError::too_many_requests("too_many_leads", detail, wait)
}

pub struct LeadIntakeApi;

#[OpenApi(tag = "ApiTags::Leads")]
impl LeadIntakeApi {
    /// Leave a contact on a card
    ///
    /// Public. JSON (answered `201 {id}`), or the card page's form
    /// (`application/x-www-form-urlencoded`, answered `303` to the page's thank-you state,
    /// `?lead=sent#lead-sent`; a refused form gets a short HTML page of the same status
    /// instead of JSON). `name` and one of `email` or `phone` are required; `started` is the
    /// card page form's value (a form sent back less than a few seconds, or more than two days,
    /// after it was served is refused); `website` must stay empty. Limited per client address
    /// and per card (429 `too_many_leads`). `403 lead_capture_disabled` when the company takes
    /// no leads; `422 consent_required` when it asks for consent and `consent` is not true.
    /// The employee is emailed the lead; with `send_vcard` the visitor is emailed the card (its
    /// vCard attached, with the photo, and linked). A stored lead counts in the company's
    /// analytics as the action `lead`.
    #[oai(
        path = "/card/:company_slug/:employee_slug/leads",
        method = "post",
        operation_id = "createLead"
    )]
    async fn create_lead(
        &self,
        state: Data<&AppState>,
        req: &Request,
        company_slug: Path<String>,
        employee_slug: Path<String>,
        body: LeadBody,
    ) -> Result<LeadAnswer, ApiError> {
        let card = load_card(
            &state,
            &company_slug,
            &employee_slug,
            &MissPayer::client(req),
        )
        .await?;
        if !card.leads.capture_enabled {
            return Err(capture_disabled());
        }
        let submitted = Submitted::from(body);
        let (company_id, employee_id) = (card.profile.company_id, card.profile.employee_id);
        let intake = &state.leads;
        let now = Instant::now();
        intake
            .per_address
            .check(&state.analytics.client_key(req), now)
            .map_err(|wait| {
                limited(
                    wait,
                    "You have sent several contacts in a short time. Please try again later.",
                )
            })?;
        let checked = check_fields(&submitted)?;
        check_human(intake, &submitted, (company_id, employee_id))?;
        // Counted once the lead would be taken: refused noise does not lock a card's visitors out.
        let mut card_key = [0u8; 16];
        card_key.copy_from_slice(employee_id.as_bytes());
        intake.per_card.check(&card_key, now).map_err(|wait| {
            limited(
                wait,
                "This card has received many contacts in a short time. Please try again later.",
            )
        })?;
        let id = store(&state, &card, &submitted, checked).await?;
        // Counted in analytics only now, once the lead's own transaction has committed, so a
        // refused or rolled-back lead never counts. The gap: should the process die between that
        // commit and this event's, the lead is kept but not counted (a failure here is logged,
        // and the visitor still gets their answer: their contact was taken).
        let counted = Card {
            company_id,
            employee_id,
        };
        if let Err(error) = state.analytics.record_lead(req, &counted).await {
            tracing::warn!(%error, %company_id, %employee_id, lead_id = %id,
                           "a stored lead was not counted in analytics");
        }
        if submitted.form {
            let page = &card.urls.page_path;
            let fragment = lead_form::SENT_FRAGMENT;
            return Ok(LeadAnswer::SeeOther(format!("{page}?lead=sent#{fragment}")));
        }
        Ok(LeadAnswer::Created(Json(LeadCreated { id })))
    }
}

/// Stores the lead and queues its emails, in one transaction of the visitor, under the
/// company's settings as they are now.
async fn store(
    state: &AppState,
    card: &super::public_cards::RenderedCard,
    submitted: &Submitted,
    checked: Checked,
) -> Result<Uuid, ApiError> {
    let (company_id, employee_id) = (card.profile.company_id, card.profile.employee_id);
    let tenant = Tenant::visitor_leaving_contact(company_id);
    let urls = &card.urls;
    // The card the visitor asked for, to attach: made once per card (its photo read and
    // scaled), before the transaction. Without it the email still links to it.
    let vcard = if submitted.send_vcard && checked.email.is_some() {
        match super::cards::vcard_of(state, &MissPayer::nobody(), card, false).await {
            Ok(vcard) => Some(vcard),
            Err(e) => {
                tracing::warn!(%company_id, %employee_id, error = %e.detail(),
                    "the card's vCard could not be made; the visitor's email only links to it");
                None
            }
        }
    } else {
        None
    };
    let file_name = vcard::file_name(&card.profile.employee_name);
    let file = vcard
        .as_ref()
        .and_then(|v| std::str::from_utf8(&v.body).ok())
        .map(|text| mail::lead::CardFile {
            vcard: text,
            file_name: &file_name,
        });
    let stored = state
        .db
        .write(&tenant, async |tx| {
            let Some(intake) = model::lead::intake(&tx, employee_id).await? else {
                return Ok(Err(ApiError::not_found(
                    super::public_cards::CARD_NOT_FOUND,
                )));
            };
            if !intake.settings.capture_enabled {
                return Ok(Err(capture_disabled()));
            }
            let consent_text = intake
                .settings
                .consent_required
                .then(|| lead_form::consent_text(&intake.settings, &intake.company_name));
            if consent_text.is_some() && !submitted.consent {
                return Ok(Err(consent_required()));
            }
            let lead = NewLead {
                id: Uuid::new_v4(),
                employee_id,
                employee_name: intake.employee_name.clone(),
                name: checked.name,
                email: checked.email,
                phone: checked.phone,
                company: checked.company,
                job_title: checked.job_title,
                note: checked.note,
                consent_given: consent_text.is_some(),
                consent_text,
                vcard_requested: submitted.send_vcard,
            };
            model::lead::create(&tx, &lead).await?;
            model::webhook::enqueue_lead(&tx, lead.id).await?;
            if let Some(to) = &intake.recipient {
                let email = mail::lead::new_lead(to, &intake.company_name, &lead);
                model::lead::enqueue_email(&tx, lead.id, &email).await?;
            }
            if let (true, Some(to)) = (lead.vcard_requested, &lead.email) {
                let email = mail::lead::card_for_visitor(
                    &lead,
                    to,
                    &intake.company_name,
                    (&urls.vcard, &urls.page),
                    file,
                );
                model::lead::enqueue_email(&tx, lead.id, &email).await?;
            }
            Ok::<_, DbError>(Ok(lead.id))
        })
        .await??;
    Ok(stored)
}

/// A refused form submission (any 4xx or 5xx of the lead route, sent as a form) becomes a short
/// page in plain words, of the same status and `Retry-After`, with a way back to the card; JSON
/// submissions keep their `{"detail", "code"}`.
pub async fn form_refusals_as_pages<E: Endpoint>(
    next: Arc<E>,
    req: Request,
) -> poem::Result<Response> {
    let form = is_lead_route(req.method(), req.uri().path())
        && req.content_type().is_some_and(|ct| {
            ct.to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    if !form {
        // Boxed: this layer wraps every request, and must not add the size of everything
        // inside it to every request's future.
        return Box::pin(next.call(req))
            .await
            .map(IntoResponse::into_response);
    }
    let card_path = req
        .uri()
        .path()
        .strip_prefix("/api")
        .and_then(|p| p.strip_suffix("/leads"))
        .unwrap_or("/")
        .to_owned();
    let response = match Box::pin(next.call(req)).await {
        Ok(response) => response.into_response(),
        Err(err) => crate::error::render(err).await,
    };
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return Ok(response);
    }
    let retry_after = response.headers().get(header::RETRY_AFTER).cloned();
    let body = response.into_body().into_bytes().await.unwrap_or_default();
    let detail = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["detail"].as_str().map(str::to_owned))
        .unwrap_or_else(|| "Your contact could not be sent. Please try again later.".to_owned());
    let page = crate::card::page::render_lead_refused(&detail, &card_path);
    let mut builder = super::http::security_headers(Response::builder())
        .status(status)
        .header(
            "Content-Security-Policy",
            page.content_security_policy.as_str(),
        )
        .content_type("text/html; charset=utf-8");
    if let Some(wait) = retry_after {
        builder = builder.header(header::RETRY_AFTER, wait);
    }
    Ok(builder.body(page.html))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lead_routes_are_recognised() {
        assert!(is_lead_route(&Method::POST, "/api/card/acme/jane/leads"));
        assert!(!is_lead_route(&Method::GET, "/api/card/acme/jane/leads"));
        assert!(!is_lead_route(&Method::POST, "/api/card/acme/leads"));
        assert!(!is_lead_route(&Method::POST, "/api/card/a/b/c/leads"));
    }

    #[test]
    fn checkboxes_tick_as_browsers_send_them() {
        for yes in ["yes", "on", "true", "1", " ON "] {
            assert!(ticked(Some(yes)), "{yes}");
        }
        for no in ["", "no", "off", "0"] {
            assert!(!ticked(Some(no)), "{no}");
        }
        assert!(!ticked(None));
    }
}
