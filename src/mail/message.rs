//! The account emails, in plain English: plain text and HTML (maud escapes every value), in
//! the company's name.

use maud::{DOCTYPE, Markup, html};

use crate::model::outbox::Email;

/// Who an account email is for.
#[derive(Debug, Clone)]
pub struct Recipient<'a> {
    pub email: &'a str,
    pub full_name: &'a str,
    pub company_name: &'a str,
}

/// `{base}/app/verify-email?token=…`: confirms the address of a new account.
pub fn verify_email(recipient: &Recipient<'_>, link: &str) -> Email {
    let subject = format!("Confirm your email for {}", recipient.company_name);
    let text = format!(
        "Hello {name},\n\n\
         Please confirm that {email} is your email address for {company} on CallingCard by \
         opening this link:\n\n\
         {link}\n\n\
         The link works once and for 48 hours. If you did not sign up, you can ignore this \
         email.\n",
        name = recipient.full_name,
        email = recipient.email,
        company = recipient.company_name,
    );
    let html = page(
        &subject,
        html! {
            p { "Hello " (recipient.full_name) "," }
            p {
                "Please confirm that " strong { (recipient.email) } " is your email address for "
                (recipient.company_name) " on CallingCard."
            }
            (button(link, "Confirm my email"))
            p { "Or copy this link into your browser:" br; a href=(link) { (link) } }
            p.small { "The link works once and for 48 hours. If you did not sign up, you can ignore this email." }
        },
    );
    email(recipient, subject, text, html)
}

/// `{base}/app/reset-password?token=…`: sets a new password.
pub fn reset_password(recipient: &Recipient<'_>, link: &str) -> Email {
    let subject = format!("Reset your password for {}", recipient.company_name);
    let text = format!(
        "Hello {name},\n\n\
         Someone asked to reset the password of {email} for {company} on CallingCard. To choose \
         a new password, open this link:\n\n\
         {link}\n\n\
         The link works once and for one hour. Setting a new password signs you out everywhere. \
         If you did not ask for this, you can ignore this email: your password stays as it is.\n",
        name = recipient.full_name,
        email = recipient.email,
        company = recipient.company_name,
    );
    let html = page(
        &subject,
        html! {
            p { "Hello " (recipient.full_name) "," }
            p {
                "Someone asked to reset the password of " strong { (recipient.email) } " for "
                (recipient.company_name) " on CallingCard."
            }
            (button(link, "Choose a new password"))
            p { "Or copy this link into your browser:" br; a href=(link) { (link) } }
            p.small {
                "The link works once and for one hour. Setting a new password signs you out everywhere. "
                "If you did not ask for this, you can ignore this email: your password stays as it is."
            }
        },
    );
    email(recipient, subject, text, html)
}

/// `{base}/app/accept-invitation?token=…`: an invitation to join `company_name` as `role`
/// ("an admin", "a teammate"), its link valid `until`.
pub fn invitation(to: &str, company_name: &str, role: &str, until: &str, link: &str) -> Email {
    let subject = format!("Join {company_name} on CallingCard");
    let text = format!(
        "You are invited to join {company_name} on CallingCard as {role}.\n\n\
         Choose your password and sign in here (the link works once, until {until}):\n\
         {link}\n\n\
         If you did not expect this invitation, you can ignore this email.\n"
    );
    let html = page(
        &subject,
        html! {
            p { "You are invited to join " strong { (company_name) } " on CallingCard as " (role) "." }
            (button(link, "Choose your password and sign in"))
            p { "The link works once, until " (until) ". If the button does not work, open this address:" br; a href=(link) { (link) } }
            p.small { "If you did not expect this invitation, you can ignore this email." }
        },
    );
    let recipient = Recipient {
        email: to,
        full_name: "",
        company_name,
    };
    email(&recipient, subject, text, html)
}

fn email(recipient: &Recipient<'_>, subject: String, text: String, html: Markup) -> Email {
    Email {
        to: recipient.email.to_owned(),
        from_name: recipient.company_name.to_owned(),
        subject,
        text,
        html: html.into_string(),
        attachments: Vec::new(),
    }
}

pub(super) fn button(link: &str, label: &str) -> Markup {
    html! {
        p {
            a href=(link) style="display:inline-block;padding:10px 18px;background:#1f2937;color:#ffffff;text-decoration:none;border-radius:6px" {
                (label)
            }
        }
    }
}

pub(super) fn page(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                style { ".small{color:#6b7280;font-size:13px}" }
            }
            body style="font-family:-apple-system,Segoe UI,Roboto,Helvetica,Arial,sans-serif;color:#111827;line-height:1.5;max-width:560px;margin:24px auto;padding:0 16px" {
                (body)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WHO: Recipient<'static> = Recipient {
        email: "ada@example.com",
        full_name: "Ada <script>alert(1)</script>",
        company_name: "Tools & <b>Co</b>",
    };

    #[test]
    fn values_are_escaped_in_html_and_kept_in_text() {
        let link = "https://cards.example.com/app/verify-email?token=a&b";
        let email = verify_email(&WHO, link);
        assert!(!email.html.contains("<script>"), "{}", email.html);
        assert!(email.html.contains("&lt;script&gt;"), "{}", email.html);
        assert!(email.html.contains("Tools &amp; &lt;b&gt;Co&lt;/b&gt;"));
        assert!(email.html.contains("token=a&amp;b"));
        assert!(email.text.contains(link));
        assert_eq!(email.from_name, "Tools & <b>Co</b>");
        assert_eq!(email.to, "ada@example.com");
    }

    #[test]
    fn a_reset_email_carries_its_link() {
        let link = "https://cards.example.com/app/reset-password?token=xyz";
        let email = reset_password(&WHO, link);
        assert!(email.subject.starts_with("Reset your password"));
        assert!(email.text.contains(link) && email.html.contains(link));
    }
}
