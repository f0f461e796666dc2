//! The console's Branding page: the company's name, website and colour (with the contrast
//! warning), its logo, and the preview.

use std::io::Cursor;

use serde_json::json;

use crate::{
    console_client::ConsoleClient,
    helpers::{ADMIN_PASSWORD, PUBLIC_BASE_URL, TEAMMATE_PASSWORD, spawn_app, uuid_of},
};

/// A 64×64 PNG with a transparent corner, as logos often are.
fn logo_png() -> Vec<u8> {
    let image = image::RgbaImage::from_fn(64, 64, |x, y| {
        if x < 16 && y < 16 {
            image::Rgba([0, 0, 0, 0])
        } else {
            image::Rgba([20, 90, 200, 255])
        }
    });
    let mut png = Vec::new();
    image
        .write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
        .expect("encoding a PNG");
    png
}

#[tokio::test]
async fn branding_is_saved_and_a_light_colour_gets_a_contrast_warning() {
    let app = spawn_app().await;
    let admin = app.signup("Brand Co").await;
    let mut console = ConsoleClient::signed_in(&app, &admin.email, ADMIN_PASSWORD).await;

    let page = console.get("/app/branding").await;
    page.assert_status(200);
    assert_eq!(page.input_value("name").as_deref(), Some("Brand Co"));
    assert!(
        page.body.contains(r#"<svg class="card-preview""#),
        "{}",
        page.body
    );
    assert!(page.body.contains("Add a person to see their card here"));

    let saved = console
        .post_form(
            "/app/branding",
            &[
                ("name", "Brand & Co"),
                ("domain", "brand.example"),
                ("brand_color", "#FFEB3B"),
            ],
        )
        .await;
    saved.assert_status(303);
    assert_eq!(saved.location(), Some("/app/branding?saved=details"));
    let company = app
        .get(
            &format!("/api/company/{}", admin.company_id),
            Some(&admin.token),
        )
        .await;
    assert_eq!(company.body["name"], "Brand & Co");
    assert_eq!(company.body["domain"], "brand.example");
    assert_eq!(company.body["brand_color"], "#ffeb3b");

    let page = console.get("/app/branding?saved=details").await;
    page.assert_status(200);
    assert!(page.body.contains("Brand &amp; Co"));
    assert!(
        page.body
            .contains("white text on this colour fails WCAG AA contrast"),
        "{}",
        page.body
    );
    // The preview draws the band in the brand colour, with the dark text the card uses on it.
    assert!(page.body.contains(r##"fill="#ffeb3b""##), "{}", page.body);
    assert!(page.body.contains(r##"fill="#111111""##));

    // A dark colour reads well with white text: no warning.
    console
        .post_form(
            "/app/branding",
            &[
                ("name", "Brand & Co"),
                ("domain", ""),
                ("brand_color", "#1a237e"),
            ],
        )
        .await
        .assert_status(303);
    let page = console.get("/app/branding").await;
    assert!(!page.body.contains("Warning"), "{}", page.body);
    let company = app
        .get(
            &format!("/api/company/{}", admin.company_id),
            Some(&admin.token),
        )
        .await;
    assert_eq!(company.body["domain"], serde_json::Value::Null);
}

#[tokio::test]
async fn invalid_branding_is_shown_next_to_its_field() {
    let app = spawn_app().await;
    let admin = app.signup("Strict Co").await;
    let mut console = ConsoleClient::signed_in(&app, &admin.email, ADMIN_PASSWORD).await;
    let page = console
        .post_form(
            "/app/branding",
            &[
                ("name", ""),
                ("domain", "not a domain"),
                ("brand_color", "red; } body { display:none"),
            ],
        )
        .await;
    page.assert_status(422);
    for field in ["name", "domain", "brand_color"] {
        assert!(
            page.body.contains(&format!(r#"id="f-{field}-error""#)),
            "{field}: {}",
            page.body
        );
    }
    // Nothing was saved.
    let company = app
        .get(
            &format!("/api/company/{}", admin.company_id),
            Some(&admin.token),
        )
        .await;
    assert_eq!(company.body["name"], "Strict Co");
}

#[tokio::test]
async fn an_uploaded_logo_shows_on_the_page_and_in_the_preview() {
    let app = spawn_app().await;
    let admin = app.signup("Logo Co").await;
    app.post(
        &format!("/api/company/{}/employees", admin.company_id),
        Some(&admin.token),
        json!({"full_name": "Preview <b>Person</b>", "job_title": "Model"}),
    )
    .await
    .assert_status(201);
    let mut console = ConsoleClient::signed_in(&app, &admin.email, ADMIN_PASSWORD).await;

    let empty = console
        .post_multipart("/app/branding/logo", reqwest::multipart::Form::new())
        .await;
    empty.assert_status(422);
    assert!(
        empty.body.contains(r#"id="f-file-error""#),
        "{}",
        empty.body
    );

    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(logo_png())
            .file_name("logo.png")
            .mime_str("image/png")
            .unwrap(),
    );
    let uploaded = console.post_multipart("/app/branding/logo", form).await;
    uploaded.assert_status(303);
    let company = app
        .get(
            &format!("/api/company/{}", admin.company_id),
            Some(&admin.token),
        )
        .await;
    let logo_path = company.body["logo_url"]
        .as_str()
        .expect("a logo")
        .strip_prefix(PUBLIC_BASE_URL)
        .unwrap()
        .to_owned();
    let page = console.get("/app/branding").await;
    page.assert_status(200);
    assert!(
        page.body.contains(&format!(r#"src="{logo_path}""#)),
        "{}",
        page.body
    );
    assert!(
        page.body.contains(&format!(r#"href="{logo_path}""#)),
        "the preview's logo"
    );
    // The preview shows a real person, escaped.
    assert!(page.body.contains("Preview &lt;b&gt;Person&lt;/b&gt;"));
    app.get(&logo_path, None).await.assert_status(200);
}

#[tokio::test]
async fn an_employee_login_cannot_change_the_branding() {
    let app = spawn_app().await;
    let admin = app.signup("Guarded Co").await;
    let employee = app.add_employee(&admin, "Staff").await;
    let staff = app
        .add_user(&admin, "employee", Some(uuid_of(&employee)))
        .await;
    let mut console = ConsoleClient::signed_in(&app, &staff.email, TEAMMATE_PASSWORD).await;
    console.get("/app/branding").await.assert_status(403);
    console
        .post_form(
            "/app/branding",
            &[("name", "Taken"), ("domain", ""), ("brand_color", "")],
        )
        .await
        .assert_status(403);
    let company = app
        .get(
            &format!("/api/company/{}", admin.company_id),
            Some(&admin.token),
        )
        .await;
    assert_eq!(company.body["name"], "Guarded Co");
}

#[tokio::test]
async fn the_preview_follows_what_is_typed_without_saving_it() {
    let app = spawn_app().await;
    let admin = app.signup("Live Preview Co").await;
    let mut console = ConsoleClient::signed_in(&app, &admin.email, ADMIN_PASSWORD).await;

    // The form asks htmx for the preview as its name and colour are typed.
    let page = console.get("/app/branding").await;
    page.assert_status(200);
    assert!(
        page.body.contains(r#"hx-get="/app/branding/preview""#),
        "{}",
        page.body
    );
    assert!(
        page.body.contains(r#"<div id="brand-preview""#),
        "{}",
        page.body
    );

    let part = console
        .get_with(
            "/app/branding/preview?name=Typed%20%3CName%3E&brand_color=%23FFEB3B",
            &[("HX-Request", "true")],
        )
        .await;
    part.assert_status(200);
    assert!(!part.body.contains("<html"), "{}", part.body);
    // The band in the colour typed, the name typed (as text), the contrast report out of band.
    assert!(part.body.contains(r##"fill="#ffeb3b""##), "{}", part.body);
    assert!(part.body.contains("Typed &lt;Name&gt;"), "{}", part.body);
    assert!(
        part.body
            .contains(r#"<div class="contrast" id="contrast" hx-swap-oob="true">"#),
        "{}",
        part.body
    );
    assert!(
        part.body
            .contains("white text on this colour fails WCAG AA contrast"),
        "{}",
        part.body
    );
    // Not a colour: the default band and no report; nothing of it was saved.
    let part = console
        .get("/app/branding/preview?name=&brand_color=blue")
        .await;
    part.assert_status(200);
    assert!(part.body.contains("Live Preview Co"), "{}", part.body);
    assert!(!part.body.contains("Contrast on"), "{}", part.body);
    let company = app
        .get(
            &format!("/api/company/{}", admin.company_id),
            Some(&admin.token),
        )
        .await;
    assert_eq!(company.body["name"], "Live Preview Co");
    assert!(company.body["brand_color"].is_null(), "{}", company.body);

    // Admins only.
    let employee = app.add_user(&admin, "employee", None).await;
    let mut theirs = ConsoleClient::signed_in(&app, &employee.email, TEAMMATE_PASSWORD).await;
    theirs
        .get("/app/branding/preview?name=x&brand_color=%23000000")
        .await
        .assert_status(403);
}
