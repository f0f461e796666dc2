//! The console's admin pages: Teammates (invitations, roles, deactivation, the last-admin rule),
//! the audit log with its filters, and an employee's own card under "My card".

use std::io::Cursor;

use uuid::Uuid;

use crate::{
    console_client::ConsoleClient,
    helpers::{ADMIN_PASSWORD, TestApp, spawn_app, spawn_app_with_mail, uuid_of},
};

fn fresh_email(what: &str) -> String {
    format!("{what}-{}@example.com", Uuid::new_v4().simple())
}

/// The login as the API sees it.
async fn login_of(app: &TestApp, admin: &crate::helpers::Session, id: Uuid) -> serde_json::Value {
    let resp = app
        .get(
            &format!("/api/company/{}/users/{id}", admin.company_id),
            Some(&admin.token),
        )
        .await;
    resp.assert_status(200);
    resp.body
}

#[tokio::test]
async fn an_admin_invites_a_teammate_changes_roles_and_cannot_lose_the_last_admin() {
    let app = spawn_app_with_mail().await;
    let admin = app.signup("Team & Co").await;
    let mut console = ConsoleClient::signed_in(&app, &admin.email, ADMIN_PASSWORD).await;

    let page = console.get("/app/teammates").await;
    page.assert_status(200);
    assert!(page.body.contains(&admin.email), "{}", page.body);
    assert!(page.body.contains("No invitations are waiting"));

    // A bad address is shown next to its field, the form kept.
    let page = console
        .post_form(
            "/app/teammates/invite",
            &[("email", "not-an-email"), ("role", "employee")],
        )
        .await;
    page.assert_status(422);
    assert!(page.body.contains(r#"id="f-email-error""#), "{}", page.body);
    assert!(page.body.contains(r#"aria-invalid="true""#));
    assert_eq!(page.input_value("email").as_deref(), Some("not-an-email"));

    let invited = fresh_email("invited");
    let page = console
        .post_form(
            "/app/teammates/invite",
            &[("email", &invited), ("role", "admin")],
        )
        .await;
    page.assert_status(303);
    assert_eq!(page.location(), Some("/app/teammates?done=invited"));
    let message = app
        .mail
        .as_ref()
        .expect("the app sends mail")
        .wait_for_message_to(&invited)
        .await;
    assert!(message.text.contains("/app/accept-invitation?token="));
    let page = console.get("/app/teammates?done=invited").await;
    assert!(page.body.contains("Invitation sent."));
    assert!(page.body.contains(&invited));

    // Inviting an address that has a login is refused next to the field.
    let page = console
        .post_form(
            "/app/teammates/invite",
            &[("email", &admin.email), ("role", "employee")],
        )
        .await;
    page.assert_status(422);
    assert!(page.body.contains("already exists"), "{}", page.body);

    // A teammate made admin, then deactivated.
    let teammate = app.add_user(&admin, "employee", None).await;
    let role_path = format!("/app/teammates/{}/role", teammate.user_id);
    let page = console.post_form(&role_path, &[("role", "admin")]).await;
    page.assert_status(303);
    assert_eq!(
        login_of(&app, &admin, teammate.user_id).await["role"],
        "admin"
    );
    let page = console
        .post_form(
            &format!("/app/teammates/{}/deactivate", teammate.user_id),
            &[("active", "false")],
        )
        .await;
    page.assert_status(303);
    assert_eq!(
        login_of(&app, &admin, teammate.user_id).await["is_active"],
        false
    );
    let page = console.get("/app/teammates").await;
    assert!(page.body.contains("Deactivated"));
    assert!(page.body.contains("Reactivate"));

    // The admin is now the only active one: neither demoted nor removed.
    let me_role = format!("/app/teammates/{}/role", admin.user_id);
    let page = console.post_form(&me_role, &[("role", "employee")]).await;
    page.assert_status(422);
    assert!(page.body.contains("last active admin"), "{}", page.body);
    assert!(page.body.contains(r#"role="alert""#));
    let page = console
        .post_form(&format!("/app/teammates/{}/remove", admin.user_id), &[])
        .await;
    page.assert_status(422);
    assert!(page.body.contains("last active admin"));
    assert_eq!(login_of(&app, &admin, admin.user_id).await["role"], "admin");

    // Removing the teammate works; so does withdrawing the invitation.
    let page = console
        .post_form(&format!("/app/teammates/{}/remove", teammate.user_id), &[])
        .await;
    page.assert_status(303);
    let pending = app
        .get(
            &format!("/api/company/{}/invitations", admin.company_id),
            Some(&admin.token),
        )
        .await;
    let invitation = pending.body[0]["id"].as_str().unwrap().to_owned();
    let page = console
        .post_form(
            &format!("/app/teammates/invitations/{invitation}/revoke"),
            &[],
        )
        .await;
    page.assert_status(303);
    let page = console.get("/app/teammates").await;
    assert!(!page.body.contains(&invited));
    assert!(!page.body.contains(&teammate.email));
}

#[tokio::test]
async fn another_companys_logins_and_invitations_are_not_found() {
    let app = spawn_app().await;
    let admin = app.signup("Home Team").await;
    let other = app.signup("Away Team").await;
    let stranger = app.add_user(&other, "employee", None).await;
    let mut console = ConsoleClient::signed_in(&app, &admin.email, ADMIN_PASSWORD).await;
    for (path, fields) in [
        (
            format!("/app/teammates/{}/role", stranger.user_id),
            vec![("role", "admin")],
        ),
        (
            format!("/app/teammates/{}/deactivate", stranger.user_id),
            vec![("active", "false")],
        ),
        (
            format!("/app/teammates/{}/remove", stranger.user_id),
            vec![],
        ),
        (
            format!("/app/teammates/invitations/{}/revoke", Uuid::new_v4()),
            vec![],
        ),
        ("/app/teammates/not-a-uuid/remove".to_owned(), vec![]),
    ] {
        let page = console.post_form(&path, &fields).await;
        page.assert_status(404);
        assert!(page.body.contains("Not found"), "{path}");
    }
    // Nothing happened to the stranger.
    assert_eq!(
        login_of(&app, &other, stranger.user_id).await["is_active"],
        true
    );
}

#[tokio::test]
async fn the_audit_log_lists_actions_and_filters_them() {
    let app = spawn_app().await;
    let admin = app.signup("Audited").await;
    let teammate = app.add_user(&admin, "employee", None).await;
    let mut console = ConsoleClient::signed_in(&app, &admin.email, ADMIN_PASSWORD).await;
    console
        .post_form(
            &format!("/app/teammates/{}/role", teammate.user_id),
            &[("role", "admin")],
        )
        .await
        .assert_status(303);

    let page = console.get("/app/audit").await;
    page.assert_status(200);
    assert!(page.body.contains("user.created"), "{}", page.body);
    assert!(page.body.contains("user.updated"));
    assert!(page.body.contains("<th scope=\"col\">Action</th>"));

    let page = console.get("/app/audit?action=user.updated").await;
    page.assert_status(200);
    assert!(page.body.contains("<code>user.updated</code>"));
    assert!(!page.body.contains("<code>user.created</code>"));
    assert!(page.body.contains("role"), "the changed field is named");

    let page = console
        .get(&format!("/app/audit?actor={}", teammate.user_id))
        .await;
    page.assert_status(200);
    assert!(!page.body.contains("<code>user.updated</code>"));

    // A bad filter is refused next to its field.
    let page = console.get("/app/audit?action=Nope").await;
    page.assert_status(422);
    assert!(
        page.body.contains(r#"id="f-action-error""#),
        "{}",
        page.body
    );

    // An empty range says so.
    let page = console
        .get("/app/audit?from=2001-01-01&to=2001-01-02")
        .await;
    page.assert_status(200);
    assert!(page.body.contains("Nothing matches these filters"));
}

/// A 48×48 PNG of one color.
fn png() -> Vec<u8> {
    let image = image::RgbImage::from_pixel(48, 48, image::Rgb([20, 120, 200]));
    let mut png = Vec::new();
    image
        .write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
        .expect("encoding a PNG");
    png
}

#[tokio::test]
async fn an_employee_edits_their_own_card_and_cannot_open_admin_pages() {
    let app = spawn_app().await;
    let admin = app.signup("Cards Inc").await;
    let employee_id = uuid_of(&app.add_employee(&admin, "Erin Employee").await);
    let login = app.add_user(&admin, "employee", Some(employee_id)).await;
    let mut console =
        ConsoleClient::signed_in(&app, &login.email, crate::helpers::TEAMMATE_PASSWORD).await;

    let page = console.get("/app/me").await;
    page.assert_status(200);
    assert_eq!(
        page.input_value("full_name").as_deref(),
        Some("Erin Employee")
    );
    assert!(
        page.body.contains("/api/card/"),
        "links to the QR code and vCard"
    );

    // A bad field is shown next to it; nothing is saved.
    let page = console
        .post_form(
            "/app/me",
            &[
                ("full_name", "Erin"),
                ("email", "nope"),
                ("job_title", "Lead"),
            ],
        )
        .await;
    page.assert_status(422);
    assert!(page.body.contains(r#"id="f-email-error""#), "{}", page.body);
    assert_eq!(page.input_value("job_title").as_deref(), Some("Lead"));

    let xss = "<script>alert(1)</script>";
    let page = console
        .post_form(
            "/app/me",
            &[
                ("full_name", "Erin Edited"),
                ("job_title", xss),
                ("email", "erin@example.com"),
                ("phone", ""),
                ("whatsapp", ""),
                ("bio", "Hello"),
            ],
        )
        .await;
    page.assert_status(303);
    assert_eq!(page.location(), Some("/app/me?done=saved"));
    let page = console.get("/app/me?done=saved").await;
    assert!(page.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!page.body.contains(xss));
    let resp = app
        .get(&format!("/api/employees/{employee_id}"), Some(&admin.token))
        .await;
    assert_eq!(resp.body["full_name"], "Erin Edited");
    assert_eq!(resp.body["job_title"], xss);

    // The photo goes through the API's upload flow.
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(png()).file_name("me.png"),
    );
    let page = console.post_multipart("/app/me/photo", form).await;
    page.assert_status(303);
    let resp = app
        .get(&format!("/api/employees/{employee_id}"), Some(&admin.token))
        .await;
    assert!(
        resp.body["photo_url"]
            .as_str()
            .unwrap()
            .contains("/media/photos/")
    );
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(b"not an image".to_vec()).file_name("x.png"),
    );
    let page = console.post_multipart("/app/me/photo", form).await;
    page.assert_status(422);
    assert!(page.body.contains(r#"id="f-file-error""#), "{}", page.body);
    let page = console.post_form("/app/me/photo/remove", &[]).await;
    page.assert_status(303);
    let resp = app
        .get(&format!("/api/employees/{employee_id}"), Some(&admin.token))
        .await;
    assert!(resp.body["photo_url"].is_null(), "{}", resp.body);

    // Admin pages are not for employees.
    for path in ["/app/teammates", "/app/audit"] {
        let page = console.get(path).await;
        page.assert_status(403);
        assert!(page.body.contains("Not allowed"), "{path}");
    }
    let page = console
        .post_form(
            "/app/teammates/invite",
            &[("email", "x@example.com"), ("role", "admin")],
        )
        .await;
    page.assert_status(403);
}

#[tokio::test]
async fn my_card_without_a_linked_record_says_what_to_do() {
    let app = spawn_app().await;
    let admin = app.signup("Unlinked").await;
    let login = app.add_user(&admin, "employee", None).await;
    let mut console =
        ConsoleClient::signed_in(&app, &login.email, crate::helpers::TEAMMATE_PASSWORD).await;
    let page = console.get("/app/me").await;
    page.assert_status(200);
    assert!(page.body.contains("not linked to a card yet"));

    // An admin without a card of their own manages the cards under People.
    let mut console = ConsoleClient::signed_in(&app, &admin.email, ADMIN_PASSWORD).await;
    let page = console.get("/app/me").await;
    page.assert_status(303);
    assert_eq!(page.location(), Some("/app/people"));
}

#[tokio::test]
async fn the_audit_log_pages_older_events_keeping_its_filters() {
    let app = spawn_app().await;
    let admin = app.signup("Paged").await;
    let teammate = app.add_user(&admin, "employee", None).await;
    let path = format!(
        "/api/company/{}/users/{}",
        admin.company_id, teammate.user_id
    );
    // 52 changes: more than a page of 50.
    for i in 0..52 {
        app.put(
            &path,
            Some(&admin.token),
            serde_json::json!({"full_name": format!("Name {i}")}),
        )
        .await
        .assert_status(200);
    }
    let mut console = ConsoleClient::signed_in(&app, &admin.email, ADMIN_PASSWORD).await;
    let page = console.get("/app/audit?action=user.updated").await;
    page.assert_status(200);
    assert_eq!(page.body.matches("<code>user.updated</code>").count(), 50);
    let at = page
        .body
        .find(r#"href="/app/audit?"#)
        .expect("a link to older events")
        + 6;
    let len = page.body[at..].find('"').unwrap();
    let next = page.body[at..at + len].replace("&amp;", "&");
    assert!(
        next.contains("action=user.updated") && next.contains("cursor="),
        "{next}"
    );
    let page = console.get(&next).await;
    page.assert_status(200);
    assert_eq!(page.body.matches("<code>user.updated</code>").count(), 2);
    assert!(!page.body.contains("<code>user.created</code>"));
    assert!(!page.body.contains("Older events"));
}
