//! Webhooks: events delivered to a real HTTP receiver on loopback that checks their signatures,
//! retries after the receiver was down, the refusals of URLs that could reach inside, redirects
//! not followed, an endpoint disabled after sustained failure (its admins told by email over real
//! SMTP), and two instances on one database delivering each event once.

use std::{
    collections::BTreeSet,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU16, Ordering},
    },
    time::Duration,
};

use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use uuid::Uuid;

use crate::helpers::{
    self, Session, SmtpServer, TestApp, free_port, spawn_app, spawn_app_on, spawn_app_with,
    spawn_app_with_smtp, superuser, wait_for,
};

/// Loopback receivers need the address check off (and `http`).
pub(crate) const ALLOW_LOOPBACK: (&str, &str) = ("WEBHOOK_ALLOW_PRIVATE_NETWORKS", "true");
/// Retries soon after a failure, so that a test sees one.
const QUICK_RETRY: (&str, &str) = ("WEBHOOK_RETRY_BASE", "200ms");

/// A request the receiver got.
#[derive(Clone, Debug)]
pub(crate) struct Received {
    pub(crate) path: String,
    pub(crate) delivery: String,
    pub(crate) event: String,
    pub(crate) signature: String,
    pub(crate) body: Vec<u8>,
}

impl Received {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    /// Checks `X-CallingCard-Signature: t=<unix>,v1=<hex>` against `secret`, computed here
    /// independently of the service's code.
    #[track_caller]
    pub(crate) fn assert_signed_with(&self, secret: &str) {
        let (t, v1) = self
            .signature
            .split_once(',')
            .and_then(|(t, v)| Some((t.strip_prefix("t=")?, v.strip_prefix("v1=")?)))
            .unwrap_or_else(|| panic!("signature header {:?}", self.signature));
        let timestamp: i64 = t.parse().expect("a unix timestamp");
        let now = chrono::Utc::now().timestamp();
        assert!(
            (now - timestamp).abs() < 300,
            "signed at {timestamp}, now {now}"
        );
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{t}.").as_bytes());
        mac.update(&self.body);
        let expected = callingcard::hex::lower(&mac.finalize().into_bytes());
        assert_eq!(v1, expected, "the signature of {:?}", self.json());
    }
}

/// A real HTTP server on loopback that records what it is sent and answers `status`.
pub(crate) struct Receiver {
    port: u16,
    received: Arc<Mutex<Vec<Received>>>,
    status: Arc<AtomicU16>,
    /// While false, requests are held (recorded, not answered).
    open: tokio::sync::watch::Sender<bool>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Receiver {
    pub(crate) async fn start() -> Self {
        Self::start_on(0).await
    }

    pub(crate) async fn start_on(port: u16) -> Self {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("binding the receiver");
        let port = listener.local_addr().unwrap().port();
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let status = Arc::new(AtomicU16::new(200));
        let (open, _) = tokio::sync::watch::channel(true);
        let endpoint = {
            let (received, status, open) = (received.clone(), status.clone(), open.clone());
            poem::endpoint::make(move |mut req: poem::Request| {
                let (received, status) = (received.clone(), status.clone());
                let mut open = open.subscribe();
                async move {
                    let header = |name: &str| req.header(name).unwrap_or_default().to_owned();
                    let mut got = Received {
                        path: req.uri().path().to_owned(),
                        delivery: header("x-callingcard-delivery"),
                        event: header("x-callingcard-event"),
                        signature: header("x-callingcard-signature"),
                        body: Vec::new(),
                    };
                    got.body = req.take_body().into_vec().await.unwrap_or_default();
                    received.lock().unwrap().push(got);
                    let _ = open.wait_for(|open| *open).await;
                    let code = status.load(Ordering::Relaxed);
                    let mut answer = poem::Response::builder()
                        .status(poem::http::StatusCode::from_u16(code).unwrap());
                    if (300..400).contains(&code) {
                        answer = answer.header("location", "/elsewhere");
                    }
                    answer.finish()
                }
            })
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let acceptor = poem::listener::TcpAcceptor::from_tokio(listener).unwrap();
        let task = tokio::spawn(async move {
            let _ = poem::Server::new_with_acceptor(acceptor)
                .run_with_graceful_shutdown(
                    endpoint,
                    async move {
                        let _ = stopped.await;
                    },
                    Some(Duration::from_secs(1)),
                )
                .await;
        });
        Self {
            port,
            received,
            status,
            open,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hooks/in", self.port)
    }

    pub(crate) fn answer(&self, status: u16) {
        self.status.store(status, Ordering::Relaxed);
    }

    /// Holds (`false`) or answers (`true`) requests, those held so far included.
    pub(crate) fn answering(&self, open: bool) {
        self.open.send_replace(open);
    }

    pub(crate) fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    pub(crate) async fn wait_for(&self, n: usize) -> Vec<Received> {
        wait_for(&format!("{n} webhook requests"), async || {
            self.received().len() >= n
        })
        .await;
        self.received()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

fn webhooks_path(admin: &Session) -> String {
    format!("/api/company/{}/webhooks", admin.company_id)
}

/// Adds a webhook to `url` for `events`; its id and secret.
pub(crate) async fn add_webhook(
    app: &TestApp,
    admin: &Session,
    url: &str,
    events: &[&str],
) -> (Uuid, String) {
    let resp = app
        .post(
            &webhooks_path(admin),
            Some(&admin.token),
            json!({"url": url, "events": events, "description": "CRM sync"}),
        )
        .await;
    resp.assert_status(201);
    let secret = resp.body["secret"].as_str().expect("the secret").to_owned();
    (resp.id(), secret)
}

pub(crate) async fn deliveries(app: &TestApp, admin: &Session, webhook: Uuid) -> Vec<Value> {
    let resp = app
        .get(
            &format!("{}/{webhook}/deliveries", webhooks_path(admin)),
            Some(&admin.token),
        )
        .await;
    resp.assert_status(200);
    resp.body.as_array().expect("a list").clone()
}

/// Waits until the webhook's deliveries satisfy `condition`; them.
pub(crate) async fn wait_for_deliveries(
    app: &TestApp,
    admin: &Session,
    webhook: Uuid,
    what: &str,
    condition: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    wait_for(what, async || {
        condition(&deliveries(app, admin, webhook).await)
    })
    .await;
    deliveries(app, admin, webhook).await
}

#[tokio::test]
async fn employee_events_are_delivered_signed_with_a_stable_delivery_id() {
    let app = spawn_app_with(&[ALLOW_LOOPBACK]).await;
    let admin = app.signup("Hooked Inc").await;
    let receiver = Receiver::start().await;
    let events = ["employee.created", "employee.updated", "employee.deleted"];
    let (webhook, secret) = add_webhook(&app, &admin, &receiver.url(), &events).await;
    assert!(
        secret.starts_with("whsec_") && secret.len() >= 40,
        "{secret}"
    );

    // The secret is shown once: never in a list or a read.
    let listed = app.get(&webhooks_path(&admin), Some(&admin.token)).await;
    listed.assert_status(200);
    assert_eq!(listed.body.as_array().unwrap().len(), 1);
    let one = app
        .get(
            &format!("{}/{webhook}", webhooks_path(&admin)),
            Some(&admin.token),
        )
        .await;
    one.assert_status(200);
    assert_eq!(one.body["events"], json!(events));
    assert_eq!(one.body["enabled"], true);
    for body in [listed.body.to_string(), one.body.to_string()] {
        assert!(
            !body.contains(&secret) && !body.contains("secret"),
            "{body}"
        );
    }

    let employee = app.add_employee(&admin, "Hook Person").await;
    let employee_id = helpers::uuid_of(&employee);
    app.put(
        &format!("/api/employees/{employee_id}"),
        Some(&admin.token),
        json!({"job_title": "Head of Hooks"}),
    )
    .await
    .assert_status(200);
    app.delete(&format!("/api/employees/{employee_id}"), Some(&admin.token))
        .await
        .assert_status(204);

    let received = receiver.wait_for(3).await;
    let kinds: BTreeSet<&str> = received.iter().map(|r| r.event.as_str()).collect();
    assert_eq!(kinds, BTreeSet::from(events));
    let shown = wait_for_deliveries(&app, &admin, webhook, "3 deliveries recorded", |d| {
        d.len() == 3 && d.iter().all(|d| d["state"] == "delivered")
    })
    .await;
    for got in &received {
        got.assert_signed_with(&secret);
        assert_eq!(got.path, "/hooks/in");
        let body = got.json();
        assert_eq!(body["type"], got.event.as_str());
        assert_eq!(body["data"]["id"], employee_id.to_string());
        assert_eq!(body["data"]["full_name"], "Hook Person");
        assert!(
            body["id"]
                .as_str()
                .is_some_and(|id| id.parse::<Uuid>().is_ok())
        );
        assert!(body["created_at"].as_str().is_some());
        if got.event == "employee.updated" {
            assert_eq!(body["data"]["job_title"], "Head of Hooks");
        }
        // The delivery header is the delivery the admins see, delivered at its first attempt.
        let delivery = shown
            .iter()
            .find(|d| d["id"] == got.delivery.as_str())
            .unwrap_or_else(|| panic!("delivery {} not listed: {shown:?}", got.delivery));
        assert_eq!(delivery["event"], got.event.as_str());
        assert_eq!(delivery["event_id"], body["id"]);
        let attempts = delivery["attempts"].as_array().unwrap();
        assert_eq!(attempts.len(), 1, "{delivery}");
        assert_eq!(attempts[0]["status"], "delivered");
        assert_eq!(attempts[0]["response_code"], 200);
        assert!(attempts[0]["latency_ms"].as_i64().is_some());
        assert!(delivery["next_attempt_at"].is_null());
    }
    // Sent payloads are not kept.
    let db = superuser(&app).await;
    let kept = helpers::scalar(
        &db,
        "SELECT count(*) FROM webhook_deliveries WHERE payload IS NOT NULL",
        &[],
    )
    .await;
    assert_eq!(kept, 0);
}

#[tokio::test]
async fn the_test_endpoint_sends_a_ping() {
    let app = spawn_app_with(&[ALLOW_LOOPBACK]).await;
    let admin = app.signup("Pinged Inc").await;
    let receiver = Receiver::start().await;
    let (webhook, secret) = add_webhook(&app, &admin, &receiver.url(), &["lead.created"]).await;
    let resp = app
        .post(
            &format!("{}/{webhook}/test", webhooks_path(&admin)),
            Some(&admin.token),
            json!({}),
        )
        .await;
    resp.assert_status(202);
    let delivery = resp.body["delivery_id"].as_str().unwrap().to_owned();
    let got = receiver.wait_for(1).await.remove(0);
    assert_eq!(got.event, "ping");
    assert_eq!(got.delivery, delivery);
    assert_eq!(got.json()["data"]["webhook_id"], webhook.to_string());
    got.assert_signed_with(&secret);

    // Unknown webhooks and other companies' are missing.
    let missing = format!("{}/{}/test", webhooks_path(&admin), Uuid::new_v4());
    app.post(&missing, Some(&admin.token), json!({}))
        .await
        .assert_error(404, "not_found");
    let other = app.signup("Other Inc").await;
    app.post(
        &format!("{}/{webhook}/test", webhooks_path(&other)),
        Some(&other.token),
        json!({}),
    )
    .await
    .assert_error(404, "not_found");

    // Changes are in the audit trail, the secret never.
    let one = format!("{}/{webhook}", webhooks_path(&admin));
    app.put(&one, Some(&admin.token), json!({"description": "Renamed"}))
        .await
        .assert_status(200);
    app.delete(&one, Some(&admin.token))
        .await
        .assert_status(204);
    app.delete(&one, Some(&admin.token))
        .await
        .assert_error(404, "not_found");
    let trail = helpers::audit_events(&app, &admin, "action=webhook.*").await;
    let actions: Vec<&str> = trail
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["webhook.deleted", "webhook.updated", "webhook.created"]
    );
    assert!(
        trail
            .iter()
            .all(|e| e["target"]["id"] == webhook.to_string()),
        "{trail:?}"
    );
    let text = serde_json::to_string(&trail).unwrap();
    assert!(!text.contains(&secret), "{text}");
}

#[tokio::test]
async fn a_receiver_down_then_back_gets_the_delivery_after_a_retry() {
    let app = spawn_app_with(&[ALLOW_LOOPBACK, QUICK_RETRY]).await;
    let admin = app.signup("Patient Inc").await;
    // Nothing listens there yet.
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/hooks/in");
    let (webhook, secret) = add_webhook(&app, &admin, &url, &["employee.created"]).await;
    app.add_employee(&admin, "Waiting Person").await;
    let failed = wait_for_deliveries(&app, &admin, webhook, "a failed first attempt", |d| {
        d.len() == 1 && !d[0]["attempts"].as_array().unwrap().is_empty()
    })
    .await;
    let delivery = failed[0]["id"].as_str().unwrap().to_owned();
    let first = &failed[0]["attempts"][0];
    assert_eq!(first["status"], "failed", "{first}");
    assert!(first["response_code"].is_null(), "{first}");
    assert!(
        first["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{first}"
    );

    let receiver = Receiver::start_on(port).await;
    let got = receiver.wait_for(1).await.remove(0);
    got.assert_signed_with(&secret);
    // The same delivery id as the attempts that failed: a receiver can drop duplicates.
    assert_eq!(got.delivery, delivery);
    let done = wait_for_deliveries(&app, &admin, webhook, "the delivery recorded", |d| {
        d[0]["state"] == "delivered"
    })
    .await;
    let attempts = done[0]["attempts"].as_array().unwrap();
    assert!(attempts.len() >= 2, "{attempts:?}");
    assert_eq!(attempts.last().unwrap()["status"], "delivered");
    assert!(
        attempts[..attempts.len() - 1]
            .iter()
            .all(|a| a["status"] == "failed")
    );
    let numbers: Vec<i64> = attempts
        .iter()
        .map(|a| a["attempt"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, (1..=attempts.len() as i64).collect::<Vec<_>>());
}

#[tokio::test]
async fn urls_that_could_reach_inside_are_refused() {
    let app = spawn_app().await;
    let admin = app.signup("Careful Inc").await;
    let path = webhooks_path(&admin);
    for (url, code) in [
        ("https://127.0.0.1/hook", "webhook_url_not_public"),
        ("https://10.1.2.3/hook", "webhook_url_not_public"),
        ("https://192.168.0.10:8443/hook", "webhook_url_not_public"),
        (
            "https://169.254.169.254/latest/meta-data/",
            "webhook_url_not_public",
        ),
        ("https://[::1]/hook", "webhook_url_not_public"),
        ("https://[::ffff:127.0.0.1]/hook", "webhook_url_not_public"),
        ("https://100.64.1.1/hook", "webhook_url_not_public"),
        ("https://localhost/hook", "webhook_url_not_public"),
        ("https://2130706433/hook", "webhook_url_not_public"),
        ("http://example.com/hook", "webhook_url_not_https"),
        ("http://127.0.0.1/hook", "webhook_url_not_https"),
        ("ftp://example.com/hook", "webhook_url_not_https"),
        ("https://user:pw@example.com/hook", "invalid_webhook_url"),
        ("not a url", "invalid_webhook_url"),
    ] {
        app.post(
            &path,
            Some(&admin.token),
            json!({"url": url, "events": ["lead.created"]}),
        )
        .await
        .assert_error(422, code);
    }
    // A public address passes (a literal: no DNS needed here).
    let (webhook, _) = add_webhook(
        &app,
        &admin,
        "https://93.184.215.14/hook",
        &["lead.created"],
    )
    .await;
    // And a change is checked the same way.
    app.put(
        &format!("{path}/{webhook}"),
        Some(&admin.token),
        json!({"url": "https://169.254.169.254/"}),
    )
    .await
    .assert_error(422, "webhook_url_not_public");

    // Events, sizes and the number of webhooks are bounded.
    app.post(
        &path,
        Some(&admin.token),
        json!({"url": "https://93.184.215.14/", "events": ["card.viewed"]}),
    )
    .await
    .assert_error(422, "unknown_event");
    app.post(
        &path,
        Some(&admin.token),
        json!({"url": "https://93.184.215.14/", "events": ["ping"]}),
    )
    .await
    .assert_error(422, "unknown_event");
    app.post(
        &path,
        Some(&admin.token),
        json!({"url": "https://93.184.215.14/", "events": []}),
    )
    .await
    .assert_status(422);
    let long = format!("https://93.184.215.14/{}", "a".repeat(2100));
    app.post(
        &path,
        Some(&admin.token),
        json!({"url": long, "events": ["lead.created"]}),
    )
    .await
    .assert_status(422);
    app.post(
        &path,
        Some(&admin.token),
        json!({"url": "https://93.184.215.14/", "events": ["lead.created"], "description": "d".repeat(501)}),
    )
    .await
    .assert_status(422);
    for _ in 1..20 {
        add_webhook(
            &app,
            &admin,
            "https://93.184.215.14/hook",
            &["lead.created"],
        )
        .await;
    }
    app.post(
        &path,
        Some(&admin.token),
        json!({"url": "https://93.184.215.14/", "events": ["lead.created"]}),
    )
    .await
    .assert_error(409, "too_many_webhooks");

    // Employees may not manage webhooks.
    let employee = app.add_user(&admin, "employee", None).await;
    app.get(&path, Some(&employee.token))
        .await
        .assert_error(403, "forbidden");
}

#[tokio::test]
async fn addresses_are_checked_again_at_every_delivery() {
    // An endpoint on loopback, made where that was allowed...
    let mut permissive = spawn_app_with(&[ALLOW_LOOPBACK]).await;
    let admin = permissive.signup("Rebound Inc").await;
    let receiver = Receiver::start().await;
    // `https`, so that what the strict instance refuses is the address, not the scheme.
    let url = format!("https://127.0.0.1:{}/hooks/in", receiver.port);
    let (webhook, _) = add_webhook(&permissive, &admin, &url, &["employee.created"]).await;
    permissive.shutdown.take().unwrap().send(()).unwrap();
    (&mut permissive.server).await.unwrap().unwrap();
    // ...is refused by an instance where it is not, at the delivery.
    let strict = spawn_app_on(&permissive.dbname, &[]).await;
    strict.add_employee(&admin, "Unreachable Person").await;
    let failed = wait_for_deliveries(&strict, &admin, webhook, "a refused attempt", |d| {
        d.len() == 1 && !d[0]["attempts"].as_array().unwrap().is_empty()
    })
    .await;
    let attempt = &failed[0]["attempts"][0];
    assert_eq!(attempt["status"], "failed");
    let error = attempt["error"].as_str().unwrap();
    assert!(error.contains("not a public address"), "{error}");
    assert!(receiver.received().is_empty());
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let app = spawn_app_with(&[ALLOW_LOOPBACK]).await;
    let admin = app.signup("Redirected Inc").await;
    let receiver = Receiver::start().await;
    receiver.answer(302);
    let (webhook, _) = add_webhook(&app, &admin, &receiver.url(), &["lead.created"]).await;
    app.post(
        &format!("{}/{webhook}/test", webhooks_path(&admin)),
        Some(&admin.token),
        json!({}),
    )
    .await
    .assert_status(202);
    // A ping is tried once: given up at its first failure.
    let done = wait_for_deliveries(&app, &admin, webhook, "the ping given up", |d| {
        d.len() == 1 && d[0]["state"] == "failed"
    })
    .await;
    let attempt = &done[0]["attempts"][0];
    assert_eq!(attempt["response_code"], 302);
    assert!(
        attempt["error"].as_str().unwrap().contains("redirect"),
        "{attempt}"
    );
    let received = receiver.received();
    assert_eq!(received.len(), 1, "{received:?}");
    assert_eq!(received[0].path, "/hooks/in");
}

#[tokio::test]
async fn an_endpoint_failing_for_the_whole_window_is_disabled_and_its_admins_emailed() {
    let smtp = SmtpServer::start().await;
    let app = spawn_app_with_smtp(
        &smtp,
        &[
            ALLOW_LOOPBACK,
            ("WEBHOOK_RETRY_BASE", "100ms"),
            ("WEBHOOK_RETRY_WINDOW", "1s"),
        ],
    )
    .await;
    let admin = app.signup("Broken Endpoint Inc").await;
    let superadmin = app.superadmin().await;
    app.set_plan(&superadmin, admin.company_id, "enterprise")
        .await;
    let receiver = Receiver::start().await;
    receiver.answer(500);
    let (webhook, _) = add_webhook(&app, &admin, &receiver.url(), &["employee.created"]).await;
    app.add_employee(&admin, "Lost Event").await;

    // Besides the sign-up's verification email.
    let notices = || {
        smtp.messages_to(&admin.email)
            .into_iter()
            .filter(|m| m.subject.contains("webhook"))
            .collect::<Vec<_>>()
    };
    wait_for("the email of the disabled webhook", async || {
        !notices().is_empty()
    })
    .await;
    let email = notices().remove(0);
    assert!(email.subject.contains("disabled"), "{}", email.subject);
    assert!(email.text.contains(&receiver.url()), "{}", email.text);
    assert!(email.text.contains("HTTP 500"), "{}", email.text);
    let shown = app
        .get(
            &format!("{}/{webhook}", webhooks_path(&admin)),
            Some(&admin.token),
        )
        .await;
    shown.assert_status(200);
    assert_eq!(shown.body["enabled"], false, "{}", shown.body);
    assert_eq!(shown.body["disabled_reason"], "failing");
    assert!(shown.body["consecutive_failures"].as_i64().unwrap() >= 2);
    let given_up = deliveries(&app, &admin, webhook).await;
    assert_eq!(given_up[0]["state"], "failed");
    let attempts = given_up[0]["attempts"].as_array().unwrap();
    assert!(attempts.len() >= 2, "{attempts:?}");
    assert!(attempts.iter().all(|a| a["response_code"] == 500));
    let tried = receiver.received().len();

    // While disabled, events queue nothing for it.
    app.add_employee(&admin, "Unsent Event").await;
    assert_eq!(deliveries(&app, &admin, webhook).await.len(), 1);
    // Turned on again by an admin, it starts afresh and delivers.
    receiver.answer(200);
    let on = app
        .put(
            &format!("{}/{webhook}", webhooks_path(&admin)),
            Some(&admin.token),
            json!({"enabled": true}),
        )
        .await;
    on.assert_status(200);
    assert_eq!(on.body["enabled"], true);
    assert!(on.body["disabled_reason"].is_null());
    assert_eq!(on.body["consecutive_failures"], 0);
    app.add_employee(&admin, "Sent Event").await;
    receiver.wait_for(tried + 1).await;
    // One email, not one per failed attempt.
    assert_eq!(notices().len(), 1);
}

#[tokio::test]
async fn two_instances_deliver_each_event_once() {
    let first = spawn_app_with(&[ALLOW_LOOPBACK]).await;
    let second = spawn_app_on(&first.dbname, &[ALLOW_LOOPBACK]).await;
    let admin = first.signup("Twice Inc").await;
    let superadmin = first.superadmin().await;
    first
        .set_plan(&superadmin, admin.company_id, "enterprise")
        .await;
    let receiver = Receiver::start().await;
    let (webhook, secret) =
        add_webhook(&first, &admin, &receiver.url(), &["employee.created"]).await;
    // One import: 40 events committed at once, and both instances woken by them.
    let rows: Vec<Value> = (0..40)
        .map(|i| json!({"full_name": format!("Imported {i}"), "email": format!("imported-{i}@twice.example")}))
        .collect();
    first
        .post(
            &format!("/api/company/{}/employees/import", admin.company_id),
            Some(&admin.token),
            json!({"rows": rows}),
        )
        .await
        .assert_status(200);
    // Once every delivery is recorded delivered, no worker can take one again.
    let db = superuser(&first).await;
    wait_for("40 deliveries recorded", async || {
        helpers::scalar(
            &db,
            "SELECT count(*) FROM webhook_deliveries WHERE state = 'delivered'",
            &[],
        )
        .await
            == 40
    })
    .await;
    let received = receiver.received();
    let ids: BTreeSet<&str> = received.iter().map(|r| r.delivery.as_str()).collect();
    assert_eq!(ids.len(), 40);
    assert_eq!(received.len(), 40, "some event was delivered twice");
    let attempts = helpers::scalar(&db, "SELECT count(*) FROM webhook_attempts", &[]).await;
    assert_eq!(attempts, 40);
    for got in &received {
        got.assert_signed_with(&secret);
    }
    let names: BTreeSet<String> = received
        .iter()
        .map(|r| r.json()["data"]["full_name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names.len(), 40);
    assert_eq!(deliveries(&second, &admin, webhook).await.len(), 20);
}

#[tokio::test]
async fn erasing_a_subject_drops_its_deliveries_not_sent() {
    // Retries an hour apart: the delivery stays pending after its first failure.
    let app = spawn_app_with(&[ALLOW_LOOPBACK, ("WEBHOOK_RETRY_BASE", "1h")]).await;
    let admin = app.signup("Forgetful Inc").await;
    let url = format!("http://127.0.0.1:{}/hooks/in", free_port());
    let (webhook, _) = add_webhook(&app, &admin, &url, &["employee.created"]).await;
    let employee = helpers::uuid_of(&app.add_employee(&admin, "Erased Person").await);
    let pending = wait_for_deliveries(&app, &admin, webhook, "a failed first attempt", |d| {
        d.len() == 1 && !d[0]["attempts"].as_array().unwrap().is_empty()
    })
    .await;
    assert_eq!(pending[0]["state"], "pending");
    assert!(pending[0]["next_attempt_at"].is_string());

    let owner = superuser(&app).await;
    let tenant =
        helpers::member_tenant(&owner, admin.company_id, callingcard::auth::Role::Admin).await;
    let erased = app
        .db
        .write(&tenant, async |tx| {
            callingcard::model::webhook::erase_subject(&tx, employee).await
        })
        .await
        .unwrap();
    assert_eq!(erased, 1);
    let left = helpers::scalar(
        &owner,
        "SELECT count(*) FROM webhook_deliveries WHERE subject_id = $1",
        &[&employee],
    )
    .await;
    assert_eq!(left, 0);
    assert!(deliveries(&app, &admin, webhook).await.is_empty());
}

#[tokio::test]
async fn a_hanging_receiver_holds_a_few_slots_and_other_endpoints_still_get_their_events() {
    let app = spawn_app_with(&[ALLOW_LOOPBACK]).await;
    let admin = app.signup("Shared Worker Inc").await;
    let superadmin = app.superadmin().await;
    app.set_plan(&superadmin, admin.company_id, "enterprise")
        .await;
    let hanging = Receiver::start().await;
    hanging.answering(false);
    let quick = Receiver::start().await;
    add_webhook(&app, &admin, &hanging.url(), &["employee.created"]).await;
    add_webhook(&app, &admin, &quick.url(), &["employee.created"]).await;
    let rows: Vec<Value> = (0..12)
        .map(|i| json!({"full_name": format!("Busy {i}"), "email": format!("busy-{i}@shared.example")}))
        .collect();
    app.post(
        &format!("/api/company/{}/employees/import", admin.company_id),
        Some(&admin.token),
        json!({"rows": rows}),
    )
    .await
    .assert_status(200);
    // The quick endpoint gets all twelve while the hanging one holds what it was sent...
    quick.wait_for(12).await;
    let db = superuser(&app).await;
    wait_for("the quick endpoint's deliveries recorded", async || {
        helpers::scalar(
            &db,
            "SELECT count(*) FROM webhook_deliveries WHERE state = 'delivered'",
            &[],
        )
        .await
            == 12
    })
    .await;
    // ...which is four (of sixteen slots), not twelve.
    let held = hanging.received().len();
    assert!(
        (1..=4).contains(&held),
        "{held} requests held by one endpoint"
    );
    // Once it answers, the rest follows.
    hanging.answering(true);
    wait_for("every delivery recorded", async || {
        helpers::scalar(
            &db,
            "SELECT count(*) FROM webhook_deliveries WHERE state = 'delivered'",
            &[],
        )
        .await
            == 24
    })
    .await;
}
