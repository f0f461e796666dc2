//! What an anonymous stranger can make the service spend: memory and latency under a storm of
//! wrong-password logins, and under parallel uploads of a large (in pixels) image.
//!
//!     cargo build --release && cargo bench --bench hardening
//!     BENCH_SECONDS=5 BENCH_HASH_THREADS=1 cargo bench --bench hardening
//!
//! It builds nothing: it runs the release binary `target/release/callingcard` as a process of
//! its own (so its memory is the service's alone, read from /proc/<pid>/status), on a loopback
//! port, against a throwaway PostgreSQL cluster, with the load generated in this process. Every
//! loop is bounded in time; it stops by itself.
//!
//! The service runs with the login throttle opened wide (every client here is 127.0.0.1, which
//! the per-address limit would otherwise stop after 5 failures): what is measured is the cost of
//! the password checks themselves, bounded by the hashing pool.

use std::{
    collections::BTreeMap,
    path::PathBuf,
    process::Stdio,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

mod support;

use callingcard::db::embedded::LocalCluster;
use serde_json::{Value, json};
use support::{Outcome, closed_loop, env_or, percentile};

const PASSWORD: &str = "quiet-otter-harbor-1911";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // `cargo bench` passes --bench; anything else (e.g. `cargo test --all-targets`) only builds it.
    if !std::env::args().any(|arg| arg == "--bench") {
        return Ok(());
    }
    let seconds: u64 = env_or("BENCH_SECONDS", 10);
    let idle: u64 = env_or("BENCH_IDLE_SECONDS", 5);
    let readers: usize = env_or("BENCH_READERS", 4);
    let duration = Duration::from_secs(seconds);
    let binary = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/release/callingcard");
    anyhow::ensure!(
        binary.exists(),
        "{} is missing: run `cargo build --release` first",
        binary.display()
    );

    let cluster = LocalCluster::start_temporary().await?;
    callingcard::startup::create_database_if_missing(&cluster.url("postgres"), "bench").await?;
    let service = Service::start(&binary, &cluster.url("bench")).await?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(128)
        .timeout(Duration::from_secs(120))
        .build()?;
    let fixture = Fixture::create(&client, &service.base).await?;
    println!(
        "\nService: {} (pid {}), password hashing threads: {}",
        binary.display(),
        service.pid,
        std::env::var("BENCH_HASH_THREADS").unwrap_or_else(|_| "default (cores)".into())
    );
    println!("RSS at rest after the fixture: {:.0} MB", service.rss_mb());

    println!(
        "\nWrong-password logins, N parallel clients for {seconds} s; RSS sampled every 50 ms, \
         \"after\" {idle} s idle\n"
    );
    println!(
        "| clients | logins/s | 401 | 503 | other | p50 ms | p99 ms | peak RSS MB | RSS after MB |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for clients in [1, 4, 20, 64] {
        let sampler = RssSampler::start(service.pid);
        let storm = login_storm(&client, &service.base, &fixture.email, clients, duration).await;
        let peak = sampler.stop();
        tokio::time::sleep(Duration::from_secs(idle)).await;
        let (ok, latencies) = storm.done();
        println!(
            "| {clients} | {:.0} | {} | {} | {} | {:.0} | {:.0} | {peak:.0} | {:.0} |",
            ok as f64 / seconds as f64,
            storm.count(401),
            storm.count(503),
            storm.others(&[401, 503]),
            percentile(&latencies, 0.50),
            percentile(&latencies, 0.99),
            service.rss_mb()
        );
    }

    let png = flat_png(6000, 6600);
    println!(
        "\nReads beside a storm: {readers} clients on one route for {seconds} s, alone, with 20 \
         wrong-password login clients running, and with rounds of 32 parallel uploads of a \
         6000x6600 px PNG running\n"
    );
    println!("| request | storm | requests/s | p50 ms | p99 ms | errors |");
    println!("|---|---|---|---|---|---|");
    let card = format!("/card/{}", fixture.card);
    let list = format!("/api/company/{}/employees", fixture.company_id);
    for (name, path, token) in [
        ("GET /card/{company}/{employee} (public page)", &card, None),
        (
            "GET /api/company/{id}/employees (authenticated)",
            &list,
            Some(&fixture.token),
        ),
    ] {
        for beside in [Beside::Nothing, Beside::Logins, Beside::Uploads] {
            let until = duration + Duration::from_secs(2);
            let running = match beside {
                Beside::Nothing => None,
                Beside::Logins => {
                    let (client, base, email) =
                        (client.clone(), service.base.clone(), fixture.email.clone());
                    Some(tokio::spawn(async move {
                        login_storm(&client, &base, &email, 20, until).await;
                    }))
                }
                Beside::Uploads => {
                    let (client, base, fixture, png) = (
                        client.clone(),
                        service.base.clone(),
                        fixture.clone(),
                        png.clone(),
                    );
                    Some(tokio::spawn(async move {
                        let deadline = Instant::now() + until;
                        while Instant::now() < deadline {
                            upload_round(&client, &base, &fixture, &png, 32).await;
                        }
                    }))
                }
            };
            if running.is_some() {
                // Let the storm fill the hashing pool or the decode budget before measuring.
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            let result = reads(
                &client,
                &service.base,
                path,
                token.map(|t| t.as_str()),
                readers,
                duration,
            )
            .await;
            if let Some(running) = running {
                let _ = running.await;
            }
            println!(
                "| {name} | {} | {:.0} | {:.1} | {:.1} | {} |",
                beside.label(),
                result.per_second(),
                result.p50_ms(),
                result.p99_ms(),
                result.failed
            );
        }
    }

    println!(
        "\nParallel photo uploads: one {} KB PNG of 6000x6600 px to PUT /api/employees/{{id}}/photo, \
         N at once\n",
        png.len() / 1024
    );
    println!("| uploads | 200 | 503 | other | median s | max s | peak RSS MB | RSS after MB |");
    println!("|---|---|---|---|---|---|---|---|");
    for uploads in [16, 32] {
        let sampler = RssSampler::start(service.pid);
        let results = upload_round(&client, &service.base, &fixture, &png, uploads).await;
        let peak = sampler.stop();
        tokio::time::sleep(Duration::from_secs(idle)).await;
        let mut latencies: Vec<Duration> = results.iter().map(|(_, d)| *d).collect();
        latencies.sort();
        let count = |s: u16| results.iter().filter(|(status, _)| *status == s).count();
        println!(
            "| {uploads} | {} | {} | {} | {:.1} | {:.1} | {peak:.0} | {:.0} |",
            count(200),
            count(503),
            uploads - count(200) - count(503),
            percentile(&latencies, 0.5) / 1000.0,
            latencies.last().map_or(0.0, |d| d.as_secs_f64()),
            service.rss_mb()
        );
    }
    println!();
    drop(service);
    cluster.stop().await?;
    Ok(())
}

/// What runs beside the measured reads.
#[derive(Clone, Copy)]
enum Beside {
    Nothing,
    Logins,
    Uploads,
}

impl Beside {
    fn label(self) -> &'static str {
        match self {
            Beside::Nothing => "none",
            Beside::Logins => "20 login clients",
            Beside::Uploads => "32 uploads at a time",
        }
    }
}

/// The release binary, serving on a loopback port; killed when dropped.
struct Service {
    child: tokio::process::Child,
    pid: u32,
    base: String,
    _data_dir: TempDir,
}

impl Service {
    async fn start(binary: &std::path::Path, database_url: &str) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let data_dir = TempDir::new()?;
        let mut command = tokio::process::Command::new(binary);
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", database_url)
            .env("BIND_ADDR", format!("127.0.0.1:{port}"))
            .env("METRICS_ADDR", "127.0.0.1:0")
            .env("JWT_SECRET", "bench-secret-bench-secret-bench-secret")
            .env("DATA_DIR", &data_dir.0)
            .env("RUST_LOG", "error")
            .env("AUTH_ACCOUNT_FAILURES_PER_HOUR", "100000")
            .env("AUTH_ADDRESS_FAILURES_PER_MINUTE", "100000")
            .env("AUTH_ADDRESS_SIGNUPS_PER_HOUR", "100000")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        if let Ok(threads) = std::env::var("BENCH_HASH_THREADS") {
            command.env("PASSWORD_HASH_THREADS", threads);
        }
        if let Ok(malloc) = std::env::var("MALLOC_ARENA_MAX") {
            command.env("MALLOC_ARENA_MAX", malloc);
        }
        let child = command.spawn()?;
        let pid = child.id().unwrap_or_default();
        let base = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            anyhow::ensure!(Instant::now() < deadline, "the service did not start");
            if let Ok(r) = client.get(format!("{base}/api/health/live")).send().await
                && r.status().is_success()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(Self {
            child,
            pid,
            base,
            _data_dir: data_dir,
        })
    }

    fn rss_mb(&self) -> f64 {
        rss_kb(self.pid).unwrap_or(0) as f64 / 1024.0
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

struct TempDir(PathBuf);

impl TempDir {
    fn new() -> std::io::Result<Self> {
        let dir = std::env::temp_dir().join(format!("cc-bench-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir)?;
        Ok(Self(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// VmRSS of `pid`, in kB.
fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The highest RSS of a process while it runs, sampled every 50 ms on a thread of its own.
struct RssSampler {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<u64>,
}

impl RssSampler {
    fn start(pid: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut peak = 0;
            while !flag.load(Ordering::Relaxed) {
                peak = peak.max(rss_kb(pid).unwrap_or(0));
                std::thread::sleep(Duration::from_millis(50));
            }
            peak.max(rss_kb(pid).unwrap_or(0))
        });
        Self { stop, thread }
    }

    /// The peak, in MB.
    fn stop(self) -> f64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or(0) as f64 / 1024.0
    }
}

/// What a login storm got back: statuses counted, and latencies of the answered ones.
struct Storm {
    statuses: BTreeMap<u16, u64>,
    latencies: Vec<Duration>,
}

impl Storm {
    fn count(&self, status: u16) -> u64 {
        self.statuses.get(&status).copied().unwrap_or(0)
    }

    fn others(&self, except: &[u16]) -> u64 {
        self.statuses
            .iter()
            .filter(|(s, _)| !except.contains(s))
            .map(|(_, n)| n)
            .sum()
    }

    /// Checked logins (401), and every answer's latency sorted.
    fn done(&self) -> (u64, Vec<Duration>) {
        let mut latencies = self.latencies.clone();
        latencies.sort();
        (self.count(401), latencies)
    }
}

/// `clients` keep-alive clients sending wrong-password logins for `duration`.
async fn login_storm(
    client: &reqwest::Client,
    base: &str,
    email: &str,
    clients: usize,
    duration: Duration,
) -> Storm {
    let statuses = Arc::new(Mutex::new(BTreeMap::<u16, u64>::new()));
    let url = format!("{base}/api/auth/login");
    let body = json!({"email": email, "password": "not-the-password-at-all"});
    let counted = statuses.clone();
    let client = client.clone();
    let result = closed_loop(clients, duration, move || {
        let (client, url, body, counted) =
            (client.clone(), url.clone(), body.clone(), counted.clone());
        async move {
            let status = match client.post(&url).json(&body).send().await {
                Ok(r) => {
                    let status = r.status().as_u16();
                    let _ = r.bytes().await;
                    status
                }
                Err(_) => 0,
            };
            *counted.lock().unwrap().entry(status).or_default() += 1;
            if status == 503 {
                // A refused client backs off as Retry-After asks, a little, not a whole second:
                // a storm that keeps pressing is the worse case.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            if status == 0 {
                Outcome::Failed
            } else {
                Outcome::Done
            }
        }
    })
    .await;
    let statuses = statuses.lock().unwrap().clone();
    Storm {
        statuses,
        latencies: result.latencies,
    }
}

async fn reads(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    token: Option<&str>,
    clients: usize,
    duration: Duration,
) -> support::LoadResult {
    let url = format!("{base}{path}");
    let token = token.map(str::to_owned);
    let get = {
        let (client, url, token) = (client.clone(), url.clone(), token.clone());
        move || {
            let mut req = client.get(&url);
            if let Some(token) = &token {
                req = req.bearer_auth(token);
            }
            req
        }
    };
    for _ in 0..20 {
        let _ = get().send().await;
    }
    closed_loop(clients, duration, move || {
        let request = get();
        async move {
            match request.send().await {
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

/// `uploads` simultaneous photo uploads; each one's status and latency.
async fn upload_round(
    client: &reqwest::Client,
    base: &str,
    fixture: &Fixture,
    png: &[u8],
    uploads: usize,
) -> Vec<(u16, Duration)> {
    let url = format!("{base}/api/employees/{}/photo", fixture.employee_id);
    let png = bytes::Bytes::copy_from_slice(png);
    let tasks: Vec<_> = (0..uploads)
        .map(|_| {
            let (client, url, png, token) = (
                client.clone(),
                url.clone(),
                png.clone(),
                fixture.token.clone(),
            );
            tokio::spawn(async move {
                let started = Instant::now();
                let status = match client
                    .put(&url)
                    .bearer_auth(&token)
                    .header("content-type", "image/png")
                    .body(png)
                    .send()
                    .await
                {
                    Ok(r) => {
                        let status = r.status().as_u16();
                        let _ = r.bytes().await;
                        status
                    }
                    Err(_) => 0,
                };
                (status, started.elapsed())
            })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap_or((0, Duration::ZERO)));
    }
    results
}

/// A PNG of one flat colour: tiny on the wire, `width × height` pixels once decoded.
fn flat_png(width: u32, height: u32) -> Vec<u8> {
    use image::{
        ImageEncoder,
        codecs::png::{CompressionType, FilterType, PngEncoder},
    };
    let image = image::RgbImage::from_pixel(width, height, image::Rgb([200, 120, 40]));
    let mut out = Vec::new();
    PngEncoder::new_with_quality(&mut out, CompressionType::Best, FilterType::Adaptive)
        .write_image(&image, width, height, image::ExtendedColorType::Rgb8)
        .expect("encoding the PNG");
    out
}

#[derive(Clone)]
struct Fixture {
    email: String,
    token: String,
    company_id: String,
    employee_id: String,
    /// `{company_slug}/{employee_slug}` of the employee's public card.
    card: String,
}

impl Fixture {
    async fn create(client: &reqwest::Client, base: &str) -> anyhow::Result<Self> {
        let email = "bench@example.com".to_owned();
        let signup: Value = client
            .post(format!("{base}/api/auth/signup"))
            .json(
                &json!({"email": email, "password": PASSWORD, "full_name": "Bench Admin",
                          "company_name": "Bench Co"}),
            )
            .send()
            .await?
            .json()
            .await?;
        let token = signup["access_token"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let company_id = signup["company_id"].as_str().unwrap_or_default().to_owned();
        anyhow::ensure!(!token.is_empty(), "signing up failed: {signup}");
        let employee: Value = client
            .post(format!("{base}/api/company/{company_id}/employees"))
            .bearer_auth(&token)
            .json(&json!({"full_name": "Jane Bench", "job_title": "Load", "email": "jane@bench.example",
                          "bio": "Measures things, politely."}))
            .send()
            .await?
            .json()
            .await?;
        let employee_id = employee["id"].as_str().unwrap_or_default().to_owned();
        anyhow::ensure!(
            !employee_id.is_empty(),
            "creating the employee failed: {employee}"
        );
        let card = format!(
            "{}/{}",
            employee["company_slug"].as_str().unwrap_or_default(),
            employee["public_slug"].as_str().unwrap_or_default()
        );
        Ok(Self {
            email,
            token,
            company_id,
            employee_id,
            card,
        })
    }
}
