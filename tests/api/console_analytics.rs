//! The console's Home and Analytics pages: this week's numbers from tracked events, the empty
//! state, the range form (its defaults, its errors next to the field), one card in detail (and
//! another company's card as a 404), an employee seeing only their own card, the CSV export (the
//! API's bytes) and the live feed as Server-Sent Events.

use chrono::{TimeDelta, Utc};
use futures::StreamExt;
use serde_json::json;

use crate::{
    console_client::ConsoleClient,
    helpers::{
        ADMIN_PASSWORD, Card, IPHONE, PATIENCE, TEAMMATE_PASSWORD, TestApp, company_with_card,
        scalar, spawn_app, superuser, track_ok, wait_for,
    },
};

async fn track_all(app: &TestApp, card: &Card, actions: &[&str]) {
    for action in actions {
        let body = track_ok(app, card, IPHONE, json!({"action": action, "region": "DE"})).await;
        assert_eq!(body["status"], "tracked", "{body}");
    }
}

/// `<span class="label">{label}</span><span class="value">{value}</span>`: a stat as shown.
#[track_caller]
fn assert_stat(body: &str, label: &str, value: i64) {
    let shown = format!(r#"<span class="label">{label}</span><span class="value">{value}</span>"#);
    assert!(body.contains(&shown), "no {label} = {value} in:\n{body}");
}

fn today() -> String {
    Utc::now().date_naive().to_string()
}

fn days_ago(n: i64) -> String {
    (Utc::now().date_naive() - TimeDelta::days(n)).to_string()
}

#[tokio::test]
async fn home_shows_this_weeks_numbers_after_tracked_events() {
    let app = spawn_app().await;
    let (admin, card) = company_with_card(&app, "Home Numbers").await;
    track_all(
        &app,
        &card,
        &[
            "view",
            "view",
            "view",
            "scan_qr",
            "download_vcard",
            "call",
            "whatsapp",
        ],
    )
    .await;
    let mut console = ConsoleClient::signed_in(&app, &admin.email, ADMIN_PASSWORD).await;
    let page = console.get("/app").await;
    page.assert_status(200);
    assert_stat(&page.body, "Views", 3);
    assert_stat(&page.body, "QR scans", 1);
    assert_stat(&page.body, "Saved contacts", 1);
    assert_stat(&page.body, "Engagements", 2);
    // Nothing last week: each number is new.
    assert!(page.body.contains("new this week"), "{}", page.body);
    // The 30-day chart names itself and lists today's numbers in its table.
    assert!(page.body.contains(r#"role="img""#));
    assert!(
        page.body
            .contains(&format!("<title>{}, Views: 3</title>", today())),
        "{}",
        page.body
    );
    // The top card, linking to its detail; the plan's usage.
    assert!(page.body.contains("Jane Card"));
    assert!(
        page.body
            .contains(&format!("/app/analytics/employees/{}", card.employee_id))
    );
    assert!(page.body.contains("1 of 2 employees used"), "{}", page.body);
    assert!(!page.body.contains("Share your cards"));
}

#[tokio::test]
async fn a_new_company_is_told_to_add_people_then_to_share_cards() {
    let app = spawn_app().await;
    let admin = app.signup("Brand New").await;
    let mut console = ConsoleClient::signed_in(&app, &admin.email, ADMIN_PASSWORD).await;
    let page = console.get("/app").await;
    page.assert_status(200);
    assert!(page.body.contains("Add your first people"), "{}", page.body);
    assert!(page.body.contains(r#"href="/app/people""#));
    assert_stat(&page.body, "Views", 0);

    app.add_employee(&admin, "Quiet Card").await;
    let page = console.get("/app").await;
    assert!(page.body.contains("Share your cards"), "{}", page.body);
    assert!(!page.body.contains("Add your first people"));
}

#[tokio::test]
async fn the_analytics_page_shows_a_range_with_breakdowns_and_names_as_text() {
    let app = spawn_app().await;
    let (admin, _) = company_with_card(&app, "Range Co").await;
    let employee = app
        .add_employee(&admin, "<img src=x onerror=alert(1)>")
        .await;
    let card = Card::of(&employee);
    track_all(&app, &card, &["view", "view", "download_vcard", "share"]).await;
    let mut console = ConsoleClient::signed_in(&app, &admin.email, ADMIN_PASSWORD).await;

    // The defaults: the last 30 days, UTC, in the form.
    let page = console.get("/app/analytics").await;
    page.assert_status(200);
    assert_eq!(page.input_value("to").as_deref(), Some(today().as_str()));
    assert_eq!(
        page.input_value("from").as_deref(),
        Some(days_ago(29).as_str())
    );
    assert_eq!(page.input_value("tz").as_deref(), Some("UTC"));

    let path = format!(
        "/app/analytics?from={}&to={}&tz=Europe%2FBerlin",
        days_ago(6),
        today()
    );
    let page = console.get(&path).await;
    page.assert_status(200);
    assert_eq!(page.input_value("tz").as_deref(), Some("Europe/Berlin"));
    assert_stat(&page.body, "Views", 2);
    assert_stat(&page.body, "Saved contacts", 1);
    assert_stat(&page.body, "Engagements", 1);
    assert_stat(&page.body, "Unique visitors", 1);
    assert!(page.body.contains("50.0%"), "conversion: {}", page.body);
    assert!(page.body.contains("Europe/Berlin"));
    // Device and region breakdowns.
    assert!(
        page.body.contains(r#"<th scope="row">mobile</th>"#),
        "{}",
        page.body
    );
    assert!(
        page.body.contains(r#"<th scope="row">DE</th>"#),
        "{}",
        page.body
    );
    // The name is text, in the leaderboard and in the latest events, never markup.
    assert!(!page.body.contains("<img src=x"), "{}", page.body);
    assert!(page.body.contains("&lt;img src=x onerror=alert(1)&gt;"));
    // The live list, for script, with its events for those without.
    assert!(page.body.contains(r#"aria-live="polite""#));
    assert!(page.body.contains(r#"data-live-src="/app/analytics/live""#));
    assert!(page.body.contains("contact saved"), "{}", page.body);
}

#[tokio::test]
async fn a_bad_range_is_shown_next_to_its_field_with_422() {
    let app = spawn_app().await;
    let (admin, _) = company_with_card(&app, "Bad Range").await;
    let mut console = ConsoleClient::signed_in(&app, &admin.email, ADMIN_PASSWORD).await;

    let page = console
        .get("/app/analytics?from=2026-11-10&to=2026-11-01&tz=UTC")
        .await;
    page.assert_status(422);
    assert!(page.body.contains(r#"id="f-to-error""#), "{}", page.body);
    assert!(
        page.body
            .contains(r#"aria-describedby="f-to-hint f-to-error""#)
    );
    assert!(page.body.contains("on or after the start date"));
    // What was asked stays in the form.
    assert_eq!(page.input_value("from").as_deref(), Some("2026-11-10"));

    let page = console.get("/app/analytics?tz=Mars%2FOlympus").await;
    page.assert_status(422);
    assert!(page.body.contains(r#"id="f-tz-error""#), "{}", page.body);
    assert!(page.body.contains("Mars/Olympus"));

    let page = console
        .get("/app/analytics?from=2020-01-01&to=2026-01-01")
        .await;
    page.assert_status(422);
    assert!(page.body.contains("400 days"), "{}", page.body);

    let page = console.get("/app/analytics?from=%3Cscript%3E").await;
    page.assert_status(422);
    assert!(page.body.contains(r#"id="f-from-error""#));
    assert!(!page.body.contains("<script>"), "{}", page.body);
}

#[tokio::test]
async fn one_cards_detail_and_another_companys_card_is_not_found() {
    let app = spawn_app().await;
    let (admin, card) = company_with_card(&app, "Detail Co").await;
    let (_, other) = company_with_card(&app, "Other Co").await;
    track_all(&app, &card, &["view", "email"]).await;
    track_all(&app, &other, &["view"]).await;
    let mut console = ConsoleClient::signed_in(&app, &admin.email, ADMIN_PASSWORD).await;

    let page = console
        .get(&format!("/app/analytics/employees/{}", card.employee_id))
        .await;
    page.assert_status(200);
    assert!(page.body.contains("<h1>Jane Card</h1>"), "{}", page.body);
    assert_stat(&page.body, "Views", 1);
    assert_stat(&page.body, "Engagements", 1);
    assert!(page.body.contains("email tapped"), "{}", page.body);

    let page = console
        .get(&format!("/app/analytics/employees/{}", other.employee_id))
        .await;
    page.assert_status(404);
    assert!(!page.body.contains("Jane Card"));
    console
        .get("/app/analytics/employees/not-a-uuid")
        .await
        .assert_status(404);
}

#[tokio::test]
async fn an_employee_sees_only_their_own_card() {
    let app = spawn_app().await;
    let (admin, card) = company_with_card(&app, "Scoped Co").await;
    let colleague = Card::of(&app.add_employee(&admin, "Colleague Card").await);
    track_all(&app, &card, &["view", "view"]).await;
    track_all(&app, &colleague, &["view", "view", "view", "view", "view"]).await;
    let login = app
        .add_user(&admin, "employee", Some(card.employee_id))
        .await;
    let mut console = ConsoleClient::signed_in(&app, &login.email, TEAMMATE_PASSWORD).await;

    // Home is the company's overview: an employee starts at their analytics instead.
    let page = console.get("/app").await;
    page.assert_status(303);
    assert_eq!(page.location(), Some("/app/analytics"));

    let page = console.get("/app/analytics").await;
    page.assert_status(200);
    assert!(page.body.contains("<h1>Jane Card</h1>"), "{}", page.body);
    assert_stat(&page.body, "Views", 2);
    assert!(!page.body.contains("Colleague Card"), "{}", page.body);
    assert!(!page.body.contains("Leaderboard"));
    assert!(!page.body.contains("export.csv"));

    console
        .get(&format!(
            "/app/analytics/employees/{}",
            colleague.employee_id
        ))
        .await
        .assert_status(403);
    console
        .get("/app/analytics/export.csv")
        .await
        .assert_status(403);
}

#[tokio::test]
async fn the_export_is_the_apis_csv() {
    let app = spawn_app().await;
    let (admin, card) = company_with_card(&app, "Export Co").await;
    track_all(&app, &card, &["view", "download_vcard", "call"]).await;
    let mut console = ConsoleClient::signed_in(&app, &admin.email, ADMIN_PASSWORD).await;
    let query = format!("from={}&to={}", days_ago(6), today());

    let page = console
        .get(&format!("/app/analytics/export.csv?{query}&tz=UTC"))
        .await;
    page.assert_status(200);
    assert!(page.header("Content-Type").unwrap().starts_with("text/csv"));
    let disposition = page.header("Content-Disposition").unwrap();
    assert!(
        disposition.starts_with("attachment; filename=\"export-co"),
        "{disposition}"
    );
    let lines: Vec<&str> = page.body.lines().collect();
    assert_eq!(
        lines[0],
        "occurred_at,event_id,employee_id,action,link,device,region"
    );
    assert_eq!(lines.len(), 4, "{}", page.body);

    let api = app
        .client
        .get(format!(
            "{}/api/analytics/company/{}/export.csv?{query}",
            app.address, admin.company_id
        ))
        .bearer_auth(&admin.token)
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 200);
    assert_eq!(api.text().await.unwrap(), page.body);

    // A bad range is the form again, not a file.
    let page = console
        .get("/app/analytics/export.csv?from=2026-11-10&to=2026-11-01")
        .await;
    page.assert_status(422);
    assert!(page.body.contains(r#"id="f-to-error""#));
}

/// Waits until the instance listens for announced events: events stored before that would be
/// announced to nobody.
async fn wait_listening(app: &TestApp) {
    let db = superuser(app).await;
    wait_for("the instance to listen for live activity", async || {
        scalar(
            &db,
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND query = 'LISTEN card_activity'",
            &[],
        )
        .await
            >= 1
    })
    .await;
}

type Body = futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>;

/// `GET /app/analytics/live` with the console's cookies, asking for compression as browsers do:
/// the stream must come uncompressed (a compressor would hold its events back).
async fn open_live(app: &TestApp, console: &ConsoleClient) -> Body {
    let cookies = console
        .cookies
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join("; ");
    let resp = app
        .client
        .get(format!("{}/app/analytics/live", app.address))
        .header("Cookie", cookies)
        .header("Accept-Encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    assert!(resp.headers().get("content-encoding").is_none());
    resp.bytes_stream().boxed()
}

/// The next `visit` event's block, within `PATIENCE`.
async fn next_visit(body: &mut Body, buffer: &mut String) -> String {
    tokio::time::timeout(PATIENCE, async {
        loop {
            if let Some(end) = buffer.find("\n\n") {
                let block: String = buffer.drain(..end + 2).collect();
                if block.contains("event: visit") {
                    return block;
                }
                continue;
            }
            let chunk = body.next().await.expect("the stream ended").unwrap();
            buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    })
    .await
    .expect("waiting for the live event")
}

#[tokio::test]
async fn the_live_feed_streams_an_event_tracked_after_connecting() {
    let app = spawn_app().await;
    let (admin, card) = company_with_card(&app, "Live Console").await;
    wait_listening(&app).await;
    let console = ConsoleClient::signed_in(&app, &admin.email, ADMIN_PASSWORD).await;
    let mut body = open_live(&app, &console).await;

    track_all(&app, &card, &["download_vcard"]).await;
    let event = next_visit(&mut body, &mut String::new()).await;
    assert!(event.contains("data: <li class=\"feed-item\">"), "{event}");
    assert!(event.contains("Jane Card"), "{event}");
    assert!(event.contains("contact saved"), "{event}");
    assert!(
        event.contains(&format!("/app/analytics/employees/{}", card.employee_id)),
        "{event}"
    );
}

#[tokio::test]
async fn an_employees_live_feed_shows_only_their_card() {
    let app = spawn_app().await;
    let (admin, card) = company_with_card(&app, "Live Scoped").await;
    let colleague = Card::of(&app.add_employee(&admin, "Colleague Card").await);
    let login = app
        .add_user(&admin, "employee", Some(card.employee_id))
        .await;
    wait_listening(&app).await;
    let console = ConsoleClient::signed_in(&app, &login.email, TEAMMATE_PASSWORD).await;
    let mut body = open_live(&app, &console).await;

    // The colleague's event is stored first; the first event to arrive is still the own card's.
    track_all(&app, &colleague, &["view"]).await;
    track_all(&app, &card, &["scan_qr"]).await;
    let event = next_visit(&mut body, &mut String::new()).await;
    assert!(event.contains("Jane Card"), "{event}");
    assert!(event.contains("QR code scanned"), "{event}");
    assert!(!event.contains("Colleague Card"), "{event}");
}
