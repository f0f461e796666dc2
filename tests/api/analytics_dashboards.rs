//! The analytics dashboards against their contract (`/tmp/analytics-contract.md`): who may see
//! what, the keyset-paginated event lists and their summaries, time series in local time zones
//! (DST days of 23 and 25 hours), unique visitors, conversion, breakdowns, the leaderboard, the
//! CSV export (escaping, streaming, a large export) and the retention clamp.
//!
//! Events are seeded with the superuser through the same statement ingestion uses (events, the
//! hourly and daily rollups and the visitors in one go), at exact timestamps, so every expected
//! number below is known exactly. The service's own maintenance is held off (its advisory lock)
//! so that nothing seeded in the past is purged behind a test's back.

use std::collections::BTreeSet;

use crate::helpers::{
    Card, DESKTOP, HOLD_MAINTENANCE, IPHONE, LINK_PREVIEW, TestApp, connect, spawn_app,
    superuser_url, track_ok, uuid_of,
};
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use futures::StreamExt;
use serde_json::{Value, json};
use tokio_postgres::Client;
use uuid::Uuid;

const PEOPLE_ACTIONS: [&str; 9] = [
    "view",
    "scan_qr",
    "call",
    "email",
    "whatsapp",
    "download_vcard",
    "link_click",
    "share",
    "lead",
];

const CSV_HEADER: &str = "occurred_at,event_id,employee_id,action,link,device,region";

/// The ingestion statement itself: events (people only) and every rollup, consistently, in the
/// retention class of the company's current plan.
use callingcard::analytics::ingest::INGEST;

// ---------------------------------------------------------------------------------------------
// Fixture and seeding
// ---------------------------------------------------------------------------------------------

struct Fx {
    app: TestApp,
    /// The superuser, holding the maintenance lock for the life of the test.
    db: Client,
}

async fn setup() -> Fx {
    let app = spawn_app().await;
    let db = connect(&superuser_url(&app.dbname)).await;
    // Waits for the maintenance the service runs at start, then keeps it from running again.
    db.batch_execute(HOLD_MAINTENANCE).await.unwrap();
    Fx { app, db }
}

#[derive(Clone, Debug)]
struct Ev {
    id: Uuid,
    at: DateTime<Utc>,
    employee: Uuid,
    action: &'static str,
    link: Option<String>,
    device: Option<&'static str>,
    region: Option<String>,
    visitor: Option<String>,
}

fn ev(at: DateTime<Utc>, employee: Uuid, action: &'static str) -> Ev {
    Ev {
        id: Uuid::new_v4(),
        at,
        employee,
        action,
        link: None,
        device: None,
        region: None,
        visitor: None,
    }
}

impl Ev {
    fn link(mut self, link: &str) -> Self {
        self.link = Some(link.to_owned());
        self
    }

    fn device(mut self, device: &'static str) -> Self {
        self.device = Some(device);
        self
    }

    fn region(mut self, region: &str) -> Self {
        self.region = Some(region.to_owned());
        self
    }

    fn visitor(mut self, n: u32) -> Self {
        self.visitor = Some(visitor_hash(n));
        self
    }
}

fn visitor_hash(n: u32) -> String {
    format!("{:032x}", 0xabcd_0000_0000_0000_0000_u128 + u128::from(n))
}

/// `n` copies of an event (fresh ids).
fn times(n: usize, e: Ev) -> Vec<Ev> {
    (0..n)
        .map(|_| Ev {
            id: Uuid::new_v4(),
            ..e.clone()
        })
        .collect()
}

/// Stores `events` of `company` as ingestion does.
async fn seed(db: &Client, company: Uuid, events: &[Ev]) {
    let ids: Vec<Uuid> = events.iter().map(|e| e.id).collect();
    let at: Vec<DateTime<Utc>> = events.iter().map(|e| e.at).collect();
    let employees: Vec<Uuid> = events.iter().map(|e| e.employee).collect();
    let actions: Vec<&str> = events.iter().map(|e| e.action).collect();
    let links: Vec<Option<&str>> = events.iter().map(|e| e.link.as_deref()).collect();
    let devices: Vec<Option<&str>> = events.iter().map(|e| e.device).collect();
    let regions: Vec<Option<&str>> = events.iter().map(|e| e.region.as_deref()).collect();
    let visitors: Vec<Option<&str>> = events.iter().map(|e| e.visitor.as_deref()).collect();
    let n: i64 = db
        .query_one(
            INGEST.as_str(),
            &[
                &company, &ids, &at, &employees, &actions, &links, &devices, &regions, &visitors,
            ],
        )
        .await
        .expect("seeding events")
        .get(0);
    assert_eq!(n as usize, events.len());
}

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("{s}: {e}"))
        .with_timezone(&Utc)
}

/// A timestamp for a query string (`Z`, never a `+` that would read as a space).
fn q(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn floor_hour(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(at.timestamp().div_euclid(3600) * 3600, 0).unwrap()
}

fn mins(n: i64) -> TimeDelta {
    TimeDelta::minutes(n)
}

fn hours(n: i64) -> TimeDelta {
    TimeDelta::hours(n)
}

fn days(n: i64) -> TimeDelta {
    TimeDelta::days(n)
}

fn micros(n: i64) -> TimeDelta {
    TimeDelta::microseconds(n)
}

// ---------------------------------------------------------------------------------------------
// HTTP helpers
// ---------------------------------------------------------------------------------------------

struct Raw {
    status: u16,
    content_type: Option<String>,
    body: Vec<u8>,
}

async fn raw(app: &TestApp, path: &str, token: Option<&str>) -> Raw {
    let mut req = app.client.get(format!("{}{path}", app.address));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let resp = req.send().await.expect("sending the request");
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned());
    let body = resp.bytes().await.expect("reading the body").to_vec();
    Raw {
        status,
        content_type,
        body,
    }
}

/// GET, expecting 200 and JSON.
async fn ok(app: &TestApp, path: &str, token: &str) -> Value {
    let resp = app.get(path, Some(token)).await;
    assert_eq!(resp.status.as_u16(), 200, "{path}: {}", resp.body);
    resp.body
}

fn with_query(path: &str, query: &str) -> String {
    if path.contains('?') {
        format!("{path}&{query}")
    } else {
        format!("{path}?{query}")
    }
}

/// Every page of an event list, following `next_cursor`; the events and the page sizes.
async fn all_pages(
    app: &TestApp,
    path: &str,
    token: &str,
    limit: usize,
) -> (Vec<Value>, Vec<usize>) {
    let mut events = Vec::new();
    let mut sizes = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut page_path = with_query(path, &format!("limit={limit}"));
        if let Some(cursor) = &cursor {
            page_path = with_query(&page_path, &format!("cursor={cursor}"));
        }
        let body = ok(app, &page_path, token).await;
        let page = body["events"].as_array().unwrap();
        sizes.push(page.len());
        events.extend(page.iter().cloned());
        match &body["next_cursor"] {
            Value::Null => break,
            Value::String(next) => {
                assert_eq!(page.len(), limit, "a page before the last is full: {body}");
                cursor = Some(next.clone());
            }
            other => panic!("next_cursor is {other}"),
        }
        assert!(sizes.len() < 1000, "pagination does not end");
    }
    (events, sizes)
}

fn ids(events: &[Value]) -> Vec<Uuid> {
    events
        .iter()
        .map(|e| e["id"].as_str().unwrap().parse().unwrap())
        .collect()
}

/// The ids of `events` newest first, ties by id (descending), as the lists order them.
fn newest_first(events: &[&Ev]) -> Vec<Uuid> {
    let mut sorted: Vec<(DateTime<Utc>, Uuid)> = events.iter().map(|e| (e.at, e.id)).collect();
    sorted.sort();
    sorted.reverse();
    sorted.into_iter().map(|(_, id)| id).collect()
}

/// A full counts object: every action present, zero unless given.
fn counts(given: &[(&str, i64)], with_preview: bool) -> Value {
    let mut object = serde_json::Map::new();
    let keys = PEOPLE_ACTIONS
        .iter()
        .chain(with_preview.then_some(&"preview"));
    for key in keys {
        object.insert((*key).to_owned(), json!(0));
    }
    for (key, n) in given {
        assert!(object.contains_key(*key), "unknown action {key}");
        object.insert((*key).to_owned(), json!(n));
    }
    Value::Object(object)
}

fn labels(series: &Value) -> Vec<String> {
    series["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["start"].as_str().unwrap().to_owned())
        .collect()
}

/// One action's count in every bucket.
fn column(series: &Value, action: &str) -> Vec<i64> {
    series["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            b["counts"][action]
                .as_i64()
                .unwrap_or_else(|| panic!("{action} missing in {b}"))
        })
        .collect()
}

fn uniques(series: &Value) -> Vec<i64> {
    series["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["unique_visitors"].as_i64().unwrap())
        .collect()
}

/// RFC 4180 as the export writes it: `\n` line ends (a bare `\r` outside quotes is an error),
/// quoted fields with doubled quotes; every line ends with `\n`.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut was_quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    field.push('"');
                    chars.next();
                } else {
                    quoted = false;
                }
            } else {
                field.push(c);
            }
            continue;
        }
        match c {
            '"' => {
                assert!(
                    field.is_empty() && !was_quoted,
                    "a quote inside an unquoted field: {field:?}"
                );
                quoted = true;
                was_quoted = true;
            }
            ',' => {
                row.push(std::mem::take(&mut field));
                was_quoted = false;
            }
            '\n' => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
                was_quoted = false;
            }
            '\r' => panic!("a carriage return outside quotes (line ends must be \\n)"),
            c => {
                assert!(!was_quoted, "text after a closing quote");
                field.push(c);
            }
        }
    }
    assert!(!quoted, "an unterminated quoted field");
    assert!(
        field.is_empty() && row.is_empty(),
        "the last line has no line break"
    );
    rows
}

// ---------------------------------------------------------------------------------------------
// 1. Access
// ---------------------------------------------------------------------------------------------

fn company_paths(company: Uuid) -> Vec<String> {
    vec![
        format!("/api/analytics/company/{company}"),
        format!("/api/analytics/company/{company}/timeseries"),
        format!("/api/analytics/company/{company}/breakdown?by=device"),
        format!("/api/analytics/company/{company}/leaderboard"),
        format!("/api/analytics/company/{company}/export.csv"),
    ]
}

fn employee_paths(employee: Uuid) -> Vec<String> {
    vec![
        format!("/api/analytics/employee/{employee}"),
        format!("/api/analytics/employee/{employee}/timeseries"),
    ]
}

#[tokio::test]
async fn every_dashboard_is_walled_by_tenant_and_role() {
    let fx = setup().await;
    let app = &fx.app;
    let a = app.signup("Access Alpha").await;
    let x = uuid_of(&app.add_employee(&a, "Xena Example").await);
    let y = uuid_of(&app.add_employee(&a, "Yuri Example").await);
    let b = app.signup("Access Beta").await;
    let bx = uuid_of(&app.add_employee(&b, "Bea Other").await);
    let root = app.superadmin().await;
    let as_x = app.add_user(&a, "employee", Some(x)).await;
    let as_y = app.add_user(&a, "employee", Some(y)).await;
    let unlinked = app.add_user(&a, "employee", None).await;

    let h = floor_hour(Utc::now()) - hours(24);
    let x_events = vec![
        ev(h + mins(1), x, "view").visitor(1),
        ev(h + mins(2), x, "view").visitor(1),
        ev(h + mins(3), x, "call").visitor(1),
    ];
    let mut a_events = x_events.clone();
    a_events.push(ev(h + mins(4), x, "preview"));
    a_events.extend(times(3, ev(h + mins(5), y, "view").visitor(2)));
    a_events.push(ev(h + mins(6), y, "email").visitor(2));
    a_events.push(ev(h + mins(7), y, "download_vcard").visitor(2));
    seed(&fx.db, a.company_id, &a_events).await;
    seed(&fx.db, b.company_id, &times(4, ev(h + mins(5), bx, "view"))).await;

    let not_found_company = raw(
        app,
        &format!("/api/analytics/company/{}", Uuid::new_v4()),
        Some(&b.token),
    )
    .await;
    assert_eq!(not_found_company.status, 404);

    for (own, random) in company_paths(a.company_id)
        .into_iter()
        .zip(company_paths(Uuid::new_v4()))
    {
        assert_eq!(raw(app, &own, Some(&a.token)).await.status, 200, "{own}");
        assert_eq!(raw(app, &own, Some(&root.token)).await.status, 200, "{own}");
        // Another company's id reads exactly like an id that does not exist.
        let other = raw(app, &own, Some(&b.token)).await;
        let missing = raw(app, &random, Some(&b.token)).await;
        assert_eq!(other.status, 404, "{own}");
        assert_eq!(
            other.body,
            missing.body,
            "{own}: {}",
            String::from_utf8_lossy(&other.body)
        );
        assert_eq!(other.content_type, missing.content_type, "{own}");
        // ... also for a superadmin asking for an id that does not exist.
        let missing_for_root = raw(app, &random, Some(&root.token)).await;
        assert_eq!(missing_for_root.status, 404, "{random}");
        assert_eq!(missing_for_root.body, missing.body, "{random}");
        for employee in [&as_x, &as_y, &unlinked] {
            app.get(&own, Some(&employee.token))
                .await
                .assert_error(403, "forbidden");
        }
        app.get(&own, None).await.assert_error(401, "unauthorized");
        app.get(&own, Some("not-a-token"))
            .await
            .assert_error(401, "unauthorized");
    }
    assert_eq!(
        String::from_utf8(not_found_company.body).unwrap(),
        String::from_utf8(
            raw(
                app,
                &format!("/api/analytics/company/{}", a.company_id),
                Some(&b.token)
            )
            .await
            .body
        )
        .unwrap()
    );

    for (own, random) in employee_paths(x)
        .into_iter()
        .zip(employee_paths(Uuid::new_v4()))
    {
        for caller in [&a, &root, &as_x] {
            assert_eq!(
                raw(app, &own, Some(&caller.token)).await.status,
                200,
                "{own} for {}",
                caller.email
            );
        }
        for caller in [&as_y, &unlinked] {
            app.get(&own, Some(&caller.token))
                .await
                .assert_error(403, "forbidden");
        }
        let other = raw(app, &own, Some(&b.token)).await;
        let missing = raw(app, &random, Some(&b.token)).await;
        assert_eq!(other.status, 404, "{own}");
        assert_eq!(other.body, missing.body, "{own}");
        assert_eq!(
            raw(app, &random, Some(&root.token)).await.body,
            missing.body
        );
        // An employee login of one company asking for another company's employee.
        let foreign = employee_paths(bx)
            .into_iter()
            .find(|p| p.ends_with("timeseries") == own.ends_with("timeseries"))
            .unwrap();
        let foreign = raw(app, &foreign, Some(&as_x.token)).await;
        assert_eq!(foreign.status, 404);
        assert_eq!(
            foreign.body,
            raw(app, &random, Some(&as_x.token)).await.body
        );
        app.get(&own, None).await.assert_error(401, "unauthorized");
    }
    // Y's login gets Y's dashboards.
    for path in employee_paths(y) {
        assert_eq!(raw(app, &path, Some(&as_y.token)).await.status, 200);
    }

    // An employee sees their own card only.
    let mine = ok(
        app,
        &format!("/api/analytics/employee/{x}?limit=100"),
        &as_x.token,
    )
    .await;
    let events = mine["events"].as_array().unwrap();
    assert!(
        events.iter().all(|e| e["employee_id"] == x.to_string()),
        "{mine}"
    );
    assert_eq!(
        ids(events),
        newest_first(&x_events.iter().collect::<Vec<_>>())
    );
    assert_eq!(
        mine["summary"],
        counts(&[("view", 2), ("call", 1), ("preview", 1)], true)
    );
    assert!(mine["next_cursor"].is_null());
    let series = ok(
        app,
        &format!("/api/analytics/employee/{x}/timeseries"),
        &as_x.token,
    )
    .await;
    assert_eq!(
        series["totals"],
        counts(&[("view", 2), ("call", 1), ("preview", 1)], true)
    );
    assert_eq!(series["unique_visitors"], 1);
    let theirs = ok(app, &format!("/api/analytics/employee/{y}"), &as_y.token).await;
    assert_eq!(theirs["events"].as_array().unwrap().len(), 5);
    assert_eq!(
        theirs["summary"],
        counts(&[("view", 3), ("email", 1), ("download_vcard", 1)], true)
    );
    // The company's admin sees both cards, and nothing of the other company.
    let company = ok(
        app,
        &format!("/api/analytics/company/{}?limit=100", a.company_id),
        &a.token,
    )
    .await;
    assert_eq!(company["events"].as_array().unwrap().len(), 8);
    assert_eq!(
        company["summary"],
        counts(
            &[
                ("view", 5),
                ("call", 1),
                ("email", 1),
                ("download_vcard", 1),
                ("preview", 1)
            ],
            true
        )
    );
}

// ---------------------------------------------------------------------------------------------
// 2. Event lists
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn event_lists_page_newest_first_without_gaps_or_duplicates() {
    let fx = setup().await;
    let app = &fx.app;
    let a = app.signup("Paging Alpha").await;
    let x = uuid_of(&app.add_employee(&a, "Xavier Pages").await);
    let y = uuid_of(&app.add_employee(&a, "Yvonne Pages").await);
    let b = app.signup("Paging Beta").await;
    let bx = uuid_of(&app.add_employee(&b, "Bert Noise").await);

    let h = floor_hour(Utc::now()) - hours(50);
    let from = h + mins(21);
    let to = h + mins(70);
    let mut people = Vec::new();
    for i in 0..23i64 {
        // Three events share one instant (the `to` below): ties go by id.
        let at = if (10..13).contains(&i) {
            to
        } else {
            h + mins(7 * i)
        };
        let employee = if i % 3 == 0 { y } else { x };
        let action = PEOPLE_ACTIONS[i as usize % PEOPLE_ACTIONS.len()];
        let mut e = ev(at, employee, action).visitor(i as u32);
        if action == "link_click" {
            e = e.link("website");
        }
        people.push(e);
    }
    // Right at the bounds of [from, to).
    people.push(ev(from, x, "view").device("mobile"));
    people.push(ev(from - micros(1), x, "view"));
    people.push(ev(to - micros(1), y, "call"));
    // Every field, and none.
    let full = ev(h + mins(3), x, "link_click")
        .link("linkedin")
        .device("tablet")
        .region("DE")
        .visitor(4242);
    let bare = ev(h + mins(4), y, "share");
    people.push(full.clone());
    people.push(bare.clone());
    let mut all = people.clone();
    all.push(ev(h + mins(15), x, "preview").visitor(9));
    all.push(ev(to, y, "preview"));
    seed(&fx.db, a.company_id, &all).await;
    seed(
        &fx.db,
        b.company_id,
        &[ev(h + mins(8), bx, "view"), ev(to, bx, "call")],
    )
    .await;

    let company = format!("/api/analytics/company/{}", a.company_id);
    let expected = newest_first(&people.iter().collect::<Vec<_>>());
    assert_eq!(expected.len(), 28);

    // Default page size (50): everything at once.
    let body = ok(app, &company, &a.token).await;
    assert_eq!(ids(body["events"].as_array().unwrap()), expected);
    assert!(body["next_cursor"].is_null());

    for limit in [1, 5, 27, 28, 100] {
        let (events, sizes) = all_pages(app, &company, &a.token, limit).await;
        let got = ids(&events);
        assert_eq!(got, expected, "limit {limit}");
        assert_eq!(
            got.iter().collect::<BTreeSet<_>>().len(),
            got.len(),
            "limit {limit}"
        );
        let pages = expected.len().div_ceil(limit);
        assert_eq!(sizes.len(), pages, "limit {limit}: {sizes:?}");
        // Times never increase down the list.
        let times: Vec<DateTime<Utc>> = events
            .iter()
            .map(|e| t(e["occurred_at"].as_str().unwrap()))
            .collect();
        assert!(times.windows(2).all(|w| w[0] >= w[1]));
    }

    // One employee's list.
    let employee = format!("/api/analytics/employee/{y}");
    let (events, _) = all_pages(app, &employee, &a.token, 4).await;
    assert_eq!(
        ids(&events),
        newest_first(
            &people
                .iter()
                .filter(|e| e.employee == y)
                .collect::<Vec<_>>()
        )
    );

    // [from, to), paged, for the company and for an employee.
    let window = format!("from={}&to={}", q(from), q(to));
    let in_window = |e: &&Ev, who: Option<Uuid>| {
        e.at >= from && e.at < to && who.is_none_or(|w| e.employee == w)
    };
    let (events, _) = all_pages(app, &with_query(&company, &window), &a.token, 3).await;
    let expected_window = newest_first(
        &people
            .iter()
            .filter(|e| in_window(e, None))
            .collect::<Vec<_>>(),
    );
    assert_eq!(expected_window.len(), 9);
    assert_eq!(ids(&events), expected_window);
    let (events, _) = all_pages(
        app,
        &with_query(&format!("/api/analytics/employee/{x}"), &window),
        &a.token,
        2,
    )
    .await;
    assert_eq!(
        ids(&events),
        newest_first(
            &people
                .iter()
                .filter(|e| in_window(e, Some(x)))
                .collect::<Vec<_>>()
        )
    );

    // Fields, exactly; the visitor hash is not exposed.
    let body = ok(app, &with_query(&company, "limit=100"), &a.token).await;
    let events = body["events"].as_array().unwrap();
    let find = |id: Uuid| {
        events
            .iter()
            .find(|e| e["id"] == id.to_string())
            .unwrap_or_else(|| panic!("{id} not listed"))
            .clone()
    };
    let mut got = find(full.id);
    let at = got["occurred_at"].take();
    assert_eq!(t(at.as_str().unwrap()), full.at);
    assert_eq!(
        got,
        json!({"id": full.id, "occurred_at": null, "employee_id": x, "action": "link_click",
               "link": "linkedin", "device": "tablet", "region": "DE"})
    );
    let mut got = find(bare.id);
    let at = got["occurred_at"].take();
    assert_eq!(t(at.as_str().unwrap()), bare.at);
    assert_eq!(
        got,
        json!({"id": bare.id, "occurred_at": null, "employee_id": y, "action": "share",
               "link": null, "device": null, "region": null})
    );
    let text = body.to_string();
    for e in &all {
        if let Some(visitor) = &e.visitor {
            assert!(!text.contains(visitor.as_str()), "visitor hash exposed");
        }
    }
    assert!(!text.contains("visitor"));
    assert!(
        events.iter().all(|e| e["action"] != "preview"),
        "previews are not events"
    );

    // Bad input.
    let valid_cursor = {
        let body = ok(app, &with_query(&company, "limit=1"), &a.token).await;
        body["next_cursor"].as_str().unwrap().to_owned()
    };
    for path in [&company, &employee] {
        for cursor in [
            "garbage",
            "!!!!",
            &valid_cursor[..valid_cursor.len() - 3],
            &format!("{valid_cursor}AAAA"),
        ] {
            app.get(
                &with_query(path, &format!("cursor={cursor}")),
                Some(&a.token),
            )
            .await
            .assert_error(422, "invalid_cursor");
        }
        for limit in ["0", "101", "-1"] {
            app.get(&with_query(path, &format!("limit={limit}")), Some(&a.token))
                .await
                .assert_error(422, "invalid_parameter");
        }
        let body = ok(app, &with_query(path, "limit=100"), &a.token).await;
        assert!(body["next_cursor"].is_null());
        app.get(
            &with_query(path, &format!("from={}&to={}", q(to), q(from))),
            Some(&a.token),
        )
        .await
        .assert_error(422, "invalid_range");
        app.get(
            &with_query(path, &format!("from={}&to={}", q(to), q(to))),
            Some(&a.token),
        )
        .await
        .assert_error(422, "invalid_range");
    }
}

// ---------------------------------------------------------------------------------------------
// 3. Summary
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn summaries_count_every_action_over_whole_hours() {
    let fx = setup().await;
    let app = &fx.app;
    let a = app.signup("Summary Alpha").await;
    let x = uuid_of(&app.add_employee(&a, "Xia Sums").await);
    let y = uuid_of(&app.add_employee(&a, "Yan Sums").await);
    let b = app.signup("Summary Beta").await;
    let bx = uuid_of(&app.add_employee(&b, "Ben Noise").await);

    let h = floor_hour(Utc::now()) - hours(48);
    let events = [
        ev(h + mins(10), x, "view"),
        ev(h + mins(50), x, "view"),
        ev(h + mins(55), x, "preview"),
        ev(h + mins(80), y, "call"),
        ev(h + mins(100), x, "scan_qr"),
        ev(h + mins(160), x, "download_vcard"),
        ev(h + mins(165), y, "preview"),
        ev(h + mins(185), x, "share"),
    ];
    seed(&fx.db, a.company_id, &events).await;
    seed(
        &fx.db,
        b.company_id,
        &times(7, ev(h + mins(30), bx, "view")),
    )
    .await;

    let company = format!("/api/analytics/company/{}", a.company_id);
    let token = a.token.as_str();
    let get = |path: String| async move { ok(app, &path, token).await };

    // from 00:30 rounds down to 00:00 (the 00:10 view counts), to 02:10 up to 03:00 (the 02:40
    // download counts, the 03:05 share does not). The list itself is exact.
    let body = get(format!(
        "{company}?from={}&to={}",
        q(h + mins(30)),
        q(h + mins(130))
    ))
    .await;
    assert_eq!(
        body["summary"],
        counts(
            &[
                ("view", 2),
                ("scan_qr", 1),
                ("call", 1),
                ("download_vcard", 1),
                ("preview", 2)
            ],
            true
        )
    );
    assert_eq!(
        ids(body["events"].as_array().unwrap()),
        vec![events[4].id, events[3].id, events[1].id]
    );

    // to on the hour: that hour does not count.
    let body = get(format!(
        "{company}?from={}&to={}",
        q(h + mins(30)),
        q(h + mins(120))
    ))
    .await;
    assert_eq!(
        body["summary"],
        counts(
            &[("view", 2), ("scan_qr", 1), ("call", 1), ("preview", 1)],
            true
        )
    );

    // Exactly one hour.
    let body = get(format!(
        "{company}?from={}&to={}",
        q(h + hours(1)),
        q(h + hours(2))
    ))
    .await;
    assert_eq!(
        body["summary"],
        counts(&[("scan_qr", 1), ("call", 1)], true)
    );

    // A range without activity: every key, all zero.
    let body = get(format!(
        "{company}?from={}&to={}",
        q(h - hours(5)),
        q(h - hours(1))
    ))
    .await;
    assert_eq!(body["summary"], counts(&[], true));
    assert_eq!(body["events"], json!([]));

    // Defaults: the whole retention up to now.
    let body = get(company.clone()).await;
    assert_eq!(
        body["summary"],
        counts(
            &[
                ("view", 2),
                ("scan_qr", 1),
                ("call", 1),
                ("download_vcard", 1),
                ("share", 1),
                ("preview", 2)
            ],
            true
        )
    );
    assert_eq!(body["events"].as_array().unwrap().len(), 6);

    // One employee.
    let body = get(format!(
        "/api/analytics/employee/{x}?from={}&to={}",
        q(h + mins(30)),
        q(h + mins(130))
    ))
    .await;
    assert_eq!(
        body["summary"],
        counts(
            &[
                ("view", 2),
                ("scan_qr", 1),
                ("download_vcard", 1),
                ("preview", 1)
            ],
            true
        )
    );
    let body = get(format!("/api/analytics/employee/{y}")).await;
    assert_eq!(
        body["summary"],
        counts(&[("call", 1), ("preview", 1)], true)
    );
}

// ---------------------------------------------------------------------------------------------
// 4. Time series in local time
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn time_series_follow_local_days_across_dst() {
    let fx = setup().await;
    let app = &fx.app;
    let a = app.signup("Series Alpha").await;
    let x = uuid_of(&app.add_employee(&a, "Xander Zones").await);
    let y = uuid_of(&app.add_employee(&a, "Yara Zones").await);

    // New York: EST (UTC-5) until 2026-03-08T07:00Z, then EDT (UTC-4) until 2026-11-01T06:00Z.
    seed(
        &fx.db,
        a.company_id,
        &[
            ev(t("2026-03-07T04:59:00Z"), x, "view"), // 23:59 on the 6th: outside
            ev(t("2026-03-07T05:00:00Z"), x, "call"), // 00:00 on the 7th
            ev(t("2026-03-08T04:30:00Z"), x, "view"), // 23:30 EST on the 7th
            ev(t("2026-03-08T05:00:00Z"), x, "view"), // 00:00 EST on the 8th
            ev(t("2026-03-08T05:30:00Z"), y, "scan_qr"), // 00:30 EST on the 8th
            ev(t("2026-03-08T06:59:00Z"), x, "view"), // 01:59 EST on the 8th
            ev(t("2026-03-08T07:00:00Z"), x, "view"), // 03:00 EDT on the 8th
            ev(t("2026-03-09T03:59:00Z"), x, "email"), // 23:59 EDT on the 8th
            ev(t("2026-03-09T04:00:00Z"), x, "view"), // 00:00 EDT on the 9th
            ev(t("2026-03-10T03:30:00Z"), x, "view"), // 23:30 EDT on the 9th
            ev(t("2026-03-10T04:10:00Z"), x, "share"), // 00:10 EDT on the 10th
            ev(t("2026-03-12T04:00:00Z"), x, "view"), // 00:00 on the 12th: outside
            ev(t("2026-03-20T20:00:00Z"), x, "whatsapp"), // 05:00 on the 21st in Tokyo
            ev(t("2026-11-01T03:59:00Z"), x, "view"), // 23:59 EDT on Oct 31
            ev(t("2026-11-01T04:00:00Z"), x, "view"), // 00:00 EDT on Nov 1
            ev(t("2026-11-01T05:30:00Z"), x, "view"), // 01:30 EDT
            ev(t("2026-11-01T06:30:00Z"), x, "view"), // 01:30 EST
            ev(t("2026-11-02T04:30:00Z"), x, "call"), // 23:30 EST on Nov 1 (its 25th hour)
            ev(t("2026-11-02T05:00:00Z"), x, "view"), // 00:00 EST on Nov 2
            ev(t("2026-11-03T04:59:00Z"), x, "download_vcard"), // 23:59 EST on Nov 2
        ],
    )
    .await;
    let company = format!("/api/analytics/company/{}/timeseries", a.company_id);
    let employee = format!("/api/analytics/employee/{x}/timeseries");
    let ny = "tz=America/New_York";

    // Spring forward: the 8th has 23 hours.
    let range = "from=2026-03-07T05:00:00Z&to=2026-03-12T04:00:00Z";
    let body = ok(
        app,
        &format!("{company}?{ny}&interval=day&{range}"),
        &a.token,
    )
    .await;
    assert_eq!(body["tz"], "America/New_York");
    assert_eq!(body["interval"], "day");
    assert_eq!(
        labels(&body),
        [
            "2026-03-07",
            "2026-03-08",
            "2026-03-09",
            "2026-03-10",
            "2026-03-11"
        ]
    );
    assert_eq!(column(&body, "view"), [1, 3, 2, 0, 0]);
    assert_eq!(column(&body, "call"), [1, 0, 0, 0, 0]);
    assert_eq!(column(&body, "email"), [0, 1, 0, 0, 0]);
    assert_eq!(column(&body, "scan_qr"), [0, 1, 0, 0, 0]);
    assert_eq!(column(&body, "share"), [0, 0, 0, 1, 0]);
    // An empty day is there, with every count at zero.
    assert_eq!(
        body["buckets"][4],
        json!({"start": "2026-03-11", "counts": counts(&[], false), "unique_visitors": 0})
    );
    assert_eq!(
        body["totals"],
        counts(
            &[
                ("view", 6),
                ("scan_qr", 1),
                ("call", 1),
                ("email", 1),
                ("share", 1)
            ],
            true
        )
    );
    // The employee's own series: the same days, without the colleague's scan.
    let body = ok(app, &format!("{employee}?{ny}&{range}"), &a.token).await;
    assert_eq!(labels(&body).len(), 5);
    assert_eq!(column(&body, "view"), [1, 3, 2, 0, 0]);
    assert_eq!(column(&body, "scan_qr"), [0, 0, 0, 0, 0]);
    // The same instants in UTC fall on other days.
    let body = ok(
        app,
        &format!("{company}?from=2026-03-07T00:00:00Z&to=2026-03-13T00:00:00Z"),
        &a.token,
    )
    .await;
    assert_eq!(body["tz"], "UTC");
    assert_eq!(
        labels(&body),
        [
            "2026-03-07",
            "2026-03-08",
            "2026-03-09",
            "2026-03-10",
            "2026-03-11",
            "2026-03-12"
        ]
    );
    assert_eq!(column(&body, "view"), [1, 4, 1, 1, 0, 1]);

    // Fall back: Nov 1 has 25 hours.
    let range = "from=2026-10-31T04:00:00Z&to=2026-11-03T05:00:00Z";
    let body = ok(app, &format!("{company}?{ny}&{range}"), &a.token).await;
    assert_eq!(labels(&body), ["2026-10-31", "2026-11-01", "2026-11-02"]);
    assert_eq!(column(&body, "view"), [1, 3, 1]);
    assert_eq!(column(&body, "call"), [0, 1, 0]);
    assert_eq!(column(&body, "download_vcard"), [0, 0, 1]);

    // By the hour across the spring gap: no 02:00, offsets change.
    let body = ok(
        app,
        &format!("{company}?{ny}&interval=hour&from=2026-03-08T05:00:00Z&to=2026-03-08T09:00:00Z"),
        &a.token,
    )
    .await;
    assert_eq!(body["interval"], "hour");
    assert_eq!(
        labels(&body),
        [
            "2026-03-08T00:00:00-05:00",
            "2026-03-08T01:00:00-05:00",
            "2026-03-08T03:00:00-04:00",
            "2026-03-08T04:00:00-04:00"
        ]
    );
    assert_eq!(column(&body, "view"), [1, 1, 1, 0]);
    assert_eq!(column(&body, "scan_qr"), [1, 0, 0, 0]);
    let body = ok(
        app,
        &format!("{company}?{ny}&interval=hour&from=2026-03-08T05:00:00Z&to=2026-03-09T04:00:00Z"),
        &a.token,
    )
    .await;
    let day = labels(&body);
    assert_eq!(day.len(), 23);
    assert!(
        day.iter().all(|l| !l.starts_with("2026-03-08T02:")),
        "{day:?}"
    );
    assert_eq!(day[22], "2026-03-08T23:00:00-04:00");
    assert_eq!(column(&body, "view").iter().sum::<i64>(), 3);
    assert_eq!(column(&body, "email")[22], 1);
    // ... and across the autumn repeat: 01:00 twice, with two offsets.
    let body = ok(
        app,
        &format!("{company}?{ny}&interval=hour&from=2026-11-01T04:00:00Z&to=2026-11-01T08:00:00Z"),
        &a.token,
    )
    .await;
    assert_eq!(
        labels(&body),
        [
            "2026-11-01T00:00:00-04:00",
            "2026-11-01T01:00:00-04:00",
            "2026-11-01T01:00:00-05:00",
            "2026-11-01T02:00:00-05:00"
        ]
    );
    assert_eq!(column(&body, "view"), [1, 1, 1, 0]);
    let body = ok(
        app,
        &format!("{company}?{ny}&interval=hour&from=2026-11-01T04:00:00Z&to=2026-11-02T05:00:00Z"),
        &a.token,
    )
    .await;
    assert_eq!(labels(&body).len(), 25);
    assert_eq!(column(&body, "call")[24], 1);

    // Tokyo vs UTC for 20:00Z.
    let range = "from=2026-03-20T00:00:00Z&to=2026-03-22T00:00:00Z";
    let body = ok(app, &format!("{company}?tz=UTC&{range}"), &a.token).await;
    assert_eq!(labels(&body), ["2026-03-20", "2026-03-21"]);
    assert_eq!(column(&body, "whatsapp"), [1, 0]);
    let body = ok(app, &format!("{company}?tz=Asia/Tokyo&{range}"), &a.token).await;
    assert_eq!(body["tz"], "Asia/Tokyo");
    assert_eq!(labels(&body), ["2026-03-20", "2026-03-21", "2026-03-22"]);
    assert_eq!(column(&body, "whatsapp"), [0, 1, 0]);

    // Bad zones, intervals and ranges, on both series.
    for path in [&company, &employee] {
        for tz in ["Mars/Olympus", "Not_A_Zone", "UTC+2"] {
            app.get(&format!("{path}?tz={tz}"), Some(&a.token))
                .await
                .assert_error(422, "invalid_time_zone");
        }
        app.get(&format!("{path}?interval=week"), Some(&a.token))
            .await
            .assert_error(422, "invalid_parameter");
        // 400 days of days, and 31 of hours, are fine; more is not.
        let body = ok(
            app,
            &format!("{path}?from=2025-01-01T00:00:00Z&to=2026-02-05T00:00:00Z"),
            &a.token,
        )
        .await;
        assert_eq!(labels(&body).len(), 400);
        app.get(
            &format!("{path}?from=2025-01-01T00:00:00Z&to=2026-02-06T00:00:00Z"),
            Some(&a.token),
        )
        .await
        .assert_error(422, "invalid_range");
        let body = ok(
            app,
            &format!("{path}?interval=hour&from=2026-03-01T00:00:00Z&to=2026-04-01T00:00:00Z"),
            &a.token,
        )
        .await;
        assert_eq!(labels(&body).len(), 31 * 24);
        app.get(
            &format!("{path}?interval=hour&from=2026-03-01T00:00:00Z&to=2026-04-02T00:00:00Z"),
            Some(&a.token),
        )
        .await
        .assert_error(422, "invalid_range");
        app.get(
            &format!("{path}?from=2026-03-02T00:00:00Z&to=2026-03-01T00:00:00Z"),
            Some(&a.token),
        )
        .await
        .assert_error(422, "invalid_range");
    }

    // Defaults: the last 30 UTC days, every one present, oldest first.
    let body = ok(app, &company, &a.token).await;
    let days_listed = labels(&body);
    assert_eq!(days_listed.len(), 30);
    assert_eq!(
        days_listed.last().unwrap(),
        &Utc::now().date_naive().format("%Y-%m-%d").to_string()
    );
    let mut sorted = days_listed.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, days_listed);
}

// ---------------------------------------------------------------------------------------------
// 5. Unique visitors
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn unique_visitors_count_once_a_day_where_first_seen() {
    let fx = setup().await;
    let app = &fx.app;
    let a = app.signup("Visitors Alpha").await;
    let x = uuid_of(&app.add_employee(&a, "Xiomara Visits").await);
    let y = uuid_of(&app.add_employee(&a, "Yosef Visits").await);
    seed(
        &fx.db,
        a.company_id,
        &[
            // One visitor, three views within 25 minutes (across an hour boundary)...
            ev(t("2026-03-15T10:45:00Z"), x, "view").visitor(1),
            ev(t("2026-03-15T10:55:00Z"), x, "view").visitor(1),
            ev(t("2026-03-15T11:10:00Z"), x, "view").visitor(1),
            // ... another one, on another card.
            ev(t("2026-03-15T11:20:00Z"), y, "view").visitor(2),
            // A preview fetch is nobody.
            ev(t("2026-03-15T11:30:00Z"), y, "preview").visitor(3),
            // The next day.
            ev(t("2026-03-16T09:00:00Z"), x, "view").visitor(4),
        ],
    )
    .await;
    let company = format!("/api/analytics/company/{}/timeseries", a.company_id);
    let range = "from=2026-03-15T00:00:00Z&to=2026-03-17T00:00:00Z";

    let body = ok(app, &format!("{company}?{range}"), &a.token).await;
    assert_eq!(labels(&body), ["2026-03-15", "2026-03-16"]);
    assert_eq!(column(&body, "view"), [4, 1]);
    assert_eq!(uniques(&body), [2, 1]);
    assert_eq!(body["unique_visitors"], 3);
    assert_eq!(body["totals"]["preview"], 1);

    let body = ok(
        app,
        &format!("{company}?interval=hour&from=2026-03-15T10:00:00Z&to=2026-03-15T12:00:00Z"),
        &a.token,
    )
    .await;
    // By the hour, a visitor counts where first seen that day: visitor 1 at 10:00, visitor 2
    // at 11:00 (visitor 1 coming back at 11:10 is not new).
    assert_eq!(uniques(&body), [1, 1]);
    assert_eq!(body["unique_visitors"], 2);

    let body = ok(
        app,
        &format!("/api/analytics/employee/{x}/timeseries?{range}"),
        &a.token,
    )
    .await;
    assert_eq!(column(&body, "view"), [3, 1]);
    assert_eq!(uniques(&body), [1, 1]);
    assert_eq!(body["unique_visitors"], 2);
    let body = ok(
        app,
        &format!("/api/analytics/employee/{y}/timeseries?{range}"),
        &a.token,
    )
    .await;
    assert_eq!(uniques(&body), [1, 0]);
    assert_eq!(body["unique_visitors"], 1);

    // Through the tracking endpoint: two browsers on one address are two visitors.
    let t_admin = app.signup("Visitors Tracked").await;
    let card = Card::of(&app.add_employee(&t_admin, "Tracy Tracked").await);
    let day_before = Utc::now().date_naive();
    for _ in 0..3 {
        let r = track_ok(app, &card, IPHONE, json!({"action": "view"})).await;
        assert_eq!(r["status"], "tracked");
    }
    assert_eq!(
        track_ok(app, &card, DESKTOP, json!({"action": "view"})).await["status"],
        "tracked"
    );
    let ignored = track_ok(app, &card, LINK_PREVIEW, json!({"action": "view"})).await;
    assert_eq!(ignored, json!({"status": "ignored", "event_id": null}));
    let body = ok(
        app,
        &format!("/api/analytics/company/{}/timeseries", t_admin.company_id),
        &t_admin.token,
    )
    .await;
    assert_eq!(body["totals"]["view"], 4);
    assert_eq!(body["totals"]["preview"], 1);
    if Utc::now().date_naive() == day_before {
        let today = body["buckets"].as_array().unwrap().last().unwrap();
        assert_eq!(today["counts"]["view"], 4);
        assert_eq!(today["unique_visitors"], 2);
        assert_eq!(body["unique_visitors"], 2);
    }
    // The stored (daily-rotating) visitor hashes never reach the dashboards.
    let hashes: Vec<String> = fx
        .db
        .query(
            "SELECT DISTINCT visitor FROM card_events WHERE company_id = $1",
            &[&t_admin.company_id],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(!hashes.is_empty());
    let list = app
        .get(
            &format!("/api/analytics/company/{}", t_admin.company_id),
            Some(&t_admin.token),
        )
        .await;
    assert_eq!(list.body["events"].as_array().unwrap().len(), 4);
    for hash in &hashes {
        assert!(!list.body.to_string().contains(hash.as_str()));
        assert!(!body.to_string().contains(hash.as_str()));
    }
}

// ---------------------------------------------------------------------------------------------
// 6. Conversion
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn conversion_is_saved_contacts_over_views() {
    let fx = setup().await;
    let app = &fx.app;
    let a = app.signup("Conversion Alpha").await;
    let x = uuid_of(&app.add_employee(&a, "Ximena Converts").await);
    let y = uuid_of(&app.add_employee(&a, "Yusuf Converts").await);
    let d10 = t("2026-04-10T12:00:00Z");
    let d12 = t("2026-04-12T12:00:00Z");
    let mut events = Vec::new();
    events.extend(times(2, ev(d10, x, "view")));
    events.push(ev(d10, x, "scan_qr"));
    events.push(ev(d10, x, "download_vcard"));
    events.push(ev(d10, x, "lead"));
    events.extend(times(3, ev(d10, x, "preview")));
    events.push(ev(d10, y, "view"));
    events.push(ev(d10, y, "download_vcard"));
    events.extend(times(2, ev(d10, y, "call")));
    events.extend(times(2, ev(d12, y, "download_vcard")));
    events.push(ev(d12, y, "lead"));
    seed(&fx.db, a.company_id, &events).await;

    let conversion = |views: i64, saved: i64, leads: i64, rates: (f64, f64, f64)| {
        json!({"views": views, "saved_contacts": saved, "rate": rates.0, "leads": leads,
               "lead_rate": rates.1, "leads_per_saved_contact": rates.2})
    };
    let company = format!("/api/analytics/company/{}/timeseries", a.company_id);
    let day10 = "from=2026-04-10T00:00:00Z&to=2026-04-11T00:00:00Z";
    let cases = [
        (
            format!("{company}?{day10}"),
            conversion(4, 2, 1, (0.5, 0.25, 0.5)),
        ),
        (
            format!("/api/analytics/employee/{x}/timeseries?{day10}"),
            conversion(3, 1, 1, (1.0 / 3.0, 1.0 / 3.0, 1.0)),
        ),
        (
            format!("/api/analytics/employee/{y}/timeseries?{day10}"),
            conversion(1, 1, 0, (1.0, 0.0, 0.0)),
        ),
        (
            format!("{company}?from=2026-04-10T00:00:00Z&to=2026-04-13T00:00:00Z"),
            conversion(4, 4, 2, (1.0, 0.5, 0.5)),
        ),
        // Saved contacts and a lead without views: the rates over views are 0.
        (
            format!("{company}?from=2026-04-12T00:00:00Z&to=2026-04-13T00:00:00Z"),
            conversion(0, 2, 1, (0.0, 0.0, 0.5)),
        ),
        (
            format!("{company}?from=2026-04-20T00:00:00Z&to=2026-04-21T00:00:00Z"),
            conversion(0, 0, 0, (0.0, 0.0, 0.0)),
        ),
    ];
    for (path, expected) in cases {
        let body = ok(app, &path, &a.token).await;
        assert_eq!(body["conversion"], expected, "{path}");
        for rate in ["rate", "lead_rate", "leads_per_saved_contact"] {
            assert!(body["conversion"][rate].is_f64(), "{path}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 7. Breakdowns
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn breakdowns_rank_devices_and_regions_without_previews() {
    let fx = setup().await;
    let app = &fx.app;
    let a = app.signup("Breakdown Alpha").await;
    let x = uuid_of(&app.add_employee(&a, "Xenia Devices").await);
    let b = app.signup("Breakdown Beta").await;
    let bx = uuid_of(&app.add_employee(&b, "Bruno Noise").await);

    let at = |h: i64| t("2026-05-01T00:15:00Z") + hours(h);
    let mut events = vec![
        ev(at(0), x, "view").device("mobile").region("DE"),
        ev(at(1), x, "view").device("mobile").region("DE"),
        ev(at(2), x, "view").device("mobile").region("US"),
        ev(at(3), x, "call").device("mobile").region("DE"),
        ev(at(4), x, "call").device("mobile"),
        ev(at(5), x, "view").device("desktop").region("DE"),
        ev(at(6), x, "scan_qr").device("desktop"),
        ev(at(7), x, "share").device("desktop").region("US"),
        ev(at(8), x, "email").region("DE"),
        ev(at(9), x, "view"),
        ev(at(23), x, "whatsapp").device("tablet").region("JP"),
        // Outside [from, to).
        ev(t("2026-04-30T23:59:00Z"), x, "view")
            .device("tablet")
            .region("JP"),
        ev(t("2026-05-02T00:00:00Z"), x, "view")
            .device("tablet")
            .region("JP"),
    ];
    // Previews would reorder both breakdowns if they counted.
    events.extend(times(
        6,
        ev(at(10), x, "preview").device("tablet").region("JP"),
    ));
    events.extend(times(4, ev(at(11), x, "preview")));
    seed(&fx.db, a.company_id, &events).await;
    seed(
        &fx.db,
        b.company_id,
        &times(9, ev(at(2), bx, "view").device("tablet").region("JP")),
    )
    .await;

    let path = format!("/api/analytics/company/{}/breakdown", a.company_id);
    for from in ["2026-05-01T00:00:00Z", "2026-05-01T00:30:00Z"] {
        let range = format!("from={from}&to=2026-05-02T00:00:00Z");
        let body = ok(app, &format!("{path}?by=device&{range}"), &a.token).await;
        assert_eq!(
            body,
            json!({"by": "device", "rows": [
                {"value": "mobile", "events": 5, "views": 3},
                {"value": "desktop", "events": 3, "views": 2},
                {"value": "unknown", "events": 2, "views": 1},
                {"value": "tablet", "events": 1, "views": 0},
            ]}),
            "{range}"
        );
        let body = ok(app, &format!("{path}?by=region&{range}"), &a.token).await;
        assert_eq!(
            body,
            json!({"by": "region", "rows": [
                {"value": "DE", "events": 5, "views": 3},
                {"value": "unknown", "events": 3, "views": 2},
                {"value": "US", "events": 2, "views": 1},
                {"value": "JP", "events": 1, "views": 0},
            ]}),
            "{range}"
        );
    }
    // Nothing in range: no rows.
    let body = ok(
        app,
        &format!("{path}?by=region&from=2026-05-10T00:00:00Z&to=2026-05-11T00:00:00Z"),
        &a.token,
    )
    .await;
    assert_eq!(body, json!({"by": "region", "rows": []}));
    app.get(&format!("{path}?by=colour"), Some(&a.token))
        .await
        .assert_error(422, "invalid_parameter");
    app.get(&path, Some(&a.token))
        .await
        .assert_error(422, "invalid_parameter");
    app.get(
        &format!("{path}?by=device&from=2026-05-02T00:00:00Z&to=2026-05-01T00:00:00Z"),
        Some(&a.token),
    )
    .await
    .assert_error(422, "invalid_range");
}

// ---------------------------------------------------------------------------------------------
// 8. Leaderboard
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn leaderboard_ranks_engagements_then_views() {
    let fx = setup().await;
    let app = &fx.app;
    let l = app.signup("Leaderboard Alpha").await;
    let root = app.superadmin().await;
    // Room for eight employees.
    app.set_plan(&root, l.company_id, "enterprise").await;
    let alice = uuid_of(&app.add_employee(&l, "Alice Able").await);
    let bob = uuid_of(&app.add_employee(&l, "Bob Builder").await);
    let carol = uuid_of(&app.add_employee(&l, "Carol Clicks").await);
    let dan = uuid_of(&app.add_employee(&l, "Dan Departed").await);
    let tie1 = uuid_of(&app.add_employee(&l, "Tia Tied").await);
    let tie2 = uuid_of(&app.add_employee(&l, "Tom Tied").await);
    let pat = uuid_of(&app.add_employee(&l, "Pat Previewed").await);
    let _idle = uuid_of(&app.add_employee(&l, "Ida Idle").await);
    let o = app.signup("Leaderboard Beta").await;
    let outsider = uuid_of(&app.add_employee(&o, "Oscar Outsider").await);

    let at = t("2026-06-01T10:20:00Z");
    let mut events = Vec::new();
    for action in ["call", "email", "whatsapp", "link_click", "share"] {
        let mut e = ev(at, alice, action);
        if action == "link_click" {
            e = e.link("website");
        }
        events.push(e);
    }
    events.push(ev(at, alice, "view"));
    events.extend(times(2, ev(at, bob, "download_vcard")));
    for action in ["call", "email", "share", "view", "view", "scan_qr"] {
        events.push(ev(at + hours(3), bob, action));
    }
    events.push(ev(at, dan, "download_vcard"));
    events.extend(times(2, ev(at, dan, "call")));
    events.extend(times(2, ev(at, carol, "email")));
    events.extend(times(10, ev(at, carol, "view")));
    // Outside the range: would put Carol first.
    events.extend(times(5, ev(t("2026-06-02T00:00:00Z"), carol, "call")));
    events.extend(times(5, ev(t("2026-05-31T23:59:59Z"), carol, "call")));
    for tie in [tie1, tie2] {
        events.push(ev(at, tie, "call"));
        events.push(ev(at, tie, "view"));
    }
    events.extend(times(50, ev(at, pat, "preview")));
    seed(&fx.db, l.company_id, &events).await;
    seed(&fx.db, o.company_id, &times(100, ev(at, outsider, "call"))).await;
    app.delete(&format!("/api/employees/{dan}"), Some(&l.token))
        .await
        .assert_status(204);

    let (first_tie, second_tie) = if tie1 < tie2 {
        (tie1, tie2)
    } else {
        (tie2, tie1)
    };
    let tie_name = |id: Uuid| if id == tie1 { "Tia Tied" } else { "Tom Tied" };
    let expected = json!([
        {"employee_id": bob, "full_name": "Bob Builder", "views": 3, "engagements": 5, "saved_contacts": 2, "leads": 0},
        {"employee_id": alice, "full_name": "Alice Able", "views": 1, "engagements": 5, "saved_contacts": 0, "leads": 0},
        {"employee_id": dan, "full_name": null, "views": 0, "engagements": 3, "saved_contacts": 1, "leads": 0},
        {"employee_id": carol, "full_name": "Carol Clicks", "views": 10, "engagements": 2, "saved_contacts": 0, "leads": 0},
        {"employee_id": first_tie, "full_name": tie_name(first_tie), "views": 1, "engagements": 1, "saved_contacts": 0, "leads": 0},
        {"employee_id": second_tie, "full_name": tie_name(second_tie), "views": 1, "engagements": 1, "saved_contacts": 0, "leads": 0},
    ]);
    let path = format!(
        "/api/analytics/company/{}/leaderboard?from=2026-06-01T00:00:00Z&to=2026-06-02T00:00:00Z",
        l.company_id
    );
    let body = ok(app, &path, &l.token).await;
    assert_eq!(body, json!({ "employees": expected }));
    for limit in [1, 2, 4, 6, 100] {
        let body = ok(app, &format!("{path}&limit={limit}"), &l.token).await;
        let want: Vec<Value> = expected
            .as_array()
            .unwrap()
            .iter()
            .take(limit)
            .cloned()
            .collect();
        assert_eq!(body["employees"], json!(want), "limit {limit}");
    }
    for limit in ["0", "101"] {
        app.get(&format!("{path}&limit={limit}"), Some(&l.token))
            .await
            .assert_error(422, "invalid_parameter");
    }
    // Default size: ten. Twelve cards (long deleted: no names) with 1..=12 shares on another day.
    let gone: Vec<Uuid> = (0..12).map(|_| Uuid::new_v4()).collect();
    let mut busy = Vec::new();
    for (i, id) in gone.iter().enumerate() {
        busy.extend(times(i + 1, ev(t("2026-07-01T08:00:00Z"), *id, "share")));
    }
    seed(&fx.db, l.company_id, &busy).await;
    let body = ok(
        app,
        &format!(
            "/api/analytics/company/{}/leaderboard?from=2026-07-01T00:00:00Z&to=2026-07-02T00:00:00Z",
            l.company_id
        ),
        &l.token,
    )
    .await;
    let want: Vec<Value> = (2..12)
        .rev()
        .map(|i| {
            json!({"employee_id": gone[i], "full_name": null, "views": 0,
                   "engagements": i + 1, "saved_contacts": 0, "leads": 0})
        })
        .collect();
    assert_eq!(body, json!({ "employees": want }));
    // The other company sees only its own.
    let body = ok(
        app,
        &format!(
            "/api/analytics/company/{}/leaderboard?from=2026-06-01T00:00:00Z&to=2026-06-02T00:00:00Z",
            o.company_id
        ),
        &o.token,
    )
    .await;
    assert_eq!(
        body,
        json!({"employees": [{"employee_id": outsider, "full_name": "Oscar Outsider",
                              "views": 0, "engagements": 100, "saved_contacts": 0, "leads": 0}]})
    );
}

/// The leaderboard and the breakdowns read whole UTC days from the daily rollups and the hours at
/// a range's edges from the hourly ones. Whatever the edges, they must count what a recount of
/// the seeded events over the same whole hours finds.
#[tokio::test]
async fn leaderboard_and_breakdowns_count_days_and_edge_hours_alike() {
    let fx = setup().await;
    let app = &fx.app;
    let c = app.signup("Tiers Co").await;
    let root = app.superadmin().await;
    app.set_plan(&root, c.company_id, "enterprise").await;
    let mut names = std::collections::BTreeMap::new();
    for name in ["Ada Days", "Ben Hours", "Cy Edges"] {
        names.insert(uuid_of(&app.add_employee(&c, name).await), name);
    }
    // A card whose employee is long gone: listed without a name.
    let gone = Uuid::new_v4();
    let cards: Vec<Uuid> = names.keys().copied().chain([gone]).collect();

    // Six days of events at pseudo-random minutes, every action, device and region.
    let start = t("2026-08-10T00:00:00Z");
    let actions = [PEOPLE_ACTIONS.as_slice(), &["preview"]].concat();
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = |n: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % n
    };
    let mut events = Vec::new();
    for _ in 0..900 {
        let at = start + mins(next(6 * 24 * 60) as i64);
        let mut e = ev(at, cards[next(4) as usize], actions[next(9) as usize]);
        if e.action == "link_click" {
            e = e.link("website");
        }
        if e.action != "preview" {
            if let Some(device) =
                [None, Some("mobile"), Some("tablet"), Some("desktop")][next(4) as usize]
            {
                e = e.device(device);
            }
            if let Some(region) = [None, Some("DE"), Some("FR"), Some("US")][next(4) as usize] {
                e = e.region(region);
            }
        }
        events.push(e);
    }
    seed(&fx.db, c.company_id, &events).await;

    let company = c.company_id;
    for (from, to) in [
        ("2026-08-10T00:00:00Z", "2026-08-16T00:00:00Z"),
        ("2026-08-10T05:30:00Z", "2026-08-14T17:10:00Z"),
        ("2026-08-11T23:00:00Z", "2026-08-12T01:00:00Z"),
        ("2026-08-11T03:00:00Z", "2026-08-12T02:59:59Z"),
        ("2026-08-12T00:00:00Z", "2026-08-12T00:00:01Z"),
        ("2026-08-12T00:00:00Z", "2026-08-13T08:00:00Z"),
        ("2026-08-11T20:00:00Z", "2026-08-13T00:00:00Z"),
        ("2026-08-11T20:59:59Z", "2026-08-14T00:00:00.000001Z"),
        ("2026-08-09T12:00:00Z", "2026-08-20T00:00:00Z"),
        // The widest ranges a timestamp can spell.
        ("0000-01-01T00:00:00Z", "9999-12-31T23:59:59Z"),
        ("2026-08-12T00:30:00Z", "9999-12-31T23:59:59Z"),
    ] {
        let (lo, hi) = (floor_hour(t(from)), t(to));
        let in_range: Vec<&Ev> = events
            .iter()
            .filter(|e| e.action != "preview" && floor_hour(e.at) >= lo && floor_hour(e.at) < hi)
            .collect();
        assert!(!in_range.is_empty(), "{from}..{to}");
        let range = format!("from={from}&to={to}");

        // The leaderboard: (engagements, views, saved contacts, leads) per card; a lead is no
        // engagement.
        let mut tally: std::collections::BTreeMap<Uuid, (i64, i64, i64, i64)> = Default::default();
        for e in &in_range {
            let row = tally.entry(e.employee).or_default();
            match e.action {
                "view" | "scan_qr" => row.1 += 1,
                "lead" => row.3 += 1,
                action => {
                    row.0 += 1;
                    if action == "download_vcard" {
                        row.2 += 1;
                    }
                }
            }
        }
        let mut ranked: Vec<(Uuid, (i64, i64, i64, i64))> = tally.into_iter().collect();
        ranked.sort_by_key(|(id, (engagements, views, _, _))| (-engagements, -views, *id));
        let expected: Vec<Value> = ranked
            .iter()
            .map(|(id, (engagements, views, saved, leads))| {
                json!({"employee_id": id, "full_name": names.get(id), "views": views,
                       "engagements": engagements, "saved_contacts": saved, "leads": leads})
            })
            .collect();
        let body = ok(
            app,
            &format!("/api/analytics/company/{company}/leaderboard?{range}&limit=100"),
            &c.token,
        )
        .await;
        assert_eq!(body["employees"], json!(expected), "leaderboard {range}");

        // The breakdowns: (events, views) per value, most events first.
        for by in ["device", "region"] {
            let mut tally: std::collections::BTreeMap<String, (i64, i64)> = Default::default();
            for e in &in_range {
                let value = match by {
                    "device" => e.device.map(str::to_owned),
                    _ => e.region.clone(),
                };
                let row = tally
                    .entry(value.unwrap_or_else(|| "unknown".into()))
                    .or_default();
                row.0 += 1;
                row.1 += i64::from(matches!(e.action, "view" | "scan_qr"));
            }
            let body = ok(
                app,
                &format!("/api/analytics/company/{company}/breakdown?by={by}&{range}"),
                &c.token,
            )
            .await;
            let rows = body["rows"].as_array().unwrap();
            let counts: Vec<i64> = rows.iter().map(|r| r["events"].as_i64().unwrap()).collect();
            assert!(
                counts.is_sorted_by(|a, b| a >= b),
                "{by} {range}: {counts:?}"
            );
            // Ties are ordered by the database's collation; compare as sets.
            let got: BTreeSet<(String, i64, i64)> = rows
                .iter()
                .map(|r| {
                    (
                        r["value"].as_str().unwrap().to_owned(),
                        r["events"].as_i64().unwrap(),
                        r["views"].as_i64().unwrap(),
                    )
                })
                .collect();
            let want: BTreeSet<(String, i64, i64)> = tally
                .into_iter()
                .map(|(v, (n, views))| (v, n, views))
                .collect();
            assert_eq!(got, want, "breakdown by {by} {range}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 9. CSV export
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn export_is_escaped_csv_oldest_first() {
    let fx = setup().await;
    let app = &fx.app;
    let a = app.signup("Export Alpha").await;
    let card = app.add_employee(&a, "Xerxes Exports").await;
    let x = uuid_of(&card);
    let slug = card["company_slug"].as_str().unwrap().to_owned();
    let company_json = ok(app, &format!("/api/company/{}", a.company_id), &a.token).await;
    assert_eq!(company_json["slug"], slug);
    let b = app.signup("Export Beta").await;
    let bx = uuid_of(&app.add_employee(&b, "Bianca Noise").await);

    let h = floor_hour(Utc::now()) - hours(24);
    let tricky_link = "a, \"b\"\nc";
    let e1 = ev(h + mins(1), x, "link_click")
        .link(tricky_link)
        .device("mobile")
        .region("=1+1")
        .visitor(1);
    let e2 = ev(h + mins(2), x, "view");
    let e3 = ev(h + mins(3), x, "call").device("desktop").region("-5");
    let e4 = ev(h + mins(3), x, "email").region("@x");
    let e5 = ev(h + mins(4) + micros(1), x, "view")
        .device("tablet")
        .region("+49 \"quoted\"");
    let e6 = ev(h + mins(5), x, "link_click")
        .link("=HYPERLINK(\"http://evil\",\"x\")")
        .region("A=B");
    // Each reason to quote on its own: a line break, a quote, a comma.
    let e7 = ev(h + mins(6), x, "link_click")
        .link("two\nlines")
        .region("5\" screen");
    let e8 = ev(h + mins(7), x, "view").region("Berlin, DE");
    let people = [
        e1.clone(),
        e2.clone(),
        e3.clone(),
        e4.clone(),
        e5.clone(),
        e6.clone(),
        e7.clone(),
        e8.clone(),
    ];
    let mut all = people.to_vec();
    all.push(ev(h + mins(2), x, "preview"));
    seed(&fx.db, a.company_id, &all).await;
    seed(&fx.db, b.company_id, &[ev(h + mins(2), bx, "view")]).await;

    let path = format!("/api/analytics/company/{}/export.csv", a.company_id);
    let resp = app
        .client
        .get(format!("{}{path}", app.address))
        .bearer_auth(&a.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let header = |name: reqwest::header::HeaderName| {
        resp.headers()
            .get(&name)
            .unwrap_or_else(|| panic!("no {name}"))
            .to_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(
        header(reqwest::header::CONTENT_TYPE),
        "text/csv; charset=utf-8"
    );
    assert_eq!(
        header(reqwest::header::CONTENT_DISPOSITION),
        format!("attachment; filename=\"{slug}-events.csv\"")
    );
    let text = resp.text().await.unwrap();
    assert!(!text.contains('\r'), "line ends are \\n: {text:?}");
    assert!(text.starts_with(&format!("{CSV_HEADER}\n")), "{text}");
    assert!(text.ends_with('\n'));
    // Escaping, byte for byte.
    let x_text = x.to_string();
    assert!(
        text.contains(&format!(
            ",{},{x_text},link_click,\"a, \"\"b\"\"\nc\",mobile,'=1+1\n",
            e1.id
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(",{},{x_text},view,,,\n", e2.id)),
        "{text}"
    );
    assert!(
        text.contains(&format!(",{},{x_text},call,,desktop,'-5\n", e3.id)),
        "{text}"
    );
    assert!(
        text.contains(&format!(",{},{x_text},email,,,'@x\n", e4.id)),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            ",{},{x_text},view,,tablet,\"'+49 \"\"quoted\"\"\"\n",
            e5.id
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            ",{},{x_text},link_click,\"'=HYPERLINK(\"\"http://evil\"\",\"\"x\"\")\",,A=B\n",
            e6.id
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            ",{},{x_text},link_click,\"two\nlines\",,\"5\"\" screen\"\n",
            e7.id
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(",{},{x_text},view,,,\"Berlin, DE\"\n", e8.id)),
        "{text}"
    );
    assert!(!text.contains(&visitor_hash(1)));

    let rows = parse_csv(&text);
    assert_eq!(rows[0], CSV_HEADER.split(',').collect::<Vec<_>>());
    let data = &rows[1..];
    let mut expected: Vec<&Ev> = people.iter().collect();
    expected.sort_by_key(|e| (e.at, e.id));
    assert_eq!(data.len(), expected.len());
    for (row, e) in data.iter().zip(&expected) {
        assert_eq!(row.len(), 7, "{row:?}");
        assert_eq!(t(&row[0]), e.at, "{row:?}");
        let formula = |v: &str| {
            if v.starts_with(['=', '+', '-', '@']) {
                format!("'{v}")
            } else {
                v.to_owned()
            }
        };
        assert_eq!(
            row[1..],
            [
                e.id.to_string(),
                e.employee.to_string(),
                e.action.to_owned(),
                formula(e.link.as_deref().unwrap_or_default()),
                e.device.unwrap_or_default().to_owned(),
                formula(e.region.as_deref().unwrap_or_default()),
            ]
        );
    }

    // [from, to): e2 at `from` in; e3 and e4 at `to` out.
    let resp = raw(
        app,
        &format!("{path}?from={}&to={}", q(e2.at), q(e3.at)),
        Some(&a.token),
    )
    .await;
    assert_eq!(resp.status, 200);
    let rows = parse_csv(std::str::from_utf8(&resp.body).unwrap());
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1][1], e2.id.to_string());
    // Nothing in range: the header alone.
    let resp = raw(
        app,
        &format!("{path}?from={}&to={}", q(h - hours(3)), q(h)),
        Some(&a.token),
    )
    .await;
    assert_eq!(
        String::from_utf8(resp.body).unwrap(),
        format!("{CSV_HEADER}\n")
    );
    app.get(
        &format!("{path}?from={}&to={}", q(e3.at), q(e2.at)),
        Some(&a.token),
    )
    .await
    .assert_error(422, "invalid_range");
}

#[tokio::test]
async fn a_large_export_streams_every_event_once_in_order() {
    const N: usize = 12_000;
    let fx = setup().await;
    let app = &fx.app;
    let a = app.signup("Export Large").await;
    let x = uuid_of(&app.add_employee(&a, "Xylia Bulk").await);
    let y = uuid_of(&app.add_employee(&a, "Yorick Bulk").await);
    let b = app.signup("Export Large Noise").await;
    let bx = uuid_of(&app.add_employee(&b, "Boris Noise").await);

    let base = floor_hour(Utc::now()) - hours(6);
    // Threes share an instant, so some straddle any page edge not a multiple of three (5000,
    // 10000): the keyset's tie-break by id matters there.
    let events: Vec<Ev> = (0..N)
        .map(|i| {
            let employee = if i % 2 == 0 { x } else { y };
            let action = PEOPLE_ACTIONS[i % PEOPLE_ACTIONS.len()];
            let mut e = ev(
                base + TimeDelta::milliseconds(100 * (i as i64 / 3)),
                employee,
                action,
            )
            .device("mobile")
            .region("DE");
            if action == "link_click" {
                e = e.link("site,with \"comma\"");
            }
            e
        })
        .collect();
    for chunk in events.chunks(4000) {
        seed(&fx.db, a.company_id, chunk).await;
    }
    seed(
        &fx.db,
        b.company_id,
        &(0..300)
            .map(|i| ev(base + TimeDelta::milliseconds(333 * i), bx, "view"))
            .collect::<Vec<_>>(),
    )
    .await;

    let resp = app
        .client
        .get(format!(
            "{}/api/analytics/company/{}/export.csv",
            app.address, a.company_id
        ))
        .bearer_auth(&a.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    // Streamed: no length known up front.
    assert!(
        resp.headers()
            .get(reqwest::header::CONTENT_LENGTH)
            .is_none(),
        "{:?}",
        resp.headers()
    );
    let mut stream = resp.bytes_stream();
    let mut body = Vec::new();
    let mut chunks = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.expect("the export is not cut short");
        chunks += 1;
        body.extend_from_slice(&chunk);
    }
    assert!(chunks > 2, "{chunks} chunks");
    let rows = parse_csv(std::str::from_utf8(&body).unwrap());
    assert_eq!(rows[0].join(","), CSV_HEADER);
    let data = &rows[1..];
    assert_eq!(data.len(), N);
    let mut expected: Vec<(DateTime<Utc>, Uuid)> = events.iter().map(|e| (e.at, e.id)).collect();
    expected.sort();
    let got: Vec<Uuid> = data.iter().map(|r| r[1].parse().unwrap()).collect();
    assert_eq!(got.iter().collect::<BTreeSet<_>>().len(), N, "duplicates");
    assert!(
        got == expected.iter().map(|(_, id)| *id).collect::<Vec<_>>(),
        "rows out of order or missing"
    );
    for (row, (at, _)) in data.iter().zip(&expected) {
        assert_eq!(t(&row[0]), *at);
        assert_eq!(row.len(), 7);
    }
    // The event list's default page is 50, at most 100.
    let list = format!("/api/analytics/company/{}", a.company_id);
    let newest: Vec<Uuid> = expected.iter().rev().map(|(_, id)| *id).collect();
    let body = ok(app, &list, &a.token).await;
    assert_eq!(ids(body["events"].as_array().unwrap()), newest[..50]);
    assert!(body["next_cursor"].is_string());
    let body = ok(app, &format!("{list}?limit=100"), &a.token).await;
    assert_eq!(ids(body["events"].as_array().unwrap()), newest[..100]);
    let cursor = body["next_cursor"].as_str().unwrap();
    let body = ok(app, &format!("{list}?limit=100&cursor={cursor}"), &a.token).await;
    assert_eq!(ids(body["events"].as_array().unwrap()), newest[100..200]);

    for action in PEOPLE_ACTIONS {
        let exported = data.iter().filter(|r| r[3] == action).count();
        let seeded = events.iter().filter(|e| e.action == action).count();
        assert!(seeded > 0, "{action}");
        assert_eq!(exported, seeded, "{action}");
    }
    assert!(
        data.iter()
            .filter(|r| r[3] == "link_click")
            .all(|r| r[4] == "site,with \"comma\"")
    );
}

// ---------------------------------------------------------------------------------------------
// 10. Retention
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn detail_is_clamped_to_retention_while_rollups_still_count() {
    let fx = setup().await;
    let app = &fx.app;
    let f = app.signup("Retention Free").await;
    let x = uuid_of(&app.add_employee(&f, "Xu Retained").await);
    let now = Utc::now();
    let h = floor_hour(now);
    // A partition for the days around 31 days ago; 40 days ago has none (default partition).
    fx.db
        .execute(
            "SELECT analytics_ensure_partitions($1, $2)",
            &[&(now - days(32)), &(now - days(30))],
        )
        .await
        .unwrap();
    let in_default = ev(h - days(40) + mins(10), x, "view").region("DE");
    let in_partition = ev(h - days(31) + mins(10), x, "view").region("DE");
    let recent = ev(h - days(29) + mins(10), x, "view").region("DE");
    let latest = ev(h - days(1) + mins(10), x, "call").region("DE");
    seed(
        &fx.db,
        f.company_id,
        &[
            in_default.clone(),
            in_partition.clone(),
            recent.clone(),
            latest.clone(),
        ],
    )
    .await;
    // The old detail is still stored, in the places meant.
    let stored: Vec<(Uuid, String)> = fx
        .db
        .query(
            "SELECT id, tableoid::regclass::text FROM card_events WHERE company_id = $1",
            &[&f.company_id],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(stored.len(), 4);
    let place = |id: Uuid| {
        stored
            .iter()
            .find(|(i, _)| *i == id)
            .map(|(_, p)| p.clone())
            .unwrap()
    };
    assert_eq!(place(in_default.id), "card_events_d30_default");
    assert!(
        place(in_partition.id).starts_with("card_events_d30_p"),
        "{}",
        place(in_partition.id)
    );

    let visible = vec![latest.id, recent.id];
    let company = format!("/api/analytics/company/{}", f.company_id);
    let body = ok(app, &company, &f.token).await;
    assert_eq!(ids(body["events"].as_array().unwrap()), visible);
    assert_eq!(body["summary"], counts(&[("view", 1), ("call", 1)], true));
    // An explicit `from` reaches no further back into detail...
    let from = q(h - days(45));
    let body = ok(app, &format!("{company}?from={from}"), &f.token).await;
    assert_eq!(ids(body["events"].as_array().unwrap()), visible);
    // ... while the summary's rollups outlive it.
    assert_eq!(body["summary"], counts(&[("view", 3), ("call", 1)], true));
    let body = ok(
        app,
        &format!("/api/analytics/employee/{x}?from={from}&limit=1"),
        &f.token,
    )
    .await;
    assert_eq!(ids(body["events"].as_array().unwrap()), vec![latest.id]);
    let cursor = body["next_cursor"].as_str().unwrap();
    let body = ok(
        app,
        &format!("/api/analytics/employee/{x}?from={from}&limit=1&cursor={cursor}"),
        &f.token,
    )
    .await;
    assert_eq!(ids(body["events"].as_array().unwrap()), vec![recent.id]);
    assert!(body["next_cursor"].is_null());

    // The export: the same two.
    for path in [
        format!("{company}/export.csv"),
        format!("{company}/export.csv?from={from}"),
    ] {
        let resp = raw(app, &path, Some(&f.token)).await;
        assert_eq!(resp.status, 200);
        let rows = parse_csv(std::str::from_utf8(&resp.body).unwrap());
        let got: Vec<String> = rows[1..].iter().map(|r| r[1].clone()).collect();
        assert_eq!(
            got,
            [recent.id.to_string(), latest.id.to_string()],
            "{path}"
        );
    }

    // The time series, from the rollups, still counts the old days.
    let day = |at: DateTime<Utc>| at.date_naive().format("%Y-%m-%d").to_string();
    let body = ok(
        app,
        &format!("{company}/timeseries?from={from}&to={}", q(now)),
        &f.token,
    )
    .await;
    let days_listed = labels(&body);
    let views = column(&body, "view");
    for e in [&in_default, &in_partition, &recent] {
        let i = days_listed.iter().position(|d| *d == day(e.at)).unwrap();
        assert_eq!(views[i], 1, "{}", day(e.at));
    }
    assert_eq!(views.iter().sum::<i64>(), 3);
    assert_eq!(body["totals"], counts(&[("view", 3), ("call", 1)], true));
    let body = ok(
        app,
        &format!("{company}/breakdown?by=region&from={from}"),
        &f.token,
    )
    .await;
    assert_eq!(
        body["rows"],
        json!([{"value": "DE", "events": 4, "views": 3}])
    );
}

#[tokio::test]
async fn paid_plans_keep_detail_for_a_year_or_for_ever() {
    let fx = setup().await;
    let app = &fx.app;
    let root = app.superadmin().await;
    let h = floor_hour(Utc::now());
    for (plan, old_visible) in [("professional", false), ("enterprise", true)] {
        let c = app.signup(&format!("Retention {plan}")).await;
        app.set_plan(&root, c.company_id, plan).await;
        let x = uuid_of(&app.add_employee(&c, "Xavi Years").await);
        let year_old = ev(h - days(100), x, "view");
        let older = ev(h - days(370), x, "call");
        let ancient = ev(h - days(800), x, "email");
        seed(
            &fx.db,
            c.company_id,
            &[year_old.clone(), older.clone(), ancient.clone()],
        )
        .await;
        let mut visible = vec![year_old.id];
        if old_visible {
            visible.extend([older.id, ancient.id]);
        }
        let company = format!("/api/analytics/company/{}", c.company_id);
        let from = q(h - days(1000));
        let body = ok(app, &format!("{company}?from={from}"), &c.token).await;
        assert_eq!(ids(body["events"].as_array().unwrap()), visible, "{plan}");
        assert_eq!(
            body["summary"],
            counts(&[("view", 1), ("call", 1), ("email", 1)], true),
            "{plan}"
        );
        let resp = raw(app, &format!("{company}/export.csv"), Some(&c.token)).await;
        let rows = parse_csv(std::str::from_utf8(&resp.body).unwrap());
        let mut oldest_first: Vec<String> = visible.iter().map(|id| id.to_string()).collect();
        oldest_first.reverse();
        assert_eq!(
            rows[1..].iter().map(|r| r[1].clone()).collect::<Vec<_>>(),
            oldest_first,
            "{plan}"
        );
    }
}
