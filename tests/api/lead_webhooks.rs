//! Leads reach the company's CRM: `lead.created` delivered signed to a real receiver on
//! loopback, with the lead as the members' API shows it; erasing the lead drops its deliveries
//! not yet sent.

use serde_json::json;

use crate::helpers::{company_with_card, free_port, scalar, spawn_app_with, superuser};
use crate::leads::{NO_MIN_FILL, leave};
use crate::webhooks::{ALLOW_LOOPBACK, Receiver, add_webhook, wait_for_deliveries};

#[tokio::test]
async fn a_new_lead_is_delivered_to_the_webhooks_listening_for_it() {
    let app = spawn_app_with(&[ALLOW_LOOPBACK, NO_MIN_FILL]).await;
    let (admin, card) = company_with_card(&app, "Lead Hooks Co").await;
    let receiver = Receiver::start().await;
    let (webhook, secret) = add_webhook(&app, &admin, &receiver.url(), &["lead.created"]).await;
    // Another endpoint, for employee events only, hears nothing of the lead.
    let (other, _) = add_webhook(&app, &admin, &receiver.url(), &["employee.deleted"]).await;

    let resp = leave(
        &app,
        &card,
        json!({"name": "Vera Visitor", "email": "vera@example.com", "company": "Acme",
               "note": "Call me"}),
    )
    .await;
    resp.assert_status(201);
    let lead_id = resp.body["id"].as_str().unwrap().to_owned();

    let received = receiver.wait_for(1).await;
    let got = &received[0];
    got.assert_signed_with(&secret);
    assert_eq!(got.event, "lead.created");
    let body = got.json();
    assert_eq!(body["type"], "lead.created");
    assert_eq!(body["data"]["id"], lead_id.as_str());
    assert_eq!(body["data"]["name"], "Vera Visitor");
    assert_eq!(body["data"]["email"], "vera@example.com");
    assert_eq!(body["data"]["company"], "Acme");
    assert_eq!(body["data"]["note"], "Call me");
    assert_eq!(body["data"]["employee_id"], card.employee_id.to_string());
    assert_eq!(body["data"]["company_id"], admin.company_id.to_string());
    wait_for_deliveries(&app, &admin, webhook, "the lead delivered", |d| {
        d.len() == 1 && d[0]["state"] == "delivered"
    })
    .await;
    let db = superuser(&app).await;
    let to_other = scalar(
        &db,
        "SELECT count(*) FROM webhook_deliveries WHERE webhook_id = $1",
        &[&other],
    )
    .await;
    assert_eq!(to_other, 0);
}

#[tokio::test]
async fn erasing_a_lead_drops_its_deliveries_not_yet_sent() {
    // Retries an hour apart: the delivery stays pending after its first failure.
    let app = spawn_app_with(&[ALLOW_LOOPBACK, NO_MIN_FILL, ("WEBHOOK_RETRY_BASE", "1h")]).await;
    let (admin, card) = company_with_card(&app, "Erasing Hooks Co").await;
    let url = format!("http://127.0.0.1:{}/hooks/in", free_port());
    let (webhook, _) = add_webhook(&app, &admin, &url, &["lead.created"]).await;
    let resp = leave(
        &app,
        &card,
        json!({"name": "Gone Soon", "email": "gone@example.com"}),
    )
    .await;
    resp.assert_status(201);
    let lead_id = resp.body["id"].as_str().unwrap().to_owned();
    wait_for_deliveries(&app, &admin, webhook, "a failed first attempt", |d| {
        d.len() == 1
            && d[0]["state"] == "pending"
            && !d[0]["attempts"].as_array().unwrap().is_empty()
    })
    .await;

    app.delete(&format!("/api/leads/{lead_id}"), Some(&admin.token))
        .await
        .assert_status(204);
    let db = superuser(&app).await;
    let kept = scalar(
        &db,
        "SELECT count(*) FROM webhook_deliveries WHERE subject_id = $1::text::uuid
            OR payload::text LIKE '%gone@example.com%'",
        &[&lead_id],
    )
    .await;
    assert_eq!(kept, 0);
}
