//! Test harness: one throwaway PostgreSQL cluster per test binary, a template database migrated
//! once, and for every test a fresh database cloned from it with the app on port 0 in front.
#![allow(dead_code)]

use std::sync::{Arc, OnceLock};

use callingcard::{
    api::{cards::PublicCards, users::create_superadmin},
    card::budget::WorkBudget,
    config::Config,
    db::{Db, embedded::LocalCluster, migrations},
    startup::Application,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio_postgres::NoTls;
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

/// The cluster outlives every test's own runtime: it lives on a thread of its own, and the
/// watchdog stops it when this process exits.
struct SharedCluster {
    port: u16,
}

fn cluster() -> &'static SharedCluster {
    static CLUSTER: OnceLock<SharedCluster> = OnceLock::new();
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
    let (cards, image_decodes) = (app.public_cards(), app.image_decodes());
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
    }
}

impl TestApp {
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
