//! The console's account pages: sign-up and login forms, the pages the account emails link to
//! (reset, invitation, verification) and the sessions page, through a browser-like client.

use reqwest::header;
use serde_json::json;

use crate::{
    console_client::{ConsoleClient, Page},
    helpers::{
        ADMIN_PASSWORD, DESKTOP, TEAMMATE_PASSWORD, TestApp, new_email, signup_as, spawn_app,
        spawn_app_with, spawn_app_with_mail, wait_for,
    },
};

const NEW_PASSWORD: &str = "copper-lantern-meadow-42";

fn assert_signed_in_cookies(page: &Page) {
    let cookies = page.set_cookies();
    for name in ["cc_session=", "cc_refresh="] {
        let set: Vec<&&str> = cookies.iter().filter(|c| c.starts_with(name)).collect();
        assert_eq!(set.len(), 1, "{name} set once: {cookies:?}");
        assert!(!set[0].contains("Max-Age=0"), "{cookies:?}");
    }
}

fn assert_no_session_cookies(page: &Page) {
    assert!(
        page.set_cookies()
            .iter()
            .all(|c| !c.starts_with("cc_session=") || c.contains("Max-Age=0")),
        "{:?}",
        page.set_cookies()
    );
}

/// The access token the browser holds, for asking the API about its session.
fn access(console: &ConsoleClient) -> String {
    console.cookies["cc_session"].clone()
}

#[tokio::test]
async fn signing_up_through_the_form_opens_the_company_home() {
    let app = spawn_app().await;
    let mut console = ConsoleClient::new(&app);
    let page = console.get("/app/signup").await;
    page.assert_status(200);
    assert!(page.body.contains(r#"<label for="f-company_name">"#));

    // A bad address: the form again, the error next to the field, the values kept.
    let email = new_email("founder");
    let page = console
        .post_form(
            "/app/signup",
            &[
                ("company_name", "Typo Ltd"),
                ("full_name", "Fay Founder"),
                ("email", "not-an-address"),
                ("password", ADMIN_PASSWORD),
            ],
        )
        .await;
    page.assert_status(422);
    assert!(page.body.contains(r#"id="f-email-error""#), "{}", page.body);
    assert_eq!(
        page.input_value("full_name").as_deref(),
        Some("Fay Founder")
    );
    assert_eq!(page.input_value("password").as_deref(), Some(""));

    // A company named like a script is shown as text.
    let name = "<script>alert(1)</script> & Co";
    let page = console
        .post_form(
            "/app/signup",
            &[
                ("company_name", name),
                ("full_name", "Fay Founder"),
                ("email", &email),
                ("password", ADMIN_PASSWORD),
            ],
        )
        .await;
    page.assert_status(303);
    assert_eq!(page.location(), Some("/app"));
    assert_signed_in_cookies(&page);
    let home = console.get("/app").await;
    home.assert_status(200);
    assert!(
        home.body
            .contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co"),
        "{}",
        home.body
    );
    assert!(!home.body.contains("<script>alert(1)"));
    let me = app.get("/api/auth/me", Some(&access(&console))).await;
    me.assert_status(200);
    assert_eq!(me.body["email"], email.as_str());
    assert_eq!(me.body["role"], "admin");

    // Signed in, the sign-up and login pages lead into the console.
    for path in ["/app/signup", "/app/login"] {
        let page = console.get(path).await;
        page.assert_status(303);
        assert_eq!(page.location(), Some("/app"), "{path}");
    }
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_email_answer_alike() {
    let app = spawn_app().await;
    let admin = app.signup("Careful").await;
    let mut console = ConsoleClient::new(&app);
    let wrong_password = console
        .post_form(
            "/app/login",
            &[("email", &admin.email), ("password", "not-the-password-1")],
        )
        .await;
    wrong_password.assert_status(422);
    assert_no_session_cookies(&wrong_password);
    let unknown = console
        .post_form(
            "/app/login",
            &[
                ("email", &new_email("nobody")),
                ("password", "not-the-password-1"),
            ],
        )
        .await;
    unknown.assert_status(422);
    let message = "Incorrect email or password";
    assert!(
        wrong_password.body.contains(message),
        "{}",
        wrong_password.body
    );
    assert!(unknown.body.contains(message), "{}", unknown.body);
    // Nothing on either page says which of the two was wrong.
    for page in [&wrong_password, &unknown] {
        assert!(!page.body.contains("f-email-error") && !page.body.contains("f-password-error"));
        assert!(!page.body.to_lowercase().contains("no account"));
    }
    // The address typed stays in the form.
    assert_eq!(
        wrong_password.input_value("email").as_deref(),
        Some(admin.email.as_str())
    );
    console.get("/app").await.assert_status(303);
}

#[tokio::test]
async fn logging_in_goes_on_to_a_safe_next_only() {
    let app = spawn_app().await;
    let admin = app.signup("Onwards").await;

    let mut console = ConsoleClient::new(&app);
    let page = console.get("/app/sessions").await;
    assert_eq!(page.location(), Some("/app/login?next=%2Fapp%2Fsessions"));
    let page = console.get("/app/login?next=%2Fapp%2Fsessions").await;
    page.assert_status(200);
    assert_eq!(page.input_value("next").as_deref(), Some("/app/sessions"));
    let page = console
        .post_form(
            "/app/login",
            &[
                ("email", &admin.email),
                ("password", ADMIN_PASSWORD),
                ("next", "/app/sessions"),
            ],
        )
        .await;
    page.assert_status(303);
    assert_eq!(page.location(), Some("/app/sessions"));
    assert_signed_in_cookies(&page);
    console.get("/app/sessions").await.assert_status(200);

    // Another site as `next` leads to the console's home instead.
    for next in ["https://evil.example/", "//evil.example/app"] {
        let mut other = ConsoleClient::new(&app);
        let page = other
            .post_form(
                "/app/login",
                &[
                    ("email", &admin.email),
                    ("password", ADMIN_PASSWORD),
                    ("next", next),
                ],
            )
            .await;
        page.assert_status(303);
        assert_eq!(page.location(), Some("/app"), "{next}");
    }
}

#[tokio::test]
async fn the_apis_login_throttle_holds_for_the_form_too() {
    let app = spawn_app_with(&[("AUTH_ADDRESS_FAILURES_PER_MINUTE", "2")]).await;
    let mut console = ConsoleClient::new(&app);
    let guess = |n: usize| format!("guess-{n}@example.com");
    for n in 0..2 {
        console
            .post_form(
                "/app/login",
                &[("email", &guess(n)), ("password", "not-the-password-1")],
            )
            .await
            .assert_status(422);
    }
    let page = console
        .post_form(
            "/app/login",
            &[("email", &guess(2)), ("password", "not-the-password-1")],
        )
        .await;
    page.assert_status(429);
    assert!(page.header("Retry-After").is_some());
    assert!(
        page.body.contains("Too many failed attempts"),
        "{}",
        page.body
    );
    // Still the form, to try again later.
    assert!(page.body.contains(r#"action="/app/login""#));
}

#[tokio::test]
async fn a_login_form_posted_from_another_site_is_refused() {
    let app = spawn_app().await;
    let admin = app.signup("Guarded").await;
    let mut console = ConsoleClient::new(&app);
    let token = console.csrf().await;
    let fields = [
        ("email", admin.email.as_str()),
        ("password", ADMIN_PASSWORD),
    ];
    let page = console
        .post_form_as(
            "/app/login",
            &fields,
            Some("https://evil.example"),
            Some(&token),
        )
        .await;
    page.assert_status(403);
    assert!(page.body.contains("refused"), "{}", page.body);
    assert_no_session_cookies(&page);
    // Without the form's token, from the right origin: refused too.
    let origin = console.origin();
    let page = console
        .post_form_as("/app/login", &fields, Some(&origin), None)
        .await;
    page.assert_status(403);
    assert!(!console.cookies.contains_key("cc_session"));
}

#[tokio::test]
async fn logging_in_over_an_ended_sessions_refresh_cookie_keeps_the_new_session() {
    let app = spawn_app().await;
    let admin = app.signup("Returning").await;
    let mut console = ConsoleClient::signed_in(&app, &admin.email, ADMIN_PASSWORD).await;
    let old_refresh = console.cookies["cc_refresh"].clone();
    app.post("/api/auth/logout", Some(&access(&console)), json!({}))
        .await
        .assert_status(204);
    // The browser comes back later: its access token has expired, its refresh cookie names the
    // ended session.
    console.cookies.clear();
    console.csrf().await;
    console
        .cookies
        .insert("cc_refresh".into(), old_refresh.clone());

    let page = console
        .post_form(
            "/app/login",
            &[("email", &admin.email), ("password", ADMIN_PASSWORD)],
        )
        .await;
    page.assert_status(303);
    assert_eq!(page.location(), Some("/app"));
    // The new session's cookies, and nothing after them that forgets them.
    assert_signed_in_cookies(&page);
    assert_ne!(console.cookies.get("cc_refresh"), Some(&old_refresh));
    console.get("/app").await.assert_status(200);
    app.get("/api/auth/me", Some(&access(&console)))
        .await
        .assert_status(200);
}

/// The token of the `page` link in the latest email to `to` whose subject starts `subject`.
async fn emailed_token(app: &TestApp, to: &str, subject: &str, page: &str) -> String {
    let smtp = app.mail.as_ref().expect("an app with mail");
    let mut found = None;
    wait_for(&format!("{subject} to {to}"), async || {
        found = smtp
            .messages_to(to)
            .into_iter()
            .rfind(|m| m.subject.starts_with(subject));
        found.is_some()
    })
    .await;
    found.unwrap().token(page)
}

#[tokio::test]
async fn a_forgotten_password_is_reset_through_the_emailed_link() {
    let app = spawn_app_with_mail().await;
    let email = new_email("forgetful");
    signup_as(&app, &email, "Forgetful Ltd").await;
    let mut console = ConsoleClient::new(&app);

    // The same answer for an address with no account, and for one with.
    for address in [new_email("stranger"), email.clone()] {
        let page = console
            .post_form("/app/forgot-password", &[("email", &address)])
            .await;
        page.assert_status(303);
        assert_eq!(page.location(), Some("/app/forgot-password?done=1"));
    }
    let page = console.get("/app/forgot-password?done=1").await;
    assert!(page.body.contains("If an account exists"), "{}", page.body);
    // A malformed address is shown next to the field.
    let page = console
        .post_form("/app/forgot-password", &[("email", "nope")])
        .await;
    page.assert_status(422);
    assert!(page.body.contains(r#"id="f-email-error""#), "{}", page.body);

    let token = emailed_token(&app, &email, "Reset your password", "reset-password").await;
    let page = console
        .get(&format!("/app/reset-password?token={token}"))
        .await;
    page.assert_status(200);
    assert_eq!(page.input_value("token").as_deref(), Some(token.as_str()));

    // A password the policy refuses: the form again, the error next to the field.
    let page = console
        .post_form(
            "/app/reset-password",
            &[("token", &token), ("password", "password")],
        )
        .await;
    page.assert_status(422);
    assert!(
        page.body.contains(r#"id="f-password-error""#),
        "{}",
        page.body
    );

    let page = console
        .post_form(
            "/app/reset-password",
            &[("token", &token), ("password", NEW_PASSWORD)],
        )
        .await;
    page.assert_status(303);
    assert_eq!(page.location(), Some("/app/login?notice=password-reset"));
    let page = console.get("/app/login?notice=password-reset").await;
    assert!(page.body.contains("Your password was changed"));

    // The link is spent; the old password is gone, the new one logs in.
    let again = console
        .post_form(
            "/app/reset-password",
            &[("token", &token), ("password", NEW_PASSWORD)],
        )
        .await;
    again.assert_status(410);
    let page = console
        .post_form(
            "/app/login",
            &[("email", &email), ("password", ADMIN_PASSWORD)],
        )
        .await;
    page.assert_status(422);
    let page = console
        .post_form(
            "/app/login",
            &[("email", &email), ("password", NEW_PASSWORD)],
        )
        .await;
    page.assert_status(303);
    console.get("/app").await.assert_status(200);
}

#[tokio::test]
async fn an_invitation_is_accepted_through_its_page() {
    let app = spawn_app_with_mail().await;
    let admin = app.signup("Inviting").await;
    let email = new_email("invited");
    let token = app.invitation_token(&admin, &email, "employee", None).await;
    let mut console = ConsoleClient::new(&app);
    let page = console
        .get(&format!("/app/accept-invitation?token={token}"))
        .await;
    page.assert_status(200);
    assert_eq!(page.input_value("token").as_deref(), Some(token.as_str()));

    let page = console
        .post_form(
            "/app/accept-invitation",
            &[
                ("token", &token),
                ("full_name", "Ivy Invited"),
                ("password", ""),
            ],
        )
        .await;
    page.assert_status(422);
    assert!(
        page.body.contains(r#"id="f-password-error""#),
        "{}",
        page.body
    );
    assert_eq!(
        page.input_value("full_name").as_deref(),
        Some("Ivy Invited")
    );

    let page = console
        .post_form(
            "/app/accept-invitation",
            &[
                ("token", &token),
                ("full_name", "Ivy Invited"),
                ("password", TEAMMATE_PASSWORD),
            ],
        )
        .await;
    page.assert_status(303);
    assert_eq!(page.location(), Some("/app"));
    assert_signed_in_cookies(&page);
    let me = app.get("/api/auth/me", Some(&access(&console))).await;
    me.assert_status(200);
    assert_eq!(me.body["email"], email.as_str());
    assert_eq!(me.body["full_name"], "Ivy Invited");
    assert_eq!(me.body["role"], "employee");
    assert_eq!(me.body["company_id"], admin.company_id.to_string());
    // Every role has its sessions page.
    let page = console.get("/app/sessions").await;
    page.assert_status(200);
    assert!(page.body.contains("(this session)"));

    // The link works once.
    let mut other = ConsoleClient::new(&app);
    let page = other
        .post_form(
            "/app/accept-invitation",
            &[("token", &token), ("password", TEAMMATE_PASSWORD)],
        )
        .await;
    page.assert_status(410);
    assert!(page.body.contains("accepted already"), "{}", page.body);
}

#[tokio::test]
async fn opening_a_verification_link_does_not_spend_it_confirming_does() {
    let app = spawn_app_with_mail().await;
    let email = new_email("verifying");
    signup_as(&app, &email, "Verified Co").await;
    let token = emailed_token(&app, &email, "Confirm your email", "verify-email").await;
    let mut console = ConsoleClient::signed_in(&app, &email, ADMIN_PASSWORD).await;
    let verified = async |console: &ConsoleClient| {
        app.get("/api/auth/me", Some(&access(console))).await.body["email_verified"].clone()
    };

    // A mail scanner, then the person: both only see a confirm button.
    let mut scanner = ConsoleClient::new(&app);
    for browser in [&mut scanner, &mut console] {
        let page = browser
            .get(&format!("/app/verify-email?token={token}"))
            .await;
        page.assert_status(200);
        assert!(
            page.body.contains("Confirm my email address"),
            "{}",
            page.body
        );
        assert_eq!(page.input_value("token").as_deref(), Some(token.as_str()));
    }
    assert_eq!(verified(&console).await, json!(false));

    let page = console
        .post_form("/app/verify-email", &[("token", &token)])
        .await;
    page.assert_status(303);
    assert_eq!(page.location(), Some("/app/verify-email?done=verified"));
    assert_eq!(verified(&console).await, json!(true));
    let page = console.get("/app/verify-email?done=verified").await;
    assert!(page.body.contains("is confirmed"));

    // Spent now; and a verified address gets no new link.
    let again = console
        .post_form("/app/verify-email", &[("token", &token)])
        .await;
    again.assert_status(410);
    let resend = console.post_form("/app/verify-email/resend", &[]).await;
    resend.assert_status(409);
    assert!(resend.body.contains("verified already"), "{}", resend.body);
}

#[tokio::test]
async fn a_new_verification_link_is_sent_to_a_signed_in_user_only() {
    let app = spawn_app_with_mail().await;
    let email = new_email("resending");
    signup_as(&app, &email, "Resent Co").await;
    emailed_token(&app, &email, "Confirm your email", "verify-email").await;
    let mut anonymous = ConsoleClient::new(&app);
    let page = anonymous.post_form("/app/verify-email/resend", &[]).await;
    page.assert_status(303);
    // Back to the page with the button after logging in, not to the form's target.
    assert_eq!(
        page.location(),
        Some("/app/login?next=%2Fapp%2Fverify%2Demail")
    );

    let mut console = ConsoleClient::signed_in(&app, &email, ADMIN_PASSWORD).await;
    let page = console.post_form("/app/verify-email/resend", &[]).await;
    page.assert_status(303);
    assert_eq!(page.location(), Some("/app/verify-email?done=resent"));
    let smtp = app.mail.as_ref().unwrap();
    wait_for("a second verification email", async || {
        smtp.messages_to(&email)
            .iter()
            .filter(|m| m.subject.starts_with("Confirm your email"))
            .count()
            == 2
    })
    .await;
}

/// Logs in through the API as `email` with a desktop browser's user agent; its console.
async fn desktop_session(app: &TestApp, email: &str) -> ConsoleClient {
    let resp = app
        .client
        .post(format!("{}/api/auth/login", app.address))
        .header(header::USER_AGENT, DESKTOP)
        .json(&json!({"email": email, "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    let mut console = ConsoleClient::new(app);
    console.set_session(
        body["access_token"].as_str().unwrap(),
        body["refresh_token"].as_str().unwrap(),
    );
    console
}

/// The ids in the page's "end this session" forms.
fn revocable_ids(page: &Page) -> Vec<String> {
    page.body
        .split(r#"action="/app/sessions/"#)
        .skip(1)
        .filter_map(|rest| rest.split_once("/revoke\"").map(|(id, _)| id.to_owned()))
        .collect()
}

#[tokio::test]
async fn the_sessions_page_lists_and_ends_the_users_own_sessions() {
    let app = spawn_app().await;
    let admin = app.signup("Many Browsers").await;
    let mut laptop = ConsoleClient::signed_in(&app, &admin.email, ADMIN_PASSWORD).await;
    let mut desktop = desktop_session(&app, &admin.email).await;

    let page = laptop.get("/app/sessions").await;
    page.assert_status(200);
    assert!(page.body.contains(r#"aria-current="page""#));
    assert!(page.body.contains("(this session)"), "{}", page.body);
    assert!(page.body.contains("Chrome on Windows"), "{}", page.body);
    assert!(page.body.contains(r#"<th scope="col">Last used</th>"#));
    // Newest first: the desktop logged in last.
    assert!(page.body.find("Chrome on Windows") < page.body.find("(this session)"));
    // The others (the desktop's, the sign-up's) can be ended from here; this one cannot.
    let ids = revocable_ids(&page);
    assert_eq!(ids.len(), 2, "{ids:?}");
    let desktop_id = app
        .get("/api/auth/sessions", Some(&access(&desktop)))
        .await
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == json!(true))
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .unwrap();
    assert!(ids.contains(&desktop_id), "{ids:?}");

    // Another company's session, and no session at all: not found.
    let stranger = app.signup("Strangers").await;
    let theirs = app.get("/api/auth/sessions", Some(&stranger.token)).await;
    let their_id = theirs.body[0]["id"].as_str().unwrap().to_owned();
    for id in [
        their_id.as_str(),
        "00000000-0000-0000-0000-000000000000",
        "nope",
    ] {
        let page = laptop
            .post_form(&format!("/app/sessions/{id}/revoke"), &[])
            .await;
        page.assert_status(404);
        assert!(page.body.contains("Session not found"), "{}", page.body);
    }
    app.get("/api/auth/me", Some(&stranger.token))
        .await
        .assert_status(200);

    let page = laptop
        .post_form(&format!("/app/sessions/{desktop_id}/revoke"), &[])
        .await;
    page.assert_status(303);
    assert_eq!(page.location(), Some("/app/sessions"));
    // The desktop is out at once: its next page is the login page.
    let page = desktop.get("/app").await;
    page.assert_status(303);
    assert_eq!(page.location(), Some("/app/login"));
    let page = laptop.get("/app/sessions").await;
    let left = revocable_ids(&page);
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(!left.contains(&desktop_id));
    laptop.get("/app").await.assert_status(200);
}

#[tokio::test]
async fn logging_out_the_other_sessions_keeps_this_one() {
    let app = spawn_app().await;
    let admin = app.signup("Tidy").await;
    let mut here = ConsoleClient::signed_in(&app, &admin.email, ADMIN_PASSWORD).await;
    let mut others = vec![
        desktop_session(&app, &admin.email).await,
        desktop_session(&app, &admin.email).await,
    ];
    let page = here.post_form("/app/sessions/logout-others", &[]).await;
    page.assert_status(303);
    assert_eq!(page.location(), Some("/app/sessions"));
    for other in &mut others {
        other.get("/app").await.assert_status(303);
    }
    let page = here.get("/app/sessions").await;
    page.assert_status(200);
    assert!(revocable_ids(&page).is_empty());
    assert!(page.body.contains("No other sessions"), "{}", page.body);
    app.get("/api/auth/me", Some(&access(&here)))
        .await
        .assert_status(200);
}

#[tokio::test]
async fn the_front_page_says_what_callingcard_is_and_leads_in() {
    let app = spawn_app().await;
    let resp = app
        .client
        .get(format!("{}/", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let csp = resp.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"));
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let body = resp.text().await.unwrap();
    assert!(body.contains("Digital business cards"), "{body}");
    for link in [
        r#"href="/app/signup""#,
        r#"href="/app/login""#,
        r#"href="/docs""#,
    ] {
        assert!(body.contains(link), "{link}: {body}");
    }
}
