//! The console's People pages: the list with its search and pages, the person form (add, edit,
//! delete), the photo upload, and the CSV export that the import reads back unchanged.

use std::io::Cursor;

use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    console_client::{ConsoleClient, Page},
    helpers::{ADMIN_PASSWORD, Session, TEAMMATE_PASSWORD, TestApp, spawn_app, uuid_of},
};

/// A 64×64 PNG of one colour.
fn png() -> Vec<u8> {
    let image = image::RgbImage::from_pixel(64, 64, image::Rgb([200, 30, 90]));
    let mut png = Vec::new();
    image
        .write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
        .expect("encoding a PNG");
    png
}

async fn admin_console(app: &TestApp, company: &str) -> (Session, ConsoleClient) {
    let admin = app.signup(company).await;
    let console = ConsoleClient::signed_in(app, &admin.email, ADMIN_PASSWORD).await;
    (admin, console)
}

/// An employee through the API, with an email of its own (the import matches by email).
async fn add(app: &TestApp, admin: &Session, full_name: &str, email: &str) -> Value {
    let resp = app
        .post(
            &format!("/api/company/{}/employees", admin.company_id),
            Some(&admin.token),
            json!({"full_name": full_name, "email": email, "job_title": "Engineer"}),
        )
        .await;
    resp.assert_status(201);
    resp.body
}

/// The id in a `Location` of `/app/people/{id}?…`.
fn id_in(location: &str) -> Uuid {
    let rest = location.strip_prefix("/app/people/").expect(location);
    rest.split('?').next().unwrap().parse().expect(location)
}

fn person_fields<'a>(full_name: &'a str, email: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("full_name", full_name),
        ("email", email),
        ("job_title", "Rear Admiral"),
        ("phone", "+1 202 555 0100"),
        ("whatsapp", ""),
        ("bio", "Wrote the first compiler."),
        ("link_name_0", "GitHub"),
        ("link_url_0", "https://github.com/grace"),
    ]
}

#[tokio::test]
async fn a_person_is_added_edited_and_deleted_through_the_forms() {
    let app = spawn_app().await;
    let (admin, mut console) = admin_console(&app, "Forms Inc").await;

    let empty = console.get("/app/people").await;
    empty.assert_status(200);
    assert!(empty.body.contains("No people yet"), "{}", empty.body);
    assert!(empty.body.contains(r#"href="/app/import""#));

    console.get("/app/people/new").await.assert_status(200);
    let created = console
        .post_form(
            "/app/people/new",
            &person_fields("Grace Hopper", "grace@example.com"),
        )
        .await;
    created.assert_status(303);
    let id = id_in(created.location().unwrap());

    // The same employee the API sees, with every field of the form.
    let api = app
        .get(&format!("/api/employees/{id}"), Some(&admin.token))
        .await;
    api.assert_status(200);
    assert_eq!(api.body["full_name"], "Grace Hopper");
    assert_eq!(api.body["phone"], "+1 202 555 0100");
    assert_eq!(
        api.body["social_links"]["GitHub"],
        "https://github.com/grace"
    );
    let card_path = format!(
        "/api/card/{}/{}",
        api.body["company_slug"].as_str().unwrap(),
        api.body["public_slug"].as_str().unwrap()
    );

    let page = console
        .get(&format!("/app/people/{id}?saved=created"))
        .await;
    page.assert_status(200);
    assert_eq!(
        page.input_value("full_name").as_deref(),
        Some("Grace Hopper")
    );
    assert!(
        page.body
            .contains(&format!(r#"href="{card_path}/qr.png?size=1024""#))
    );
    assert!(page.body.contains(&format!(r#"href="{card_path}/qr.svg"#)));
    assert!(page.body.contains(&format!(r#"href="{card_path}/vcard""#)));
    assert!(page.body.contains("data-copy=\"https://"), "{}", page.body);
    // The linked downloads are real.
    app.get(&format!("{card_path}/qr.png?size=1024"), None)
        .await
        .assert_status(200);

    let mut edit = person_fields("Grace B. Hopper", "");
    edit.retain(|(name, _)| !name.starts_with("link_"));
    let saved = console.post_form(&format!("/app/people/{id}"), &edit).await;
    saved.assert_status(303);
    let api = app
        .get(&format!("/api/employees/{id}"), Some(&admin.token))
        .await;
    assert_eq!(api.body["full_name"], "Grace B. Hopper");
    assert_eq!(
        api.body["email"],
        Value::Null,
        "an emptied field is cleared"
    );
    assert_eq!(
        api.body["social_links"],
        json!({}),
        "an emptied link row goes"
    );

    let confirm = console.get(&format!("/app/people/{id}/delete")).await;
    confirm.assert_status(200);
    assert!(confirm.body.contains("Delete Grace B. Hopper?"));
    let deleted = console
        .post_form(&format!("/app/people/{id}/delete"), &[])
        .await;
    deleted.assert_status(303);
    assert_eq!(deleted.location(), Some("/app/people?deleted=1"));
    app.get(&format!("/api/employees/{id}"), Some(&admin.token))
        .await
        .assert_status(404);
}

#[tokio::test]
async fn invalid_fields_are_shown_next_to_them_and_a_full_plan_above_the_form() {
    let app = spawn_app().await;
    let (admin, mut console) = admin_console(&app, "Checks Ltd").await;
    let page = console
        .post_form(
            "/app/people/new",
            &[
                ("full_name", ""),
                ("email", "not an email"),
                ("link_name_0", "Site"),
                ("link_url_0", "javascript:alert(1)"),
            ],
        )
        .await;
    page.assert_status(422);
    assert!(
        page.body.contains(r#"id="f-full_name-error""#),
        "{}",
        page.body
    );
    assert!(page.body.contains(r#"aria-describedby="f-email-error""#));
    assert!(page.body.contains(r#"id="f-link_url_0-error""#));
    // What was typed is kept.
    assert_eq!(page.input_value("email").as_deref(), Some("not an email"));

    // The free plan holds two people: the third is refused by the API's own flow.
    add(&app, &admin, "One", "one@example.com").await;
    add(&app, &admin, "Two", "two@example.com").await;
    let full = console
        .post_form(
            "/app/people/new",
            &person_fields("Three", "three@example.com"),
        )
        .await;
    full.assert_status(422);
    assert!(
        full.body.contains("plan allows 2 employees"),
        "{}",
        full.body
    );
    assert!(full.body.contains(r#"class="alert error""#));
}

#[tokio::test]
async fn the_search_finds_a_person_and_the_pages_go_on_by_cursor() {
    let app = spawn_app().await;
    let (admin, mut console) = admin_console(&app, "Many People").await;
    let root = app.superadmin().await;
    app.set_plan(&root, admin.company_id, "professional").await;
    for i in 0..30 {
        add(
            &app,
            &admin,
            &format!("Person {i:02}"),
            &format!("p{i}@example.com"),
        )
        .await;
    }
    add(&app, &admin, "Katherine Johnson", "kj@example.com").await;

    let first = console.get("/app/people").await;
    first.assert_status(200);
    assert!(first.body.contains("31 people"), "{}", first.body);
    assert!(
        first.body.contains("Katherine Johnson"),
        "sorted by name, K is early"
    );
    assert!(!first.body.contains("Person 29"), "a page is 25 people");
    let next = next_link(&first).expect("a next page link");
    let second = console.get(&next).await;
    second.assert_status(200);
    assert!(second.body.contains("Person 29"), "{}", second.body);
    assert!(!second.body.contains("Person 00"));
    assert!(
        next_link(&second).is_none(),
        "the last page has no next link"
    );

    // Without JavaScript: a whole page; with htmx: only the results to swap in.
    let found = console.get("/app/people?q=katherine").await;
    found.assert_status(200);
    assert!(found.body.contains("Katherine Johnson"));
    assert!(!found.body.contains("Person 01"));
    assert!(found.body.contains("<html"));
    let fragment = console
        .get_with(
            "/app/people?q=katherine",
            &[("HX-Request", "true"), ("HX-Target", "people-results")],
        )
        .await;
    fragment.assert_status(200);
    assert!(fragment.body.contains("Katherine Johnson"));
    assert!(!fragment.body.contains("<html"), "{}", fragment.body);
    // The count goes to the page's live region, out of band.
    assert!(
        fragment.body.contains(r#"id="people-status""#)
            && fragment.body.contains(r#"hx-swap-oob="true""#)
            && fragment.body.contains("1 person match"),
        "{}",
        fragment.body
    );

    // A boosted form's next page (after deleting someone, say) is the whole page.
    let whole = console
        .get_with(
            "/app/people?q=katherine",
            &[("HX-Request", "true"), ("HX-Boosted", "true")],
        )
        .await;
    assert!(whole.body.contains("<html"), "{}", whole.body);

    let none = console.get("/app/people?q=nobody-by-that-name").await;
    assert!(none.body.contains("No one matches"), "{}", none.body);
}

/// The `href` of the "Next page" link, unescaped.
fn next_link(page: &Page) -> Option<String> {
    let at = page.body.find(r#"rel="next""#)?;
    let start = page.body[..at].rfind("href=\"")? + 6;
    let end = start + page.body[start..].find('"')?;
    Some(page.body[start..end].replace("&amp;", "&"))
}

#[tokio::test]
async fn another_companys_person_is_not_found_and_employees_are_refused() {
    let app = spawn_app().await;
    let (_, mut console) = admin_console(&app, "Ours").await;
    let other = app.signup("Theirs").await;
    let theirs = uuid_of(&add(&app, &other, "Their Person", "their@example.com").await);
    for path in [
        format!("/app/people/{theirs}"),
        format!("/app/people/{theirs}/delete"),
        "/app/people/not-a-uuid".to_owned(),
    ] {
        console.get(&path).await.assert_status(404);
    }
    let edit = console
        .post_form(
            &format!("/app/people/{theirs}"),
            &person_fields("Taken Over", "x@example.com"),
        )
        .await;
    edit.assert_status(404);
    console
        .post_form(&format!("/app/people/{theirs}/delete"), &[])
        .await
        .assert_status(404);
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(png()).file_name("x.png"),
    );
    console
        .post_multipart(&format!("/app/people/{theirs}/photo"), form)
        .await
        .assert_status(404);
    app.get(&format!("/api/employees/{theirs}"), Some(&other.token))
        .await
        .assert_status(200);

    // An employee login of a company does not manage its people.
    let mine = uuid_of(&add(&app, &other, "Linked", "linked@example.com").await);
    let employee = app.add_user(&other, "employee", Some(mine)).await;
    let mut theirs_console =
        ConsoleClient::signed_in(&app, &employee.email, TEAMMATE_PASSWORD).await;
    for path in [
        "/app/people".to_owned(),
        "/app/people/new".to_owned(),
        format!("/app/people/{mine}"),
        "/app/people/export.csv".to_owned(),
    ] {
        theirs_console.get(&path).await.assert_status(403);
    }
    theirs_console
        .post_form(
            "/app/people/new",
            &person_fields("Sneaky", "sneaky@example.com"),
        )
        .await
        .assert_status(403);
}

#[tokio::test]
async fn markup_in_profile_fields_is_shown_as_text() {
    let app = spawn_app().await;
    let (admin, mut console) = admin_console(&app, "Escapes").await;
    let payload = "<script>alert(1)</script>";
    let resp = app
        .post(
            &format!("/api/company/{}/employees", admin.company_id),
            Some(&admin.token),
            json!({"full_name": format!("Eve {payload}"), "job_title": payload,
                   "bio": format!("Bio {payload}"), "email": "eve@example.com"}),
        )
        .await;
    resp.assert_status(201);
    let id = uuid_of(&resp.body);
    let card = crate::helpers::Card::of(&resp.body);
    // The company's name too, and a view, so the name shows on the dashboards and in the feed.
    app.put(
        &format!("/api/company/{}", admin.company_id),
        Some(&admin.token),
        json!({"name": format!("Escapes {payload}")}),
    )
    .await
    .assert_status(200);
    crate::helpers::track_ok(
        &app,
        &card,
        crate::helpers::IPHONE,
        json!({"action": "view"}),
    )
    .await;
    let paths = [
        "/app".to_owned(),
        "/app/people".to_owned(),
        "/app/people?q=Eve".to_owned(),
        format!("/app/people/{id}"),
        format!("/app/people/{id}/delete"),
        "/app/branding".to_owned(),
        "/app/analytics".to_owned(),
        format!("/app/analytics/employees/{id}"),
    ];
    for path in &paths {
        let page = console.get(path).await;
        page.assert_status(200);
        assert!(!page.body.contains(payload), "{path}: {}", page.body);
        assert!(
            page.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{path} does not show the markup as text: {}",
            page.body
        );
    }
    // The audit log lists the changes (not their values): nothing of the markup gets through.
    let page = console.get("/app/audit").await;
    page.assert_status(200);
    assert!(!page.body.contains(payload), "{}", page.body);
}

#[tokio::test]
async fn an_uploaded_photo_shows_on_the_person_page() {
    let app = spawn_app().await;
    let (admin, mut console) = admin_console(&app, "Photos").await;
    let id = uuid_of(&add(&app, &admin, "Ada Lovelace", "ada@example.com").await);
    let path = format!("/app/people/{id}/photo");

    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(b"not an image".to_vec()).file_name("x.png"),
    );
    let refused = console.post_multipart(&path, form).await;
    refused.assert_status(422);
    assert!(
        refused.body.contains(r#"id="f-file-error""#),
        "{}",
        refused.body
    );

    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(png())
            .file_name("ada.png")
            .mime_str("image/png")
            .unwrap(),
    );
    let uploaded = console.post_multipart(&path, form).await;
    uploaded.assert_status(303);
    let api = app
        .get(&format!("/api/employees/{id}"), Some(&admin.token))
        .await;
    let photo_url = api.body["photo_url"].as_str().expect("a photo").to_owned();
    let photo_path = photo_url
        .strip_prefix(crate::helpers::PUBLIC_BASE_URL)
        .unwrap();
    let page = console.get(&format!("/app/people/{id}")).await;
    page.assert_status(200);
    assert!(
        page.body.contains(&format!(r#"src="{photo_path}""#)),
        "{}",
        page.body
    );
    app.get(photo_path, None).await.assert_status(200);

    // A photo larger than an ordinary form's body limit (1 MB) is taken, as by the API.
    let noisy = image::RgbImage::from_fn(800, 800, |x, y| {
        let v = (x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503)).to_le_bytes();
        image::Rgb([v[0], v[1], v[2]])
    });
    let mut big = Vec::new();
    noisy
        .write_to(&mut Cursor::new(&mut big), image::ImageFormat::Png)
        .unwrap();
    assert!(big.len() > 1024 * 1024, "{} bytes", big.len());
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(big).file_name("big.png"),
    );
    console.post_multipart(&path, form).await.assert_status(303);
}

#[tokio::test]
async fn the_export_is_read_back_by_the_import_as_unchanged() {
    let app = spawn_app().await;
    let (admin, mut console) = admin_console(&app, "Round Trip").await;
    let resp = app
        .post(
            &format!("/api/company/{}/employees", admin.company_id),
            Some(&admin.token),
            json!({"full_name": "Linus, \"the\" Torvalds", "email": "linus@example.com",
                   "bio": "Line one\nline two", "phone": "+358 40 123 4567",
                   "social_links": {"GitHub": "https://github.com/torvalds"}}),
        )
        .await;
    resp.assert_status(201);
    add(&app, &admin, "Margaret Hamilton", "mh@example.com").await;

    let export = console.get("/app/people/export.csv").await;
    export.assert_status(200);
    assert!(
        export
            .header("Content-Type")
            .unwrap()
            .starts_with("text/csv")
    );
    assert!(
        export
            .header("Content-Disposition")
            .unwrap()
            .starts_with("attachment; filename=\"people-")
    );
    let head = export.body.lines().next().unwrap();
    assert_eq!(
        head.trim_start_matches('\u{feff}'),
        "full_name,email,job_title,phone,whatsapp,photo_url,bio,social_links.GitHub"
    );
    assert!(export.body.contains("Margaret Hamilton"));
    assert!(export.body.contains(r#""Linus, ""the"" Torvalds""#));

    let import = app
        .client
        .post(format!(
            "{}/api/company/{}/employees/import?dry_run=true",
            app.address, admin.company_id
        ))
        .bearer_auth(&admin.token)
        .header("content-type", "text/csv; charset=utf-8")
        .body(export.body.clone())
        .send()
        .await
        .unwrap();
    let report = TestApp::read(import).await;
    report.assert_status(200);
    assert_eq!(report.body["totals"]["rows"], 2, "{}", report.body);
    assert_eq!(report.body["totals"]["unchanged"], 2, "{}", report.body);
}

#[tokio::test]
async fn a_large_export_is_sent_page_by_page_and_complete() {
    let app = spawn_app().await;
    let (admin, mut console) = admin_console(&app, "Large Co").await;
    let root = app.superadmin().await;
    app.set_plan(&root, admin.company_id, "enterprise").await;
    // More than one export page (500 rows a statement), so the streamed pages are joined.
    let mut file = String::from("full_name,email\n");
    for i in 0..1203 {
        file.push_str(&format!("Person {i},person{i}@example.com\n"));
    }
    let import = app
        .client
        .post(format!(
            "{}/api/company/{}/employees/import",
            app.address, admin.company_id
        ))
        .bearer_auth(&admin.token)
        .header("content-type", "text/csv; charset=utf-8")
        .body(file)
        .send()
        .await
        .unwrap();
    let report = TestApp::read(import).await;
    report.assert_status(200);
    assert_eq!(report.body["totals"]["created"], 1203, "{}", report.body);

    let export = console.get("/app/people/export.csv").await;
    export.assert_status(200);
    let rows: Vec<&str> = export.body.lines().skip(1).collect();
    assert_eq!(rows.len(), 1203);
    let emails: std::collections::HashSet<&str> = rows
        .iter()
        .map(|row| row.split(',').nth(1).unwrap())
        .collect();
    assert_eq!(emails.len(), 1203, "every person once");
    assert!(emails.contains("person1202@example.com"));
}
