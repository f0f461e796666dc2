//! The public card page driven over WebDriver (see `browser`): what a visitor sees at a phone's
//! and a laptop's width, the QR code read back off the screen, axe-core's verdict, and a
//! keyboard walk through every link and button. One chromedriver per test.

use serde_json::{Value, json};

use crate::browser::{Browser, scan_qr};
use crate::helpers::{Card, TestApp, spawn_app, wait_for};

/// A branded company's employee with every field filled in: the card with the most to show.
async fn full_card(app: &TestApp) -> Card {
    let admin = app.signup("Web Driver Co").await;
    app.put(
        &format!("/api/company/{}", admin.company_id),
        Some(&admin.token),
        json!({"brand_color": "#0B5FFF", "domain": "web-driver.example"}),
    )
    .await
    .assert_status(200);
    let resp = app
        .post(
            &format!("/api/company/{}/employees", admin.company_id),
            Some(&admin.token),
            json!({
                "full_name": "Jane Smith",
                "job_title": "Head of Partnerships",
                "email": "jane.smith@web-driver.example",
                "phone": "+1 555 010 0000",
                "whatsapp": "+1 555 010 0001",
                "bio": "Connects teams with the tools they need.",
                "social_links": {
                    "linkedin": "https://www.linkedin.com/in/jane-smith",
                    "github": "https://github.com/jane-smith"
                }
            }),
        )
        .await;
    resp.assert_status(201);
    Card::of(&resp.body)
}

/// The links and buttons a person can reach, in page order: `href`, or `#id` for a button.
const REACHABLE: &str = "
return [...document.querySelectorAll('a[href], button, input, select, textarea, [tabindex]')]
  .filter(e => e.getClientRects().length > 0 && !e.disabled && e.tabIndex >= 0)
  .map(e => e.getAttribute('href') || '#' + e.id);
";

#[tokio::test]
async fn the_card_at_phone_and_laptop_width_shows_a_scannable_qr_code_and_passes_axe() {
    let app = spawn_app().await;
    let card = full_card(&app).await;
    let mut browser = Browser::start().await;
    browser
        .goto(&format!("{}{}", app.address, card.page()))
        .await;
    assert_eq!(browser.text("h1").await, "Jane Smith");
    assert!(
        browser.current_url().await.ends_with(&card.page()),
        "{}",
        browser.current_url().await
    );

    for width in [390, 1280] {
        browser.set_width(width).await;
        let top = browser.screenshot("card").await;
        let shot = image::load_from_memory(&top).expect("the screenshot is a PNG");
        assert_eq!(
            shot.width(),
            width,
            "the screenshot is not the viewport's width"
        );

        // The QR code as a visitor's phone would read it off this screen.
        browser.scroll_into_view(".qr img").await;
        browser
            .wait_until("document.querySelector('.qr img').complete && document.querySelector('.qr img').naturalWidth > 0")
            .await;
        let png = browser.screenshot("card-qr").await;
        assert_eq!(
            scan_qr(&png),
            [card.scan_url()],
            "no scannable QR code for the card at {width} px (see the card-qr-{width}.png \
             screenshot)"
        );

        // axe runs although the page's CSP allows no script but its own (by hash), and no
        // eval: WebDriver's scripts are outside the page's policy.
        browser.assert_accessible(None).await;
    }
}

#[tokio::test]
async fn the_page_keeps_its_strict_policy_while_axe_runs_in_it() {
    let app = spawn_app().await;
    let card = full_card(&app).await;
    let url = format!("{}{}", app.address, card.page());
    let csp = app
        .client
        .get(&url)
        .send()
        .await
        .expect("GET the card page")
        .headers()
        .get("content-security-policy")
        .expect("a CSP")
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("script-src 'sha256-"), "{csp}");
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{csp}"
    );

    let browser = Browser::start().await;
    browser.goto(&url).await;
    // A script the page itself adds is refused by its policy…
    let refused = browser
        .script(
            "const s = document.createElement('script'); s.textContent = 'window.ran = 1'; \
             document.body.append(s); return window.ran === undefined",
        )
        .await;
    assert_eq!(
        refused,
        Value::Bool(true),
        "the page's CSP let an inline script run"
    );
    // …and axe, injected over WebDriver, still runs and finds the page's structure.
    let violations = browser.axe_check(None).await;
    let serious: Vec<_> = violations
        .iter()
        .filter(|v| matches!(v.impact.as_deref(), Some("serious" | "critical")))
        .map(|v| &v.id)
        .collect();
    assert!(serious.is_empty(), "{serious:?}");
    assert_eq!(
        browser.script("return typeof window.axe.run").await,
        "function"
    );
}

#[tokio::test]
async fn tab_reaches_every_link_and_button_in_order_each_visibly_focused() {
    let app = spawn_app().await;
    let card = full_card(&app).await;
    let url = format!("{}{}", app.address, card.page());
    let mut browser = Browser::start().await;

    for width in [390, 1280] {
        browser.set_width(width).await;
        browser.goto(&url).await;
        let reachable: Vec<String> =
            serde_json::from_value(browser.script(REACHABLE).await).expect("a list of strings");
        // Everything the card offers, in the order it offers it (Share stays hidden without the
        // Web Share API), then the contact form.
        assert_eq!(
            reachable,
            [
                card.vcard().as_str(),
                "tel:+15550100000",
                "mailto:jane.smith@web-driver.example",
                "https://wa.me/15550100001",
                "https://web-driver.example",
                // Social links come in the order the API stores them: by name.
                "https://github.com/jane-smith",
                "https://www.linkedin.com/in/jane-smith",
                // The "Share your contact" form (its honeypot is out of the tab order).
                "#lead-name",
                "#lead-email",
                "#lead-phone",
                "#lead-company",
                "#lead-job-title",
                "#lead-note",
                "#lead-send-vcard",
                "#lead-send",
            ],
            "at {width} px"
        );
        for (step, expected) in reachable.iter().enumerate() {
            browser.keyboard_tab().await;
            let focused = browser.focused_element_description().await;
            let at = focused
                .href
                .clone()
                .or_else(|| focused.id.as_ref().map(|id| format!("#{id}")));
            assert_eq!(
                at.as_deref(),
                Some(expected.as_str()),
                "Tab {} at {width} px landed on {focused:?}",
                step + 1
            );
            assert!(
                focused.visible,
                "{expected} is focused off screen at {width} px: {focused:?}"
            );
            assert!(
                focused.focus_indicator,
                "{expected} shows no focus indicator at {width} px: {focused:?}"
            );
            assert!(
                !focused.label.is_empty(),
                "{expected} has no text: {focused:?}"
            );
        }
        // One more Tab leaves the page's controls: nothing was skipped or reached twice.
        browser.keyboard_tab().await;
        let after = browser.focused_element_description().await;
        assert!(
            after.href.as_ref().is_none_or(|href| href == &reachable[0]),
            "Tab after the last control reached {after:?}"
        );
        browser.screenshot("card-keyboard").await;
    }
}

#[tokio::test]
async fn two_sessions_are_two_people_and_dropping_them_leaves_nothing_running() {
    let app = spawn_app().await;
    let card = full_card(&app).await;
    let url = format!("{}{}", app.address, card.page());

    let owner = Browser::start().await;
    let visitor = owner.visitor().await;
    owner.goto(&url).await;
    visitor.goto(&url).await;
    owner.set_cookie("seen", "owner").await;
    assert_eq!(
        owner.cookie("seen").await.map(|c| c.value().to_owned()),
        Some("owner".to_owned())
    );
    assert!(
        visitor.cookie("seen").await.is_none(),
        "cookies leak between sessions"
    );
    visitor.set_cookie("seen", "visitor").await;
    owner.delete_cookie("seen").await;
    assert!(owner.cookie("seen").await.is_none());
    assert_eq!(
        visitor.cookie("seen").await.map(|c| c.value().to_owned()),
        Some("visitor".to_owned())
    );

    let (driver, owner_profile) = owner.processes();
    let (same_driver, visitor_profile) = visitor.processes();
    assert_eq!(
        driver, same_driver,
        "a visitor shares the test's chromedriver"
    );
    assert_ne!(owner_profile, visitor_profile);
    let group = process_group(driver);
    assert!(
        group.len() > 2,
        "chromedriver's process group should hold its browsers too: {group:?}"
    );

    drop(visitor);
    drop(owner);
    wait_for("chromedriver and its browsers to exit", async || {
        group.iter().all(|pid| !alive(*pid))
    })
    .await;
    assert!(
        !owner_profile.exists(),
        "{} left behind",
        owner_profile.display()
    );
    assert!(
        !visitor_profile.exists(),
        "{} left behind",
        visitor_profile.display()
    );
}

/// The processes whose process group is `leader`'s.
fn process_group(leader: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .expect("reading /proc")
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                // After the command's closing parenthesis: state, parent, group, …
                stat.rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().nth(2)?.parse::<u32>().ok())
                    == Some(leader)
            })
        })
        .collect()
}

/// Whether `pid` still runs (a zombie has exited).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X")
    })
}
