//! Sign-up, login, tokens and passwords.

use crate::helpers::{self, JWT_SECRET, spawn_app};
use serde_json::json;

#[tokio::test]
async fn signup_creates_company_admin_and_free_plan() {
    let app = spawn_app().await;
    let resp = app
        .post(
            "/api/auth/signup",
            None,
            json!({"email": "Founder@Acme.com", "password": "sturdy-pelican-ferns-31", "full_name": "Fay Founder",
                   "company_name": "Acme Rockets", "role": "superadmin"}),
        )
        .await;
    resp.assert_status(201);
    assert_eq!(resp.body["token_type"], "bearer");
    // A role in the body is ignored: nobody signs up as superadmin.
    assert_eq!(resp.body["role"], "admin");
    let token = resp.body["access_token"].as_str().unwrap().to_owned();

    let me = app.get("/api/auth/me", Some(&token)).await;
    me.assert_status(200);
    assert_eq!(me.body["email"], "founder@acme.com");
    assert_eq!(me.body["role"], "admin");
    assert_eq!(me.body["company_id"], resp.body["company_id"]);

    let company = app
        .get(
            &format!("/api/company/{}", resp.body["company_id"].as_str().unwrap()),
            Some(&token),
        )
        .await;
    company.assert_status(200);
    assert_eq!(company.body["name"], "Acme Rockets");
    assert_eq!(company.body["slug"], "acme-rockets");

    let sub = app.get("/api/subscriptions/current", Some(&token)).await;
    sub.assert_status(200);
    assert_eq!(sub.body["plan"], "free");
    assert_eq!(sub.body["employee_limit"], 2);

    // Login with any case of the email.
    let login = app
        .post(
            "/api/auth/login",
            None,
            json!({"email": "FOUNDER@acme.com", "password": "sturdy-pelican-ferns-31"}),
        )
        .await;
    login.assert_status(200);
    assert_eq!(login.body["user_id"], resp.body["user_id"]);
}

#[tokio::test]
async fn duplicate_email_is_a_conflict_and_creates_nothing() {
    let app = spawn_app().await;
    let body = json!({"email": "dup@example.com", "password": "sturdy-pelican-ferns-31", "full_name": "A", "company_name": "Dup Co"});
    app.post("/api/auth/signup", None, body.clone())
        .await
        .assert_status(201);
    app.post("/api/auth/signup", None, json!({"email": "DUP@example.com", "password": "sturdy-pelican-ferns-31", "full_name": "B", "company_name": "Other Co"}))
        .await
        .assert_error(409, "email_taken");
    // The failed sign-up left no company behind.
    let owner = helpers::connect(&helpers::superuser_url(&app.dbname)).await;
    let companies: i64 = owner
        .query_one("SELECT count(*) FROM companies", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(companies, 1);
}

#[tokio::test]
async fn wrong_email_and_wrong_password_answer_alike() {
    let app = spawn_app().await;
    let admin = app.signup("Alike").await;
    let wrong_password = app
        .post(
            "/api/auth/login",
            None,
            json!({"email": admin.email, "password": "not-the-password"}),
        )
        .await;
    let wrong_email = app
        .post(
            "/api/auth/login",
            None,
            json!({"email": "nobody@example.com", "password": "not-the-password"}),
        )
        .await;
    wrong_password.assert_error(401, "invalid_credentials");
    assert_eq!(wrong_password.status, wrong_email.status);
    assert_eq!(wrong_password.body, wrong_email.body);
}

#[tokio::test]
async fn signup_refuses_bad_input() {
    let app = spawn_app().await;
    for (body, code) in [
        (
            json!({"email": "not-an-email", "password": "sturdy-pelican-ferns-31", "full_name": "A"}),
            "validation_error",
        ),
        (
            json!({"email": "a@example.com", "password": "short", "full_name": "A"}),
            "validation_error",
        ),
        (
            json!({"email": "a@example.com", "password": "sturdy-pelican-ferns-31", "full_name": "   "}),
            "validation_error",
        ),
        (
            json!({"email": "a@example.com", "password": "sturdy-pelican-ferns-31", "full_name": "x".repeat(201)}),
            "validation_error",
        ),
        (
            json!({"email": "a@example.com", "password": "sturdy-pelican-ferns-31"}),
            "validation_error",
        ),
        (
            json!({"email": "a@example.com", "password": "sturdy-pelican-ferns-31", "full_name": "A", "extra": true}),
            "validation_error",
        ),
        (
            json!({"email": 12, "password": "sturdy-pelican-ferns-31", "full_name": "A"}),
            "validation_error",
        ),
    ] {
        app.post("/api/auth/signup", None, body)
            .await
            .assert_error(422, code);
    }
    let raw = app
        .client
        .post(format!("{}/api/auth/signup", app.address))
        .header("content-type", "application/json")
        .body("{\"email\": ")
        .send()
        .await
        .unwrap();
    helpers::TestApp::read(raw)
        .await
        .assert_error(422, "validation_error");
    let text = app
        .client
        .post(format!("{}/api/auth/signup", app.address))
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .await
        .unwrap();
    helpers::TestApp::read(text)
        .await
        .assert_error(415, "unsupported_media_type");
}

#[tokio::test]
async fn company_name_defaults_to_the_person_and_slugs_stay_unique() {
    let app = spawn_app().await;
    let first = app.post("/api/auth/signup", None, json!({"email": "x1@example.com", "password": "sturdy-pelican-ferns-31", "full_name": "Zoë Ångström"})).await;
    first.assert_status(201);
    let token = first.body["access_token"].as_str().unwrap();
    let company = app
        .get(
            &format!(
                "/api/company/{}",
                first.body["company_id"].as_str().unwrap()
            ),
            Some(token),
        )
        .await;
    assert_eq!(company.body["name"], "Zoë Ångström");
    assert_eq!(company.body["slug"], "zoe-angstrom");

    let second = app.post("/api/auth/signup", None, json!({"email": "x2@example.com", "password": "sturdy-pelican-ferns-31", "full_name": "Zoe Angstrom"})).await;
    second.assert_status(201);
    let token = second.body["access_token"].as_str().unwrap();
    let company = app
        .get(
            &format!(
                "/api/company/{}",
                second.body["company_id"].as_str().unwrap()
            ),
            Some(token),
        )
        .await;
    let slug = company.body["slug"].as_str().unwrap();
    assert!(
        slug.starts_with("zoe-angstrom-") && slug.len() == "zoe-angstrom-".len() + 6,
        "{slug}"
    );
}

#[tokio::test]
async fn concurrent_signups_of_one_name_get_distinct_slugs() {
    let app = spawn_app().await;
    let signups = (0..8).map(|i| {
        let app = &app;
        async move {
            app.post(
                "/api/auth/signup",
                None,
                json!({"email": format!("race{i}@example.com"), "password": "sturdy-pelican-ferns-31", "full_name": "R", "company_name": "Race Co"}),
            )
            .await
        }
    });
    let results = futures::future::join_all(signups).await;
    for r in &results {
        r.assert_status(201);
    }
    let owner = helpers::connect(&helpers::superuser_url(&app.dbname)).await;
    let rows = owner
        .query("SELECT slug FROM companies", &[])
        .await
        .unwrap();
    let mut slugs: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(slugs.len(), 8);
    slugs.sort();
    slugs.dedup();
    assert_eq!(slugs.len(), 8, "slugs must be unique");
    assert!(slugs.contains(&"race-co".to_owned()));
}

#[tokio::test]
async fn change_password() {
    let app = spawn_app().await;
    let admin = app.signup("Pw Co").await;
    let path = "/api/auth/change-password";
    app.post(
        path,
        Some(&admin.token),
        json!({"current_password": "wrong-one", "new_password": "copper-tundra-violin-26"}),
    )
    .await
    .assert_error(403, "wrong_password");
    app.post(
        path,
        Some(&admin.token),
        json!({"current_password": helpers::ADMIN_PASSWORD, "new_password": "short"}),
    )
    .await
    .assert_error(422, "validation_error");
    app.post(
        path,
        Some(&admin.token),
        json!({"current_password": helpers::ADMIN_PASSWORD, "new_password": "copper-tundra-violin-26"}),
    )
    .await
    .assert_status(204);
    app.post(
        "/api/auth/login",
        None,
        json!({"email": admin.email, "password": helpers::ADMIN_PASSWORD}),
    )
    .await
    .assert_error(401, "invalid_credentials");
    app.login(&admin.email, "copper-tundra-violin-26").await;
    app.post(
        path,
        None,
        json!({"current_password": "x", "new_password": "y"}),
    )
    .await
    .assert_error(401, "unauthorized");
}

#[tokio::test]
async fn tokens_expired_forged_unsigned_or_malformed_are_refused() {
    use jsonwebtoken::{EncodingKey, Header, encode};
    let app = spawn_app().await;
    let admin = app.signup("Tok Co").await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let sid = helpers::session_id_of(&admin.token);
    let claims = |exp: u64| json!({"sub": admin.user_id, "company_id": admin.company_id, "sid": sid, "role": "admin", "iat": now - 7200, "exp": exp});
    let expired = encode(
        &Header::default(),
        &claims(now - 3600),
        &EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap();
    let forged = encode(
        &Header::default(),
        &claims(now + 3600),
        &EncodingKey::from_secret(b"some-other-secret-0123456789abcdef"),
    )
    .unwrap();
    let genuine = encode(
        &Header::default(),
        &claims(now + 3600),
        &EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap();
    let b64 = |v: &serde_json::Value| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let unsigned = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&claims(now + 3600))
    );
    app.get("/api/auth/me", Some(&genuine))
        .await
        .assert_status(200);
    for token in [
        expired.as_str(),
        forged.as_str(),
        unsigned.as_str(),
        "garbage",
        "a.b.c",
    ] {
        app.get("/api/auth/me", Some(token))
            .await
            .assert_error(401, "unauthorized");
    }
    let raw = app
        .client
        .get(format!("{}/api/auth/me", app.address))
        .header("authorization", "Basic abc")
        .send()
        .await
        .unwrap();
    helpers::TestApp::read(raw)
        .await
        .assert_error(401, "unauthorized");
}

#[tokio::test]
async fn disabled_accounts_cannot_log_in() {
    let app = spawn_app().await;
    let admin = app.signup("Off Co").await;
    let owner = helpers::connect(&helpers::superuser_url(&app.dbname)).await;
    owner
        .execute(
            "UPDATE users SET is_active = false WHERE id = $1",
            &[&admin.user_id],
        )
        .await
        .unwrap();
    app.post(
        "/api/auth/login",
        None,
        json!({"email": admin.email, "password": helpers::ADMIN_PASSWORD}),
    )
    .await
    .assert_error(403, "account_disabled");
}

// ---- Password policy ----------------------------------------------------------------------

#[tokio::test]
async fn weak_and_account_derived_passwords_are_refused_wherever_a_password_is_set() {
    let app = spawn_app().await;
    let email = "grace.hopper@compilers.example";
    let signup = |password: &str| {
        json!({"email": email, "password": password, "full_name": "Grace Hopper",
               "company_name": "Cobol Works"})
    };
    for (password, names) in [
        ("12345678", "`password`"),
        ("password", "`password`"),
        ("        ", "`password`"),
        (email, "`email`"),
        ("GRACE.HOPPER@compilers.example", "`email`"),
        ("grace hopper", "`full_name`"),
        ("Cobol Works", "`company_name`"),
    ] {
        let resp = app.post("/api/auth/signup", None, signup(password)).await;
        resp.assert_error(422, "weak_password");
        let detail = resp.body["detail"].as_str().unwrap();
        assert!(detail.contains("`password`"), "{password:?}: {detail}");
        assert!(detail.contains(names), "{password:?}: {detail}");
    }
    // Nothing was created by the refusals; a strong password goes through.
    let created = app
        .post(
            "/api/auth/signup",
            None,
            signup("pumice-walrus-tangerine-8"),
        )
        .await;
    created.assert_status(201);
    let token = created.body["access_token"].as_str().unwrap().to_owned();
    let company_id = created.body["company_id"].as_str().unwrap().to_owned();

    // Changing a password: the same policy on the new one, naming `new_password`.
    for weak in ["password", "grace.hopper", "iloveyou1"] {
        let resp = app
            .post(
                "/api/auth/change-password",
                Some(&token),
                json!({"current_password": "pumice-walrus-tangerine-8", "new_password": weak}),
            )
            .await;
        resp.assert_error(422, "weak_password");
        assert!(
            resp.body["detail"]
                .as_str()
                .unwrap()
                .contains("`new_password`")
        );
    }
    app.login(email, "pumice-walrus-tangerine-8").await;

    // An admin giving a teammate a login: the teammate's email and name, and the company's.
    let teammate = |password: &str| {
        json!({"email": "alan.turing@compilers.example", "password": password,
               "full_name": "Alan Turing", "role": "employee"})
    };
    let path = format!("/api/company/{company_id}/users");
    for (password, names) in [
        ("alan.turing@compilers.example", "`email`"),
        ("Alan Turing 1912", "`full_name`"),
        ("cobolworks", "`company_name`"),
        ("qwertyuiop", "`password`"),
    ] {
        let resp = app.post(&path, Some(&token), teammate(password)).await;
        resp.assert_error(422, "weak_password");
        assert!(
            resp.body["detail"].as_str().unwrap().contains(names),
            "{password}: {}",
            resp.body
        );
    }
    app.post(&path, Some(&token), teammate("enigma-lobster-fjord-44"))
        .await
        .assert_status(201);
}

// ---- Token claims -------------------------------------------------------------------------

#[tokio::test]
async fn tokens_not_valid_yet_or_issued_in_the_future_are_refused() {
    use jsonwebtoken::{EncodingKey, Header, encode};
    let app = spawn_app().await;
    let admin = app.signup("Clock Co").await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let year = 365 * 86_400;
    let token = |claims: serde_json::Value| {
        encode(
            &Header::default(),
            &claims,
            &EncodingKey::from_secret(JWT_SECRET.as_bytes()),
        )
        .unwrap()
    };
    let claims = |iat: u64, nbf: Option<u64>| {
        let mut c = json!({"sub": admin.user_id, "company_id": admin.company_id, "role": "admin",
                           "sid": helpers::session_id_of(&admin.token),
                           "iat": iat, "exp": now + 2 * year});
        if let Some(nbf) = nbf {
            c["nbf"] = json!(nbf);
        }
        c
    };
    for valid in [claims(now, None), claims(now - 60, Some(now - 60))] {
        app.get("/api/auth/me", Some(&token(valid)))
            .await
            .assert_status(200);
    }
    for invalid in [
        claims(now, Some(now + year)),
        claims(now, Some(now + 120)),
        claims(now + year, None),
        claims(now + 120, None),
    ] {
        app.get("/api/auth/me", Some(&token(invalid.clone())))
            .await
            .assert_error(401, "unauthorized");
    }
}
