//! What a stranger or a careless client can send the analytics, and what it must never do: a
//! malformed tracking event is refused at the door and, should one reach the writer anyway,
//! fails alone (the other events of its batch are stored); `from`/`to` outside what a timestamp
//! spells are a 422 on every dashboard, and a date alone means that whole day.
//!
//! Everything is checked against what PostgreSQL holds, read back as the superuser.

use crate::helpers::{
    self, Card, HOLD_MAINTENANCE, IPHONE, TestApp, company_with_card, scalar, spawn_app, track,
};
use callingcard::{
    analytics::{
        Action,
        ingest::{self, CardEvent, EventSink, IngestError},
    },
    db::Db,
};
use chrono::{DateTime, NaiveDate, NaiveTime, TimeDelta, Utc};
use futures::future::join_all;
use serde_json::{Value, json};
use tokio_postgres::Client;
use uuid::Uuid;

async fn superuser(app: &TestApp) -> Client {
    let db = helpers::superuser(app).await;
    // Waits for the maintenance the service runs at start, then keeps it from running again.
    db.batch_execute(HOLD_MAINTENANCE).await.unwrap();
    db
}

/// An event as the collector builds it, straight for the sink: nothing checked on the way.
fn event(card: &Card, visitor: u32, action: Action, at: DateTime<Utc>) -> CardEvent {
    CardEvent {
        id: Uuid::new_v4(),
        occurred_at: at,
        company_id: card.company_id,
        employee_id: card.employee_id,
        action,
        link: (action == Action::LinkClick).then(|| "linkedin".to_owned()),
        device: Some("mobile"),
        region: Some("DE".to_owned()),
        visitor: Some(format!("{visitor:032x}")),
    }
}

fn with_link(mut event: CardEvent, link: &str) -> CardEvent {
    event.link = Some(link.to_owned());
    event
}

// ---------------------------------------------------------------------------------------------
// The writer isolates what PostgreSQL refuses
// ---------------------------------------------------------------------------------------------

/// A NUL (which PostgreSQL cannot store in text) and a link past the column's check, handed to
/// the writer beside other visitors' events of the same company, of another company, and page
/// views nobody waits for, all in one batch: only the two fail, as refused (not as an outage),
/// and everything else is stored with its rollups.
#[tokio::test(flavor = "current_thread")]
async fn a_refused_event_fails_alone_and_its_batch_is_stored() {
    let app = spawn_app().await;
    let (_, a) = company_with_card(&app, "Batch Alpha").await;
    let (_, b) = company_with_card(&app, "Batch Beta").await;
    let db = superuser(&app).await;
    let (sink, writer) = EventSink::start(app.db.clone());
    let now = Utc::now();

    let actions = [
        Action::Call,
        Action::Share,
        Action::LinkClick,
        Action::Email,
    ];
    let mut waited = Vec::new();
    for visitor in 0..12 {
        waited.push((event(&a, visitor, actions[visitor as usize % 4], now), true));
    }
    waited.insert(
        5,
        (
            with_link(event(&a, 100, Action::LinkClick, now), "x\u{0}"),
            false,
        ),
    );
    waited.insert(
        9,
        (
            with_link(event(&a, 101, Action::LinkClick, now), &"y".repeat(101)),
            false,
        ),
    );
    for visitor in 0..5 {
        waited.push((event(&b, visitor, Action::Whatsapp, now), true));
    }
    let page_views: Vec<CardEvent> = (200..206)
        .map(|visitor| event(&a, visitor, Action::View, now))
        .collect();

    // On this single-threaded runtime the writer runs only once this task waits: everything
    // below is queued before it, and goes out as one batch.
    for view in &page_views {
        assert!(sink.record_later(view.clone()));
    }
    let results = join_all(waited.iter().map(|(e, _)| sink.record(e.clone()))).await;
    assert_eq!(
        sink.stats
            .batches
            .load(std::sync::atomic::Ordering::Relaxed),
        1,
        "the events went out as one batch"
    );

    for ((event, good), result) in waited.iter().zip(&results) {
        match (good, result) {
            (true, Ok(())) => {}
            (false, Err(IngestError::Refused(_))) => {}
            _ => panic!("{:?} {:?}: {result:?}", event.action, event.link),
        }
    }
    let stored = |e: &CardEvent| (e.company_id, e.id);
    let expected: Vec<(Uuid, Uuid)> = waited
        .iter()
        .filter(|(_, good)| *good)
        .map(|(e, _)| stored(e))
        .chain(page_views.iter().map(stored))
        .collect();
    let rows = db
        .query("SELECT company_id, id FROM card_events", &[])
        .await
        .unwrap();
    let mut got: Vec<(Uuid, Uuid)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    let mut want = expected.clone();
    got.sort();
    want.sort();
    assert_eq!(
        got, want,
        "every good event is stored, the refused ones are not"
    );

    // The rollups count what was stored, no more, no less.
    for (company, n) in [(a.company_id, 12 + 6), (b.company_id, 5)] {
        let hourly = scalar(
            &db,
            "SELECT sum(events)::bigint FROM card_rollup_employee_hourly WHERE company_id = $1",
            &[&company],
        )
        .await;
        let daily = scalar(
            &db,
            "SELECT sum(view + call + email + link_click + share + whatsapp)::bigint
             FROM card_rollup_employee_daily WHERE company_id = $1",
            &[&company],
        )
        .await;
        let visitors = scalar(
            &db,
            "SELECT count(*) FROM card_visitor_days WHERE company_id = $1 AND card <> $2",
            &[&company, &Uuid::nil()],
        )
        .await;
        assert_eq!((hourly, daily, visitors), (n, n, n), "company {company}");
    }
    assert_eq!(
        sink.stats.failed.load(std::sync::atomic::Ordering::Relaxed),
        2
    );

    drop(sink);
    writer.await.unwrap();
}

/// An outage is nobody's event's fault: every event of the batch fails as an outage (the
/// endpoint's 503), none as refused, whatever it carries.
#[tokio::test(flavor = "current_thread")]
async fn an_outage_fails_the_batch_as_one_outage() {
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://postgres@127.0.0.1:{closed_port}/nowhere");
    let (sink, writer) =
        EventSink::start(Db::connect_as_app(&url.parse().unwrap(), None, 2).unwrap());
    let events: Vec<CardEvent> = (0..3)
        .map(|_| CardEvent {
            id: Uuid::new_v4(),
            occurred_at: Utc::now(),
            company_id: Uuid::new_v4(),
            employee_id: Uuid::new_v4(),
            action: Action::Share,
            link: Some("x\u{0}".to_owned()),
            device: None,
            region: None,
            visitor: None,
        })
        .collect();
    for result in join_all(events.iter().map(|e| sink.record(e.clone()))).await {
        match result {
            Err(IngestError::Database(e)) => assert!(ingest::is_outage(&e), "{e}"),
            other => panic!("{other:?}"),
        }
    }
    let stats = &sink.stats;
    assert_eq!(stats.batches.load(std::sync::atomic::Ordering::Relaxed), 1);
    assert_eq!(stats.failed.load(std::sync::atomic::Ordering::Relaxed), 3);
    drop(sink);
    writer.await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// The tracking endpoint refuses what is not one line of visible text
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn tracking_refuses_control_characters_and_bidi_overrides_naming_the_field() {
    let app = spawn_app().await;
    let (_, c) = company_with_card(&app, "Refusing Co").await;
    let db = superuser(&app).await;

    let bad_texts = [
        "x\u{0}",
        "\u{1}\u{1b}[31mred",
        "two\nlines",
        "tab\there",
        "x\u{7f}",
        "x\u{85}",
        "evil\u{202E}fdp.exe",
        "\u{202A}x",
        "\u{2066}x\u{2069}",
        "line\u{2028}separator",
    ];
    for text in bad_texts {
        for (field, body) in [
            ("link", json!({"action": "link_click", "link": text})),
            ("region", json!({"action": "view", "region": text})),
        ] {
            let resp = track(&app, &c, IPHONE, &[], body).await;
            resp.assert_error(422, "validation_error");
            let detail = resp.body["detail"].as_str().unwrap();
            assert!(detail.contains(&format!("`{field}`")), "{text:?}: {detail}");
        }
    }
    // Lengths are still checked, and what is fine is stored.
    for body in [
        json!({"action": "link_click", "link": "é".repeat(101)}),
        json!({"action": "view", "region": "r".repeat(65)}),
    ] {
        track(&app, &c, IPHONE, &[], body)
            .await
            .assert_error(422, "validation_error");
    }
    let fine = [
        json!({"action": "link_click", "link": "é".repeat(100)}),
        json!({"action": "link_click", "link": "Réseau — LinkedIn"}),
        json!({"action": "view", "region": "Île-de-France"}),
    ];
    for body in &fine {
        track(&app, &c, IPHONE, &[], body.clone())
            .await
            .assert_status(200);
    }
    let stored = scalar(
        &db,
        "SELECT count(*) FROM card_events WHERE company_id = $1",
        &[&c.company_id],
    )
    .await;
    assert_eq!(stored, fine.len() as i64, "nothing refused was stored");
}

/// The report's load: a client sending NUL links beside honest ones. Every honest request is
/// stored; the bad ones are 422, never 500.
#[tokio::test]
async fn honest_visitors_beside_a_malformed_one_are_all_stored() {
    let app = spawn_app().await;
    let (_, c) = company_with_card(&app, "Crowded Co").await;
    let db = superuser(&app).await;
    let requests = (0..48).map(|i| {
        let body = if i % 3 == 0 {
            json!({"action": "link_click", "link": "x\u{0}"})
        } else {
            json!({"action": "share"})
        };
        // 48 requests from one address stay within its burst of tracking requests.
        let req = app
            .client
            .post(format!("{}{}", app.address, c.track_path()))
            .header("user-agent", IPHONE)
            .json(&body);
        async move { (i, TestApp::read(req.send().await.unwrap()).await) }
    });
    for (i, resp) in join_all(requests).await {
        if i % 3 == 0 {
            resp.assert_error(422, "validation_error");
        } else {
            resp.assert_status(200);
        }
    }
    let shares = scalar(
        &db,
        "SELECT count(*) FROM card_events WHERE company_id = $1 AND action = 'share'",
        &[&c.company_id],
    )
    .await;
    assert_eq!(shares, 32);
}

/// Tracking refuses them now, but rows stored before (or by anything else) may hold them: the
/// export still carries no terminal escape and no reversed text.
#[tokio::test(flavor = "current_thread")]
async fn the_csv_export_carries_no_control_characters_from_links() {
    let app = spawn_app().await;
    let (admin, c) = company_with_card(&app, "Export Co").await;
    let _db = superuser(&app).await;
    let (sink, writer) = EventSink::start(app.db.clone());
    let at = Utc::now() - TimeDelta::hours(1);
    for link in ["\u{1}\u{1b}[31mred", "evil\u{202E}fdp.exe", "\u{7}bell"] {
        let e = with_link(event(&c, 1, Action::LinkClick, at), link);
        sink.record(e).await.expect("stored");
    }
    drop(sink);
    writer.await.unwrap();

    let resp = app
        .client
        .get(format!(
            "{}/api/analytics/company/{}/export.csv",
            app.address, c.company_id
        ))
        .bearer_auth(&admin.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let csv = resp.text().await.unwrap();
    assert_eq!(csv.lines().count(), 4, "{csv}");
    let hidden: Vec<char> = csv
        .chars()
        .filter(|&c| {
            (c.is_control() && c != '\n')
                || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
        })
        .collect();
    assert!(hidden.is_empty(), "{hidden:?} in {csv:?}");
    for shown in [
        "\u{FFFD}\u{FFFD}[31mred",
        "evil\u{FFFD}fdp.exe",
        "\u{FFFD}bell",
    ] {
        assert!(csv.contains(shown), "{shown:?} in {csv:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// `from` and `to`
// ---------------------------------------------------------------------------------------------

/// Every analytics endpoint taking `from`/`to`, for `c` (paths with a `?` already).
fn range_endpoints(c: &Card) -> Vec<String> {
    let (company, employee) = (c.company_id, c.employee_id);
    vec![
        format!("/api/analytics/company/{company}?"),
        format!("/api/analytics/employee/{employee}?"),
        format!("/api/analytics/company/{company}/timeseries?"),
        format!("/api/analytics/employee/{employee}/timeseries?"),
        format!("/api/analytics/company/{company}/breakdown?by=device&"),
        format!("/api/analytics/company/{company}/breakdown?by=region&"),
        format!("/api/analytics/company/{company}/leaderboard?"),
        format!("/api/analytics/company/{company}/export.csv?"),
    ]
}

#[tokio::test]
async fn bounds_outside_the_years_0000_to_9999_are_422_on_every_endpoint() {
    let app = spawn_app().await;
    let (admin, c) = company_with_card(&app, "Range Co").await;
    let token = &admin.token;
    for path in range_endpoints(&c) {
        for (query, field, code) in [
            ("from=-9999-01-01T00:00:00Z", "from", "invalid_range"),
            ("to=-9999-01-01T00:00:00Z", "to", "invalid_range"),
            ("from=-0001-12-31T23:00:00Z", "from", "invalid_range"),
            ("to=%2B10000-01-01T00:00:00Z", "to", "invalid_range"),
            ("from=-4714-11-24", "from", "invalid_range"),
            ("to=10000-01-01", "to", "invalid_range"),
            ("from=2026-11-31", "from", "invalid_parameter"),
            ("to=yesterday", "to", "invalid_parameter"),
            ("from=2026-11-01T24:30:00Z", "from", "invalid_parameter"),
        ] {
            let url = format!("{path}{query}");
            let resp = app.get(&url, Some(token)).await;
            assert_eq!(resp.status, 422, "{url}: {}", resp.body);
            resp.assert_error(422, code);
            let detail = resp.body["detail"].as_str().unwrap();
            assert!(detail.contains(&format!("`{field}`")), "{url}: {detail}");
        }
        // The widest bounds still answer (a series only over its longest span).
        let widest = if path.contains("timeseries") {
            [
                "from=0000-01-01T00:00:00Z&to=0000-01-10",
                "from=9999-12-01&to=9999-12-31",
            ]
        } else {
            [
                "from=0000-01-01T00:00:00Z&to=9999-12-31T23:59:59Z",
                "from=0000-01-01&to=9999-12-31",
            ]
        };
        for query in widest {
            let url = format!("{path}{query}");
            let resp = app.get(&url, Some(token)).await;
            assert_eq!(resp.status, 200, "{url}: {}", resp.body);
        }
    }
}

/// `from=D` starts at D's midnight and `to=D` includes all of D, in the series' `tz` and in UTC
/// elsewhere. Four events around the edges of D and D + 2 tell which were counted.
#[tokio::test(flavor = "current_thread")]
async fn a_date_alone_is_that_whole_day_in_the_time_zone() {
    let app = spawn_app().await;
    let (admin, c) = company_with_card(&app, "Dates Co").await;
    let _db = superuser(&app).await;
    let token = &admin.token;
    let d = (Utc::now() - TimeDelta::days(10)).date_naive();
    let at = |day: NaiveDate, h: u32, m: u32| {
        day.and_time(NaiveTime::from_hms_opt(h, m, 0).unwrap())
            .and_utc()
    };
    let day = |n: i64| d + TimeDelta::days(n);
    // In Asia/Tokyo (UTC+9, no daylight saving) D starts at D - 1, 15:00 UTC.
    let seeded = [
        (at(day(-1), 23, 30), Action::View), // UTC: day before D; Tokyo: D
        (at(day(0), 0, 30), Action::Call),   // D in both
        (at(day(2), 23, 30), Action::Share), // UTC: D + 2; Tokyo: D + 3
        (at(day(3), 0, 30), Action::Email),  // after D + 2 in both
    ];
    let (sink, writer) = EventSink::start(app.db.clone());
    for (i, (when, action)) in seeded.iter().enumerate() {
        sink.record(event(&c, i as u32, *action, *when))
            .await
            .expect("stored");
    }
    drop(sink);
    writer.await.unwrap();

    let ymd = |n: i64| day(n).format("%Y-%m-%d").to_string();
    let range = format!("from={}&to={}", ymd(0), ymd(2));
    let company = c.company_id;
    let get = async |path: String| {
        let resp = app.get(&path, Some(token)).await;
        assert_eq!(resp.status, 200, "{path}: {}", resp.body);
        resp.body
    };
    let actions_of = |events: &Value| -> Vec<String> {
        let mut actions: Vec<String> = events
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap().to_owned())
            .collect();
        actions.sort();
        actions
    };

    // UTC: the call and the share.
    for path in [
        format!("/api/analytics/company/{company}?{range}"),
        format!("/api/analytics/employee/{}?{range}", c.employee_id),
    ] {
        let body = get(path).await;
        assert_eq!(actions_of(&body["events"]), ["call", "share"]);
        let summary = &body["summary"];
        assert_eq!(
            (summary["view"].as_i64(), summary["call"].as_i64()),
            (Some(0), Some(1))
        );
        assert_eq!(
            (summary["share"].as_i64(), summary["email"].as_i64()),
            (Some(1), Some(0))
        );
    }
    let body = get(format!(
        "/api/analytics/company/{company}/breakdown?by=device&{range}"
    ))
    .await;
    assert_eq!(
        body["rows"],
        json!([{"value": "mobile", "events": 2, "views": 0}])
    );
    let body = get(format!(
        "/api/analytics/company/{company}/leaderboard?{range}"
    ))
    .await;
    assert_eq!(body["employees"][0]["engagements"], 2);
    let body = app
        .client
        .get(format!(
            "{}/api/analytics/company/{company}/export.csv?{range}",
            app.address
        ))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let exported: Vec<&str> = body
        .lines()
        .skip(1)
        .map(|line| line.split(',').nth(3).unwrap())
        .collect();
    assert_eq!(exported, ["call", "share"], "{body}");

    // The series: three local days, D to D + 2 inclusive, in UTC and in Tokyo.
    for (tz, counted) in [("UTC", ["call", "share"]), ("Asia/Tokyo", ["call", "view"])] {
        let body = get(format!(
            "/api/analytics/company/{company}/timeseries?{range}&tz={tz}"
        ))
        .await;
        let labels: Vec<&str> = body["buckets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["start"].as_str().unwrap())
            .collect();
        assert_eq!(labels, [ymd(0), ymd(1), ymd(2)], "{tz}");
        for action in ["view", "call", "share", "email"] {
            let expected = i64::from(counted.contains(&action));
            assert_eq!(body["totals"][action], expected, "{tz} {action}: {body}");
        }
    }

    // `from` and `to` on the same date: that one day.
    let one_day = format!("from={}&to={}", ymd(0), ymd(0));
    let body = get(format!("/api/analytics/company/{company}?{one_day}")).await;
    assert_eq!(actions_of(&body["events"]), ["call"]);

    // A date and a date-time mix; a date-time is taken as written.
    let mixed = format!("from={}T00:00:00Z&to={}", ymd(-1), ymd(0));
    let body = get(format!("/api/analytics/company/{company}?{mixed}")).await;
    assert_eq!(actions_of(&body["events"]), ["call", "view"]);
}
