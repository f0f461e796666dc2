//! The audit trail of logins and accounts: teammates changed and deleted, invitations sent,
//! withdrawn and accepted, sessions ended (and revoked for a reused refresh token), passwords
//! reset and addresses verified by emailed links. Each event names who did it, what it was
//! about and what changed, and carries the request id the answer carried.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{
    ADMIN_PASSWORD, Response, Session, TEAMMATE_PASSWORD, TestApp, Tokens, audit_events,
    invitation_email_for, invitation_link, invitation_token, new_email, signup_as, spawn_app,
    spawn_app_with_mail,
};

/// The newest event of `action`.
#[track_caller]
fn the<'a>(events: &'a [Value], action: &str) -> &'a Value {
    events
        .iter()
        .find(|e| e["action"] == action)
        .unwrap_or_else(|| panic!("no {action} event in {events:#?}"))
}

#[track_caller]
fn assert_actor(event: &Value, user_id: Uuid, email: &str, role: &str) {
    assert_eq!(
        event["actor"],
        json!({"user_id": user_id, "email": email, "role": role}),
        "{event}"
    );
}

#[track_caller]
fn assert_target(event: &Value, kind: &str, id: Uuid) {
    assert_eq!(event["target"], json!({"type": kind, "id": id}), "{event}");
}

/// The event was caused by the request that got `resp`: it carries the answer's request id.
#[track_caller]
fn assert_caused_by(event: &Value, resp: &Response) {
    let header = resp
        .headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .expect("an X-Request-Id on the answer");
    assert_eq!(event["request_id"], header, "{event}");
}

/// The events of `session`'s company of exactly `action`.
async fn events_of(app: &TestApp, session: &Session, action: &str) -> Vec<Value> {
    audit_events(app, session, &format!("action={action}")).await
}

#[tokio::test]
async fn changing_and_deleting_a_teammate_is_recorded_with_its_fields() {
    let app = spawn_app().await;
    let admin = app.signup("Team Trail").await;
    let employee = app.add_employee(&admin, "Linked Person").await;
    let employee_id = crate::helpers::uuid_of(&employee);
    let teammate = app.add_user(&admin, "employee", None).await;
    let path = format!(
        "/api/company/{}/users/{}",
        admin.company_id, teammate.user_id
    );

    let resp = app
        .put(
            &path,
            Some(&admin.token),
            json!({"role": "admin", "full_name": "Renamed Mate", "is_active": false,
                   "employee_id": employee_id}),
        )
        .await;
    resp.assert_status(200);
    let events = events_of(&app, &admin, "user.updated").await;
    assert_eq!(events.len(), 1, "{events:#?}");
    let updated = &events[0];
    assert_actor(updated, admin.user_id, &admin.email, "admin");
    assert_target(updated, "user", teammate.user_id);
    assert_caused_by(updated, &resp);
    assert_eq!(
        updated["changes"],
        json!({
            "role": {"before": "employee", "after": "admin"},
            "is_active": {"before": true, "after": false},
            "full_name": {"before": "Teammate", "after": "Renamed Mate"},
            "employee_id": {"before": null, "after": employee_id},
        })
    );
    // A change that changes nothing is still an event, with no fields.
    app.put(
        &path,
        Some(&admin.token),
        json!({"full_name": "Renamed Mate"}),
    )
    .await
    .assert_status(200);
    let events = events_of(&app, &admin, "user.updated").await;
    assert_eq!(events.len(), 2, "{events:#?}");
    assert_eq!(events[0]["changes"], json!({}));
    // A refused change leaves no event: it rolled back with it.
    app.put(
        &format!("/api/company/{}/users/{}", admin.company_id, admin.user_id),
        Some(&admin.token),
        json!({"role": "employee"}),
    )
    .await
    .assert_error(409, "last_admin");
    assert_eq!(events_of(&app, &admin, "user.updated").await.len(), 2);

    let resp = app.delete(&path, Some(&admin.token)).await;
    resp.assert_status(204);
    let events = events_of(&app, &admin, "user.deleted").await;
    assert_eq!(events.len(), 1, "{events:#?}");
    let deleted = &events[0];
    assert_actor(deleted, admin.user_id, &admin.email, "admin");
    assert_target(deleted, "user", teammate.user_id);
    assert_caused_by(deleted, &resp);
    assert_eq!(
        deleted["changes"]["email"],
        json!({"before": teammate.email, "after": null})
    );
    assert_eq!(
        deleted["changes"]["role"],
        json!({"before": "admin", "after": null})
    );
}

#[tokio::test]
async fn invitations_are_recorded_when_sent_withdrawn_and_accepted() {
    let app = spawn_app_with_mail().await;
    let admin = app.signup("Invite Trail").await;

    // Withdrawn.
    let dropped = new_email("dropped");
    let resp = app
        .invite(&admin, admin.company_id, &dropped, "admin", None)
        .await;
    resp.assert_status(201);
    let dropped_id = resp.id();
    let resp = app
        .delete(
            &format!("/api/company/{}/invitations/{dropped_id}", admin.company_id),
            Some(&admin.token),
        )
        .await;
    resp.assert_status(204);
    let withdrawn = events_of(&app, &admin, "invitation.withdrawn").await;
    assert_eq!(withdrawn.len(), 1, "{withdrawn:#?}");
    assert_actor(&withdrawn[0], admin.user_id, &admin.email, "admin");
    assert_target(&withdrawn[0], "invitation", dropped_id);
    assert_caused_by(&withdrawn[0], &resp);
    // Withdrawing it again changes nothing and records nothing.
    app.delete(
        &format!("/api/company/{}/invitations/{dropped_id}", admin.company_id),
        Some(&admin.token),
    )
    .await
    .assert_status(404);
    assert_eq!(
        events_of(&app, &admin, "invitation.withdrawn").await.len(),
        1
    );

    // Sent, then accepted.
    let invited = new_email("Invited");
    let resp = app
        .invite(&admin, admin.company_id, &invited, "employee", None)
        .await;
    resp.assert_status(201);
    let invitation_id = resp.id();
    let created = events_of(&app, &admin, "invitation.created").await;
    assert_eq!(created.len(), 2, "{created:#?}");
    let created = &created[0];
    assert_actor(created, admin.user_id, &admin.email, "admin");
    assert_target(created, "invitation", invitation_id);
    assert_caused_by(created, &resp);
    assert_eq!(
        created["changes"],
        json!({
            "email": {"before": null, "after": invited.to_lowercase()},
            "role": {"before": null, "after": "employee"},
        })
    );
    let token = invitation_token(&invitation_link(
        &invitation_email_for(&app, &invited).await,
    ));
    assert!(
        !created.to_string().contains(&token),
        "no token in {created}"
    );

    let resp = app.accept_invitation(&token, TEAMMATE_PASSWORD).await;
    resp.assert_status(201);
    let login = Tokens::of(&resp);
    let events = audit_events(&app, &admin, "").await;
    let actions: Vec<&str> = events[..3]
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["auth.login", "invitation.accepted", "user.created"],
        "the new login signs in after it is created"
    );
    let email = invited.to_lowercase();
    let accepted = the(&events, "invitation.accepted");
    assert_actor(accepted, login.user_id, &email, "employee");
    assert_target(accepted, "invitation", invitation_id);
    assert_caused_by(accepted, &resp);
    assert_eq!(
        accepted["changes"],
        json!({"accepted_user_id": {"before": null, "after": login.user_id}})
    );
    let user = the(&events, "user.created");
    assert_actor(user, login.user_id, &email, "employee");
    assert_target(user, "user", login.user_id);
    assert_eq!(
        user["changes"]["role"],
        json!({"before": null, "after": "employee"})
    );
    assert_eq!(
        user["changes"]["email"],
        json!({"before": null, "after": email})
    );
    let text = Value::Array(events).to_string();
    assert!(!text.contains(TEAMMATE_PASSWORD) && !text.contains("$argon2"));
}

#[tokio::test]
async fn ended_sessions_are_recorded_and_plain_refreshes_are_not() {
    let app = spawn_app().await;
    let (email, first) = app.signup_tokens("Session Trail").await;
    let second = app.login_tokens(&email, ADMIN_PASSWORD, "second").await;
    let third = app.login_tokens(&email, ADMIN_PASSWORD, "third").await;
    let admin = Session {
        token: first.access.clone(),
        user_id: first.user_id,
        company_id: first.company_id,
        email: email.clone(),
    };

    // One ended by another.
    let resp = app
        .delete(
            &format!("/api/auth/sessions/{}", second.session_id),
            Some(&first.access),
        )
        .await;
    resp.assert_status(204);
    // One logged out.
    let logout = app
        .post("/api/auth/logout", Some(&third.access), json!({}))
        .await;
    logout.assert_status(204);
    let ended = events_of(&app, &admin, "session.ended").await;
    assert_eq!(ended.len(), 2, "{ended:#?}");
    assert_actor(&ended[0], admin.user_id, &email, "admin");
    assert_target(&ended[0], "session", third.session_id);
    assert_caused_by(&ended[0], &logout);
    assert_eq!(
        ended[0]["changes"],
        json!({"revoked_reason": {"before": null, "after": "logout"}})
    );
    assert_target(&ended[1], "session", second.session_id);
    assert_caused_by(&ended[1], &resp);
    assert_eq!(
        ended[1]["changes"],
        json!({"revoked_reason": {"before": null, "after": "revoked"}})
    );

    // A plain refresh writes nothing to the trail.
    let before = audit_events(&app, &admin, "").await.len();
    let refreshed = app.refresh(&first.refresh).await;
    refreshed.assert_status(200);
    let fresh = Tokens::of(&refreshed);
    let admin = Session {
        token: fresh.access.clone(),
        ..admin
    };
    assert_eq!(audit_events(&app, &admin, "").await.len(), before);

    // Everywhere: this session and a new one.
    app.login_tokens(&email, ADMIN_PASSWORD, "fourth").await;
    let resp = app
        .post("/api/auth/logout-all", Some(&fresh.access), json!({}))
        .await;
    resp.assert_status(204);
    let reader = app.login(&email, ADMIN_PASSWORD).await;
    let all = events_of(&app, &reader, "session.ended_all").await;
    assert_eq!(all.len(), 1, "{all:#?}");
    assert_actor(&all[0], admin.user_id, &email, "admin");
    assert_target(&all[0], "user", admin.user_id);
    assert_caused_by(&all[0], &resp);
    assert_eq!(
        all[0]["changes"],
        json!({"sessions_ended": {"before": null, "after": 2}})
    );
}

#[tokio::test]
async fn a_reused_refresh_token_revokes_its_session_on_the_record() {
    let app = spawn_app().await;
    let (email, tokens) = app.signup_tokens("Reuse Trail").await;
    app.refresh(&tokens.refresh).await.assert_status(200);
    let reuse = app.refresh(&tokens.refresh).await;
    reuse.assert_error(401, "session_ended");
    // Once: the session is over, a later refresh of it ends nothing.
    app.refresh(&tokens.refresh)
        .await
        .assert_error(401, "session_ended");

    let reader = app.login(&email, ADMIN_PASSWORD).await;
    let revoked = events_of(&app, &reader, "session.revoked").await;
    assert_eq!(revoked.len(), 1, "{revoked:#?}");
    let event = &revoked[0];
    assert_eq!(event["actor"], Value::Null, "nobody proved who they are");
    assert_target(event, "session", tokens.session_id);
    assert_caused_by(event, &reuse);
    assert_eq!(
        event["changes"],
        json!({"revoked_reason": {"before": null, "after": "refresh_token_reused"}})
    );
    assert!(!event.to_string().contains(&tokens.refresh));
}

#[tokio::test]
async fn emailed_links_record_a_reset_password_and_a_verified_address() {
    let app = spawn_app_with_mail().await;
    let smtp = app.mail.clone().expect("an SMTP server");
    let email = new_email("links");
    let admin = signup_as(&app, &email, "Link Trail").await;

    let token = smtp.wait_for_message_to(&email).await.token("verify-email");
    let resp = app
        .post("/api/auth/verify-email", None, json!({"token": token}))
        .await;
    resp.assert_status(204);
    let verified = events_of(&app, &admin, "user.email_verified").await;
    assert_eq!(verified.len(), 1, "{verified:#?}");
    assert_actor(&verified[0], admin.user_id, &email, "admin");
    assert_target(&verified[0], "user", admin.user_id);
    assert_caused_by(&verified[0], &resp);
    assert_eq!(
        verified[0]["changes"],
        json!({"email_verified": {"before": false, "after": true}})
    );

    app.post("/api/auth/forgot-password", None, json!({"email": email}))
        .await
        .assert_status(202);
    let mut resets = Vec::new();
    crate::helpers::wait_for("the reset email", async || {
        resets = smtp
            .messages_to(&email)
            .into_iter()
            .filter(|m| m.subject.starts_with("Reset your password"))
            .collect();
        !resets.is_empty()
    })
    .await;
    let token = resets[0].token("reset-password");
    let new_password = "harbor-quill-season-93";
    let resp = app
        .post(
            "/api/auth/reset-password",
            None,
            json!({"token": token, "password": new_password}),
        )
        .await;
    resp.assert_status(204);
    let reader = app.login(&email, new_password).await;
    let reset = events_of(&app, &reader, "user.password_reset").await;
    assert_eq!(reset.len(), 1, "{reset:#?}");
    assert_actor(&reset[0], admin.user_id, &email, "admin");
    assert_target(&reset[0], "user", admin.user_id);
    assert_caused_by(&reset[0], &resp);
    assert_eq!(reset[0]["changes"], json!({}));
    let text = reset[0].to_string();
    assert!(!text.contains(new_password) && !text.contains(&token));
}
