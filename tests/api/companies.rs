//! Companies, branding, plans, and what superadmins may do.

use crate::helpers::{self, spawn_app};
use serde_json::json;
use uuid::Uuid;

#[tokio::test]
async fn admins_update_branding_with_validation() {
    let app = spawn_app().await;
    let admin = app.signup("Brand Co").await;
    let path = format!("/api/company/{}", admin.company_id);
    let updated = app
        .put(&path, Some(&admin.token), json!({"name": "Brand Co Ltd", "brand_color": "#1A2B3C", "domain": "Brand.Example", "logo_url": "https://brand.example/logo.png"}))
        .await;
    updated.assert_status(200);
    assert_eq!(updated.body["name"], "Brand Co Ltd");
    assert_eq!(updated.body["brand_color"], "#1a2b3c");
    assert_eq!(updated.body["domain"], "brand.example");
    // Renaming keeps the slug: printed QR codes keep working.
    assert_eq!(updated.body["slug"], "brand-co");

    for bad in [
        json!({"brand_color": "blue"}),
        json!({"brand_color": "#12345"}),
        json!({"brand_color": "#abcdefg"}),
        json!({"domain": "not a domain"}),
        json!({"logo_url": "ftp://brand.example/logo.png"}),
        json!({"name": ""}),
        json!({"name": "n".repeat(201)}),
        json!({"slug": "new-slug"}),
    ] {
        app.put(&path, Some(&admin.token), bad)
            .await
            .assert_error(422, "validation_error");
    }
    let short = app
        .put(
            &path,
            Some(&admin.token),
            json!({"brand_color": "#abc", "logo_url": null}),
        )
        .await;
    short.assert_status(200);
    assert_eq!(short.body["brand_color"], "#abc");
    assert_eq!(short.body["logo_url"], serde_json::Value::Null);
    assert_eq!(short.body["domain"], "brand.example");
    let got = app.get(&path, Some(&admin.token)).await;
    assert_eq!(got.body, short.body);
}

#[tokio::test]
async fn superadmins_create_list_and_change_plans() {
    let app = spawn_app().await;
    let root = app.superadmin().await;
    let admin = app.signup("Tenant One").await;

    let created = app
        .post(
            "/api/company",
            Some(&root.token),
            json!({"name": "Made By Root", "brand_color": "#000", "plan": "enterprise"}),
        )
        .await;
    created.assert_status(201);
    assert_eq!(created.body["slug"], "made-by-root");
    let new_id: Uuid = created.body["id"].as_str().unwrap().parse().unwrap();
    app.post("/api/company", Some(&admin.token), json!({"name": "Nope"}))
        .await
        .assert_error(403, "forbidden");
    app.post(
        "/api/company",
        Some(&root.token),
        json!({"name": "Bad", "brand_color": "nope"}),
    )
    .await
    .assert_error(422, "validation_error");

    // The superadmin sees all three companies (platform, tenant, created); a tenant sees itself.
    let all = app.get("/api/company?limit=2", Some(&root.token)).await;
    all.assert_status(200);
    assert_eq!(all.headers["x-total-count"], "3");
    assert_eq!(all.body.as_array().unwrap().len(), 2);
    let own = app.get("/api/company", Some(&admin.token)).await;
    assert_eq!(own.headers["x-total-count"], "1");
    assert_eq!(own.body[0]["id"], admin.company_id.to_string());

    // The superadmin works inside another company explicitly.
    let employee = app
        .post(
            &format!("/api/company/{new_id}/employees"),
            Some(&root.token),
            json!({"full_name": "Rooted"}),
        )
        .await;
    employee.assert_status(201);
    let employee_id = employee.body["id"].as_str().unwrap();
    app.get(&format!("/api/employees/{employee_id}"), Some(&root.token))
        .await
        .assert_status(200);
    app.put(
        &format!("/api/employees/{employee_id}"),
        Some(&root.token),
        json!({"job_title": "Root-made"}),
    )
    .await
    .assert_status(200);
    app.get(&format!("/api/employees/{employee_id}"), Some(&admin.token))
        .await
        .assert_error(404, "not_found");

    let sub = app
        .put(
            &format!("/api/company/{}/subscription", admin.company_id),
            Some(&root.token),
            json!({"plan": "professional"}),
        )
        .await;
    sub.assert_status(200);
    assert_eq!(sub.body["plan"], "professional");
    assert_eq!(sub.body["active"], true);
    app.put(
        &format!("/api/company/{}/subscription", admin.company_id),
        Some(&root.token),
        json!({"plan": "platinum"}),
    )
    .await
    .assert_error(422, "validation_error");
    app.put(
        &format!("/api/company/{}/subscription", Uuid::new_v4()),
        Some(&root.token),
        json!({"plan": "free"}),
    )
    .await
    .assert_error(404, "not_found");
    app.put(
        &format!("/api/company/{}/subscription", admin.company_id),
        Some(&admin.token),
        json!({"plan": "enterprise"}),
    )
    .await
    .assert_error(403, "forbidden");
    // History is kept: one ended, one active.
    let owner = helpers::connect(&helpers::superuser_url(&app.dbname)).await;
    let rows = owner
        .query("SELECT plan, active, ended_at IS NOT NULL FROM subscriptions WHERE company_id = $1 ORDER BY started_at", &[&admin.company_id])
        .await
        .unwrap();
    let history: Vec<(String, bool, bool)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        history,
        [
            ("free".into(), false, true),
            ("professional".into(), true, false)
        ]
    );
}

#[tokio::test]
async fn plans_are_public() {
    let app = spawn_app().await;
    let plans = app.get("/api/subscriptions/plans", None).await;
    plans.assert_status(200);
    assert_eq!(
        plans.body,
        json!([
            {"plan": "free", "title": "Free", "employee_limit": 2},
            {"plan": "professional", "title": "Professional", "employee_limit": 50},
            {"plan": "enterprise", "title": "Enterprise", "employee_limit": null},
        ])
    );
}
