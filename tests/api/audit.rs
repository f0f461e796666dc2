//! The audit trail: every change through the API and every login attempt is an event of the
//! company it happened in, written in the change's own transaction; the service role can add
//! and read events and never change one; admins list them, newest first, page by page.

use std::io::Cursor;

use callingcard::{db::Tenant, model::audit};
use chrono::{Duration, Utc};
use serde_json::{Value, json};
use tokio_postgres::error::SqlState;
use uuid::Uuid;

use crate::helpers::{
    ADMIN_PASSWORD, Session, TEAMMATE_PASSWORD, TestApp, app_role_url, audit_events, connect,
    fresh_database, spawn_app, spawn_app_on, superuser, superuser_url, uuid_of, wait_for,
};

/// A 48×48 PNG of one color.
fn png(color: [u8; 3]) -> Vec<u8> {
    let image = image::RgbImage::from_pixel(48, 48, image::Rgb(color));
    let mut png = Vec::new();
    image
        .write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
        .expect("encoding a PNG");
    png
}

async fn upload(app: &TestApp, path: &str, token: &str, body: Vec<u8>) -> Value {
    let resp = app
        .client
        .put(format!("{}{path}", app.address))
        .bearer_auth(token)
        .header("content-type", "image/png")
        .body(body)
        .send()
        .await
        .expect("uploading");
    let resp = TestApp::read(resp).await;
    resp.assert_status(200);
    resp.body
}

/// The one event of `action` (the newest, if several).
#[track_caller]
fn the<'a>(events: &'a [Value], action: &str) -> &'a Value {
    events
        .iter()
        .find(|e| e["action"] == action)
        .unwrap_or_else(|| panic!("no {action} event in {events:#?}"))
}

#[track_caller]
fn assert_actor(event: &Value, session: &Session, role: &str) {
    assert_eq!(
        event["actor"],
        json!({"user_id": session.user_id, "email": session.email, "role": role}),
        "{event}"
    );
}

#[track_caller]
pub fn assert_target(event: &Value, kind: &str, id: Uuid) {
    assert_eq!(event["target"], json!({"type": kind, "id": id}), "{event}");
}

/// Every event of the company says where it came from, and nothing secret.
#[track_caller]
pub fn assert_plain(events: &[Value], secrets: &[&str]) {
    for event in events {
        let text = event.to_string();
        for secret in secrets.iter().chain(&["$argon2"]) {
            assert!(!text.contains(secret), "{secret} in {event:#}");
        }
        for field in event["changes"].as_object().expect("changes").keys() {
            let image = field == "photo_hash" || field == "logo_hash";
            assert!(
                !field.contains("password")
                    && !field.contains("token")
                    && (image || !field.contains("hash")),
                "{field} in {event:#}"
            );
        }
        assert_eq!(event["client_address"], "127.0.0.1", "{event}");
        assert!(
            event["request_id"].is_null() || event["request_id"].is_string(),
            "{event}"
        );
        let at: chrono::DateTime<Utc> = event["occurred_at"]
            .as_str()
            .and_then(|t| t.parse().ok())
            .unwrap_or_else(|| panic!("occurred_at in {event}"));
        assert!(at <= Utc::now() && at > Utc::now() - Duration::minutes(10));
    }
}

#[tokio::test]
async fn every_change_records_who_changed_what() {
    let app = spawn_app().await;
    let admin = app.signup("Audited Inc").await;
    let company = admin.company_id;

    // Sign-up: the company, its admin, and the admin's first login.
    let events = audit_events(&app, &admin, "").await;
    let actions: Vec<&str> = events
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["auth.login", "user.created", "company.created"]);
    let created = the(&events, "company.created");
    assert_actor(created, &admin, "admin");
    assert_target(created, "company", company);
    assert_eq!(
        created["changes"]["name"],
        json!({"before": null, "after": "Audited Inc"})
    );
    assert_eq!(
        created["changes"]["plan"],
        json!({"before": null, "after": "free"})
    );
    let user = the(&events, "user.created");
    assert_target(user, "user", admin.user_id);
    assert_eq!(user["changes"]["email"]["after"], admin.email.as_str());
    assert_target(the(&events, "auth.login"), "user", admin.user_id);

    // An employee: created, edited, photographed, deleted.
    let employee = app.add_employee(&admin, "Grace Hopper").await;
    let id = uuid_of(&employee);
    let resp = app
        .put(
            &format!("/api/employees/{id}"),
            Some(&admin.token),
            json!({"job_title": "Rear Admiral", "bio": null}),
        )
        .await;
    resp.assert_status(200);
    let with_photo = upload(
        &app,
        &format!("/api/employees/{id}/photo"),
        &admin.token,
        png([9, 99, 199]),
    )
    .await;
    let photo_hash = with_photo["photo_url"]
        .as_str()
        .and_then(|url| url.rsplit('/').next())
        .and_then(|file| file.strip_suffix(".jpg"))
        .expect("an uploaded photo")
        .to_owned();
    app.delete(&format!("/api/employees/{id}/photo"), Some(&admin.token))
        .await
        .assert_status(204);
    app.delete(&format!("/api/employees/{id}"), Some(&admin.token))
        .await
        .assert_status(204);
    let events = audit_events(&app, &admin, "target_type=employee").await;
    let actions: Vec<&str> = events
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "employee.deleted",
            "employee.photo_removed",
            "employee.photo_set",
            "employee.updated",
            "employee.created"
        ]
    );
    for event in &events {
        assert_actor(event, &admin, "admin");
        assert_target(event, "employee", id);
        assert_eq!(event["outcome"], "success");
    }
    let created = the(&events, "employee.created");
    assert_eq!(
        created["changes"]["full_name"],
        json!({"before": null, "after": "Grace Hopper"})
    );
    assert_eq!(
        created["changes"]["job_title"],
        json!({"before": null, "after": "Engineer"})
    );
    assert!(
        created["changes"].get("bio").is_none(),
        "nothing to nothing is no change"
    );
    // Only what changed: the bio was null already.
    assert_eq!(
        the(&events, "employee.updated")["changes"],
        json!({"job_title": {"before": "Engineer", "after": "Rear Admiral"}})
    );
    // Images as their hash.
    assert_eq!(
        the(&events, "employee.photo_set")["changes"],
        json!({"photo_hash": {"before": null, "after": photo_hash}})
    );
    assert_eq!(
        the(&events, "employee.photo_removed")["changes"],
        json!({"photo_hash": {"before": photo_hash, "after": null}})
    );
    let deleted = &the(&events, "employee.deleted")["changes"];
    assert_eq!(
        deleted["full_name"],
        json!({"before": "Grace Hopper", "after": null})
    );
    assert_eq!(
        deleted["job_title"],
        json!({"before": "Rear Admiral", "after": null})
    );

    // The company's branding and logo.
    app.put(
        &format!("/api/company/{company}"),
        Some(&admin.token),
        json!({"name": "Audited GmbH", "brand_color": "#123456"}),
    )
    .await
    .assert_status(200);
    upload(
        &app,
        &format!("/api/company/{company}/logo"),
        &admin.token,
        png([1, 2, 3]),
    )
    .await;
    let events = audit_events(&app, &admin, "action=company.*").await;
    let updated = the(&events, "company.updated");
    assert_actor(updated, &admin, "admin");
    assert_eq!(
        updated["changes"],
        json!({
            "name": {"before": "Audited Inc", "after": "Audited GmbH"},
            "brand_color": {"before": null, "after": "#123456"},
        })
    );
    let logo = the(&events, "company.logo_set");
    assert_target(logo, "company", company);
    assert!(
        logo["changes"]["logo_hash"]["after"]
            .as_str()
            .is_some_and(|h| h.len() == 32),
        "{logo}"
    );

    // A login: created by the admin, never with its password.
    let teammate = app.add_user(&admin, "employee", None).await;
    let events = audit_events(&app, &admin, "action=user.created").await;
    let user = &events[0];
    assert_actor(user, &admin, "admin");
    assert_target(user, "user", teammate.user_id);
    assert_eq!(
        user["changes"]["role"],
        json!({"before": null, "after": "employee"})
    );
    assert_eq!(
        user["changes"]["is_active"],
        json!({"before": null, "after": true})
    );

    // The plan, by a superadmin of the platform company, named with its own email.
    let root = app.superadmin().await;
    app.set_plan(&root, company, "professional").await;
    let events = audit_events(&app, &admin, "action=subscription.changed").await;
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_actor(&events[0], &root, "superadmin");
    assert_target(&events[0], "subscription", company);
    assert_eq!(
        events[0]["changes"],
        json!({"plan": {"before": "free", "after": "professional"}})
    );

    // A new password: that it changed, never what it is.
    let new_password = "copper-lantern-meadow-71";
    app.post(
        "/api/auth/change-password",
        Some(&admin.token),
        json!({"current_password": ADMIN_PASSWORD, "new_password": new_password}),
    )
    .await
    .assert_status(204);
    let events = audit_events(&app, &admin, "action=user.password_changed").await;
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_actor(&events[0], &admin, "admin");
    assert_target(&events[0], "user", admin.user_id);
    assert_eq!(events[0]["changes"], json!({}));

    let all = audit_events(&app, &admin, "").await;
    assert_plain(&all, &[ADMIN_PASSWORD, TEAMMATE_PASSWORD, new_password]);
    // The superadmin's own login is the platform's event, not this company's.
    assert!(
        !all.iter()
            .any(|e| e["actor"]["user_id"] == root.user_id.to_string()
                && e["action"] == "auth.login")
    );
}

#[tokio::test]
async fn a_change_that_fails_leaves_no_event() {
    let app = spawn_app().await;
    let admin = app.signup("Rollback Ltd").await;
    let owner = superuser(&app).await;
    let first = uuid_of(&app.add_employee(&admin, "First").await);
    app.add_employee(&admin, "Second").await;
    let created = audit_events(&app, &admin, "action=employee.created").await;
    assert_eq!(created.len(), 2);

    // Refused before anything is written: past the free plan's two employees.
    let resp = app
        .post(
            &format!("/api/company/{}/employees", admin.company_id),
            Some(&admin.token),
            json!({"full_name": "Third"}),
        )
        .await;
    resp.assert_error(402, "plan_limit_reached");
    assert_eq!(
        audit_events(&app, &admin, "action=employee.created")
            .await
            .len(),
        2
    );

    // Refused at COMMIT, after the event was written: the event goes with the change. (A
    // deferred check of this test's own database, on this one job title.)
    owner
        .batch_execute(
            "CREATE FUNCTION refuse_doomed() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
                 IF NEW.job_title = 'Doomed' THEN
                     RAISE EXCEPTION 'doomed' USING ERRCODE = 'check_violation';
                 END IF;
                 RETURN NEW;
             END $$;
             CREATE CONSTRAINT TRIGGER refuse_doomed AFTER UPDATE ON employees
                 DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse_doomed();",
        )
        .await
        .unwrap();
    let resp = app
        .put(
            &format!("/api/employees/{first}"),
            Some(&admin.token),
            json!({"job_title": "Doomed"}),
        )
        .await;
    resp.assert_status(422);
    assert!(
        audit_events(&app, &admin, "action=employee.updated")
            .await
            .is_empty()
    );

    // And the other way round: an event that cannot be written takes its change with it.
    owner
        .batch_execute(
            "ALTER TABLE audit_events ADD CONSTRAINT audit_events_no_renames
                 CHECK (action <> 'company.updated')",
        )
        .await
        .unwrap();
    let resp = app
        .put(
            &format!("/api/company/{}", admin.company_id),
            Some(&admin.token),
            json!({"name": "Renamed"}),
        )
        .await;
    resp.assert_status(422);
    let name: String = owner
        .query_one(
            "SELECT name FROM companies WHERE id = $1",
            &[&admin.company_id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(name, "Rollback Ltd", "the rename outlived its event");
    // Controls: the same requests work without those checks.
    owner
        .batch_execute(
            "DROP TRIGGER refuse_doomed ON employees;
             ALTER TABLE audit_events DROP CONSTRAINT audit_events_no_renames",
        )
        .await
        .unwrap();
    app.put(
        &format!("/api/employees/{first}"),
        Some(&admin.token),
        json!({"job_title": "Doomed"}),
    )
    .await
    .assert_status(200);
    app.put(
        &format!("/api/company/{}", admin.company_id),
        Some(&admin.token),
        json!({"name": "Renamed"}),
    )
    .await
    .assert_status(200);
    assert_eq!(
        audit_events(&app, &admin, "action=employee.updated")
            .await
            .len(),
        1
    );
    assert_eq!(
        audit_events(&app, &admin, "action=company.updated")
            .await
            .len(),
        1
    );
}

/// The statement failed with `code`; its message.
#[track_caller]
fn refused<T: std::fmt::Debug>(
    result: Result<T, tokio_postgres::Error>,
    code: &SqlState,
    what: &str,
) -> String {
    let err = result.expect_err(what);
    let db = err
        .as_db_error()
        .unwrap_or_else(|| panic!("{what}: {err:?}"));
    assert_eq!(db.code(), code, "{what}: {}", db.message());
    db.message().to_owned()
}

#[tokio::test]
async fn nobody_changes_or_deletes_an_event() {
    let app = spawn_app().await;
    let admin = app.signup("Tamper Proof").await;
    let before = audit_events(&app, &admin, "").await;
    assert_eq!(before.len(), 3);
    let company = admin.company_id.to_string();

    // The service role, in its own tenant: INSERT and SELECT only.
    let mut service = connect(&app_role_url(&app.dbname)).await;
    let tx = service.transaction().await.unwrap();
    tx.execute("SELECT set_config('app.company_id', $1, true)", &[&company])
        .await
        .unwrap();
    let seen: i64 = tx
        .query_one("SELECT count(*) FROM audit_events", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(seen, 3, "control: the tenant sees its events");
    tx.rollback().await.unwrap();
    for sql in [
        "UPDATE audit_events SET action = 'company.forgotten'",
        "DELETE FROM audit_events",
        "TRUNCATE audit_events",
    ] {
        let tx = service.transaction().await.unwrap();
        tx.execute("SELECT set_config('app.company_id', $1, true)", &[&company])
            .await
            .unwrap();
        let message = refused(
            tx.batch_execute(sql).await,
            &SqlState::INSUFFICIENT_PRIVILEGE,
            sql,
        );
        assert!(message.contains("permission denied"), "{sql}: {message}");
        tx.rollback().await.unwrap();
    }
    // Nor through the retention function: it keeps 30 days whatever it is asked.
    let purged: i64 = service
        .query_one("SELECT audit_purge(0, 1000000)", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(purged, 0);

    // The owner (a superuser here, past every privilege and policy) meets the trigger.
    let owner = superuser(&app).await;
    for sql in [
        "UPDATE audit_events SET action = 'company.forgotten'",
        "DELETE FROM audit_events",
        "TRUNCATE audit_events",
    ] {
        let message = refused(
            owner.batch_execute(sql).await,
            &SqlState::INSUFFICIENT_PRIVILEGE,
            sql,
        );
        assert!(message.contains("append-only"), "{sql}: {message}");
    }
    // Even marking the transaction as the purge's: only the definer role's purge may delete.
    let message = refused(
        owner
            .batch_execute(
                "BEGIN; SELECT set_config('callingcard.audit_purge', 'on', true);
                 DELETE FROM audit_events; COMMIT",
            )
            .await,
        &SqlState::INSUFFICIENT_PRIVILEGE,
        "a DELETE marked as the purge's",
    );
    assert!(message.contains("append-only"), "{message}");
    owner.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(audit_events(&app, &admin, "").await, before);
}

#[tokio::test]
async fn a_company_sees_only_its_own_trail() {
    let app = spawn_app().await;
    let a = app.signup("Alpha Trail").await;
    let b = app.signup("Beta Trail").await;
    let ea = uuid_of(&app.add_employee(&a, "Alpha Person").await);
    app.add_employee(&b, "Beta Person").await;
    let employee = app.add_user(&a, "employee", Some(ea)).await;

    let of_a = audit_events(&app, &a, "").await;
    let of_b = audit_events(&app, &b, "").await;
    assert!(of_a.iter().any(|e| e["action"] == "employee.created"));
    let ids = |events: &[Value]| -> Vec<String> {
        events
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert!(ids(&of_a).iter().all(|id| !ids(&of_b).contains(id)));
    let text_of_b = serde_json::to_string(&of_b).unwrap();
    for secret in [
        a.company_id.to_string(),
        a.user_id.to_string(),
        ea.to_string(),
        a.email.clone(),
    ] {
        assert!(!text_of_b.contains(&secret), "B sees {secret}");
    }
    // Another company's trail is as missing as a company that does not exist; an employee
    // login may not read its own company's.
    let path = format!("/api/company/{}/audit", a.company_id);
    let theirs = app.get(&path, Some(&b.token)).await;
    theirs.assert_error(404, "not_found");
    let missing = app
        .get(
            &format!("/api/company/{}/audit", Uuid::new_v4()),
            Some(&b.token),
        )
        .await;
    assert_eq!(
        (theirs.status, &theirs.body),
        (missing.status, &missing.body)
    );
    app.get(&path, Some(&employee.token))
        .await
        .assert_error(403, "forbidden");
    app.get(&path, None).await.assert_status(401);
    // A superadmin reads any company's, and a missing company is 404 to it too.
    let root = app.superadmin().await;
    let resp = app.get(&path, Some(&root.token)).await;
    resp.assert_status(200);
    assert_eq!(resp.body["events"].as_array().unwrap().len(), of_a.len());
    let missing = app
        .get(
            &format!("/api/company/{}/audit", Uuid::new_v4()),
            Some(&root.token),
        )
        .await;
    missing.assert_error(404, "not_found");
}

#[tokio::test]
async fn pages_follow_each_other_without_gaps_or_duplicates() {
    let app = spawn_app().await;
    let admin = app.signup("Paged Trail").await;
    let id = uuid_of(&app.add_employee(&admin, "Much Edited").await);
    for n in 0..23 {
        app.put(
            &format!("/api/employees/{id}"),
            Some(&admin.token),
            json!({"job_title": format!("Title {n}")}),
        )
        .await
        .assert_status(200);
    }
    let path = format!("/api/company/{}/audit", admin.company_id);
    let whole = app
        .get(&format!("{path}?limit=200"), Some(&admin.token))
        .await;
    whole.assert_status(200);
    assert!(whole.body["next_cursor"].is_null());
    let whole = whole.body["events"].as_array().unwrap().clone();
    assert_eq!(whole.len(), 3 + 1 + 23);
    let keys: Vec<(String, String)> = whole
        .iter()
        .map(|e| {
            (
                e["occurred_at"].as_str().unwrap().to_owned(),
                e["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let times: Vec<chrono::DateTime<Utc>> = keys.iter().map(|(t, _)| t.parse().unwrap()).collect();
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {times:?}"
    );
    assert!(whole[0]["changes"]["job_title"]["after"] == "Title 22");

    // Pages of 4, while the trail keeps growing: the newer events are not part of this walk.
    let mut walked = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut page_path = format!("{path}?limit=4");
        if let Some(cursor) = &cursor {
            page_path.push_str(&format!("&cursor={cursor}"));
        }
        let page = app.get(&page_path, Some(&admin.token)).await;
        page.assert_status(200);
        let events = page.body["events"].as_array().unwrap();
        assert!(events.len() <= 4);
        walked.extend(events.iter().cloned());
        pages += 1;
        app.put(
            &format!("/api/employees/{id}"),
            Some(&admin.token),
            json!({"bio": format!("Page {pages}")}),
        )
        .await
        .assert_status(200);
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, whole.len().div_ceil(4));
    assert_eq!(walked, whole);
    // The default page is 50.
    let first = app.get(&path, Some(&admin.token)).await;
    assert_eq!(
        first.body["events"].as_array().unwrap().len(),
        whole.len() + pages
    );

    for (query, code) in [
        ("limit=0", "invalid_parameter"),
        ("limit=201", "invalid_parameter"),
        ("cursor=bm90IGEgY3Vyc29y", "invalid_cursor"),
        ("cursor=%21%21", "invalid_cursor"),
    ] {
        let resp = app
            .get(&format!("{path}?{query}"), Some(&admin.token))
            .await;
        assert_eq!(resp.status, 422, "{query}: {}", resp.body);
        if code == "invalid_cursor" {
            assert_eq!(resp.body["code"], code, "{query}: {}", resp.body);
        }
    }
}

#[tokio::test]
async fn filters_pick_by_actor_action_target_and_time() {
    let app = spawn_app().await;
    let admin = app.signup("Filtered Trail").await;
    let mine = uuid_of(&app.add_employee(&admin, "Linked Person").await);
    let other = uuid_of(&app.add_employee(&admin, "Other Person").await);
    let linked = app.add_user(&admin, "employee", Some(mine)).await;
    let before_edits = Utc::now();
    app.put(
        &format!("/api/employees/{mine}"),
        Some(&linked.token),
        json!({"bio": "Mine"}),
    )
    .await
    .assert_status(200);
    app.put(
        &format!("/api/employees/{other}"),
        Some(&admin.token),
        json!({"bio": "Theirs"}),
    )
    .await
    .assert_status(200);

    let by_linked = audit_events(&app, &admin, &format!("actor={}", linked.user_id)).await;
    let actions: Vec<&str> = by_linked
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    // Its login (when the helper logged it in) and its edit.
    assert_eq!(actions, ["employee.updated", "auth.login"]);
    assert_actor(&by_linked[0], &linked, "employee");
    assert_target(&by_linked[0], "employee", mine);

    let updates = audit_events(&app, &admin, "action=employee.updated").await;
    assert_eq!(updates.len(), 2);
    let employees = audit_events(&app, &admin, "action=employee.*").await;
    assert_eq!(employees.len(), 4);
    assert!(
        employees
            .iter()
            .all(|e| e["action"].as_str().unwrap().starts_with("employee."))
    );
    assert!(
        audit_events(&app, &admin, "action=employee.update")
            .await
            .is_empty()
    );
    let of_other = audit_events(
        &app,
        &admin,
        &format!("target_type=employee&target_id={other}"),
    )
    .await;
    let actions: Vec<&str> = of_other
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["employee.updated", "employee.created"]);
    // Combined: every filter holds.
    let both = audit_events(
        &app,
        &admin,
        &format!(
            "action=employee.*&actor={}&target_id={other}",
            admin.user_id
        ),
    )
    .await;
    assert_eq!(both.len(), 2);

    let from = before_edits.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let since = audit_events(&app, &admin, &format!("from={}", urlencode(&from))).await;
    assert_eq!(since.len(), 2, "{since:#?}");
    let until = audit_events(&app, &admin, &format!("to={}", urlencode(&from))).await;
    let all = audit_events(&app, &admin, "").await;
    assert_eq!(since.len() + until.len(), all.len());
    let tomorrow = (Utc::now() + Duration::days(1)).date_naive();
    assert!(
        audit_events(&app, &admin, &format!("from={tomorrow}"))
            .await
            .is_empty()
    );
    assert_eq!(
        audit_events(&app, &admin, &format!("to={tomorrow}"))
            .await
            .len(),
        all.len()
    );

    let path = format!("/api/company/{}/audit", admin.company_id);
    for query in [
        "action=Employee.updated",
        "action=employee",
        "action=employee.",
        "action=*",
        "action=employee.%25",
        "target_type=employee.photo",
        "target_type=",
        "actor=someone",
        "target_id=42",
        "from=yesterday",
        "to=2026-13-01",
    ] {
        let resp = app
            .get(&format!("{path}?{query}"), Some(&admin.token))
            .await;
        assert_eq!(resp.status, 422, "{query}: {}", resp.body);
        assert!(
            resp.body["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{query}: {}",
            resp.body
        );
    }
}

fn urlencode(text: &str) -> String {
    text.replace('+', "%2B").replace(':', "%3A")
}

/// One event of `company` as old as `days`, written below the API.
async fn old_event(owner: &tokio_postgres::Client, company: Uuid, days: i32) -> Uuid {
    owner
        .query_one(
            "INSERT INTO audit_events (company_id, occurred_at, action, target_type, target_id, outcome)
             VALUES ($1, now() - make_interval(days => $2), 'company.updated', 'company', $1, 'success')
             RETURNING id",
            &[&company, &days],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn retention_deletes_only_events_past_it() {
    let dbname = fresh_database().await;
    let owner = connect(&superuser_url(&dbname)).await;
    let company = Uuid::new_v4();
    owner
        .execute(
            "INSERT INTO companies (id, name, slug) VALUES ($1, 'Old Trail', 'old-trail')",
            &[&company],
        )
        .await
        .unwrap();
    let (ancient, old, recent) = (
        old_event(&owner, company, 400).await,
        old_event(&owner, company, 100).await,
        old_event(&owner, company, 10).await,
    );
    let exists = async |id: Uuid| -> bool {
        owner
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM audit_events WHERE id = $1)",
                &[&id],
            )
            .await
            .unwrap()
            .get(0)
    };

    // The job runs at start-up, then hourly.
    let app = spawn_app_on(&dbname, &[("AUDIT_RETENTION_DAYS", "90")]).await;
    wait_for("the retention job", async || {
        !exists(ancient).await && !exists(old).await
    })
    .await;
    assert!(exists(recent).await, "a recent event went too");

    // Asked for less than 30 days, the database keeps 30.
    let young = old_event(&owner, company, 31).await;
    let purged = app
        .db
        .write(&Tenant::maintenance(), async |tx| {
            audit::purge_expired(&tx, 1).await
        })
        .await
        .unwrap();
    assert_eq!(purged, 1);
    assert!(!exists(young).await);
    assert!(exists(recent).await, "retention below 30 days");
}
