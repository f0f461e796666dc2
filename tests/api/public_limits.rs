//! What a stranger can make the public side cost: unknown slugs are remembered (and forgotten
//! on every instance as soon as a card takes them), cache misses are limited per client address
//! while cache hits stay free, QR renders are bounded in total, and image decodes are bounded by
//! memory.

use std::{
    io::Cursor,
    time::{Duration, Instant},
};

use crate::helpers::{self, Response, Session, TestApp, spawn_app_on, spawn_app_with};
use image::{DynamicImage, ImageFormat, Rgb, RgbImage};
use reqwest::header::CONTENT_TYPE;
use serde_json::{Value, json};
use uuid::Uuid;

/// The client address header a trusted proxy would set, so tests can speak from many addresses.
const PROXIED: [(&str, &str); 1] = [("CLIENT_IP_HEADER", "X-Forwarded-For")];

struct Raw {
    status: u16,
    retry_after: Option<u64>,
    body: Vec<u8>,
}

impl Raw {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// A refusal that says when to come back, in our error shape.
    #[track_caller]
    fn assert_refused(&self, status: u16, code: &str) {
        assert_eq!(
            self.status,
            status,
            "body: {}",
            String::from_utf8_lossy(&self.body)
        );
        assert!(
            self.retry_after.is_some_and(|s| s >= 1),
            "Retry-After: {:?}",
            self.retry_after
        );
        let body = self.json();
        assert_eq!(body["code"], code, "body: {body}");
        assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()));
    }
}

/// `GET path` as the client at `address`.
async fn get_from(app: &TestApp, address: &str, path: &str) -> Raw {
    let resp = app
        .client
        .get(format!("{}{path}", app.address))
        .header("X-Forwarded-For", address)
        .send()
        .await
        .expect("sending the request");
    let retry_after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    Raw {
        status: resp.status().as_u16(),
        retry_after,
        body: resp.bytes().await.expect("reading the body").to_vec(),
    }
}

/// Waits (up to `PATIENCE`) until the instance hears `card_changed`, so it caches at all.
async fn wait_until_listening(app: &TestApp) {
    let deadline = Instant::now() + helpers::PATIENCE;
    while !app.cards.is_caching() {
        assert!(Instant::now() < deadline, "never started listening");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Requests `path` (as a warm-up address) until a request costs no lookup: the card is cached.
async fn wait_until_cached(app: &TestApp, path: &str) {
    let deadline = Instant::now() + helpers::PATIENCE;
    for attempt in 0u32.. {
        let before = app.cards.database_lookups();
        // A new address each time: warming up must not spend a limited client's misses.
        let address = format!("198.51.{}.{}", 100 + attempt / 250, attempt % 250);
        let read = get_from(app, &address, path).await;
        assert_eq!(read.status, 200, "{path}");
        if app.cards.database_lookups() == before {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{path} never came from the cache"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    unreachable!()
}

/// Requests `path` until it answers `status` (a notification is on its way), up to `PATIENCE`.
async fn poll_until(app: &TestApp, path: &str, status: u16) -> Raw {
    let deadline = Instant::now() + helpers::PATIENCE;
    loop {
        let read = get_from(app, "198.51.100.2", path).await;
        if read.status == status || Instant::now() >= deadline {
            return read;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until `app` has handled every `card_changed` notification committed so far: caches the
/// card at `path` (of `employee` in `company`), sends a notification of it, and waits until
/// reading it costs a lookup again. PostgreSQL delivers notifications in commit order.
async fn notifications_heard(app: &TestApp, company: Uuid, employee: Uuid, path: &str) {
    wait_until_cached(app, path).await;
    let payload = format!("employee:{company}:{employee}");
    helpers::superuser(app)
        .await
        .execute("SELECT pg_notify('card_changed', $1)", &[&payload])
        .await
        .unwrap();
    let mut attempt = 0u32;
    helpers::wait_for("the notification is heard", async || {
        attempt += 1;
        let before = app.cards.database_lookups();
        let address = format!("198.51.{}.{}", 200 + attempt / 250, attempt % 250);
        let read = get_from(app, &address, path).await;
        assert_eq!(read.status, 200, "{path}");
        app.cards.database_lookups() > before
    })
    .await;
}

/// An employee of `admin`'s company; `(company_slug, employee_slug, id)`.
async fn add_card(app: &TestApp, admin: &Session) -> (String, String, Uuid) {
    let resp = app
        .post(
            &format!("/api/company/{}/employees", admin.company_id),
            Some(&admin.token),
            json!({"full_name": "Jane Visible"}),
        )
        .await;
    resp.assert_status(201);
    (
        resp.body["company_slug"].as_str().unwrap().to_owned(),
        resp.body["public_slug"].as_str().unwrap().to_owned(),
        resp.id(),
    )
}

// ---------------------------------------------------------------------------------------------
// Unknown slugs
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_same_unknown_slug_costs_one_lookup_however_often_it_is_asked() {
    let app = spawn_app_with(&PROXIED).await;
    wait_until_listening(&app).await;
    let admin = app.signup("Lookup Counting").await;
    let (company, slug, id) = add_card(&app, &admin).await;
    // The sign-up's and the new card's notifications forget what the instance remembers of the
    // company: let them all arrive before counting.
    notifications_heard(
        &app,
        admin.company_id,
        id,
        &format!("/api/card/{company}/{slug}"),
    )
    .await;

    let before = app.cards.database_lookups();
    for i in 0..1_000 {
        // Every route of a card, from many addresses: none may cost another query.
        let path = match i % 4 {
            0 => format!("/api/card/{company}/nobody-here"),
            1 => format!("/card/{company}/nobody-here"),
            2 => format!("/api/card/{company}/nobody-here/qr.png"),
            _ => format!("/api/card/{company}/nobody-here/vcard"),
        };
        let read = get_from(&app, &format!("203.0.113.{}", i % 200), &path).await;
        assert_eq!(read.status, 404, "{path}");
    }
    let employee_slug_lookups = app.cards.database_lookups() - before;
    assert!(
        employee_slug_lookups <= 2,
        "1000 requests for one unknown employee slug cost {employee_slug_lookups} transactions"
    );

    let before = app.cards.database_lookups();
    for i in 0..1_000 {
        let read = get_from(
            &app,
            &format!("203.0.113.{}", i % 200),
            "/api/card/no-such-co/x",
        )
        .await;
        assert_eq!(read.status, 404);
    }
    let company_slug_lookups = app.cards.database_lookups() - before;
    assert!(
        company_slug_lookups <= 2,
        "1000 requests for one unknown company slug cost {company_slug_lookups} transactions"
    );
}

#[tokio::test]
async fn a_card_that_takes_a_remembered_slug_is_found_on_every_instance() {
    let first = spawn_app_with(&PROXIED).await;
    let second = spawn_app_on(&first.dbname, &PROXIED).await;
    wait_until_listening(&first).await;
    wait_until_listening(&second).await;

    // A company slug nobody has yet, remembered as unknown by both instances.
    let name = format!("Future {}", &Uuid::new_v4().simple().to_string()[..8]);
    let company_slug = name.to_lowercase().replace(' ', "-");
    let wanted = format!("/api/card/{company_slug}/anyone");
    for app in [&first, &second] {
        assert_eq!(get_from(app, "198.51.100.3", &wanted).await.status, 404);
        let before = app.cards.database_lookups();
        assert_eq!(get_from(app, "198.51.100.3", &wanted).await.status, 404);
        assert_eq!(
            app.cards.database_lookups(),
            before,
            "remembered as unknown"
        );
    }

    // The company and its first card appear through the first instance.
    let admin = first.signup(&name).await;
    let (slug, employee_slug, employee_id) = add_card(&first, &admin).await;
    assert_eq!(slug, company_slug);
    let card = format!("/api/card/{company_slug}/{employee_slug}");
    // Where it was made, at once; elsewhere, as soon as the notification arrives.
    assert_eq!(get_from(&first, "198.51.100.3", &card).await.status, 200);
    assert_eq!(poll_until(&second, &card, 200).await.status, 200);

    // An employee slug remembered as unknown on both, then taken by a card (here in SQL, as
    // another instance or a migration would): both find it.
    let later = format!("/api/card/{company_slug}/taken-later");
    for app in [&first, &second] {
        assert_eq!(get_from(app, "198.51.100.3", &later).await.status, 404);
        let before = app.cards.database_lookups();
        assert_eq!(get_from(app, "198.51.100.3", &later).await.status, 404);
        assert_eq!(
            app.cards.database_lookups(),
            before,
            "remembered as unknown"
        );
    }
    helpers::connect(&helpers::superuser_url(&first.dbname))
        .await
        .execute(
            "UPDATE employees SET public_slug = 'taken-later' WHERE id = $1",
            &[&employee_id],
        )
        .await
        .unwrap();
    for app in [&first, &second] {
        let read = poll_until(app, &later, 200).await;
        assert_eq!(
            read.status, 200,
            "{} still says the slug is unknown",
            app.address
        );
        assert_eq!(read.json()["employee_slug"], "taken-later");
    }
}

// ---------------------------------------------------------------------------------------------
// Misses per client address
// ---------------------------------------------------------------------------------------------

/// An app where each address may cause 5 misses, refilled too slowly to matter in a test.
async fn strict_app() -> TestApp {
    spawn_app_with(&[
        PROXIED[0],
        ("PUBLIC_MISS_BURST", "5"),
        ("PUBLIC_MISS_PER_SECOND", "0.001"),
    ])
    .await
}

#[tokio::test]
async fn misses_are_limited_per_address_while_hits_stay_free() {
    let app = strict_app().await;
    wait_until_listening(&app).await;
    let admin = app.signup("Miss Limits").await;
    let (company, employee, _) = add_card(&app, &admin).await;
    let card = format!("/api/card/{company}/{employee}");
    wait_until_cached(&app, &card).await;

    let walker = "203.0.113.50";
    // Cache hits, far beyond the miss budget, cost nothing.
    for _ in 0..50 {
        assert_eq!(get_from(&app, walker, &card).await.status, 200);
        let page = get_from(&app, walker, &format!("/card/{company}/{employee}")).await;
        assert_eq!(page.status, 200);
    }
    // Walking slugs: five misses, then refused with a time to come back.
    for i in 0..5 {
        let read = get_from(&app, walker, &format!("/api/card/{company}/guess-{i}")).await;
        assert_eq!(read.status, 404);
    }
    let refused = get_from(&app, walker, &format!("/api/card/{company}/guess-5")).await;
    refused.assert_refused(429, "rate_limited");
    let page = get_from(&app, walker, &format!("/card/{company}/guess-6")).await;
    page.assert_refused(429, "rate_limited");
    let before = app.cards.database_lookups();
    get_from(&app, walker, "/card/no-such-company/guess-7")
        .await
        .assert_refused(429, "rate_limited");
    assert_eq!(
        app.cards.database_lookups(),
        before,
        "refused before the query"
    );

    // The walker still gets what is cached; another address gets through.
    assert_eq!(get_from(&app, walker, &card).await.status, 200);
    let other = get_from(
        &app,
        "203.0.113.51",
        &format!("/api/card/{company}/guess-5"),
    )
    .await;
    assert_eq!(other.status, 404, "another address is not limited");
}

#[tokio::test]
async fn qr_option_combinations_beyond_the_limit_are_refused() {
    let app = strict_app().await;
    wait_until_listening(&app).await;
    let admin = app.signup("QR Limits").await;
    let (company, employee, _) = add_card(&app, &admin).await;
    let qr = format!("/api/card/{company}/{employee}/qr.png");
    wait_until_cached(&app, &format!("/api/card/{company}/{employee}")).await;

    let walker = "203.0.113.60";
    for size in 100..105 {
        let read = get_from(&app, walker, &format!("{qr}?size={size}")).await;
        assert_eq!(read.status, 200, "size {size}");
    }
    get_from(&app, walker, &format!("{qr}?size=105"))
        .await
        .assert_refused(429, "rate_limited");
    get_from(
        &app,
        walker,
        &format!("{qr}?size=106&ecc=H").replace("qr.png", "qr.svg"),
    )
    .await
    .assert_refused(429, "rate_limited");
    // What was rendered once is cached, and free.
    for _ in 0..20 {
        assert_eq!(
            get_from(&app, walker, &format!("{qr}?size=100"))
                .await
                .status,
            200
        );
    }
    let other = get_from(&app, "203.0.113.61", &format!("{qr}?size=105")).await;
    assert_eq!(other.status, 200);
}

#[tokio::test]
async fn qr_renders_are_bounded_in_total() {
    let app = spawn_app_with(&[PROXIED[0], ("QR_RENDERS", "1")]).await;
    wait_until_listening(&app).await;
    let admin = app.signup("QR Renders").await;
    let (company, employee, _) = add_card(&app, &admin).await;
    let qr = format!("/api/card/{company}/{employee}/qr.png");

    // Every rendering slot is taken (as by renders in flight): a new one is refused.
    let held = app.cards.qr_renders().try_admit(1).expect("a free slot");
    get_from(&app, "203.0.113.70", &format!("{qr}?size=300"))
        .await
        .assert_refused(503, "busy");
    drop(held);
    assert_eq!(
        get_from(&app, "203.0.113.70", &format!("{qr}?size=300"))
            .await
            .status,
        200
    );
}

// ---------------------------------------------------------------------------------------------
// Image decodes
// ---------------------------------------------------------------------------------------------

fn png(side: u32, seed: u8) -> Vec<u8> {
    let image = RgbImage::from_fn(side, side, |x, y| {
        Rgb([seed, (x % 251) as u8, (y % 241) as u8])
    });
    let mut out = Cursor::new(Vec::new());
    DynamicImage::ImageRgb8(image)
        .write_to(&mut out, ImageFormat::Png)
        .unwrap();
    out.into_inner()
}

async fn upload(app: &TestApp, admin: &Session, employee_id: Uuid, image: Vec<u8>) -> Response {
    let resp = app
        .client
        .put(format!("{}/api/employees/{employee_id}/photo", app.address))
        .bearer_auth(&admin.token)
        .header(CONTENT_TYPE, "image/png")
        .body(image)
        .send()
        .await
        .expect("sending the upload");
    TestApp::read(resp).await
}

#[track_caller]
fn assert_busy(resp: &Response) {
    resp.assert_error(503, "busy");
    let retry_after: u64 = resp
        .headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("a Retry-After header");
    assert!(retry_after >= 1);
}

#[tokio::test]
async fn uploads_beyond_the_decode_budget_are_refused_and_change_nothing() {
    let app = spawn_app_with(&[("IMAGE_DECODE_MEMORY_MB", "96"), ("IMAGE_DECODES", "4")]).await;
    let admin = app.signup("Decode Budget").await;
    let (_, _, employee_id) = add_card(&app, &admin).await;
    let budget = app.image_decodes.clone();
    let total = budget.total_units();

    // Decodes in flight hold the whole budget: concurrent uploads are all refused.
    let held = budget.try_admit(u64::MAX).expect("an idle budget");
    let refused =
        futures::future::join_all((0..3).map(|i| upload(&app, &admin, employee_id, png(64, i))))
            .await;
    for resp in &refused {
        assert_busy(resp);
    }
    let employee = app
        .get(&format!("/api/employees/{employee_id}"), Some(&admin.token))
        .await;
    assert_eq!(employee.body["photo_url"], Value::Null, "nothing stored");
    drop(held);
    assert_eq!(budget.available_units(), total);

    // 36 MiB left: two small photos fit beside the decodes in flight, a 3000 px one does not.
    let held = budget.try_admit(u64::from(total - 36 * 1024)).unwrap();
    let large = png(3000, 1);
    assert_busy(&upload(&app, &admin, employee_id, large.clone()).await);
    let accepted = futures::future::join_all(
        (0..2).map(|i| upload(&app, &admin, employee_id, png(256, 10 + i))),
    )
    .await;
    for resp in &accepted {
        resp.assert_status(200);
    }
    drop(held);

    // With the budget free again, the large one goes through, and it all was given back.
    upload(&app, &admin, employee_id, large)
        .await
        .assert_status(200);
    assert_eq!(budget.available_units(), total);
}
