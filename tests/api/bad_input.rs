//! Bad input is a 422 naming the field, never a 500, and never stored: NUL characters anywhere,
//! control characters in one-line fields, bidirectional overrides in what a card shows, and JSON
//! values of the wrong type (which must not be coerced into strings).

use crate::helpers::{self, TestApp, connect, spawn_app, superuser_url};
use serde_json::{Value, json};

/// Asserts a 422 `validation_error` whose detail names `field`.
#[track_caller]
fn assert_refused(resp: &helpers::Response, field: &str, context: &str) {
    assert_eq!(
        resp.status.as_u16(),
        422,
        "{context}: unexpected status; body: {}",
        resp.body
    );
    assert_eq!(
        resp.body["code"], "validation_error",
        "{context}: {}",
        resp.body
    );
    let detail = resp.body["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains(field),
        "{context}: the detail does not name `{field}`: {detail}"
    );
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    let owner = connect(&superuser_url(&app.dbname)).await;
    owner.query_one(sql, &[]).await.unwrap().get(0)
}

#[tokio::test]
async fn a_nul_in_any_json_string_is_a_422_naming_the_field() {
    let app = spawn_app().await;
    let resp = app
        .post(
            "/api/auth/login",
            None,
            json!({"email": "a\u{0}@example.com", "password": "x"}),
        )
        .await;
    assert_refused(&resp, "`email` must not contain NUL", "login");
    assert_refused(
        &app.post(
            "/api/auth/signup",
            None,
            json!({"email": "nul@example.com", "password": "s3cret-password",
                   "full_name": "Nul\u{0}Person"}),
        )
        .await,
        "`full_name`",
        "signup",
    );
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM users WHERE email = 'nul@example.com'"
        )
        .await,
        0
    );

    let admin = app.signup("Nul Co").await;
    let employees = format!("/api/company/{}/employees", admin.company_id);
    for (body, field) in [
        (
            json!({"full_name": "Jane", "job_title": "CEO\u{0}"}),
            "`job_title`",
        ),
        (json!({"full_name": "Jane", "bio": "line\u{0}"}), "`bio`"),
        (
            json!({"full_name": "Jane", "social_links": {"github": "https://github.com/\u{0}"}}),
            "`social_links.github`",
        ),
        (
            json!({"full_name": "Jane", "social_links": {"git\u{0}hub": "https://github.com/"}}),
            "`social_links`",
        ),
    ] {
        let resp = app.post(&employees, Some(&admin.token), body.clone()).await;
        assert_refused(&resp, field, &body.to_string());
    }
    assert_eq!(count(&app, "SELECT count(*) FROM employees").await, 0);

    let company = format!("/api/company/{}", admin.company_id);
    let resp = app
        .put(&company, Some(&admin.token), json!({"name": "Evil\u{0}Co"}))
        .await;
    assert_refused(&resp, "`name`", "company update");
    assert_eq!(
        app.get(&company, Some(&admin.token)).await.body["name"],
        "Nul Co"
    );
    let resp = app
        .post(
            "/api/auth/change-password",
            Some(&admin.token),
            json!({"current_password": "s3cret-password", "new_password": "new\u{0}password"}),
        )
        .await;
    assert_refused(&resp, "`new_password`", "change password");

    // Percent-encoded NUL in a path or query parameter that would reach SQL.
    let slug = app.get(&company, Some(&admin.token)).await.body["slug"]
        .as_str()
        .unwrap()
        .to_owned();
    for path in [
        format!("/card/{slug}%00/someone"),
        format!("/api/card/{slug}/someone%00/vcard"),
        format!("/api/card/{slug}/someone/qr.png?fg=%2300%00"),
    ] {
        let resp = app.get(&path, None).await;
        resp.assert_error(422, "invalid_parameter");
        assert!(
            resp.body["detail"]
                .as_str()
                .is_some_and(|d| d.contains("NUL")),
            "{path}: {}",
            resp.body
        );
    }
}

#[tokio::test]
async fn control_characters_and_bidi_overrides_are_refused_where_a_card_shows_them() {
    let app = spawn_app().await;
    let admin = app.signup("Controls Co").await;
    let employees = format!("/api/company/{}/employees", admin.company_id);
    let refused = [
        (json!({"full_name": "Jane\nSmith"}), "`full_name`"),
        (json!({"full_name": "Jane\tSmith"}), "`full_name`"),
        (json!({"full_name": "\u{1b}[31mJane"}), "`full_name`"),
        (
            json!({"full_name": "Jane", "job_title": "CEO\u{7}"}),
            "`job_title`",
        ),
        (
            json!({"full_name": "Jane", "job_title": "A\nB"}),
            "`job_title`",
        ),
        (
            json!({"full_name": "Jane", "email": "j\u{1}@example.com"}),
            "`email`",
        ),
        (json!({"full_name": "Jane", "bio": "ok\u{1b}[2J"}), "`bio`"),
        // Bidirectional overrides and isolates: in every field a card or vCard shows.
        (json!({"full_name": "Jane \u{202E}htimS"}), "`full_name`"),
        (
            json!({"full_name": "Jane", "job_title": "\u{2066}CEO\u{2069}"}),
            "`job_title`",
        ),
        (
            json!({"full_name": "Jane", "bio": "Hi\n\u{202D}there"}),
            "`bio`",
        ),
        (
            json!({"full_name": "Jane", "social_links": {"\u{202E}buhtig": "https://github.com/j"}}),
            "`social_links name`",
        ),
    ];
    for (body, field) in refused {
        let resp = app.post(&employees, Some(&admin.token), body.clone()).await;
        assert_refused(&resp, field, &body.to_string());
    }
    assert_eq!(count(&app, "SELECT count(*) FROM employees").await, 0);

    // A bio keeps its line breaks and tabs; right-to-left text is plain text.
    let created = app
        .post(
            &employees,
            Some(&admin.token),
            json!({"full_name": "שרה כהן", "bio": "First line\n\tSecond line"}),
        )
        .await;
    created.assert_status(201);
    assert_eq!(created.body["bio"], "First line\n\tSecond line");
    let employee = format!("/api/employees/{}", created.id());
    let resp = app
        .put(
            &employee,
            Some(&admin.token),
            json!({"job_title": "Head\r\nof sales"}),
        )
        .await;
    assert_refused(&resp, "`job_title`", "update");
    assert_eq!(
        app.get(&employee, Some(&admin.token)).await.body["job_title"],
        Value::Null
    );

    let company = format!("/api/company/{}", admin.company_id);
    for name in ["Evil\u{202E}oC", "Two\nLines", "Bell\u{7}"] {
        let resp = app
            .put(&company, Some(&admin.token), json!({"name": name}))
            .await;
        assert_refused(&resp, "`name`", name);
    }
    assert_eq!(
        app.get(&company, Some(&admin.token)).await.body["name"],
        "Controls Co"
    );
    assert_refused(
        &app.post(
            &format!("/api/company/{}/users", admin.company_id),
            Some(&admin.token),
            json!({"email": "t@example.com", "password": "teammate-password",
                   "full_name": "Team\u{202E}mate", "role": "employee"}),
        )
        .await,
        "`full_name`",
        "new login",
    );
}

#[tokio::test]
async fn a_json_value_of_the_wrong_type_is_a_422_and_nothing_is_stored() {
    let app = spawn_app().await;
    let admin = app.signup("Types Co").await;
    let employees = format!("/api/company/{}/employees", admin.company_id);
    let mut bodies = Vec::new();
    for wrong in [json!(false), json!(true), json!(123), json!(1.5)] {
        bodies.push((json!({"full_name": wrong}), "full_name"));
        for field in [
            "job_title",
            "email",
            "phone",
            "whatsapp",
            "photo_url",
            "bio",
        ] {
            let mut body = json!({"full_name": "Jane"});
            body[field] = wrong.clone();
            bodies.push((body, field));
        }
        bodies.push((
            json!({"full_name": "Jane", "social_links": {"github": wrong}}),
            "social_links.github",
        ));
    }
    for (body, field) in &bodies {
        let resp = app.post(&employees, Some(&admin.token), body.clone()).await;
        assert_refused(&resp, &format!("`{field}` must be text"), &body.to_string());
    }
    assert_eq!(count(&app, "SELECT count(*) FROM employees").await, 0);

    let employee = app.add_employee(&admin, "Jane Typed").await;
    let path = format!("/api/employees/{}", helpers::uuid_of(&employee));
    for (body, field) in [
        (json!({"full_name": false}), "full_name"),
        (json!({"job_title": true}), "job_title"),
        (json!({"bio": 7}), "bio"),
        (json!({"email": 1.5}), "email"),
    ] {
        let resp = app.put(&path, Some(&admin.token), body.clone()).await;
        assert_refused(&resp, &format!("`{field}` must be text"), &body.to_string());
    }
    let after = app.get(&path, Some(&admin.token)).await;
    assert_eq!(after.body["full_name"], "Jane Typed");
    assert_eq!(after.body["job_title"], employee["job_title"]);
    assert_eq!(after.body["email"], employee["email"]);

    let company = format!("/api/company/{}", admin.company_id);
    for (body, field) in [
        (json!({"name": 123}), "name"),
        (json!({"domain": true}), "domain"),
        (json!({"brand_color": 0}), "brand_color"),
    ] {
        let resp = app.put(&company, Some(&admin.token), body.clone()).await;
        assert_refused(&resp, &format!("`{field}` must be text"), &body.to_string());
    }
    assert_eq!(
        app.get(&company, Some(&admin.token)).await.body["name"],
        "Types Co"
    );

    let root = app.superadmin().await;
    let resp = app
        .post("/api/company", Some(&root.token), json!({"name": false}))
        .await;
    assert_refused(&resp, "`name` must be text", "create company");
    assert_eq!(
        count(&app, "SELECT count(*) FROM companies WHERE name = 'false'").await,
        0
    );

    // Sign-up, login and logins: a number is no email, name or password.
    let resp = app
        .post(
            "/api/auth/signup",
            None,
            json!({"email": "typed@example.com", "password": 1234567890, "full_name": "Ty"}),
        )
        .await;
    assert_refused(&resp, "`password` must be text", "signup password");
    let resp = app
        .post(
            "/api/auth/signup",
            None,
            json!({"email": "typed@example.com", "password": "s3cret-password", "full_name": 5}),
        )
        .await;
    assert_refused(&resp, "`full_name` must be text", "signup full_name");
    let resp = app
        .post(
            "/api/auth/login",
            None,
            json!({"email": 5, "password": "x"}),
        )
        .await;
    assert_refused(&resp, "`email` must be text", "login");
    let resp = app
        .post(
            &format!("/api/company/{}/users", admin.company_id),
            Some(&admin.token),
            json!({"email": "t@example.com", "password": "teammate-password",
                   "full_name": true, "role": "employee"}),
        )
        .await;
    assert_refused(&resp, "`full_name` must be text", "new login");
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM users WHERE email IN ('typed@example.com', 't@example.com')"
        )
        .await,
        0
    );
    let resp = app
        .put(
            &format!("/api/company/{}/subscription", admin.company_id),
            Some(&root.token),
            json!({"plan": 1}),
        )
        .await;
    assert_refused(&resp, "`plan` must be one of `free`", "plan");
}

/// The framework's own refusals read as sentences about the field, never as type names.
#[tokio::test]
async fn parse_errors_name_the_field_in_words() {
    let app = spawn_app().await;
    let no_type_names = |resp: &helpers::Response| {
        let detail = resp.body["detail"].as_str().unwrap_or_default().to_owned();
        for jargon in [
            "Expected input type",
            "occurred while parsing",
            "verification failed",
        ] {
            assert!(!detail.contains(jargon), "{detail}");
        }
        detail
    };
    let resp = app
        .post(
            "/api/auth/signup",
            None,
            json!({"email": "n@example.com", "password": "s3cret-password", "full_name": null}),
        )
        .await;
    assert_refused(&resp, "`full_name` must be text, not null", "null name");
    no_type_names(&resp);
    let resp = app
        .post(
            "/api/auth/signup",
            None,
            json!({"email": "n@example.com", "password": "s3cret-password"}),
        )
        .await;
    assert_refused(&resp, "`full_name` is required", "missing name");
    let resp = app
        .post(
            "/api/auth/login",
            None,
            json!({"email": "a@example.com", "password": "x".repeat(300)}),
        )
        .await;
    assert_refused(&resp, "`password` must be at most 256 characters", "long");
    no_type_names(&resp);
    let resp = app.post("/api/auth/login", None, json!([1, 2])).await;
    assert_refused(&resp, "JSON object", "not an object");

    let admin = app.signup("Words Co").await;
    let resp = app
        .put(
            &format!("/api/company/{}", admin.company_id),
            Some(&admin.token),
            json!({"brand_color": "#12345678"}),
        )
        .await;
    assert_refused(&resp, "`brand_color` must be at most 7 characters", "color");
    no_type_names(&resp);
    let employees = format!("/api/company/{}/employees", admin.company_id);
    for (query, words) in [
        ("limit=abc", "`limit` must be a whole number"),
        ("limit=-1", "`limit` must be a whole number"),
        ("skip=1.5", "`skip` must be a whole number"),
    ] {
        let resp = app
            .get(&format!("{employees}?{query}"), Some(&admin.token))
            .await;
        resp.assert_error(422, "invalid_parameter");
        let detail = no_type_names(&resp);
        assert!(detail.contains(words), "{query}: {detail}");
    }
    let resp = app
        .get("/api/employees/not-a-uuid", Some(&admin.token))
        .await;
    resp.assert_error(422, "invalid_parameter");
    assert!(
        resp.body["detail"]
            .as_str()
            .unwrap()
            .contains("`employee_id` in the path must be a UUID"),
        "{}",
        resp.body
    );
}
