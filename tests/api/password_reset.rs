//! Forgotten passwords: the same answer for every address, a one-time link by email (a real
//! SMTP server on loopback), a new password held to the policy, every session ended.

use serde_json::json;

use crate::helpers::{
    ADMIN_PASSWORD, SmtpServer, TestApp, new_email, scalar, signup_as, spawn_app_with_smtp,
    superuser,
};

const NEW_PASSWORD: &str = "copper-lantern-meadow-42";

async fn forgot(app: &TestApp, email: &str) -> crate::helpers::Response {
    app.post("/api/auth/forgot-password", None, json!({"email": email}))
        .await
}

/// Asks for a reset of `email` and waits for the `n`-th reset email to it; its token.
async fn reset_token(app: &TestApp, smtp: &SmtpServer, email: &str, n: usize) -> String {
    forgot(app, email).await.assert_status(202);
    let mut resets = Vec::new();
    crate::helpers::wait_for(&format!("reset email {n} to {email}"), async || {
        resets = smtp
            .messages_to(email)
            .into_iter()
            .filter(|m| m.subject.starts_with("Reset your password"))
            .collect();
        resets.len() >= n
    })
    .await;
    resets[n - 1].token("reset-password")
}

async fn reset(app: &TestApp, token: &str, password: &str) -> crate::helpers::Response {
    app.post(
        "/api/auth/reset-password",
        None,
        json!({"token": token, "password": password}),
    )
    .await
}

#[tokio::test]
async fn a_reset_link_sets_the_password_and_ends_every_session() {
    let smtp = SmtpServer::start().await;
    let app = spawn_app_with_smtp(&smtp, &[]).await;
    let email = new_email("forgetful");
    let admin = signup_as(&app, &email, "Forgetful Ltd").await;
    app.login(&email, ADMIN_PASSWORD).await;
    let token = reset_token(&app, &smtp, &email, 1).await;
    assert!(token.len() >= 43, "at least 256 bits: {token}");

    reset(&app, &token, NEW_PASSWORD).await.assert_status(204);
    let db = superuser(&app).await;
    assert_eq!(
        scalar(
            &db,
            "SELECT count(*) FROM sessions WHERE user_id = $1
               AND (revoked_at IS NULL OR revoked_reason <> 'password_reset')",
            &[&admin.user_id],
        )
        .await,
        0,
        "every session ended"
    );
    app.post(
        "/api/auth/login",
        None,
        json!({"email": email, "password": ADMIN_PASSWORD}),
    )
    .await
    .assert_error(401, "invalid_credentials");
    let fresh = app.login(&email, NEW_PASSWORD).await;
    // The email reached its owner: the address counts as verified.
    let me = app.get("/api/auth/me", Some(&fresh.token)).await;
    assert_eq!(me.body["email_verified"], true);
    // Stored hashed only.
    assert_eq!(
        scalar(
            &db,
            "SELECT count(*) FROM account_tokens WHERE token_hash = sha256(convert_to($1, 'UTF8'))",
            &[&token],
        )
        .await,
        1
    );
    assert_eq!(
        scalar(
            &db,
            "SELECT count(*) FROM outbox WHERE position($1 in payload::text) > 0",
            &[&token],
        )
        .await,
        0,
        "the link is not kept once sent"
    );
}

#[tokio::test]
async fn a_reset_link_works_once() {
    let smtp = SmtpServer::start().await;
    let app = spawn_app_with_smtp(&smtp, &[]).await;
    let email = new_email("once");
    signup_as(&app, &email, "Once Co").await;
    let token = reset_token(&app, &smtp, &email, 1).await;
    reset(&app, &token, NEW_PASSWORD).await.assert_status(204);
    reset(&app, &token, "another-quiet-harbor-77")
        .await
        .assert_error(410, "token_used");
    app.login(&email, NEW_PASSWORD).await;
}

#[tokio::test]
async fn unknown_expired_and_malformed_links_are_refused_clearly() {
    let smtp = SmtpServer::start().await;
    let app = spawn_app_with_smtp(&smtp, &[]).await;
    let email = new_email("late");
    signup_as(&app, &email, "Late Co").await;
    reset(
        &app,
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        NEW_PASSWORD,
    )
    .await
    .assert_error(404, "invalid_token");
    reset(&app, "not a token!", NEW_PASSWORD)
        .await
        .assert_error(404, "invalid_token");
    reset(&app, "", NEW_PASSWORD)
        .await
        .assert_error(404, "invalid_token");
    let token = reset_token(&app, &smtp, &email, 1).await;
    // A verification link is no reset link.
    let verification = smtp
        .messages_to(&email)
        .into_iter()
        .find(|m| m.subject.starts_with("Confirm"))
        .unwrap()
        .token("verify-email");
    reset(&app, &verification, NEW_PASSWORD)
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
    reset(&app, &token, NEW_PASSWORD)
        .await
        .assert_error(410, "token_expired");
    app.login(&email, ADMIN_PASSWORD).await;
}

#[tokio::test]
async fn a_newer_request_replaces_older_links() {
    let smtp = SmtpServer::start().await;
    let app = spawn_app_with_smtp(&smtp, &[]).await;
    let email = new_email("twice");
    signup_as(&app, &email, "Twice Co").await;
    let older = reset_token(&app, &smtp, &email, 1).await;
    let newer = reset_token(&app, &smtp, &email, 2).await;
    assert_ne!(older, newer);
    reset(&app, &older, NEW_PASSWORD)
        .await
        .assert_error(410, "token_used");
    reset(&app, &newer, NEW_PASSWORD).await.assert_status(204);
}

#[tokio::test]
async fn the_new_password_is_held_to_the_policy() {
    let smtp = SmtpServer::start().await;
    let app = spawn_app_with_smtp(&smtp, &[]).await;
    let email = new_email("weak");
    signup_as(&app, &email, "Weakling Co").await;
    let token = reset_token(&app, &smtp, &email, 1).await;
    reset(&app, &token, "password1")
        .await
        .assert_error(422, "weak_password");
    reset(&app, &token, "short").await.assert_status(422);
    // Refused passwords do not spend the link.
    reset(&app, &token, NEW_PASSWORD).await.assert_status(204);
}

#[tokio::test]
async fn forgot_password_answers_alike_whether_or_not_the_account_exists() {
    let smtp = SmtpServer::start().await;
    let app = spawn_app_with_smtp(&smtp, &[]).await;
    let email = new_email("known");
    signup_as(&app, &email, "Known Co").await;
    let unknown = new_email("nobody");
    let for_unknown = forgot(&app, &unknown).await;
    for_unknown.assert_status(202);
    let for_known = forgot(&app, &email).await;
    for_known.assert_status(202);
    assert_eq!(for_unknown.body, for_known.body);
    // Requests are handled in order: once the known account's email is out, the unknown
    // address's request was handled too, and sent nothing.
    let known_resets = async || {
        smtp.messages_to(&email)
            .iter()
            .filter(|m| m.subject.starts_with("Reset"))
            .count()
    };
    crate::helpers::wait_for("the reset email", async || known_resets().await == 1).await;
    assert!(smtp.messages_to(&unknown).is_empty());
    let db = superuser(&app).await;
    assert_eq!(
        scalar(
            &db,
            "SELECT count(*) FROM outbox WHERE payload->>'to' = $1",
            &[&unknown]
        )
        .await,
        0
    );
    // Bad input is refused before anything else.
    app.post("/api/auth/forgot-password", None, json!({"email": "nope"}))
        .await
        .assert_status(422);
    app.post("/api/auth/forgot-password", None, json!({}))
        .await
        .assert_status(422);
}

#[tokio::test]
async fn forgot_password_is_limited_per_address_and_per_account() {
    let smtp = SmtpServer::start().await;
    let app = spawn_app_with_smtp(
        &smtp,
        &[
            ("AUTH_ADDRESS_EMAIL_REQUESTS_PER_HOUR", "4"),
            ("AUTH_ACCOUNT_EMAILS_PER_HOUR", "2"),
        ],
    )
    .await;
    let email = new_email("popular");
    signup_as(&app, &email, "Popular Co").await;
    let barrier = new_email("barrier");
    signup_as(&app, &barrier, "Barrier Co").await;
    for _ in 0..3 {
        forgot(&app, &email).await.assert_status(202);
    }
    forgot(&app, &barrier).await.assert_status(202);
    let refused = forgot(&app, &email).await;
    refused.assert_error(429, "too_many_requests");
    assert!(refused.headers.contains_key("retry-after"));
    // In order: once the barrier's email is out, all three requests for the account were
    // handled, and only two sent anything.
    smtp.wait_for_message_to(&barrier).await;
    crate::helpers::wait_for("the barrier's reset email", async || {
        smtp.messages_to(&barrier)
            .iter()
            .any(|m| m.subject.starts_with("Reset"))
    })
    .await;
    let db = superuser(&app).await;
    assert_eq!(
        scalar(
            &db,
            "SELECT count(*) FROM outbox WHERE payload->>'to' = $1
               AND payload->>'subject' LIKE 'Reset%'",
            &[&email]
        )
        .await,
        2
    );
}
