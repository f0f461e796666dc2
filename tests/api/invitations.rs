//! Invitations: an admin invites by email, the person follows the link in the email (as a real
//! SMTP server received it: `helpers::invitation_email_for`), chooses a password and is signed in. Links are one
//! time, expire, can be withdrawn or replaced; accepting is race-free.

use crate::helpers::{
    self, ADMIN_PASSWORD, PUBLIC_BASE_URL, TEAMMATE_PASSWORD, TestApp, invitation_email_for,
    invitation_link, invitation_token, spawn_app_with_mail, superuser, uuid_of,
};
use serde_json::json;
use sha2::{Digest, Sha256};
use uuid::Uuid;

fn invitations_path(company_id: Uuid) -> String {
    format!("/api/company/{company_id}/invitations")
}

fn fresh_email(what: &str) -> String {
    format!("{what}-{}@invited.example", Uuid::new_v4().simple())
}

/// The emails of the company's pending invitations, as listed.
async fn pending(app: &TestApp, admin: &helpers::Session) -> Vec<String> {
    let resp = app
        .get(&invitations_path(admin.company_id), Some(&admin.token))
        .await;
    resp.assert_status(200);
    let list = resp.body.as_array().unwrap();
    assert_eq!(
        resp.headers["x-total-count"].to_str().unwrap(),
        list.len().to_string()
    );
    list.iter()
        .map(|i| i["email"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn an_invited_person_accepts_the_emailed_link_and_is_signed_in() {
    let app = spawn_app_with_mail().await;
    let admin = app.signup("Welcome Co").await;
    let employee = uuid_of(&app.add_employee(&admin, "Nora Newcomer").await);
    let email = fresh_email("nora");

    let invited = app
        .invite(
            &admin,
            admin.company_id,
            &email.to_uppercase(),
            "employee",
            Some(employee),
        )
        .await;
    invited.assert_status(201);
    let body = invited.body.as_object().unwrap();
    let mut keys: Vec<&str> = body.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "created_at",
            "email",
            "employee_id",
            "expires_at",
            "id",
            "invited_by",
            "role"
        ]
    );
    assert_eq!(
        invited.body["email"],
        email.as_str(),
        "stored in lower case"
    );
    assert_eq!(invited.body["role"], "employee");
    assert_eq!(invited.body["employee_id"], employee.to_string());
    assert_eq!(invited.body["invited_by"], admin.user_id.to_string());
    let created: chrono::DateTime<chrono::Utc> = invited.body["created_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let expires: chrono::DateTime<chrono::Utc> = invited.body["expires_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(expires - created, chrono::Duration::days(7));
    assert_eq!(pending(&app, &admin).await, [email.as_str()]);

    // The email: in the company's name, plain text and HTML, with the one-time link.
    let sent = invitation_email_for(&app, &email).await;
    assert_eq!(sent.to, email);
    assert_eq!(sent.from_name, "Welcome Co");
    assert!(sent.subject.contains("Welcome Co"), "{}", sent.subject);
    let link = invitation_link(&sent);
    assert!(
        link.starts_with(&format!("{PUBLIC_BASE_URL}/app/accept-invitation?token=")),
        "{link}"
    );
    assert!(
        sent.html.contains(&format!("href=\"{link}\"")),
        "{}",
        sent.html
    );
    let token = invitation_token(&link);
    assert!(token.len() >= 22, "at least 128 bits: {token}");

    // Only the token's hash is stored.
    let db = superuser(&app).await;
    let stored = db
        .query_one(
            "SELECT token_hash, to_jsonb(i)::text FROM invitations i WHERE id = $1",
            &[&invited.id()],
        )
        .await
        .unwrap();
    let hash: Vec<u8> = stored.get(0);
    assert_eq!(hash, Sha256::digest(token.as_bytes()).to_vec());
    assert!(!stored.get::<_, String>(1).contains(&token));

    let accepted = app.accept_invitation(&token, TEAMMATE_PASSWORD).await;
    accepted.assert_status(201);
    assert_eq!(accepted.body["token_type"], "bearer");
    assert_eq!(accepted.body["company_id"], admin.company_id.to_string());
    assert_eq!(accepted.body["role"], "employee");
    assert!(accepted.body["refresh_token"].as_str().is_some());
    let access = accepted.body["access_token"].as_str().unwrap();
    let me = app.get("/api/auth/me", Some(access)).await;
    me.assert_status(200);
    assert_eq!(me.body["email"], email.as_str());
    assert_eq!(me.body["employee_id"], employee.to_string());
    assert_eq!(me.body["full_name"], "Nora Newcomer", "the employee's name");
    assert_eq!(me.body["role"], "employee");
    // The linked login edits its own card.
    app.put(
        &format!("/api/employees/{employee}"),
        Some(access),
        json!({"job_title": "Newcomer"}),
    )
    .await
    .assert_status(200);
    // The password works for logging in too.
    app.login(&email, TEAMMATE_PASSWORD).await;

    // Used once: not pending any more, and the link is dead.
    assert!(pending(&app, &admin).await.is_empty());
    app.accept_invitation(&token, TEAMMATE_PASSWORD)
        .await
        .assert_error(410, "invitation_used");
    // The person has a login now: inviting the address again is refused.
    app.invite(&admin, admin.company_id, &email, "employee", None)
        .await
        .assert_error(409, "email_taken");
}

#[tokio::test]
async fn an_admin_invitation_makes_an_admin_named_as_the_person_chooses() {
    let app = spawn_app_with_mail().await;
    let admin = app.signup("Admins Co").await;
    let email = fresh_email("ann");
    let token = app.invitation_token(&admin, &email, "admin", None).await;
    let accepted = app
        .post(
            "/api/auth/accept-invitation",
            None,
            json!({"token": token, "password": TEAMMATE_PASSWORD, "full_name": "Ann Admin"}),
        )
        .await;
    accepted.assert_status(201);
    assert_eq!(accepted.body["role"], "admin");
    let access = accepted.body["access_token"].as_str().unwrap();
    let me = app.get("/api/auth/me", Some(access)).await;
    assert_eq!(me.body["full_name"], "Ann Admin");
    assert!(me.body["employee_id"].is_null());
    // An admin indeed: it lists the company's logins.
    app.get(
        &format!("/api/company/{}/users", admin.company_id),
        Some(access),
    )
    .await
    .assert_status(200);
}

#[tokio::test]
async fn withdrawn_replaced_expired_and_unknown_links_are_refused() {
    let app = spawn_app_with_mail().await;
    let admin = app.signup("Ended Co").await;
    let db = superuser(&app).await;

    // Withdrawn.
    let email = fresh_email("withdrawn");
    let token = app.invitation_token(&admin, &email, "employee", None).await;
    let id: Uuid = db
        .query_one("SELECT id FROM invitations WHERE email = $1", &[&email])
        .await
        .unwrap()
        .get(0);
    let path = format!("{}/{id}", invitations_path(admin.company_id));
    app.delete(&path, Some(&admin.token))
        .await
        .assert_status(204);
    assert!(pending(&app, &admin).await.is_empty());
    app.accept_invitation(&token, TEAMMATE_PASSWORD)
        .await
        .assert_error(410, "invitation_withdrawn");
    app.delete(&path, Some(&admin.token))
        .await
        .assert_error(404, "not_found");
    app.delete(
        &format!("{}/{}", invitations_path(admin.company_id), Uuid::new_v4()),
        Some(&admin.token),
    )
    .await
    .assert_error(404, "not_found");

    // Replaced: inviting the address again kills the first link; the new one works.
    let email = fresh_email("replaced");
    let first = app.invitation_token(&admin, &email, "admin", None).await;
    let second = app.invitation_token(&admin, &email, "employee", None).await;
    assert_ne!(first, second);
    assert_eq!(pending(&app, &admin).await, [email.as_str()]);
    app.accept_invitation(&first, TEAMMATE_PASSWORD)
        .await
        .assert_error(410, "invitation_withdrawn");
    let accepted = app.accept_invitation(&second, TEAMMATE_PASSWORD).await;
    accepted.assert_status(201);
    assert_eq!(accepted.body["role"], "employee", "the newer invitation's");

    // Expired.
    let email = fresh_email("expired");
    let token = app.invitation_token(&admin, &email, "employee", None).await;
    db.execute(
        "UPDATE invitations SET expires_at = now() - interval '1 second' WHERE email = $1",
        &[&email],
    )
    .await
    .unwrap();
    assert!(pending(&app, &admin).await.is_empty());
    app.accept_invitation(&token, TEAMMATE_PASSWORD)
        .await
        .assert_error(410, "invitation_expired");
    // An expired invitation cannot be withdrawn (it is not pending), but the address can be
    // invited again.
    let id: Uuid = db
        .query_one("SELECT id FROM invitations WHERE email = $1", &[&email])
        .await
        .unwrap()
        .get(0);
    app.delete(
        &format!("{}/{id}", invitations_path(admin.company_id)),
        Some(&admin.token),
    )
    .await
    .assert_error(404, "not_found");
    let again = app.invitation_token(&admin, &email, "employee", None).await;
    app.accept_invitation(&again, TEAMMATE_PASSWORD)
        .await
        .assert_status(201);

    // Unknown, and no token at all.
    for token in ["", "not-a-token", &"A".repeat(43)] {
        app.accept_invitation(token, TEAMMATE_PASSWORD)
            .await
            .assert_error(404, "invitation_not_found");
    }
    app.post(
        "/api/auth/accept-invitation",
        None,
        json!({"token": "x".repeat(101), "password": TEAMMATE_PASSWORD}),
    )
    .await
    .assert_error(422, "validation_error");
}

#[tokio::test]
async fn two_accepts_of_one_link_at_once_make_one_login() {
    let app = spawn_app_with_mail().await;
    let admin = app.signup("Race Invite Co").await;
    for round in 0..3 {
        let email = fresh_email(&format!("race{round}"));
        let token = app.invitation_token(&admin, &email, "employee", None).await;
        let (a, b) = tokio::join!(
            app.accept_invitation(&token, TEAMMATE_PASSWORD),
            app.accept_invitation(&token, TEAMMATE_PASSWORD),
        );
        let mut statuses = [a.status.as_u16(), b.status.as_u16()];
        statuses.sort();
        assert_eq!(statuses, [201, 410], "{} / {}", a.body, b.body);
        let loser = if a.status == 410 { &a } else { &b };
        assert_eq!(loser.body["code"], "invitation_used");
        let db = superuser(&app).await;
        let logins = helpers::scalar(
            &db,
            "SELECT count(*) FROM users WHERE email = $1",
            &[&email],
        )
        .await;
        assert_eq!(logins, 1);
    }
}

#[tokio::test]
async fn the_password_is_held_to_the_signup_policy_and_a_refusal_keeps_the_link() {
    let app = spawn_app_with_mail().await;
    let admin = app.signup("Policy Co").await;
    let email = fresh_email("policy");
    let token = app.invitation_token(&admin, &email, "employee", None).await;
    for (password, code) in [
        ("short", "validation_error"),
        ("password123", "weak_password"),
        ("Policy Co", "weak_password"),
    ] {
        app.accept_invitation(&token, password)
            .await
            .assert_error(422, code);
    }
    // The invitation's email is the account's.
    let local = email.split('@').next().unwrap();
    let refused = app.accept_invitation(&token, local).await;
    refused.assert_error(422, "weak_password");
    assert!(
        refused.body["detail"].as_str().unwrap().contains("`email`"),
        "{}",
        refused.body
    );
    assert_eq!(pending(&app, &admin).await, [email.as_str()]);
    app.accept_invitation(&token, TEAMMATE_PASSWORD)
        .await
        .assert_status(201);
}

#[tokio::test]
async fn addresses_with_a_login_and_employees_with_one_are_refused() {
    let app = spawn_app_with_mail().await;
    let admin = app.signup("Refusing Co").await;
    let other = app.signup("Other Refusing Co").await;
    let path = invitations_path(admin.company_id);

    // A login anywhere has the address: another company's admin, in any case.
    app.invite(
        &admin,
        admin.company_id,
        &other.email.to_uppercase(),
        "employee",
        None,
    )
    .await
    .assert_error(409, "email_taken");
    // An employee with a login.
    let linked = uuid_of(&app.add_employee(&admin, "Has Login").await);
    app.add_user(&admin, "employee", Some(linked)).await;
    app.invite(
        &admin,
        admin.company_id,
        &fresh_email("linked"),
        "employee",
        Some(linked),
    )
    .await
    .assert_error(409, "employee_already_linked");
    // An employee invited at another address.
    let invited = uuid_of(&app.add_employee(&admin, "Invited Once").await);
    let first = fresh_email("first");
    app.invite(&admin, admin.company_id, &first, "employee", Some(invited))
        .await
        .assert_status(201);
    app.invite(
        &admin,
        admin.company_id,
        &fresh_email("second"),
        "employee",
        Some(invited),
    )
    .await
    .assert_error(409, "employee_already_invited");
    // The same address again replaces its own invitation, link and all.
    app.invite(&admin, admin.company_id, &first, "employee", Some(invited))
        .await
        .assert_status(201);
    // Another company's employee, and bad input.
    let theirs = uuid_of(&app.add_employee(&other, "Not Ours").await);
    app.invite(
        &admin,
        admin.company_id,
        &fresh_email("theirs"),
        "employee",
        Some(theirs),
    )
    .await
    .assert_error(422, "employee_not_found");
    for body in [
        json!({"email": "not-an-email", "role": "employee"}),
        json!({"email": fresh_email("root"), "role": "superadmin"}),
        json!({"email": fresh_email("nobody")}),
        json!({"email": fresh_email("extra"), "role": "admin", "token": "mine"}),
    ] {
        app.post(&path, Some(&admin.token), body.clone())
            .await
            .assert_error(422, "validation_error");
    }
    assert_eq!(pending(&app, &admin).await, [first]);

    // A login made after the invitation was sent: accepting it then is refused, and nothing
    // is created.
    let late = fresh_email("late");
    let token = app.invitation_token(&admin, &late, "employee", None).await;
    app.post(
        "/api/auth/signup",
        None,
        json!({"email": late, "password": ADMIN_PASSWORD, "full_name": "Quick Signer",
               "company_name": "Quick Signer Co"}),
    )
    .await
    .assert_status(201);
    app.accept_invitation(&token, TEAMMATE_PASSWORD)
        .await
        .assert_error(409, "email_taken");
}

#[tokio::test]
async fn only_the_companys_admins_invite_list_and_withdraw() {
    let app = spawn_app_with_mail().await;
    let admin = app.signup("Guarded Co").await;
    let mate = app.add_user(&admin, "employee", None).await;
    let other = app.signup("Nosy Co").await;
    let path = invitations_path(admin.company_id);
    let email = fresh_email("guarded");

    app.invite(&mate, admin.company_id, &email, "admin", None)
        .await
        .assert_error(403, "forbidden");
    app.get(&path, Some(&mate.token))
        .await
        .assert_error(403, "forbidden");
    app.invite(&other, admin.company_id, &email, "admin", None)
        .await
        .assert_error(404, "not_found");
    app.get(&path, Some(&other.token))
        .await
        .assert_error(404, "not_found");
    app.invite(&admin, admin.company_id, &email, "employee", None)
        .await
        .assert_status(201);
    let id: Uuid = superuser(&app)
        .await
        .query_one("SELECT id FROM invitations WHERE email = $1", &[&email])
        .await
        .unwrap()
        .get(0);
    let one = format!("{path}/{id}");
    app.delete(&one, Some(&mate.token))
        .await
        .assert_error(403, "forbidden");
    let at_a = app.delete(&one, Some(&other.token)).await;
    at_a.assert_error(404, "not_found");
    // B's own company has no such invitation either.
    let at_b = app
        .delete(
            &format!("{}/{id}", invitations_path(other.company_id)),
            Some(&other.token),
        )
        .await;
    assert_eq!(at_a.body, at_b.body);
    assert_eq!(pending(&app, &admin).await, [email.as_str()]);

    // A superadmin invites into any company, as itself.
    let root = app.superadmin().await;
    let by_root = app
        .invite(&root, admin.company_id, &fresh_email("root"), "admin", None)
        .await;
    by_root.assert_status(201);
    assert_eq!(by_root.body["invited_by"], root.user_id.to_string());
    assert_eq!(pending(&app, &admin).await.len(), 2);
}

#[tokio::test]
async fn a_company_sends_a_bounded_number_of_invitations_an_hour() {
    let app = spawn_app_with_mail().await;
    let admin = app.signup("Busy Co").await;
    let mut sent = 0;
    let refused = loop {
        let resp = app
            .invite(
                &admin,
                admin.company_id,
                &fresh_email("busy"),
                "employee",
                None,
            )
            .await;
        if resp.status != 201 {
            break resp;
        }
        sent += 1;
        assert!(sent <= 30, "no limit after {sent} invitations");
    };
    assert_eq!(sent, 30);
    refused.assert_error(429, "too_many_invitations");
    let wait: u64 = refused.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=3600).contains(&wait), "{wait}");
    // Other companies have budgets of their own.
    let other = app.signup("Calm Co").await;
    app.invite(
        &other,
        other.company_id,
        &fresh_email("calm"),
        "employee",
        None,
    )
    .await
    .assert_status(201);
    // An hour later the budget is back (the invitations' times moved back, as the superuser).
    superuser(&app)
        .await
        .execute(
            "UPDATE invitations SET created_at = created_at - interval '61 minutes'
             WHERE company_id = $1",
            &[&admin.company_id],
        )
        .await
        .unwrap();
    app.invite(
        &admin,
        admin.company_id,
        &fresh_email("later"),
        "employee",
        None,
    )
    .await
    .assert_status(201);
}
