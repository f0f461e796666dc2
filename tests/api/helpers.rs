//! Test harness: one throwaway PostgreSQL cluster for the whole run (every test lives in this one
//! binary), a template database migrated once, and for every test a fresh database cloned from
//! it with the app on port 0 in front. Also what several test modules need: the user agents, an
//! employee's public addresses (`Card`), the tracking beacon, and bounded waits.
//!
//! `TEST_LOG=1` shows the service's logs (filtered by `RUST_LOG`, `info` by default) in each
//! test's captured output: printed for a failing test, or for all with `-- --nocapture`.
#![allow(dead_code)]

use std::{
    sync::{Arc, Once, OnceLock},
    time::Duration,
};

use callingcard::{
    analytics::{ingest::IngestStats, live::LiveHub},
    api::{cards::PublicCards, users::create_superadmin},
    card::budget::WorkBudget,
    config::Config,
    db::{Db, embedded::LocalCluster, migrations},
    startup::Application,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio_postgres::{Client, NoTls, types::ToSql};
use tracing_subscriber::EnvFilter;
use uuid::Uuid;

pub const JWT_SECRET: &str = "integration-tests-secret-0123456789abcdef";
/// The password of every admin `signup` creates; strong enough for the password policy.
pub const ADMIN_PASSWORD: &str = "violet-anchor-drizzle-58";
/// The password of every login `add_user` creates.
pub const TEAMMATE_PASSWORD: &str = "marble-falcon-orbit-17";
/// The password of every `superadmin`.
pub const ROOT_PASSWORD: &str = "granite-wombat-lagoon-93";
pub const PUBLIC_BASE_URL: &str = "https://cards.example.test";
const TEMPLATE: &str = "callingcard_template";

/// An iPhone's Safari: a person on a phone.
pub const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1_2 like Mac OS X) \
                          AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1.2 Mobile/15E148 \
                          Safari/604.1";
/// An iPad's Safari: a tablet.
pub const IPAD: &str = "Mozilla/5.0 (iPad; CPU OS 17_1 like Mac OS X) AppleWebKit/605.1.15 \
                        (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1";
/// Chrome on Windows: a person at a desktop.
pub const DESKTOP: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 \
                           (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
/// Chrome on an Android phone.
pub const ANDROID: &str = "Mozilla/5.0 (Linux; Android 14; Pixel 8 Pro) AppleWebKit/537.36 \
                           (KHTML, like Gecko) Chrome/119.0.6045.163 Mobile Safari/537.36";
/// A link-preview bot: counted as a preview, never as a person.
pub const LINK_PREVIEW: &str = "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)";

/// Keeps `analytics_maintain()` from applying retention to events stored in the past (it waits
/// for the maintenance the service runs at start, then holds it off on this connection).
pub const HOLD_MAINTENANCE: &str =
    "SELECT pg_advisory_lock(hashtext('callingcard.analytics_maintain'))";

/// How long a test waits for something that happens by itself (a notification, a backend
/// ending, a server starting): far beyond what it takes, even on a busy machine.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// Installs the log subscriber once, when `TEST_LOG` is set (and not `0`); logs are off otherwise.
fn init_test_log() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some_and(|v| !v.is_empty() && v != "0") {
            let filter =
                EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
            let _ = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_test_writer()
                .try_init();
        }
    });
}

/// Waits until `condition` holds, checking every 20 ms; fails the test naming `what` once
/// `PATIENCE` has passed.
pub async fn wait_for(what: &str, mut condition: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !condition().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up waiting after {PATIENCE:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The cluster outlives every test's own runtime: it lives on a thread of its own, and the
/// watchdog stops it when this process exits.
struct SharedCluster {
    port: u16,
}

fn cluster() -> &'static SharedCluster {
    static CLUSTER: OnceLock<SharedCluster> = OnceLock::new();
    init_test_log();
    CLUSTER.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let result = async {
                    let cluster = LocalCluster::start_temporary().await?;
                    let admin = cluster.url("postgres");
                    let (client, conn) = tokio_postgres::connect(&admin, NoTls).await?;
                    tokio::spawn(conn);
                    client
                        .batch_execute(&format!("CREATE DATABASE {TEMPLATE}"))
                        .await?;
                    migrations::run(&cluster.url(TEMPLATE).parse()?, None).await?;
                    Ok::<_, anyhow::Error>(cluster)
                }
                .await;
                match result {
                    Ok(cluster) => {
                        tx.send(Ok(cluster.port())).unwrap();
                        // Keep the cluster (and its lifeline) for the life of the process.
                        std::future::pending::<()>().await;
                        drop(cluster);
                    }
                    Err(e) => tx.send(Err(format!("{e:#}"))).unwrap(),
                }
            });
        });
        let port = rx
            .recv()
            .unwrap()
            .unwrap_or_else(|e| panic!("starting the test cluster: {e}"));
        SharedCluster { port }
    })
}

pub fn superuser_url(dbname: &str) -> String {
    format!("postgres://postgres@127.0.0.1:{}/{dbname}", cluster().port)
}

/// The URL the service's own role would use on `dbname`.
pub fn app_role_url(dbname: &str) -> String {
    format!(
        "postgres://callingcard_app@127.0.0.1:{}/{dbname}",
        cluster().port
    )
}

pub async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, NoTls)
        .await
        .expect("connecting to the test cluster");
    tokio::spawn(conn);
    client
}

/// A new database, cloned from the migrated template.
pub async fn fresh_database() -> String {
    let name = format!("test_{}", Uuid::new_v4().simple());
    let admin = connect(&superuser_url("postgres")).await;
    admin
        .batch_execute(&format!("CREATE DATABASE {name} TEMPLATE {TEMPLATE}"))
        .await
        .expect("cloning the template database");
    name
}

pub struct TestApp {
    pub address: String,
    pub port: u16,
    pub dbname: String,
    pub client: reqwest::Client,
    /// A pool of the service role on the same database, for tests that reach below HTTP.
    pub db: Db,
    /// Resolving this starts the app's graceful shutdown.
    pub shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    /// The server task; it ends once shutdown has finished.
    pub server: tokio::task::JoinHandle<anyhow::Result<()>>,
    /// The app's public card caches and counters.
    pub cards: Arc<PublicCards>,
    /// The app's budget of image decodes.
    pub image_decodes: Arc<WorkBudget>,
    /// The analytics writer's counters: `queued` tells when a request has handed its event over.
    pub ingest: Arc<IngestStats>,
    /// The app's live-feed hub: `subscribers()` tells when a stream is open.
    pub live: Arc<LiveHub>,
    /// `GET` here for the app's Prometheus metrics (its own listener); `None` with
    /// `METRICS_ADDR=off`.
    pub metrics_url: Option<String>,
    /// The SMTP server the app sends its email to, when spawned with one
    /// ([`spawn_app_with_mail`]).
    pub mail: Option<Arc<SmtpServer>>,
}

#[derive(Clone, Debug)]
pub struct Session {
    pub token: String,
    pub user_id: Uuid,
    pub company_id: Uuid,
    pub email: String,
}

pub struct Response {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Response {
    #[track_caller]
    pub fn assert_status(&self, expected: u16) -> &Self {
        assert_eq!(
            self.status.as_u16(),
            expected,
            "unexpected status; body: {}",
            self.body
        );
        self
    }

    /// Errors are always `{"detail", "code"}`.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) -> &Self {
        self.assert_status(status);
        assert_eq!(self.body["code"], code, "body: {}", self.body);
        assert!(
            self.body["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "body: {}",
            self.body
        );
        self
    }

    pub fn id(&self) -> Uuid {
        self.body["id"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no id in {}", self.body))
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// Spawns the app with extra environment variables (e.g. `DATABASE_POOL_SIZE`).
pub async fn spawn_app_with(vars: &[(&str, &str)]) -> TestApp {
    spawn_app_on(&fresh_database().await, vars).await
}

/// Spawns another instance of the app on an existing database (e.g. another app's `dbname`).
pub async fn spawn_app_on(dbname: &str, vars: &[(&str, &str)]) -> TestApp {
    let dbname = dbname.to_owned();
    let url = superuser_url(&dbname);
    spawn_app_at(&url, &dbname, vars).await
}

/// Spawns the app on the database at `url` (the owner's URL of `dbname`), e.g. on a cluster of
/// the test's own.
pub async fn spawn_app_at(url: &str, dbname: &str, vars: &[(&str, &str)]) -> TestApp {
    init_test_log();
    let (url, dbname) = (url.to_owned(), dbname.to_owned());
    let mut env: Vec<(String, String)> = vec![
        ("DATABASE_URL".into(), url.clone()),
        ("BIND_ADDR".into(), "127.0.0.1:0".into()),
        ("JWT_SECRET".into(), JWT_SECRET.into()),
        ("PUBLIC_BASE_URL".into(), PUBLIC_BASE_URL.into()),
        ("DATABASE_POOL_SIZE".into(), "8".into()),
        // Tests share a busy machine: a password check may wait for a thread far longer than a
        // production deadline allows without anything being wrong.
        ("PASSWORD_HASH_MAX_WAIT".into(), "60s".into()),
        ("METRICS_ADDR".into(), "127.0.0.1:0".into()),
        // Without SMTP_URL emails land in DATA_DIR/outbox: a directory of the test's own.
        (
            "DATA_DIR".into(),
            test_data_dir(&dbname).display().to_string(),
        ),
    ];
    for (k, v) in vars {
        env.retain(|(key, _)| key != k);
        env.push((k.to_string(), v.to_string()));
    }
    let config =
        Config::from_lookup(|key| env.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()))
            .expect("test configuration");
    let app = Application::build(config).await.expect("building the app");
    let port = app.port();
    let metrics_url = app
        .metrics_port()
        .map(|port| format!("http://127.0.0.1:{port}/metrics"));
    let (cards, image_decodes, ingest, live) = (
        app.public_cards(),
        app.image_decodes(),
        app.ingest_stats(),
        app.live_hub(),
    );
    let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async move {
        let _ = stop.await;
    }));
    let db = Db::connect_as_app(&url.parse().unwrap(), None, 4).unwrap();
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        dbname,
        client: reqwest::Client::new(),
        db,
        shutdown: Some(shutdown),
        server,
        cards,
        image_decodes,
        ingest,
        live,
        metrics_url,
        mail: None,
    }
}

impl TestApp {
    /// Events handed to the analytics writer so far (stored or not yet).
    pub fn events_queued(&self) -> u64 {
        self.ingest
            .queued
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Response {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.address));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.expect("sending the request");
        Self::read(resp).await
    }

    pub async fn read(resp: reqwest::Response) -> Response {
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.expect("reading the body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Response {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        self.request(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Response {
        self.request(Method::POST, path, token, Some(body)).await
    }

    pub async fn put(&self, path: &str, token: Option<&str>, body: Value) -> Response {
        self.request(Method::PUT, path, token, Some(body)).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> Response {
        self.request(Method::DELETE, path, token, None).await
    }

    /// Signs up a new company; its admin's session.
    pub async fn signup(&self, company_name: &str) -> Session {
        let email = format!("admin-{}@example.com", Uuid::new_v4().simple());
        let resp = self
            .post(
                "/api/auth/signup",
                None,
                json!({"email": email, "password": ADMIN_PASSWORD, "full_name": "Ada Admin", "company_name": company_name}),
            )
            .await;
        resp.assert_status(201);
        session(&resp.body, &email)
    }

    pub async fn login(&self, email: &str, password: &str) -> Session {
        let resp = self
            .post(
                "/api/auth/login",
                None,
                json!({"email": email, "password": password}),
            )
            .await;
        resp.assert_status(200);
        session(&resp.body, email)
    }

    /// A platform superadmin, created the way the `create-superadmin` command does.
    pub async fn superadmin(&self) -> Session {
        let email = format!("root-{}@example.com", Uuid::new_v4().simple());
        create_superadmin(&self.db, &email, ROOT_PASSWORD, "Root")
            .await
            .expect("creating a superadmin");
        self.login(&email, ROOT_PASSWORD).await
    }

    /// Adds an employee to `company` as `admin`; the employee's JSON.
    pub async fn add_employee(&self, admin: &Session, full_name: &str) -> Value {
        let resp = self
            .post(
                &format!("/api/company/{}/employees", admin.company_id),
                Some(&admin.token),
                json!({"full_name": full_name, "job_title": "Engineer", "email": "someone@example.com"}),
            )
            .await;
        resp.assert_status(201);
        resp.body
    }

    /// Gives `company` a login of `role`, optionally linked to an employee; its session.
    pub async fn add_user(
        &self,
        admin: &Session,
        role: &str,
        employee_id: Option<Uuid>,
    ) -> Session {
        let email = format!("{role}-{}@example.com", Uuid::new_v4().simple());
        let resp = self
            .post(
                &format!("/api/company/{}/users", admin.company_id),
                Some(&admin.token),
                json!({"email": email, "password": TEAMMATE_PASSWORD, "full_name": "Teammate", "role": role, "employee_id": employee_id}),
            )
            .await;
        resp.assert_status(201);
        self.login(&email, TEAMMATE_PASSWORD).await
    }

    /// Moves `company_id` to `plan` (needs a superadmin).
    pub async fn set_plan(&self, superadmin: &Session, company_id: Uuid, plan: &str) {
        self.put(
            &format!("/api/company/{company_id}/subscription"),
            Some(&superadmin.token),
            json!({"plan": plan}),
        )
        .await
        .assert_status(200);
    }
}

fn session(body: &Value, email: &str) -> Session {
    Session {
        token: body["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned(),
        user_id: body["user_id"].as_str().unwrap().parse().unwrap(),
        company_id: body["company_id"].as_str().unwrap().parse().unwrap(),
        email: email.to_owned(),
    }
}

pub fn uuid_of(value: &Value) -> Uuid {
    value["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no id in {value}"))
}

/// A superuser connection to `app`'s database: below the API and the tenant wall.
pub async fn superuser(app: &TestApp) -> Client {
    connect(&superuser_url(&app.dbname)).await
}

/// The one number `sql` selects.
pub async fn scalar(db: &Client, sql: &str, params: &[&(dyn ToSql + Sync)]) -> i64 {
    db.query_one(sql, params)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .get(0)
}

/// The public addresses of one employee's card.
#[derive(Clone, Debug)]
pub struct Card {
    pub employee_id: Uuid,
    pub company_id: Uuid,
    pub company_slug: String,
    pub slug: String,
}

impl Card {
    /// From the Employee JSON of the management API.
    pub fn of(employee: &Value) -> Self {
        Self {
            employee_id: uuid_of(employee),
            company_id: employee["company_id"].as_str().unwrap().parse().unwrap(),
            company_slug: employee["company_slug"].as_str().unwrap().to_owned(),
            slug: employee["public_slug"].as_str().unwrap().to_owned(),
        }
    }

    /// `/api/card/{company}/{employee}`: the JSON; QR code and vCard live below it.
    pub fn api(&self) -> String {
        format!("/api/card/{}/{}", self.company_slug, self.slug)
    }

    /// `/card/{company}/{employee}`: the HTML page.
    pub fn page(&self) -> String {
        format!("/card/{}/{}", self.company_slug, self.slug)
    }

    pub fn vcard(&self) -> String {
        format!("{}/vcard", self.api())
    }

    /// What the QR code must encode.
    pub fn scan_url(&self) -> String {
        format!("{PUBLIC_BASE_URL}{}?src=qr", self.page())
    }

    /// The tracking beacon of this card.
    pub fn track_path(&self) -> String {
        format!(
            "/api/analytics/track?company_slug={}&employee_slug={}",
            self.company_slug, self.slug
        )
    }

    /// The employee in the management API.
    pub fn employee(&self) -> String {
        format!("/api/employees/{}", self.employee_id)
    }

    pub fn photo(&self) -> String {
        format!("{}/photo", self.employee())
    }
}

/// A company with one employee: its admin and the employee's card.
pub async fn company_with_card(app: &TestApp, name: &str) -> (Session, Card) {
    let admin = app.signup(name).await;
    let employee = app.add_employee(&admin, "Jane Card").await;
    (admin, Card::of(&employee))
}

/// `POST /api/analytics/track` for `card` with `body`, as `user_agent`, with extra headers.
pub async fn track(
    app: &TestApp,
    card: &Card,
    user_agent: &str,
    headers: &[(&str, &str)],
    body: Value,
) -> Response {
    track_to(
        &app.client,
        &app.address,
        &card.track_path(),
        user_agent,
        headers,
        body,
    )
    .await
}

/// `track` without extra headers, for a 200: the answer's body.
pub async fn track_ok(app: &TestApp, card: &Card, user_agent: &str, body: Value) -> Value {
    let resp = track(app, card, user_agent, &[], body).await;
    resp.assert_status(200);
    resp.body
}

/// The same, owning everything, for spawned tasks.
pub async fn track_to(
    client: &reqwest::Client,
    address: &str,
    path: &str,
    user_agent: &str,
    headers: &[(&str, &str)],
    body: Value,
) -> Response {
    let mut req = client
        .post(format!("{address}{path}"))
        .header("user-agent", user_agent)
        .json(&body);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    TestApp::read(req.send().await.expect("sending the tracking request")).await
}

/// The event id of a `tracked` answer (asserting the exact shape).
#[track_caller]
pub fn tracked_id(resp: &Response) -> Uuid {
    resp.assert_status(200);
    let body = resp.body.as_object().expect("a JSON object");
    assert_eq!(body.len(), 2, "body: {}", resp.body);
    assert_eq!(resp.body["status"], "tracked", "body: {}", resp.body);
    resp.body["event_id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no event_id in {}", resp.body))
}

// Telemetry: the metrics listener.

impl TestApp {
    /// The app's metrics, as the Prometheus text the scraper reads.
    pub async fn scrape_metrics(&self) -> String {
        let url = self.metrics_url.as_deref().expect("a metrics listener");
        let resp = self.client.get(url).send().await.expect("scraping metrics");
        assert_eq!(resp.status(), 200, "GET /metrics on the metrics listener");
        resp.text().await.expect("reading the metrics")
    }
}

// The audit trail.

/// The events of `session`'s company matching `query` (e.g. `action=employee.*`), newest first,
/// across every page (50 at most per page, so a long trail takes several).
pub async fn audit_events(app: &TestApp, session: &Session, query: &str) -> Vec<Value> {
    let mut events = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/api/company/{}/audit?{query}", session.company_id);
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&cursor={cursor}"));
        }
        let resp = app.get(&path, Some(&session.token)).await;
        resp.assert_status(200);
        events.extend(resp.body["events"].as_array().expect("events").clone());
        match resp.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return events,
        }
    }
}
// ---- Email (mail.rs, password_reset.rs, email_verification.rs) ----

/// The data directory of an app spawned on `dbname`, unless the test set `DATA_DIR`: emails
/// written without SMTP land in its `outbox/`.
pub fn test_data_dir(dbname: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("callingcard-test-{dbname}"))
}

/// A port nothing listens on right now (the listener that found it is closed).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A real SMTP server on loopback: Python's aiosmtpd, storing what it receives in a Maildir
/// (`scripts/ensure-smtp` installs it). Stopped when dropped.
pub struct SmtpServer {
    pub port: u16,
    pub dir: std::path::PathBuf,
    options: SmtpOptions,
    child: Option<tokio::process::Child>,
}

/// What an [`SmtpServer`] asks of its clients.
#[derive(Clone, Debug, Default)]
pub struct SmtpOptions {
    /// The one user and password it accepts (AUTH required); others are refused with a 535.
    pub login: Option<(String, String)>,
    pub tls: SmtpTls,
}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum SmtpTls {
    #[default]
    None,
    /// Plain first, then STARTTLS, required before anything else.
    StartTls,
    /// TLS from the first byte (`smtps://`).
    Implicit,
}

/// The interpreter that has aiosmtpd: `SMTP_TEST_PYTHON`, else Debian's, else `python3`.
fn smtp_python() -> String {
    std::env::var("SMTP_TEST_PYTHON").unwrap_or_else(|_| {
        if std::path::Path::new("/usr/bin/python3").exists() {
            "/usr/bin/python3".into()
        } else {
            "python3".into()
        }
    })
}

impl SmtpServer {
    /// A server on a free port, receiving.
    pub async fn start() -> Self {
        Self::start_with(SmtpOptions::default()).await
    }

    /// A server on a free port with a login and/or TLS; its certificate, self-signed for
    /// `localhost` and `127.0.0.1`, is [`ca_file`](Self::ca_file).
    pub async fn start_with(options: SmtpOptions) -> Self {
        let mut server = Self::stopped(free_port());
        if options.tls != SmtpTls::None {
            // A private CA and the server's certificate signed by it (rustls will not take a
            // self-signed CA certificate as the server's own).
            let dir = &server.dir;
            openssl(&[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=CallingCard test mail CA",
                "-keyout",
                &dir.join("ca-key.pem").display().to_string(),
                "-out",
                &server.ca_file().display().to_string(),
            ]);
            openssl(&[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=localhost",
                "-addext",
                "subjectAltName=DNS:localhost,IP:127.0.0.1",
                "-addext",
                "basicConstraints=critical,CA:FALSE",
                "-CA",
                &server.ca_file().display().to_string(),
                "-CAkey",
                &dir.join("ca-key.pem").display().to_string(),
                "-keyout",
                &dir.join("key.pem").display().to_string(),
                "-out",
                &dir.join("cert.pem").display().to_string(),
            ]);
        }
        server.options = options;
        server.resume().await;
        server
    }

    /// The certificate of the CA that signed the server's (PEM), for `SMTP_CA_FILE`; only
    /// with TLS.
    pub fn ca_file(&self) -> std::path::PathBuf {
        self.dir.join("ca.pem")
    }

    /// A server that will listen on `port` once [`resume`](Self::resume)d; nothing listens yet.
    pub fn stopped(port: u16) -> Self {
        let dir =
            std::env::temp_dir().join(format!("callingcard-smtp-{}", Uuid::new_v4().simple()));
        // A Maildir: Python's mailbox makes these only for a directory that does not exist.
        for sub in ["new", "cur", "tmp"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        Self {
            port,
            dir,
            options: SmtpOptions::default(),
            child: None,
        }
    }

    /// `smtp://127.0.0.1:PORT`, for `SMTP_URL`.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Starts listening (again) and waits until it accepts connections.
    pub async fn resume(&mut self) {
        assert!(self.child.is_none(), "the SMTP server runs already");
        let launcher = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/smtp_server.py");
        let mut command = tokio::process::Command::new(smtp_python());
        command
            .arg(launcher)
            .args(["127.0.0.1", &self.port.to_string()])
            .arg(&self.dir);
        if let Some((user, password)) = &self.options.login {
            command.args(["--login", user, password]);
        }
        match self.options.tls {
            SmtpTls::None => {}
            SmtpTls::StartTls => {
                command.arg("--starttls");
            }
            SmtpTls::Implicit => {
                command.arg("--implicit-tls");
            }
        }
        if self.options.tls != SmtpTls::None {
            command
                .arg(self.dir.join("cert.pem"))
                .arg(self.dir.join("key.pem"));
        }
        let child = command
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("starting aiosmtpd (scripts/ensure-smtp installs it)");
        self.child = Some(child);
        let port = self.port;
        wait_for("the SMTP server to accept connections", async || {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
        })
        .await;
    }

    /// Stops the server; nothing listens on its port afterwards.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// Every message received so far, oldest first.
    pub fn messages(&self) -> Vec<ReceivedEmail> {
        let mut files = Vec::new();
        for sub in ["new", "cur"] {
            if let Ok(entries) = std::fs::read_dir(self.dir.join(sub)) {
                for entry in entries.flatten() {
                    let modified = entry.metadata().and_then(|m| m.modified()).ok();
                    files.push((modified, entry.path()));
                }
            }
        }
        files.sort();
        files
            .into_iter()
            .map(|(_, path)| ReceivedEmail::parse(&std::fs::read(path).unwrap()))
            .collect()
    }

    /// Waits until at least `n` messages arrived; all of them.
    pub async fn wait_for_messages(&self, n: usize) -> Vec<ReceivedEmail> {
        wait_for(&format!("{n} emails to arrive"), async || {
            self.messages().len() >= n
        })
        .await;
        self.messages()
    }

    /// Waits for the first message to `to`.
    pub async fn wait_for_message_to(&self, to: &str) -> ReceivedEmail {
        wait_for(&format!("an email to {to}"), async || {
            self.messages().iter().any(|m| m.to == to)
        })
        .await;
        self.messages().into_iter().find(|m| m.to == to).unwrap()
    }

    pub fn messages_to(&self, to: &str) -> Vec<ReceivedEmail> {
        self.messages().into_iter().filter(|m| m.to == to).collect()
    }
}

/// Runs `openssl` (for test certificates), which must succeed.
fn openssl(args: &[&str]) {
    let status = std::process::Command::new("openssl")
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("running openssl (scripts/ensure-smtp installs it)");
    assert!(status.success(), "openssl {args:?} failed");
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A message as received, parsed.
#[derive(Clone, Debug)]
pub struct ReceivedEmail {
    pub raw: String,
    pub from: String,
    pub to: String,
    pub subject: String,
    pub message_id: String,
    pub text: String,
    pub html: String,
    pub attachments: Vec<ReceivedAttachment>,
}

/// A file attached to a [`ReceivedEmail`], its body decoded.
#[derive(Clone, Debug)]
pub struct ReceivedAttachment {
    pub file_name: String,
    pub mime_type: String,
    pub body: String,
}

impl ReceivedEmail {
    pub fn parse(raw: &[u8]) -> Self {
        use mailparse::MailHeaderMap;
        let mail = mailparse::parse_mail(raw).expect("a parsable email");
        let header = |name: &str| mail.headers.get_first_value(name).unwrap_or_default();
        // Every leaf part, however the message nests them (alternatives inside a mixed
        // message when files are attached).
        fn leaves<'a>(
            part: &'a mailparse::ParsedMail<'a>,
            out: &mut Vec<&'a mailparse::ParsedMail<'a>>,
        ) {
            if part.subparts.is_empty() {
                out.push(part);
            }
            for sub in &part.subparts {
                leaves(sub, out);
            }
        }
        let mut parts = Vec::new();
        leaves(&mail, &mut parts);
        let attachment_name = |p: &mailparse::ParsedMail<'_>| {
            let disposition = p.get_content_disposition();
            (disposition.disposition == mailparse::DispositionType::Attachment).then(|| {
                disposition
                    .params
                    .get("filename")
                    .cloned()
                    .unwrap_or_default()
            })
        };
        let part = |mime: &str| {
            parts
                .iter()
                .find(|p| p.ctype.mimetype == mime && attachment_name(p).is_none())
                .map(|p| p.get_body().unwrap())
                .unwrap_or_default()
        };
        let attachments = parts
            .iter()
            .filter_map(|p| {
                let name = attachment_name(p)?;
                Some(ReceivedAttachment {
                    file_name: name,
                    mime_type: p.ctype.mimetype.clone(),
                    // The bytes as sent (line ends included), not text as a mail program shows it.
                    body: String::from_utf8(p.get_body_raw().unwrap()).expect("a text file"),
                })
            })
            .collect();
        Self {
            raw: String::from_utf8_lossy(raw).into_owned(),
            from: header("From"),
            to: header("To"),
            subject: header("Subject"),
            message_id: header("Message-ID"),
            text: part("text/plain"),
            html: part("text/html"),
            attachments,
        }
    }

    /// The `token` of the link to `{PUBLIC_BASE_URL}/app/{page}` in the plain text (the HTML
    /// must hold the same link).
    #[track_caller]
    pub fn token(&self, page: &str) -> String {
        let prefix = format!("{PUBLIC_BASE_URL}/app/{page}?token=");
        let link = self
            .text
            .split_whitespace()
            .find(|w| w.starts_with(&prefix))
            .unwrap_or_else(|| panic!("no {prefix} link in: {}", self.text));
        assert!(
            self.html.contains(link),
            "the HTML lacks {link}: {}",
            self.html
        );
        link[prefix.len()..].to_owned()
    }
}

/// The app, sending its email to `smtp`.
pub async fn spawn_app_with_smtp(smtp: &SmtpServer, vars: &[(&str, &str)]) -> TestApp {
    let url = smtp.url();
    let mut all: Vec<(&str, &str)> = vec![("SMTP_URL", &url)];
    all.extend_from_slice(vars);
    spawn_app_with(&all).await
}

/// The app with an SMTP server of its own (`app.mail`), receiving everything it sends.
pub async fn spawn_app_with_mail() -> TestApp {
    let smtp = SmtpServer::start().await;
    let mut app = spawn_app_with_smtp(&smtp, &[]).await;
    app.mail = Some(Arc::new(smtp));
    app
}

/// Signs up a company named `company_name` with an admin of the given email; its session.
pub async fn signup_as(app: &TestApp, email: &str, company_name: &str) -> Session {
    let resp = app
        .post(
            "/api/auth/signup",
            None,
            json!({"email": email, "password": ADMIN_PASSWORD, "full_name": "Ada Admin", "company_name": company_name}),
        )
        .await;
    resp.assert_status(201);
    session(&resp.body, email)
}

/// A fresh email address.
pub fn new_email(who: &str) -> String {
    format!("{who}-{}@example.com", Uuid::new_v4().simple())
}

// ---- Sessions: token pairs, refreshing, and real sessions below HTTP -----------------------

/// What a login, a sign-up or a refresh answers: an access token and a refresh token.
#[derive(Clone, Debug)]
pub struct Tokens {
    pub access: String,
    pub refresh: String,
    /// The session the access token names (`sid`).
    pub session_id: Uuid,
    pub user_id: Uuid,
    pub company_id: Uuid,
}

impl Tokens {
    /// The pair in a 200 or 201 token answer (asserting its shape).
    #[track_caller]
    pub fn of(resp: &Response) -> Tokens {
        assert!(resp.status.is_success(), "no tokens in {}", resp.body);
        let text = |key: &str| {
            resp.body[key]
                .as_str()
                .unwrap_or_else(|| panic!("no {key} in {}", resp.body))
                .to_owned()
        };
        assert_eq!(resp.body["token_type"], "bearer");
        let access = text("access_token");
        Tokens {
            session_id: session_id_of(&access),
            refresh: text("refresh_token"),
            user_id: text("user_id").parse().unwrap(),
            company_id: text("company_id").parse().unwrap(),
            access,
        }
    }
}

/// The `sid` claim of an access token (read, not verified).
pub fn session_id_of(access_token: &str) -> Uuid {
    use base64::Engine;
    let payload = access_token.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("a JWT payload");
    let claims: Value = serde_json::from_slice(&bytes).expect("JSON claims");
    claims["sid"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no sid in {claims}"))
}

impl TestApp {
    /// Logs in with `user_agent`; the token pair.
    pub async fn login_tokens(&self, email: &str, password: &str, user_agent: &str) -> Tokens {
        let resp = self
            .client
            .post(format!("{}/api/auth/login", self.address))
            .header("user-agent", user_agent)
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .expect("sending the login");
        let resp = Self::read(resp).await;
        resp.assert_status(200);
        Tokens::of(&resp)
    }

    /// Signs up a new company; its admin's email and token pair.
    pub async fn signup_tokens(&self, company_name: &str) -> (String, Tokens) {
        let email = format!("admin-{}@example.com", Uuid::new_v4().simple());
        let resp = self
            .post(
                "/api/auth/signup",
                None,
                json!({"email": email, "password": ADMIN_PASSWORD, "full_name": "Ada Admin",
                       "company_name": company_name}),
            )
            .await;
        resp.assert_status(201);
        (email, Tokens::of(&resp))
    }

    /// `POST /api/auth/refresh` with `refresh_token`.
    pub async fn refresh(&self, refresh_token: &str) -> Response {
        self.post(
            "/api/auth/refresh",
            None,
            json!({"refresh_token": refresh_token}),
        )
        .await
    }
}

/// A caller's tenant as the bearer guard makes it, for tests below HTTP: a login of `role` in
/// `company` and a live session of it are created as the superuser (`owner`), and a token of
/// that session is verified.
pub async fn member_tenant(
    owner: &Client,
    company: Uuid,
    role: callingcard::auth::Role,
) -> callingcard::db::Tenant {
    use callingcard::auth::{Caller, JwtKeys};
    let (user, session) = (Uuid::new_v4(), Uuid::new_v4());
    owner
        .execute(
            "WITH u AS (
                 INSERT INTO users (company_id, id, email, password_hash, full_name, role)
                 VALUES ($1, $2, $5, 'not-a-hash', 'Below Http', $4)
             )
             INSERT INTO sessions (company_id, id, user_id, expires_at)
             VALUES ($1, $3, $2, now() + interval '1 day')",
            &[
                &company,
                &user,
                &session,
                &role.as_str(),
                &format!("{user}@below-http.example"),
            ],
        )
        .await
        .expect("creating a login and its session");
    let keys = JwtKeys::new(JWT_SECRET, Duration::from_secs(600));
    let token = keys.issue(user, company, role, session).expect("a token");
    Caller::verify(&keys, &token)
        .expect("a valid token")
        .tenant()
}

// Teammates and invitations.

/// An email as the service sent it.
#[derive(Clone, Debug)]
pub struct SentEmail {
    pub to: String,
    pub from_name: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// The latest invitation email sent to `to`, as the app's SMTP server received it (the app
/// must come from [`spawn_app_with_mail`]): waits until as many messages reached `to` as
/// invitations were made for that address.
pub async fn invitation_email_for(app: &TestApp, to: &str) -> SentEmail {
    let smtp = app
        .mail
        .as_ref()
        .expect("an app spawned with spawn_app_with_mail");
    let db = superuser(app).await;
    let invited = scalar(
        &db,
        "SELECT count(*) FROM invitations WHERE lower(email) = lower($1)",
        &[&to],
    )
    .await;
    let to = to.to_lowercase();
    let received = async || {
        smtp.messages()
            .into_iter()
            .filter(|m| m.to.to_lowercase().contains(&to))
            .collect::<Vec<_>>()
    };
    wait_for(
        &format!("{invited} invitation emails to {to}"),
        async || received().await.len() as i64 >= invited,
    )
    .await;
    let email = received().await.pop().unwrap();
    // `From: "Company" <address>`: the display name is the company's.
    let from_name = email
        .from
        .split('<')
        .next()
        .unwrap_or_default()
        .trim()
        .trim_matches('"')
        .to_owned();
    SentEmail {
        to: email.to.clone(),
        from_name,
        subject: email.subject,
        text: email.text,
        html: email.html,
    }
}

/// The link of an invitation email, as its plain text shows it.
pub fn invitation_link(email: &SentEmail) -> String {
    let start = email
        .text
        .find(PUBLIC_BASE_URL)
        .unwrap_or_else(|| panic!("no link in {:?}", email.text));
    email.text[start..]
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

/// The token of an invitation link.
pub fn invitation_token(link: &str) -> String {
    let prefix = format!("{PUBLIC_BASE_URL}/app/accept-invitation?token=");
    link.strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{link} is not an invitation link"))
        .to_owned()
}

impl TestApp {
    /// `POST /api/company/{id}/invitations` as `admin`.
    pub async fn invite(
        &self,
        admin: &Session,
        company_id: Uuid,
        email: &str,
        role: &str,
        employee_id: Option<Uuid>,
    ) -> Response {
        self.post(
            &format!("/api/company/{company_id}/invitations"),
            Some(&admin.token),
            json!({"email": email, "role": role, "employee_id": employee_id}),
        )
        .await
    }

    /// Invites `email` into `admin`'s company; the token of the link in the email sent.
    pub async fn invitation_token(
        &self,
        admin: &Session,
        email: &str,
        role: &str,
        employee_id: Option<Uuid>,
    ) -> String {
        self.invite(admin, admin.company_id, email, role, employee_id)
            .await
            .assert_status(201);
        invitation_token(&invitation_link(&invitation_email_for(self, email).await))
    }

    /// `POST /api/auth/accept-invitation`.
    pub async fn accept_invitation(&self, token: &str, password: &str) -> Response {
        self.post(
            "/api/auth/accept-invitation",
            None,
            json!({"token": token, "password": password}),
        )
        .await
    }
}
