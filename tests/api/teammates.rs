//! Teammates: an admin reads, changes and deletes the company's logins. Every field of a change
//! is optional; the last active admin stays; one login per employee record; a change of role,
//! a deactivation and a deletion end the login's sessions in the same transaction.

use crate::helpers::{
    self, Session, TEAMMATE_PASSWORD, TestApp, connect, spawn_app, superuser, superuser_url,
    uuid_of,
};
use serde_json::json;
use uuid::Uuid;

fn user_path(company_id: Uuid, user_id: Uuid) -> String {
    format!("/api/company/{company_id}/users/{user_id}")
}

/// How many of the login's sessions are live, and the reasons the others ended for.
async fn sessions_of(app: &TestApp, user_id: Uuid) -> (i64, Vec<String>) {
    let db = superuser(app).await;
    let live = helpers::scalar(
        &db,
        "SELECT count(*) FROM sessions WHERE user_id = $1 AND revoked_at IS NULL",
        &[&user_id],
    )
    .await;
    let reasons = db
        .query(
            "SELECT revoked_reason FROM sessions
             WHERE user_id = $1 AND revoked_at IS NOT NULL ORDER BY revoked_reason",
            &[&user_id],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    (live, reasons)
}

/// A second admin of `admin`'s company, signed in.
async fn second_admin(app: &TestApp, admin: &Session) -> Session {
    app.add_user(admin, "admin", None).await
}

#[tokio::test]
async fn an_admin_reads_and_changes_a_login_field_by_field() {
    let app = spawn_app().await;
    let admin = app.signup("Field Co").await;
    let employee = uuid_of(&app.add_employee(&admin, "Jane Field").await);
    let mate = app.add_user(&admin, "employee", None).await;
    let path = user_path(admin.company_id, mate.user_id);

    let got = app.get(&path, Some(&admin.token)).await;
    got.assert_status(200);
    assert_eq!(got.body["id"], mate.user_id.to_string());
    assert_eq!(got.body["email"], mate.email.as_str());
    assert_eq!(got.body["role"], "employee");
    assert_eq!(got.body["is_active"], true);
    assert!(got.body["employee_id"].is_null());

    // One field at a time; the rest is kept.
    let renamed = app
        .put(
            &path,
            Some(&admin.token),
            json!({"full_name": "Renamed Mate"}),
        )
        .await;
    renamed.assert_status(200);
    assert_eq!(renamed.body["full_name"], "Renamed Mate");
    assert_eq!(renamed.body["role"], "employee");
    assert_eq!(renamed.body["is_active"], true);
    let linked = app
        .put(&path, Some(&admin.token), json!({"employee_id": employee}))
        .await;
    linked.assert_status(200);
    assert_eq!(linked.body["employee_id"], employee.to_string());
    assert_eq!(linked.body["full_name"], "Renamed Mate");
    // The same shape as the list.
    let list = app
        .get(
            &format!("/api/company/{}/users", admin.company_id),
            Some(&admin.token),
        )
        .await;
    list.assert_status(200);
    let listed = list
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["id"] == mate.user_id.to_string())
        .unwrap();
    assert_eq!(listed, &linked.body);
    // Left out, the link stays; null unlinks.
    let kept = app.put(&path, Some(&admin.token), json!({})).await;
    kept.assert_status(200);
    assert_eq!(kept.body["employee_id"], employee.to_string());
    let unlinked = app
        .put(&path, Some(&admin.token), json!({"employee_id": null}))
        .await;
    unlinked.assert_status(200);
    assert!(unlinked.body["employee_id"].is_null());
    // None of that ended the login's session.
    assert_eq!(sessions_of(&app, mate.user_id).await, (1, vec![]));
}

#[tokio::test]
async fn bad_changes_are_422_and_change_nothing() {
    let app = spawn_app().await;
    let admin = app.signup("Strict Co").await;
    let mate = app.add_user(&admin, "employee", None).await;
    let path = user_path(admin.company_id, mate.user_id);
    for (body, field) in [
        (json!({"role": "superadmin"}), "role"),
        (json!({"role": "owner"}), "role"),
        (json!({"role": null}), "role"),
        (json!({"full_name": null}), "full_name"),
        (json!({"full_name": ""}), "full_name"),
        (json!({"full_name": "a\u{0}b"}), "full_name"),
        (json!({"is_active": null}), "is_active"),
        (json!({"is_active": "no"}), "is_active"),
        (json!({"email": "new@example.com"}), "email"),
    ] {
        let resp = app.put(&path, Some(&admin.token), body.clone()).await;
        resp.assert_status(422);
        let detail = resp.body["detail"].as_str().unwrap();
        assert!(detail.contains(field), "{body}: {detail}");
    }
    app.put(
        &path,
        Some(&admin.token),
        json!({"employee_id": "not-a-uuid"}),
    )
    .await
    .assert_error(422, "validation_error");
    // An employee of another company is not ours to link.
    let other = app.signup("Other Strict Co").await;
    let theirs = uuid_of(&app.add_employee(&other, "Not Ours").await);
    app.put(&path, Some(&admin.token), json!({"employee_id": theirs}))
        .await
        .assert_error(422, "employee_not_found");
    let now = app.get(&path, Some(&admin.token)).await;
    assert_eq!(now.body["role"], "employee");
    assert_eq!(now.body["full_name"], "Teammate");
    assert!(now.body["employee_id"].is_null());
}

#[tokio::test]
async fn only_the_companys_admins_and_superadmins_reach_its_logins() {
    let app = spawn_app().await;
    let admin = app.signup("Reach Co").await;
    let mate = app.add_user(&admin, "employee", None).await;
    let path = user_path(admin.company_id, mate.user_id);

    // An employee login: 403, even for itself.
    app.get(&path, Some(&mate.token))
        .await
        .assert_error(403, "forbidden");
    app.put(&path, Some(&mate.token), json!({"role": "admin"}))
        .await
        .assert_error(403, "forbidden");
    app.delete(&path, Some(&mate.token))
        .await
        .assert_error(403, "forbidden");

    // Another company's admin: exactly what a missing login or company answers.
    let other = app.signup("Elsewhere Co").await;
    let missing_user = user_path(admin.company_id, Uuid::new_v4());
    let missing_company = user_path(Uuid::new_v4(), mate.user_id);
    for (verb, body) in [
        (reqwest::Method::GET, None),
        (
            reqwest::Method::PUT,
            Some(json!({"full_name": "Taken Over"})),
        ),
        (reqwest::Method::DELETE, None),
    ] {
        let at_a = app
            .request(verb.clone(), &path, Some(&other.token), body.clone())
            .await;
        at_a.assert_error(404, "not_found");
        let missing = app
            .request(
                verb.clone(),
                &missing_company,
                Some(&other.token),
                body.clone(),
            )
            .await;
        assert_eq!(at_a.body, missing.body, "{verb}");
        // A's admin on a login that is not there.
        let absent = app
            .request(verb.clone(), &missing_user, Some(&admin.token), body)
            .await;
        assert_eq!(absent.body, at_a.body, "{verb}");
    }
    // B's admin cannot address A's login through B's company either.
    app.get(
        &user_path(other.company_id, mate.user_id),
        Some(&other.token),
    )
    .await
    .assert_error(404, "not_found");

    // A superadmin can, in any company.
    let root = app.superadmin().await;
    app.put(
        &path,
        Some(&root.token),
        json!({"full_name": "Set By Root"}),
    )
    .await
    .assert_status(200);
    let got = app.get(&path, Some(&admin.token)).await;
    assert_eq!(got.body["full_name"], "Set By Root");
    assert_eq!(app.get(&path, None).await.status.as_u16(), 401, "no token");
}

#[tokio::test]
async fn a_role_change_a_deactivation_and_a_deletion_end_the_logins_sessions() {
    let app = spawn_app().await;
    let admin = app.signup("Session Co").await;
    let mate = app.add_user(&admin, "employee", None).await;
    // A second session of the same login.
    app.login(&mate.email, TEAMMATE_PASSWORD).await;
    let path = user_path(admin.company_id, mate.user_id);
    assert_eq!(sessions_of(&app, mate.user_id).await.0, 2);

    let promoted = app
        .put(&path, Some(&admin.token), json!({"role": "admin"}))
        .await;
    promoted.assert_status(200);
    assert_eq!(promoted.body["role"], "admin");
    assert_eq!(
        sessions_of(&app, mate.user_id).await,
        (0, vec!["role_changed".into(), "role_changed".into()])
    );
    // The same role again is no change.
    app.login(&mate.email, TEAMMATE_PASSWORD).await;
    app.put(&path, Some(&admin.token), json!({"role": "admin"}))
        .await
        .assert_status(200);
    assert_eq!(sessions_of(&app, mate.user_id).await.0, 1);

    let disabled = app
        .put(&path, Some(&admin.token), json!({"is_active": false}))
        .await;
    disabled.assert_status(200);
    assert_eq!(disabled.body["is_active"], false);
    let (live, reasons) = sessions_of(&app, mate.user_id).await;
    assert_eq!(live, 0);
    assert!(reasons.contains(&"deactivated".to_owned()), "{reasons:?}");
    // A disabled login cannot sign in; enabled again, it can.
    app.post(
        "/api/auth/login",
        None,
        json!({"email": mate.email, "password": TEAMMATE_PASSWORD}),
    )
    .await
    .assert_error(403, "account_disabled");
    app.put(&path, Some(&admin.token), json!({"is_active": true}))
        .await
        .assert_status(200);
    app.login(&mate.email, TEAMMATE_PASSWORD).await;

    // The admin's own session is untouched by all of that.
    assert_eq!(sessions_of(&app, admin.user_id).await, (1, vec![]));

    let deleted = app.delete(&path, Some(&admin.token)).await;
    deleted.assert_status(204);
    assert!(deleted.body.is_null());
    app.get(&path, Some(&admin.token))
        .await
        .assert_error(404, "not_found");
    app.delete(&path, Some(&admin.token))
        .await
        .assert_error(404, "not_found");
    // Its sessions went with it, and so did the login.
    assert_eq!(sessions_of(&app, mate.user_id).await, (0, vec![]));
    app.post(
        "/api/auth/login",
        None,
        json!({"email": mate.email, "password": TEAMMATE_PASSWORD}),
    )
    .await
    .assert_error(401, "invalid_credentials");
}

#[tokio::test]
async fn the_last_active_admin_cannot_be_demoted_deactivated_or_deleted() {
    let app = spawn_app().await;
    let admin = app.signup("Last Co").await;
    let own = user_path(admin.company_id, admin.user_id);
    for (verb, body) in [
        (reqwest::Method::PUT, Some(json!({"role": "employee"}))),
        (reqwest::Method::PUT, Some(json!({"is_active": false}))),
        (
            reqwest::Method::PUT,
            Some(json!({"role": "employee", "is_active": false})),
        ),
        (reqwest::Method::DELETE, None),
    ] {
        app.request(verb, &own, Some(&admin.token), body)
            .await
            .assert_error(409, "last_admin");
    }
    // Other changes of the last admin are fine.
    app.put(
        &own,
        Some(&admin.token),
        json!({"full_name": "Still Admin"}),
    )
    .await
    .assert_status(200);
    // A disabled admin does not count.
    let disabled = second_admin(&app, &admin).await;
    app.put(
        &user_path(admin.company_id, disabled.user_id),
        Some(&admin.token),
        json!({"is_active": false}),
    )
    .await
    .assert_status(200);
    app.delete(&own, Some(&admin.token))
        .await
        .assert_error(409, "last_admin");

    // With another active admin, an admin may demote or delete itself; then the other is last.
    let other = second_admin(&app, &admin).await;
    app.delete(&own, Some(&admin.token))
        .await
        .assert_status(204);
    let theirs = user_path(admin.company_id, other.user_id);
    app.put(&theirs, Some(&other.token), json!({"role": "employee"}))
        .await
        .assert_error(409, "last_admin");
    let db = superuser(&app).await;
    let admins = helpers::scalar(
        &db,
        "SELECT count(*) FROM users WHERE company_id = $1 AND role = 'admin' AND is_active",
        &[&admin.company_id],
    )
    .await;
    assert_eq!(admins, 1);
}

#[tokio::test]
async fn two_admins_demoting_each_other_at_once_leave_one_admin() {
    let app = spawn_app().await;
    let first = app.signup("Race Co").await;
    let db = superuser(&app).await;
    for round in 0..5 {
        let second = second_admin(&app, &first).await;
        let first_path = user_path(first.company_id, first.user_id);
        let second_path = user_path(first.company_id, second.user_id);
        let (a, b) = tokio::join!(
            app.put(
                &second_path,
                Some(&first.token),
                json!({"role": "employee"})
            ),
            app.delete(&first_path, Some(&second.token)),
        );
        let statuses = [a.status.as_u16(), b.status.as_u16()];
        let admins = helpers::scalar(
            &db,
            "SELECT count(*) FROM users WHERE company_id = $1 AND role = 'admin' AND is_active",
            &[&first.company_id],
        )
        .await;
        assert_eq!(admins, 1, "round {round}: {statuses:?}");
        // One won; the other found the winner's change and refused (or, its own session ended
        // by the winner, was refused at the door).
        match statuses {
            [200, 409 | 401] => {}
            [409 | 401, 204] => {
                // The second admin is the last one now.
                return finish_with(&app, second).await;
            }
            other => panic!("round {round}: {other:?}: {} / {}", a.body, b.body),
        }
    }
}

/// The company still works for its remaining admin.
async fn finish_with(app: &TestApp, admin: Session) {
    app.get(
        &user_path(admin.company_id, admin.user_id),
        Some(&admin.token),
    )
    .await
    .assert_status(200);
}

#[tokio::test]
async fn an_employee_record_has_one_login_at_most() {
    let app = spawn_app().await;
    let admin = app.signup("Linked Co").await;
    let employee = uuid_of(&app.add_employee(&admin, "Jane Linked").await);
    let first = app.add_user(&admin, "employee", Some(employee)).await;
    let users = format!("/api/company/{}/users", admin.company_id);

    let again = app
        .post(
            &users,
            Some(&admin.token),
            json!({"email": "second@linked.example", "password": TEAMMATE_PASSWORD,
                   "full_name": "Second", "role": "employee", "employee_id": employee}),
        )
        .await;
    again.assert_error(409, "employee_already_linked");
    let second = app.add_user(&admin, "employee", None).await;
    let second_path = user_path(admin.company_id, second.user_id);
    app.put(
        &second_path,
        Some(&admin.token),
        json!({"employee_id": employee}),
    )
    .await
    .assert_error(409, "employee_already_linked");
    // Unlinked from the first, the record takes the second.
    app.put(
        &user_path(admin.company_id, first.user_id),
        Some(&admin.token),
        json!({"employee_id": null}),
    )
    .await
    .assert_status(200);
    let moved = app
        .put(
            &second_path,
            Some(&admin.token),
            json!({"employee_id": employee}),
        )
        .await;
    moved.assert_status(200);
    assert_eq!(moved.body["employee_id"], employee.to_string());
}

#[tokio::test]
async fn a_company_admin_cannot_touch_a_superadmins_login() {
    let app = spawn_app().await;
    let root = app.superadmin().await;
    let platform = root.company_id;
    // An admin of the platform company, made by the superadmin.
    let resp = app
        .post(
            &format!("/api/company/{platform}/users"),
            Some(&root.token),
            json!({"email": "platform-admin@example.com", "password": TEAMMATE_PASSWORD,
                   "full_name": "Platform Admin", "role": "admin"}),
        )
        .await;
    resp.assert_status(201);
    let platform_admin = app
        .login("platform-admin@example.com", TEAMMATE_PASSWORD)
        .await;
    let root_path = user_path(platform, root.user_id);
    app.put(
        &root_path,
        Some(&platform_admin.token),
        json!({"is_active": false}),
    )
    .await
    .assert_error(403, "forbidden");
    app.delete(&root_path, Some(&platform_admin.token))
        .await
        .assert_error(403, "forbidden");
    let still = app.get(&root_path, Some(&root.token)).await;
    still.assert_status(200);
    assert_eq!(still.body["role"], "superadmin");
    assert_eq!(still.body["is_active"], true);
    assert_eq!(sessions_of(&app, root.user_id).await, (1, vec![]));
}

mod sql {
    refinery::embed_migrations!("sql");
}

/// The migration's duplicate links are resolved as a database owner without superuser rights
/// would apply it (the forced policies bind such an owner): the oldest login keeps its link.
#[tokio::test]
async fn the_migration_keeps_the_oldest_link_of_each_employee() {
    let suffix = Uuid::new_v4().simple().to_string();
    let (owner, name) = (format!("owner_{suffix}"), format!("links_{suffix}"));
    let admin = connect(&superuser_url("postgres")).await;
    for statement in [
        format!("CREATE ROLE {owner} LOGIN NOSUPERUSER NOBYPASSRLS"),
        format!("CREATE DATABASE {name} OWNER {owner}"),
        format!("GRANT callingcard_definer TO {owner}"),
    ] {
        admin.batch_execute(&statement).await.unwrap();
    }
    let db = connect(&superuser_url(&name)).await;
    db.batch_execute(&format!(
        "ALTER SCHEMA public OWNER TO {owner};
         GRANT CREATE ON SCHEMA public TO callingcard_definer;"
    ))
    .await
    .unwrap();
    let url = superuser_url(&name).replace("postgres@", &format!("{owner}@"));
    let mut as_owner = connect(&url).await;
    sql::migrations::runner()
        .set_target(refinery::Target::Version(10))
        .run_async(&mut as_owner)
        .await
        .expect("migrating to V10");

    // Seeded as the superuser, below the policies: two companies, three logins on one employee
    // (two created at the same moment: the id decides), two on another, one alone.
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let (shared, pair, alone) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let mut logins: Vec<Uuid> = (0..6).map(|_| Uuid::new_v4()).collect();
    logins[..2].sort();
    for (company, slug) in [(a, "links-a"), (b, "links-b")] {
        db.execute(
            "INSERT INTO companies (id, name, slug) VALUES ($1, $2, $2)",
            &[&company, &slug],
        )
        .await
        .unwrap();
    }
    for (company, employee) in [(a, shared), (a, alone), (b, pair)] {
        db.execute(
            "INSERT INTO employees (company_id, id, full_name, public_slug)
             VALUES ($1, $2, 'E', $3)",
            &[&company, &employee, &format!("e-{}", employee.simple())],
        )
        .await
        .unwrap();
    }
    let seeded = [
        (a, logins[0], shared, "2026-01-01T00:00:00Z"),
        (a, logins[1], shared, "2026-01-01T00:00:00Z"),
        (a, logins[2], shared, "2025-12-01T00:00:00Z"),
        (b, logins[3], pair, "2026-02-01T00:00:00Z"),
        (b, logins[4], pair, "2026-03-01T00:00:00Z"),
        (a, logins[5], alone, "2026-04-01T00:00:00Z"),
    ];
    for (company, id, employee, created) in seeded {
        let created: chrono::DateTime<chrono::Utc> = created.parse().unwrap();
        db.execute(
            "INSERT INTO users (company_id, id, email, password_hash, full_name, role, employee_id,
                                created_at)
             VALUES ($1, $2, $5, 'x', 'U', 'employee', $3, $4)",
            &[
                &company,
                &id,
                &employee,
                &created,
                &format!("{id}@example.com"),
            ],
        )
        .await
        .unwrap();
    }

    sql::migrations::runner()
        .run_async(&mut as_owner)
        .await
        .expect("migrating to the latest version");
    let links: Vec<(Uuid, Option<Uuid>)> = db
        .query("SELECT id, employee_id FROM users", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let link_of = |id: Uuid| links.iter().find(|(u, _)| *u == id).unwrap().1;
    assert_eq!(link_of(logins[2]), Some(shared), "the oldest keeps it");
    assert_eq!(link_of(logins[0]), None);
    assert_eq!(link_of(logins[1]), None);
    assert_eq!(link_of(logins[3]), Some(pair));
    assert_eq!(link_of(logins[4]), None);
    assert_eq!(link_of(logins[5]), Some(alone));
    assert_eq!(links.len(), 6, "no login lost");
    // And from now on the database refuses a second link.
    let refused = db
        .execute(
            "UPDATE users SET employee_id = $2 WHERE id = $1",
            &[&logins[0], &shared],
        )
        .await
        .unwrap_err();
    assert_eq!(
        refused.as_db_error().and_then(|e| e.constraint()),
        Some("users_employee_key")
    );
}
