//! The console in real Chromium over WebDriver (see `browser`): an admin's first morning from
//! sign-up to a visitor's view arriving live, an employee's narrower console, every main page
//! used with the keyboard alone, and axe-core's verdict on every page at a phone's and a
//! laptop's width, light and dark, with a screenshot of each saved as a test artifact.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use crate::browser::{Browser, FocusedElement, TempDir, scan_qr};
use crate::helpers::{
    ADMIN_PASSWORD, Card, IPHONE, PUBLIC_BASE_URL, Session, TEAMMATE_PASSWORD, TestApp,
    company_with_card, spawn_app, spawn_app_with, wait_for,
};

const PHONE_WIDTH: u32 = 390;
const LAPTOP_WIDTH: u32 = 1280;
/// More focus stops than any console page has: a walk that gets here is going round in circles.
const MAX_TAB_STOPS: usize = 250;

/// A people CSV of `n` rows as an admin's spreadsheet exports it.
fn people_csv(n: usize) -> String {
    let mut csv = String::from("full_name,email,job_title,phone\n");
    for i in 1..=n {
        csv.push_str(&format!(
            "Person {i:02},person{i:02}@northwind.example,Account Manager,+49 30 5550 {i:04}\n"
        ));
    }
    csv
}

/// A logo as a designer hands it over: a PNG with a transparent background.
fn logo_png() -> Vec<u8> {
    let logo = image::RgbaImage::from_fn(240, 120, |x, y| {
        if (40..200).contains(&x) && (30..90).contains(&y) {
            image::Rgba([11, 95, 255, 255])
        } else {
            image::Rgba([0, 0, 0, 0])
        }
    });
    let mut png = std::io::Cursor::new(Vec::new());
    logo.write_to(&mut png, image::ImageFormat::Png)
        .expect("encoding the logo");
    png.into_inner()
}

/// Writes `bytes` to `dir/name` for a file field to pick up; the file's path.
fn file_in(dir: &TempDir, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.0.join(name);
    std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    path
}

/// Picks `file` in the file field `css`, as choosing it in the file dialog does.
async fn choose_file(browser: &Browser, css: &str, file: &Path) {
    browser
        .find(css)
        .await
        .send_keys(&file.display().to_string())
        .await
        .unwrap_or_else(|e| panic!("choosing {} in {css:?}: {e}", file.display()));
}

/// Clicks the submit button of the form `form` and waits for the page it leads to.
async fn submit_and_wait(browser: &Browser, form: &str, arrives: &str) {
    browser.click(&format!("{form} button[type=submit]")).await;
    browser.wait_for(arrives).await;
}

/// Signs in through the login form, and waits for the console's navigation.
async fn log_in(browser: &Browser, app: &TestApp, email: &str, password: &str) {
    browser.goto(&format!("{}/app/login", app.address)).await;
    browser.fill("#f-email", email).await;
    browser.fill("#f-password", password).await;
    submit_and_wait(
        browser,
        "form[action='/app/login']",
        "nav[aria-label=Console]",
    )
    .await;
}

/// The path of a public URL (`https://cards.example.test/card/…` → `/card/…`).
fn path_of(public_url: &str) -> &str {
    public_url
        .strip_prefix(PUBLIC_BASE_URL)
        .unwrap_or_else(|| panic!("{public_url} is not under {PUBLIC_BASE_URL}"))
}

#[tokio::test]
async fn an_admin_signs_up_brands_imports_and_sees_a_visitors_view_arrive_live() {
    let app = spawn_app().await;
    let files = TempDir::new();
    let mut admin = Browser::start().await;
    admin.set_width(LAPTOP_WIDTH).await;

    // Sign up from the landing page.
    admin.goto(&format!("{}/", app.address)).await;
    admin.click("a[href='/app/signup']").await;
    admin.wait_for("form[action='/app/signup']").await;
    admin.fill("#f-company_name", "Northwind Cards").await;
    admin.fill("#f-full_name", "Ada Admin").await;
    admin.fill("#f-email", "ada@northwind.example").await;
    admin.fill("#f-password", ADMIN_PASSWORD).await;
    submit_and_wait(
        &admin,
        "form[action='/app/signup']",
        "nav[aria-label=Console]",
    )
    .await;
    assert!(
        admin.current_url().await.ends_with("/app"),
        "signed up, then at {}",
        admin.current_url().await
    );
    admin.screenshot("console-journey-home-empty").await;

    // Branding: the brand colour, then a logo.
    admin.click("nav a[href='/app/branding']").await;
    admin.wait_for("form[action='/app/branding']").await;
    admin.fill("#f-brand_color", "#0b5fff").await;
    // The preview takes the colour while it is typed, before it is saved.
    admin.wait_for("#brand-preview path[fill='#0b5fff']").await;
    submit_and_wait(&admin, "form[action='/app/branding']", ".alert.ok").await;
    assert_eq!(
        admin
            .find("#f-brand_color")
            .await
            .prop("value")
            .await
            .expect("the field's value")
            .as_deref(),
        Some("#0b5fff")
    );
    let logo = file_in(&files, "logo.png", &logo_png());
    choose_file(
        &admin,
        "form[action='/app/branding/logo'] input[type=file]",
        &logo,
    )
    .await;
    submit_and_wait(
        &admin,
        "form[action='/app/branding/logo']",
        "form[action='/app/branding/logo'] img.preview",
    )
    .await;
    admin.screenshot("console-journey-branding").await;

    // Fifty people are more than the free plan holds: the company moves to a paid plan.
    let root = app.superadmin().await;
    let ada = app.login("ada@northwind.example", ADMIN_PASSWORD).await;
    app.set_plan(&root, ada.company_id, "enterprise").await;

    // Import 50 people: upload, match the columns, preview, import.
    let csv = file_in(&files, "people.csv", people_csv(50).as_bytes());
    admin.goto(&format!("{}/app/import", app.address)).await;
    // The steps are boosted forms: htmx sends them and swaps each answer in, so the page (and
    // this mark on it) is never loaded again.
    admin.script("window.sameDocument = true").await;
    choose_file(&admin, "#f-file", &csv).await;
    submit_and_wait(
        &admin,
        "form[action='/app/import']",
        "form[action$='/preview']",
    )
    .await;
    submit_and_wait(&admin, "form[action$='/preview']", "form[action$='/run']").await;
    let run_button = admin.text("form[action$='/run'] button[type=submit]").await;
    assert_eq!(run_button, "Import 50 rows");
    admin.screenshot("console-journey-import-preview").await;
    // The import runs on the server; its progress page follows it to the end.
    submit_and_wait(&admin, "form[action$='/run']", "#import-status").await;
    assert!(
        admin.current_url().await.ends_with("/progress"),
        "{}",
        admin.current_url().await
    );
    admin.wait_for("#import-status .alert.ok").await;
    assert_eq!(admin.text("h1").await, "Import finished");
    assert_eq!(
        admin.script("return window.sameDocument === true").await,
        Value::Bool(true),
        "the import's steps loaded new pages instead of updating this one"
    );
    assert!(
        admin.text(".alert.ok").await.contains("50 rows read"),
        "{}",
        admin.text("main").await
    );

    // A boosted form sent back with an error shows it next to its field, in place; sent again
    // right, the page says so.
    admin.goto(&format!("{}/app/teammates", app.address)).await;
    admin.script("window.sameDocument = true").await;
    admin.fill("#f-email", "not an email").await;
    submit_and_wait(
        &admin,
        "form[action='/app/teammates/invite']",
        "#f-email-error",
    )
    .await;
    admin.fill("#f-email", "grace@northwind.example").await;
    submit_and_wait(&admin, "form[action='/app/teammates/invite']", ".alert.ok").await;
    assert!(
        admin.text("main").await.contains("grace@northwind.example"),
        "{}",
        admin.text("main").await
    );
    assert_eq!(
        admin.script("return window.sameDocument === true").await,
        Value::Bool(true)
    );

    // Find one of them and get their card's address.
    admin.goto(&format!("{}/app/people", app.address)).await;
    admin.fill("#f-q", "Person 37").await;
    admin.submit("#f-q").await;
    admin
        .wait_until("document.querySelectorAll('#people-results tbody tr').length === 1")
        .await;
    admin
        .click("#people-results tbody tr a[href^='/app/people/']")
        .await;
    admin.wait_for("#card-heading").await;
    assert_eq!(admin.text("h1").await, "Person 37");
    let card_url = admin.text("#card-heading ~ p.row code").await;
    let card_path = path_of(&card_url).to_owned();
    admin.screenshot("console-journey-person").await;

    // The analytics page, with its live feed connected.
    admin.goto(&format!("{}/app/analytics", app.address)).await;
    admin.wait_for("#live-feed").await;
    wait_for("the analytics page's live feed to subscribe", async || {
        app.live.subscribers() == 1
    })
    .await;
    let items_before = admin
        .script("return document.querySelectorAll('#live-feed .feed-item').length")
        .await;
    assert_eq!(items_before, 0, "{}", admin.text("#live-feed").await);

    // A visitor on a phone opens the card, and its QR code reads back as the card's address.
    let visitor = admin.visitor_as(IPHONE).await;
    visitor.goto(&format!("{}{card_path}", app.address)).await;
    assert_eq!(visitor.text("h1").await, "Person 37");
    visitor.scroll_into_view(".qr img").await;
    visitor
        .wait_until(
            "document.querySelector('.qr img').complete && \
             document.querySelector('.qr img').naturalWidth > 0",
        )
        .await;
    let png = visitor.screenshot("console-journey-visitor-card").await;
    assert_eq!(
        scan_qr(&png),
        vec![format!("{PUBLIC_BASE_URL}{card_path}?src=qr")],
        "the visitor's screenshot (console-journey-visitor-card-390.png) shows no QR code for \
         the card"
    );

    // The view arrives on the admin's open page, then in the numbers and the chart.
    admin
        .wait_until("document.querySelectorAll('#live-feed .feed-item').length === 1")
        .await;
    let item = admin.text("#live-feed .feed-item").await;
    assert!(
        item.contains("Person 37") && item.contains("viewed"),
        "the live item: {item}"
    );
    admin.scroll_into_view("#live-feed").await;
    admin.screenshot("console-journey-live").await;
    visitor.close().await;
    admin.goto(&format!("{}/app/analytics", app.address)).await;
    let views = admin
        .script(
            "return [...document.querySelectorAll('.stat')]
               .filter(s => s.querySelector('.label').textContent === 'Views')
               .map(s => s.querySelector('.value').textContent)",
        )
        .await;
    assert_eq!(
        views,
        Value::from(vec!["1"]),
        "{}",
        admin.text("main").await
    );
    let today = chrono::Utc::now().date_naive().to_string();
    let points = admin
        .script(
            "return [...document.querySelectorAll('.chart .point title')].map(t => t.textContent)",
        )
        .await;
    let points: Vec<String> = serde_json::from_value(points).expect("titles");
    assert!(
        points.iter().any(|t| t == &format!("{today}, Views: 1")),
        "no point for today's view in the chart: {points:?}"
    );
    admin.screenshot("console-journey-analytics").await;
    admin.close().await;
}

#[tokio::test]
async fn an_employee_login_sees_only_its_own_card() {
    let app = spawn_app().await;
    let (admin, card) = company_with_card(&app, "Scoped Browser Co").await;
    let colleague = Card::of(&app.add_employee(&admin, "Colleague Card").await);
    let login = app
        .add_user(&admin, "employee", Some(card.employee_id))
        .await;
    let browser = Browser::start().await;
    log_in(&browser, &app, &login.email, TEAMMATE_PASSWORD).await;

    // Their navigation: their card, its analytics, their sessions; nothing of the company's.
    let nav = browser
        .script("return [...document.querySelectorAll('nav[aria-label=Console] a')].map(a => a.getAttribute('href'))")
        .await;
    assert_eq!(
        nav,
        Value::from(vec![
            "/app/me",
            "/app/analytics",
            "/app/leads",
            "/app/sessions"
        ])
    );
    browser.goto(&format!("{}/app/me", app.address)).await;
    assert_eq!(
        browser
            .find("#f-full_name")
            .await
            .prop("value")
            .await
            .expect("the field's value")
            .as_deref(),
        Some("Jane Card")
    );
    browser.screenshot("console-employee-me").await;
    browser
        .goto(&format!("{}/app/analytics", app.address))
        .await;
    assert_eq!(browser.text("h1").await, "Jane Card");
    assert!(
        !browser.text("main").await.contains("Colleague Card"),
        "{}",
        browser.text("main").await
    );
    browser.screenshot("console-employee-analytics").await;

    // The company's pages and a colleague's card are refused with a page that says so.
    for path in [
        "/app/people".to_owned(),
        "/app/branding".to_owned(),
        "/app/teammates".to_owned(),
        "/app/audit".to_owned(),
        format!("/app/people/{}", colleague.employee_id),
        format!("/app/analytics/employees/{}", colleague.employee_id),
    ] {
        browser.goto(&format!("{}{path}", app.address)).await;
        let status = browser
            .script("return performance.getEntriesByType('navigation')[0].responseStatus")
            .await;
        assert_eq!(status, 403, "{path}: {}", browser.text("main").await);
        assert!(
            !browser.text("main").await.contains("Colleague Card"),
            "{path} shows the colleague"
        );
    }
    browser.close().await;
}

/// Tabs through `path` from its top until the focus comes round again; every stop must be in
/// view and show that it has the focus. The stops, in order.
async fn tab_through(browser: &Browser, app: &TestApp, path: &str) -> Vec<FocusedElement> {
    browser.goto(&format!("{}{path}", app.address)).await;
    browser
        .script("document.activeElement?.blur(); window.scrollTo(0, 0);")
        .await;
    let mut stops: Vec<FocusedElement> = Vec::new();
    for _ in 0..MAX_TAB_STOPS {
        browser.keyboard_tab().await;
        // Each element is marked as it is reached: reaching a marked one means the walk is back.
        let seen = browser
            .script(
                "const e = document.activeElement;
                 if (!e || e === document.body) return 'body';
                 // Tab moves through a date field's day, month and year: one stop.
                 if (e === window.tabWalkLast) return 'same';
                 window.tabWalkLast = e;
                 if (e.dataset.tabWalk) return 'again';
                 e.dataset.tabWalk = '1'; return 'new';",
            )
            .await;
        match seen.as_str() {
            Some("again") => return stops,
            Some("body") if !stops.is_empty() => return stops,
            Some("body" | "same") => continue,
            _ => {}
        }
        let focused = browser.focused_element_description().await;
        assert!(
            focused.visible,
            "on {path}, the focus is on {focused:?}, which cannot be seen"
        );
        assert!(
            focused.focus_indicator,
            "on {path}, {focused:?} has the focus but shows no focus indicator"
        );
        stops.push(focused);
    }
    panic!("tabbing through {path} did not come round after {MAX_TAB_STOPS} stops");
}

#[track_caller]
fn assert_reaches(path: &str, stops: &[FocusedElement], what: &str) {
    assert!(
        stops
            .iter()
            .any(|s| s.label == what || s.href.as_deref() == Some(what)),
        "{what:?} cannot be reached with Tab on {path}; the stops: {:?}",
        stops
            .iter()
            .map(|s| s.href.clone().unwrap_or_else(|| s.label.clone()))
            .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn the_main_pages_are_used_with_the_keyboard_alone() {
    let app = spawn_app().await;
    let (admin, card) = company_with_card(&app, "Keyboard Co").await;
    crate::helpers::track_ok(&app, &card, IPHONE, serde_json::json!({"action": "view"})).await;
    let mut browser = Browser::start().await;
    browser.set_width(LAPTOP_WIDTH).await;

    let stops = tab_through(&browser, &app, "/app/login").await;
    assert_eq!(stops[0].label, "Skip to content", "{stops:?}");
    assert_reaches("/app/login", &stops, "Log in");
    let stops = tab_through(&browser, &app, "/app/signup").await;
    assert_reaches("/app/signup", &stops, "Sign up");

    // Logging in with the keyboard alone: type, Tab, type, Enter.
    browser.goto(&format!("{}/app/login", app.address)).await;
    browser
        .find("#f-email")
        .await
        .click()
        .await
        .expect("focusing the email");
    browser.fill("#f-email", &admin.email).await;
    browser.keyboard_tab().await;
    let focused = browser.focused_element_description().await;
    assert_eq!(focused.id.as_deref(), Some("f-password"), "{focused:?}");
    browser.fill("#f-password", ADMIN_PASSWORD).await;
    browser.submit("#f-password").await;
    browser.wait_for("nav[aria-label=Console]").await;

    let nav = [
        "/app",
        "/app/people",
        "/app/branding",
        "/app/analytics",
        "/app/leads",
        "/app/teammates",
        "/app/audit",
        "/app/sessions",
    ];
    let person = format!("/app/people/{}", card.employee_id);
    let detail = format!("/app/analytics/employees/{}", card.employee_id);
    for (path, controls) in [
        ("/app", &["/app/analytics"][..]),
        (
            "/app/people",
            &["Search", "/app/people/new", person.as_str()][..],
        ),
        (
            person.as_str(),
            &["Copy link", "Save changes", "Upload photo"][..],
        ),
        ("/app/people/new", &["Add person"][..]),
        ("/app/branding", &["Save branding", "Upload logo"][..]),
        ("/app/import", &["Upload"][..]),
        ("/app/analytics", &["Show", detail.as_str()][..]),
        (detail.as_str(), &["Show"][..]),
        ("/app/leads", &["Filter", "/app/leads/settings"][..]),
        ("/app/leads/settings", &["Save lead settings"][..]),
        ("/app/teammates", &["Send invitation"][..]),
        ("/app/audit", &["Filter"][..]),
        ("/app/sessions", &[][..]),
    ] {
        let stops = tab_through(&browser, &app, path).await;
        assert_eq!(stops[0].label, "Skip to content", "{path}: {stops:?}");
        for link in nav {
            assert_reaches(path, &stops, link);
        }
        assert_reaches(path, &stops, "Log out");
        for control in controls {
            assert_reaches(path, &stops, control);
        }
    }

    // The skip link takes the focus past the navigation, to the page's content.
    browser.goto(&format!("{}/app/people", app.address)).await;
    browser.keyboard_tab().await;
    browser.submit("a.skip").await;
    browser.keyboard_tab().await;
    let focused = browser.focused_element_description().await;
    assert!(
        !nav.contains(&focused.href.as_deref().unwrap_or("")),
        "after the skip link, Tab lands on {focused:?}"
    );
    browser.close().await;
}

/// An element wider than the screen, or sticking out of it, as the overflow check reports it.
#[derive(Debug, Deserialize)]
struct Overflow {
    /// The page's width: more than the viewport's means it scrolls sideways.
    scroll_width: u32,
    /// The elements whose right edge is past the viewport (tables scroll inside their frame
    /// and are not counted, but a frame that is itself too wide is).
    sticking_out: Vec<String>,
}

const OVERFLOW: &str = "
const width = document.documentElement.clientWidth;
const name = e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') +
  (typeof e.className === 'string' && e.className ? '.' + e.className.trim().split(/\\s+/).join('.') : '');
const sticking_out = [...document.querySelectorAll('body *')]
  .filter(e => !e.parentElement.closest('.table-wrap'))
  .filter(e => { const r = e.getBoundingClientRect(); return r.width > 0 && r.right > width + 1; })
  .slice(0, 12)
  .map(e => name(e) + ' (right edge ' + Math.round(e.getBoundingClientRect().right) + ')');
return { scroll_width: document.documentElement.scrollWidth, sticking_out };
";

/// axe-core on the open page, no sideways scrolling at the browser's width, and a screenshot
/// named `console-<name>[-dark]-<width>.png`.
async fn check_page(browser: &Browser, name: &str, dark: bool) {
    browser.assert_accessible(None).await;
    let overflow = browser.script(OVERFLOW).await;
    let overflow: Overflow = serde_json::from_value(overflow.clone())
        .unwrap_or_else(|e| panic!("reading the overflow check ({e}): {overflow}"));
    let shot = format!("console-{name}{}", if dark { "-dark" } else { "" });
    browser.screenshot(&shot).await;
    assert!(
        overflow.scroll_width <= browser.width() && overflow.sticking_out.is_empty(),
        "{} scrolls sideways at {} px ({} px wide; see {shot}-{}.png): {:?}",
        browser.current_url().await,
        browser.width(),
        overflow.scroll_width,
        browser.width(),
        overflow.sticking_out
    );
}

/// Every page of the console a signed-in admin opens, by screenshot name.
fn admin_pages(card: &Card, lead: Uuid) -> Vec<(&'static str, String)> {
    vec![
        ("home", "/app".to_owned()),
        ("people", "/app/people".to_owned()),
        ("person", format!("/app/people/{}", card.employee_id)),
        ("person-new", "/app/people/new".to_owned()),
        (
            "person-delete",
            format!("/app/people/{}/delete", card.employee_id),
        ),
        ("branding", "/app/branding".to_owned()),
        ("import", "/app/import".to_owned()),
        ("analytics", "/app/analytics".to_owned()),
        (
            "analytics-person",
            format!("/app/analytics/employees/{}", card.employee_id),
        ),
        ("leads", "/app/leads".to_owned()),
        ("lead", format!("/app/leads/{lead}")),
        ("lead-erase", format!("/app/leads/{lead}/delete")),
        ("lead-settings", "/app/leads/settings".to_owned()),
        ("teammates", "/app/teammates".to_owned()),
        ("audit", "/app/audit".to_owned()),
        ("sessions", "/app/sessions".to_owned()),
    ]
}

const SIGNED_OUT_PAGES: &[(&str, &str)] = &[
    ("landing", "/"),
    ("login", "/app/login"),
    ("signup", "/app/signup"),
    ("forgot-password", "/app/forgot-password"),
    (
        "reset-password",
        "/app/reset-password?token=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ),
    (
        "accept-invitation",
        "/app/accept-invitation?token=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ),
    (
        "verify-email",
        "/app/verify-email?token=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ),
];

/// Every page of `browser` (signed out first, then as `admin`, then as `employee`) at both
/// widths.
async fn check_every_page(
    browser: &mut Browser,
    app: &TestApp,
    admin: &Session,
    employee: &Session,
    card: &Card,
    lead: Uuid,
    dark: bool,
) {
    for width in [PHONE_WIDTH, LAPTOP_WIDTH] {
        browser.set_width(width).await;
        for (name, path) in SIGNED_OUT_PAGES {
            browser.goto(&format!("{}{path}", app.address)).await;
            check_page(browser, name, dark).await;
        }
        // A form sent back with its errors next to the fields.
        browser.goto(&format!("{}/app/signup", app.address)).await;
        browser.fill("#f-email", "not an email").await;
        browser.fill("#f-password", "short").await;
        browser.submit("#f-password").await;
        browser.wait_for(".field.invalid").await;
        check_page(browser, "signup-errors", dark).await;
    }

    log_in(browser, app, &admin.email, ADMIN_PASSWORD).await;
    let files = TempDir::new();
    let csv = file_in(
        &files,
        "team.csv",
        b"full_name,email,job_title\nAxe Person,axe.person@example.com,Tester\n",
    );
    for width in [PHONE_WIDTH, LAPTOP_WIDTH] {
        browser.set_width(width).await;
        for (name, path) in admin_pages(card, lead) {
            browser.goto(&format!("{}{path}", app.address)).await;
            check_page(browser, name, dark).await;
        }
        // The import's steps: its columns, its preview, its end.
        browser.goto(&format!("{}/app/import", app.address)).await;
        choose_file(browser, "#f-file", &csv).await;
        submit_and_wait(
            browser,
            "form[action='/app/import']",
            "form[action$='/preview']",
        )
        .await;
        check_page(browser, "import-columns", dark).await;
        submit_and_wait(browser, "form[action$='/preview']", "form[action$='/run']").await;
        check_page(browser, "import-preview", dark).await;
        submit_and_wait(browser, "form[action$='/run']", "#import-status").await;
        browser.wait_for("#import-status .alert.ok").await;
        check_page(browser, "import-done", dark).await;
    }
    browser.click("form.logout button").await;
    browser.wait_for("form[action='/app/login']").await;

    log_in(browser, app, &employee.email, TEAMMATE_PASSWORD).await;
    for width in [PHONE_WIDTH, LAPTOP_WIDTH] {
        browser.set_width(width).await;
        for (name, path) in [
            ("me", "/app/me"),
            ("my-analytics", "/app/analytics"),
            ("my-leads", "/app/leads"),
        ] {
            browser.goto(&format!("{}{path}", app.address)).await;
            check_page(browser, name, dark).await;
        }
    }
    browser.click("form.logout button").await;
    browser.wait_for("form[action='/app/login']").await;
}

#[tokio::test]
async fn every_page_passes_axe_at_a_phones_and_a_laptops_width_light_and_dark() {
    let app = spawn_app_with(&[crate::leads::NO_MIN_FILL]).await;
    let (admin, card) = company_with_card(&app, "Axe Check Co").await;
    let root = app.superadmin().await;
    app.set_plan(&root, admin.company_id, "enterprise").await;
    // Pages with something on them: people, a chart with a point, a teammate, audit events.
    for i in 1..=12 {
        app.add_employee(&admin, &format!("Colleague {i:02}")).await;
    }
    for action in ["view", "view", "scan_qr", "download_vcard", "call"] {
        crate::helpers::track_ok(
            &app,
            &card,
            IPHONE,
            serde_json::json!({"action": action, "region": "DE"}),
        )
        .await;
    }
    let lead = crate::leads::leave(
        &app,
        &card,
        serde_json::json!({"name": "Axe Visitor", "email": "axe@visitor.example",
                           "company": "Visitors Ltd", "note": "Call me"}),
    )
    .await;
    lead.assert_status(201);
    let lead = lead.id();
    let employee = app
        .add_user(&admin, "employee", Some(card.employee_id))
        .await;

    let mut light = Browser::start().await;
    check_every_page(&mut light, &app, &admin, &employee, &card, lead, false).await;
    let mut dark = light.dark_visitor().await;
    check_every_page(&mut dark, &app, &admin, &employee, &card, lead, true).await;
    dark.close().await;
    light.close().await;
}
