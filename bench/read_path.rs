//! Measures the read paths, the public card's above all: PostgreSQL round trips per request
//! (counted by a TCP proxy between the service and the database) and requests per second under
//! concurrent load, beside a static endpoint of the same server (`/api/health/live`) as the
//! ceiling. Every authenticated read checks the caller's session in the statement that sets
//! its tenant: the round trips below include that check; the refresh rows measure rotating a
//! session's tokens.
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
    let lists = ListFixture::create(&client, &counted, &cluster.url("bench")).await?;
    // Only the scenarios whose name contains this, e.g. BENCH_ONLY=employees.
    let only: String = env_or("BENCH_ONLY", String::new());

    println!(
        "\nPostgreSQL round trips per request (pool of 1 connection, counted at the socket)\n"
    );
    println!("| request | round trips |");
    println!("|---|---|");
    let round_trip_cases = fixture
        .round_trip_cases()
        .into_iter()
        .map(|(name, method, path, body)| (name.to_owned(), &fixture.token, method, path, body))
        .chain(
            lists
                .round_trip_cases(&client, &counted)
                .await?
                .into_iter()
                .map(|(name, token, path)| (name, token, reqwest::Method::GET, path, None)),
        );
    for (name, token, method, path, body) in round_trip_cases {
        // Three warm-up requests prepare the statements; the count starts after them.
        let (warm_up, n) = (3, 50);
        for i in 0..warm_up + n {
            if i == warm_up {
                proxy.reset();
            }
            let body = body.clone();
            send(&client, &counted, token, method.clone(), &path, body).await?;
        }
        println!("| {name} | {:.2} |", proxy.turns() as f64 / n as f64);
    }
    {
        // A refresh trades each token for the next: a chain of one session.
        let mut refresh = sessions(&client, &counted, &fixture, 1).await?.remove(0);
        let (warm_up, n) = (3, 50);
        for i in 0..warm_up + n {
            if i == warm_up {
                proxy.reset();
            }
            refresh = refreshed(&client, &counted, &refresh)
                .await
                .ok_or_else(|| anyhow::anyhow!("a refresh failed"))?;
        }
        println!(
            "| POST /api/auth/refresh (rotate the pair: one function call, then COMMIT) | {:.2} |",
            proxy.turns() as f64 / n as f64
        );
    }

    // A second instance straight on the database, with its normal pool, for throughput.
    let direct = spawn(&cluster.url("bench"), 16).await?;
    println!(
        "\nThroughput: {clients} concurrent clients, {seconds} s per scenario, keep-alive HTTP/1.1\n"
    );
    println!("| request | requests/s | p50 ms | p99 ms | errors |");
    println!("|---|---|---|---|---|");
    let load_cases = fixture
        .load_cases()
        .into_iter()
        .map(|(name, path)| (name.to_owned(), &fixture.token, path))
        .chain(lists.load_cases(&client, &direct).await?)
        .filter(|(name, _, _)| name.contains(&only));
    for (name, token, path) in load_cases {
        let result = load(&direct, token, &path, clients, Duration::from_secs(seconds)).await;
        println!(
            "| {name} | {:.0} | {:.2} | {:.2} | {} |",
            result.per_second(),
            result.p50_ms(),
            result.p99_ms(),
            result.failed
        );
    }
    let refresh = "POST /api/auth/refresh (a session per client)";
    if refresh.contains(&only) {
        let tokens = sessions(&client, &direct, &fixture, clients).await?;
        let result = load_refresh(&direct, tokens, clients, Duration::from_secs(seconds)).await;
        println!(
            "| {refresh} | {:.0} | {:.2} | {:.2} | {} |",
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
        ("METRICS_ADDR", "127.0.0.1:0".to_owned()),
        (
            "JWT_SECRET",
            "bench-secret-bench-secret-bench-secret".to_owned(),
        ),
        ("DATABASE_POOL_SIZE", pool.to_string()),
        // One token serves the whole run, which can outlast the default 15 minutes.
        ("JWT_TTL", "24h".to_owned()),
        // Every client is 127.0.0.1: the per-address bound on refreshes is opened wide.
        ("AUTH_ADDRESS_TOKEN_BURST", "100000".to_owned()),
        ("AUTH_ADDRESS_TOKENS_PER_HOUR", "1000000".to_owned()),
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
                "GET /api/employees/{id} (read, 1 query, the session checked)",
                Method::GET,
                format!("/api/employees/{}", self.employee_id),
                None,
            ),
            (
                "GET /api/company/{id}/employees (read, page and total in 1 query)",
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

/// Companies of 2, 100, 1,000 and 10,000 employees, for the employee list at every size.
struct ListFixture {
    companies: Vec<ListCompany>,
}

struct ListCompany {
    employees: usize,
    token: String,
    company_id: String,
}

/// The employees of a company, made up in one statement as the database owner (past the plan
/// limit): a name out of 20 × 50 first and last names, a title, an email, links and a bio, and
/// one creation a minute, the newest last.
const SEED_EMPLOYEES: &str = "INSERT INTO employees (company_id, id, full_name, job_title, email, phone, bio,
                            social_links, public_slug, created_at)
     SELECT $1, gen_random_uuid(),
            (ARRAY['Ada','Grace','Alan','Edsger','Barbara','Donald','Frances','Ken','Margaret','Dennis',
                   'Radia','John','Sophie','Tim','Hedy','Linus','Karen','Niklaus','Anita','Guido'])[1 + i % 20]
              || ' ' ||
            (ARRAY['Lovelace','Hopper','Turing','Dijkstra','Liskov','Knuth','Allen','Thompson','Hamilton',
                   'Ritchie','Perlman','McCarthy','Wilson','Berners-Lee','Lamarr','Torvalds','Jones','Wirth',
                   'Borg','Rossum','Kay','Backus','Codd','Cerf','Kahn','Hoare','Milner','Naur','Floyd','Iverson',
                   'Lamport','Diffie','Hellman','Rivest','Shamir','Adleman','Engelbart','Sutherland','Bell',
                   'Goldberg','Ingalls','Kernighan','Pike','Stroustrup','Gosling','Wall','Matsumoto','Hejlsberg',
                   'Eich','Lattner'])[1 + (i / 20) % 50],
            (ARRAY['Engineer','Designer','Sales','Support','Finance','Marketing','Legal','Operations'])[1 + i % 8],
            'person-' || i || '@bench.example', '+1 555 010 ' || lpad((i % 10000)::text, 4, '0'),
            'Measures things, politely.',
            '{\"linkedin\": \"https://www.linkedin.com/in/bench\"}'::jsonb,
            'person-' || i, now() - make_interval(mins => $2::int - i)
     FROM generate_series(1, $2::int) AS i";

impl ListFixture {
    async fn create(client: &reqwest::Client, base: &str, owner_url: &str) -> anyhow::Result<Self> {
        let (owner, connection) = tokio_postgres::connect(owner_url, tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        let mut companies = Vec::new();
        for employees in [2, 100, 1_000, 10_000] {
            let signup: Value = client
                .post(format!("{base}/api/auth/signup"))
                .json(&json!({"email": format!("list-{employees}@example.com"), "password": "quiet-otter-harbor-1911", "full_name": "List Admin", "company_name": format!("List {employees} Co")}))
                .send()
                .await?
                .json()
                .await?;
            let company_id = signup["company_id"].as_str().unwrap_or_default().to_owned();
            let id: uuid::Uuid = company_id.parse()?;
            owner
                .execute(SEED_EMPLOYEES, &[&id, &(employees as i32)])
                .await?;
            companies.push(ListCompany {
                employees,
                token: signup["access_token"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                company_id,
            });
        }
        // As autovacuum would leave them: statistics for the planner, the visibility map set.
        owner.batch_execute("VACUUM ANALYZE employees").await?;
        Ok(Self { companies })
    }

    fn company(&self, employees: usize) -> &ListCompany {
        self.companies
            .iter()
            .find(|c| c.employees == employees)
            .expect("a company of that size")
    }

    fn path(company: &ListCompany, query: &str) -> String {
        format!("/api/company/{}/employees?{query}", company.company_id)
    }

    /// The list's new parameters, each still one round trip.
    async fn round_trip_cases(
        &self,
        client: &reqwest::Client,
        base: &str,
    ) -> anyhow::Result<Vec<(String, &String, String)>> {
        let c = self.company(100);
        let mut cases = vec![(
            "GET /api/company/{id}/employees?q=…&sort=name (search, sorted)".to_owned(),
            &c.token,
            Self::path(c, "q=hopper&sort=name&limit=20"),
        )];
        for (name, query) in [
            ("GET …/employees?cursor=… (page 2 by cursor)", "limit=20"),
            (
                "GET …/employees?q=…&cursor=… (search, by cursor)",
                "limit=5&q=a",
            ),
        ] {
            let cursor = next_cursor(client, base, &c.token, &Self::path(c, query)).await?;
            let path = Self::path(c, &format!("{query}&cursor={cursor}"));
            cases.push((name.to_owned(), &c.token, path));
        }
        Ok(cases)
    }

    /// The list scenarios, 20 rows a page: `(name, token, path)`. Deep pages by cursor start
    /// where a page near the end of the list says the next one does.
    async fn load_cases(
        &self,
        client: &reqwest::Client,
        base: &str,
    ) -> anyhow::Result<Vec<(String, &String, String)>> {
        let mut cases = Vec::new();
        for c in &self.companies {
            let n = c.employees;
            cases.push((
                format!("GET employees, {n} employees: first page"),
                &c.token,
                Self::path(c, "limit=20"),
            ));
        }
        let c = self.company(100);
        cases.push((
            "GET employees, 100 employees: 2 rows a page".to_owned(),
            &c.token,
            Self::path(c, "limit=2"),
        ));
        let c = self.company(10_000);
        let last = c.employees - 20;
        for (name, query) in [
            ("last page by skip", format!("limit=20&skip={last}")),
            ("middle page by skip", "limit=20&skip=5000".to_owned()),
            ("sort=name", "limit=20&sort=name".to_owned()),
            ("sort=-name", "limit=20&sort=-name".to_owned()),
            ("sort=-created_at", "limit=20&sort=-created_at".to_owned()),
            ("q=hopper (200 match)", "limit=20&q=hopper".to_owned()),
            (
                "q=person-4242@ (1 match)",
                "limit=20&q=person-4242%40".to_owned(),
            ),
            ("q=a (most match)", "limit=20&q=a".to_owned()),
            ("q=son (all match, trigram)", "limit=20&q=son".to_owned()),
            (
                "q=hopper&sort=-name",
                "limit=20&q=hopper&sort=-name".to_owned(),
            ),
        ] {
            cases.push((
                format!("GET employees, 10000 employees: {name}"),
                &c.token,
                Self::path(c, &query),
            ));
        }
        for (name, query) in [
            ("last page by cursor", "limit=20".to_owned()),
            (
                "sort=name, last page by cursor",
                "limit=20&sort=name".to_owned(),
            ),
            (
                "sort=-name, last page by cursor",
                "limit=20&sort=-name".to_owned(),
            ),
        ] {
            let before_last = Self::path(c, &format!("{query}&skip={}", last - 20));
            let cursor = next_cursor(client, base, &c.token, &before_last).await?;
            cases.push((
                format!("GET employees, 10000 employees: {name}"),
                &c.token,
                Self::path(c, &format!("{query}&cursor={cursor}")),
            ));
        }
        Ok(cases)
    }
}

/// The `X-Next-Cursor` of the page at `path`.
async fn next_cursor(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    path: &str,
) -> anyhow::Result<String> {
    let resp = client
        .get(format!("{base}{path}"))
        .bearer_auth(token)
        .send()
        .await?;
    anyhow::ensure!(resp.status().is_success(), "{path}: {}", resp.status());
    let cursor = resp
        .headers()
        .get("x-next-cursor")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    cursor.ok_or_else(|| anyhow::anyhow!("{path}: no X-Next-Cursor"))
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

/// The refresh tokens of `count` fresh sessions, each of a login of its own (a login keeps at
/// most 50 live sessions), made by the fixture's admin.
async fn sessions(
    client: &reqwest::Client,
    base: &str,
    fixture: &Fixture,
    count: usize,
) -> anyhow::Result<Vec<String>> {
    let mut tokens = Vec::with_capacity(count);
    for _ in 0..count {
        let email = format!("refresher-{}@bench.example", uuid::Uuid::new_v4().simple());
        let password = "quiet-otter-harbor-1911";
        let created = client
            .post(format!("{base}/api/company/{}/users", fixture.company_id))
            .bearer_auth(&fixture.token)
            .json(
                &json!({"email": email, "password": password, "full_name": "Refresher",
                          "role": "employee"}),
            )
            .send()
            .await?;
        anyhow::ensure!(created.status().is_success(), "{}", created.status());
        let login: Value = client
            .post(format!("{base}/api/auth/login"))
            .json(&json!({"email": email, "password": password}))
            .send()
            .await?
            .json()
            .await?;
        let refresh = login["refresh_token"].as_str().unwrap_or_default();
        anyhow::ensure!(!refresh.is_empty(), "no refresh token: {login}");
        tokens.push(refresh.to_owned());
    }
    Ok(tokens)
}

/// The next refresh token of `token`'s session; `None` when the refresh failed.
async fn refreshed(client: &reqwest::Client, base: &str, token: &str) -> Option<String> {
    let resp = client
        .post(format!("{base}/api/auth/refresh"))
        .json(&json!({ "refresh_token": token }))
        .send()
        .await
        .ok()?;
    if !resp.status().is_success() {
        return None;
    }
    let body: Value = resp.json().await.ok()?;
    body["refresh_token"].as_str().map(str::to_owned)
}

/// `clients` keep-alive clients refreshing for `duration`, each request taking a session's
/// current token from `tokens` (one per client, so one is always free) and putting the next one
/// back.
async fn load_refresh(
    base: &str,
    tokens: Vec<String>,
    clients: usize,
    duration: Duration,
) -> LoadResult {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()
        .unwrap();
    let tokens = Arc::new(std::sync::Mutex::new(tokens));
    let base = base.to_owned();
    closed_loop(clients, duration, move || {
        let (client, base, tokens) = (client.clone(), base.clone(), tokens.clone());
        async move {
            let Some(token) = tokens.lock().unwrap().pop() else {
                return Outcome::Failed;
            };
            match refreshed(&client, &base, &token).await {
                Some(next) => {
                    tokens.lock().unwrap().push(next);
                    Outcome::Done
                }
                // The session is over (a refresh lost): this client has none any more.
                None => Outcome::Failed,
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
