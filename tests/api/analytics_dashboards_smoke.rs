//! Smoke tests of the analytics dashboards and the CSV export: one per endpoint, checking the
//! shape of the answer over a few events recorded through the tracking endpoint.

use crate::helpers::{Card, IPHONE, LINK_PREVIEW, Session, TestApp, spawn_app, track_ok, uuid_of};
use serde_json::{Value, json};
use uuid::Uuid;

const ACTIONS: [&str; 10] = [
    "view",
    "scan_qr",
    "call",
    "email",
    "whatsapp",
    "download_vcard",
    "link_click",
    "share",
    "lead",
    "preview",
];

/// A company with one employee whose card was viewed twice, called, saved, and fetched once by
/// a link-preview bot.
struct World {
    admin: Session,
    employee_id: Uuid,
    company_slug: String,
}

async fn world(app: &TestApp) -> World {
    let admin = app.signup("Smoke Analytics").await;
    let employee = app.add_employee(&admin, "Jane Card").await;
    let card = Card::of(&employee);
    for body in [
        json!({"action": "view", "region": "DE"}),
        json!({"action": "view"}),
        json!({"action": "call"}),
        json!({"action": "download_vcard"}),
        json!({"action": "link_click", "link": "=linkedin"}),
    ] {
        assert_eq!(
            track_ok(app, &card, IPHONE, body).await["status"],
            "tracked"
        );
    }
    let ignored = track_ok(app, &card, LINK_PREVIEW, json!({"action": "view"})).await;
    assert_eq!(ignored["status"], "ignored");
    World {
        admin,
        employee_id: uuid_of(&employee),
        company_slug: employee["company_slug"].as_str().unwrap().to_owned(),
    }
}

#[track_caller]
fn assert_counts(counts: &Value, keys: &[&str]) {
    let object = counts.as_object().expect("counts are an object");
    assert_eq!(object.len(), keys.len(), "{counts}");
    for key in keys {
        assert!(counts[key].is_i64(), "{key} missing from {counts}");
    }
}

#[tokio::test]
async fn company_events_are_paged_newest_first_with_a_summary() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let path = format!("/api/analytics/company/{}", w.admin.company_id);

    let first = app
        .get(&format!("{path}?limit=3"), Some(&w.admin.token))
        .await;
    first.assert_status(200);
    let events = first.body["events"].as_array().unwrap();
    assert_eq!(events.len(), 3);
    assert_eq!(events[0]["action"], "link_click");
    assert_eq!(events[0]["link"], "=linkedin");
    assert_eq!(events[0]["device"], "mobile");
    assert_eq!(events[0]["employee_id"], w.employee_id.to_string());
    for key in ["id", "occurred_at", "region"] {
        assert!(events[0].get(key).is_some(), "{key} missing");
    }
    let summary = &first.body["summary"];
    assert_counts(summary, &ACTIONS);
    assert_eq!(
        (&summary["view"], &summary["call"], &summary["preview"]),
        (&json!(2), &json!(1), &json!(1))
    );

    let cursor = first.body["next_cursor"].as_str().expect("a next page");
    let second = app
        .get(
            &format!("{path}?limit=3&cursor={cursor}"),
            Some(&w.admin.token),
        )
        .await;
    second.assert_status(200);
    let older = second.body["events"].as_array().unwrap();
    assert_eq!(older.len(), 2);
    assert_eq!(older[1]["region"], "DE");
    assert!(second.body["next_cursor"].is_null());

    app.get(&format!("{path}?cursor=garbage"), Some(&w.admin.token))
        .await
        .assert_error(422, "invalid_cursor");
    app.get(&path, None).await.assert_error(401, "unauthorized");
    let colleague = app
        .add_user(&w.admin, "employee", Some(w.employee_id))
        .await;
    app.get(&path, Some(&colleague.token))
        .await
        .assert_error(403, "forbidden");
    let other = app.signup("Someone Else").await;
    app.get(&path, Some(&other.token))
        .await
        .assert_error(404, "not_found");
}

#[tokio::test]
async fn employee_events_are_shown_to_the_linked_login_only() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let path = format!("/api/analytics/employee/{}", w.employee_id);

    let own = app
        .add_user(&w.admin, "employee", Some(w.employee_id))
        .await;
    let resp = app.get(&path, Some(&own.token)).await;
    resp.assert_status(200);
    assert_eq!(resp.body["events"].as_array().unwrap().len(), 5);
    assert_counts(&resp.body["summary"], &ACTIONS);
    assert_eq!(resp.body["summary"]["download_vcard"], 1);
    assert!(resp.body["next_cursor"].is_null());

    let other_employee = app.add_employee(&w.admin, "John Other").await;
    let someone = app
        .add_user(&w.admin, "employee", Some(uuid_of(&other_employee)))
        .await;
    app.get(&path, Some(&someone.token))
        .await
        .assert_error(403, "forbidden");
    app.get(&path, Some(&w.admin.token))
        .await
        .assert_status(200);
    app.get(
        &format!("/api/analytics/employee/{}", Uuid::new_v4()),
        Some(&w.admin.token),
    )
    .await
    .assert_error(404, "not_found");
}

#[tokio::test]
async fn company_timeseries_has_every_bucket_and_totals() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let path = format!("/api/analytics/company/{}/timeseries", w.admin.company_id);

    let resp = app.get(&path, Some(&w.admin.token)).await;
    resp.assert_status(200);
    let body = &resp.body;
    assert_eq!(
        (&body["tz"], &body["interval"]),
        (&json!("UTC"), &json!("day"))
    );
    let buckets = body["buckets"].as_array().unwrap();
    assert_eq!(buckets.len(), 30);
    let today = buckets.last().unwrap();
    assert_eq!(
        today["start"],
        chrono::Utc::now()
            .date_naive()
            .format("%Y-%m-%d")
            .to_string()
    );
    assert_counts(&today["counts"], &ACTIONS[..9]);
    assert_eq!(today["counts"]["view"], 2);
    assert_eq!(today["unique_visitors"], 1);
    assert_counts(&body["totals"], &ACTIONS);
    assert_eq!(body["totals"]["preview"], 1);
    assert_eq!(body["unique_visitors"], 1);
    assert_eq!(
        body["conversion"],
        json!({"views": 2, "saved_contacts": 1, "rate": 0.5, "leads": 0, "lead_rate": 0.0,
               "leads_per_saved_contact": 0.0})
    );

    // The 23-hour local day of a DST change, by the hour.
    let resp = app
        .get(
            &format!(
                "{path}?tz=America/New_York&interval=hour\
                 &from=2026-03-08T05:00:00Z&to=2026-03-09T04:00:00Z"
            ),
            Some(&w.admin.token),
        )
        .await;
    resp.assert_status(200);
    let buckets = resp.body["buckets"].as_array().unwrap();
    assert_eq!(buckets.len(), 23);
    assert_eq!(buckets[2]["start"], "2026-03-08T03:00:00-04:00");

    app.get(&format!("{path}?tz=Mars/Olympus"), Some(&w.admin.token))
        .await
        .assert_error(422, "invalid_time_zone");
    app.get(
        &format!("{path}?interval=hour&from=2026-01-01T00:00:00Z&to=2026-03-01T00:00:00Z"),
        Some(&w.admin.token),
    )
    .await
    .assert_status(422);
}

#[tokio::test]
async fn employee_timeseries_counts_one_card() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let idle = app.add_employee(&w.admin, "Idle Card").await;

    let path = format!(
        "/api/analytics/employee/{}/timeseries?tz=Europe/Berlin",
        w.employee_id
    );
    let resp = app.get(&path, Some(&w.admin.token)).await;
    resp.assert_status(200);
    assert_eq!(resp.body["tz"], "Europe/Berlin");
    assert_eq!(resp.body["buckets"].as_array().unwrap().len(), 30);
    assert_eq!(resp.body["totals"]["call"], 1);
    assert_eq!(resp.body["conversion"]["views"], 2);

    let idle_path = format!("/api/analytics/employee/{}/timeseries", uuid_of(&idle));
    let resp = app.get(&idle_path, Some(&w.admin.token)).await;
    resp.assert_status(200);
    assert_eq!(resp.body["unique_visitors"], 0);
    assert_eq!(resp.body["conversion"]["rate"], 0.0);
}

#[tokio::test]
async fn breakdown_groups_people_by_device_and_region() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let path = format!("/api/analytics/company/{}/breakdown", w.admin.company_id);

    let resp = app
        .get(&format!("{path}?by=device"), Some(&w.admin.token))
        .await;
    resp.assert_status(200);
    assert_eq!(
        resp.body,
        json!({"by": "device", "rows": [{"value": "mobile", "events": 5, "views": 2}]})
    );

    let resp = app
        .get(&format!("{path}?by=region"), Some(&w.admin.token))
        .await;
    resp.assert_status(200);
    assert_eq!(
        resp.body["rows"],
        json!([
            {"value": "unknown", "events": 4, "views": 1},
            {"value": "DE", "events": 1, "views": 1},
        ])
    );
    app.get(&format!("{path}?by=colour"), Some(&w.admin.token))
        .await
        .assert_status(422);
}

#[tokio::test]
async fn leaderboard_ranks_employees_by_engagement() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let resp = app
        .get(
            &format!("/api/analytics/company/{}/leaderboard", w.admin.company_id),
            Some(&w.admin.token),
        )
        .await;
    resp.assert_status(200);
    assert_eq!(
        resp.body,
        json!({"employees": [{
            "employee_id": w.employee_id,
            "full_name": "Jane Card",
            "views": 2,
            "engagements": 3,
            "saved_contacts": 1,
            "leads": 0,
        }]})
    );
}

#[tokio::test]
async fn export_streams_csv_oldest_first() {
    let app = spawn_app().await;
    let w = world(&app).await;
    let resp = app
        .client
        .get(format!(
            "{}/api/analytics/company/{}/export.csv",
            app.address, w.admin.company_id
        ))
        .bearer_auth(&w.admin.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let header = |name: &str| resp.headers()[name].to_str().unwrap().to_owned();
    assert_eq!(header("content-type"), "text/csv; charset=utf-8");
    assert_eq!(
        header("content-disposition"),
        format!("attachment; filename=\"{}-events.csv\"", w.company_slug)
    );
    let text = resp.text().await.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "occurred_at,event_id,employee_id,action,link,device,region"
    );
    assert_eq!(lines.len(), 6, "{text}");
    assert!(lines[1].ends_with(&format!("{},view,,mobile,DE", w.employee_id)));
    assert!(
        lines[5].ends_with(",link_click,'=linkedin,mobile,"),
        "{text}"
    );

    let employee = app.add_user(&w.admin, "employee", None).await;
    app.get(
        &format!("/api/analytics/company/{}/export.csv", w.admin.company_id),
        Some(&employee.token),
    )
    .await
    .assert_error(403, "forbidden");
}
