//! Guessing passwords: failed attempts limited per account (shared by every instance) and per
//! client address, sign-ups per address, and the bounded password hashing pool's 503.
//!
//! Client addresses come from `X-Forwarded-For` (`CLIENT_IP_HEADER`), as behind a proxy, so one
//! test can be many clients.

use crate::helpers::{self, ADMIN_PASSWORD, Response, TestApp, spawn_app_on, spawn_app_with};
use futures::StreamExt;
use serde_json::{Value, json};

const BEHIND_A_PROXY: (&str, &str) = ("CLIENT_IP_HEADER", "X-Forwarded-For");

async fn post_from(
    app: &TestApp,
    address: &str,
    path: &str,
    token: Option<&str>,
    body: Value,
) -> Response {
    let mut req = app
        .client
        .post(format!("{}{path}", app.address))
        .header("x-forwarded-for", address)
        .json(&body);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    TestApp::read(req.send().await.expect("sending the request")).await
}

async fn login_from(app: &TestApp, address: &str, email: &str, password: &str) -> Response {
    let body = json!({"email": email, "password": password});
    post_from(app, address, "/api/auth/login", None, body).await
}

async fn signup_from(app: &TestApp, address: &str, email: &str) -> Response {
    let body = json!({"email": email, "password": ADMIN_PASSWORD, "full_name": "Owen Owner"});
    post_from(app, address, "/api/auth/signup", None, body).await
}

/// A 429 as the contract says: JSON with a code, and a whole number of seconds to wait.
#[track_caller]
fn assert_throttled(resp: &Response, code: &str, at_most: u64) -> u64 {
    resp.assert_error(429, code);
    let wait: u64 = resp
        .headers
        .get("retry-after")
        .unwrap_or_else(|| panic!("no Retry-After on {}", resp.body))
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=at_most).contains(&wait), "Retry-After: {wait}");
    wait
}

/// The rule that keeps the owner in: once strangers have used up an account's failures, only
/// addresses that logged in to it before still get to try (with a budget of their own).
#[tokio::test]
async fn the_101st_failure_in_an_hour_is_refused_but_the_owner_still_gets_in() {
    // The default limits: 100 failures an hour per account, 5 a minute per address.
    let app = spawn_app_with(&[BEHIND_A_PROXY]).await;
    let email = "owen@example.com";
    let home = "198.51.100.10";
    signup_from(&app, home, email).await.assert_status(201);

    // A distributed guess: 100 addresses, one wrong password each, a few at a time.
    let failures: Vec<Response> = futures::stream::iter(0..100)
        .map(|n| {
            let app = &app;
            async move {
                let address = format!("203.0.113.{n}");
                login_from(app, &address, email, &format!("guess-number-{n}")).await
            }
        })
        .buffer_unordered(4)
        .collect()
        .await;
    for resp in &failures {
        resp.assert_error(401, "invalid_credentials");
    }

    // The 101st, from a new address: refused before the password is even looked at.
    let refused = login_from(&app, "203.0.113.200", email, "guess-number-100").await;
    assert_throttled(&refused, "too_many_attempts", 3600);
    let right_but_new = login_from(&app, "192.0.2.77", email, ADMIN_PASSWORD).await;
    assert_throttled(&right_but_new, "too_many_attempts", 3600);

    // An unknown email is throttled by the same rule (the answer says nothing of existence).
    let stranger = login_from(&app, "203.0.113.201", "nobody@example.com", "whatever-1").await;
    stranger.assert_error(401, "invalid_credentials");

    // The owner, from the address that signed up: still in, and a typo there costs only that
    // address's own budget.
    login_from(&app, home, email, "typo-of-the-owner")
        .await
        .assert_error(401, "invalid_credentials");
    let owner = login_from(&app, home, email, ADMIN_PASSWORD).await;
    owner.assert_status(200);
    let token = owner.body["access_token"].as_str().unwrap();
    app.get("/api/auth/me", Some(token))
        .await
        .assert_status(200);
}

#[tokio::test]
async fn failures_are_limited_per_address_whatever_the_account() {
    let app = spawn_app_with(&[BEHIND_A_PROXY]).await;
    let email = "pat@example.com";
    signup_from(&app, "198.51.100.20", email)
        .await
        .assert_status(201);
    let guesser = "192.0.2.50";
    for n in 0..5 {
        login_from(
            &app,
            guesser,
            &format!("someone-{n}@example.com"),
            "wrong-guess-1",
        )
        .await
        .assert_error(401, "invalid_credentials");
    }
    let sixth = login_from(&app, guesser, "someone-5@example.com", "wrong-guess-1").await;
    assert_throttled(&sixth, "too_many_attempts", 60);
    // Even the right password waits: the address is refused before any work.
    let right = login_from(&app, guesser, email, ADMIN_PASSWORD).await;
    assert_throttled(&right, "too_many_attempts", 60);
    // Another address is not affected, and successes never count.
    for _ in 0..8 {
        login_from(&app, "192.0.2.51", email, ADMIN_PASSWORD)
            .await
            .assert_status(200);
    }
    login_from(&app, "192.0.2.51", "someone-5@example.com", "wrong-guess-1")
        .await
        .assert_error(401, "invalid_credentials");
}

#[tokio::test]
async fn instances_on_one_database_share_the_account_count() {
    let limits = [BEHIND_A_PROXY, ("AUTH_ACCOUNT_FAILURES_PER_HOUR", "3")];
    let first = spawn_app_with(&limits).await;
    let second = spawn_app_on(&first.dbname, &limits).await;
    let email = "shared@example.com";
    signup_from(&first, "198.51.100.30", email)
        .await
        .assert_status(201);
    login_from(&first, "203.0.113.1", email, "wrong-guess-1")
        .await
        .assert_error(401, "invalid_credentials");
    login_from(&second, "203.0.113.2", email, "wrong-guess-2")
        .await
        .assert_error(401, "invalid_credentials");
    login_from(&first, "203.0.113.3", email, "wrong-guess-3")
        .await
        .assert_error(401, "invalid_credentials");
    for app in [&first, &second] {
        let resp = login_from(app, "203.0.113.4", email, "wrong-guess-4").await;
        assert_throttled(&resp, "too_many_attempts", 3600);
    }
    // The owner's address is trusted on both: it signed up through the first.
    login_from(&second, "198.51.100.30", email, ADMIN_PASSWORD)
        .await
        .assert_status(200);
}

#[tokio::test]
async fn wrong_current_passwords_count_against_the_account() {
    let app = spawn_app_with(&[BEHIND_A_PROXY, ("AUTH_ACCOUNT_FAILURES_PER_HOUR", "3")]).await;
    let email = "changer@example.com";
    let home = "198.51.100.40";
    let created = signup_from(&app, home, email).await;
    created.assert_status(201);
    let token = created.body["access_token"].as_str().unwrap().to_owned();
    let change = |current: &str| json!({"current_password": current, "new_password": "saffron-glacier-kettle-5"});
    // A stolen token guessing the current password, from several addresses.
    for n in 0..3 {
        let address = format!("203.0.113.{n}");
        post_from(
            &app,
            &address,
            "/api/auth/change-password",
            Some(&token),
            change("wrong-guess-x"),
        )
        .await
        .assert_error(403, "wrong_password");
    }
    let fourth = post_from(
        &app,
        "203.0.113.9",
        "/api/auth/change-password",
        Some(&token),
        change(ADMIN_PASSWORD),
    )
    .await;
    assert_throttled(&fourth, "too_many_attempts", 3600);
    // And the same account is throttled at login from strangers...
    let login = login_from(&app, "203.0.113.10", email, ADMIN_PASSWORD).await;
    assert_throttled(&login, "too_many_attempts", 3600);
    // ...while the owner's own address changes the password.
    post_from(
        &app,
        home,
        "/api/auth/change-password",
        Some(&token),
        change(ADMIN_PASSWORD),
    )
    .await
    .assert_status(204);

    // Per address too: the address failures of change-password and login are one budget.
    let app = spawn_app_with(&[BEHIND_A_PROXY]).await;
    let created = signup_from(&app, home, email).await;
    let token = created.body["access_token"].as_str().unwrap().to_owned();
    for _ in 0..5 {
        post_from(
            &app,
            "192.0.2.60",
            "/api/auth/change-password",
            Some(&token),
            change("nope-nope"),
        )
        .await
        .assert_error(403, "wrong_password");
    }
    let refused = login_from(&app, "192.0.2.60", email, ADMIN_PASSWORD).await;
    assert_throttled(&refused, "too_many_attempts", 60);
}

#[tokio::test]
async fn signups_are_limited_per_address() {
    let app = spawn_app_with(&[BEHIND_A_PROXY, ("AUTH_ADDRESS_SIGNUPS_PER_HOUR", "2")]).await;
    for n in 0..2 {
        signup_from(&app, "192.0.2.70", &format!("founder-{n}@example.com"))
            .await
            .assert_status(201);
    }
    let third = signup_from(&app, "192.0.2.70", "founder-2@example.com").await;
    assert_throttled(&third, "too_many_signups", 3600);
    signup_from(&app, "192.0.2.71", "founder-2@example.com")
        .await
        .assert_status(201);
}

/// A password check costs ~19 MiB and a core for a while; past the pool's threads and queue the
/// service answers 503 at once. To hold the only thread without timing guesses, one account's
/// stored hash is made very expensive (argon2 with many passes): while it is being checked,
/// other logins are refused, and a request is retried until one is.
#[tokio::test]
async fn a_full_hashing_pool_answers_503_with_retry_after() {
    let app = spawn_app_with(&[
        ("PASSWORD_HASH_THREADS", "1"),
        ("PASSWORD_HASH_QUEUE", "0"),
        ("AUTH_ADDRESS_FAILURES_PER_MINUTE", "1000"),
    ])
    .await;
    let slow = app.signup("Slow Hash Co").await;
    let fast = app.signup("Fast Hash Co").await;
    let owner = helpers::connect(&helpers::superuser_url(&app.dbname)).await;
    let expensive = {
        use argon2::{
            Algorithm, Argon2, Params, PasswordHasher, Version, password_hash::SaltString,
        };
        let salt = SaltString::encode_b64(b"a fixed test salt").unwrap();
        Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8192, 150, 1, None).unwrap(),
        )
        .hash_password(b"irrelevant", &salt)
        .unwrap()
        .to_string()
    };
    owner
        .execute(
            "UPDATE users SET password_hash = $1 WHERE id = $2",
            &[&expensive, &slow.user_id],
        )
        .await
        .unwrap();
    let hold = {
        let (client, url) = (
            app.client.clone(),
            format!("{}/api/auth/login", app.address),
        );
        let body = json!({"email": slow.email, "password": "not-it-at-all"});
        // Until the thread takes it: a fast login may hold the thread at that moment.
        tokio::spawn(async move {
            let deadline = std::time::Instant::now() + helpers::PATIENCE;
            loop {
                let resp = client.post(&url).json(&body).send().await.unwrap();
                if resp.status().as_u16() != 503 {
                    return resp.status().as_u16();
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "the slow login never got the thread"
                );
            }
        })
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let busy = loop {
        assert!(std::time::Instant::now() < deadline, "never answered 503");
        let resp = app
            .post(
                "/api/auth/login",
                None,
                json!({"email": fast.email, "password": "wrong-guess-2"}),
            )
            .await;
        if resp.status.as_u16() == 503 {
            break resp;
        }
        resp.assert_error(401, "invalid_credentials");
    };
    busy.assert_error(503, "busy");
    assert_eq!(busy.headers.get("retry-after").unwrap(), "1");
    assert_eq!(
        busy.headers.get("content-type").unwrap(),
        "application/json; charset=utf-8"
    );
    assert_eq!(hold.await.unwrap(), 401);
    // Once free, the pool takes checks again.
    app.login(&fast.email, ADMIN_PASSWORD).await;
}
