//! The card page's "Share your contact" form in headless Chromium, sent as a visitor sends it:
//! with JavaScript (the page stays, the thank-you note or the refusal shows in place) and
//! without it (a plain POST, `303` back to the page's thank-you state, or a refusal page).

use serde_json::Value;

use crate::browser::Browser;
use crate::helpers::{Session, TestApp, company_with_card, spawn_app_with};
use crate::leads::{NO_MIN_FILL, list, names};

/// Two leads an hour from one address: the second submission is refused.
async fn app() -> TestApp {
    spawn_app_with(&[NO_MIN_FILL, ("LEADS_PER_ADDRESS_PER_HOUR", "1")]).await
}

const REFUSED: &str = "You have sent several contacts in a short time. Please try again later.";

/// Fills the form as a person does and presses its button.
async fn fill_and_send(browser: &Browser, name: &str, email: &str) {
    browser.scroll_into_view("#lead-name").await;
    browser.fill("#lead-name", name).await;
    browser.fill("#lead-email", email).await;
    browser.fill("#lead-note", "Met at the fair").await;
    browser.click("#lead-send").await;
}

async fn shown(browser: &Browser, id: &str) -> bool {
    browser
        .script(&format!(
            "const e = document.getElementById('{id}'); \
             return !!e && getComputedStyle(e).display !== 'none' && !e.hidden"
        ))
        .await
        == Value::Bool(true)
}

async fn lead_names(app: &TestApp, admin: &Session) -> Vec<String> {
    names(&list(app, admin, "").await)
}

#[tokio::test]
async fn with_javascript_the_form_is_sent_in_place_and_a_refusal_is_shown_next_to_it() {
    let app = app().await;
    let (admin, card) = company_with_card(&app, "Inline Leads").await;
    let browser = Browser::start().await;
    let url = format!("{}{}", app.address, card.page());
    browser.goto(&url).await;
    // Gone if the page is loaded again: proves the answer came without a navigation.
    browser.script("window.stayed = true; return null").await;

    fill_and_send(&browser, "Ina Inline", "ina@visitor.example").await;
    browser
        .wait_until("getComputedStyle(document.getElementById('lead-sent')).display !== 'none'")
        .await;
    assert_eq!(browser.script("return window.stayed === true").await, true);
    assert!(
        browser.current_url().await.ends_with("#lead-sent"),
        "{}",
        browser.current_url().await
    );
    assert!(
        !browser.current_url().await.contains("lead=sent"),
        "the page was left"
    );
    assert!(browser.text("#lead-sent").await.contains("Thank you!"));
    assert_eq!(
        browser.script("return document.activeElement.id").await,
        "lead-sent",
        "the note takes the focus, so a screen reader reads it"
    );
    assert!(!shown(&browser, "lead-error").await);
    assert_eq!(lead_names(&app, &admin).await, ["Ina Inline"]);

    // Refused (the address's hourly limit): said on the page, the form kept as typed.
    browser.goto(&url).await;
    browser.script("window.stayed = true; return null").await;
    fill_and_send(&browser, "Ina Again", "ina@visitor.example").await;
    browser
        .wait_until("!document.getElementById('lead-error').hidden")
        .await;
    assert_eq!(browser.text("#lead-error").await, REFUSED);
    assert_eq!(browser.script("return window.stayed === true").await, true);
    assert!(!shown(&browser, "lead-sent").await);
    assert_eq!(
        browser
            .script("return document.getElementById('lead-name').value")
            .await,
        "Ina Again"
    );
    assert_eq!(
        browser
            .script("return document.getElementById('lead-send').disabled")
            .await,
        false,
        "the button can be pressed again"
    );
    browser.assert_accessible(Some("#lead")).await;
    assert_eq!(lead_names(&app, &admin).await, ["Ina Inline"]);
    browser.close().await;
}

#[tokio::test]
async fn without_javascript_the_form_posts_and_comes_back_to_the_thank_you_state() {
    let app = app().await;
    let (admin, card) = company_with_card(&app, "Plain Leads").await;
    let first = Browser::start().await;
    let browser = first.without_javascript().await;
    first.close().await;
    let url = format!("{}{}", app.address, card.page());
    browser.goto(&url).await;

    fill_and_send(&browser, "Nora Noscript", "nora@visitor.example").await;
    wait_for_url(&browser, "?lead=sent#lead-sent").await;
    assert!(browser.current_url().await.starts_with(&url));
    assert!(
        shown(&browser, "lead-sent").await,
        "the thank-you note shows"
    );
    assert!(
        !shown(&browser, "lead-error").await,
        "nothing the script would fill shows"
    );
    assert_eq!(lead_names(&app, &admin).await, ["Nora Noscript"]);

    // Refused: a page that says why, with the way back to the card.
    browser.goto(&url).await;
    fill_and_send(&browser, "Nora Again", "nora@visitor.example").await;
    wait_for_url(&browser, &format!("{}/leads", card.api())).await;
    let page = browser.text("body").await;
    assert!(page.contains(REFUSED), "{page}");
    let back = browser
        .find("a[href]")
        .await
        .attr("href")
        .await
        .expect("an href");
    assert_eq!(
        back,
        Some(format!("{}#lead", card.page())),
        "back to the form"
    );
    assert_eq!(lead_names(&app, &admin).await, ["Nora Noscript"]);
    browser.close().await;
}

/// Waits until the browser's address ends with `suffix` (the form's navigation is done).
async fn wait_for_url(browser: &Browser, suffix: &str) {
    let deadline = tokio::time::Instant::now() + crate::helpers::PATIENCE;
    loop {
        let now = browser.current_url().await;
        if now.ends_with(suffix) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the browser stayed at {now}, never reaching …{suffix}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
