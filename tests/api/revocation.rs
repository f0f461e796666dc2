//! Revocation takes effect at once, on every instance: two instances of the service on one
//! database, a session ended through one (or a login changed in the database itself) and the
//! very next request with the old access token on the other is refused. Nothing is cached per
//! instance: every transaction of a signed-in caller checks its session in the statement that
//! sets its tenant.

use crate::helpers::{
    self, ADMIN_PASSWORD, DESKTOP, IPHONE, TEAMMATE_PASSWORD, TestApp, Tokens, spawn_app,
    spawn_app_on, spawn_app_with, superuser,
};
use serde_json::{Value, json};
use uuid::Uuid;

/// Instance A and instance B, on one database.
async fn two_instances() -> (TestApp, TestApp) {
    let a = spawn_app().await;
    let b = spawn_app_on(&a.dbname, &[]).await;
    (a, b)
}

/// Status and `code` of a read (`GET /api/company/{id}`) and a write (`PUT /api/company/{id}`)
/// with `access` on `app`.
async fn read_and_write(app: &TestApp, tokens: &Tokens) -> [(u16, Value); 2] {
    let path = format!("/api/company/{}", tokens.company_id);
    let read = app.get(&path, Some(&tokens.access)).await;
    let write = app
        .put(
            &path,
            Some(&tokens.access),
            json!({"brand_color": "#224466"}),
        )
        .await;
    [
        (read.status.as_u16(), read.body["code"].clone()),
        (write.status.as_u16(), write.body["code"].clone()),
    ]
}

#[track_caller]
fn assert_works(seen: [(u16, Value); 2], context: &str) {
    assert_eq!([seen[0].0, seen[1].0], [200, 200], "{context}: {seen:?}");
}

#[track_caller]
fn assert_refused(seen: [(u16, Value); 2], code: &str, context: &str) {
    let refused = (401, json!(code));
    assert_eq!(seen, [refused.clone(), refused], "{context}");
}

#[tokio::test]
async fn a_logout_on_one_instance_refuses_the_token_on_the_other() {
    let (a, b) = two_instances().await;
    let (email, session) = a.signup_tokens("Logout Across Co").await;
    let other = b.login_tokens(&email, ADMIN_PASSWORD, IPHONE).await;
    assert_works(read_and_write(&b, &session).await, "before the logout");
    a.post("/api/auth/logout", Some(&session.access), json!({}))
        .await
        .assert_status(204);
    assert_refused(
        read_and_write(&b, &session).await,
        "session_ended",
        "B, after a logout on A",
    );
    b.refresh(&session.refresh)
        .await
        .assert_error(401, "session_ended");
    assert_works(
        read_and_write(&b, &other).await,
        "the login's other session",
    );
}

#[tokio::test]
async fn a_logout_everywhere_on_one_instance_refuses_every_token_on_the_other() {
    let (a, b) = two_instances().await;
    let (email, first) = a.signup_tokens("Everywhere Co").await;
    let second = b.login_tokens(&email, ADMIN_PASSWORD, IPHONE).await;
    let (_, stranger) = b.signup_tokens("Bystander Co").await;
    a.post("/api/auth/logout-all", Some(&first.access), json!({}))
        .await
        .assert_status(204);
    for (tokens, which) in [(&first, "the caller's session"), (&second, "its other one")] {
        assert_refused(read_and_write(&b, tokens).await, "session_ended", which);
        b.refresh(&tokens.refresh)
            .await
            .assert_error(401, "session_ended");
    }
    assert_works(read_and_write(&b, &stranger).await, "another login");
}

#[tokio::test]
async fn a_session_deleted_on_one_instance_is_refused_on_the_other() {
    let (a, b) = two_instances().await;
    let (email, laptop) = a.signup_tokens("Lost Phone Co").await;
    let phone = b.login_tokens(&email, ADMIN_PASSWORD, IPHONE).await;
    a.delete(
        &format!("/api/auth/sessions/{}", phone.session_id),
        Some(&laptop.access),
    )
    .await
    .assert_status(204);
    assert_refused(
        read_and_write(&b, &phone).await,
        "session_ended",
        "the deleted session, on B",
    );
    assert_works(
        read_and_write(&b, &laptop).await,
        "the session that deleted it",
    );
}

#[tokio::test]
async fn a_password_changed_on_one_instance_ends_the_other_sessions_on_the_other() {
    let (a, b) = two_instances().await;
    let (email, here) = a.signup_tokens("Password Across Co").await;
    let thief = b.login_tokens(&email, ADMIN_PASSWORD, DESKTOP).await;
    a.post(
        "/api/auth/change-password",
        Some(&here.access),
        json!({"current_password": ADMIN_PASSWORD, "new_password": "copper-tundra-violin-26"}),
    )
    .await
    .assert_status(204);
    assert_refused(
        read_and_write(&b, &thief).await,
        "session_ended",
        "another session, on B",
    );
    b.refresh(&thief.refresh)
        .await
        .assert_error(401, "session_ended");
    assert_works(
        read_and_write(&b, &here).await,
        "the session that changed it, on B",
    );
}

#[tokio::test]
async fn a_login_disabled_in_the_database_is_refused_at_once_everywhere() {
    let (a, b) = two_instances().await;
    let (_, session) = a.signup_tokens("Disabled Across Co").await;
    assert_works(read_and_write(&b, &session).await, "before");
    superuser(&a)
        .await
        .execute(
            "UPDATE users SET is_active = false WHERE id = $1",
            &[&session.user_id],
        )
        .await
        .unwrap();
    for (app, which) in [(&a, "A"), (&b, "B")] {
        assert_refused(read_and_write(app, &session).await, "session_ended", which);
    }
    a.refresh(&session.refresh)
        .await
        .assert_error(401, "session_ended");
}

#[tokio::test]
async fn a_login_deleted_in_the_database_is_refused_at_once_everywhere() {
    let (a, b) = two_instances().await;
    let (_, admin) = a.signup_tokens("Deleted Across Co").await;
    let admin_session = helpers::Session {
        token: admin.access.clone(),
        user_id: admin.user_id,
        company_id: admin.company_id,
        email: String::new(),
    };
    let teammate = a.add_user(&admin_session, "employee", None).await;
    let teammate = Tokens {
        access: teammate.token.clone(),
        refresh: String::new(),
        session_id: helpers::session_id_of(&teammate.token),
        user_id: teammate.user_id,
        company_id: teammate.company_id,
    };
    let me = b.get("/api/auth/me", Some(&teammate.access)).await;
    me.assert_status(200);
    superuser(&a)
        .await
        .execute("DELETE FROM users WHERE id = $1", &[&teammate.user_id])
        .await
        .unwrap();
    b.get("/api/auth/me", Some(&teammate.access))
        .await
        .assert_error(401, "session_ended");
    b.get(
        &format!("/api/company/{}/employees", teammate.company_id),
        Some(&teammate.access),
    )
    .await
    .assert_error(401, "session_ended");
}

/// Logins of `company_id` with `email`, counted as the superuser.
async fn logins_with_email(app: &TestApp, company_id: Uuid, email: &str) -> i64 {
    helpers::scalar(
        &superuser(app).await,
        "SELECT count(*) FROM users WHERE company_id = $1 AND email = $2",
        &[&company_id, &email],
    )
    .await
}

#[tokio::test]
async fn a_demoted_admins_old_token_can_no_longer_create_admins() {
    let (a, b) = two_instances().await;
    let owner = a.signup("Demotion Co").await;
    let email = format!("deputy-{}@example.com", Uuid::new_v4().simple());
    a.post(
        &format!("/api/company/{}/users", owner.company_id),
        Some(&owner.token),
        json!({"email": email, "password": TEAMMATE_PASSWORD, "full_name": "Deputy",
               "role": "admin"}),
    )
    .await
    .assert_status(201);
    let deputy = a.login_tokens(&email, TEAMMATE_PASSWORD, DESKTOP).await;
    // Demoted behind the service's back, as the teammates endpoint will (it also ends sessions).
    superuser(&a)
        .await
        .execute(
            "UPDATE users SET role = 'employee' WHERE id = $1",
            &[&deputy.user_id],
        )
        .await
        .unwrap();
    let new_admin = |n: &str| {
        json!({"email": format!("{n}@example.com"), "password": TEAMMATE_PASSWORD,
               "full_name": "Would Be Admin", "role": "admin"})
    };
    let path = format!("/api/company/{}/users", deputy.company_id);
    // The token still says `admin`; the database no longer does: 401, refresh for the new role.
    b.post(&path, Some(&deputy.access), new_admin("sneaky"))
        .await
        .assert_error(401, "token_outdated");
    assert_eq!(
        logins_with_email(&a, deputy.company_id, "sneaky@example.com").await,
        0
    );
    let refreshed = b.refresh(&deputy.refresh).await;
    refreshed.assert_status(200);
    assert_eq!(refreshed.body["role"], "employee");
    let demoted = Tokens::of(&refreshed);
    a.post(&path, Some(&demoted.access), new_admin("sneakier"))
        .await
        .assert_error(403, "forbidden");
    assert_eq!(
        logins_with_email(&a, deputy.company_id, "sneakier@example.com").await,
        0
    );
    // What an employee may do, it still may.
    a.get(
        &format!("/api/company/{}/employees", demoted.company_id),
        Some(&demoted.access),
    )
    .await
    .assert_status(200);
}

#[tokio::test]
async fn a_superadmin_entering_another_company_is_checked_by_its_own_session() {
    let (a, b) = two_instances().await;
    let root = a.superadmin().await;
    let customer = a.signup("Entered Co").await;
    let company = format!("/api/company/{}", customer.company_id);
    b.get(&company, Some(&root.token)).await.assert_status(200);
    a.post("/api/auth/logout", Some(&root.token), json!({}))
        .await
        .assert_status(204);
    b.get(&company, Some(&root.token))
        .await
        .assert_error(401, "session_ended");
    b.put(
        &format!("{company}/subscription"),
        Some(&root.token),
        json!({"plan": "enterprise"}),
    )
    .await
    .assert_error(401, "session_ended");
    b.get(&format!("{company}/employees"), Some(&root.token))
        .await
        .assert_error(401, "session_ended");
    // The company it entered is untouched, and its admin goes on.
    b.get(&company, Some(&customer.token))
        .await
        .assert_status(200);
}

/// The backends of the service role on `app`'s database.
async fn app_backends(app: &TestApp) -> Vec<i32> {
    superuser(app)
        .await
        .query(
            "SELECT pid FROM pg_stat_activity
             WHERE datname = current_database() AND usename = 'callingcard_app' ORDER BY pid",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[tokio::test]
async fn refused_tokens_do_not_cost_the_pool_its_connections() {
    let app = spawn_app_with(&[("DATABASE_POOL_SIZE", "1")]).await;
    let (email, revoked) = app.signup_tokens("Churn Co").await;
    let live = app.login_tokens(&email, ADMIN_PASSWORD, DESKTOP).await;
    assert_works(read_and_write(&app, &live).await, "before");
    let before = app_backends(&app).await;
    app.post("/api/auth/logout", Some(&revoked.access), json!({}))
        .await
        .assert_status(204);
    for _ in 0..20 {
        assert_refused(
            read_and_write(&app, &revoked).await,
            "session_ended",
            "a revoked token",
        );
    }
    assert_works(read_and_write(&app, &live).await, "after");
    // The pool's one connection served all of it: none was closed and opened again.
    assert_eq!(app_backends(&app).await, before);
}
