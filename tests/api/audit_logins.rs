//! The audit trail of login attempts: a wrong password, a disabled login and a throttled
//! attempt are events of the account's company, with no actor; an email of no account is only
//! counted; a flood of throttled attempts is recorded once a minute per address.

use serde_json::json;
use uuid::Uuid;

use crate::audit::{assert_plain, assert_target};
use crate::helpers::{ADMIN_PASSWORD, audit_events, spawn_app_on, spawn_app_with, superuser};

#[tokio::test]
async fn login_attempts_are_recorded_in_the_accounts_company() {
    // Two failures a minute per address: the third attempt is throttled.
    let app = spawn_app_with(&[("AUTH_ADDRESS_FAILURES_PER_MINUTE", "2")]).await;
    let admin = app.signup("Guarded Logins").await;
    let owner = superuser(&app).await;
    let login = async |email: &str, password: &str| {
        app.client
            .post(format!("{}/api/auth/login", app.address))
            .header("user-agent", "AuditTest/1.0")
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    let typed = "wrong-but-plausible-42";
    assert_eq!(login(&admin.email, typed).await, 401);
    // An email of no account: counted, never stored.
    let stranger = format!("nobody-{}@example.com", Uuid::new_v4().simple());
    assert_eq!(login(&stranger, typed).await, 401);
    assert_eq!(login(&admin.email, typed).await, 429);
    assert_eq!(login(&admin.email, typed).await, 429);

    let events = audit_events(&app, &admin, "action=auth.*").await;
    let summary: Vec<(&str, &str)> = events
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap(),
                e["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    // One throttled attempt recorded a minute per address: the second is only refused.
    assert_eq!(
        summary,
        [
            ("auth.login_throttled", "denied"),
            ("auth.login_failed", "failure"),
            ("auth.login", "success"),
        ]
    );
    for event in &events[..2] {
        assert!(
            event["actor"].is_null(),
            "nobody proved who they are: {event}"
        );
        assert_target(event, "user", admin.user_id);
        assert_eq!(event["user_agent"], "AuditTest/1.0");
        assert_eq!(event["changes"], json!({}));
    }
    assert_plain(&events, &[typed]);
    let stored: i64 = owner
        .query_one(
            "SELECT count(*) FROM audit_events WHERE changes::text LIKE $1 OR user_agent LIKE $1",
            &[&format!("%{}%", &stranger[..10])],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, 0);
    let counted: i64 = owner
        .query_one(
            "SELECT coalesce(sum(attempts), 0)::bigint FROM audit_unknown_logins WHERE action = 'auth.login_failed'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(counted, 1);
    let mentions: i64 = owner
        .query_one(
            "SELECT count(*) FROM audit_unknown_logins t WHERE t::text LIKE '%nobody%'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(mentions, 0);

    // A disabled login with the right password: denied.
    let other = spawn_app_on(&app.dbname, &[]).await;
    owner
        .execute(
            "UPDATE users SET is_active = false WHERE id = $1",
            &[&admin.user_id],
        )
        .await
        .unwrap();
    let resp = other
        .post(
            "/api/auth/login",
            None,
            json!({"email": admin.email, "password": ADMIN_PASSWORD}),
        )
        .await;
    resp.assert_error(403, "account_disabled");
    owner
        .execute(
            "UPDATE users SET is_active = true WHERE id = $1",
            &[&admin.user_id],
        )
        .await
        .unwrap();
    let events = audit_events(&other, &admin, "action=auth.login_failed").await;
    assert_eq!(events[0]["outcome"], "denied", "{events:#?}");
    assert_target(&events[0], "user", admin.user_id);
}
