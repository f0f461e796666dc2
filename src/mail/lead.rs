//! The emails a lead causes: the employee hears of it, and a visitor who asked gets the card.
//! Plain text and HTML (maud escapes every value: a lead is a stranger's text), in the company's
//! name.

use maud::html;

use super::message::{button, page};
use crate::model::{
    lead::NewLead,
    outbox::{Email, EmailAttachment},
};

/// To the employee whose card it was: who left their contact, and how to reach them.
pub fn new_lead(to: &str, company_name: &str, lead: &NewLead) -> Email {
    let subject = format!("New contact from your card: {}", lead.name);
    let rows: Vec<(&str, &str)> = [
        ("Name", Some(lead.name.as_str())),
        ("Email", lead.email.as_deref()),
        ("Phone", lead.phone.as_deref()),
        ("Company", lead.company.as_deref()),
        ("Job title", lead.job_title.as_deref()),
        ("Note", lead.note.as_deref()),
    ]
    .into_iter()
    .filter_map(|(label, value)| value.map(|v| (label, v)))
    .collect();
    let mut text = format!(
        "Hello {},\n\nSomeone who opened your card left their contact:\n\n",
        lead.employee_name
    );
    for (label, value) in &rows {
        text.push_str(&format!("{label}: {value}\n"));
    }
    if lead.consent_given {
        text.push_str("\nThey agreed to be contacted.\n");
    }
    if lead.vcard_requested {
        text.push_str("They asked for your card by email; it is on its way to them.\n");
    }
    let html = page(
        &subject,
        html! {
            p { "Hello " (lead.employee_name) "," }
            p { "Someone who opened your card left their contact:" }
            table {
                @for (label, value) in &rows {
                    tr {
                        th style="text-align:left;padding:2px 12px 2px 0;vertical-align:top" { (label) }
                        td style="white-space:pre-wrap" { (value) }
                    }
                }
            }
            @if lead.consent_given { p { "They agreed to be contacted." } }
            @if lead.vcard_requested {
                p { "They asked for your card by email; it is on its way to them." }
            }
        },
    );
    Email {
        to: to.to_owned(),
        from_name: company_name.to_owned(),
        subject,
        text,
        html: html.into_string(),
        attachments: Vec::new(),
    }
}

/// The card a visitor asked for, to attach: its vCard 3.0 text and file name.
#[derive(Clone, Copy, Debug)]
pub struct CardFile<'a> {
    pub vcard: &'a str,
    pub file_name: &'a str,
}

/// To the visitor who asked for the card: the card's vCard attached (with its photo), and the
/// links to it and to the card page for mail programs that hide attachments.
pub fn card_for_visitor(
    lead: &NewLead,
    to: &str,
    company_name: &str,
    (vcard_url, page_url): (&str, &str),
    file: Option<CardFile<'_>>,
) -> Email {
    let name = &lead.employee_name;
    let subject = format!("{name}'s contact card");
    let attached = if file.is_some() {
        "It is attached to this email: open the file to add it to your contacts. "
    } else {
        ""
    };
    let text = format!(
        "Hello {visitor},\n\n\
         You asked for the contact card of {name} ({company_name}). {attached}You can also \
         save it from this link:\n\n\
         {vcard_url}\n\n\
         The card itself: {page_url}\n\n\
         You get this email because you left your address on that card. No other email \
         follows.\n",
        visitor = lead.name,
    );
    let html = page(
        &subject,
        html! {
            p { "Hello " (lead.name) "," }
            p {
                "You asked for the contact card of " strong { (name) } " (" (company_name) "). "
                (attached)
            }
            (button(vcard_url, "Save the contact"))
            p { "Or open the card: " a href=(page_url) { (page_url) } }
            p.small {
                "You get this email because you left your address on that card. No other email follows."
            }
        },
    );
    Email {
        to: to.to_owned(),
        from_name: company_name.to_owned(),
        subject,
        text,
        html: html.into_string(),
        attachments: file
            .map(|f| EmailAttachment {
                file_name: f.file_name.to_owned(),
                content_type: "text/vcard; charset=utf-8".to_owned(),
                content: f.vcard.to_owned(),
            })
            .into_iter()
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    fn lead() -> NewLead {
        NewLead {
            id: Uuid::new_v4(),
            employee_id: Uuid::new_v4(),
            employee_name: "Jane Smith".into(),
            name: "Ada <script>".into(),
            email: Some("ada@example.com".into()),
            phone: None,
            company: Some("Tools & Co".into()),
            job_title: None,
            note: Some("Call me".into()),
            consent_text: None,
            consent_given: false,
            vcard_requested: true,
        }
    }

    #[test]
    fn a_lead_reaches_the_employee_escaped() {
        let email = new_lead("jane@acme.example", "Acme", &lead());
        assert_eq!(email.to, "jane@acme.example");
        assert!(email.text.contains("Email: ada@example.com"));
        assert!(!email.text.contains("Phone:"));
        assert!(email.html.contains("Ada &lt;script&gt;"));
        assert!(!email.html.contains("<script>"));
    }

    #[test]
    fn the_visitor_gets_the_card_attached_and_linked() {
        let email = card_for_visitor(
            &lead(),
            "ada@example.com",
            "Acme",
            (
                "https://x.example/api/card/acme/jane/vcard",
                "https://x.example/card/acme/jane",
            ),
            Some(CardFile {
                vcard: "BEGIN:VCARD\r\nEND:VCARD\r\n",
                file_name: "Jane Smith.vcf",
            }),
        );
        assert_eq!(email.attachments.len(), 1);
        assert_eq!(email.attachments[0].file_name, "Jane Smith.vcf");
        assert!(email.text.contains("It is attached"));
        assert!(
            email
                .text
                .contains("https://x.example/api/card/acme/jane/vcard")
        );
        assert_eq!(email.subject, "Jane Smith's contact card");
    }
}
