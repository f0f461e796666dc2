//! Email verification: sign-up emails a one-time link (to a real SMTP server on loopback);
//! following it marks the address verified. Unverified accounts work all the same.

use serde_json::json;

use crate::helpers::{SmtpServer, new_email, scalar, signup_as, spawn_app_with_smtp, superuser};

#[tokio::test]
async fn signup_sends_a_link_that_verifies_the_email() {
    let smtp = SmtpServer::start().await;
    let app = spawn_app_with_smtp(&smtp, &[]).await;
    let email = new_email("new");
    let admin = signup_as(&app, &email, "Fresh Start").await;
    let me = app.get("/api/auth/me", Some(&admin.token)).await;
    me.assert_status(200);
    assert_eq!(me.body["email_verified"], false);
    // Unverified accounts work.
    app.add_employee(&admin, "Early Bird").await;

    let message = smtp.wait_for_message_to(&email).await;
    assert_eq!(message.subject, "Confirm your email for Fresh Start");
    let token = message.token("verify-email");
    app.post("/api/auth/verify-email", None, json!({"token": token}))
        .await
        .assert_status(204);
    let me = app.get("/api/auth/me", Some(&admin.token)).await;
    assert_eq!(me.body["email_verified"], true);
    // Once.
    app.post("/api/auth/verify-email", None, json!({"token": token}))
        .await
        .assert_error(410, "token_used");
    let db = superuser(&app).await;
    assert_eq!(
        scalar(
            &db,
            "SELECT count(*) FROM account_tokens WHERE token_hash = sha256(convert_to($1, 'UTF8'))
               AND purpose = 'email_verification' AND used_at IS NOT NULL",
            &[&token],
        )
        .await,
        1
    );
}

#[tokio::test]
async fn bad_and_expired_verification_links_are_refused_clearly() {
    let smtp = SmtpServer::start().await;
    let app = spawn_app_with_smtp(&smtp, &[]).await;
    let email = new_email("slow");
    let admin = signup_as(&app, &email, "Slow Co").await;
    let token = smtp.wait_for_message_to(&email).await.token("verify-email");
    for bad in [
        "",
        "x".repeat(129).as_str(),
        "has spaces",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ] {
        let resp = app
            .post("/api/auth/verify-email", None, json!({"token": bad}))
            .await;
        assert!(
            resp.status == 404 || resp.status == 422,
            "{bad}: {}",
            resp.body
        );
    }
    app.post("/api/auth/verify-email", None, json!({"token": "AAAA"}))
        .await
        .assert_error(404, "invalid_token");
    let db = superuser(&app).await;
    db.execute(
        "UPDATE account_tokens SET expires_at = now() - interval '1 second'
         WHERE token_hash = sha256(convert_to($1, 'UTF8'))",
        &[&token],
    )
    .await
    .unwrap();
    app.post("/api/auth/verify-email", None, json!({"token": token}))
        .await
        .assert_error(410, "token_expired");
    let me = app.get("/api/auth/me", Some(&admin.token)).await;
    assert_eq!(me.body["email_verified"], false);
}

#[tokio::test]
async fn resend_verification_sends_a_new_link_until_verified() {
    let smtp = SmtpServer::start().await;
    let app = spawn_app_with_smtp(&smtp, &[("AUTH_ACCOUNT_EMAILS_PER_HOUR", "2")]).await;
    let email = new_email("again");
    let admin = signup_as(&app, &email, "Again Co").await;
    smtp.wait_for_message_to(&email).await;
    app.post("/api/auth/resend-verification", None, json!({}))
        .await
        .assert_status(401);
    let resent = app
        .post(
            "/api/auth/resend-verification",
            Some(&admin.token),
            json!({}),
        )
        .await;
    resent.assert_status(202);
    assert_eq!(resent.body["status"], "accepted");
    // Two emails in the hour at most: the sign-up's and this one.
    let refused = app
        .post(
            "/api/auth/resend-verification",
            Some(&admin.token),
            json!({}),
        )
        .await;
    refused.assert_error(429, "too_many_requests");
    assert!(refused.headers.contains_key("retry-after"));
    let messages = smtp.wait_for_messages(2).await;
    let tokens: Vec<String> = messages.iter().map(|m| m.token("verify-email")).collect();
    assert_ne!(tokens[0], tokens[1]);
    // Either link works; the first one followed verifies.
    app.post("/api/auth/verify-email", None, json!({"token": tokens[1]}))
        .await
        .assert_status(204);
    app.post(
        "/api/auth/resend-verification",
        Some(&admin.token),
        json!({}),
    )
    .await
    .assert_error(409, "already_verified");
    // Both emails had arrived before the link was followed; the refusals queued nothing.
    let db = superuser(&app).await;
    assert_eq!(
        scalar(
            &db,
            "SELECT count(*) FROM outbox WHERE payload->>'to' = $1",
            &[&email]
        )
        .await,
        2
    );
}
