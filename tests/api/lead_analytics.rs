//! A lead counts in analytics as the action `lead`: once per stored lead (JSON or the page's
//! form), in the summaries, the time series, the leaderboard and the conversion, on the
//! employee's own card, on the console's pages and in the live feeds; never for a refused lead,
//! and never when a visitor reports one through the tracking beacon.

use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    console_client::ConsoleClient,
    helpers::{
        ADMIN_PASSWORD, Card, IPHONE, PATIENCE, TEAMMATE_PASSWORD, TestApp, company_with_card,
        scalar, spawn_app, superuser, track, track_ok, wait_for,
    },
    leads::{app, form_token, leave, send_form},
};

/// Tracks `actions` on `card` as a person on a phone.
async fn track_all(app: &TestApp, card: &Card, actions: &[&str]) {
    for action in actions {
        let body = track_ok(app, card, IPHONE, json!({"action": action})).await;
        assert_eq!(body["status"], "tracked", "{body}");
    }
}

/// One lead by JSON (201) and one by the page's form (303).
async fn leave_two_leads(app: &TestApp, card: &Card) {
    leave(
        app,
        card,
        json!({"name": "Json Lead", "email": "json@visitor.example"}),
    )
    .await
    .assert_status(201);
    let token = form_token(app, card).await;
    let sent = send_form(
        app,
        card,
        &[
            ("name", "Form Lead"),
            ("email", "form@visitor.example"),
            ("started", &token),
        ],
    )
    .await;
    assert_eq!(sent.status(), StatusCode::SEE_OTHER);
}

async fn ok(app: &TestApp, path: &str, token: &str) -> Value {
    let resp = app.get(path, Some(token)).await;
    resp.assert_status(200);
    resp.body
}

async fn stored_leads(app: &TestApp) -> i64 {
    scalar(
        &superuser(app).await,
        "SELECT count(*) FROM card_events WHERE action = 'lead'",
        &[],
    )
    .await
}

#[tokio::test]
async fn a_lead_by_json_and_by_form_each_count_once_everywhere() {
    let app = app().await;
    let (admin, card) = company_with_card(&app, "Lead Numbers").await;
    track_all(
        &app,
        &card,
        &[
            "view",
            "view",
            "view",
            "scan_qr",
            "download_vcard",
            "download_vcard",
            "call",
        ],
    )
    .await;
    // Each lead is counted before its answer: no waiting needed.
    leave_two_leads(&app, &card).await;
    assert_eq!(stored_leads(&app).await, 2);

    let company = format!("/api/analytics/company/{}", admin.company_id);
    let events = ok(&app, &company, &admin.token).await;
    assert_eq!(events["summary"]["lead"], 2, "{events}");
    assert_eq!(events["summary"]["download_vcard"], 2, "{events}");
    let lead_events = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "lead")
        .count();
    assert_eq!(lead_events, 2, "{events}");

    let series = ok(&app, &format!("{company}/timeseries"), &admin.token).await;
    assert_eq!(series["totals"]["lead"], 2, "{series}");
    let today = series["buckets"].as_array().unwrap().last().unwrap();
    assert_eq!(today["counts"]["lead"], 2, "{today}");
    assert_eq!(
        series["conversion"],
        json!({"views": 4, "saved_contacts": 2, "rate": 0.5, "leads": 2, "lead_rate": 0.5,
               "leads_per_saved_contact": 1.0}),
        "{series}"
    );

    // A lead is no engagement: the call and the saved contacts are.
    let leaders = ok(&app, &format!("{company}/leaderboard"), &admin.token).await;
    assert_eq!(
        leaders,
        json!({"employees": [{"employee_id": card.employee_id, "full_name": "Jane Card",
                              "views": 4, "engagements": 3, "saved_contacts": 2, "leads": 2}]})
    );

    // The export lists them as the other events.
    let csv = app
        .client
        .get(format!("{}{company}/export.csv", app.address))
        .bearer_auth(&admin.token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        csv.lines().filter(|l| l.contains(",lead,")).count(),
        2,
        "{csv}"
    );
}

#[tokio::test]
async fn a_refused_lead_is_not_counted() {
    // The default minimum time to fill: a form sent back at once is too fast.
    let app = spawn_app().await;
    let (admin, card) = company_with_card(&app, "Lead Refusals").await;
    let contact = json!({"name": "Bot", "email": "bot@spam.example"});
    let mut honeypot = contact.clone();
    honeypot["website"] = "https://spam.example".into();
    leave(&app, &card, honeypot)
        .await
        .assert_error(422, "honeypot_filled");
    leave(&app, &card, contact)
        .await
        .assert_error(422, "form_too_fast");
    let token = form_token(&app, &card).await;
    let fast = send_form(
        &app,
        &card,
        &[
            ("name", "Bot"),
            ("email", "bot@spam.example"),
            ("started", &token),
        ],
    )
    .await;
    assert_eq!(fast.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let spam = send_form(
        &app,
        &card,
        &[
            ("name", "Bot"),
            ("email", "bot@spam.example"),
            ("website", "x"),
            ("started", &token),
        ],
    )
    .await;
    assert_eq!(spam.status(), StatusCode::UNPROCESSABLE_ENTITY);

    // A barrier: this view is stored after anything the refused requests could have queued.
    track_all(&app, &card, &["view"]).await;
    assert_eq!(stored_leads(&app).await, 0);
    let company = format!("/api/analytics/company/{}", admin.company_id);
    let events = ok(&app, &company, &admin.token).await;
    assert_eq!(events["summary"]["lead"], 0, "{events}");
    assert_eq!(events["summary"]["view"], 1, "{events}");
    let series = ok(&app, &format!("{company}/timeseries"), &admin.token).await;
    assert_eq!(series["conversion"]["leads"], 0, "{series}");
    assert_eq!(series["conversion"]["lead_rate"], 0.0, "{series}");
}

#[tokio::test]
async fn a_visitor_cannot_track_a_lead() {
    let app = spawn_app().await;
    let (_admin, card) = company_with_card(&app, "Lead Forgery").await;
    let queued = app.events_queued();
    let resp = track(&app, &card, IPHONE, &[], json!({"action": "lead"})).await;
    resp.assert_error(422, "validation_error");
    assert_eq!(
        app.events_queued(),
        queued,
        "nothing was handed to the writer"
    );
    // A barrier: a real event after it is stored; still no lead.
    track_all(&app, &card, &["view"]).await;
    assert_eq!(stored_leads(&app).await, 0);
}

#[tokio::test]
async fn an_employee_sees_the_leads_of_their_own_card() {
    let app = app().await;
    let (admin, card) = company_with_card(&app, "Lead Employee").await;
    let colleague = Card::of(&app.add_employee(&admin, "Colleague Card").await);
    track_all(&app, &card, &["view", "view"]).await;
    leave_two_leads(&app, &card).await;
    leave(
        &app,
        &colleague,
        json!({"name": "Other", "phone": "+1 555 010 0001"}),
    )
    .await
    .assert_status(201);
    let login = app
        .add_user(&admin, "employee", Some(card.employee_id))
        .await;

    let employee = format!("/api/analytics/employee/{}", card.employee_id);
    let events = ok(&app, &employee, &login.token).await;
    assert_eq!(events["summary"]["lead"], 2, "{events}");
    let series = ok(&app, &format!("{employee}/timeseries"), &login.token).await;
    assert_eq!(series["totals"]["lead"], 2, "{series}");
    assert_eq!(series["conversion"]["leads"], 2, "{series}");
    assert_eq!(series["conversion"]["lead_rate"], 1.0, "{series}");
    // No saved contacts: leads per saved contact is 0, as a rate without its base is.
    assert_eq!(
        series["conversion"]["leads_per_saved_contact"], 0.0,
        "{series}"
    );

    let mut console = ConsoleClient::signed_in(&app, &login.email, TEAMMATE_PASSWORD).await;
    let page = console.get("/app/analytics").await;
    page.assert_status(200);
    assert_stat(&page.body, "Leads", 2);
    assert!(page.body.contains("lead left"), "{}", page.body);
}

/// `<span class="label">{label}</span><span class="value">{value}</span>`: a stat as shown.
#[track_caller]
fn assert_stat(body: &str, label: &str, value: i64) {
    let shown = format!(r#"<span class="label">{label}</span><span class="value">{value}</span>"#);
    assert!(body.contains(&shown), "no {label} = {value} in:\n{body}");
}

#[tokio::test]
async fn home_and_analytics_show_the_leads() {
    let app = app().await;
    let (admin, card) = company_with_card(&app, "Lead Console").await;
    track_all(&app, &card, &["view", "view", "download_vcard"]).await;
    leave_two_leads(&app, &card).await;
    let mut console = ConsoleClient::signed_in(&app, &admin.email, ADMIN_PASSWORD).await;

    let home = console.get("/app").await;
    home.assert_status(200);
    assert_stat(&home.body, "Leads", 2);
    // A lead is not an engagement; the saved contact is shown apart too.
    assert_stat(&home.body, "Engagements", 0);
    assert!(
        home.body.contains(r#"class="chart-key series-6""#),
        "{}",
        home.body
    );
    let today = chrono::Utc::now().date_naive();
    assert!(
        home.body
            .contains(&format!("<title>{today}, Leads: 2</title>")),
        "{}",
        home.body
    );

    let page = console.get("/app/analytics").await;
    page.assert_status(200);
    assert_stat(&page.body, "Leads", 2);
    assert!(
        page.body
            .contains("Conversion (views and scans → leads): <strong>100.0%</strong> (2 of 2)"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("2.00 leads per saved contact"),
        "{}",
        page.body
    );
    // The leaderboard's row: views, engagements, saved contacts, leads.
    assert!(
        page.body.contains(
            r#"<td class="num">2</td><td class="num">0</td><td class="num">1</td><td class="num">2</td>"#
        ),
        "{}",
        page.body
    );
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

/// The data of the next event named `name` of an SSE body, within `PATIENCE`.
async fn next_event(
    body: &mut futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buffer: &mut String,
    name: &str,
) -> String {
    tokio::time::timeout(PATIENCE, async {
        loop {
            if let Some(end) = buffer.find("\n\n") {
                let block: String = buffer.drain(..end + 2).collect();
                if block.contains(&format!("event: {name}")) {
                    return block
                        .lines()
                        .filter_map(|l| l.strip_prefix("data: "))
                        .collect::<String>();
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
async fn the_live_feeds_deliver_a_lead() {
    let app = app().await;
    let (admin, card) = company_with_card(&app, "Lead Live").await;
    wait_listening(&app).await;
    // The API's feed, and the console's.
    let api = app
        .client
        .get(format!(
            "{}/api/company/{}/analytics/live",
            app.address, admin.company_id
        ))
        .bearer_auth(&admin.token)
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 200);
    let mut api = api.bytes_stream().boxed();
    let console = ConsoleClient::signed_in(&app, &admin.email, ADMIN_PASSWORD).await;
    let cookies = console
        .cookies
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join("; ");
    let html = app
        .client
        .get(format!("{}/app/analytics/live", app.address))
        .header("Cookie", cookies)
        .send()
        .await
        .unwrap();
    assert_eq!(html.status(), 200);
    let mut html = html.bytes_stream().boxed();

    // Fetched without a browser's user agent, the form's page counts as a preview, which the
    // feeds leave out: the first visit is the lead.
    leave(
        &app,
        &card,
        json!({"name": "Live Lead", "email": "live@visitor.example"}),
    )
    .await
    .assert_status(201);
    let visit: Value =
        serde_json::from_str(&next_event(&mut api, &mut String::new(), "visit").await).unwrap();
    assert_eq!(visit["action"], "lead", "{visit}");
    assert_eq!(visit["employee_id"], card.employee_id.to_string());
    assert_eq!(visit["employee_name"], "Jane Card");
    let item = next_event(&mut html, &mut String::new(), "visit").await;
    assert!(item.contains("Jane Card"), "{item}");
    assert!(item.contains("lead left"), "{item}");
    // What the visitor wrote never reaches the feed.
    assert!(!item.contains("Live Lead") && !visit.to_string().contains("Live Lead"));
}
