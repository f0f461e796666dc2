//! `GET|POST /app/leads/settings`: the company's lead capture, as the fields of
//! `PUT /api/company/{id}` set it (`lead_capture_enabled`, `lead_consent_required`,
//! `lead_consent_text`, `privacy_policy_url`, `lead_retention_days`). Admins only. A plain form:
//! an unticked box is not sent, so it means off.

use std::collections::HashMap;

use maud::html;
use poem::{
    Request, Response, handler,
    http::StatusCode,
    web::{Data, Query},
};
use serde::Deserialize;

use super::{
    branding::save_company,
    error::ConsoleError,
    form::{self, ConsoleForm, Field, FieldErrors},
    layout::{self, Section, Shell},
    session::{self, ConsoleUser, SignedIn},
    teammates::admin_only,
};
use crate::{
    api::{
        AppState,
        companies::{MAX_CONSENT_TEXT, MAX_LEAD_RETENTION_DAYS},
    },
    card::lead_form,
    error::ApiError,
    model::{
        self,
        company::{Company, CompanyChange, LeadSettingsChange},
    },
    validate,
};

/// The form's values, as typed.
#[derive(Debug, Default, Clone)]
struct SettingsForm {
    capture_enabled: bool,
    consent_required: bool,
    consent_text: String,
    privacy_policy_url: String,
    retention_days: String,
}

impl SettingsForm {
    fn of(company: &Company) -> Self {
        let leads = &company.leads;
        Self {
            capture_enabled: leads.capture_enabled,
            consent_required: leads.consent_required,
            consent_text: leads.consent_text.clone().unwrap_or_default(),
            privacy_policy_url: leads.privacy_policy_url.clone().unwrap_or_default(),
            retention_days: leads
                .retention_days
                .map(|d| d.to_string())
                .unwrap_or_default(),
        }
    }

    fn from_fields(fields: &HashMap<String, String>) -> Self {
        let get = |name: &str| fields.get(name).cloned().unwrap_or_default();
        Self {
            capture_enabled: fields.contains_key("lead_capture_enabled"),
            consent_required: fields.contains_key("lead_consent_required"),
            consent_text: get("lead_consent_text"),
            privacy_policy_url: get("privacy_policy_url"),
            retention_days: get("lead_retention_days"),
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
        let consent_text = keep(
            validate::optional_multiline_text(
                "lead_consent_text",
                Some(&self.consent_text),
                MAX_CONSENT_TEXT,
            ),
            "lead_consent_text",
        );
        let privacy_policy_url = keep(
            validate::optional_http_url("privacy_policy_url", Some(&self.privacy_policy_url)),
            "privacy_policy_url",
        );
        let retention = self.retention_days.trim();
        let retention_days = if retention.is_empty() {
            None
        } else {
            match retention.parse::<i32>() {
                Ok(days) if (1..=MAX_LEAD_RETENTION_DAYS).contains(&i64::from(days)) => Some(days),
                _ => {
                    errors.add(
                        "lead_retention_days",
                        format!(
                            "Enter a number of days from 1 to {MAX_LEAD_RETENTION_DAYS}, or \
                             leave it empty to keep leads until they are erased"
                        ),
                    );
                    None
                }
            }
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(CompanyChange {
            leads: LeadSettingsChange {
                capture_enabled: Some(self.capture_enabled),
                consent_required: Some(self.consent_required),
                consent_text: Some(consent_text),
                privacy_policy_url: Some(privacy_policy_url),
                retention_days: Some(retention_days),
            },
            ..Default::default()
        })
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct Notice {
    saved: Option<String>,
}

async fn company(state: &AppState, user: &ConsoleUser) -> Result<Company, ConsoleError> {
    let company_id = user.caller().company_id();
    Ok(state
        .db
        .read(&user.caller().tenant(), async |tx| {
            model::company::get(&tx, company_id).await
        })
        .await?
        .ok_or_else(|| ApiError::not_found("Company not found"))?)
}

/// `GET /app/leads/settings`.
#[handler]
pub async fn show(
    state: Data<&AppState>,
    req: &Request,
    SignedIn(user): SignedIn,
    Query(notice): Query<Notice>,
) -> Result<Response, ConsoleError> {
    admin_only(&user)?;
    let company = company(&state, &user).await?;
    let values = SettingsForm::of(&company);
    Ok(render(
        req,
        &user,
        &company,
        &values,
        &FieldErrors::new(),
        notice.saved.is_some(),
    ))
}

/// `POST /app/leads/settings`.
#[handler]
pub async fn save(
    state: Data<&AppState>,
    req: &Request,
    SignedIn(user): SignedIn,
    ConsoleForm(fields): ConsoleForm<HashMap<String, String>>,
) -> Result<Response, ConsoleError> {
    admin_only(&user)?;
    let values = SettingsForm::from_fields(&fields);
    let errors = match values.check() {
        Ok(change) => match save_company(&state, req, &user, change).await? {
            Ok(()) => return Ok(session::see_other(req, "/app/leads/settings?saved=1")),
            Err(errors) => errors,
        },
        Err(errors) => errors,
    };
    let company = company(&state, &user).await?;
    Ok(render(req, &user, &company, &values, &errors, false))
}

fn render(
    req: &Request,
    user: &ConsoleUser,
    company: &Company,
    values: &SettingsForm,
    errors: &FieldErrors,
    saved: bool,
) -> Response {
    let token = form::token(req);
    let shell = Shell {
        title: "Lead settings",
        user: Some(user),
        csrf: &token,
        section: Some(Section::Leads),
    };
    let default_consent = lead_form::consent_text(
        &model::company::LeadSettings {
            consent_text: None,
            ..company.leads.clone()
        },
        &company.name,
    );
    let fields = [
        "lead_consent_text",
        "privacy_policy_url",
        "lead_retention_days",
    ];
    let main = html! {
        p { a href="/app/leads" { "← Leads" } }
        h1 { "Lead settings" }
        @if saved {
            div class="alert ok" role="status" { p { "Lead settings saved." } }
        }
        form class="panel" hx-boost="true" method="post" action="/app/leads/settings" novalidate {
            (form::csrf_field(&token))
            (errors.summary(&fields))
            fieldset class="switches" {
                legend { "On the cards" }
                div class="check" {
                    input type="checkbox" id="f-lead_capture_enabled" name="lead_capture_enabled"
                        value="on" checked[values.capture_enabled];
                    label for="f-lead_capture_enabled" { "Show the “Share your contact” form on every card" }
                }
                div class="check" {
                    input type="checkbox" id="f-lead_consent_required" name="lead_consent_required"
                        value="on" checked[values.consent_required];
                    label for="f-lead_consent_required" { "Ask for consent, required to share a contact" }
                }
            }
            (Field::new("lead_consent_text", "Consent text").kind("textarea")
                .value(&values.consent_text)
                .hint(&format!("Up to {MAX_CONSENT_TEXT} characters. Empty: “{default_consent}”"))
                .render(errors))
            (Field::new("privacy_policy_url", "Privacy policy").kind("url")
                .value(&values.privacy_policy_url)
                .hint("An https:// address, linked beside the consent and under the form.")
                .render(errors))
            (Field::new("lead_retention_days", "Keep leads for (days)").kind("number")
                .value(&values.retention_days)
                .hint("Older leads are erased automatically. Empty: kept until you erase them.")
                .render(errors))
            button type="submit" { "Save lead settings" }
        }
    };
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    layout::page_with_status(status, &shell, main)
}
