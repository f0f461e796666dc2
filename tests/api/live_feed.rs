//! The live activity feed: `GET /api/company/{id}/analytics/live` streams, as Server-Sent
//! Events, what visitors do on the company's cards once it is stored, whichever instance stored
//! it; each company sees only its own, an employee only their own card; open feeds are bounded.
//! "Nothing arrives" is proven with a barrier: a later event that does arrive, first.

use std::collections::BTreeSet;

use futures::{StreamExt, stream::BoxStream};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{
    Card, IPHONE, LINK_PREVIEW, PATIENCE, Session, TestApp, company_with_card, scalar, spawn_app,
    spawn_app_on, spawn_app_with, superuser, track_ok, wait_for,
};

fn live_path(company_id: Uuid) -> String {
    format!("/api/company/{company_id}/analytics/live")
}

/// Waits until `instances` instances listen for announced events on `app`'s database: events
/// stored before that would be announced to nobody.
async fn wait_listening(app: &TestApp, instances: i64) {
    let db = superuser(app).await;
    wait_for("the instances to listen for live activity", async || {
        scalar(
            &db,
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND query = 'LISTEN card_activity'",
            &[],
        )
        .await
            >= instances
    })
    .await;
}

/// An open feed, read as a client would.
struct Feed {
    body: BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buffer: String,
}

impl Feed {
    async fn open(app: &TestApp, company_id: Uuid, token: &str) -> Feed {
        let resp = app
            .client
            .get(format!("{}{}", app.address, live_path(company_id)))
            .bearer_auth(token)
            .send()
            .await
            .expect("opening the feed");
        assert_eq!(resp.status(), 200);
        let content_type = resp.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(
            content_type.starts_with("text/event-stream"),
            "{content_type}"
        );
        Feed {
            body: resp.bytes_stream().boxed(),
            buffer: String::new(),
        }
    }

    /// The next event's name and data, skipping comments; `None` when the stream ended.
    async fn next_event(&mut self) -> Option<(String, Value)> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let (mut name, mut data) = ("message".to_owned(), String::new());
                for line in block.lines() {
                    if let Some(value) = line.strip_prefix("event: ") {
                        name = value.to_owned();
                    } else if let Some(value) = line.strip_prefix("data: ") {
                        data.push_str(value);
                    }
                }
                if data.is_empty() {
                    continue; // a heartbeat comment
                }
                return Some((name, serde_json::from_str(&data).expect("JSON data")));
            }
            let chunk = tokio::time::timeout(PATIENCE, self.body.next())
                .await
                .expect("waiting for the feed");
            match chunk {
                Some(chunk) => self
                    .buffer
                    .push_str(std::str::from_utf8(&chunk.expect("reading the feed")).unwrap()),
                None => return None,
            }
        }
    }

    /// The next `visit` event.
    async fn next_visit(&mut self) -> Value {
        loop {
            let (name, data) = self.next_event().await.expect("the feed ended");
            if name == "visit" {
                return data;
            }
        }
    }
}

async fn track_view(app: &TestApp, card: &Card) {
    let body = track_ok(app, card, IPHONE, json!({"action": "view"})).await;
    assert_eq!(body["status"], "tracked", "{body}");
}

#[tokio::test]
async fn a_tracked_view_arrives_with_no_trace_of_the_visitor() {
    let app = spawn_app().await;
    let (admin, card) = company_with_card(&app, "Live Co").await;
    wait_listening(&app, 1).await;
    let mut feed = Feed::open(&app, admin.company_id, &admin.token).await;
    // A link preview is left out, as the dashboards leave it out: the view after it comes first.
    let preview = track_ok(&app, &card, LINK_PREVIEW, json!({"action": "view"})).await;
    assert_eq!(preview["status"], "ignored", "{preview}");
    let scan = track_ok(&app, &card, IPHONE, json!({"action": "scan_qr"})).await;
    assert_eq!(scan["status"], "tracked", "{scan}");
    let visit = feed.next_visit().await;
    assert_eq!(visit["action"], "scan_qr", "{visit}");
    assert_eq!(visit["employee_id"], card.employee_id.to_string());
    assert_eq!(visit["employee_name"], "Jane Card");
    assert_eq!(visit["employee_slug"], card.slug);
    assert_eq!(visit["device"], "mobile");
    let occurred_at = visit["occurred_at"].as_str().unwrap();
    chrono::DateTime::parse_from_rfc3339(occurred_at).expect("an RFC 3339 time");
    let keys: BTreeSet<&str> = visit
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let allowed: BTreeSet<&str> = [
        "action",
        "employee_id",
        "employee_name",
        "employee_slug",
        "occurred_at",
        "device",
        "region",
    ]
    .into();
    assert!(keys.is_subset(&allowed), "{visit}");
}

#[tokio::test]
async fn an_event_stored_by_one_instance_reaches_a_feed_on_another() {
    let a = spawn_app().await;
    let b = spawn_app_on(&a.dbname, &[]).await;
    let (admin, card) = company_with_card(&a, "Two Instances Co").await;
    wait_listening(&a, 2).await;
    let mut feed = Feed::open(&b, admin.company_id, &admin.token).await;
    track_view(&a, &card).await;
    let visit = feed.next_visit().await;
    assert_eq!(visit["action"], "view");
    assert_eq!(visit["employee_id"], card.employee_id.to_string());
}

#[tokio::test]
async fn a_company_never_sees_another_companys_events() {
    let app = spawn_app().await;
    let (_, card_a) = company_with_card(&app, "Watched Co").await;
    let (admin_b, card_b) = company_with_card(&app, "Watching Co").await;
    wait_listening(&app, 1).await;
    let mut feed_b = Feed::open(&app, admin_b.company_id, &admin_b.token).await;
    track_view(&app, &card_a).await;
    // The barrier: B's own event, stored after A's, is the first B's feed sees.
    track_view(&app, &card_b).await;
    let visit = feed_b.next_visit().await;
    assert_eq!(
        visit["employee_id"],
        card_b.employee_id.to_string(),
        "{visit}"
    );
}

#[tokio::test]
async fn an_employee_sees_only_their_own_card() {
    let app = spawn_app().await;
    let (admin, other_card) = company_with_card(&app, "Employee Scope Co").await;
    let own = Card::of(&app.add_employee(&admin, "Own Card").await);
    let employee = app
        .add_user(&admin, "employee", Some(own.employee_id))
        .await;
    wait_listening(&app, 1).await;
    let mut feed = Feed::open(&app, admin.company_id, &employee.token).await;
    let mut admin_feed = Feed::open(&app, admin.company_id, &admin.token).await;
    track_view(&app, &other_card).await;
    track_view(&app, &own).await;
    let visit = feed.next_visit().await;
    assert_eq!(visit["employee_id"], own.employee_id.to_string(), "{visit}");
    assert_eq!(visit["employee_name"], "Own Card");
    // The admin sees both, in order.
    assert_eq!(
        admin_feed.next_visit().await["employee_id"],
        other_card.employee_id.to_string()
    );
    assert_eq!(
        admin_feed.next_visit().await["employee_id"],
        own.employee_id.to_string()
    );
    // A login linked to no card has nothing to watch.
    let unlinked = app.add_user(&admin, "employee", None).await;
    let resp = app
        .get(&live_path(admin.company_id), Some(&unlinked.token))
        .await;
    resp.assert_status(403);
    assert_eq!(resp.body["code"], "forbidden", "{}", resp.body);
}

#[tokio::test]
async fn open_feeds_are_bounded_per_company_and_per_instance() {
    let app = spawn_app_with(&[("LIVE_FEED_PER_COMPANY", "2"), ("LIVE_FEED_TOTAL", "3")]).await;
    let a = app.signup("Many Tabs Co").await;
    let b = app.signup("Other Tabs Co").await;
    let first = Feed::open(&app, a.company_id, &a.token).await;
    let _second = Feed::open(&app, a.company_id, &a.token).await;
    let refused = app.get(&live_path(a.company_id), Some(&a.token)).await;
    refused.assert_status(429);
    assert_eq!(
        refused.body["code"], "too_many_live_feeds",
        "{}",
        refused.body
    );
    assert!(refused.headers.contains_key("retry-after"));
    let _third = Feed::open(&app, b.company_id, &b.token).await;
    let full = app.get(&live_path(b.company_id), Some(&b.token)).await;
    full.assert_status(503);
    assert_eq!(full.body["code"], "busy", "{}", full.body);
    assert!(full.headers.contains_key("retry-after"));
    // A closed feed gives its place back.
    drop(first);
    let mut reopened = None;
    wait_for("a closed feed to give its place back", async || {
        let resp = app
            .client
            .get(format!("{}{}", app.address, live_path(a.company_id)))
            .bearer_auth(&a.token)
            .send()
            .await
            .unwrap();
        let opened = resp.status() == 200;
        if opened {
            reopened = Some(resp);
        }
        opened
    })
    .await;
    assert!(reopened.is_some());
}

#[tokio::test]
async fn no_token_is_401_and_another_company_is_404() {
    let app = spawn_app().await;
    let a: Session = app.signup("Private Feed Co").await;
    let b = app.signup("Curious Co").await;
    let resp = app.get(&live_path(a.company_id), None).await;
    resp.assert_status(401);
    assert_eq!(resp.body["code"], "unauthorized", "{}", resp.body);
    let other = app.get(&live_path(a.company_id), Some(&b.token)).await;
    other.assert_status(404);
    let missing = app.get(&live_path(Uuid::new_v4()), Some(&b.token)).await;
    missing.assert_status(404);
    assert_eq!(other.body, missing.body);
    let root = app.superadmin().await;
    app.get(&live_path(Uuid::new_v4()), Some(&root.token))
        .await
        .assert_status(404);
}

#[tokio::test]
async fn a_logout_ends_the_feed_at_its_next_check() {
    let app = spawn_app_with(&[("LIVE_FEED_RECHECK", "1s")]).await;
    let admin = app.signup("Logout Ends Co").await;
    let mut feed = Feed::open(&app, admin.company_id, &admin.token).await;
    let mut other_tab = Feed::open(&app, admin.company_id, &admin.token).await;
    app.post("/api/auth/logout", Some(&admin.token), json!({}))
        .await
        .assert_status(204);
    assert_eq!(feed.next_event().await, None);
    assert_eq!(other_tab.next_event().await, None);
}

#[tokio::test]
async fn a_shutdown_ends_the_feed_without_waiting_for_it() {
    let mut app = spawn_app().await;
    let (admin, _) = company_with_card(&app, "Ending Co").await;
    let mut feed = Feed::open(&app, admin.company_id, &admin.token).await;
    app.shutdown.take().unwrap().send(()).unwrap();
    assert_eq!(feed.next_event().await, None);
    tokio::time::timeout(PATIENCE, &mut app.server)
        .await
        .expect("the shutdown waited for the feed")
        .unwrap()
        .unwrap();
}
