//! Measures the read paths, the public card's above all: PostgreSQL round trips per request
//! (counted by a TCP proxy between the service and the database) and requests per second under
//! concurrent load, beside a static endpoint of the same server (`/api/health/live`) as the
//! ceiling.
//!
//!     cargo bench --bench read_path                 # defaults: 10 s per scenario, 32 clients
//!     BENCH_SECONDS=5 BENCH_CLIENTS=64 cargo bench --bench read_path
//!
//! Everything runs on this machine: a throwaway PostgreSQL cluster, the service on a loopback
//! port, and the load generator in this process (so it shares the CPU with the service).

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

mod support;

use callingcard::{config::Config, db::embedded::LocalCluster, startup::Application};
use serde_json::{Value, json};
use support::{LoadResult, Outcome, closed_loop, env_or};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // `cargo bench` passes --bench; anything else (e.g. `cargo test --all-targets`) only builds it.
    if !std::env::args().any(|arg| arg == "--bench") {
        return Ok(());
    }
    let seconds: u64 = env_or("BENCH_SECONDS", 10);
    let clients: usize = env_or("BENCH_CLIENTS", 32);

    let cluster = LocalCluster::start_temporary().await?;
    callingcard::startup::create_database_if_missing(&cluster.url("postgres"), "bench").await?;
    let proxy = RoundTripCounter::start(cluster.port()).await?;

    // One instance behind the counting proxy with a single pooled connection, so every request
    // takes the same, already warmed-up connection.
    let counted = spawn(
        &format!("postgres://postgres@127.0.0.1:{}/bench", proxy.port),
        1,
    )
    .await?;
    let client = reqwest::Client::new();
    let fixture = Fixture::create(&client, &counted).await?;

    println!(
        "\nPostgreSQL round trips per request (pool of 1 connection, counted at the socket)\n"
    );
    println!("| request | round trips |");
    println!("|---|---|");
    for (name, method, path, body) in fixture.round_trip_cases() {
        // Three warm-up requests prepare the statements; the count starts after them.
        let (warm_up, n) = (3, 50);
        for i in 0..warm_up + n {
            if i == warm_up {
                proxy.reset();
            }
            let body = body.clone();
            send(
                &client,
                &counted,
                &fixture.token,
                method.clone(),
                &path,
                body,
            )
            .await?;
        }
        println!("| {name} | {:.2} |", proxy.turns() as f64 / n as f64);
    }

    // A second instance straight on the database, with its normal pool, for throughput.
    let direct = spawn(&cluster.url("bench"), 16).await?;
    println!(
        "\nThroughput: {clients} concurrent clients, {seconds} s per scenario, keep-alive HTTP/1.1\n"
    );
    println!("| request | requests/s | p50 ms | p99 ms | errors |");
    println!("|---|---|---|---|---|");
    for (name, path) in fixture.load_cases() {
        let result = load(
            &direct,
            &fixture.token,
            &path,
            clients,
            Duration::from_secs(seconds),
        )
        .await;
        println!(
            "| {name} | {:.0} | {:.2} | {:.2} | {} |",
            result.per_second(),
            result.p50_ms(),
            result.p99_ms(),
            result.failed
        );
    }
    println!();
    cluster.stop().await?;
    Ok(())
}

async fn spawn(database_url: &str, pool: usize) -> anyhow::Result<String> {
    let vars = [
        ("DATABASE_URL", database_url.to_owned()),
        ("BIND_ADDR", "127.0.0.1:0".to_owned()),
        (
            "JWT_SECRET",
            "bench-secret-bench-secret-bench-secret".to_owned(),
        ),
        ("DATABASE_POOL_SIZE", pool.to_string()),
    ];
    let config =
        Config::from_lookup(|key| vars.iter().find(|(k, _)| *k == key).map(|(_, v)| v.clone()))?;
    let app = Application::build(config).await?;
    let address = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until(std::future::pending()));
    Ok(address)
}

struct Fixture {
    token: String,
    company_id: String,
    employee_id: String,
    /// `{company_slug}/{employee_slug}` of the employee's public card.
    card: String,
}

impl Fixture {
    async fn create(client: &reqwest::Client, base: &str) -> anyhow::Result<Self> {
        let signup: Value = client
            .post(format!("{base}/api/auth/signup"))
            .json(&json!({"email": "bench@example.com", "password": "quiet-otter-harbor-1911", "full_name": "Bench Admin", "company_name": "Bench Co"}))
            .send()
            .await?
            .json()
            .await?;
        let token = signup["access_token"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let company_id = signup["company_id"].as_str().unwrap_or_default().to_owned();
        let employee: Value = client
            .post(format!("{base}/api/company/{company_id}/employees"))
            .bearer_auth(&token)
            .json(&json!({
                "full_name": "Jane Bench", "job_title": "Load", "email": "jane@bench.example",
                "phone": "+1 555 010 9999", "whatsapp": "+1 555 010 9998",
                "bio": "Measures things, politely.",
                "social_links": {"linkedin": "https://www.linkedin.com/in/jane-bench"}
            }))
            .send()
            .await?
            .json()
            .await?;
        let employee_id = employee["id"].as_str().unwrap_or_default().to_owned();
        anyhow::ensure!(
            !employee_id.is_empty(),
            "fixture creation failed: {employee}"
        );
        let card = format!(
            "{}/{}",
            employee["company_slug"].as_str().unwrap_or_default(),
            employee["public_slug"].as_str().unwrap_or_default()
        );
        Ok(Self {
            token,
            company_id,
            employee_id,
            card,
        })
    }

    fn round_trip_cases(&self) -> Vec<(&'static str, reqwest::Method, String, Option<Value>)> {
        use reqwest::Method;
        vec![
            (
                "GET /api/employees/{id} (read, 1 query)",
                Method::GET,
                format!("/api/employees/{}", self.employee_id),
                None,
            ),
            (
                "GET /api/company/{id}/employees (read, 3 queries joined)",
                Method::GET,
                format!("/api/company/{}/employees", self.company_id),
                None,
            ),
            (
                "GET /api/subscriptions/plans (public read)",
                Method::GET,
                "/api/subscriptions/plans".into(),
                None,
            ),
            (
                "GET /api/card/{company}/{employee} (public, cached)",
                Method::GET,
                format!("/api/card/{}", self.card),
                None,
            ),
            (
                "PUT /api/employees/{id} (write: lock+read, update, commit)",
                Method::PUT,
                format!("/api/employees/{}", self.employee_id),
                Some(json!({"job_title": "Bench"})),
            ),
        ]
    }

    fn load_cases(&self) -> Vec<(&'static str, String)> {
        vec![
            (
                "GET /api/employees/{id}",
                format!("/api/employees/{}", self.employee_id),
            ),
            (
                "GET /api/company/{id}/employees",
                format!("/api/company/{}/employees", self.company_id),
            ),
            (
                "GET /api/subscriptions/plans",
                "/api/subscriptions/plans".into(),
            ),
            ("GET /api/health (SELECT 1)", "/api/health".into()),
            (
                "GET /api/card/{company}/{employee} (JSON)",
                format!("/api/card/{}", self.card),
            ),
            (
                "GET /card/{company}/{employee} (HTML page)",
                format!("/card/{}", self.card),
            ),
            (
                "GET /api/card/{company}/{employee}/qr.png",
                format!("/api/card/{}/qr.png", self.card),
            ),
            (
                "GET /api/card/{company}/{employee}/vcard",
                format!("/api/card/{}/vcard", self.card),
            ),
            (
                "GET /api/health/live (static: the ceiling)",
                "/api/health/live".into(),
            ),
        ]
    }
}

async fn send(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<()> {
    let mut req = client
        .request(method, format!("{base}{path}"))
        .bearer_auth(token);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req.send().await?;
    anyhow::ensure!(resp.status().is_success(), "{path}: {}", resp.status());
    resp.bytes().await?;
    Ok(())
}

/// `clients` keep-alive clients getting `path` for `duration`, after a warm-up.
async fn load(
    base: &str,
    token: &str,
    path: &str,
    clients: usize,
    duration: Duration,
) -> LoadResult {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()
        .unwrap();
    let url = format!("{base}{path}");
    // Warm up every connection of the service's pool.
    for _ in 0..50 {
        let _ = client.get(&url).bearer_auth(token).send().await;
    }
    let token = token.to_owned();
    closed_loop(clients, duration, move || {
        let (client, url, token) = (client.clone(), url.clone(), token.clone());
        async move {
            match client.get(&url).bearer_auth(&token).send().await {
                Ok(r) if r.status().is_success() => {
                    let _ = r.bytes().await;
                    Outcome::Done
                }
                _ => Outcome::Failed,
            }
        }
    })
    .await
}

/// A TCP proxy that counts round trips: a client→server burst that follows an answer from the
/// server starts a new round trip. Pipelined messages sent before any answer count once.
struct RoundTripCounter {
    port: u16,
    turns: Arc<AtomicU64>,
}

impl RoundTripCounter {
    async fn start(upstream_port: u16) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let turns = Arc::new(AtomicU64::new(0));
        let counter = turns.clone();
        tokio::spawn(async move {
            while let Ok((downstream, _)) = listener.accept().await {
                let Ok(upstream) = TcpStream::connect(("127.0.0.1", upstream_port)).await else {
                    continue;
                };
                let _ = downstream.set_nodelay(true);
                let _ = upstream.set_nodelay(true);
                let server_spoke = Arc::new(AtomicBool::new(true));
                let (mut dr, mut dw) = downstream.into_split();
                let (mut ur, mut uw) = upstream.into_split();
                let (spoke, turns) = (server_spoke.clone(), counter.clone());
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    while let Ok(n @ 1..) = dr.read(&mut buf).await {
                        if spoke.swap(false, Ordering::AcqRel) {
                            turns.fetch_add(1, Ordering::Relaxed);
                        }
                        if uw.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    while let Ok(n @ 1..) = ur.read(&mut buf).await {
                        server_spoke.store(true, Ordering::Release);
                        if dw.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        Ok(Self { port, turns })
    }

    fn reset(&self) {
        self.turns.store(0, Ordering::Relaxed);
    }

    fn turns(&self) -> u64 {
        self.turns.load(Ordering::Relaxed)
    }
}
