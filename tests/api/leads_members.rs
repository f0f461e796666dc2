//! Leads for the company's members: an employee sees only their own card's, erasure takes the
//! lead's messages with it, the CSV export, a lead as a vCard, and retention.

use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{
    Card, SmtpServer, audit_events, company_with_card, scalar, spawn_app_with_smtp, superuser,
    wait_for,
};
use crate::leads::{NO_MIN_FILL, app, leave, list, names, set_company};
use callingcard::{db::Tenant, model::lead};

#[tokio::test]
async fn an_employee_sees_only_the_leads_of_their_own_card() {
    let app = app().await;
    let (admin, own) = company_with_card(&app, "Acme Mine").await;
    let theirs = Card::of(&app.add_employee(&admin, "Someone Else").await);
    let employee = app
        .add_user(&admin, "employee", Some(own.employee_id))
        .await;
    let unlinked = app.add_user(&admin, "employee", None).await;
    let mine = leave(&app, &own, json!({"name": "Mine", "email": "m@v.example"}))
        .await
        .id();
    let other = leave(
        &app,
        &theirs,
        json!({"name": "Theirs", "email": "t@v.example"}),
    )
    .await
    .id();

    assert_eq!(names(&list(&app, &admin, "").await), ["Theirs", "Mine"]);
    assert_eq!(names(&list(&app, &employee, "").await), ["Mine"]);
    assert!(names(&list(&app, &unlinked, "").await).is_empty());
    app.get(&format!("/api/leads/{mine}"), Some(&employee.token))
        .await
        .assert_status(200);
    app.get(&format!("/api/leads/{other}"), Some(&employee.token))
        .await
        .assert_error(404, "not_found");
    app.get(&format!("/api/leads/{other}/vcard"), Some(&employee.token))
        .await
        .assert_error(404, "not_found");
    let csv = app
        .get(
            &format!("/api/company/{}/leads/export.csv", admin.company_id),
            Some(&employee.token),
        )
        .await;
    let csv = csv.body.as_str().unwrap();
    assert!(csv.contains("Mine") && !csv.contains("Theirs"), "{csv}");
    // Seeing is not erasing: that is the admins'.
    app.delete(&format!("/api/leads/{mine}"), Some(&employee.token))
        .await
        .assert_error(403, "forbidden");

    // Search, time bounds and pages.
    assert_eq!(names(&list(&app, &admin, "?q=THEIR").await), ["Theirs"]);
    assert_eq!(
        names(&list(&app, &admin, "?q=t%40v.example").await),
        ["Theirs"]
    );
    assert!(names(&list(&app, &admin, "?q=%25%25").await).is_empty());
    assert!(names(&list(&app, &admin, "?to=2000-01-01").await).is_empty());
    assert_eq!(
        list(&app, &admin, "?from=2000-01-01").await["leads"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let first = list(&app, &admin, "?limit=1").await;
    assert_eq!(names(&first), ["Theirs"]);
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    let second = list(&app, &admin, &format!("?limit=1&cursor={cursor}")).await;
    assert_eq!(names(&second), ["Mine"]);
    assert_eq!(second["next_cursor"], Value::Null);
    app.get(
        &format!("/api/company/{}/leads?cursor=nonsense", admin.company_id),
        Some(&admin.token),
    )
    .await
    .assert_error(422, "invalid_cursor");

    // The employee leaves: the lead stays the company's, unlinked, seen by admins only.
    app.delete(&own.employee(), Some(&admin.token))
        .await
        .assert_status(204);
    let kept = app
        .get(&format!("/api/leads/{mine}"), Some(&admin.token))
        .await;
    kept.assert_status(200);
    assert_eq!(kept.body["employee_id"], Value::Null);
    assert_eq!(kept.body["employee_name"], "Jane Card");
}

#[tokio::test]
async fn erasure_removes_the_lead_and_its_unsent_messages() {
    // The mail server is down: the lead's emails wait in the outbox.
    let smtp = SmtpServer::stopped(crate::helpers::free_port());
    let app = spawn_app_with_smtp(&smtp, &[NO_MIN_FILL]).await;
    let (admin, card) = company_with_card(&app, "Acme Erasure").await;
    let kept = leave(
        &app,
        &card,
        json!({"name": "Kept", "email": "kept@v.example"}),
    )
    .await
    .id();
    let gone = leave(
        &app,
        &card,
        json!({"name": "Gone", "email": "gone@v.example", "send_vcard": true}),
    )
    .await
    .id();
    let owner = superuser(&app).await;
    let about = async |id: Uuid| {
        scalar(
            &owner,
            "SELECT count(*) FROM outbox WHERE payload->>'lead_id' = $1",
            &[&id.to_string()],
        )
        .await
    };
    assert_eq!(
        about(gone).await,
        2,
        "the employee's email and the visitor's card"
    );
    assert_eq!(about(kept).await, 1);

    app.delete(&format!("/api/leads/{gone}"), Some(&admin.token))
        .await
        .assert_status(204);
    app.get(&format!("/api/leads/{gone}"), Some(&admin.token))
        .await
        .assert_error(404, "not_found");
    app.delete(&format!("/api/leads/{gone}"), Some(&admin.token))
        .await
        .assert_error(404, "not_found");
    assert_eq!(about(gone).await, 0, "its messages went with it");
    assert_eq!(about(kept).await, 1, "another lead's stayed");
    let mentions = scalar(
        &owner,
        "SELECT count(*) FROM outbox WHERE payload::text LIKE '%gone@v.example%'",
        &[],
    )
    .await;
    assert_eq!(mentions, 0);
    let events = audit_events(&app, &admin, "action=lead.erased").await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["target"]["id"], gone.to_string());
    assert!(!events[0].to_string().contains("gone@v.example"));
}

#[tokio::test]
async fn the_export_is_csv_with_formulas_defused() {
    let app = app().await;
    let (admin, card) = company_with_card(&app, "Acme Export").await;
    leave(
        &app,
        &card,
        json!({"name": "=HYPERLINK(\"http://evil.example\")", "email": "x@v.example",
               "note": "line one\nline, two"}),
    )
    .await
    .assert_status(201);
    let resp = app
        .client
        .get(format!(
            "{}/api/company/{}/leads/export.csv",
            app.address, admin.company_id
        ))
        .bearer_auth(&admin.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let csv = resp.text().await.unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        "created_at,lead_id,employee_id,employee_name,name,email,phone,company,job_title,note,\
         consent_given,consent_text,vcard_requested"
    );
    assert!(
        csv.contains("\"'=HYPERLINK(\"\"http://evil.example\"\")\""),
        "{csv}"
    );
    assert!(csv.contains("\"line one\nline, two\""), "{csv}");
    app.get(
        &format!(
            "/api/company/{}/leads/export.csv?from=2030-01-01&to=2020-01-01",
            admin.company_id
        ),
        Some(&admin.token),
    )
    .await
    .assert_status(422);
}

#[tokio::test]
async fn a_lead_as_a_vcard() {
    let app = app().await;
    let (admin, card) = company_with_card(&app, "Acme vCard").await;
    let id = leave(
        &app,
        &card,
        json!({"name": "Ada Lovelace", "email": "ada@v.example", "phone": "+44 20 7946 0000",
               "company": "Engines; Ltd", "job_title": "Analyst"}),
    )
    .await
    .id();
    let resp = app
        .client
        .get(format!("{}/api/leads/{id}/vcard", app.address))
        .bearer_auth(&admin.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains(".vcf")
    );
    let text = resp.text().await.unwrap();
    for line in [
        "BEGIN:VCARD",
        "FN:Ada Lovelace",
        "N:Lovelace;Ada;;;",
        "ORG:Engines\\; Ltd",
        "TITLE:Analyst",
        "EMAIL;TYPE=INTERNET,WORK:ada@v.example",
        &format!("UID:urn:uuid:{id}"),
    ] {
        assert!(text.contains(line), "{line} missing: {text}");
    }
    assert!(!text.contains("URL"), "{text}");
}

#[tokio::test]
async fn retention_erases_leads_older_than_the_company_keeps_them() {
    let app = app().await;
    let (admin, card) = company_with_card(&app, "Acme Retention").await;
    let (_other_admin, other_card) = company_with_card(&app, "Acme Forever").await;
    let old = leave(
        &app,
        &card,
        json!({"name": "Old", "email": "old@v.example"}),
    )
    .await
    .id();
    let recent = leave(
        &app,
        &card,
        json!({"name": "Recent", "email": "r@v.example"}),
    )
    .await
    .id();
    let forever = leave(
        &app,
        &other_card,
        json!({"name": "Kept", "email": "k@v.example"}),
    )
    .await
    .id();
    let owner = superuser(&app).await;
    owner
        .execute(
            "UPDATE leads SET created_at = now() - interval '40 days' WHERE id = ANY($1)",
            &[&vec![old, forever]],
        )
        .await
        .unwrap();
    set_company(&app, &admin, json!({"lead_retention_days": 30}))
        .await
        .assert_status(200);

    let purged = app
        .db
        .write(&Tenant::maintenance(), async |tx| {
            lead::purge_expired(&tx).await
        })
        .await
        .unwrap();
    assert_eq!(purged, 1);
    let exists = async |id: Uuid| {
        scalar(&owner, "SELECT count(*) FROM leads WHERE id = $1", &[&id]).await == 1
    };
    assert!(!exists(old).await, "past retention");
    assert!(exists(recent).await, "within retention");
    assert!(
        exists(forever).await,
        "a company without retention keeps its leads"
    );
    let messages = scalar(
        &owner,
        "SELECT count(*) FROM outbox WHERE payload->>'lead_id' = $1",
        &[&old.to_string()],
    )
    .await;
    assert_eq!(messages, 0, "its messages went too");
}

#[tokio::test]
async fn the_retention_job_runs_at_start_up() {
    let app = app().await;
    let (admin, card) = company_with_card(&app, "Acme Job").await;
    let old = leave(
        &app,
        &card,
        json!({"name": "Old", "email": "old@v.example"}),
    )
    .await
    .id();
    set_company(&app, &admin, json!({"lead_retention_days": 1}))
        .await
        .assert_status(200);
    let owner = superuser(&app).await;
    owner
        .execute(
            "UPDATE leads SET created_at = now() - interval '2 days' WHERE id = $1",
            &[&old],
        )
        .await
        .unwrap();
    // Another instance starts on the same database: its job runs at once.
    let _second = crate::helpers::spawn_app_on(&app.dbname, &[NO_MIN_FILL]).await;
    wait_for("the lead retention job", async || {
        scalar(&owner, "SELECT count(*) FROM leads WHERE id = $1", &[&old]).await == 0
    })
    .await;
}
