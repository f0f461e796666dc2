//! The contract around the endpoints: the committed OpenAPI spec, the docs, health, and the
//! error shape of everything the framework refuses before a handler runs.

use crate::helpers::{self, spawn_app};
use serde_json::json;

const SPEC_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json");

/// Regenerate with `UPDATE_OPENAPI=1 cargo test --test api -- api_contract::` (or
/// `cargo run -- openapi > openapi/openapi.json`) and commit the result.
#[test]
fn committed_openapi_spec_matches_the_code() {
    let generated = format!("{}\n", callingcard::api::spec_json());
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(SPEC_PATH, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(SPEC_PATH).unwrap_or_default();
    assert!(
        committed == generated,
        "openapi/openapi.json is out of date: run `UPDATE_OPENAPI=1 cargo test --test api -- api_contract::` and commit it"
    );
}

#[test]
fn spec_documents_every_route_and_the_error_shape() {
    let spec: serde_json::Value = serde_json::from_str(&callingcard::api::spec_json()).unwrap();
    assert_eq!(spec["openapi"], "3.0.0");
    let paths = spec["paths"].as_object().unwrap();
    for path in [
        "/auth/signup",
        "/auth/login",
        "/auth/me",
        "/auth/change-password",
        "/company",
        "/company/{company_id}",
        "/company/{company_id}/employees",
        "/company/{company_id}/users",
        "/company/{company_id}/subscription",
        "/employees/{employee_id}",
        "/subscriptions/plans",
        "/subscriptions/current",
        "/health",
    ] {
        assert!(paths.contains_key(path), "{path} missing from the spec");
    }
    let error = &spec["components"]["schemas"]["ErrorBody"]["properties"];
    assert!(error["detail"].is_object() && error["code"].is_object());
    assert_eq!(spec["servers"][0]["url"], "/api");
}

#[tokio::test]
async fn docs_and_spec_are_served() {
    let app = spawn_app().await;
    let docs = app
        .client
        .get(format!("{}/docs/", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(docs.status(), 200);
    assert!(docs.text().await.unwrap().contains("swagger"));
    let spec = app.get("/openapi.json", None).await;
    spec.assert_status(200);
    assert_eq!(spec.body["info"]["title"], "CallingCard");
    // The completed spec (every operation listing its statuses), as committed.
    assert_eq!(spec.body, callingcard::api::spec_value());
}

#[tokio::test]
async fn a_method_a_path_does_not_take_is_405_with_allow() {
    let app = spawn_app().await;
    let resp = app
        .request(reqwest::Method::PATCH, "/api/company", None, None)
        .await;
    resp.assert_error(405, "method_not_allowed");
    assert_eq!(resp.headers["allow"], "GET, POST");
    let employee = format!("/api/employees/{}", uuid::Uuid::new_v4());
    let resp = app
        .request(reqwest::Method::POST, &employee, None, None)
        .await;
    resp.assert_error(405, "method_not_allowed");
    assert_eq!(resp.headers["allow"], "DELETE, GET, PUT");
}

#[tokio::test]
async fn a_form_that_cannot_be_read_is_a_documented_400() {
    let app = spawn_app().await;
    let admin = app.signup("Forms Co").await;
    let logo = format!("{}/api/company/{}/logo", app.address, admin.company_id);
    let spec = callingcard::api::spec_value();
    let responses = &spec["paths"]["/company/{company_id}/logo"]["put"]["responses"];
    assert!(responses["400"].is_object(), "{responses}");
    // (A readable form without its `file` is a 422: see tests/required_fields.rs.)
    for body in ["--b\r\n867694419--b--\r\n"] {
        let resp = app
            .client
            .put(&logo)
            .bearer_auth(&admin.token)
            .header("content-type", "multipart/form-data; boundary=b")
            .body(body)
            .send()
            .await
            .unwrap();
        helpers::TestApp::read(resp)
            .await
            .assert_error(400, "bad_request");
    }
}

#[tokio::test]
async fn health_reports_the_database_and_503_when_it_is_gone() {
    let app = spawn_app().await;
    let ok = app.get("/api/health", None).await;
    ok.assert_status(200);
    assert_eq!(ok.body, json!({"status": "ok", "database": "ok"}));

    // Cut the service off: no new connections, existing ones terminated.
    let owner = helpers::connect(&helpers::superuser_url("postgres")).await;
    owner
        .batch_execute(&format!(
            "ALTER DATABASE {db} ALLOW_CONNECTIONS false;
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{db}';",
            db = app.dbname
        ))
        .await
        .unwrap();
    let down = app.get("/api/health", None).await;
    down.assert_status(503);
    down.assert_error(503, "database_unavailable");
    assert_eq!(
        (&down.body["status"], &down.body["database"]),
        (&json!("degraded"), &json!("unreachable"))
    );
    // Any other endpoint answers a clear 503 with the same code, not a 500.
    let plans = app.get("/api/subscriptions/plans", None).await;
    plans.assert_error(503, "database_unavailable");
    // As the spec says of every 503: when to come back.
    assert!(
        plans.headers.contains_key("retry-after"),
        "{:?}",
        plans.headers
    );

    owner
        .batch_execute(&format!(
            "ALTER DATABASE {} ALLOW_CONNECTIONS true",
            app.dbname
        ))
        .await
        .unwrap();
    app.get("/api/health", None).await.assert_status(200);
}

#[tokio::test]
async fn framework_refusals_use_the_error_shape() {
    let app = spawn_app().await;
    app.get("/api/no-such-route", None)
        .await
        .assert_error(404, "not_found");
    app.request(reqwest::Method::PATCH, "/api/health", None, None)
        .await
        .assert_error(405, "method_not_allowed");

    let admin = app.signup("Limits Co").await;
    let huge = json!({"full_name": "x".repeat(2 * 1024 * 1024)});
    let resp = app
        .post(
            &format!("/api/company/{}/employees", admin.company_id),
            Some(&admin.token),
            huge,
        )
        .await;
    resp.assert_error(413, "payload_too_large");

    // A chunked body (no Content-Length) is limited too.
    let stream =
        futures::stream::iter((0..40).map(|_| Ok::<_, std::io::Error>(vec![b' '; 64 * 1024])));
    let chunked = app
        .client
        .post(format!("{}/api/auth/login", app.address))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    helpers::TestApp::read(chunked)
        .await
        .assert_error(413, "payload_too_large");
}

#[tokio::test]
async fn cors_allows_only_configured_origins() {
    let app = helpers::spawn_app_with(&[("CORS_ORIGINS", "https://app.example.com")]).await;
    let preflight = |origin: &'static str| {
        app.client
            .request(
                reqwest::Method::OPTIONS,
                format!("{}/api/auth/me", app.address),
            )
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
            .send()
    };
    let allowed = preflight("https://app.example.com").await.unwrap();
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    let refused = preflight("https://evil.example").await.unwrap();
    assert!(
        refused
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );

    let admin = app.signup("Cors Co").await;
    let list = app
        .client
        .get(format!(
            "{}/api/company/{}/employees",
            app.address, admin.company_id
        ))
        .bearer_auth(&admin.token)
        .header("origin", "https://app.example.com")
        .send()
        .await
        .unwrap();
    let exposed = list.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(exposed.contains("x-total-count"), "{exposed}");
    assert!(exposed.contains("x-next-cursor"), "{exposed}");
}

#[tokio::test]
async fn graceful_shutdown_lets_requests_in_flight_finish() {
    let mut app = spawn_app().await;
    let admin = app.signup("Drain Co").await;

    // Hold the company's plan lock so that an employee creation waits inside its transaction.
    let mut owner = helpers::connect(&helpers::superuser_url(&app.dbname)).await;
    let blocker = owner.transaction().await.unwrap();
    blocker
        .execute(
            "SELECT 1 FROM subscriptions WHERE company_id = $1 FOR UPDATE",
            &[&admin.company_id],
        )
        .await
        .unwrap();
    let in_flight = {
        let (client, url, token) = (
            app.client.clone(),
            format!("{}/api/company/{}/employees", app.address, admin.company_id),
            admin.token.clone(),
        );
        tokio::spawn(async move {
            client
                .post(url)
                .bearer_auth(token)
                .json(&json!({"full_name": "In Flight"}))
                .send()
                .await
        })
    };
    let monitor = helpers::connect(&helpers::superuser_url(&app.dbname)).await;
    helpers::wait_for(
        "the employee creation waits for the plan lock",
        async || {
            let waiting: i64 = monitor
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
                 AND usename = 'callingcard_app' AND wait_event_type = 'Lock'",
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            waiting > 0
        },
    )
    .await;

    app.shutdown.take().unwrap().send(()).unwrap();
    // New connections are refused while the request in flight is still waiting.
    helpers::wait_for("the server refuses new connections", async || {
        tokio::net::TcpStream::connect(("127.0.0.1", app.port))
            .await
            .is_err()
    })
    .await;
    assert!(!in_flight.is_finished());

    blocker.commit().await.unwrap();
    let resp = in_flight
        .await
        .unwrap()
        .expect("the request in flight is answered");
    assert_eq!(resp.status(), 201);
    (&mut app.server)
        .await
        .unwrap()
        .expect("the server stops cleanly");
}

/// Clients generated from the spec name their functions after operationIds.
#[test]
fn every_operation_has_a_unique_operation_id() {
    let spec = callingcard::api::spec_value();
    let mut seen = std::collections::BTreeMap::new();
    let mut missing = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            match operation["operationId"].as_str() {
                Some(id) => {
                    if let Some(other) = seen.insert(id.to_owned(), format!("{method} {path}")) {
                        panic!("operationId {id} names both {other} and {method} {path}");
                    }
                }
                None => missing.push(format!("{method} {path}")),
            }
        }
    }
    assert!(missing.is_empty(), "no operationId: {missing:?}");
}

#[tokio::test]
async fn a_401_says_how_to_authenticate() {
    let app = spawn_app().await;
    let anonymous = app.get("/api/auth/me", None).await;
    anonymous.assert_error(401, "unauthorized");
    assert_eq!(anonymous.headers["www-authenticate"], "Bearer");
    let forged = app.get("/api/auth/me", Some("not-a-token")).await;
    forged.assert_error(401, "unauthorized");
    assert_eq!(
        forged.headers["www-authenticate"],
        r#"Bearer error="invalid_token""#
    );
    let spec = callingcard::api::spec_value();
    assert!(
        spec["paths"]["/auth/me"]["get"]["responses"]["401"]["headers"]["WWW-Authenticate"]
            .is_object()
    );
}

#[tokio::test]
async fn a_405_beside_the_api_says_allow_and_never_connect_or_trace() {
    let app = spawn_app().await;
    let resp = app
        .request(reqwest::Method::POST, "/card/acme/jane", None, None)
        .await;
    resp.assert_error(405, "method_not_allowed");
    assert_eq!(resp.headers["allow"], "GET, HEAD");
    for path in ["/api/company", "/api/health", "/card/acme/jane"] {
        let resp = app.request(reqwest::Method::PATCH, path, None, None).await;
        let allow = resp.headers["allow"].to_str().unwrap();
        assert!(
            !allow.contains("CONNECT") && !allow.contains("TRACE"),
            "{path}: {allow}"
        );
    }
}

#[tokio::test]
async fn cors_answers_vary_on_the_origin_and_refuse_in_the_error_shape() {
    let app = helpers::spawn_app_with(&[("CORS_ORIGINS", "https://app.example.com")]).await;
    let get = |origin: Option<&'static str>| {
        let mut req = app.client.get(format!("{}/api/health", app.address));
        if let Some(origin) = origin {
            req = req.header("origin", origin);
        }
        req.send()
    };
    for origin in [Some("https://app.example.com"), None] {
        let resp = get(origin).await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["vary"], "Origin", "origin {origin:?}");
    }
    let refused = helpers::TestApp::read(get(Some("https://evil.example")).await.unwrap()).await;
    refused.assert_error(403, "cors_refused");
    assert_eq!(refused.headers["vary"], "Origin");

    let preflight = app
        .client
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/api/auth/me", app.address),
        )
        .header("origin", "https://app.example.com")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.headers()["vary"], "Origin");
    let methods = preflight.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        methods.contains("GET") && !methods.contains("CONNECT") && !methods.contains("TRACE"),
        "{methods}"
    );
}

/// Chromium sends `Origin` with a same-origin `fetch` POST: the card page's beacons must pass
/// however CORS_ORIGINS is set.
#[tokio::test]
async fn the_card_pages_own_beacons_pass_whatever_cors_origins_says() {
    const CHROME: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
                          Chrome/131.0.0.0 Safari/537.36";
    let app = helpers::spawn_app_with(&[("CORS_ORIGINS", "https://admin.example.com")]).await;
    let admin = app.signup("Beacon Co").await;
    let employee = app.add_employee(&admin, "Jane Beacon").await;
    let track = |origin: &'static str| {
        app.client
            .post(format!(
                "{}/api/analytics/track?company_slug={}&employee_slug={}",
                app.address,
                employee["company_slug"].as_str().unwrap(),
                employee["public_slug"].as_str().unwrap()
            ))
            .header("origin", origin)
            .header("user-agent", CHROME)
            .json(&json!({"action": "view"}))
            .send()
    };
    // The service's own origin: PUBLIC_BASE_URL without its path.
    let own = helpers::TestApp::read(track(helpers::PUBLIC_BASE_URL).await.unwrap()).await;
    own.assert_status(200);
    assert_eq!(own.body["status"], "tracked");
    assert_eq!(
        own.headers["access-control-allow-origin"],
        helpers::PUBLIC_BASE_URL
    );
    let stranger = helpers::TestApp::read(track("https://elsewhere.example").await.unwrap()).await;
    stranger.assert_error(403, "cors_refused");
}
