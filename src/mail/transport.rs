//! How a message leaves: over SMTP (`SMTP_URL`), or in development, without one, as an `.eml`
//! file under `DATA_DIR/outbox/` with its links in the log.

use std::{path::PathBuf, time::Duration};

use lettre::{
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    message::{Mailbox, MultiPart},
};
use uuid::Uuid;

use crate::model::outbox::Email;

/// How long one SMTP conversation may take. Kept well below the outbox lease, so a message is
/// never still being sent by one worker when another may take it.
pub const SMTP_TIMEOUT: Duration = Duration::from_secs(20);

/// Why a message did not go out.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct SendError {
    pub message: String,
    /// The other side refused this message for good (an SMTP 5xx, an address that cannot be
    /// one): trying again would not help.
    pub permanent: bool,
}

impl SendError {
    fn permanent(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            permanent: true,
        }
    }

    fn transient(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            permanent: false,
        }
    }
}

pub enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    /// The directory `.eml` files are written to.
    Files(PathBuf),
}

/// Sends mail from `from` (`MAIL_FROM`: its address; the display name is the company's).
pub struct Mailer {
    transport: Transport,
    from: Mailbox,
}

impl Mailer {
    /// `smtp_url`: `smtp://[user:pass@]host[:port]` (no TLS, or `?tls=required` /
    /// `?tls=opportunistic` for STARTTLS), `smtps://…` (TLS from the first byte). Without one,
    /// files under `files_dir`.
    pub fn new(smtp_url: Option<&str>, from: &str, files_dir: PathBuf) -> anyhow::Result<Self> {
        let from: Mailbox = from
            .parse()
            .map_err(|e| anyhow::anyhow!("MAIL_FROM is not an email address: {e}"))?;
        let transport = match smtp_url {
            Some(url) => Transport::Smtp(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .map_err(|e| anyhow::anyhow!("SMTP_URL: {e}"))?
                    .timeout(Some(SMTP_TIMEOUT))
                    .build(),
            ),
            None => Transport::Files(files_dir),
        };
        Ok(Self { transport, from })
    }

    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// The message as it goes out: plain text and HTML alternatives, from the company's name
    /// at `MAIL_FROM`'s address, its Message-ID made from the outbox id (the same on a retry).
    pub fn message(&self, id: Uuid, email: &Email) -> Result<Message, SendError> {
        let to: Mailbox = email
            .to
            .parse()
            .map_err(|e| SendError::permanent(format!("bad recipient: {e}")))?;
        let name = email.from_name.trim();
        let from_name = if name.is_empty() {
            self.from.name.clone()
        } else {
            Some(name.to_owned())
        };
        let from = Mailbox::new(from_name, self.from.email.clone());
        let domain = self.from.email.domain().to_owned();
        Message::builder()
            .from(from)
            .to(to)
            .subject(email.subject.clone())
            .message_id(Some(format!("<{}@{domain}>", id.simple())))
            .multipart(MultiPart::alternative_plain_html(
                email.text.clone(),
                email.html.clone(),
            ))
            .map_err(|e| SendError::permanent(format!("cannot build the message: {e}")))
    }

    /// Sends `email` (outbox message `id`).
    pub async fn send(&self, id: Uuid, email: &Email) -> Result<(), SendError> {
        let message = self.message(id, email)?;
        match &self.transport {
            Transport::Smtp(smtp) => match smtp.send(message).await {
                Ok(_) => Ok(()),
                Err(e) if e.is_permanent() => Err(SendError::permanent(e.to_string())),
                Err(e) => Err(SendError::transient(e.to_string())),
            },
            Transport::Files(dir) => write_file(dir, id, email, &message).await,
        }
    }
}

/// Writes the message as `<id>.eml` (a temporary name first, so a reader never sees half a
/// file) and logs where it is and the links it holds: in development, that is the way to
/// follow a verification or reset link.
async fn write_file(
    dir: &std::path::Path,
    id: Uuid,
    email: &Email,
    message: &Message,
) -> Result<(), SendError> {
    let io = |e: std::io::Error| SendError::transient(format!("writing to {}: {e}", dir.display()));
    tokio::fs::create_dir_all(dir).await.map_err(io)?;
    let path = dir.join(format!("{}.eml", id.simple()));
    let partial = dir.join(format!(".{}.eml.partial", id.simple()));
    tokio::fs::write(&partial, message.formatted())
        .await
        .map_err(io)?;
    tokio::fs::rename(&partial, &path).await.map_err(io)?;
    let links = links_in(&email.text);
    tracing::info!(
        to = %email.to,
        subject = %email.subject,
        file = %path.display(),
        links = ?links,
        "no SMTP_URL: email written to a file"
    );
    Ok(())
}

/// The http(s) links of a plain text.
pub fn links_in(text: &str) -> Vec<&str> {
    text.split_whitespace()
        .filter(|word| word.starts_with("https://") || word.starts_with("http://"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email() -> Email {
        Email {
            to: "ada@example.com".into(),
            from_name: "Acme <Tools> & Co".into(),
            subject: "Confirm your email".into(),
            text: "Open https://cards.example.com/app/verify-email?token=abc to confirm.".into(),
            html: "<p>Open the link</p>".into(),
        }
    }

    #[test]
    fn the_company_name_is_the_sender_and_the_address_is_mail_from() {
        let mailer =
            Mailer::new(None, "CallingCard <no-reply@cards.example.com>", "x".into()).unwrap();
        let id = Uuid::new_v4();
        let raw = String::from_utf8(mailer.message(id, &email()).unwrap().formatted()).unwrap();
        // The name has `<`, `>` and `&`: it is encoded whole, never read as an address.
        use base64::Engine;
        let name = base64::engine::general_purpose::STANDARD.encode("Acme <Tools> & Co");
        assert!(
            raw.contains(&format!(
                "From: =?utf-8?b?{name}?= <no-reply@cards.example.com>"
            )),
            "{raw}"
        );
        assert!(
            raw.contains(&format!("Message-ID: <{}@cards.example.com>", id.simple())),
            "{raw}"
        );
        assert!(raw.contains("multipart/alternative"), "{raw}");
        assert!(
            raw.contains("text/plain") && raw.contains("text/html"),
            "{raw}"
        );
    }

    #[test]
    fn a_bad_recipient_is_a_permanent_failure() {
        let mailer = Mailer::new(None, "no-reply@localhost", "x".into()).unwrap();
        let bad = Email {
            to: "not an address".into(),
            ..email()
        };
        assert!(mailer.message(Uuid::new_v4(), &bad).unwrap_err().permanent);
        assert!(Mailer::new(None, "nobody", "x".into()).is_err());
        assert!(Mailer::new(Some("ftp://mail.example.com"), "a@b.c", "x".into()).is_err());
    }

    #[test]
    fn links_are_found_in_text() {
        assert_eq!(
            links_in("Go to https://a.example/x?token=1 now\nor http://b.example"),
            ["https://a.example/x?token=1", "http://b.example"]
        );
    }
}
