//! Email goes out through the outbox: queued in the transaction that causes it, sent by the
//! worker to a real SMTP server on loopback (aiosmtpd), retried while the server is down, sent
//! once by however many instances, never for a rollback; written to `.eml` files without SMTP.

use callingcard::{
    db::{DbError, Tenant},
    model::outbox::{Email, enqueue_email},
};
use serde_json::json;

use crate::helpers::{
    self, ReceivedEmail, SmtpOptions, SmtpServer, SmtpTls, TestApp, new_email, scalar, signup_as,
    spawn_app_on, spawn_app_with, spawn_app_with_smtp, superuser, test_data_dir, wait_for,
};

fn email_to(to: &str, subject: &str) -> Email {
    Email {
        to: to.to_owned(),
        from_name: "Load & Co".into(),
        subject: subject.to_owned(),
        text: format!("{subject}\n"),
        html: format!("<p>{subject}</p>"),
        attachments: Vec::new(),
    }
}

/// Stops `app` gracefully: its worker finishes what it was sending.
async fn stop(mut app: TestApp) {
    app.shutdown.take().unwrap().send(()).unwrap();
    app.server.await.unwrap().unwrap();
}

#[tokio::test]
async fn an_email_goes_out_over_smtp_in_the_company_name() {
    let smtp = SmtpServer::start().await;
    let app = spawn_app_with_smtp(
        &smtp,
        &[("MAIL_FROM", "CallingCard <no-reply@cards.example.test>")],
    )
    .await;
    let email = new_email("ada");
    signup_as(&app, &email, "Tools & <Sons>").await;
    let message = smtp.wait_for_message_to(&email).await;
    assert!(
        message.from.contains("Tools & <Sons>")
            && message.from.ends_with("<no-reply@cards.example.test>"),
        "From: {}",
        message.from
    );
    assert_eq!(message.subject, "Confirm your email for Tools & <Sons>");
    assert!(message.message_id.ends_with("@cards.example.test>"));
    assert!(message.raw.contains("multipart/alternative"));
    assert!(message.text.contains("Tools & <Sons>"), "{}", message.text);
    assert!(
        message.html.contains("Tools &amp; &lt;Sons&gt;") && !message.html.contains("<Sons>"),
        "{}",
        message.html
    );
    message.token("verify-email");
    // Sent: the bodies (and the link) are no longer kept.
    let db = superuser(&app).await;
    wait_for("the message to be marked sent", async || {
        scalar(
            &db,
            "SELECT count(*) FROM outbox WHERE sent_at IS NOT NULL AND payload->>'to' = $1
               AND payload ? 'subject' AND NOT payload ? 'text' AND NOT payload ? 'html'",
            &[&email],
        )
        .await
            == 1
    })
    .await;
}

#[tokio::test]
async fn an_unreachable_mail_server_loses_nothing() {
    let mut smtp = SmtpServer::stopped(helpers::free_port());
    let app = spawn_app_with_smtp(&smtp, &[("OUTBOX_RETRY_BASE", "200ms")]).await;
    let email = new_email("patient");
    signup_as(&app, &email, "Patience Ltd").await;
    let db = superuser(&app).await;
    wait_for("a failed attempt, the message kept", async || {
        scalar(
            &db,
            "SELECT count(*) FROM outbox WHERE payload->>'to' = $1 AND attempts >= 1
               AND last_error IS NOT NULL AND sent_at IS NULL AND failed_at IS NULL",
            &[&email],
        )
        .await
            == 1
    })
    .await;
    assert!(smtp.messages().is_empty());

    smtp.resume().await;
    let message = smtp.wait_for_message_to(&email).await;
    message.token("verify-email");
    wait_for("the message to be marked sent", async || {
        scalar(
            &db,
            "SELECT count(*) FROM outbox WHERE payload->>'to' = $1 AND sent_at IS NOT NULL",
            &[&email],
        )
        .await
            == 1
    })
    .await;
    // Once the worker has stopped, nothing more can arrive: it came exactly once.
    stop(app).await;
    assert_eq!(smtp.messages_to(&email).len(), 1);
}

#[tokio::test]
async fn two_instances_never_send_a_message_twice() {
    const MESSAGES: usize = 60;
    let smtp = SmtpServer::start().await;
    let first = spawn_app_with_smtp(&smtp, &[]).await;
    let second = spawn_app_on(&first.dbname, &[("SMTP_URL", &smtp.url())]).await;
    let admin = first.signup("Busy Co").await;
    smtp.wait_for_message_to(&admin.email).await;
    // Queued in three transactions at once, both instances woken by each.
    let tenant = Tenant::signup(admin.company_id);
    let queue = async |batch: usize| {
        first
            .db
            .write(&tenant, async |tx| {
                for i in 0..MESSAGES / 3 {
                    let to = format!("load-{batch}-{i}@example.com");
                    enqueue_email(&tx, &email_to(&to, &format!("Load {batch}-{i}"))).await?;
                }
                Ok::<_, DbError>(())
            })
            .await
            .unwrap()
    };
    tokio::join!(queue(0), queue(1), queue(2));
    let db = superuser(&first).await;
    wait_for("every message to be sent", async || {
        scalar(
            &db,
            "SELECT count(*) FROM outbox WHERE sent_at IS NOT NULL AND payload->>'subject' LIKE 'Load %'",
            &[],
        )
        .await
            == MESSAGES as i64
    })
    .await;
    stop(first).await;
    stop(second).await;
    let load: Vec<ReceivedEmail> = smtp
        .messages()
        .into_iter()
        .filter(|m| m.subject.starts_with("Load "))
        .collect();
    assert_eq!(load.len(), MESSAGES, "received as many as were queued");
    let mut ids: Vec<&str> = load.iter().map(|m| m.message_id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), MESSAGES, "no message twice");
    let mut subjects: Vec<&str> = load.iter().map(|m| m.subject.as_str()).collect();
    subjects.sort();
    subjects.dedup();
    assert_eq!(subjects.len(), MESSAGES, "each message once");
}

#[tokio::test]
async fn a_rolled_back_transaction_sends_nothing() {
    let smtp = SmtpServer::start().await;
    let app = spawn_app_with_smtp(&smtp, &[]).await;
    let admin = app.signup("Undo Inc").await;
    let tenant = Tenant::signup(admin.company_id);
    let rolled_back = app
        .db
        .write(&tenant, async |tx| {
            enqueue_email(&tx, &email_to("never@example.com", "Rolled back")).await?;
            Err::<(), _>(DbError::Misuse("the change that caused it failed"))
        })
        .await;
    assert!(rolled_back.is_err());
    // A message committed after it is the barrier: once it arrived, the worker has looked.
    app.db
        .write(&tenant, async |tx| {
            enqueue_email(&tx, &email_to("barrier@example.com", "Committed")).await
        })
        .await
        .unwrap();
    smtp.wait_for_message_to("barrier@example.com").await;
    let db = superuser(&app).await;
    assert_eq!(
        scalar(
            &db,
            "SELECT count(*) FROM outbox WHERE payload->>'to' = 'never@example.com'",
            &[]
        )
        .await,
        0
    );
    assert!(smtp.messages_to("never@example.com").is_empty());
}

#[tokio::test]
async fn without_smtp_url_emails_are_written_as_eml_files() {
    let app = spawn_app_with(&[]).await;
    let dir = test_data_dir(&app.dbname).join("outbox");
    let email = new_email("quickstart");
    let admin = signup_as(&app, &email, "Local Dev").await;
    let mut found = None;
    wait_for("an .eml file", async || {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return false;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "eml") {
                let message = ReceivedEmail::parse(&std::fs::read(&path).unwrap());
                if message.to == email {
                    found = Some(message);
                    return true;
                }
            }
        }
        false
    })
    .await;
    let token = found.unwrap().token("verify-email");
    app.post("/api/auth/verify-email", None, json!({"token": token}))
        .await
        .assert_status(204);
    let me = app.get("/api/auth/me", Some(&admin.token)).await;
    assert_eq!(me.body["email_verified"], true, "{}", me.body);
    let _ = std::fs::remove_dir_all(test_data_dir(&app.dbname));
}

fn login(user: &str, password: &str) -> Option<(String, String)> {
    Some((user.to_owned(), password.to_owned()))
}

/// Waits until the app delivered its signup email to `email` and recorded it sent.
async fn delivered(app: &TestApp, smtp: &SmtpServer, email: &str) {
    smtp.wait_for_message_to(email).await.token("verify-email");
    let db = superuser(app).await;
    wait_for("the message to be marked sent", async || {
        scalar(
            &db,
            "SELECT count(*) FROM outbox WHERE payload->>'to' = $1 AND sent_at IS NOT NULL",
            &[&email],
        )
        .await
            == 1
    })
    .await;
}

#[tokio::test]
async fn starttls_and_a_login_deliver_trusting_smtp_ca_file() {
    let smtp = SmtpServer::start_with(SmtpOptions {
        login: login("mailer", "s3cret pass"),
        tls: SmtpTls::StartTls,
    })
    .await;
    let url = format!(
        "smtp://mailer:s3cret%20pass@127.0.0.1:{}?tls=required",
        smtp.port
    );
    let ca = smtp.ca_file().display().to_string();
    let app = spawn_app_with(&[("SMTP_URL", &url), ("SMTP_CA_FILE", &ca)]).await;
    let email = new_email("secure");
    signup_as(&app, &email, "Sealed Ltd").await;
    delivered(&app, &smtp, &email).await;
}

/// A refused login (535) is the sender's configuration, not the message's fault: the message
/// waits and is retried (never `failed_at` at once), and nothing is delivered.
#[tokio::test]
async fn a_wrong_smtp_password_delivers_nothing_and_keeps_the_message() {
    let smtp = SmtpServer::start_with(SmtpOptions {
        login: login("mailer", "right"),
        tls: SmtpTls::StartTls,
    })
    .await;
    let url = format!("smtp://mailer:wrong@127.0.0.1:{}?tls=required", smtp.port);
    let ca = smtp.ca_file().display().to_string();
    let app = spawn_app_with(&[
        ("SMTP_URL", &url),
        ("SMTP_CA_FILE", &ca),
        ("OUTBOX_RETRY_BASE", "100ms"),
    ])
    .await;
    let email = new_email("refused");
    signup_as(&app, &email, "Wrong Key Co").await;
    let db = superuser(&app).await;
    wait_for("two refused attempts, the message kept", async || {
        scalar(
            &db,
            "SELECT count(*) FROM outbox WHERE payload->>'to' = $1 AND attempts >= 2
               AND last_error LIKE '%535%' AND sent_at IS NULL AND failed_at IS NULL",
            &[&email],
        )
        .await
            == 1
    })
    .await;
    stop(app).await;
    assert!(smtp.messages().is_empty());
}

#[tokio::test]
async fn smtps_with_a_login_delivers_over_implicit_tls() {
    let smtp = SmtpServer::start_with(SmtpOptions {
        login: login("mailer", "wrapped"),
        tls: SmtpTls::Implicit,
    })
    .await;
    let url = format!("smtps://mailer:wrapped@localhost:{}", smtp.port);
    let ca = smtp.ca_file().display().to_string();
    let app = spawn_app_with(&[("SMTP_URL", &url), ("SMTP_CA_FILE", &ca)]).await;
    let email = new_email("wrapped");
    signup_as(&app, &email, "Wrapped Inc").await;
    delivered(&app, &smtp, &email).await;
}

/// Without `SMTP_CA_FILE` the self-signed certificate is not trusted: nothing goes out.
#[tokio::test]
async fn an_untrusted_mail_server_certificate_sends_nothing() {
    let smtp = SmtpServer::start_with(SmtpOptions {
        login: None,
        tls: SmtpTls::Implicit,
    })
    .await;
    let url = format!("smtps://localhost:{}", smtp.port);
    let app = spawn_app_with(&[("SMTP_URL", &url), ("OUTBOX_RETRY_BASE", "100ms")]).await;
    let email = new_email("untrusted");
    signup_as(&app, &email, "Doubt Co").await;
    let db = superuser(&app).await;
    wait_for("a failed attempt, the message kept", async || {
        scalar(
            &db,
            "SELECT count(*) FROM outbox WHERE payload->>'to' = $1 AND attempts >= 1
               AND last_error IS NOT NULL AND sent_at IS NULL AND failed_at IS NULL",
            &[&email],
        )
        .await
            == 1
    })
    .await;
    stop(app).await;
    assert!(smtp.messages().is_empty());
}
