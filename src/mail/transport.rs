//! How a message leaves: over SMTP (`SMTP_URL`), or in development, without one, as an `.eml`
//! file under `DATA_DIR/outbox/` with its links in the log.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::Context;
use lettre::{
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    message::{
        Attachment, Body, Mailbox, MultiPart,
        header::{ContentTransferEncoding, ContentType},
    },
    transport::smtp::{
        AsyncSmtpTransportBuilder,
        client::{Certificate, Tls, TlsParameters},
    },
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
    /// files under `files_dir`. `ca_file` (`SMTP_CA_FILE`): a PEM certificate the mail
    /// server's may be signed by, trusted besides the public roots.
    pub fn new(
        smtp_url: Option<&str>,
        ca_file: Option<&Path>,
        from: &str,
        files_dir: PathBuf,
    ) -> anyhow::Result<Self> {
        let from: Mailbox = from
            .parse()
            .map_err(|e| anyhow::anyhow!("MAIL_FROM is not an email address: {e}"))?;
        let transport = match smtp_url {
            Some(url) => Transport::Smtp(smtp_builder(url, ca_file)?.build()),
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
        let body = MultiPart::alternative_plain_html(email.text.clone(), email.html.clone());
        // With files, the two alternatives come first in a `multipart/mixed`, the files after.
        let body = if email.attachments.is_empty() {
            body
        } else {
            let mut mixed = MultiPart::mixed().multipart(body);
            for file in &email.attachments {
                let content_type = ContentType::parse(&file.content_type).map_err(|e| {
                    SendError::permanent(format!(
                        "bad attachment type {:?}: {e}",
                        file.content_type
                    ))
                })?;
                // Base64, so the file arrives byte for byte (a vCard keeps its CRLF line ends).
                let body = Body::new_with_encoding(
                    file.content.clone().into_bytes(),
                    ContentTransferEncoding::Base64,
                )
                .map_err(|_| SendError::permanent("cannot encode an attachment"))?;
                mixed = mixed
                    .singlepart(Attachment::new(file.file_name.clone()).body(body, content_type));
            }
            mixed
        };
        Message::builder()
            .from(from)
            .to(to)
            .subject(email.subject.clone())
            .message_id(Some(format!("<{}@{domain}>", id.simple())))
            .multipart(body)
            .map_err(|e| SendError::permanent(format!("cannot build the message: {e}")))
    }

    /// Sends `email` (outbox message `id`).
    pub async fn send(&self, id: Uuid, email: &Email) -> Result<(), SendError> {
        let message = self.message(id, email)?;
        match &self.transport {
            Transport::Smtp(smtp) => match smtp.send(message).await {
                Ok(_) => Ok(()),
                Err(e) if e.is_permanent() && !refused_login(&e) => {
                    Err(SendError::permanent(e.to_string()))
                }
                Err(e) => Err(SendError::transient(e.to_string())),
            },
            Transport::Files(dir) => write_file(dir, id, email, &message).await,
        }
    }
}

/// The transport `SMTP_URL` describes (host, port, credentials, TLS mode: lettre reads them),
/// its TLS trusting `ca_file` too when there is one.
fn smtp_builder(url: &str, ca_file: Option<&Path>) -> anyhow::Result<AsyncSmtpTransportBuilder> {
    let builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
        .map_err(|e| anyhow::anyhow!("SMTP_URL: {e}"))?
        .timeout(Some(SMTP_TIMEOUT));
    let Some(ca_file) = ca_file else {
        return Ok(builder);
    };
    let pem =
        std::fs::read(ca_file).with_context(|| format!("SMTP_CA_FILE {}", ca_file.display()))?;
    // An empty or foreign file would parse as no certificate at all and silently trust nothing
    // more: refuse it at startup instead.
    if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
        anyhow::bail!(
            "SMTP_CA_FILE {} holds no PEM certificate",
            ca_file.display()
        );
    }
    let certificate = Certificate::from_pem(&pem)
        .map_err(|e| anyhow::anyhow!("SMTP_CA_FILE {}: {e}", ca_file.display()))?;
    // The same reading of the URL as lettre's, for the one thing its builder does not expose:
    // which TLS mode it chose.
    let parsed = url::Url::parse(url).context("SMTP_URL")?;
    let host = parsed
        .host_str()
        .context("SMTP_URL has no host")?
        .to_owned();
    let tls_query = parsed
        .query_pairs()
        .find(|(key, _)| key == "tls")
        .map(|(_, value)| value.into_owned());
    let parameters = || {
        TlsParameters::builder(host.clone())
            .add_root_certificate(certificate.clone())
            .build()
            .map_err(|e| anyhow::anyhow!("SMTP_CA_FILE {}: {e}", ca_file.display()))
    };
    let tls = match (parsed.scheme(), tls_query.as_deref()) {
        ("smtps", _) => Tls::Wrapper(parameters()?),
        ("smtp", Some("required")) => Tls::Required(parameters()?),
        ("smtp", Some("opportunistic")) => Tls::Opportunistic(parameters()?),
        // Plain SMTP: there is no TLS for the certificate to matter to.
        _ => return Ok(builder),
    };
    Ok(builder.tls(tls))
}

/// The server refused our login (RFC 4954: 530 authentication required, 534 mechanism too
/// weak, 535 credentials invalid, 538 encryption required). A 5xx, but about this sender's
/// configuration, not the message: once the credentials are fixed it goes out, so it waits.
fn refused_login(error: &lettre::transport::smtp::Error) -> bool {
    error
        .status()
        .is_some_and(|code| matches!(u16::from(code), 530 | 534 | 535 | 538))
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
            attachments: Vec::new(),
        }
    }

    #[test]
    fn the_company_name_is_the_sender_and_the_address_is_mail_from() {
        let mailer = Mailer::new(
            None,
            None,
            "CallingCard <no-reply@cards.example.com>",
            "x".into(),
        )
        .unwrap();
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
    fn attachments_follow_the_text_and_html_in_a_mixed_message() {
        let mailer = Mailer::new(None, None, "no-reply@localhost", "x".into()).unwrap();
        let with_file = Email {
            attachments: vec![crate::model::outbox::EmailAttachment {
                file_name: "Jane Smith.vcf".into(),
                content_type: "text/vcard; charset=utf-8".into(),
                content: "BEGIN:VCARD\r\nVERSION:3.0\r\nEND:VCARD\r\n".into(),
            }],
            ..email()
        };
        let raw = String::from_utf8(
            mailer
                .message(Uuid::new_v4(), &with_file)
                .unwrap()
                .formatted(),
        )
        .unwrap();
        assert!(raw.contains("multipart/mixed"), "{raw}");
        assert!(raw.contains("multipart/alternative"), "{raw}");
        assert!(
            raw.contains("Content-Disposition: attachment; filename=\"Jane Smith.vcf\""),
            "{raw}"
        );
        let plain = String::from_utf8(
            mailer
                .message(Uuid::new_v4(), &email())
                .unwrap()
                .formatted(),
        )
        .unwrap();
        assert!(!plain.contains("multipart/mixed"), "{plain}");
        let bad = Email {
            attachments: vec![crate::model::outbox::EmailAttachment {
                content_type: "not a type".into(),
                ..with_file.attachments[0].clone()
            }],
            ..email()
        };
        assert!(mailer.message(Uuid::new_v4(), &bad).unwrap_err().permanent);
    }

    #[test]
    fn a_bad_recipient_is_a_permanent_failure() {
        let mailer = Mailer::new(None, None, "no-reply@localhost", "x".into()).unwrap();
        let bad = Email {
            to: "not an address".into(),
            ..email()
        };
        assert!(mailer.message(Uuid::new_v4(), &bad).unwrap_err().permanent);
        assert!(Mailer::new(None, None, "nobody", "x".into()).is_err());
        assert!(Mailer::new(Some("ftp://mail.example.com"), None, "a@b.c", "x".into()).is_err());
    }

    #[test]
    fn an_smtp_ca_file_that_holds_no_certificate_fails_at_startup() {
        let url = Some("smtps://mail.example.com");
        let missing = std::env::temp_dir().join(format!("no-such-ca-{}.pem", Uuid::new_v4()));
        let Err(err) = Mailer::new(url, Some(&missing), "a@b.c", "x".into()) else {
            panic!("a missing SMTP_CA_FILE was accepted");
        };
        assert!(format!("{err:#}").contains("SMTP_CA_FILE"), "{err:#}");
        let not_pem = std::env::temp_dir().join(format!("not-a-ca-{}.pem", Uuid::new_v4()));
        std::fs::write(&not_pem, "hello").unwrap();
        let Err(err) = Mailer::new(url, Some(&not_pem), "a@b.c", "x".into()) else {
            panic!("an SMTP_CA_FILE without a certificate was accepted");
        };
        let _ = std::fs::remove_file(&not_pem);
        assert!(err.to_string().contains("no PEM certificate"), "{err:#}");
    }

    #[test]
    fn links_are_found_in_text() {
        assert_eq!(
            links_in("Go to https://a.example/x?token=1 now\nor http://b.example"),
            ["https://a.example/x?token=1", "http://b.example"]
        );
    }
}
