//! The public card (no authentication): its JSON, HTML page, QR code and vCard; uploaded photos
//! and logos and the media routes that serve them; conditional requests; and the in-process card
//! cache, refreshed by local writes and by `card_changed` notifications from other instances.

use std::{
    io::{BufReader, Cursor},
    time::{Duration, Instant},
};

use crate::helpers::{
    self, Card, PUBLIC_BASE_URL, Response, Session, TestApp, spawn_app, superuser, uuid_of,
};
use base64::Engine as _;
use ical::property::Property;
use image::{DynamicImage, GenericImageView, ImageFormat, Rgb, RgbImage, Rgba, RgbaImage};
use reqwest::header::{CONTENT_TYPE, HeaderMap};
use serde_json::{Value, json};
use uuid::Uuid;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// A response kept as bytes: pages, images and vCards are not JSON.
struct Raw {
    status: u16,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Raw {
    #[track_caller]
    fn assert_status(&self, expected: u16) -> &Self {
        let body = match std::str::from_utf8(&self.body) {
            Ok(text) => text.to_owned(),
            Err(_) => format!("{} bytes of binary", self.body.len()),
        };
        assert_eq!(self.status, expected, "unexpected status; body: {body}");
        self
    }

    #[track_caller]
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("no {name} header (status {})", self.status))
    }

    #[track_caller]
    fn text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("a UTF-8 body")
    }

    #[track_caller]
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&self.body)))
    }
}

/// `GET path` with extra request headers.
async fn fetch(app: &TestApp, path: &str, headers: &[(&str, &str)]) -> Raw {
    let mut req = app.client.get(format!("{}{path}", app.address));
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let resp = req.send().await.expect("sending the request");
    Raw {
        status: resp.status().as_u16(),
        headers: resp.headers().clone(),
        body: resp.bytes().await.expect("reading the body").to_vec(),
    }
}

/// `PUT path` with a body that is not JSON (an image, a form).
async fn put_bytes(
    app: &TestApp,
    path: &str,
    token: Option<&str>,
    content_type: &str,
    body: Vec<u8>,
) -> Response {
    let mut req = app
        .client
        .put(format!("{}{path}", app.address))
        .header(CONTENT_TYPE, content_type)
        .body(body);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    TestApp::read(req.send().await.expect("sending the upload")).await
}

/// A `multipart/form-data` body with `bytes` in the field `file`, built by hand (reqwest's
/// `multipart` feature is not enabled); its content type.
fn multipart(bytes: &[u8], file_name: &str, content_type: &str) -> (String, Vec<u8>) {
    const BOUNDARY: &str = "----callingcard-test-boundary-7d3f1a";
    let mut body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\n\
         Content-Type: {content_type}\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={BOUNDARY}"), body)
}

/// Creates an employee of `admin`'s company with `body`; its card.
async fn create_employee(app: &TestApp, admin: &Session, body: Value) -> (Card, Value) {
    let resp = app
        .post(
            &format!("/api/company/{}/employees", admin.company_id),
            Some(&admin.token),
            body,
        )
        .await;
    resp.assert_status(201);
    (Card::of(&resp.body), resp.body)
}

/// A picture in four colored quadrants, so that crops and scaling can be checked by color;
/// `seed` shifts the colors, so different seeds give different images (and content hashes).
fn quadrants(width: u32, height: u32, seed: u8) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| {
        match (x < width / 2, y < height / 2) {
            (true, true) => Rgb([220, 30, seed]),    // red
            (false, true) => Rgb([30, 200, seed]),   // green
            (true, false) => Rgb([seed, 40, 210]),   // blue
            (false, false) => Rgb([230, 210, seed]), // yellow
        }
    })
}

fn encode(image: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    image
        .write_to(&mut out, format)
        .expect("encoding a test image");
    out.into_inner()
}

/// An 800×600 PNG photo.
fn photo_png(seed: u8) -> Vec<u8> {
    encode(
        &DynamicImage::ImageRgb8(quadrants(800, 600, seed)),
        ImageFormat::Png,
    )
}

/// A JPEG whose first segment after SOI is an EXIF block (a valid, empty TIFF directory)
/// followed by text that must never be published.
fn jpeg_with_exif(secret: &str) -> Vec<u8> {
    let jpeg = encode(
        &DynamicImage::ImageRgb8(quadrants(300, 300, 7)),
        ImageFormat::Jpeg,
    );
    let mut payload = b"Exif\0\0MM\0\x2a\0\0\0\x08\0\0\0\0\0\0".to_vec();
    payload.extend_from_slice(secret.as_bytes());
    let length = u16::try_from(payload.len() + 2).unwrap().to_be_bytes();
    let mut out = jpeg[..2].to_vec(); // SOI
    out.extend_from_slice(&[0xFF, 0xE1, length[0], length[1]]);
    out.extend_from_slice(&payload);
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// Whether `needle` occurs in `haystack`.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Checks that `url` is `{PUBLIC_BASE_URL}/media/{kind}/{company_id}/{32 lowercase hex}.{ext}`;
/// its path.
#[track_caller]
fn media_path(url: &Value, kind: &str, company_id: Uuid, ext: &str) -> String {
    let url = url
        .as_str()
        .unwrap_or_else(|| panic!("no media URL: {url}"));
    let path = url
        .strip_prefix(PUBLIC_BASE_URL)
        .unwrap_or_else(|| panic!("{url} is not under {PUBLIC_BASE_URL}"));
    let hash = path
        .strip_prefix(&format!("/media/{kind}/{company_id}/"))
        .and_then(|file| file.strip_suffix(&format!(".{ext}")))
        .unwrap_or_else(|| panic!("{url} is not a {kind} of {company_id}"));
    assert!(
        hash.len() == 32
            && hash
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "{url}: the file name is not a 32-hex content hash"
    );
    path.to_owned()
}

/// Whether two colors are within `tolerance` on every channel (JPEG is lossy).
fn near(actual: [u8; 3], expected: [u8; 3], tolerance: u8) -> bool {
    actual
        .iter()
        .zip(expected)
        .all(|(a, e)| a.abs_diff(e) <= tolerance)
}

/// The text of the one QR code in a PNG, as an independent scanner reads it.
#[track_caller]
fn scan(png: &[u8]) -> String {
    let image = image::load_from_memory(png)
        .expect("the QR code is a PNG")
        .to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare(image);
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1, "exactly one QR code in the image");
    let (_, text) = grids[0].decode().expect("the QR code decodes");
    text
}

/// Waits until `app` serves `card` from its cache, and leaves it cached. Reads the card, changes
/// its bio in SQL with triggers off (`session_replication_role = replica`: no `card_changed`
/// notification, so nothing tells any cache), and reads again: only a cached card still shows
/// the old bio. An instance caches only once it hears notifications, a moment after it starts,
/// hence the retries. Without this, a test of invalidation would pass on an instance that never
/// caches at all.
async fn wait_until_cached(app: &TestApp, card: &Card) {
    let silent = superuser(app).await;
    silent
        .batch_execute("SET session_replication_role = replica")
        .await
        .unwrap();
    let deadline = Instant::now() + helpers::PATIENCE;
    for attempt in 0u32.. {
        let before = fetch(app, &card.api(), &[]).await;
        before.assert_status(200);
        silent
            .execute(
                "UPDATE employees SET bio = $1 WHERE id = $2",
                &[&format!("unannounced change {attempt}"), &card.employee_id],
            )
            .await
            .unwrap();
        let after = fetch(app, &card.api(), &[]).await;
        after.assert_status(200);
        if after.json()["bio"] == before.json()["bio"] {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} never served the card from its cache",
            app.address
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until `app` has handled every `card_changed` notification committed so far: changes
/// `probe` (a cached card) unannounced, sends a notification of it, and waits until `app` serves
/// the change. PostgreSQL delivers notifications in the order their transactions committed.
async fn notifications_heard(app: &TestApp, probe: &Card) {
    let db = superuser(app).await;
    db.batch_execute("SET session_replication_role = replica")
        .await
        .unwrap();
    db.execute(
        "UPDATE employees SET bio = 'barrier' WHERE id = $1",
        &[&probe.employee_id],
    )
    .await
    .unwrap();
    let payload = format!("employee:{}:{}", probe.company_id, probe.employee_id);
    db.execute("SELECT pg_notify('card_changed', $1)", &[&payload])
        .await
        .unwrap();
    let seen = poll_card(app, probe, |r| r.json()["bio"] == "barrier").await;
    assert_eq!(
        seen.json()["bio"],
        "barrier",
        "the barrier notification was not heard"
    );
}

/// Reads the card JSON on `app` every 50 ms, for up to `PATIENCE`, until `done`
/// holds; the last read.
async fn poll_card(app: &TestApp, card: &Card, done: impl Fn(&Raw) -> bool) -> Raw {
    let deadline = Instant::now() + helpers::PATIENCE;
    loop {
        let read = fetch(app, &card.api(), &[]).await;
        if done(&read) || Instant::now() >= deadline {
            return read;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Turns off the `card_changed` triggers in this test's database, so that a cached card can only
/// be refreshed by the instance's own invalidation of what it wrote.
async fn silence_notifications(app: &TestApp) {
    superuser(app)
        .await
        .batch_execute(
            "ALTER TABLE employees DISABLE TRIGGER employees_card_changed;
             ALTER TABLE companies DISABLE TRIGGER companies_card_changed;",
        )
        .await
        .unwrap();
}

/// A second instance of the service on `app`'s database.
async fn second_instance(app: &TestApp) -> TestApp {
    helpers::spawn_app_on(&app.dbname, &[]).await
}

/// The only property named `name` (with its group, e.g. `item1.TEL`).
#[track_caller]
fn only<'a>(properties: &'a [Property], name: &str) -> &'a Property {
    let found: Vec<_> = properties.iter().filter(|p| p.name == name).collect();
    assert_eq!(found.len(), 1, "one {name} in {properties:#?}");
    found[0]
}

fn value(property: &Property) -> &str {
    property.value.as_deref().expect("a value")
}

/// The values of parameter `name` (`TYPE=WORK,VOICE` → `["WORK", "VOICE"]`).
fn param(property: &Property, name: &str) -> Vec<String> {
    property
        .params
        .iter()
        .flatten()
        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
        .flat_map(|(_, v)| v.iter().flat_map(|v| v.split(',')).map(str::to_owned))
        .collect()
}

/// RFC 2426 text unescaping, written here independently of the service: `\\` `\,` `\;` `\n`.
fn unescape(raw: &str) -> String {
    let mut out = String::new();
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n' | 'N') => out.push('\n'),
                Some(other) => out.push(other),
                None => panic!("dangling backslash in {raw:?}"),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The components of a structured value (N): split at unescaped `;`, each unescaped.
fn components(raw: &str) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let last = parts.last_mut().unwrap();
                last.push('\\');
                last.push(chars.next().expect("an escaped character"));
            }
            ';' => parts.push(String::new()),
            c => parts.last_mut().unwrap().push(c),
        }
    }
    parts.iter().map(|part| unescape(part)).collect()
}

/// The property in the `itemN` group labeled `label` (`itemN.X-ABLabel:label`).
#[track_caller]
fn labeled<'a>(properties: &'a [Property], label: &str) -> &'a Property {
    let labels: Vec<_> = properties
        .iter()
        .filter(|p| p.name.ends_with(".X-ABLabel") && unescape(value(p)) == label)
        .collect();
    assert_eq!(labels.len(), 1, "one label {label} in {properties:#?}");
    let group = labels[0].name.strip_suffix("X-ABLabel").unwrap();
    let grouped: Vec<_> = properties
        .iter()
        .filter(|p| p.name.starts_with(group) && !p.name.ends_with(".X-ABLabel"))
        .collect();
    assert_eq!(grouped.len(), 1, "one property in group {group}");
    grouped[0]
}

/// The error body of a missing card, on every route.
fn card_not_found() -> Value {
    json!({"detail": "Card not found", "code": "not_found"})
}

fn image_not_found() -> Value {
    json!({"detail": "Image not found", "code": "not_found"})
}

// ---------------------------------------------------------------------------------------------
// The card JSON and what is not a card
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn card_json_is_exactly_the_public_contract() {
    let app = spawn_app().await;
    let admin = app.signup("Acme").await;
    app.put(
        &format!("/api/company/{}", admin.company_id),
        Some(&admin.token),
        json!({"domain": "acme.example", "logo_url": "https://img.example/acme.png", "brand_color": "#1A2B3C"}),
    )
    .await
    .assert_status(200);
    let (card, _) = create_employee(
        &app,
        &admin,
        json!({"full_name": "Jane Smith", "job_title": "CTO", "email": "jane@acme.example",
               "phone": "+1 555 010 0000", "whatsapp": "+15550100000",
               "photo_url": "https://img.example/jane.jpg", "bio": "Builds things; likes, commas.",
               "social_links": {"linkedin": "https://www.linkedin.com/in/jane", "site": "https://jane.example"}}),
    )
    .await;
    // A login of the company exists, so a leak of users data would have something to leak.
    app.add_user(&admin, "employee", Some(card.employee_id))
        .await;
    assert_eq!(card.company_slug, "acme");

    let resp = fetch(&app, &card.api(), &[]).await;
    resp.assert_status(200);
    assert_eq!(
        resp.header("content-type"),
        "application/json; charset=utf-8"
    );
    let slug = &card.slug;
    // Whole-value equality: every field exact, and no other key (no password_hash, no users,
    // no subscription).
    assert_eq!(
        resp.json(),
        json!({
            "employee_id": card.employee_id,
            "employee_name": "Jane Smith",
            "company_name": "Acme",
            "company_id": admin.company_id,
            "company_slug": "acme",
            "employee_slug": slug,
            "job_title": "CTO",
            "email": "jane@acme.example",
            "phone": "+1 555 010 0000",
            "whatsapp": "+15550100000",
            "bio": "Builds things; likes, commas.",
            "photo_url": "https://img.example/jane.jpg",
            "social_links": {"linkedin": "https://www.linkedin.com/in/jane", "site": "https://jane.example"},
            "qr_code": format!("https://cards.example.test/api/card/acme/{slug}/qr.png"),
            "vcard_url": format!("https://cards.example.test/api/card/acme/{slug}/vcard"),
            "card_url": format!("https://cards.example.test/card/acme/{slug}"),
            "company_logo": "https://img.example/acme.png",
            "company_brand_color": "#1a2b3c",
        })
    );

    // An employee with only a name: the optional fields are present, as null.
    let (bare, _) = create_employee(&app, &admin, json!({"full_name": "Bare Bones"})).await;
    let resp = fetch(&app, &bare.api(), &[]).await;
    resp.assert_status(200);
    let body = resp.json();
    for field in [
        "job_title",
        "email",
        "phone",
        "whatsapp",
        "bio",
        "photo_url",
    ] {
        assert_eq!(body[field], Value::Null, "{field} in {body}");
        assert!(body.as_object().unwrap().contains_key(field), "{field}");
    }
    assert_eq!(body["social_links"], json!({}));
    assert_eq!(body.as_object().unwrap().len(), 18, "{body}");
}

#[tokio::test]
async fn unknown_or_malformed_slugs_are_not_found_on_every_route() {
    let app = spawn_app().await;
    let admin = app.signup("Acme").await;
    let (card, _) = create_employee(&app, &admin, json!({"full_name": "Jane Smith"})).await;
    let (cs, es) = (card.company_slug.as_str(), card.slug.as_str());
    let long = "a".repeat(101);
    let upper_company = cs.to_ascii_uppercase();
    let upper_employee = es.to_ascii_uppercase();
    let cases = [
        ("nope", es),
        (cs, "nope-000000"),
        (upper_company.as_str(), es), // `ACME`: slugs are lowercase, no case folding
        ("Acme", es),
        (cs, upper_employee.as_str()),
        ("a%20b", es),
        (cs, "a%20b"),
        (long.as_str(), es),
        (cs, long.as_str()),
    ];
    // The control: the real card is there on every route.
    for suffix in ["", "/qr.png", "/qr.svg", "/vcard"] {
        fetch(&app, &format!("{}{suffix}", card.api()), &[])
            .await
            .assert_status(200);
    }
    for (company, employee) in cases {
        for suffix in ["", "/qr.png", "/qr.svg", "/vcard"] {
            let path = format!("/api/card/{company}/{employee}{suffix}");
            let resp = fetch(&app, &path, &[]).await;
            resp.assert_status(404);
            assert_eq!(resp.json(), card_not_found(), "{path}");
        }
        // The page: a browser gets a page, an API client the JSON error.
        let path = format!("/card/{company}/{employee}");
        let browser = fetch(
            &app,
            &path,
            &[("Accept", "text/html,application/xhtml+xml")],
        )
        .await;
        browser.assert_status(404);
        assert_eq!(browser.header("content-type"), "text/html; charset=utf-8");
        assert!(browser.text().starts_with("<!doctype html>"), "{path}");
        assert!(browser.text().contains("<h1>Card not found</h1>"), "{path}");
        // The card page's look under its own policy: its style allowed by hash, nothing else.
        let csp = browser.header("content-security-policy");
        assert!(
            csp.starts_with("default-src 'none';") && csp.contains("style-src 'sha256-"),
            "{csp}"
        );
        assert!(browser.text().contains("<style>:root{--brand:"), "{path}");
        assert!(
            browser.text().contains(" href=\"/\""),
            "no way home: {path}"
        );
        let client = fetch(&app, &path, &[]).await;
        client.assert_status(404);
        assert_eq!(client.json(), card_not_found(), "{path}");
    }
    // The way on leads somewhere: the home page, under the same kind of policy, pointing to
    // the API's documentation.
    let home = fetch(&app, "/", &[("Accept", "text/html")]).await;
    home.assert_status(200);
    assert_eq!(home.header("content-type"), "text/html; charset=utf-8");
    // The doctype is case-insensitive (the console's layout writes it `<!DOCTYPE html>`).
    assert!(
        home.text()
            .to_ascii_lowercase()
            .starts_with("<!doctype html>")
    );
    assert!(home.text().contains("<h1>CallingCard</h1>"));
    assert!(home.text().contains(" href=\"/docs\""));
    assert!(
        home.header("content-security-policy")
            .starts_with("default-src 'none';")
    );
    fetch(&app, "/docs", &[]).await.assert_status(200);
}

#[tokio::test]
async fn another_companys_employee_is_not_found_under_this_company() {
    let app = spawn_app().await;
    let acme = app.signup("Acme").await;
    let globex = app.signup("Globex").await;
    let (jane, _) = create_employee(&app, &acme, json!({"full_name": "Jane Smith"})).await;
    let (john, _) = create_employee(&app, &globex, json!({"full_name": "John Doe"})).await;
    assert_eq!(
        (jane.company_slug.as_str(), john.company_slug.as_str()),
        ("acme", "globex")
    );
    // Both cards exist under their own company.
    for card in [&jane, &john] {
        fetch(&app, &card.api(), &[]).await.assert_status(200);
    }
    for (company, employee) in [("acme", &john.slug), ("globex", &jane.slug)] {
        for path in [
            format!("/api/card/{company}/{employee}"),
            format!("/api/card/{company}/{employee}/qr.png"),
            format!("/api/card/{company}/{employee}/qr.svg"),
            format!("/api/card/{company}/{employee}/vcard"),
            format!("/card/{company}/{employee}"),
        ] {
            let resp = fetch(&app, &path, &[]).await;
            resp.assert_status(404);
            assert_eq!(resp.json(), card_not_found(), "{path}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Conditional requests and HTTP caching
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn every_representation_answers_304_to_its_etag() {
    let app = spawn_app().await;
    let admin = app.signup("Acme").await;
    let (card, _) = create_employee(
        &app,
        &admin,
        json!({"full_name": "Jane Smith", "job_title": "CTO"}),
    )
    .await;
    let api = card.api();
    let paths = [
        api.clone(),
        card.page(),
        format!("{api}/qr.png"),
        format!("{api}/qr.png?size=300"),
        format!("{api}/qr.svg"),
        format!("{api}/vcard"),
        format!("{api}/vcard?version=4.0"),
    ];
    let mut tags = Vec::new();
    for path in &paths {
        let first = fetch(&app, path, &[]).await;
        first.assert_status(200);
        let etag = first.header("etag").to_owned();
        assert!(
            etag.len() > 2 && etag.starts_with('"') && etag.ends_with('"'),
            "{path}: {etag}"
        );
        // The same content, the same tag.
        assert_eq!(fetch(&app, path, &[]).await.header("etag"), etag, "{path}");

        let not_modified = fetch(&app, path, &[("If-None-Match", &etag)]).await;
        not_modified.assert_status(304);
        assert!(not_modified.body.is_empty(), "{path}: a 304 has no body");
        assert_eq!(not_modified.header("etag"), etag, "{path}");
        // A list holding the tag, and its weak form, match too (RFC 9110 weak comparison).
        let listed = format!("\"stale\", {etag}");
        fetch(&app, path, &[("If-None-Match", &listed)])
            .await
            .assert_status(304);
        fetch(&app, path, &[("If-None-Match", &format!("W/{etag}"))])
            .await
            .assert_status(304);

        let other = fetch(&app, path, &[("If-None-Match", "\"some-other-tag\"")]).await;
        other.assert_status(200);
        // The page's lead form carries a start token of the moment it was served.
        assert_eq!(
            without_form_token(&other.body),
            without_form_token(&first.body),
            "{path}"
        );
        assert_eq!(other.header("etag"), etag, "{path}");
        tags.push(etag);
    }
    // Different content, different tags (one tag per representation, not per card).
    let mut unique = tags.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), tags.len(), "{tags:?}");
}

#[tokio::test]
async fn cache_control_of_each_representation() {
    let app = spawn_app().await;
    let admin = app.signup("Acme").await;
    let (card, _) = create_employee(&app, &admin, json!({"full_name": "Jane Smith"})).await;
    let uploaded = put_bytes(
        &app,
        &card.photo(),
        Some(&admin.token),
        "image/png",
        photo_png(1),
    )
    .await;
    uploaded.assert_status(200);
    let media = media_path(
        &uploaded.body["photo_url"],
        "photos",
        card.company_id,
        "jpg",
    );

    let api = card.api();
    let expected = [
        (api.clone(), "public, no-cache"),
        (card.page(), "public, no-cache"),
        (format!("{api}/qr.png"), "public, max-age=86400"),
        (format!("{api}/qr.svg"), "public, max-age=86400"),
        (media, "public, max-age=31536000, immutable"),
    ];
    for (path, cache_control) in expected {
        let resp = fetch(&app, &path, &[]).await;
        resp.assert_status(200);
        assert_eq!(resp.header("cache-control"), cache_control, "{path}");
        // A 304 carries the same policy.
        let etag = resp.header("etag").to_owned();
        let again = fetch(&app, &path, &[("If-None-Match", &etag)]).await;
        again.assert_status(304);
        assert_eq!(again.header("cache-control"), cache_control, "{path}");
    }
}

// ---------------------------------------------------------------------------------------------
// The in-process card cache
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn an_employee_update_refreshes_the_cached_card_at_once() {
    let app = spawn_app().await;
    let admin = app.signup("Acme").await;
    let (card, _) = create_employee(
        &app,
        &admin,
        json!({"full_name": "Jane Smith", "job_title": "Engineer"}),
    )
    .await;
    // Only the instance's own invalidation is left to refresh the card: it must not wait for a
    // notification of its own write.
    silence_notifications(&app).await;
    let (probe, _) = create_employee(&app, &admin, json!({"full_name": "Pat Probe"})).await;
    wait_until_cached(&app, &card).await;
    wait_until_cached(&app, &probe).await;
    // The premise: a write that is not this instance's own now goes unnoticed, even once the
    // instance has heard every notification sent after it.
    superuser(&app)
        .await
        .execute(
            "UPDATE employees SET job_title = 'Unheard' WHERE id = $1",
            &[&card.employee_id],
        )
        .await
        .unwrap();
    notifications_heard(&app, &probe).await;
    let json_before = fetch(&app, &card.api(), &[]).await;
    let page_before = fetch(&app, &card.page(), &[]).await;
    assert_eq!(json_before.json()["job_title"], "Engineer");
    assert!(
        page_before
            .text()
            .contains("<p class=\"role\">Engineer</p>")
    );
    // Twice: the same (cached) answer.
    assert_eq!(
        fetch(&app, &card.page(), &[]).await.header("etag"),
        page_before.header("etag")
    );

    app.put(
        &card.employee(),
        Some(&admin.token),
        json!({"job_title": "Chief Cat Herder"}),
    )
    .await
    .assert_status(200);

    let json_after = fetch(&app, &card.api(), &[]).await;
    json_after.assert_status(200);
    assert_eq!(json_after.json()["job_title"], "Chief Cat Herder");
    assert_ne!(json_after.header("etag"), json_before.header("etag"));
    let page_after = fetch(&app, &card.page(), &[]).await;
    page_after.assert_status(200);
    assert!(
        page_after
            .text()
            .contains("<p class=\"role\">Chief Cat Herder</p>")
    );
    assert!(!page_after.text().contains("<p class=\"role\">Engineer</p>"));
    assert_ne!(page_after.header("etag"), page_before.header("etag"));
    // The old tag no longer gets a 304.
    fetch(
        &app,
        &card.api(),
        &[("If-None-Match", json_before.header("etag"))],
    )
    .await
    .assert_status(200);
}

#[tokio::test]
async fn a_branding_change_refreshes_the_cached_card_at_once() {
    let app = spawn_app().await;
    let admin = app.signup("Acme").await;
    let (card, _) = create_employee(&app, &admin, json!({"full_name": "Jane Smith"})).await;
    silence_notifications(&app).await;
    wait_until_cached(&app, &card).await;
    let json_before = fetch(&app, &card.api(), &[]).await;
    let page_before = fetch(&app, &card.page(), &[]).await;
    assert_eq!(json_before.json()["company_brand_color"], Value::Null);

    app.put(
        &format!("/api/company/{}", admin.company_id),
        Some(&admin.token),
        json!({"brand_color": "#FF5500", "name": "Acme Rebranded"}),
    )
    .await
    .assert_status(200);

    let json_after = fetch(&app, &card.api(), &[]).await;
    let body = json_after.json();
    assert_eq!(body["company_brand_color"], "#ff5500");
    assert_eq!(body["company_name"], "Acme Rebranded");
    assert_eq!(body["company_slug"], "acme", "the slug never changes");
    assert_ne!(json_after.header("etag"), json_before.header("etag"));
    let page_after = fetch(&app, &card.page(), &[]).await;
    assert!(page_after.text().contains("--brand:#ff5500;"));
    assert!(
        page_after
            .text()
            .contains("<meta name=\"theme-color\" content=\"#ff5500\">")
    );
    assert_ne!(page_after.header("etag"), page_before.header("etag"));
}

#[tokio::test]
async fn a_deleted_employee_card_is_gone_at_once() {
    let app = spawn_app().await;
    let admin = app.signup("Acme").await;
    let (card, _) = create_employee(&app, &admin, json!({"full_name": "Jane Smith"})).await;
    silence_notifications(&app).await;
    wait_until_cached(&app, &card).await;
    fetch(&app, &card.page(), &[]).await.assert_status(200);

    app.delete(&card.employee(), Some(&admin.token))
        .await
        .assert_status(204);

    let api = card.api();
    for path in [
        api.clone(),
        format!("{api}/qr.png"),
        format!("{api}/vcard"),
        card.page(),
    ] {
        let resp = fetch(&app, &path, &[]).await;
        resp.assert_status(404);
        assert_eq!(resp.json(), card_not_found(), "{path}");
    }
}

#[tokio::test]
async fn a_change_through_one_instance_reaches_the_cache_of_another() {
    let a = spawn_app().await;
    let b = second_instance(&a).await;
    let admin = a.signup("Acme").await;
    let (card, _) = create_employee(
        &a,
        &admin,
        json!({"full_name": "Jane Smith", "job_title": "Engineer"}),
    )
    .await;

    // B holds the card; A changes the employee: only the notification can tell B.
    wait_until_cached(&b, &card).await;
    assert_eq!(
        fetch(&b, &card.api(), &[]).await.json()["job_title"],
        "Engineer"
    );
    a.put(
        &card.employee(),
        Some(&admin.token),
        json!({"job_title": "Chief Cat Herder"}),
    )
    .await
    .assert_status(200);
    let seen = poll_card(&b, &card, |r| r.json()["job_title"] == "Chief Cat Herder").await;
    assert_eq!(
        seen.json()["job_title"],
        "Chief Cat Herder",
        "instance B kept serving the stale card"
    );
    assert!(
        fetch(&b, &card.page(), &[])
            .await
            .text()
            .contains("<p class=\"role\">Chief Cat Herder</p>")
    );

    // The same for the company's branding (a `company:` notification).
    wait_until_cached(&b, &card).await;
    a.put(
        &format!("/api/company/{}", admin.company_id),
        Some(&admin.token),
        json!({"brand_color": "#336699"}),
    )
    .await
    .assert_status(200);
    let seen = poll_card(&b, &card, |r| r.json()["company_brand_color"] == "#336699").await;
    assert_eq!(seen.json()["company_brand_color"], "#336699");
    assert!(
        fetch(&b, &card.page(), &[])
            .await
            .text()
            .contains("--brand:#336699;")
    );

    // And a deletion.
    wait_until_cached(&b, &card).await;
    a.delete(&card.employee(), Some(&admin.token))
        .await
        .assert_status(204);
    let seen = poll_card(&b, &card, |r| r.status == 404).await;
    seen.assert_status(404);
}

#[tokio::test]
async fn a_change_made_in_sql_reaches_the_cached_card() {
    let app = spawn_app().await;
    let admin = app.signup("Acme").await;
    let (card, _) = create_employee(
        &app,
        &admin,
        json!({"full_name": "Jane Smith", "job_title": "Engineer"}),
    )
    .await;
    let sql = superuser(&app).await;

    wait_until_cached(&app, &card).await;
    sql.execute(
        "UPDATE employees SET job_title = 'Set in SQL' WHERE id = $1",
        &[&card.employee_id],
    )
    .await
    .unwrap();
    let seen = poll_card(&app, &card, |r| r.json()["job_title"] == "Set in SQL").await;
    assert_eq!(seen.json()["job_title"], "Set in SQL");

    wait_until_cached(&app, &card).await;
    sql.execute(
        "UPDATE companies SET brand_color = '#00aa00' WHERE id = $1",
        &[&admin.company_id],
    )
    .await
    .unwrap();
    let seen = poll_card(&app, &card, |r| {
        r.json()["company_brand_color"] == "#00aa00"
    })
    .await;
    assert_eq!(seen.json()["company_brand_color"], "#00aa00");
}

// ---------------------------------------------------------------------------------------------
// QR codes
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn qr_png_scans_as_the_card_url() {
    let app = spawn_app().await;
    let admin = app.signup("Acme").await;
    let (card, _) = create_employee(&app, &admin, json!({"full_name": "Jane Smith"})).await;
    let png = format!("{}/qr.png", card.api());
    let expected = format!("https://cards.example.test/card/acme/{}?src=qr", card.slug);
    assert_eq!(card.scan_url(), expected);

    let resp = fetch(&app, &png, &[]).await;
    resp.assert_status(200);
    assert_eq!(resp.header("content-type"), "image/png");
    assert_eq!(
        image::load_from_memory(&resp.body).unwrap().dimensions(),
        (512, 512),
        "the default size"
    );
    assert_eq!(scan(&resp.body), expected);

    let sized = fetch(&app, &format!("{png}?size=300"), &[]).await;
    sized.assert_status(200);
    assert_eq!(
        image::load_from_memory(&sized.body).unwrap().dimensions(),
        (300, 300)
    );
    assert_eq!(scan(&sized.body), expected);

    // Brand colors, the highest error correction and a wider margin still scan.
    let styled = fetch(
        &app,
        &format!("{png}?ecc=H&fg=%231a237e&bg=fffde7&margin=6"),
        &[],
    )
    .await;
    styled.assert_status(200);
    assert_ne!(styled.body, resp.body);
    assert_eq!(scan(&styled.body), expected);
    let colors = image::load_from_memory(&styled.body).unwrap().to_rgb8();
    assert_eq!(colors[(0, 0)], Rgb([0xff, 0xfd, 0xe7]), "the background");
    assert!(colors.pixels().any(|p| *p == Rgb([0x1a, 0x23, 0x7e])));

    let svg = fetch(&app, &format!("{}/qr.svg?size=300", card.api()), &[]).await;
    svg.assert_status(200);
    assert_eq!(svg.header("content-type"), "image/svg+xml");
    assert!(svg.text().starts_with("<svg"), "{}", svg.text());
    assert!(svg.text().contains(" width=\"300\" height=\"300\" "));
    assert!(svg.text().trim_end().ends_with("</svg>"));
}

#[tokio::test]
async fn bad_qr_options_are_refused() {
    let app = spawn_app().await;
    let admin = app.signup("Acme").await;
    let (card, _) = create_employee(&app, &admin, json!({"full_name": "Jane Smith"})).await;
    let bad = [
        "size=10000",
        "size=abc",
        "size=63",
        "ecc=Z",
        "fg=ffffff&bg=000000", // light on dark: inverted
        "fg=777777&bg=888888", // too little contrast
        "margin=1",
        "margin=17",
        "fg=black",
    ];
    for format in ["qr.png", "qr.svg"] {
        for query in bad {
            let path = format!("{}/{format}?{query}", card.api());
            let resp = fetch(&app, &path, &[]).await;
            resp.assert_status(422);
            let body = resp.json();
            assert_eq!(body["code"], "invalid_qr_options", "{path}: {body}");
            assert!(
                body["detail"].as_str().is_some_and(|d| !d.is_empty()),
                "{body}"
            );
        }
    }
    // The options are checked before the card is looked up (`qr_png`/`qr_svg` parse them
    // first): an unknown card with bad options is a 422, with good ones a 404.
    for format in ["qr.png", "qr.svg"] {
        for company in ["nope", "Not-A-Slug"] {
            let unknown = format!("/api/card/{company}/nobody-000000/{format}");
            let resp = fetch(&app, &format!("{unknown}?size=10000"), &[]).await;
            resp.assert_status(422);
            assert_eq!(resp.json()["code"], "invalid_qr_options");
            let resp = fetch(&app, &format!("{unknown}?size=300"), &[]).await;
            resp.assert_status(404);
            assert_eq!(resp.json(), card_not_found());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// vCards
// ---------------------------------------------------------------------------------------------

const JOSE: &str = "José Ñúñez Müller";
const JOSE_BIO: &str =
    "Hola, I build APIs; mostly in Rust.\nSecond line: commas, semicolons; a backslash \\ too.";

#[tokio::test]
async fn vcard_3_carries_the_whole_card_and_parses_back_exactly() {
    let app = spawn_app().await;
    let admin = app.signup("Ñandú Labs").await;
    app.put(
        &format!("/api/company/{}", admin.company_id),
        Some(&admin.token),
        json!({"name": "Ñandú Labs; Madrid, Spain", "domain": "nandu.example"}),
    )
    .await
    .assert_status(200);
    let (card, _) = create_employee(
        &app,
        &admin,
        json!({"full_name": JOSE, "job_title": "Head of R&D, EMEA", "email": "jose@nandu.example",
               "phone": "+34 600 000 001", "whatsapp": "+34 600 000 002", "bio": JOSE_BIO,
               "social_links": {"github": "https://github.com/jose",
                                "linkedin": "https://www.linkedin.com/in/jose-nunez-muller-a-rather-long-profile-name"}}),
    )
    .await;
    put_bytes(
        &app,
        &card.photo(),
        Some(&admin.token),
        "image/png",
        photo_png(3),
    )
    .await
    .assert_status(200);

    let resp = fetch(&app, &format!("{}/vcard", card.api()), &[]).await;
    resp.assert_status(200);
    assert_eq!(resp.header("content-type"), "text/vcard; charset=utf-8");
    // `vcard::file_name` transliterates ("José Müller" → "Jose_Muller.vcf"); `filename*`
    // carries the real name, spaces as `_`, percent-encoded UTF-8 (RFC 5987).
    assert_eq!(
        resp.header("content-disposition"),
        "attachment; filename=\"Jose_Nunez_Muller.vcf\"; \
         filename*=UTF-8''Jos%C3%A9_%C3%91%C3%BA%C3%B1ez_M%C3%BCller.vcf"
    );

    // CRLF line endings only, and no physical line over 75 octets.
    let text = resp.text();
    assert!(text.starts_with("BEGIN:VCARD\r\nVERSION:3.0\r\n"), "{text}");
    assert!(text.ends_with("END:VCARD\r\n"));
    let bytes = text.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'\n' {
            assert!(i > 0 && bytes[i - 1] == b'\r', "a bare LF at {i}");
        }
        if b == b'\r' {
            assert_eq!(bytes.get(i + 1), Some(&b'\n'), "a bare CR at {i}");
        }
    }
    let lines: Vec<&str> = text.strip_suffix("\r\n").unwrap().split("\r\n").collect();
    assert!(lines.len() > 20, "the photo alone folds into many lines");
    for line in &lines {
        assert!(line.len() <= 75, "{} octets: {line:?}", line.len());
    }

    let mut parser = ical::VcardParser::new(BufReader::new(text.as_bytes()));
    let contact = parser.next().expect("a card").expect("a valid card");
    assert!(parser.next().is_none(), "exactly one card");
    let props = contact.properties;

    assert_eq!(value(only(&props, "VERSION")), "3.0");
    assert_eq!(unescape(value(only(&props, "FN"))), JOSE);
    assert_eq!(
        components(value(only(&props, "N"))),
        ["Müller", "José Ñúñez", "", "", ""]
    );
    assert_eq!(
        components(value(only(&props, "ORG"))),
        ["Ñandú Labs; Madrid, Spain"],
        "one component: the company name's `;` is escaped"
    );
    assert_eq!(unescape(value(only(&props, "TITLE"))), "Head of R&D, EMEA");
    let email = only(&props, "EMAIL");
    assert_eq!(value(email), "jose@nandu.example");
    assert!(param(email, "TYPE").contains(&"WORK".to_owned()));
    let work = only(&props, "TEL");
    assert_eq!(value(work), "+34 600 000 001");
    assert!(param(work, "TYPE").contains(&"WORK".to_owned()));
    let whatsapp = labeled(&props, "WhatsApp");
    assert!(whatsapp.name.ends_with(".TEL"), "{}", whatsapp.name);
    assert_eq!(value(whatsapp), "+34 600 000 002");
    assert_eq!(param(whatsapp, "TYPE"), ["CELL"]);
    let page = labeled(&props, "Business card");
    assert!(page.name.ends_with(".URL"));
    assert_eq!(
        value(page),
        format!("{PUBLIC_BASE_URL}{}", card.page()),
        "the card's own URL"
    );
    assert_eq!(value(labeled(&props, "GitHub")), "https://github.com/jose");
    assert_eq!(
        value(labeled(&props, "LinkedIn")),
        "https://www.linkedin.com/in/jose-nunez-muller-a-rather-long-profile-name"
    );
    let website = only(&props, "URL");
    assert_eq!(value(website), "https://nandu.example");
    assert_eq!(param(website, "TYPE"), ["WORK"]);
    assert_eq!(unescape(value(only(&props, "NOTE"))), JOSE_BIO);
    assert_eq!(
        value(only(&props, "UID")),
        format!("urn:uuid:{}", card.employee_id)
    );

    let photo = only(&props, "PHOTO");
    assert_eq!(param(photo, "ENCODING"), ["b"]);
    assert_eq!(param(photo, "TYPE"), ["JPEG"]);
    let jpeg = base64::engine::general_purpose::STANDARD
        .decode(value(photo))
        .expect("PHOTO is base64");
    assert_eq!(jpeg[..2], [0xFF, 0xD8], "a JPEG");
    let thumbnail = image::load_from_memory_with_format(&jpeg, ImageFormat::Jpeg)
        .expect("the embedded photo decodes");
    assert_eq!(thumbnail.dimensions(), (200, 200));
}

#[tokio::test]
async fn vcard_version_is_3_by_default_4_on_request_and_nothing_else() {
    let app = spawn_app().await;
    let admin = app.signup("Acme").await;
    let (card, _) = create_employee(
        &app,
        &admin,
        json!({"full_name": "Jane Smith", "email": "jane@acme.example"}),
    )
    .await;
    let vcard = format!("{}/vcard", card.api());
    for (query, version) in [
        ("", "3.0"),
        ("?version=3.0", "3.0"),
        ("?version=4.0", "4.0"),
        ("?version=4", "4.0"),
    ] {
        let resp = fetch(&app, &format!("{vcard}{query}"), &[]).await;
        resp.assert_status(200);
        assert_eq!(resp.header("content-type"), "text/vcard; charset=utf-8");
        assert!(
            resp.text().contains(&format!("\r\nVERSION:{version}\r\n")),
            "{query}: {}",
            resp.text()
        );
        assert_eq!(
            resp.text().matches("VERSION:").count(),
            1,
            "{query}: {}",
            resp.text()
        );
    }
    for bad in ["5", "2.1", "4.0.1", "latest"] {
        let resp = fetch(&app, &format!("{vcard}?version={bad}"), &[]).await;
        resp.assert_status(422);
        assert_eq!(resp.json()["code"], "invalid_parameter", "{bad}");
    }
}

// ---------------------------------------------------------------------------------------------
// Photos
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn an_uploaded_photo_is_normalized_served_and_shown_on_the_card() {
    let app = spawn_app().await;
    let admin = app.signup("Acme").await;
    let (card, _) = create_employee(
        &app,
        &admin,
        json!({"full_name": "Jane Smith", "photo_url": "https://img.example/jane.jpg"}),
    )
    .await;

    let resp = put_bytes(
        &app,
        &card.photo(),
        Some(&admin.token),
        "image/png",
        photo_png(0),
    )
    .await;
    resp.assert_status(200);
    assert_eq!(uuid_of(&resp.body), card.employee_id, "the Employee JSON");
    assert_eq!(resp.body["full_name"], "Jane Smith");
    let path = media_path(&resp.body["photo_url"], "photos", card.company_id, "jpg");

    let served = fetch(&app, &path, &[]).await;
    served.assert_status(200);
    assert_eq!(served.header("content-type"), "image/jpeg");
    assert_eq!(served.header("x-content-type-options"), "nosniff");
    assert!(!contains(&served.body, b"Exif"));
    let photo = image::load_from_memory_with_format(&served.body, ImageFormat::Jpeg)
        .expect("a JPEG")
        .to_rgb8();
    assert_eq!(photo.dimensions(), (512, 512));
    // Center-cropped to a square, then scaled: the four quadrants are still where they were.
    for ((x, y), color) in [
        ((64, 64), [220, 30, 0]),
        ((448, 64), [30, 200, 0]),
        ((64, 448), [0, 40, 210]),
        ((448, 448), [230, 210, 0]),
    ] {
        assert!(
            near(photo[(x, y)].0, color, 40),
            "({x}, {y}) is {:?}, not about {color:?}",
            photo[(x, y)].0
        );
    }
    // Served under its content hash: a revalidation is a 304.
    let etag = served.header("etag").to_owned();
    fetch(&app, &path, &[("If-None-Match", &etag)])
        .await
        .assert_status(304);

    // The management API, the card JSON and the page all show it.
    let employee = app.get(&card.employee(), Some(&admin.token)).await;
    assert_eq!(employee.body["photo_url"], resp.body["photo_url"]);
    let public = fetch(&app, &card.api(), &[]).await;
    assert_eq!(public.json()["photo_url"], resp.body["photo_url"]);
    let page = fetch(&app, &card.page(), &[]).await;
    assert!(
        page.text()
            .contains(&format!("<img class=\"avatar\" src=\"{path}\"")),
        "{}",
        page.text()
    );
}

#[tokio::test]
async fn a_photo_can_be_uploaded_as_a_multipart_form() {
    let app = spawn_app().await;
    let admin = app.signup("Acme").await;
    let (card, _) = create_employee(&app, &admin, json!({"full_name": "Jane Smith"})).await;
    // The declared type is wrong on purpose: the content decides.
    let (content_type, body) = multipart(&photo_png(5), "me.gif", "image/gif");
    let resp = put_bytes(&app, &card.photo(), Some(&admin.token), &content_type, body).await;
    resp.assert_status(200);
    let path = media_path(&resp.body["photo_url"], "photos", card.company_id, "jpg");
    let served = fetch(&app, &path, &[]).await;
    served.assert_status(200);
    assert_eq!(
        image::load_from_memory(&served.body).unwrap().dimensions(),
        (512, 512)
    );
    assert_eq!(
        fetch(&app, &card.api(), &[]).await.json()["photo_url"],
        resp.body["photo_url"]
    );

    // A form without a `file` field is refused, and changes nothing.
    let (content_type, body) = multipart(&photo_png(6), "me.png", "image/png");
    let body = String::from_utf8_lossy(&body)
        .replace("name=\"file\"", "name=\"picture\"")
        .into_bytes();
    let refused = put_bytes(&app, &card.photo(), Some(&admin.token), &content_type, body).await;
    // Like any other invalid field: a 422 that names it.
    refused.assert_error(422, "invalid_upload");
    assert!(
        refused.body["detail"].as_str().unwrap().contains("`file`"),
        "{}",
        refused.body
    );
    assert_eq!(
        fetch(&app, &card.api(), &[]).await.json()["photo_url"],
        resp.body["photo_url"]
    );
}

#[tokio::test]
async fn exif_metadata_never_reaches_the_stored_photo() {
    let app = spawn_app().await;
    let admin = app.signup("Acme").await;
    let (card, _) = create_employee(&app, &admin, json!({"full_name": "Jane Smith"})).await;
    let upload = jpeg_with_exif("GPS-secret 48.8584N 2.2945E");
    assert!(contains(&upload, b"Exif") && contains(&upload, b"GPS-secret"));

    let resp = put_bytes(
        &app,
        &card.photo(),
        Some(&admin.token),
        "image/jpeg",
        upload,
    )
    .await;
    resp.assert_status(200);
    let path = media_path(&resp.body["photo_url"], "photos", card.company_id, "jpg");
    let served = fetch(&app, &path, &[]).await;
    served.assert_status(200);
    // 300 px a side: not upscaled.
    assert_eq!(
        image::load_from_memory(&served.body).unwrap().dimensions(),
        (300, 300)
    );
    assert!(!contains(&served.body, b"Exif"));
    assert!(!contains(&served.body, b"secret"));
    // Nor the copy in the database, nor the vCard's thumbnail.
    let stored: Vec<u8> = superuser(&app)
        .await
        .query_one(
            "SELECT bytes FROM media WHERE company_id = $1",
            &[&card.company_id],
        )
        .await
        .unwrap()
        .get(0);
    assert!(!contains(&stored, b"secret") && !contains(&stored, b"Exif"));
    let vcard = fetch(&app, &format!("{}/vcard", card.api()), &[]).await;
    let photo = vcard
        .text()
        .replace("\r\n ", "")
        .lines()
        .find_map(|l| {
            l.strip_prefix("PHOTO;ENCODING=b;TYPE=JPEG:")
                .map(str::to_owned)
        })
        .expect("a PHOTO line");
    let thumbnail = base64::engine::general_purpose::STANDARD
        .decode(photo.trim_end())
        .unwrap();
    assert!(!contains(&thumbnail, b"secret") && !contains(&thumbnail, b"Exif"));
}

#[tokio::test]
async fn refused_uploads_change_nothing() {
    let app = spawn_app().await;
    let admin = app.signup("Acme").await;
    let (card, _) = create_employee(&app, &admin, json!({"full_name": "Jane Smith"})).await;
    let first = put_bytes(
        &app,
        &card.photo(),
        Some(&admin.token),
        "image/png",
        photo_png(0),
    )
    .await;
    first.assert_status(200);
    let url = first.body["photo_url"].clone();
    let sql = superuser(&app).await;
    let media_rows = async || -> i64 {
        sql.query_one("SELECT count(*) FROM media", &[])
            .await
            .unwrap()
            .get(0)
    };
    assert_eq!(media_rows().await, 1);

    let png = photo_png(9);
    let mut gif = b"GIF89a".to_vec();
    gif.extend_from_slice(&[0x40, 0x00, 0x40, 0x00, 0xF0, 0x00, 0x00]);
    gif.extend(std::iter::repeat_n(0x2C, 200));
    // Just over the 5 MB image limit, within the upload route's request limit: the handler's
    // own check.
    let just_over = vec![0u8; 5 * 1024 * 1024 + 1];
    // Over the upload route's request limit (5 MB + 64 KiB): refused by the body limit.
    let six_mb = vec![0u8; 6 * 1024 * 1024];
    let cases: [(&str, Vec<u8>, u16, &str); 6] = [
        (
            "text/plain",
            b"Dear team, this is not an image.\n".to_vec(),
            422,
            "not_an_image",
        ),
        ("image/gif", gif, 422, "unsupported_image_format"),
        (
            "image/png",
            png[..png.len() / 2].to_vec(),
            422,
            "image_corrupt",
        ),
        ("image/png", just_over, 413, "image_too_large"),
        ("image/png", six_mb, 413, "payload_too_large"),
        // 16×16: a real PNG, below the 32 px minimum.
        (
            "image/png",
            encode(
                &DynamicImage::ImageRgb8(quadrants(16, 16, 0)),
                ImageFormat::Png,
            ),
            422,
            "image_too_small",
        ),
    ];
    for (content_type, body, status, code) in cases {
        let resp = put_bytes(&app, &card.photo(), Some(&admin.token), content_type, body).await;
        resp.assert_error(status, code);
        assert_eq!(
            fetch(&app, &card.api(), &[]).await.json()["photo_url"],
            url,
            "after {code}"
        );
        assert_eq!(
            app.get(&card.employee(), Some(&admin.token)).await.body["photo_url"],
            url,
            "after {code}"
        );
        assert_eq!(media_rows().await, 1, "after {code}");
    }
}

#[tokio::test]
async fn deleting_a_photo_falls_back_to_the_photo_url_and_unpublishes_it() {
    let app = spawn_app().await;
    let admin = app.signup("Acme").await;
    let (card, _) = create_employee(
        &app,
        &admin,
        json!({"full_name": "Jane Smith", "photo_url": "https://img.example/jane.jpg"}),
    )
    .await;
    let resp = put_bytes(
        &app,
        &card.photo(),
        Some(&admin.token),
        "image/png",
        photo_png(0),
    )
    .await;
    resp.assert_status(200);
    let path = media_path(&resp.body["photo_url"], "photos", card.company_id, "jpg");
    // Seen once, as a visitor's browser would.
    fetch(&app, &path, &[]).await.assert_status(200);
    fetch(&app, &card.page(), &[]).await.assert_status(200);

    app.delete(&card.photo(), Some(&admin.token))
        .await
        .assert_status(204);

    assert_eq!(
        fetch(&app, &card.api(), &[]).await.json()["photo_url"],
        "https://img.example/jane.jpg"
    );
    assert_eq!(
        app.get(&card.employee(), Some(&admin.token)).await.body["photo_url"],
        "https://img.example/jane.jpg"
    );
    let page = fetch(&app, &card.page(), &[]).await;
    assert!(!page.text().contains(&path));
    let count: i64 = superuser(&app)
        .await
        .query_one("SELECT count(*) FROM media", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 0, "the image is deleted");
    // An instance that never served the image answers 404 at once…
    let fresh = second_instance(&app).await;
    let gone = fetch(&fresh, &path, &[]).await;
    gone.assert_status(404);
    assert_eq!(gone.json(), image_not_found());
    // …and so must the one that served it before (its in-process media cache must not outlive
    // the row).
    let gone = fetch(&app, &path, &[]).await;
    assert_eq!(
        gone.status, 404,
        "the deleted photo is still served, from the instance's media cache"
    );
    assert_eq!(gone.json(), image_not_found());

    // Deleting again is harmless.
    app.delete(&card.photo(), Some(&admin.token))
        .await
        .assert_status(204);
}

#[tokio::test]
async fn replacing_a_photo_deletes_the_old_one() {
    let app = spawn_app().await;
    let admin = app.signup("Acme").await;
    let (card, _) = create_employee(&app, &admin, json!({"full_name": "Jane Smith"})).await;
    let first = put_bytes(
        &app,
        &card.photo(),
        Some(&admin.token),
        "image/png",
        photo_png(0),
    )
    .await;
    first.assert_status(200);
    let old = media_path(&first.body["photo_url"], "photos", card.company_id, "jpg");
    fetch(&app, &old, &[]).await.assert_status(200);

    let second = put_bytes(
        &app,
        &card.photo(),
        Some(&admin.token),
        "image/png",
        photo_png(200),
    )
    .await;
    second.assert_status(200);
    let new = media_path(&second.body["photo_url"], "photos", card.company_id, "jpg");
    assert_ne!(old, new);
    fetch(&app, &new, &[]).await.assert_status(200);
    assert_eq!(
        fetch(&app, &card.api(), &[]).await.json()["photo_url"],
        second.body["photo_url"]
    );
    let hashes: Vec<String> = superuser(&app)
        .await
        .query("SELECT hash FROM media", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(hashes.len(), 1, "{hashes:?}");
    assert!(new.contains(&hashes[0]));
    let gone = fetch(&app, &old, &[]).await;
    assert_eq!(
        gone.status, 404,
        "the replaced photo is still served, from the instance's media cache"
    );
    assert_eq!(gone.json(), image_not_found());

    // The same image again: the same URL, still one row.
    let again = put_bytes(
        &app,
        &card.photo(),
        Some(&admin.token),
        "image/png",
        photo_png(200),
    )
    .await;
    again.assert_status(200);
    assert_eq!(again.body["photo_url"], second.body["photo_url"]);
    fetch(&app, &new, &[]).await.assert_status(200);
}

#[tokio::test]
async fn deleting_an_employee_unpublishes_its_photo() {
    let app = spawn_app().await;
    let admin = app.signup("Acme").await;
    let (card, _) = create_employee(&app, &admin, json!({"full_name": "Jane Smith"})).await;
    let resp = put_bytes(
        &app,
        &card.photo(),
        Some(&admin.token),
        "image/png",
        photo_png(0),
    )
    .await;
    resp.assert_status(200);
    let path = media_path(&resp.body["photo_url"], "photos", card.company_id, "jpg");

    app.delete(&card.employee(), Some(&admin.token))
        .await
        .assert_status(204);

    // Nothing refers to the image any more, so it goes, as a replaced photo's does.
    let count: i64 = superuser(&app)
        .await
        .query_one("SELECT count(*) FROM media", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 0, "the deleted employee's photo is still stored");
    // Not fetched before on this instance, so no cache is involved: only the row decides.
    let gone = fetch(&app, &path, &[]).await;
    gone.assert_status(404);
    assert_eq!(gone.json(), image_not_found());
}

#[tokio::test]
async fn who_may_change_a_photo() {
    let app = spawn_app().await;
    let acme = app.signup("Acme").await;
    let globex = app.signup("Globex").await;
    let (own, _) = create_employee(&app, &acme, json!({"full_name": "Jane Smith"})).await;
    let (colleague, _) = create_employee(&app, &acme, json!({"full_name": "John Doe"})).await;
    let jane = app.add_user(&acme, "employee", Some(own.employee_id)).await;

    // The employee linked to the record may.
    let resp = put_bytes(
        &app,
        &own.photo(),
        Some(&jane.token),
        "image/png",
        photo_png(0),
    )
    .await;
    resp.assert_status(200);
    let url = resp.body["photo_url"].clone();
    media_path(&url, "photos", own.company_id, "jpg");

    // Not a colleague's record.
    put_bytes(
        &app,
        &colleague.photo(),
        Some(&jane.token),
        "image/png",
        photo_png(1),
    )
    .await
    .assert_error(403, "forbidden");
    app.delete(&colleague.photo(), Some(&jane.token))
        .await
        .assert_error(403, "forbidden");
    // Another company's admin does not see the record at all.
    put_bytes(
        &app,
        &own.photo(),
        Some(&globex.token),
        "image/png",
        photo_png(2),
    )
    .await
    .assert_error(404, "not_found");
    app.delete(&own.photo(), Some(&globex.token))
        .await
        .assert_error(404, "not_found");
    // Nobody.
    put_bytes(&app, &own.photo(), None, "image/png", photo_png(3))
        .await
        .assert_error(401, "unauthorized");
    app.delete(&own.photo(), None)
        .await
        .assert_error(401, "unauthorized");

    // None of that changed anything.
    assert_eq!(fetch(&app, &own.api(), &[]).await.json()["photo_url"], url);
    assert_eq!(
        fetch(&app, &colleague.api(), &[]).await.json()["photo_url"],
        Value::Null
    );
    // And the linked employee may remove its own photo.
    app.delete(&own.photo(), Some(&jane.token))
        .await
        .assert_status(204);
    assert_eq!(
        fetch(&app, &own.api(), &[]).await.json()["photo_url"],
        Value::Null
    );
}

// ---------------------------------------------------------------------------------------------
// Logos and media
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_logo_keeps_its_proportions_and_transparency() {
    let app = spawn_app().await;
    let admin = app.signup("Acme").await;
    let logo_path = format!("/api/company/{}/logo", admin.company_id);
    app.put(
        &format!("/api/company/{}", admin.company_id),
        Some(&admin.token),
        json!({"logo_url": "https://img.example/acme.png"}),
    )
    .await
    .assert_status(200);
    let (card, _) = create_employee(&app, &admin, json!({"full_name": "Jane Smith"})).await;
    // 1200×300: transparent, with an opaque blue bar in the middle.
    let wide = RgbaImage::from_fn(1200, 300, |x, y| {
        if (300..900).contains(&x) && (75..225).contains(&y) {
            Rgba([20, 60, 200, 255])
        } else {
            Rgba([0, 0, 0, 0])
        }
    });
    let upload = encode(&DynamicImage::ImageRgba8(wide), ImageFormat::Png);

    let resp = put_bytes(
        &app,
        &logo_path,
        Some(&admin.token),
        "image/png",
        upload.clone(),
    )
    .await;
    resp.assert_status(200);
    assert_eq!(
        resp.body["id"],
        admin.company_id.to_string(),
        "the Company JSON"
    );
    let path = media_path(&resp.body["logo_url"], "logos", admin.company_id, "png");

    let served = fetch(&app, &path, &[]).await;
    served.assert_status(200);
    assert_eq!(served.header("content-type"), "image/png");
    let logo = image::load_from_memory_with_format(&served.body, ImageFormat::Png).unwrap();
    assert_eq!(logo.dimensions(), (512, 128), "fits 512 px, 4:1 kept");
    assert!(logo.color().has_alpha());
    let logo = logo.to_rgba8();
    assert_eq!(logo[(5, 5)].0[3], 0, "a transparent corner");
    assert_eq!(logo[(256, 64)].0[3], 255, "the opaque bar");
    assert!(near(
        [
            logo[(256, 64)].0[0],
            logo[(256, 64)].0[1],
            logo[(256, 64)].0[2]
        ],
        [20, 60, 200],
        3
    ));

    assert_eq!(
        fetch(&app, &card.api(), &[]).await.json()["company_logo"],
        resp.body["logo_url"]
    );
    let page = fetch(&app, &card.page(), &[]).await;
    assert!(
        page.text()
            .contains(&format!("<img class=\"logo\" src=\"{path}\"")),
        "{}",
        page.text()
    );

    // Employees may not change the company's logo.
    let employee = app
        .add_user(&admin, "employee", Some(card.employee_id))
        .await;
    put_bytes(&app, &logo_path, Some(&employee.token), "image/png", upload)
        .await
        .assert_error(403, "forbidden");
    app.delete(&logo_path, Some(&employee.token))
        .await
        .assert_error(403, "forbidden");

    app.delete(&logo_path, Some(&admin.token))
        .await
        .assert_status(204);
    assert_eq!(
        fetch(&app, &card.api(), &[]).await.json()["company_logo"],
        "https://img.example/acme.png",
        "the logo URL set on the company shows again"
    );
    let page = fetch(&app, &card.page(), &[]).await;
    assert!(!page.text().contains("<img class=\"logo\""));
    let company = app
        .get(
            &format!("/api/company/{}", admin.company_id),
            Some(&admin.token),
        )
        .await;
    assert_eq!(company.body["logo_url"], "https://img.example/acme.png");
}

#[tokio::test]
async fn media_urls_that_name_nothing_are_not_found() {
    let app = spawn_app().await;
    let acme = app.signup("Acme").await;
    let globex = app.signup("Globex").await;
    let (card, _) = create_employee(&app, &acme, json!({"full_name": "Jane Smith"})).await;
    let resp = put_bytes(
        &app,
        &card.photo(),
        Some(&acme.token),
        "image/png",
        photo_png(0),
    )
    .await;
    resp.assert_status(200);
    let path = media_path(&resp.body["photo_url"], "photos", acme.company_id, "jpg");
    let hash = path
        .rsplit('/')
        .next()
        .unwrap()
        .strip_suffix(".jpg")
        .unwrap()
        .to_owned();
    let a = acme.company_id;
    // The real one first, so that it is in the media cache: the cases below must not be
    // answered from it.
    fetch(&app, &path, &[]).await.assert_status(200);

    let cases = [
        format!("/media/photos/{a}/{hash}.png"), // wrong extension
        format!("/media/logos/{a}/{hash}.png"),  // a photo is not a logo
        format!("/media/photos/{a}/{hash}"),
        format!("/media/photos/{a}/{}.jpg", hash.to_ascii_uppercase()),
        format!("/media/photos/{a}/{}.jpg", &hash[..31]),
        format!("/media/photos/{a}/{hash}0.jpg"),
        format!("/media/photos/{a}/{}.jpg", "0".repeat(32)),
        format!("/media/photos/not-a-uuid/{hash}.jpg"),
        format!("/media/photos/{}/{hash}.jpg", globex.company_id), // another company
        format!("/media/photos/{}/{hash}.jpg", Uuid::new_v4()),
        format!("/media/videos/{a}/{hash}.jpg"),
    ];
    for path in cases {
        let resp = fetch(&app, &path, &[]).await;
        resp.assert_status(404);
        assert_eq!(resp.json(), image_not_found(), "{path}");
    }
}

// ---------------------------------------------------------------------------------------------
// The HTML page's defenses
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_card_page_is_sent_with_strict_security_headers() {
    let app = spawn_app().await;
    let admin = app.signup("Acme").await;
    let (card, _) = create_employee(
        &app,
        &admin,
        json!({"full_name": "Jane Smith", "social_links": {"github": "https://github.com/jane"}}),
    )
    .await;
    let page = fetch(&app, &card.page(), &[("Accept", "text/html")]).await;
    page.assert_status(200);
    assert_eq!(page.header("content-type"), "text/html; charset=utf-8");
    assert_eq!(page.header("x-content-type-options"), "nosniff");
    let csp = page.header("content-security-policy");
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert!(!csp.contains("unsafe-eval"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(page.text().starts_with("<!doctype html>"));
    assert!(
        page.text().contains("href=\"https://github.com/jane\""),
        "{}",
        page.text()
    );
    // The HTML 404 page is locked down too.
    let missing = fetch(&app, "/card/acme/nobody-000000", &[("Accept", "text/html")]).await;
    missing.assert_status(404);
    assert_eq!(missing.header("x-content-type-options"), "nosniff");
    assert!(
        missing
            .header("content-security-policy")
            .contains("default-src 'none'")
    );
}

#[tokio::test]
async fn hostile_profile_data_is_refused_or_escaped() {
    let app = spawn_app().await;
    let admin = app.signup("Acme").await;
    let employees = format!("/api/company/{}/employees", admin.company_id);
    // Script URLs cannot be stored as links.
    for body in [
        json!({"full_name": "Eve", "social_links": {"site": "javascript:alert(1)"}}),
        json!({"full_name": "Eve", "social_links": {"site": "JavaScript:alert(1)"}}),
        json!({"full_name": "Eve", "social_links": {"site": "data:text/html,<script>alert(1)</script>"}}),
        json!({"full_name": "Eve", "photo_url": "javascript:alert(1)"}),
    ] {
        app.post(&employees, Some(&admin.token), body)
            .await
            .assert_error(422, "validation_error");
    }
    let name = "<script>alert(1)</script> Eve";
    let (card, _) = create_employee(
        &app,
        &admin,
        json!({"full_name": name, "job_title": "\"><img src=x onerror=alert(1)>",
               "bio": "<b>bold</b> & <i>more</i>"}),
    )
    .await;
    app.put(
        &card.employee(),
        Some(&admin.token),
        json!({"social_links": {"site": "javascript:alert(1)"}}),
    )
    .await
    .assert_error(422, "validation_error");
    app.put(
        &format!("/api/company/{}", admin.company_id),
        Some(&admin.token),
        json!({"name": "Tom & Jerry \"<i>\""}),
    )
    .await
    .assert_status(200);

    // The JSON is data: the name is as typed.
    let json = fetch(&app, &card.api(), &[]).await.json();
    assert_eq!(json["employee_name"], name);
    assert_eq!(json["social_links"], json!({}));

    let page = fetch(&app, &card.page(), &[("Accept", "text/html")]).await;
    page.assert_status(200);
    let html = page.text();
    assert!(
        html.contains("<h1>&lt;script&gt;alert(1)&lt;/script&gt; Eve</h1>"),
        "{html}"
    );
    assert!(!html.contains("<script>alert(1)"), "{html}");
    assert!(!html.contains("<img src=x"), "{html}");
    assert!(html.contains("&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"));
    assert!(html.contains("&lt;b&gt;bold&lt;/b&gt; &amp; &lt;i&gt;more&lt;/i&gt;"));
    assert!(!html.contains("<b>bold</b>"));
    assert!(html.contains("Tom &amp; Jerry &quot;&lt;i&gt;&quot;"));
    assert!(!html.contains("javascript:"));
    // The page's one script is its own constant one.
    assert_eq!(html.matches("<script").count(), 1, "{html}");
}

/// A body with the start token of its lead form (if any) blanked out.
fn without_form_token<T: AsRef<[u8]>>(body: T) -> Vec<u8> {
    let text = String::from_utf8_lossy(body.as_ref()).into_owned();
    let marker = "name=\"started\" value=\"";
    match text.find(marker) {
        Some(at) => {
            let start = at + marker.len();
            let end = start + text[start..].find('"').unwrap_or(0);
            format!("{}{}", &text[..start], &text[end..]).into_bytes()
        }
        None => text.into_bytes(),
    }
}
