//! Console forms: the body of a form post (its CSRF token checked before anything is read from
//! it), and fields that show their label, hint and error next to them.

use std::collections::BTreeMap;

use maud::{Markup, html};
use poem::{FromRequest, Request, RequestBody};
use serde::de::DeserializeOwned;

use super::{
    csrf::{self, CsrfToken, Refusal},
    error::ConsoleError,
};
use crate::error::ApiError;

/// A form post (`application/x-www-form-urlencoded`) whose `_csrf` field (or `X-CSRF-Token`
/// header, from htmx) is this browser's token. Fields the type does not name are ignored.
pub struct ConsoleForm<T>(pub T);

impl<'a, T: DeserializeOwned> FromRequest<'a> for ConsoleForm<T> {
    async fn from_request(req: &'a Request, body: &mut RequestBody) -> poem::Result<Self> {
        // The body is bounded by the service's body limit before it gets here.
        let bytes = body.take()?.into_bytes().await?;
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes)
            .map_err(|e| ConsoleError::BadForm(e.to_string()))?;
        let presented = pairs
            .iter()
            .find(|(name, _)| name == csrf::FIELD)
            .map(|(_, value)| value.as_str())
            .or_else(|| csrf::from_header(req));
        verify_token(req, presented)?;
        let value = serde_urlencoded::from_bytes(&bytes)
            .map_err(|e| ConsoleError::BadForm(e.to_string()))?;
        Ok(ConsoleForm(value))
    }
}

/// Checks a token a handler read itself (from a multipart form, say) against this browser's.
pub fn verify_token(req: &Request, presented: Option<&str>) -> Result<(), ConsoleError> {
    let token = req
        .extensions()
        .get::<CsrfToken>()
        .ok_or(ConsoleError::Csrf(Refusal::Token))?;
    match presented {
        Some(presented) if token.matches(presented) => Ok(()),
        _ => Err(ConsoleError::Csrf(Refusal::Token)),
    }
}

/// The browser's CSRF token, for rendering forms (set by the console's middleware).
pub fn token(req: &Request) -> CsrfToken {
    req.extensions()
        .get::<CsrfToken>()
        .cloned()
        .unwrap_or_else(CsrfToken::new_random)
}

/// The hidden field every console form carries.
pub fn csrf_field(token: &CsrfToken) -> Markup {
    html! { input type="hidden" name=(csrf::FIELD) value=(token.as_str()); }
}

/// Errors of a form, by field name; `""` for the form as a whole.
#[derive(Debug, Default, Clone)]
pub struct FieldErrors(BTreeMap<String, String>);

impl FieldErrors {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0
            .entry(field.to_owned())
            .or_insert_with(|| message.into());
    }

    /// An error of the model or the shared flows: next to the field it names (validation
    /// errors name theirs in backticks, `` `email` must be … ``), else for the whole form.
    pub fn from_api(error: &ApiError) -> Self {
        let mut errors = Self::new();
        errors.add(field_of(error.detail()).unwrap_or(""), error.detail());
        errors
    }

    pub fn get(&self, field: &str) -> Option<&str> {
        self.0.get(field).map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The form-wide error (or an error about a field the form does not show), as an alert
    /// at the top of the form.
    pub fn summary(&self, shown: &[&str]) -> Markup {
        let others: Vec<&str> = self
            .0
            .iter()
            .filter(|(field, _)| !shown.contains(&field.as_str()))
            .map(|(_, message)| message.as_str())
            .collect();
        html! {
            @if !others.is_empty() {
                div class="alert error" role="alert" {
                    @for message in others { p { (message) } }
                }
            }
        }
    }
}

/// The field a validation detail names: its first `` `name` ``.
fn field_of(detail: &str) -> Option<&str> {
    let start = detail.find('`')? + 1;
    let len = detail[start..].find('`')?;
    let field = &detail[start..start + len];
    field
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
        .then_some(field)
}

/// One labelled input with its hint and error, wired for screen readers
/// (`aria-describedby`, `aria-invalid`).
pub struct Field<'a> {
    pub name: &'a str,
    pub label: &'a str,
    pub kind: &'a str,
    pub value: &'a str,
    pub hint: Option<&'a str>,
    pub required: bool,
    pub autocomplete: Option<&'a str>,
}

impl<'a> Field<'a> {
    pub fn new(name: &'a str, label: &'a str) -> Self {
        Self {
            name,
            label,
            kind: "text",
            value: "",
            hint: None,
            required: false,
            autocomplete: None,
        }
    }

    pub fn kind(mut self, kind: &'a str) -> Self {
        self.kind = kind;
        self
    }

    pub fn value(mut self, value: &'a str) -> Self {
        self.value = value;
        self
    }

    pub fn hint(mut self, hint: &'a str) -> Self {
        self.hint = Some(hint);
        self
    }

    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    pub fn autocomplete(mut self, autocomplete: &'a str) -> Self {
        self.autocomplete = Some(autocomplete);
        self
    }

    pub fn render(&self, errors: &FieldErrors) -> Markup {
        let id = format!("f-{}", self.name);
        let hint_id = format!("{id}-hint");
        let error_id = format!("{id}-error");
        let error = errors.get(self.name);
        let described: Vec<&str> = [
            self.hint.map(|_| hint_id.as_str()),
            error.map(|_| error_id.as_str()),
        ]
        .into_iter()
        .flatten()
        .collect();
        let described = (!described.is_empty()).then(|| described.join(" "));
        html! {
            div class={ "field" @if error.is_some() { " invalid" } } {
                label for=(id) {
                    (self.label)
                    @if !self.required { " " span class="optional" { "(optional)" } }
                }
                @if let Some(hint) = self.hint { p class="hint" id=(hint_id) { (hint) } }
                @if self.kind == "textarea" {
                    textarea id=(id) name=(self.name) required[self.required]
                        aria-describedby=[described.as_deref()]
                        aria-invalid=[error.map(|_| "true")] { (self.value) }
                } @else {
                    input id=(id) name=(self.name) type=(self.kind) value=(self.value)
                        required[self.required] autocomplete=[self.autocomplete]
                        aria-describedby=[described.as_deref()]
                        aria-invalid=[error.map(|_| "true")];
                }
                @if let Some(error) = error { p class="error" id=(error_id) { (error) } }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_errors_land_next_to_the_field_they_name() {
        let error = ApiError::invalid("`email` must be an email address");
        let errors = FieldErrors::from_api(&error);
        assert_eq!(
            errors.get("email"),
            Some("`email` must be an email address")
        );
        let error = ApiError::invalid("Something about the whole form");
        assert!(FieldErrors::from_api(&error).get("").is_some());
    }

    #[test]
    fn a_field_with_an_error_says_so_to_screen_readers() {
        let mut errors = FieldErrors::new();
        errors.add("email", "Enter an email <address>");
        let html = Field::new("email", "Email")
            .kind("email")
            .required()
            .render(&errors);
        let html = html.into_string();
        assert!(html.contains(r#"aria-invalid="true""#), "{html}");
        assert!(
            html.contains(r#"aria-describedby="f-email-error""#),
            "{html}"
        );
        assert!(html.contains("Enter an email &lt;address&gt;"), "{html}");
        assert!(html.contains(r#"<label for="f-email">"#), "{html}");
    }
}
