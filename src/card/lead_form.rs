//! The card page's "Share your contact" form: a plain form POST (no JavaScript needed) to
//! `POST /api/card/{company}/{employee}/leads`, answered with `303` to the page's thank-you
//! state (`?lead=sent#lead-sent`, shown by CSS `:target`, so the cached page needs no variant).
//!
//! Its spam defences are invisible to people: a honeypot field (off-screen, out of the tab
//! order and hidden from assistive technology, so only a program fills it) and the "form
//! started at" token ([`super::lead_token`]), put in by the page's handler at each response in
//! place of [`STARTED_PLACEHOLDER`].

use maud::{Markup, html};

use crate::model::company::LeadSettings;

/// Where the handler puts the form's start token in the rendered page (it occurs once).
pub const STARTED_PLACEHOLDER: &str = "__lead_form_started__";
/// The honeypot's field name: a field programs fill and people never see.
pub const HONEYPOT_FIELD: &str = "website";
/// The fragment of the thank-you state.
pub const SENT_FRAGMENT: &str = "lead-sent";

/// What the form asks for on one card.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeadForm {
    /// `/api/card/{company}/{employee}/leads`.
    pub action: String,
    /// The consent to ask for (required to send), when the company asks for it.
    pub consent: Option<String>,
    pub privacy_policy_url: Option<String>,
}

impl LeadForm {
    /// The form of a card whose company has `settings`; `None` when it takes no leads.
    pub fn of(settings: &LeadSettings, company_name: &str, action: String) -> Option<Self> {
        settings.capture_enabled.then(|| Self {
            action,
            consent: settings
                .consent_required
                .then(|| consent_text(settings, company_name)),
            privacy_policy_url: settings
                .privacy_policy_url
                .clone()
                .filter(|url| super::is_web_link(url)),
        })
    }
}

/// The words of the consent a card asks for: the company's own, or a plain default.
pub fn consent_text(settings: &LeadSettings, company_name: &str) -> String {
    match settings.consent_text.as_deref().map(str::trim) {
        Some(text) if !text.is_empty() => text.to_owned(),
        _ => format!(
            "I agree that {} may store these details and contact me.",
            company_name.trim()
        ),
    }
}

/// The page's styles for the form (part of the page's one `<style>`, allowed by its hash).
pub const STYLE: &str = "\
.lead{margin:16px 20px 0;padding:20px 0 8px;border-top:1px solid var(--line)}
.lead form{display:grid;gap:6px;margin-top:12px}
.lead label{font-weight:600;font-size:.95rem;margin-top:8px}
.lead input,.lead textarea{width:100%;min-height:48px;padding:10px 12px;border:1px solid var(--muted);border-radius:10px;background:var(--card);color:var(--text);font:inherit}
.lead textarea{min-height:96px;resize:vertical}
.lead .check{display:flex;gap:10px;align-items:flex-start;margin-top:10px;font-weight:400}
.lead .check input{flex:none;width:24px;min-height:24px;height:24px;margin:2px 0 0}
.lead .hint{margin:4px 0 0;color:var(--muted);font-size:.9rem}
.lead .btn{justify-content:center;margin-top:14px}
.lead a{color:inherit}
.hp{position:absolute;left:-10000px;top:auto;width:1px;height:1px;overflow:hidden}
.sent{display:none;margin:12px 0 0;padding:14px 16px;border-radius:12px;background:var(--btn);font-weight:600}
.sent:target{display:block}
.sent:target+form{display:none}
.lead .err{margin:12px 0 0;padding:12px 14px;border:2px solid currentColor;border-radius:12px;font-weight:600}
.lead .btn:disabled{cursor:progress;filter:saturate(.6)}
.lead input:focus-visible,.lead textarea:focus-visible,.lead .err:focus-visible{outline:3px solid var(--focus);outline-offset:2px}
";

/// The form's section of the card page of `person` (the card's name).
pub fn section(form: &LeadForm, person: &str) -> Markup {
    html! {
        section class="lead" id="lead" aria-labelledby="lead-title" {
            "\n"
            h2 id="lead-title" { "Share your contact" } "\n"
            p class="sent" id=(SENT_FRAGMENT) role="status" tabindex="-1" {
                "Thank you! " (person) " has your contact now."
            }
            "\n"
            form method="post" action=(form.action) {
                "\n"
                p class="hint" id="lead-hint" {
                    "Leave your name and an email or a phone number. Fields marked * are required."
                }
                "\n"
                label for="lead-name" { "Name " span aria-hidden="true" { "*" } }
                input id="lead-name" name="name" type="text" required maxlength="200"
                    autocomplete="name";
                "\n"
                label for="lead-email" { "Email" }
                input id="lead-email" name="email" type="email" maxlength="254"
                    autocomplete="email" aria-describedby="lead-hint";
                "\n"
                label for="lead-phone" { "Phone" }
                input id="lead-phone" name="phone" type="tel" maxlength="40" autocomplete="tel"
                    aria-describedby="lead-hint";
                "\n"
                label for="lead-company" { "Company" }
                input id="lead-company" name="company" type="text" maxlength="200"
                    autocomplete="organization";
                "\n"
                label for="lead-job-title" { "Job title" }
                input id="lead-job-title" name="job_title" type="text" maxlength="200"
                    autocomplete="organization-title";
                "\n"
                label for="lead-note" { "Note" }
                textarea id="lead-note" name="note" maxlength="2000" rows="3" {}
                "\n"
                label class="check" for="lead-send-vcard" {
                    input id="lead-send-vcard" name="send_vcard" type="checkbox" value="yes";
                    span { "Email me " (person) "\u{2019}s contact card" }
                }
                "\n"
                @if let Some(consent) = &form.consent {
                    label class="check" for="lead-consent" {
                        input id="lead-consent" name="consent" type="checkbox" value="yes" required;
                        span {
                            (consent) " " span aria-hidden="true" { "*" }
                            @if let Some(url) = &form.privacy_policy_url {
                                " " a href=(url) rel="noopener" target="_blank" { "Privacy policy" }
                            }
                        }
                    }
                    "\n"
                } @else if let Some(url) = &form.privacy_policy_url {
                    p class="hint" { a href=(url) rel="noopener" target="_blank" { "Privacy policy" } }
                    "\n"
                }
                div class="hp" aria-hidden="true" {
                    label for="lead-website" { "Leave this field empty" }
                    input id="lead-website" name=(HONEYPOT_FIELD) type="text" tabindex="-1"
                        autocomplete="off";
                }
                "\n"
                input type="hidden" name="started" value=(STARTED_PLACEHOLDER);
                "\n"
                // Filled by the page's script when a refusal comes back (none without it).
                p class="err" id="lead-error" role="alert" tabindex="-1" hidden {}
                "\n"
                button type="submit" class="btn primary" id="lead-send" { "Send my contact" }
                "\n"
            }
            "\n"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> LeadSettings {
        LeadSettings {
            capture_enabled: true,
            consent_required: false,
            consent_text: None,
            privacy_policy_url: None,
            retention_days: None,
        }
    }

    #[test]
    fn the_form_follows_the_company_settings() {
        let action = || "/api/card/acme/jane/leads".to_owned();
        assert!(
            LeadForm::of(
                &LeadSettings {
                    capture_enabled: false,
                    ..settings()
                },
                "Acme",
                action()
            )
            .is_none()
        );
        let plain = LeadForm::of(&settings(), "Acme", action()).unwrap();
        assert_eq!(plain.consent, None);
        let html = section(&plain, "Jane").into_string();
        assert!(html.contains("name=\"website\""));
        assert!(html.contains(STARTED_PLACEHOLDER));
        assert!(!html.contains("name=\"consent\""));

        let asked = LeadSettings {
            consent_required: true,
            privacy_policy_url: Some("javascript:alert(1)".into()),
            ..settings()
        };
        let form = LeadForm::of(&asked, "Acme <b>", action()).unwrap();
        assert_eq!(form.privacy_policy_url, None, "only web links become links");
        let html = section(&form, "Jane").into_string();
        assert!(html.contains("Acme &lt;b&gt; may store these details"));
        assert!(html.contains("name=\"consent\""));
    }
}
