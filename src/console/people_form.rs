//! The form that adds or edits a person: every field of the card, checked by the same rules as
//! the API's (`EmployeeField::check`, `check_social_links`), all errors at once, each next to its
//! field.

use std::collections::{BTreeMap, HashMap};

use maud::{Markup, html};

use super::{
    csrf::CsrfToken,
    form::{self, Field, FieldErrors},
};
use crate::model::employee::{
    self, Employee, EmployeeChange, EmployeeField, NewEmployee, check_social_links,
};

/// Empty rows for new social links under the existing ones.
const BLANK_LINK_ROWS: usize = 2;
/// The most link rows a form is read with (the API allows 20 links).
const MAX_LINK_ROWS: usize = 40;

/// The form's values, as typed (shown again as they were when the form has errors).
#[derive(Debug, Default, Clone)]
pub struct PersonForm {
    pub full_name: String,
    pub email: String,
    pub job_title: String,
    pub phone: String,
    pub whatsapp: String,
    pub bio: String,
    /// `(name, url)` rows, in the form's order.
    pub links: Vec<(String, String)>,
}

/// The form's values, checked.
pub struct CheckedPerson {
    pub full_name: String,
    pub email: Option<String>,
    pub job_title: Option<String>,
    pub phone: Option<String>,
    pub whatsapp: Option<String>,
    pub bio: Option<String>,
    pub social_links: BTreeMap<String, String>,
}

impl PersonForm {
    pub fn of(e: &Employee) -> Self {
        let text = |v: &Option<String>| v.clone().unwrap_or_default();
        Self {
            full_name: e.full_name.clone(),
            email: text(&e.email),
            job_title: text(&e.job_title),
            phone: text(&e.phone),
            whatsapp: text(&e.whatsapp),
            bio: text(&e.bio),
            links: e
                .social_links
                .iter()
                .map(|(n, u)| (n.clone(), u.clone()))
                .collect(),
        }
    }

    /// From a posted form; fields it lacks are empty.
    pub fn from_fields(fields: &HashMap<String, String>) -> Self {
        let get = |name: &str| fields.get(name).cloned().unwrap_or_default();
        let links = (0..MAX_LINK_ROWS)
            .map(|i| {
                (
                    get(&format!("link_name_{i}")),
                    get(&format!("link_url_{i}")),
                )
            })
            .filter(|(name, url)| !name.trim().is_empty() || !url.trim().is_empty())
            .collect();
        Self {
            full_name: get("full_name"),
            email: get("email"),
            job_title: get("job_title"),
            phone: get("phone"),
            whatsapp: get("whatsapp"),
            bio: get("bio"),
            links,
        }
    }

    /// Every field checked as the API checks it; the errors by field.
    pub fn check(&self) -> Result<CheckedPerson, FieldErrors> {
        let mut errors = FieldErrors::new();
        let mut check = |field: EmployeeField, value: &str| match field.check(value) {
            Ok(value) => value,
            Err(e) => {
                errors.add(field.name(), e.detail());
                None
            }
        };
        let full_name = check(EmployeeField::FullName, &self.full_name).unwrap_or_default();
        let email = check(EmployeeField::Email, &self.email);
        let job_title = check(EmployeeField::JobTitle, &self.job_title);
        let phone = check(EmployeeField::Phone, &self.phone);
        let whatsapp = check(EmployeeField::Whatsapp, &self.whatsapp);
        let bio = check(EmployeeField::Bio, &self.bio);

        let mut links = BTreeMap::new();
        for (i, (name, url)) in self.links.iter().enumerate() {
            let name = name.trim();
            if name.is_empty() {
                errors.add(&format!("link_name_{i}"), "Name the link (LinkedIn, say)");
                continue;
            }
            if links.contains_key(name) {
                errors.add(&format!("link_name_{i}"), "Another link has this name");
                continue;
            }
            // One link at a time, so the error lands next to its row.
            match check_social_links(BTreeMap::from([(name.to_owned(), url.as_str())])) {
                Ok(checked) => links.extend(checked),
                Err(e) if e.detail().contains("social_links name") => {
                    errors.add(&format!("link_name_{i}"), e.detail())
                }
                Err(e) => errors.add(&format!("link_url_{i}"), e.detail()),
            }
        }
        let social_links = match check_social_links(links) {
            Ok(links) => links,
            Err(e) => {
                errors.add("social_links", e.detail());
                BTreeMap::new()
            }
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(CheckedPerson {
            full_name,
            email,
            job_title,
            phone,
            whatsapp,
            bio,
            social_links,
        })
    }
}

impl CheckedPerson {
    /// A new employee of these fields (its photo is uploaded afterwards).
    pub fn into_new(self) -> NewEmployee {
        NewEmployee {
            id: uuid::Uuid::new_v4(),
            public_slug: employee::new_public_slug(&self.full_name),
            full_name: self.full_name,
            job_title: self.job_title,
            email: self.email,
            phone: self.phone,
            whatsapp: self.whatsapp,
            photo_url: None,
            bio: self.bio,
            social_links: self.social_links,
        }
    }

    /// The change that makes the employee these fields: every field the form shows is set
    /// (an empty one cleared); the photo URL, which it does not show, is kept.
    pub fn into_change(self) -> EmployeeChange {
        EmployeeChange {
            full_name: Some(self.full_name),
            job_title: Some(self.job_title),
            email: Some(self.email),
            phone: Some(self.phone),
            whatsapp: Some(self.whatsapp),
            photo_url: None,
            bio: Some(self.bio),
            social_links: Some(self.social_links),
        }
    }
}

/// The form's fields, for rendering.
const SHOWN: [&str; 7] = [
    "full_name",
    "email",
    "job_title",
    "phone",
    "whatsapp",
    "bio",
    "social_links",
];

/// The form: posts to `action`, its button says `submit`.
pub fn render(
    action: &str,
    submit: &str,
    values: &PersonForm,
    errors: &FieldErrors,
    csrf: &CsrfToken,
) -> Markup {
    let link_rows = values.links.len() + BLANK_LINK_ROWS;
    let mut shown: Vec<String> = SHOWN.iter().map(|s| (*s).to_owned()).collect();
    for i in 0..link_rows {
        shown.push(format!("link_name_{i}"));
        shown.push(format!("link_url_{i}"));
    }
    let shown: Vec<&str> = shown.iter().map(String::as_str).collect();
    let blank = (String::new(), String::new());
    html! {
        form hx-boost="true" method="post" action=(action) novalidate {
            (form::csrf_field(csrf))
            (errors.summary(&shown))
            (Field::new("full_name", "Full name").value(&values.full_name).required()
                .autocomplete("off").render(errors))
            (Field::new("email", "Email").kind("email").value(&values.email)
                .autocomplete("off").render(errors))
            (Field::new("job_title", "Job title").value(&values.job_title).render(errors))
            (Field::new("phone", "Phone").kind("tel").value(&values.phone)
                .hint("With the country code, like +44 20 7946 0958").render(errors))
            (Field::new("whatsapp", "WhatsApp").kind("tel").value(&values.whatsapp)
                .hint("The number people message, with the country code").render(errors))
            (Field::new("bio", "Bio").kind("textarea").value(&values.bio)
                .hint("A few lines about the person, up to 2,000 characters").render(errors))
            fieldset class="links" {
                legend { "Social links" }
                p class="hint" { "A name (LinkedIn, GitHub…) and the web address. Leave a row empty to remove it." }
                @if let Some(error) = errors.get("social_links") {
                    p class="error" role="alert" { (error) }
                }
                @for i in 0..link_rows {
                    @let (name, url) = values.links.get(i).unwrap_or(&blank);
                    @let name_field = format!("link_name_{i}");
                    @let url_field = format!("link_url_{i}");
                    @let number = (i + 1).to_string();
                    @let name_label = format!("Link {number} name");
                    @let url_label = format!("Link {number} address");
                    div class="link-row" {
                        (Field::new(&name_field, &name_label).value(name).render(errors))
                        (Field::new(&url_field, &url_label).kind("url").value(url).render(errors))
                    }
                }
            }
            button type="submit" { (submit) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_lands_next_to_its_field() {
        let fields = HashMap::from([
            ("full_name".to_owned(), "  ".to_owned()),
            ("email".to_owned(), "not-an-email".to_owned()),
            ("link_name_0".to_owned(), "LinkedIn".to_owned()),
            ("link_url_0".to_owned(), "javascript:alert(1)".to_owned()),
            ("link_url_1".to_owned(), "https://example.com".to_owned()),
        ]);
        let errors = PersonForm::from_fields(&fields).check().err().unwrap();
        assert!(errors.get("full_name").is_some());
        assert!(errors.get("email").is_some());
        assert!(errors.get("link_url_0").is_some());
        assert!(errors.get("link_name_1").is_some());
    }

    #[test]
    fn empty_rows_are_no_links_and_empty_fields_clear() {
        let fields = HashMap::from([
            ("full_name".to_owned(), "Grace Hopper".to_owned()),
            ("link_name_0".to_owned(), "GitHub".to_owned()),
            (
                "link_url_0".to_owned(),
                "https://github.com/grace".to_owned(),
            ),
        ]);
        let checked = PersonForm::from_fields(&fields).check().ok().unwrap();
        assert_eq!(checked.social_links.len(), 1);
        let change = checked.into_change();
        assert_eq!(change.email, Some(None));
        assert_eq!(change.photo_url, None);
    }
}
