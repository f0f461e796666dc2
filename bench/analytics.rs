//! Measures analytics: how many tracked events per second the service acknowledges (each one
//! committed), how fast history can be bulk-loaded, and how the dashboards answer as a company's
//! history grows to 100k, 1M and 10M events.
//!
//!     cargo bench --bench analytics                                  # the full run
//!     BENCH_MAX_EVENTS=200000 BENCH_SECONDS=3 cargo bench --bench analytics
//!
//! Variables: `BENCH_SECONDS` (tracking load, default 10), `BENCH_CLIENTS` (concurrent tracking
//! clients, default 64), `BENCH_MAX_EVENTS` (largest dataset, default 10 000 000),
//! `BENCH_REQUESTS` (measured requests per dashboard cell, default 50), `BENCH_HOLD=1` (keep the
//! database running at the end, its URL on stderr, until the process is killed: for EXPLAIN).
//!
//! Everything runs on this machine: a throwaway PostgreSQL cluster, the service on a loopback
//! port, and the load generator in this process (so it shares the CPU with both). Results go to
//! stdout as markdown tables, progress to stderr.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

mod history;
mod support;

use callingcard::db::embedded::LocalCluster;
use chrono::{SecondsFormat, Utc};
use history::{CHUNK, Company, HISTORY_DAYS, Loader, PEOPLE, Service};
use rand::Rng;
use serde_json::{Value, json};
use support::{Outcome, closed_loop, env_or, load_average, percentile};
use tokio_postgres::NoTls;
use uuid::Uuid;

/// Dataset sizes at which the dashboards are measured.
const STEPS: [u64; 3] = [100_000, 1_000_000, 10_000_000];
/// Employees of the dashboard company.
const EMPLOYEES: usize = 200;
/// Employees (cards) the tracking load spreads over, in a company of their own.
const TRACKED_CARDS: usize = 20;
/// Dashboard requests before measuring, and the time one cell may take at most.
const WARM_UPS: usize = 5;
const CELL_BUDGET: Duration = Duration::from_secs(60);

const USER_AGENTS: [&str; 4] = [
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.0.0 Safari/537.36",
];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // `cargo bench` passes --bench; anything else (e.g. `cargo test --all-targets`) only builds it.
    if !std::env::args().any(|arg| arg == "--bench") {
        return Ok(());
    }
    let started = Instant::now();
    let seconds: u64 = env_or("BENCH_SECONDS", 10);
    let clients: usize = env_or("BENCH_CLIENTS", 64);
    let max_events: u64 = env_or("BENCH_MAX_EVENTS", 10_000_000);
    let requests: usize = env_or("BENCH_REQUESTS", 50);
    let steps = steps_up_to(max_events);

    progress("starting a temporary PostgreSQL cluster and the service");
    let cluster = LocalCluster::start_temporary().await?;
    callingcard::startup::create_database_if_missing(&cluster.url("postgres"), "bench").await?;
    let service = Service::spawn(&cluster.url("bench")).await?;
    let (db, connection) = tokio_postgres::connect(&cluster.url("bench"), NoTls).await?;
    tokio::spawn(connection);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()?;

    let settings = db
        .query_one(
            "SELECT current_setting('server_version'), current_setting('shared_buffers'),
                    current_setting('work_mem'), current_setting('fsync'),
                    current_setting('synchronous_commit')",
            &[],
        )
        .await?;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("\n# Analytics benchmark\n");
    println!(
        "Machine: {cpus} CPUs; PostgreSQL {} (temporary cluster: shared_buffers={}, work_mem={}, \
         fsync={}, synchronous_commit={}); service pool of {} connections. The load generator, \
         the service and PostgreSQL share the machine. Load average at start: {}.",
        settings.get::<_, String>(0),
        settings.get::<_, String>(1),
        settings.get::<_, String>(2),
        settings.get::<_, String>(3),
        settings.get::<_, String>(4),
        service.pool,
        load_average(),
    );

    // 1. Tracking throughput, on a company of its own so that the dataset below stays exact.
    progress("creating the tracking company");
    let tracking = Company::create(&http, &service.base, &db, "Tracking Co", TRACKED_CARDS).await?;
    let result = track_load(
        &http,
        &service.base,
        &db,
        &tracking,
        clients,
        Duration::from_secs(seconds),
    )
    .await?;
    println!("\n## Tracking throughput\n");
    println!(
        "`POST /api/analytics/track` from {clients} concurrent keep-alive clients for {seconds} s, \
         over {TRACKED_CARDS} cards of one company. Every request comes from a distinct \
         `X-Forwarded-For` address (10.x.y.z; the service runs with \
         `CLIENT_IP_HEADER=X-Forwarded-For`), so the per-address limit (60 burst, then 1/s) \
         never applies; browser User-Agents, so every event is a person's. A 200 means the \
         event was committed. Commits are counted by PostgreSQL (`pg_stat_database.xact_commit`, \
         every transaction of the database in the window).\n"
    );
    println!(
        "| events acknowledged | events/s | p50 ms | p99 ms | 429s | errors | commits | events per commit | commits per event | rows stored |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    println!(
        "| {} | {:.0} | {:.2} | {:.2} | {} | {} | {} | {:.1} | {:.3} | {} |",
        result.acknowledged,
        result.acknowledged as f64 / result.elapsed,
        result.p50_ms,
        result.p99_ms,
        result.limited,
        result.errors,
        result.commits,
        result.acknowledged as f64 / result.commits.max(1) as f64,
        result.commits as f64 / result.acknowledged.max(1) as f64,
        result.stored,
    );

    // The tracked events go, so that the tables below hold the dashboard company alone.
    db.batch_execute(&format!(
        "DELETE FROM card_events WHERE company_id = '{0}';
         DELETE FROM card_rollup_employee_hourly WHERE company_id = '{0}';
         DELETE FROM card_rollup_company_hourly WHERE company_id = '{0}';
         DELETE FROM card_rollup_employee_daily WHERE company_id = '{0}';
         DELETE FROM card_rollup_company_daily WHERE company_id = '{0}';
         DELETE FROM card_rollup_action_hourly WHERE company_id = '{0}';
         DELETE FROM card_visitor_days WHERE company_id = '{0}';
         DELETE FROM card_rollup_visitors_hourly WHERE company_id = '{0}';",
        tracking.id
    ))
    .await?;

    // 2. and 3. Bulk load in steps, the dashboards measured at each.
    progress("creating the dashboard company");
    let company = Company::create(&http, &service.base, &db, "Dashboard Co", EMPLOYEES).await?;
    let mut loader = Loader::prepare(&db, &company).await?;
    let mut loads = Vec::new();
    let mut dashboards: BTreeMap<(usize, usize), Vec<String>> = BTreeMap::new();
    let cases = DashboardCase::all();
    let ranges = [("30 days", 30), ("365 days", 365)];
    for &target in &steps {
        let load = loader.load_to(&db, target).await?;
        progress(&format!(
            "{}: loaded {} events in {:.1} s ({:.0}/s), VACUUM ANALYZE {:.1} s",
            label(target),
            load.added,
            load.seconds,
            load.added as f64 / load.seconds,
            load.vacuum_seconds
        ));
        loads.push(load);
        for (r, (range_name, days)) in ranges.iter().enumerate() {
            let to = Utc::now();
            let from = to - chrono::Duration::days(*days);
            for (c, case) in cases.iter().enumerate() {
                progress(&format!(
                    "{}: {} over {range_name}",
                    label(target),
                    case.name
                ));
                let path = case.path(&company, &from, &to);
                let cell = measure(&http, &service.base, &company.token, &path, requests).await;
                dashboards.entry((c, r)).or_default().push(cell);
            }
            check_summary(&http, &service.base, &db, &company, &from, &to, range_name).await;
            check_leaderboard(&http, &service.base, &db, &company, &from, &to, range_name).await;
        }
    }

    println!("\n## Bulk load\n");
    println!(
        "One company, {EMPLOYEES} employees, enterprise plan (retention `forever`), events over \
         the last {HISTORY_DAYS} days (growing towards today, weighted to business hours UTC), \
         loaded with the superuser in transactions of {} generated events: `card_events` and \
         the hourly and daily rollups, aggregated as the INGEST statement does. Visits are sessions of \
         1–4 events (a view or QR scan, then sometimes a call, email, WhatsApp, vCard, link \
         click or share) by {PEOPLE} people of stable device and region (~20 regions, a few \
         unknown), card popularity skewed; 3% of visits (2% of events) are link-preview fetches \
         (rollups only).\n",
        label(CHUNK)
    );
    println!(
        "| dataset | events added (previews included) | load s | events/s | VACUUM ANALYZE s | card_events rows | employee rollup rows | company rollup rows | action + visitor rollup rows | daily rollup rows | card_events partitions |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for load in &loads {
        println!(
            "| {} | {} | {:.1} | {:.0} | {:.1} | {} | {} | {} | {} | {} | {} |",
            label(load.total),
            load.added,
            load.seconds,
            load.added as f64 / load.seconds,
            load.vacuum_seconds,
            load.size.rows[0],
            load.size.rows[1],
            load.size.rows[2],
            load.size.rows[3],
            load.size.rows[4],
            load.size.partitions,
        );
    }
    println!("\n## PostgreSQL data size (MB: table + indexes)\n");
    println!(
        "| dataset | card_events (all partitions) | card_rollup_employee_hourly | card_rollup_company_hourly | action + visitor rollups | daily rollups | total |"
    );
    println!("|---|---|---|---|---|---|---|");
    for load in &loads {
        let s = &load.size;
        let mut row = format!("| {} |", label(load.total));
        for (table, index) in s.table_mb.iter().zip(&s.index_mb) {
            let _ = write!(row, " {:.0} ({table:.0} + {index:.0}) |", table + index);
        }
        let total: f64 = s.table_mb.iter().chain(&s.index_mb).sum();
        let _ = write!(row, " {total:.0} |");
        println!("{row}");
    }

    println!("\n## Dashboard latency\n");
    println!(
        "p50 / p99 in ms over {requests} sequential requests (after {WARM_UPS} warm-ups) as the \
         company's admin, ranges ending now; with so few requests p99 is about the slowest one. \
         `tz=Europe/Berlin`, day buckets; the employee is the busiest one. A cell with fewer \
         requests hit the {} s budget; an HTTP status means the endpoint failed.\n",
        CELL_BUDGET.as_secs()
    );
    let mut header = "| request | range |".to_owned();
    let mut rule = "|---|---|".to_owned();
    for &target in &steps {
        let _ = write!(header, " {} events |", label(target));
        rule.push_str("---|");
    }
    println!("{header}\n{rule}");
    for (c, case) in cases.iter().enumerate() {
        for (r, (range_name, _)) in ranges.iter().enumerate() {
            let cells = dashboards.get(&(c, r)).cloned().unwrap_or_default();
            println!("| {} | {range_name} | {} |", case.name, cells.join(" | "));
        }
    }
    println!(
        "\nTotal run time: {:.0} s. Load average at the end: {}.\n",
        started.elapsed().as_secs_f64(),
        load_average()
    );

    if std::env::var("BENCH_HOLD").is_ok_and(|v| v == "1") {
        progress(&format!(
            "holding the database at {} (admin token: {}) until killed",
            cluster.url("bench"),
            company.token
        ));
        std::future::pending::<()>().await;
    }
    cluster.stop().await?;
    Ok(())
}

fn progress(message: &str) {
    eprintln!("[analytics bench] {message}");
}

/// The standard steps up to `max`, and `max` itself when it falls between them.
fn steps_up_to(max: u64) -> Vec<u64> {
    let mut steps: Vec<u64> = STEPS.iter().copied().filter(|&s| s <= max).collect();
    if steps.last() != Some(&max) && max > 0 && max < STEPS[STEPS.len() - 1] {
        steps.push(max);
    }
    steps
}

/// `100k`, `1M`, `10M`, or the number itself.
fn label(n: u64) -> String {
    if n >= 1_000_000 && n.is_multiple_of(1_000_000) {
        format!("{}M", n / 1_000_000)
    } else if n >= 1_000 && n.is_multiple_of(1_000) {
        format!("{}k", n / 1_000)
    } else {
        n.to_string()
    }
}

fn rfc3339(t: &chrono::DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

struct TrackResult {
    acknowledged: u64,
    elapsed: f64,
    p50_ms: f64,
    p99_ms: f64,
    limited: u64,
    errors: u64,
    commits: i64,
    stored: i64,
}

/// What a tracking beacon says, weighted roughly as people act on a card.
fn beacon(rng: &mut impl Rng) -> Value {
    const REGIONS: [&str; 8] = ["DE", "US", "GB", "FR", "NL", "AT", "CH", "ES"];
    let region = REGIONS[rng.random_range(0..REGIONS.len())];
    let action = match rng.random_range(0..100) {
        0..55 => "view",
        55..75 => "scan_qr",
        75..81 => "download_vcard",
        81..85 => "call",
        85..88 => "email",
        88..91 => "whatsapp",
        91..97 => "link_click",
        _ => "share",
    };
    if action == "link_click" {
        json!({"action": action, "region": region, "link": "linkedin"})
    } else {
        json!({"action": action, "region": region})
    }
}

/// The `n`th client address: 10.x.y.z, distinct for 16M requests.
fn address(n: u64) -> String {
    format!("10.{}.{}.{}", (n >> 16) & 255, (n >> 8) & 255, n & 255)
}

async fn xact_commits(db: &tokio_postgres::Client) -> anyhow::Result<i64> {
    // Backends publish their counters at most once a second (and when idle, soon after).
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    Ok(db
        .query_one(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()",
            &[],
        )
        .await?
        .get(0))
}

async fn track_load(
    http: &reqwest::Client,
    base: &str,
    db: &tokio_postgres::Client,
    company: &Company,
    clients: usize,
    duration: Duration,
) -> anyhow::Result<TrackResult> {
    let urls: Arc<Vec<String>> = Arc::new(
        company
            .employees
            .iter()
            .map(|(_, slug)| {
                format!(
                    "{base}/api/analytics/track?company_slug={}&employee_slug={slug}",
                    company.slug
                )
            })
            .collect(),
    );
    let counter = Arc::new(AtomicU64::new(1));
    let send = {
        let (http, urls, counter) = (http.clone(), urls.clone(), counter.clone());
        move || {
            let (http, urls) = (http.clone(), urls.clone());
            let n = counter.fetch_add(1, Ordering::Relaxed);
            async move {
                let (url, user_agent, body) = {
                    let mut rng = rand::rng();
                    (
                        urls[rng.random_range(0..urls.len())].clone(),
                        USER_AGENTS[rng.random_range(0..USER_AGENTS.len())],
                        beacon(&mut rng),
                    )
                };
                let resp = http
                    .post(url)
                    .header("X-Forwarded-For", address(n))
                    .header("User-Agent", user_agent)
                    .json(&body)
                    .send()
                    .await?;
                let status = resp.status().as_u16();
                let body: Value = resp.json().await.unwrap_or(Value::Null);
                Ok::<_, reqwest::Error>((status, body["status"] == "tracked"))
            }
        }
    };
    // Warm up: the card cache, the connections of both pools.
    progress("tracking: warming up");
    let warm_ups: Vec<_> = (0..clients).map(|_| tokio::spawn(send())).collect();
    for warm_up in warm_ups {
        let (status, tracked) = warm_up.await??;
        anyhow::ensure!(
            status == 200 && tracked,
            "tracking warm-up answered {status}"
        );
    }
    let stored_before: i64 = stored_events(db, company.id).await?;
    let commits_before = xact_commits(db).await?;
    progress(&format!(
        "tracking: {clients} clients for {} s",
        duration.as_secs()
    ));
    let result = closed_loop(clients, duration, move || {
        let request = send();
        async move {
            match request.await {
                Ok((200, true)) => Outcome::Done,
                Ok((429, _)) => Outcome::Limited,
                _ => Outcome::Failed,
            }
        }
    })
    .await;
    let commits = xact_commits(db).await? - commits_before;
    let stored = stored_events(db, company.id).await? - stored_before;
    Ok(TrackResult {
        acknowledged: result.latencies.len() as u64,
        elapsed: result.elapsed,
        p50_ms: result.p50_ms(),
        p99_ms: result.p99_ms(),
        limited: result.limited,
        errors: result.failed,
        commits,
        stored,
    })
}

async fn stored_events(db: &tokio_postgres::Client, company_id: Uuid) -> anyhow::Result<i64> {
    Ok(db
        .query_one(
            "SELECT count(*) FROM card_events WHERE company_id = $1",
            &[&company_id],
        )
        .await?
        .get(0))
}

enum Scope {
    Company,
    Employee,
}

struct DashboardCase {
    name: &'static str,
    scope: Scope,
    /// After `/api/analytics/{company|employee}/{id}`.
    suffix: &'static str,
    query: &'static str,
}

impl DashboardCase {
    fn all() -> Vec<Self> {
        vec![
            Self {
                name: "GET /api/analytics/company/{id} (events page + summary)",
                scope: Scope::Company,
                suffix: "",
                query: "",
            },
            Self {
                name: "GET /api/analytics/company/{id}/timeseries (day)",
                scope: Scope::Company,
                suffix: "/timeseries",
                query: "&tz=Europe/Berlin&interval=day",
            },
            Self {
                name: "GET /api/analytics/company/{id}/leaderboard",
                scope: Scope::Company,
                suffix: "/leaderboard",
                query: "",
            },
            Self {
                name: "GET /api/analytics/company/{id}/breakdown?by=region",
                scope: Scope::Company,
                suffix: "/breakdown",
                query: "&by=region",
            },
            Self {
                name: "GET /api/analytics/employee/{id}/timeseries (day)",
                scope: Scope::Employee,
                suffix: "/timeseries",
                query: "&tz=Europe/Berlin&interval=day",
            },
        ]
    }

    fn path(
        &self,
        company: &Company,
        from: &chrono::DateTime<Utc>,
        to: &chrono::DateTime<Utc>,
    ) -> String {
        let scope = match self.scope {
            Scope::Company => format!("company/{}", company.id),
            // The first employee is the busiest: card popularity is skewed towards it.
            Scope::Employee => format!("employee/{}", company.employees[0].0),
        };
        format!(
            "/api/analytics/{scope}{}?from={}&to={}{}",
            self.suffix,
            rfc3339(from),
            rfc3339(to),
            self.query
        )
    }
}

/// `p50 / p99` of sequential requests, or the failing status.
async fn measure(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    path: &str,
    requests: usize,
) -> String {
    let url = format!("{base}{path}");
    let once = async || -> Result<Duration, String> {
        let t = Instant::now();
        let resp = http
            .get(&url)
            .bearer_auth(token)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!(
                "HTTP {} {}",
                status.as_u16(),
                String::from_utf8_lossy(&body[..body.len().min(200)])
            ));
        }
        Ok(t.elapsed())
    };
    for _ in 0..WARM_UPS {
        if let Err(e) = once().await {
            progress(&format!("{path}: {e}"));
            return e.split(' ').take(2).collect::<Vec<_>>().join(" ");
        }
    }
    let started = Instant::now();
    let mut latencies = Vec::with_capacity(requests);
    while latencies.len() < requests && started.elapsed() < CELL_BUDGET {
        match once().await {
            Ok(latency) => latencies.push(latency),
            Err(e) => {
                progress(&format!("{path}: {e}"));
                return e.split(' ').take(2).collect::<Vec<_>>().join(" ");
            }
        }
    }
    latencies.sort();
    let cell = format!(
        "{:.1} / {:.1}",
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99)
    );
    if latencies.len() < requests {
        format!("{cell} (n={})", latencies.len())
    } else {
        cell
    }
}

/// The JSON body of a successful GET, or None.
async fn get_json(http: &reqwest::Client, url: &str, token: &str) -> Option<Value> {
    let resp = http.get(url).bearer_auth(token).send().await.ok()?;
    if !resp.status().is_success() {
        return None;
    }
    resp.json().await.ok()
}

/// Compares the company summary with the rollup it should come from; a mismatch is reported on
/// stderr (the endpoints are not this benchmark's to judge, but a wrong answer fast is no answer).
async fn check_summary(
    http: &reqwest::Client,
    base: &str,
    db: &tokio_postgres::Client,
    company: &Company,
    from: &chrono::DateTime<Utc>,
    to: &chrono::DateTime<Utc>,
    range: &str,
) {
    let url = format!(
        "{base}/api/analytics/company/{}?from={}&to={}&limit=1",
        company.id,
        rfc3339(from),
        rfc3339(to)
    );
    let Some(body) = get_json(http, &url, &company.token).await else {
        return;
    };
    let Ok(rows) = db
        .query(
            "SELECT action, sum(events)::bigint FROM card_rollup_action_hourly
             WHERE company_id = $1 AND hour >= date_trunc('hour', $2::timestamptz, 'UTC')
               AND hour < $3
             GROUP BY action",
            &[&company.id, from, to],
        )
        .await
    else {
        return;
    };
    let mut mismatches = Vec::new();
    for row in rows {
        let action: String = row.get(0);
        let expected: i64 = row.get(1);
        let got = body["summary"][&action].as_i64().unwrap_or(-1);
        if got != expected {
            mismatches.push(format!("{action}: {got} (rollup says {expected})"));
        }
    }
    if mismatches.is_empty() {
        progress(&format!("summary over {range} matches the rollup"));
    } else {
        progress(&format!(
            "WARNING: summary over {range} differs from the rollup: {}",
            mismatches.join(", ")
        ));
    }
}

/// Compares the leaderboard (daily rows and edge hours) with a ranking of the hourly rollup alone
/// over the same hours; a mismatch is reported on stderr, as for the summary.
async fn check_leaderboard(
    http: &reqwest::Client,
    base: &str,
    db: &tokio_postgres::Client,
    company: &Company,
    from: &chrono::DateTime<Utc>,
    to: &chrono::DateTime<Utc>,
    range: &str,
) {
    let url = format!(
        "{base}/api/analytics/company/{}/leaderboard?from={}&to={}&limit=20",
        company.id,
        rfc3339(from),
        rfc3339(to)
    );
    let got: Option<Vec<(String, i64, i64, i64)>> =
        get_json(http, &url, &company.token).await.and_then(|body| {
            body["employees"]
                .as_array()?
                .iter()
                .map(|e| {
                    Some((
                        e["employee_id"].as_str()?.to_owned(),
                        e["views"].as_i64()?,
                        e["engagements"].as_i64()?,
                        e["saved_contacts"].as_i64()?,
                    ))
                })
                .collect()
        });
    let expected: Option<Vec<(String, i64, i64, i64)>> = db
        .query(
            "SELECT employee_id::text,
                    coalesce(sum(events) FILTER (WHERE action IN ('view', 'scan_qr')), 0)::bigint AS views,
                    coalesce(sum(events) FILTER (WHERE action NOT IN ('view', 'scan_qr')), 0)::bigint AS engagements,
                    coalesce(sum(events) FILTER (WHERE action = 'download_vcard'), 0)::bigint
             FROM card_rollup_employee_hourly
             WHERE company_id = $1 AND hour >= date_trunc('hour', $2::timestamptz, 'UTC')
               AND hour < $3 AND action <> 'preview'
             GROUP BY employee_id
             ORDER BY engagements DESC, views DESC, employee_id
             LIMIT 20",
            &[&company.id, from, to],
        )
        .await
        .ok()
        .map(|rows| {
            rows.iter()
                .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
                .collect()
        });
    match (got, expected) {
        (Some(got), Some(expected)) if got == expected => {
            progress(&format!(
                "leaderboard over {range} matches the hourly rollup"
            ));
        }
        (got, expected) => progress(&format!(
            "WARNING: leaderboard over {range} differs from the hourly rollup: {got:?} vs {expected:?}"
        )),
    }
}
