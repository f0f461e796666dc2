//! Server-side sessions: what a login hands out (a short-lived access token naming its session,
//! an opaque refresh token stored only hashed), refresh with rotation and reuse detection, the
//! idle and absolute lifetimes, logging out, and the caller's list of sessions.
//!
//! Revocation seen from a second instance is in `revocation.rs`.

use crate::helpers::{
    self, ADMIN_PASSWORD, DESKTOP, IPHONE, TestApp, Tokens, spawn_app, spawn_app_with, superuser,
    wait_for,
};
use serde_json::{Value, json};
use uuid::Uuid;

/// The status and `code` of `GET /api/auth/me` with `access`.
async fn me(app: &TestApp, access: &str) -> (u16, Value) {
    let resp = app.get("/api/auth/me", Some(access)).await;
    (resp.status.as_u16(), resp.body["code"].clone())
}

#[track_caller]
fn assert_live(seen: (u16, Value), context: &str) {
    assert_eq!(seen.0, 200, "{context}: {seen:?}");
}

#[track_caller]
fn assert_ended(seen: (u16, Value), context: &str) {
    assert_eq!(seen, (401, json!("session_ended")), "{context}");
}

#[tokio::test]
async fn a_login_opens_a_session_with_a_short_access_token_and_a_hashed_refresh_token() {
    let app = spawn_app().await;
    let (email, signup) = app.signup_tokens("Pair Co").await;
    let resp = app
        .post(
            "/api/auth/login",
            None,
            json!({"email": email, "password": ADMIN_PASSWORD}),
        )
        .await;
    resp.assert_status(200);
    let login = Tokens::of(&resp);
    assert_eq!(
        resp.body["expires_in"], 900,
        "JWT_TTL defaults to 15 minutes"
    );
    let refresh_expires_in = resp.body["refresh_expires_in"].as_u64().unwrap();
    assert!(
        (30 * 86_400 - 60..=30 * 86_400).contains(&refresh_expires_in),
        "{refresh_expires_in}"
    );
    assert_eq!(login.refresh.len(), 43, "256 random bits, base64url");
    assert_ne!(login.session_id, signup.session_id);
    assert_ne!(login.refresh, signup.refresh);
    assert_live(me(&app, &login.access).await, "the login's token");

    // Stored: the session, and its refresh token only as a SHA-256.
    let owner = superuser(&app).await;
    let stored = owner
        .query_one(
            "SELECT (SELECT count(*) FROM sessions WHERE user_id = $1 AND revoked_at IS NULL),
                    (SELECT count(*) FROM session_refresh_tokens
                     WHERE token_hash = sha256(convert_to($2, 'UTF8')) AND session_id = $3),
                    (SELECT count(*) FROM sessions s
                     WHERE position($2 IN row_to_json(s)::text) > 0)
                    + (SELECT count(*) FROM session_refresh_tokens t
                       WHERE position($2 IN row_to_json(t)::text) > 0)",
            &[&login.user_id, &login.refresh, &login.session_id],
        )
        .await
        .unwrap();
    assert_eq!(
        (
            stored.get::<_, i64>(0),
            stored.get::<_, i64>(1),
            stored.get::<_, i64>(2)
        ),
        (2, 1, 0)
    );
}

#[tokio::test]
async fn a_refresh_rotates_the_pair_and_the_old_refresh_token_is_dead() {
    let app = spawn_app().await;
    let (_, first) = app.signup_tokens("Rotate Co").await;
    let resp = app.refresh(&first.refresh).await;
    resp.assert_status(200);
    // The login's shape, with a new pair of the same session.
    let mut keys: Vec<&String> = resp.body.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "access_token",
            "company_id",
            "expires_in",
            "refresh_expires_in",
            "refresh_token",
            "role",
            "token_type",
            "user_id"
        ]
    );
    let second = Tokens::of(&resp);
    assert_eq!(resp.body["role"], "admin");
    assert_eq!(second.session_id, first.session_id);
    assert_eq!(
        (second.user_id, second.company_id),
        (first.user_id, first.company_id)
    );
    assert_ne!(second.refresh, first.refresh);
    assert_live(me(&app, &second.access).await, "the refreshed token");

    // And again, with the new one: a chain of refreshes.
    let third = Tokens::of(app.refresh(&second.refresh).await.assert_status(200));
    assert_ne!(third.refresh, second.refresh);
    assert_live(
        me(&app, &third.access).await,
        "the token of the second refresh",
    );

    // last_used_at moved with the refreshes, created_at did not.
    let owner = superuser(&app).await;
    let row = owner
        .query_one(
            "SELECT last_used_at > created_at, revoked_at IS NULL FROM sessions WHERE id = $1",
            &[&first.session_id],
        )
        .await
        .unwrap();
    assert_eq!((row.get::<_, bool>(0), row.get::<_, bool>(1)), (true, true));
}

#[tokio::test]
async fn presenting_a_used_refresh_token_ends_the_whole_session() {
    let app = spawn_app().await;
    let (email, first) = app.signup_tokens("Reuse Co").await;
    let other = app.login_tokens(&email, ADMIN_PASSWORD, DESKTOP).await;
    let second = Tokens::of(app.refresh(&first.refresh).await.assert_status(200));
    let third = Tokens::of(app.refresh(&second.refresh).await.assert_status(200));

    // The first token again (a thief's copy, or the thief's victim): the session ends.
    app.refresh(&first.refresh)
        .await
        .assert_error(401, "session_ended");
    // Its newest refresh token and every access token of it are dead too…
    app.refresh(&third.refresh)
        .await
        .assert_error(401, "session_ended");
    for access in [&first.access, &second.access, &third.access] {
        assert_ended(
            me(&app, access).await,
            "an access token of the reused session",
        );
    }
    // …and the login's other session goes on.
    assert_live(me(&app, &other.access).await, "the other session");
    Tokens::of(app.refresh(&other.refresh).await.assert_status(200));

    let owner = superuser(&app).await;
    let reason: Option<String> = owner
        .query_one(
            "SELECT revoked_reason FROM sessions WHERE id = $1",
            &[&first.session_id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(reason.as_deref(), Some("refresh_token_reused"));
}

#[tokio::test]
async fn two_refreshes_racing_with_one_token_leave_one_winner_then_the_session_ends() {
    let app = spawn_app().await;
    let (_, first) = app.signup_tokens("Race Co").await;
    let (a, b) = tokio::join!(app.refresh(&first.refresh), app.refresh(&first.refresh));
    let mut statuses = [a.status.as_u16(), b.status.as_u16()];
    statuses.sort();
    // Serialized by the token's row lock: the second one to get it saw a used token.
    assert_eq!(statuses, [200, 401], "{} / {}", a.body, b.body);
    let winner = if a.status == 200 { &a } else { &b };
    let loser = if a.status == 200 { &b } else { &a };
    loser.assert_error(401, "session_ended");
    let winner = Tokens::of(winner);
    app.refresh(&winner.refresh)
        .await
        .assert_error(401, "session_ended");
    assert_ended(me(&app, &winner.access).await, "the winner's access token");
}

#[tokio::test]
async fn unknown_or_malformed_refresh_tokens_answer_401_in_the_error_shape() {
    let app = spawn_app().await;
    let (_, live) = app.signup_tokens("Garbage Co").await;
    let (unknown, _) = callingcard::model::session::new_refresh_token();
    let long = "a".repeat(100_000);
    let mangled = format!("{}!", &live.refresh[..42]);
    for garbage in [
        "",
        "abc",
        unknown.as_str(),
        mangled.as_str(),
        &live.refresh[..42],
        "ééééééééééééééééééééééééééééééééééééééééééé",
        "\u{202e}aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        long.as_str(),
        // An access token is no refresh token.
        live.access.as_str(),
    ] {
        let resp = app.refresh(garbage).await;
        resp.assert_error(401, "invalid_refresh_token");
        assert_eq!(resp.headers["www-authenticate"], "Bearer");
    }
    // A body of the wrong shape is a validation error, like anywhere else.
    for body in [
        json!({}),
        json!({"refresh_token": null}),
        json!({"refresh_token": 42}),
        json!({"refresh_token": live.refresh, "extra": 1}),
        json!([live.refresh]),
    ] {
        app.post("/api/auth/refresh", None, body.clone())
            .await
            .assert_error(422, "validation_error");
    }
    app.post(
        "/api/auth/refresh",
        None,
        json!({"refresh_token": "a\u{0}b"}),
    )
    .await
    .assert_status(422);
    // None of it touched the live session.
    Tokens::of(app.refresh(&live.refresh).await.assert_status(200));
}

#[tokio::test]
async fn a_session_not_refreshed_within_the_idle_limit_is_over() {
    let app = spawn_app().await;
    let (email, idle) = app.signup_tokens("Idle Co").await;
    let busy = app.login_tokens(&email, ADMIN_PASSWORD, DESKTOP).await;
    let owner = superuser(&app).await;
    // Eight days without a refresh: past the default idle limit of seven.
    owner
        .execute(
            "UPDATE sessions SET last_used_at = now() - interval '8 days',
                                 created_at = now() - interval '8 days'
             WHERE id = $1",
            &[&idle.session_id],
        )
        .await
        .unwrap();
    let listed = app.get("/api/auth/sessions", Some(&busy.access)).await;
    listed.assert_status(200);
    let ids: Vec<&str> = listed
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [busy.session_id.to_string()],
        "an idle session is not listed"
    );
    app.refresh(&idle.refresh)
        .await
        .assert_error(401, "session_ended");
    assert_ended(me(&app, &idle.access).await, "the idle session's token");
    Tokens::of(app.refresh(&busy.refresh).await.assert_status(200));
}

#[tokio::test]
async fn a_configured_idle_limit_ends_sessions_left_alone_that_long() {
    let app = spawn_app_with(&[("SESSION_IDLE_TTL", "2s")]).await;
    let (_, tokens) = app.signup_tokens("Tiny Idle Co").await;
    // Refreshing within the limit keeps the session going.
    let tokens = Tokens::of(app.refresh(&tokens.refresh).await.assert_status(200));
    let owner = superuser(&app).await;
    wait_for("the session to be idle for 2 s", async || {
        owner
            .query_one(
                "SELECT last_used_at < now() - interval '2 seconds' FROM sessions WHERE id = $1",
                &[&tokens.session_id],
            )
            .await
            .unwrap()
            .get::<_, bool>(0)
    })
    .await;
    app.refresh(&tokens.refresh)
        .await
        .assert_error(401, "session_ended");
    assert_ended(me(&app, &tokens.access).await, "the idle session's token");
}

#[tokio::test]
async fn a_session_ends_at_its_absolute_lifetime_however_often_it_is_refreshed() {
    let app = spawn_app_with(&[("SESSION_TTL", "3s")]).await;
    let (_, tokens) = app.signup_tokens("Short Life Co").await;
    let resp = app.refresh(&tokens.refresh).await;
    resp.assert_status(200);
    assert!(resp.body["refresh_expires_in"].as_u64().unwrap() <= 3);
    let tokens = Tokens::of(&resp);
    let owner = superuser(&app).await;
    wait_for("the session to pass its end", async || {
        owner
            .query_one(
                "SELECT expires_at < now() FROM sessions WHERE id = $1",
                &[&tokens.session_id],
            )
            .await
            .unwrap()
            .get::<_, bool>(0)
    })
    .await;
    // The access token itself is still within its own 15 minutes: the session ended anyway.
    assert_ended(
        me(&app, &tokens.access).await,
        "a token of an expired session",
    );
    app.refresh(&tokens.refresh)
        .await
        .assert_error(401, "session_ended");
}

#[tokio::test]
async fn refreshing_for_a_disabled_or_deleted_login_is_refused() {
    let app = spawn_app().await;
    let owner = superuser(&app).await;
    let (_, disabled) = app.signup_tokens("Disabled Co").await;
    owner
        .execute(
            "UPDATE users SET is_active = false WHERE id = $1",
            &[&disabled.user_id],
        )
        .await
        .unwrap();
    app.refresh(&disabled.refresh)
        .await
        .assert_error(401, "session_ended");
    // Turned back on, the login must sign in again: its session was ended, not paused.
    owner
        .execute(
            "UPDATE users SET is_active = true WHERE id = $1",
            &[&disabled.user_id],
        )
        .await
        .unwrap();
    app.refresh(&disabled.refresh)
        .await
        .assert_error(401, "session_ended");

    let (_, deleted) = app.signup_tokens("Deleted Co").await;
    owner
        .execute("DELETE FROM users WHERE id = $1", &[&deleted.user_id])
        .await
        .unwrap();
    // Its sessions and refresh tokens went with it.
    app.refresh(&deleted.refresh)
        .await
        .assert_error(401, "invalid_refresh_token");
    assert_ended(me(&app, &deleted.access).await, "a deleted login's token");
}

#[tokio::test]
async fn a_refresh_carries_the_logins_current_role() {
    let app = spawn_app().await;
    let (_, admin) = app.signup_tokens("Demoted Co").await;
    let owner = superuser(&app).await;
    owner
        .execute(
            "UPDATE users SET role = 'employee' WHERE id = $1",
            &[&admin.user_id],
        )
        .await
        .unwrap();
    // The old token's role is no longer the login's: refused, and told to refresh.
    assert_eq!(
        me(&app, &admin.access).await,
        (401, json!("token_outdated"))
    );
    let resp = app.refresh(&admin.refresh).await;
    resp.assert_status(200);
    assert_eq!(resp.body["role"], "employee");
    let demoted = Tokens::of(&resp);
    let me = app.get("/api/auth/me", Some(&demoted.access)).await;
    me.assert_status(200);
    assert_eq!(me.body["role"], "employee");
    app.post(
        &format!("/api/company/{}/users", demoted.company_id),
        Some(&demoted.access),
        json!({"email": "new-admin@example.com", "password": helpers::TEAMMATE_PASSWORD,
               "full_name": "New Admin", "role": "admin"}),
    )
    .await
    .assert_error(403, "forbidden");
}

/// The ids of `GET /api/auth/sessions` as `access`, and the one marked current.
async fn listed(app: &TestApp, access: &str) -> (Vec<Uuid>, Vec<Uuid>) {
    let resp = app.get("/api/auth/sessions", Some(access)).await;
    resp.assert_status(200);
    let list = resp.body.as_array().expect("a list").clone();
    let ids = list
        .iter()
        .map(|s| s["id"].as_str().unwrap().parse().unwrap())
        .collect();
    let current = list
        .iter()
        .filter(|s| s["current"] == true)
        .map(|s| s["id"].as_str().unwrap().parse().unwrap())
        .collect();
    (ids, current)
}

#[tokio::test]
async fn the_session_list_shows_the_callers_live_sessions_newest_first() {
    let app = spawn_app().await;
    let (email, signup) = app.signup_tokens("List Co").await;
    let phone = app.login_tokens(&email, ADMIN_PASSWORD, IPHONE).await;
    let desktop = app.login_tokens(&email, ADMIN_PASSWORD, DESKTOP).await;
    // Someone else's sessions are not in it.
    let (_, stranger) = app.signup_tokens("Stranger Co").await;

    let resp = app.get("/api/auth/sessions", Some(&phone.access)).await;
    resp.assert_status(200);
    let list = resp.body.as_array().unwrap();
    assert_eq!(list.len(), 3, "{}", resp.body);
    let first = list[0].as_object().unwrap();
    let mut fields: Vec<&String> = first.keys().collect();
    fields.sort();
    assert_eq!(
        fields,
        ["created_at", "current", "id", "last_used_at", "user_agent"]
    );
    assert_eq!(list[0]["id"], json!(desktop.session_id));
    assert_eq!(list[0]["user_agent"], DESKTOP);
    assert_eq!(list[1]["id"], json!(phone.session_id));
    assert_eq!(list[1]["user_agent"], IPHONE);
    assert_eq!(list[2]["id"], json!(signup.session_id));
    assert_eq!(
        list.iter()
            .map(|s| s["current"].as_bool().unwrap())
            .collect::<Vec<_>>(),
        [false, true, false]
    );
    let (_, current) = listed(&app, &desktop.access).await;
    assert_eq!(current, [desktop.session_id]);
    let (ids, _) = listed(&app, &stranger.access).await;
    assert_eq!(ids, [stranger.session_id]);

    // An ended session leaves the list.
    app.post("/api/auth/logout", Some(&phone.access), json!({}))
        .await
        .assert_status(204);
    let (ids, _) = listed(&app, &desktop.access).await;
    assert_eq!(ids, [desktop.session_id, signup.session_id]);
}

#[tokio::test]
async fn deleting_a_session_ends_it_and_only_the_callers_own() {
    let app = spawn_app().await;
    let (email, laptop) = app.signup_tokens("Delete Co").await;
    let lost_phone = app.login_tokens(&email, ADMIN_PASSWORD, IPHONE).await;
    let (_, stranger) = app.signup_tokens("Someone Else Co").await;
    let path = |id: Uuid| format!("/api/auth/sessions/{id}");

    // Another login's session, an unknown one: 404 alike, and nothing ends.
    let theirs = app
        .delete(&path(stranger.session_id), Some(&laptop.access))
        .await;
    theirs.assert_error(404, "not_found");
    let unknown = app
        .delete(&path(Uuid::new_v4()), Some(&laptop.access))
        .await;
    assert_eq!(
        (theirs.status, &theirs.body),
        (unknown.status, &unknown.body)
    );
    assert_live(me(&app, &stranger.access).await, "the stranger's session");
    app.delete("/api/auth/sessions/not-a-uuid", Some(&laptop.access))
        .await
        .assert_error(422, "invalid_parameter");

    app.delete(&path(lost_phone.session_id), Some(&laptop.access))
        .await
        .assert_status(204);
    assert_ended(me(&app, &lost_phone.access).await, "the deleted session");
    app.refresh(&lost_phone.refresh)
        .await
        .assert_error(401, "session_ended");
    assert_live(me(&app, &laptop.access).await, "the caller's own session");
    // Once ended, it is no longer there to delete.
    app.delete(&path(lost_phone.session_id), Some(&laptop.access))
        .await
        .assert_error(404, "not_found");
    // Without a token: 401.
    app.delete(&path(laptop.session_id), None)
        .await
        .assert_error(401, "unauthorized");
    // The caller's own current session may go too: a logout.
    app.delete(&path(laptop.session_id), Some(&laptop.access))
        .await
        .assert_status(204);
    assert_ended(
        me(&app, &laptop.access).await,
        "the session deleted by itself",
    );
}

#[tokio::test]
async fn logout_ends_this_session_and_logout_all_every_one() {
    let app = spawn_app().await;
    let (email, a) = app.signup_tokens("Logout Co").await;
    let b = app.login_tokens(&email, ADMIN_PASSWORD, IPHONE).await;
    let c = app.login_tokens(&email, ADMIN_PASSWORD, DESKTOP).await;

    app.post("/api/auth/logout", Some(&a.access), json!({}))
        .await
        .assert_status(204);
    assert_ended(me(&app, &a.access).await, "the logged out session");
    app.refresh(&a.refresh)
        .await
        .assert_error(401, "session_ended");
    // Logging out twice: the token is dead already.
    app.post("/api/auth/logout", Some(&a.access), json!({}))
        .await
        .assert_error(401, "session_ended");
    assert_live(me(&app, &b.access).await, "another session");

    app.post("/api/auth/logout-all", Some(&b.access), json!({}))
        .await
        .assert_status(204);
    for (tokens, which) in [(&b, "the caller's"), (&c, "another")] {
        assert_ended(me(&app, &tokens.access).await, which);
        app.refresh(&tokens.refresh)
            .await
            .assert_error(401, "session_ended");
    }
    // Logging in again works.
    let d = app.login_tokens(&email, ADMIN_PASSWORD, DESKTOP).await;
    assert_live(me(&app, &d.access).await, "a new login");
    for path in ["/api/auth/logout", "/api/auth/logout-all"] {
        app.post(path, None, json!({}))
            .await
            .assert_error(401, "unauthorized");
    }
}

#[tokio::test]
async fn changing_the_password_ends_the_other_sessions_but_not_this_one() {
    let app = spawn_app().await;
    let (email, here) = app.signup_tokens("Password Co").await;
    let elsewhere = app.login_tokens(&email, ADMIN_PASSWORD, IPHONE).await;
    app.post(
        "/api/auth/change-password",
        Some(&here.access),
        json!({"current_password": ADMIN_PASSWORD, "new_password": "copper-tundra-violin-26"}),
    )
    .await
    .assert_status(204);
    assert_live(me(&app, &here.access).await, "the session that changed it");
    Tokens::of(app.refresh(&here.refresh).await.assert_status(200));
    assert_ended(me(&app, &elsewhere.access).await, "another session");
    app.refresh(&elsewhere.refresh)
        .await
        .assert_error(401, "session_ended");
}

#[tokio::test]
async fn a_login_keeps_at_most_fifty_live_sessions_and_sweeps_its_ended_ones() {
    let app = spawn_app().await;
    let (email, first) = app.signup_tokens("Many Co").await;
    let owner = superuser(&app).await;
    // 60 more live sessions, the oldest first, and 5 ended long ago.
    owner
        .execute(
            "INSERT INTO sessions (company_id, id, user_id, created_at, expires_at)
             SELECT $1, gen_random_uuid(), $2, now() - make_interval(mins => 100 - n),
                    now() + interval '1 day'
             FROM generate_series(1, 60) n",
            &[&first.company_id, &first.user_id],
        )
        .await
        .unwrap();
    owner
        .execute(
            "INSERT INTO sessions (company_id, id, user_id, expires_at, revoked_at)
             SELECT $1, gen_random_uuid(), $2, now() + interval '1 day', now() - interval '2 days'
             FROM generate_series(1, 5)",
            &[&first.company_id, &first.user_id],
        )
        .await
        .unwrap();
    let newest = app.login_tokens(&email, ADMIN_PASSWORD, DESKTOP).await;
    let counts = owner
        .query_one(
            "SELECT count(*) FILTER (WHERE revoked_at IS NULL),
                    count(*) FILTER (WHERE revoked_reason = 'too_many_sessions'),
                    count(*)
             FROM sessions WHERE user_id = $1",
            &[&first.user_id],
        )
        .await
        .unwrap();
    // 62 sessions were live: the 12 oldest ended, the 5 long ended are gone.
    assert_eq!(
        (
            counts.get::<_, i64>(0),
            counts.get::<_, i64>(1),
            counts.get::<_, i64>(2)
        ),
        (50, 12, 62)
    );
    // The newest two are the login's and the sign-up's.
    let (ids, current) = listed(&app, &newest.access).await;
    assert_eq!(ids.len(), 50);
    assert_eq!(ids[..2], [newest.session_id, first.session_id]);
    assert_eq!(current, [newest.session_id]);
}

#[tokio::test]
async fn the_session_functions_need_no_tenant_and_answer_only_what_they_must() {
    let app = spawn_app().await;
    let (_, tokens) = app.signup_tokens("Definer Co").await;
    let service = helpers::connect(&helpers::app_role_url(&app.dbname)).await;
    // Without a tenant the tables show nothing…
    for table in ["sessions", "session_refresh_tokens"] {
        let seen = helpers::scalar(&service, &format!("SELECT count(*) FROM {table}"), &[]).await;
        assert_eq!(seen, 0, "{table}");
    }
    // …and the check answers only yes, or raises.
    let check = "SELECT session_check($1, $2, $3, $4)";
    let (company, session, user) = (tokens.company_id, tokens.session_id, tokens.user_id);
    let live: bool = service
        .query_one(check, &[&company, &session, &user, &"admin"])
        .await
        .unwrap()
        .get(0);
    assert!(live);
    let stranger = Uuid::new_v4();
    // Another login, company or session: ended (CC001); the wrong role: outdated (CC002).
    for (company, session, user, role, expected) in [
        (company, session, stranger, "admin", "CC001"),
        (stranger, session, user, "admin", "CC001"),
        (company, stranger, user, "admin", "CC001"),
        (company, session, user, "superadmin", "CC002"),
    ] {
        let err = service
            .query_one(check, &[&company, &session, &user, &role])
            .await
            .unwrap_err();
        assert_eq!(
            err.as_db_error().map(|e| e.code().code()),
            Some(expected),
            "{company} {session} {user} {role}: {err}"
        );
    }
    // A refresh of a token nobody has says so, and nothing else.
    let unknown = callingcard::model::session::token_hash("never issued");
    let row = service
        .query_one(
            "SELECT * FROM session_refresh($1, $2, 604800)",
            &[&unknown, &unknown],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, &str>("outcome"), "unknown");
    assert!(row.get::<_, Option<Uuid>>("session_id").is_none());
    assert!(row.get::<_, Option<Uuid>>("user_id").is_none());
    assert!(row.get::<_, Option<String>>("role").is_none());
}
