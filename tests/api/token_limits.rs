//! The public endpoints that look a presented token up (a refresh, accepting an invitation,
//! resetting a password, verifying an email address) cost a transaction per well-formed guess:
//! each is bounded per client address, with a 429 `too_many_requests` and `Retry-After` past it.
//!
//! Client addresses come from `X-Forwarded-For` (`CLIENT_IP_HEADER`), so one test is many
//! clients; a bucket of 2 refilled once an hour makes the third guess the refused one.

use serde_json::{Value, json};

use crate::helpers::{Response, TEAMMATE_PASSWORD, TestApp, spawn_app_with};

const LIMITS: &[(&str, &str)] = &[
    ("CLIENT_IP_HEADER", "X-Forwarded-For"),
    ("AUTH_ADDRESS_TOKEN_BURST", "2"),
    ("AUTH_ADDRESS_TOKENS_PER_HOUR", "1"),
];

async fn post_from(app: &TestApp, address: &str, path: &str, body: Value) -> Response {
    let req = app
        .client
        .post(format!("{}{path}", app.address))
        .header("x-forwarded-for", address)
        .json(&body);
    TestApp::read(req.send().await.expect("sending the request")).await
}

async fn refresh_from(app: &TestApp, address: &str, token: &str) -> Response {
    let body = json!({"refresh_token": token});
    post_from(app, address, "/api/auth/refresh", body).await
}

async fn accept_from(app: &TestApp, address: &str, token: &str) -> Response {
    let body = json!({"token": token, "password": TEAMMATE_PASSWORD});
    post_from(app, address, "/api/auth/accept-invitation", body).await
}

/// A 429 as the contract says: JSON with a code, and a whole number of seconds to wait (the
/// bucket refills once an hour).
#[track_caller]
fn assert_limited(resp: &Response) {
    resp.assert_error(429, "too_many_requests");
    let wait: u64 = resp
        .headers
        .get("retry-after")
        .unwrap_or_else(|| panic!("no Retry-After on {}", resp.body))
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=3600).contains(&wait), "Retry-After: {wait}");
}

/// Well-formed (43 URL-safe characters) and unknown.
fn guess(c: char) -> String {
    c.to_string().repeat(43)
}

#[tokio::test]
async fn refresh_guesses_are_limited_per_address() {
    let app = spawn_app_with(LIMITS).await;
    let guesser = "192.0.2.80";
    for c in ['A', 'B'] {
        refresh_from(&app, guesser, &guess(c))
            .await
            .assert_error(401, "invalid_refresh_token");
    }
    // A malformed token never reaches the database, and is not counted.
    refresh_from(&app, guesser, "short")
        .await
        .assert_error(401, "invalid_refresh_token");
    assert_limited(&refresh_from(&app, guesser, &guess('C')).await);
    // Another address, and this address's invitation accepts, have buckets of their own.
    refresh_from(&app, "192.0.2.81", &guess('C'))
        .await
        .assert_error(401, "invalid_refresh_token");
    accept_from(&app, guesser, &guess('C'))
        .await
        .assert_error(404, "invitation_not_found");
}

#[tokio::test]
async fn invitation_guesses_are_limited_per_address() {
    let app = spawn_app_with(LIMITS).await;
    let guesser = "192.0.2.90";
    for c in ['A', 'B'] {
        accept_from(&app, guesser, &guess(c))
            .await
            .assert_error(404, "invitation_not_found");
    }
    assert_limited(&accept_from(&app, guesser, &guess('C')).await);
    accept_from(&app, "192.0.2.91", &guess('C'))
        .await
        .assert_error(404, "invitation_not_found");
    refresh_from(&app, guesser, &guess('C'))
        .await
        .assert_error(401, "invalid_refresh_token");
}

async fn reset_from(app: &TestApp, address: &str, token: &str) -> Response {
    let body = json!({"token": token, "password": TEAMMATE_PASSWORD});
    post_from(app, address, "/api/auth/reset-password", body).await
}

async fn verify_from(app: &TestApp, address: &str, token: &str) -> Response {
    post_from(
        app,
        address,
        "/api/auth/verify-email",
        json!({"token": token}),
    )
    .await
}

/// Password resets, email verifications and invitation accepts all take emailed-link tokens:
/// one bucket per address for the three, so spreading guesses over them gains nothing.
#[tokio::test]
async fn emailed_link_guesses_are_limited_per_address() {
    let app = spawn_app_with(LIMITS).await;
    let guesser = "192.0.2.100";
    reset_from(&app, guesser, &guess('A'))
        .await
        .assert_error(404, "invalid_token");
    verify_from(&app, guesser, &guess('B'))
        .await
        .assert_error(404, "invalid_token");
    assert_limited(&reset_from(&app, guesser, &guess('C')).await);
    assert_limited(&verify_from(&app, guesser, &guess('C')).await);
    assert_limited(&accept_from(&app, guesser, &guess('C')).await);
    // Another address has its own bucket; refreshes too.
    let other = "192.0.2.101";
    reset_from(&app, other, &guess('C'))
        .await
        .assert_error(404, "invalid_token");
    verify_from(&app, other, &guess('C'))
        .await
        .assert_error(404, "invalid_token");
    refresh_from(&app, guesser, &guess('C'))
        .await
        .assert_error(401, "invalid_refresh_token");
}
