//! The email the admins of a company get when one of its webhooks was disabled for failing.

use maud::{DOCTYPE, html};

use crate::model::outbox::Email;

/// "Your webhook to `url` was disabled": every delivery to it failed for `window` (e.g. "24
/// hours"); `last_error` is what the last attempt got.
pub fn webhook_disabled(
    to: &str,
    company_name: &str,
    url: &str,
    window: &str,
    last_error: &str,
) -> Email {
    let subject = format!("A webhook of {company_name} was disabled");
    let text = format!(
        "Hello,\n\n\
         CallingCard disabled the webhook of {company_name} that sends events to\n\n\
         {url}\n\n\
         because every delivery to it failed for {window}. The last attempt got: {last_error}\n\n\
         Events that happen while it is disabled are not sent to it. Once the endpoint works \
         again, you can send it a test event and enable it again from the webhook settings \
         (PUT /api/company/{{id}}/webhooks/{{webhook_id}} with \"enabled\": true).\n"
    );
    let html = html! {
        (DOCTYPE)
        html lang="en" {
            head { meta charset="utf-8"; title { (subject) } }
            body style="font-family:system-ui,sans-serif;color:#111827;line-height:1.5" {
                p { "Hello," }
                p {
                    "CallingCard disabled the webhook of " strong { (company_name) }
                    " that sends events to " code { (url) } " because every delivery to it failed for "
                    (window) "."
                }
                p { "The last attempt got: " code { (last_error) } }
                p {
                    "Events that happen while it is disabled are not sent to it. Once the endpoint "
                    "works again, you can send it a test event and enable it again from the webhook settings."
                }
            }
        }
    };
    Email {
        to: to.to_owned(),
        from_name: company_name.to_owned(),
        subject,
        text,
        html: html.into_string(),
        attachments: Vec::new(),
    }
}
